"""Pool the token features of a text model into one feature per text."""
from typing import Optional

import torch

#: Accepted ``pooling`` values.
POOLINGS = ('mean', 'cls', 'eos', 'pooler')


def pool_tokens(hidden: torch.Tensor,
                mask: torch.Tensor,
                pooling: str,
                pooler_output: Optional[torch.Tensor] = None,
                model_name: str = 'the text model') -> torch.Tensor:
    """One feature per right-padded sequence.

    Args:
        hidden (Tensor): Last hidden states [N, L, C].
        mask (Tensor): Attention mask [N, L], 1 for real tokens.
        pooling (str): 'mean' (mean over real tokens), 'cls' (first token),
            'eos' (last real token, CLIP style) or 'pooler' (returns
            ``pooler_output``).
        pooler_output (Tensor, optional): The model's own pooled output.
        model_name (str): Named in the error of a missing pooler output.

    Returns:
        Tensor: Shape [N, C].
    """
    if pooling == 'mean':
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
    if pooling == 'cls':
        return hidden[:, 0]
    if pooling == 'eos':
        last = (mask.sum(1).long() - 1).clamp(min=0)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device),
                      last]
    if pooling != 'pooler':
        raise ValueError(f'pooling must be one of {POOLINGS}, '
                         f'got {pooling!r}.')
    if pooler_output is None:
        raise ValueError(
            f"pooling='pooler' but {model_name} returns no pooler_output; "
            f"use 'mean', 'cls' or 'eos'.")
    return pooler_output
