"""Freeze the bottom of a transformers text model by a number of layers.

The count follows ``frozen_stages`` of OpenMMLab backbones: -1 freezes
nothing, 0 the embeddings, k the embeddings and the first k transformer
blocks, ``num_hidden_layers`` the whole model. The blocks are found as the
model's list of ``num_hidden_layers`` modules, so any family (BERT, CLIP,
GPT-2, ...) works without knowing its attribute names.
"""
import logging
from typing import List, Optional, Tuple

import torch.nn as nn
from mmengine.logging import print_log

#: Values of the ``freeze`` shorthand.
FREEZE_MODES = ('all', 'none', 'partial')


def to_frozen_layers(num_layers: int,
                     frozen_layers: Optional[int] = None,
                     freeze: Optional[str] = None,
                     unfreeze_last_n: int = 0) -> int:
    """``frozen_layers`` from either form of the config.

    Args:
        num_layers (int): ``num_hidden_layers`` of the model.
        frozen_layers (int, optional): -1 ... ``num_layers``; wins when given.
        freeze (str, optional): 'all' (``num_layers``), 'none' (-1) or
            'partial' (all but the last ``unfreeze_last_n`` blocks). None
            means 'all'.
        unfreeze_last_n (int): Trainable blocks with ``freeze='partial'``.

    Returns:
        int: The number of frozen layers, -1 ... ``num_layers``.
    """
    if freeze is not None and freeze not in FREEZE_MODES:
        raise ValueError(f'freeze must be one of {FREEZE_MODES}, '
                         f'got {freeze!r}.')
    if frozen_layers is not None:
        if freeze is not None:
            raise ValueError(
                f'HFTextEncoder got freeze={freeze!r} and frozen_layers='
                f'{frozen_layers}; give only one of them.')
        if not -1 <= frozen_layers <= num_layers:
            raise ValueError(
                f'frozen_layers must be in [-1, {num_layers}] (the model '
                f'has {num_layers} layers), got {frozen_layers}.')
        return frozen_layers
    freeze = freeze or 'all'
    if freeze == 'partial':
        if not 1 <= unfreeze_last_n <= num_layers:
            raise ValueError(
                f"freeze='partial' needs 1 <= unfreeze_last_n <= "
                f'{num_layers} (the number of layers), got '
                f'{unfreeze_last_n}.')
        return num_layers - unfreeze_last_n
    if unfreeze_last_n:
        print_log(
            f'HFTextEncoder: unfreeze_last_n={unfreeze_last_n} is ignored '
            f'with freeze={freeze!r}.', logger='current',
            level=logging.WARNING)
    return num_layers if freeze == 'all' else -1


def transformer_blocks(model: nn.Module,
                       num_layers: int) -> Tuple[str, nn.ModuleList]:
    """Name and module of the model's list of ``num_layers`` blocks."""
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == num_layers:
            return name, module
    raise ValueError(
        f'{type(model).__name__} has no list of {num_layers} transformer '
        f'blocks to freeze the bottom of; use frozen_layers=-1 or '
        f"{num_layers} (freeze='none' or 'all').")


def freeze_bottom_layers(model: nn.Module, frozen_layers: int,
                         num_layers: int,
                         train_pooler: bool) -> List[nn.Module]:
    """Stop the gradients of the bottom ``frozen_layers`` layers.

    The layers registered after the blocks (a final norm, a pooler) train
    with the last block when any block trains; the pooler only with
    ``train_pooler``, since it matters only when its output is used.

    Args:
        model (nn.Module): The transformers model.
        frozen_layers (int): From :func:`to_frozen_layers`.
        num_layers (int): ``num_hidden_layers`` of the model.
        train_pooler (bool): Whether a trainable top includes the pooler.

    Returns:
        list[nn.Module]: Modules to keep in eval mode (no dropout), so the
        trainable top sees deterministic inputs; also set to eval here.
    """
    if frozen_layers < 0:
        return []
    model.requires_grad_(False)
    if frozen_layers >= num_layers:
        model.eval()
        return [model]
    path, blocks = transformer_blocks(model, num_layers)
    for block in blocks[frozen_layers:]:
        block.requires_grad_(True)
    params = list(model.named_parameters())
    last = max(i for i, (name, _) in enumerate(params)
               if name.startswith(path + '.'))
    for name, param in params[last + 1:]:
        if train_pooler or not name.startswith('pooler.'):
            param.requires_grad_(True)
    frozen = [
        m for m in model.modules()
        if any(True for _ in m.parameters())
        and not any(p.requires_grad for p in m.parameters())
    ]
    for module in frozen:
        module.eval()
    return frozen
