"""Interface of the rules that fuse teacher and VLM predictions."""
from typing import Dict

import torch
import torch.nn as nn
from torch import Tensor


class BaseFusion(nn.Module):
    r"""Fuse teacher probabilities with the stage-1 VLM's class maps.

    Subclasses implement :meth:`fuse`. Inputs, for a batch of unlabelled
    weak views:

    - ``teacher_probs`` :math:`q_t` (B, K, H, W), a softmax over classes;
    - ``vlm_maps`` :math:`B` (B, K, H, W), the VLM's class-specific binary
      maps :math:`B_k = \sigma(S_k)` (independent, not a distribution);
    - ``vlm_labels`` (B, H, W), the VLM's unified map (argmax of B where
      its maximum reaches the VLM's threshold, else background).

    The output is a distribution ``probs`` (B, K, H, W) whose argmax is the
    pseudo label, a ``confidence`` (B, H, W) in [0, 1] that the segmentor
    thresholds with ``semi_train_cfg.pseudo_threshold``, optionally a
    boolean ``valid`` (B, H, W): pixels a rule rules out whatever the
    threshold (0 included, as in Mean Teacher and CPS), and optionally
    ``log``, scalars the segmentor logs (names start with ``pl_``).
    """

    @staticmethod
    def vlm_distribution(vlm_maps: Tensor, eps: float = 1e-6) -> Tensor:
        r""":math:`q_v = B / \sum_k B_k`, the maps turned into a distribution."""
        maps = vlm_maps.clamp_min(0)
        return (maps + eps) / (maps.sum(1, keepdim=True) + eps * maps.shape[1])

    @staticmethod
    def foreground_first(probs: Tensor) -> Tensor:
        r"""Give a distribution's foreground mass to its likeliest
        foreground class.

        :math:`q'(0) = q(0)`, :math:`q'(k^*) = 1 - q(0)` with
        :math:`k^* = \arg\max_{k \ge 1} q(k)`, 0 elsewhere: background is
        decided against the foreground as a whole, not against each
        foreground class. Two experts that both see a vertebra but name
        neighbouring levels spread the foreground over two classes, each
        below background, and a plain arg-max would call the pixel
        background; here it stays foreground (of the likelier level)
        whenever :math:`q(0) < 0.5`.

        Args:
            probs (Tensor): (B, K, H, W) distribution, class 0 background.

        Returns:
            Tensor: (B, K, H, W) distribution, at most two classes non-zero.
        """
        if probs.shape[1] < 2:
            return probs
        level = probs[:, 1:].max(1, keepdim=True).indices + 1
        out = torch.zeros_like(probs)
        out[:, :1] = probs[:, :1]
        out.scatter_(1, level, 1 - probs[:, :1])
        return out

    def fuse(self, teacher_probs: Tensor, vlm_maps: Tensor,
             vlm_labels: Tensor) -> Dict[str, Tensor]:
        """Return ``dict(probs=..., confidence=...)``, optionally with
        ``valid`` and ``log``."""
        raise NotImplementedError

    def forward(self, teacher_probs: Tensor, vlm_maps: Tensor,
                vlm_labels: Tensor) -> Dict[str, Tensor]:
        """Check shapes, then :meth:`fuse`.

        Args:
            teacher_probs (Tensor): (B, K, H, W) softmax probabilities.
            vlm_maps (Tensor): (B, K, H, W) sigmoid class maps.
            vlm_labels (Tensor): (B, H, W) unified VLM labels.

        Returns:
            dict[str, Tensor]: ``probs`` (B, K, H, W), ``confidence``
            (B, H, W), where the rule excludes pixels ``valid``
            (B, H, W, bool), and where it has some ``log`` (dict of scalar
            tensors).
        """
        if teacher_probs.shape != vlm_maps.shape:
            raise ValueError(
                f'{type(self).__name__}: teacher probabilities '
                f'{tuple(teacher_probs.shape)} and VLM maps '
                f'{tuple(vlm_maps.shape)} differ; the student and the '
                'stage-1 VLM must predict the same classes at the same size.')
        if vlm_labels.shape != teacher_probs.shape[:1] + teacher_probs.shape[2:]:
            raise ValueError(f'{type(self).__name__}: vlm_labels has shape '
                             f'{tuple(vlm_labels.shape)}, expected '
                             f'(B, H, W) of {tuple(teacher_probs.shape)}.')
        with torch.no_grad():
            return self.fuse(teacher_probs.float(), vlm_maps.float(),
                             vlm_labels)
