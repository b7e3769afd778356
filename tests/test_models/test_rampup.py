import math

import pytest
import torch
from mmengine.logging import MessageHub

from cps4.models.losses import PixelAttentionLoss, TokenAttentionLoss
from cps4.models.utils import (current_iter, linear_rampup, rampup_factor,
                               sigmoid_rampup)


@pytest.fixture
def hub_at():
    """Publish a training iteration the way RuntimeInfoHook does."""
    hub = MessageHub.get_instance('test_rampup')

    def set_iter(it):
        hub.update_info('iter', it)
        return hub

    yield set_iter
    hub.update_info('iter', None)


def test_ramp_shapes():
    assert sigmoid_rampup(0, 100) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(50, 100) == pytest.approx(math.exp(-1.25))
    assert sigmoid_rampup(100, 100) == 1.0
    assert sigmoid_rampup(500, 100) == 1.0
    assert sigmoid_rampup(3, 0) == 1.0
    assert linear_rampup(25, 100) == 0.25
    assert linear_rampup(-5, 100) == 0.0
    assert linear_rampup(7, 0) == 1.0


def test_rampup_factor_reads_runner_iter(hub_at):
    hub_at(None)
    assert current_iter() is None
    assert rampup_factor(100) == 1.0  # no runner: full weight
    hub_at(50)
    assert current_iter() == 50
    assert rampup_factor(100) == pytest.approx(math.exp(-1.25))
    assert rampup_factor(100, 'linear') == 0.5
    assert rampup_factor(0) == 1.0
    with pytest.raises(ValueError, match='shape'):
        rampup_factor(100, 'cosine')


def test_pixel_loss_ramps_bce_and_dice_not_ce(hub_at):
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4)
    seg = torch.randint(0, 3, (2, 4, 4))
    full = PixelAttentionLoss(return_terms=True)(logits, seg)
    hub_at(50)
    ramped = PixelAttentionLoss(return_terms=True, rampup_iters=100)(
        logits, seg)
    f = math.exp(-1.25)
    assert ramped['loss_pixel_ce'] == pytest.approx(full['loss_pixel_ce'])
    assert ramped['loss_pixel_bce'] == pytest.approx(
        f * full['loss_pixel_bce'])
    assert ramped['loss_pixel_dice'] == pytest.approx(
        f * full['loss_pixel_dice'])


def test_token_loss_ramps(hub_at):
    torch.manual_seed(0)
    attn = torch.randn(2, 3, 16).softmax(-1)
    seg = torch.zeros(2, 8, 8, dtype=torch.long)
    seg[:, 2:6, 2:6] = 1
    full = TokenAttentionLoss()(attn, seg, (4, 4))
    hub_at(25)
    ramped = TokenAttentionLoss(rampup_iters=100)(attn, seg, (4, 4))
    assert full > 0
    assert ramped == pytest.approx(math.exp(-5 * 0.75**2) * full)
