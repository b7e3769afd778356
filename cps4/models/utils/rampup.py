"""Loss-weight ramp-ups driven by the runner's iteration counter."""
import math
from typing import Optional

from mmengine.logging import MessageHub


def sigmoid_rampup(current: float, length: float) -> float:
    r"""Sigmoid-shaped ramp from 0 to 1 over ``length`` steps.

    ``exp(-5 (1 - t)^2)`` with ``t = clip(current / length, 0, 1)``, the
    ramp of temporal ensembling (Laine and Aila, ICLR 2017) used by most
    semi-supervised segmentation work. ``length <= 0`` means no ramp.

    Args:
        current (float): Current step (iteration).
        length (float): Number of steps until the weight reaches 1.

    Returns:
        float: The factor in [0, 1] (exactly 1 from ``length`` on).
    """
    if length <= 0:
        return 1.0
    t = min(max(float(current) / length, 0.0), 1.0)
    return float(math.exp(-5.0 * (1.0 - t)**2))


def linear_rampup(current: float, length: float) -> float:
    """Linear ramp from 0 to 1 over ``length`` steps (1 if ``length <= 0``).

    Args:
        current (float): Current step (iteration).
        length (float): Number of steps until the weight reaches 1.

    Returns:
        float: The factor in [0, 1].
    """
    if length <= 0:
        return 1.0
    return min(max(float(current) / length, 0.0), 1.0)


def current_iter() -> Optional[int]:
    """The training iteration the runner last published, or None.

    mmengine's ``RuntimeInfoHook`` stores ``runner.iter`` in the current
    :class:`MessageHub` before every training iteration. Outside a runner
    (a loss called by hand, a test) there is no such value.
    """
    value = MessageHub.get_current_instance().get_info('iter')
    return None if value is None else int(value)


def rampup_factor(length: int, shape: str = 'sigmoid') -> float:
    """Ramp factor at the runner's current iteration.

    Args:
        length (int): Ramp length in iterations; 0 disables the ramp.
        shape (str): ``'sigmoid'`` or ``'linear'``.

    Returns:
        float: The factor; 1 when ``length`` is 0 or when no runner has
        published an iteration (the loss is then evaluated at full weight,
        as at the end of training).
    """
    if shape not in ('sigmoid', 'linear'):
        raise ValueError(
            f"ramp-up shape must be 'sigmoid' or 'linear', got {shape!r}")
    if length <= 0:
        return 1.0
    it = current_iter()
    if it is None:
        return 1.0
    fn = sigmoid_rampup if shape == 'sigmoid' else linear_rampup
    return fn(it, length)
