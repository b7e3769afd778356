import pytest
import torch

from cps4.models.losses import SoftDiceLoss, soft_dice_loss


def test_matches_hand_computed_value():
    # 1 image, 2 pixels, 2 classes. Logits chosen so softmax is exact.
    logits = torch.log(torch.tensor([[[[0.75, 0.5]], [[0.25, 0.5]]]]))
    target = torch.tensor([[[1, 0]]])
    # class 1: p = (0.25, 0.5), y = (1, 0): Dice = 2*0.25 / (0.75 + 1)
    expected = 1 - (2 * 0.25) / 1.75
    loss = soft_dice_loss(logits, target, smooth=0.0)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    # with background: class 0 Dice = 2*0.5 / (1.25 + 1)
    both = 1 - 0.5 * ((2 * 0.25) / 1.75 + (2 * 0.5) / 2.25)
    loss_bg = soft_dice_loss(logits, target, include_background=True,
                             smooth=0.0)
    assert loss_bg.item() == pytest.approx(both, abs=1e-6)


def test_ignored_pixels_do_not_count():
    logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    ignored = target.clone()
    ignored[:, 0, :] = 255
    logits_changed = logits.clone()
    logits_changed[:, :, 0, :] = 100 * torch.randn(2, 3, 4)
    a = soft_dice_loss(logits, ignored)
    b = soft_dice_loss(logits_changed, ignored)
    assert a.item() == pytest.approx(b.item(), abs=1e-6)


def test_perfect_prediction_and_module_wrapper():
    target = torch.randint(0, 4, (2, 8, 8))
    logits = 50 * torch.nn.functional.one_hot(target, 4).permute(0, 3, 1, 2)
    module = SoftDiceLoss(loss_weight=2.0)
    assert module.loss_name == 'loss_dice'
    assert module(logits.float(), target).item() == pytest.approx(0, abs=1e-5)
    worst = module(-logits.float(), target)
    assert worst.item() > 1.9
