"""CutMix for unlabelled batches and their pseudo-label targets."""
from typing import Dict, List, Sequence, Tuple

import torch
from torch import Tensor


def cutmix_boxes(batch: int, height: int, width: int, prob: float,
                 area_range: Tuple[float, float] = (0.02, 0.4),
                 device=None) -> Tensor:
    """Random CutMix box masks, one per sample.

    Args:
        batch (int): Number of samples.
        height (int): Image height.
        width (int): Image width.
        prob (float): Probability that a sample gets a box at all.
        area_range (tuple[float, float]): Range of the box area as a
            fraction of the image.
        device: Device of the returned mask.

    Returns:
        Tensor: Bool mask (B, H, W); True where the partner's pixels are
        pasted.
    """
    mask = torch.zeros(batch, height, width, dtype=torch.bool, device=device)
    for i in range(batch):
        if torch.rand(()) >= prob:
            continue
        area = float(torch.empty(()).uniform_(*area_range)) * height * width
        aspect = float(torch.empty(()).uniform_(0.3, 1 / 0.3))
        h = min(height, max(1, int(round((area * aspect)**0.5))))
        w = min(width, max(1, int(round((area / aspect)**0.5))))
        y = int(torch.randint(0, height - h + 1, ()))
        x = int(torch.randint(0, width - w + 1, ()))
        mask[i, y:y + h, x:x + w] = True
    return mask


def cutmix(inputs: Tensor, targets: Sequence[Dict[str, Tensor]], prob: float,
           area_range: Tuple[float, float] = (0.02, 0.4)
           ) -> Tuple[Tensor, List[Dict[str, Tensor]]]:
    """Paste a box of a partner sample (the batch rolled by one) into each.

    The same boxes are applied to the images and to every per-pixel tensor
    of every target dict (``probs`` (B, K, H, W), ``labels`` and
    ``weight`` (B, H, W)), so all targets stay aligned with the mixed
    images; other entries pass through. With fewer than 2 samples or
    ``prob == 0`` nothing changes.

    Args:
        inputs (Tensor): Images (B, C, H, W).
        targets (Sequence[dict[str, Tensor]]): Targets of ``inputs``.
        prob (float): Probability of mixing each sample.
        area_range (tuple[float, float]): Box area range, as a fraction.

    Returns:
        tuple: Mixed images and the list of mixed targets.
    """
    b, _, h, w = inputs.shape
    if b < 2 or prob <= 0:
        return inputs, list(targets)
    box = cutmix_boxes(b, h, w, prob, area_range, device=inputs.device)
    partner = torch.roll(torch.arange(b, device=inputs.device), 1)

    def mix(x: Tensor) -> Tensor:
        m = box if x.dim() == 3 else box.unsqueeze(1)
        return torch.where(m, x[partner], x)

    def mix_target(t: Dict[str, Tensor]) -> Dict[str, Tensor]:
        return {
            k: mix(v) if torch.is_tensor(v) and v.dim() in (3, 4)
            and v.shape[0] == b and tuple(v.shape[-2:]) == (h, w) else v
            for k, v in t.items()
        }

    return mix(inputs), [mix_target(t) for t in targets]
