"""Relabel the spine units of a slice in their anatomical order."""
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmseg.registry import MODELS
from scipy import ndimage
from torch import Tensor

from ...datasets.spine_classes import anatomical_order
from ..utils.label_components import EIGHT_CONNECTED


@MODELS.register_module()
class AnatomicalOrderRefiner:
    """Give the units of each slice levels that run in anatomical order.

    Spine units are named by position: in a sagittal slice L1 lies above
    L2, L2 above L3, and so on. Networks trained on one or two labelled
    cases confuse neighbouring levels (two bodies called L4, L3 below L4).
    Per slice, the refiner takes the connected components of every ordered
    class in the arg-max map (8-connected, at least ``min_pixels``),
    sorts them along ``axis`` from superior to inferior, and by dynamic
    programming gives them strictly increasing levels that maximise the
    summed log-probability of their pixels; a component may instead be
    skipped, at ``log(skip_prob)`` per pixel, when no level in order fits
    it. Assigned components take their level's class; skipped ones keep
    their label and get weight 0 (left out of a pseudo-label loss);
    background and components below ``min_pixels`` are untouched.

    Used in stage 2 on pseudo labels (``model.pseudo_label_refiner``) and
    at test time on any model's predictions (``VolumeDiceMetric``'s
    ``refiner``), the "+order" rows of the benchmark.

    Args:
        order (Sequence[str], optional): Class names from superior to
            inferior. Defaults to the classes of the dataset that have a
            place in :data:`cps4.datasets.spine_classes.SPINE_ORDER`
            (vertebrae and the discs between them).
        classes (Sequence[str], optional): The class names, in label
            order; can also be given later with :meth:`set_classes` (the
            segmentor passes its dataset's classes).
        axis (int): Image axis that runs superior to inferior (0: rows,
            top to bottom, as in the converted sagittal slices). Defaults
            to 0.
        min_pixels (int): Smaller components are left as they are.
            Defaults to 20.
        skip_prob (float): Per-pixel probability below which a component
            is better skipped than fitted. Defaults to 1e-3.
    """

    def __init__(self,
                 order: Optional[Sequence[str]] = None,
                 classes: Optional[Sequence[str]] = None,
                 axis: int = 0,
                 min_pixels: int = 20,
                 skip_prob: float = 1e-3) -> None:
        if axis not in (0, 1):
            raise ValueError(f'axis must be 0 (rows) or 1 (columns), got '
                             f'{axis!r}')
        if not 0 < skip_prob < 1:
            raise ValueError(f'skip_prob must be in (0, 1), got {skip_prob}')
        self.order_names = list(order) if order is not None else None
        self.axis, self.min_pixels = axis, int(min_pixels)
        self.skip_logp = float(np.log(skip_prob))
        self.order: Optional[List[int]] = None
        if classes is not None:
            self.set_classes(classes)

    def set_classes(self, classes: Sequence[str]) -> None:
        """Resolve the order to class indices of ``classes``.

        Raises:
            ValueError: A name of ``order`` is not a class, or fewer than
                two classes have an anatomical order.
        """
        classes = [str(c) for c in classes]
        if self.order_names is not None:
            unknown = [n for n in self.order_names if n not in classes]
            if unknown:
                raise ValueError(f'AnatomicalOrderRefiner: order names '
                                 f'{unknown} are not classes of {classes}')
            order = [classes.index(n) for n in self.order_names]
        else:
            order = anatomical_order(classes)
        if len(order) < 2:
            raise ValueError(
                f'AnatomicalOrderRefiner: the classes {classes} have no '
                'anatomical order (fewer than two spine units); give '
                'order=[names from superior to inferior]')
        self.order = order

    def __call__(self, probs: Tensor) -> Tuple[Tensor, Tensor]:
        """Refined labels and weights of a batch.

        Args:
            probs (Tensor): Class probabilities (B, K, H, W).

        Returns:
            tuple[Tensor, Tensor]: Labels (B, H, W), int64, and weights
            (B, H, W), float32 (0 on skipped components, else 1), on the
            device of ``probs``.
        """
        if self.order is None:
            raise RuntimeError('AnatomicalOrderRefiner: call set_classes() '
                               'first (or pass classes=...)')
        logp = probs.detach().float().clamp_min(1e-12).log().cpu().numpy()
        labels, weights = zip(*(self.refine_slice(x) for x in logp))
        return (torch.from_numpy(np.stack(labels)).to(probs.device),
                torch.from_numpy(np.stack(weights)).to(probs.device))

    def refine_slice(self, logp: np.ndarray) -> Tuple[np.ndarray,
                                                      np.ndarray]:
        """Refine one slice from its log-probabilities (K, H, W)."""
        labels = logp.argmax(0)
        weight = np.ones(labels.shape, np.float32)
        parts = self._components(labels)
        if not parts:
            return labels, weight
        ordered = logp[self.order]  # (L, H, W)
        scores = np.stack([ordered[:, p[0], p[1]].sum(1) for p, _ in parts])
        skips = np.array([self.skip_logp * len(p[0]) for p, _ in parts])
        for (pixels, _), level in zip(parts, self.best_levels(scores,
                                                               skips)):
            if level < 0:
                weight[pixels] = 0
            else:
                labels[pixels] = self.order[level]
        return labels, weight

    def _components(self, labels: np.ndarray) -> list:
        """(pixels, centroid along axis) of every ordered component,
        superior first."""
        parts = []
        for k in self.order:
            mask = labels == k
            if not mask.any():
                continue
            components, n = ndimage.label(mask, EIGHT_CONNECTED)
            for i in range(1, n + 1):
                pixels = np.nonzero(components == i)
                if len(pixels[0]) >= self.min_pixels:
                    parts.append((pixels, pixels[self.axis].mean()))
        return sorted(parts, key=lambda p: p[1])

    @staticmethod
    def best_levels(scores: np.ndarray, skips: np.ndarray) -> List[int]:
        """Strictly increasing levels (or -1: skipped) of components in
        order, maximising the summed score.

        Args:
            scores (np.ndarray): (N, L) score of component i at level j.
            skips (np.ndarray): (N,) score of skipping component i.

        Returns:
            list[int]: A level in ``[0, L)`` or -1 per component.
        """
        n, n_levels = scores.shape
        # best[j + 1]: best total so far with the last assigned level j
        # (best[0]: none assigned yet)
        best = np.full(n_levels + 1, -np.inf)
        best[0] = 0.0
        back = np.zeros((n, n_levels + 1), dtype=np.int64)
        for i in range(n):
            new = best + skips[i]  # skip: the last level stays
            back[i] = np.arange(n_levels + 1)
            # assign level j after a last level < j: the best state among
            # best[:j + 1] (first one on ties), tracked as a running argmax
            arg = np.zeros(n_levels, dtype=np.int64)
            for j in range(1, n_levels):
                arg[j] = j if best[j] > best[arg[j - 1]] else arg[j - 1]
            assign = best[arg] + scores[i]
            better = assign > new[1:]
            new[1:] = np.where(better, assign, new[1:])
            back[i, 1:] = np.where(better, arg, back[i, 1:])
            best = new
        levels, state = [], int(np.argmax(best))
        for i in range(n - 1, -1, -1):
            prev = int(back[i, state])
            levels.append(state - 1 if prev != state else -1)
            state = prev
        return levels[::-1]

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(order={self.order_names}, '
                f'axis={self.axis}, min_pixels={self.min_pixels})')
