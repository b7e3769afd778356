"""Token- and pixel-level attention losses against hand-computed values."""
import math

import pytest
import torch
import torch.nn.functional as F

from cps4.models.losses import (PixelAttentionLoss, TokenAttentionLoss,
                                pixel_attention_loss_terms,
                                token_attention_target)
from mmseg.registry import MODELS

# 4x4 slice, 2x2 token grid (each token covers a 2x2 block of pixels).
# Class 1 covers all of token 0 and half of token 1; background the rest.
SEG = torch.tensor([[[1, 1, 1, 0],
                     [1, 1, 1, 0],
                     [0, 0, 0, 0],
                     [0, 0, 0, 0]]])
# Token areas: class 1 = (1, .5, 0, 0) -> target (2/3, 1/3, 0, 0);
# class 0 = (0, .5, 1, 1) -> target (0, .2, .4, .4).
ATTN_BG = [0.25, 0.25, 0.25, 0.25]
ATTN_FG = [0.5, 0.25, 0.125, 0.125]
KL_BG = 0.2 * math.log(0.2 / 0.25) + 2 * 0.4 * math.log(0.4 / 0.25)
KL_FG = (2 / 3) * math.log((2 / 3) / 0.5) + (1 / 3) * math.log(
    (1 / 3) / 0.25)  # = log(4/3)


def test_token_target_area_pooling():
    target, present, fg = token_attention_target(SEG, 3, (2, 2))
    assert torch.allclose(target[0, 0], torch.tensor([0, .2, .4, .4]))
    assert torch.allclose(target[0, 1], torch.tensor([2 / 3, 1 / 3, 0, 0]))
    assert target[0, 2].sum() == 0  # absent: zeros, never NaN
    assert present.tolist() == [[True, True, False]]
    assert fg.tolist() == [[True, True, False, False]]


def test_token_kl_hand_computed():
    attn = torch.tensor([[ATTN_BG, ATTN_FG]])
    loss = TokenAttentionLoss(eps=1e-12)
    assert loss.loss_name == 'loss_token'
    expected = 0.5 * (KL_BG + KL_FG)
    assert loss(attn, SEG, (2, 2)).item() == pytest.approx(expected, abs=1e-6)
    # (B, K, h, w) attention needs no token_hw; loss_weight scales.
    loss2 = TokenAttentionLoss(loss_weight=2.0, eps=1e-12)
    assert loss2(attn.view(1, 2, 2, 2), SEG).item() == pytest.approx(
        2 * expected, abs=1e-6)
    # without background only class 1 counts
    no_bg = TokenAttentionLoss(include_background=False, eps=1e-12)
    assert no_bg(attn, SEG, (2, 2)).item() == pytest.approx(KL_FG, abs=1e-6)


def test_token_absent_class_hand_computed():
    a_absent = [0.5, 0.1, 0.2, 0.2]  # 0.6 of its mass on spine tokens 0, 1
    attn = torch.tensor([[ATTN_BG, ATTN_FG, a_absent]])
    loss = TokenAttentionLoss(absent_weight=0.5, eps=1e-12,
                              return_terms=True)
    terms = loss(attn, SEG, (2, 2))
    assert set(terms) == {'loss_token_kl', 'loss_token_absent'}
    assert terms['loss_token_kl'].item() == pytest.approx(
        0.5 * (KL_BG + KL_FG), abs=1e-6)
    assert terms['loss_token_absent'].item() == pytest.approx(
        0.5 * -math.log(1 - 0.6), abs=1e-6)
    scalar = TokenAttentionLoss(absent_weight=0.5, eps=1e-12)(
        attn, SEG, (2, 2))
    assert scalar.item() == pytest.approx(
        sum(t.item() for t in terms.values()), abs=1e-6)

    # A second, background-only slice has no spine to avoid: its absent
    # classes (1 and 2) are not counted, its background is a present class.
    seg2 = torch.cat([SEG, torch.zeros_like(SEG)])
    attn2 = torch.cat([attn, torch.tensor([[ATTN_BG, ATTN_FG, a_absent]])])
    terms2 = loss(attn2, seg2, (2, 2))
    kl_bg_uniform = 0.0  # target of an all-background slice is uniform
    assert terms2['loss_token_kl'].item() == pytest.approx(
        (KL_BG + KL_FG + kl_bg_uniform) / 3, abs=1e-6)
    assert terms2['loss_token_absent'].item() == pytest.approx(
        0.5 * -math.log(0.4), abs=1e-6)


def test_token_ignore_pixels_excluded():
    seg = SEG.clone()
    seg[0, 0, 2] = 255  # one class-1 pixel of token 1 ignored
    seg[0, 3, 3] = 255  # one background pixel of token 3 ignored
    # class 1 areas (1, .25, 0, 0) -> target (.8, .2, 0, 0)
    # class 0 areas (0, .5, 1, .75) -> target (0, 2/9, 4/9, 1/3)
    target, _, _ = token_attention_target(seg, 2, (2, 2))
    assert torch.allclose(target[0, 1], torch.tensor([.8, .2, 0, 0]))
    assert torch.allclose(target[0, 0], torch.tensor([0, 2 / 9, 4 / 9, 1 / 3]))
    attn = torch.tensor([[ATTN_BG, ATTN_FG]])
    kl_fg = .8 * math.log(.8 / .5) + .2 * math.log(.2 / .25)
    kl_bg = sum(t * math.log(t / .25) for t in (2 / 9, 4 / 9, 1 / 3))
    loss = TokenAttentionLoss(eps=1e-12)(attn, seg, (2, 2))
    assert loss.item() == pytest.approx(0.5 * (kl_fg + kl_bg), abs=1e-6)


def test_token_perfect_attention_and_gradient():
    seg = torch.randint(0, 4, (2, 16, 16))
    seg[0][seg[0] == 3] = 0  # class 3 absent from slice 0
    target, present, _ = token_attention_target(seg, 4, (4, 4))
    assert not present[0, 3]
    attn = torch.where(present.unsqueeze(2), target,
                       torch.full_like(target, 1 / 16))
    loss = TokenAttentionLoss(return_terms=True)(attn, seg, (4, 4))
    assert loss['loss_token_kl'].item() == pytest.approx(0, abs=1e-7)

    scores = torch.randn(2, 4, 16, requires_grad=True)
    out = TokenAttentionLoss()(scores.softmax(-1), seg, (4, 4))
    out.backward()
    assert scores.grad is not None
    assert torch.isfinite(scores.grad).all() and scores.grad.abs().sum() > 0


def test_token_nothing_present_keeps_graph():
    scores = torch.randn(1, 3, 4, requires_grad=True)
    seg = torch.full((1, 4, 4), 255)
    loss = TokenAttentionLoss()(scores.softmax(-1), seg, (2, 2))
    assert loss.item() == 0 and loss.requires_grad
    loss.backward()
    assert torch.equal(scores.grad, torch.zeros_like(scores))


def test_token_bad_shapes_and_registry():
    with pytest.raises(ValueError):
        TokenAttentionLoss()(torch.rand(1, 2, 4), SEG, (2, 3))
    with pytest.raises(ValueError):
        TokenAttentionLoss()(torch.rand(1, 2, 4), SEG)
    with pytest.raises(ValueError):
        TokenAttentionLoss(loss_name='token')
    built = MODELS.build(dict(type='TokenAttentionLoss', absent_weight=0.1))
    assert isinstance(built, TokenAttentionLoss)
    assert built.absent_weight == 0.1


# Pixel loss: 1 image, 2 classes, 2x2 pixels.
S = [[[0.0, 1.0], [2.0, -1.0]],   # S_0
     [[1.0, 0.0], [-1.0, 1.0]]]  # S_1
Y = [[0, 1], [1, 0]]


def _sig(x):
    return 1 / (1 + math.exp(-x))


def _softplus(x):
    return math.log1p(math.exp(x))


def _hand_terms(pixels, pos_weight=1.0):
    """BCE, Dice (class 1 only), CE over a list of (row, col) pixels."""
    bce = 0.0
    for i, j in pixels:
        for k in range(2):
            s = S[k][i][j]
            bce += pos_weight * _softplus(-s) if Y[i][j] == k \
                else _softplus(s)
    bce /= 2 * len(pixels)
    inter = sum(_sig(S[1][i][j]) for i, j in pixels if Y[i][j] == 1)
    psum = sum(_sig(S[1][i][j]) for i, j in pixels)
    ysum = sum(1 for i, j in pixels if Y[i][j] == 1)
    dice = 1 - 2 * inter / (psum + ysum)
    ce = 0.0
    for i, j in pixels:
        lse = math.log(math.exp(S[0][i][j]) + math.exp(S[1][i][j]))
        ce += lse - S[Y[i][j]][i][j]
    ce /= len(pixels)
    return bce, dice, ce


ALL = [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_pixel_terms_hand_computed():
    logits, seg = torch.tensor([S]), torch.tensor([Y])
    bce, dice, ce = _hand_terms(ALL)
    loss = PixelAttentionLoss(smooth=0.0, bce_weight=2.0, dice_weight=3.0,
                              ce_weight=0.5, loss_weight=2.0,
                              return_terms=True)
    terms = loss(logits, seg)
    assert set(terms) == {'loss_pixel_bce', 'loss_pixel_dice',
                          'loss_pixel_ce'}
    assert terms['loss_pixel_bce'].item() == pytest.approx(4 * bce, abs=1e-6)
    assert terms['loss_pixel_dice'].item() == pytest.approx(
        6 * dice, abs=1e-6)
    assert terms['loss_pixel_ce'].item() == pytest.approx(ce, abs=1e-6)
    scalar = PixelAttentionLoss(smooth=0.0)(logits, seg)
    assert PixelAttentionLoss().loss_name == 'loss_pixel'
    assert scalar.item() == pytest.approx(bce + dice + ce, abs=1e-6)

    # background in the Dice mean: class 0 Dice by hand
    inter0 = sum(_sig(S[0][i][j]) for i, j in ALL if Y[i][j] == 0)
    psum0 = sum(_sig(S[0][i][j]) for i, j in ALL)
    dice0 = 1 - 2 * inter0 / (psum0 + 2)
    raw = pixel_attention_loss_terms(logits, seg, include_background=True,
                                     smooth=0.0)
    assert raw['dice'].item() == pytest.approx((dice0 + dice) / 2, abs=1e-6)

    # positive weight in the BCE
    bce_pw, _, _ = _hand_terms(ALL, pos_weight=2.0)
    raw = pixel_attention_loss_terms(logits, seg, pos_weight=2.0)
    assert raw['bce'].item() == pytest.approx(bce_pw, abs=1e-6)

    # background map left out of the BCE: class 1 only, divided by V
    bce1 = sum(_softplus(-S[1][i][j]) if Y[i][j] == 1 else _softplus(S[1][i][j])
               for i, j in ALL) / len(ALL)
    raw = pixel_attention_loss_terms(logits, seg, bce_background=False)
    assert raw['bce'].item() == pytest.approx(bce1, abs=1e-6)
    raw = pixel_attention_loss_terms(logits, seg, pos_weight=[2.0, 2.0])
    assert raw['bce'].item() == pytest.approx(bce_pw, abs=1e-6)


def test_pixel_ignore_pixels_excluded():
    logits, seg = torch.tensor([S]), torch.tensor([Y])
    seg[0, 1, 1] = 255
    bce, dice, ce = _hand_terms([(0, 0), (0, 1), (1, 0)])
    terms = PixelAttentionLoss(smooth=0.0, return_terms=True)(logits, seg)
    assert terms['loss_pixel_bce'].item() == pytest.approx(bce, abs=1e-6)
    assert terms['loss_pixel_dice'].item() == pytest.approx(dice, abs=1e-6)
    assert terms['loss_pixel_ce'].item() == pytest.approx(ce, abs=1e-6)
    changed = logits.clone()
    changed[0, :, 1, 1] = torch.tensor([50.0, -70.0])
    assert PixelAttentionLoss()(changed, seg).item() == pytest.approx(
        PixelAttentionLoss()(logits, seg).item(), abs=1e-6)


def test_pixel_upsampling_matches_manual():
    torch.manual_seed(0)
    low = torch.randn(2, 3, 4, 4)
    seg = torch.randint(0, 3, (2, 8, 8))
    seg[:, 0] = 255
    up = F.interpolate(low, size=(8, 8), mode='bilinear',
                       align_corners=False)
    loss = PixelAttentionLoss(include_background=True, return_terms=True)
    a, b = loss(low, seg), loss(up, seg)
    for key in a:
        assert a[key].item() == pytest.approx(b[key].item(), abs=1e-6)
    # (B, 1, H, W) labels, as mmseg stacks gt_sem_seg, give the same loss
    c = loss(low, seg.unsqueeze(1))
    for key in a:
        assert a[key].item() == pytest.approx(c[key].item(), abs=1e-6)


def test_pixel_dice_skips_absent_classes():
    logits, seg = torch.tensor([S]), torch.tensor([Y])
    _, dice, _ = _hand_terms(ALL)
    # add class 2, absent from the labels: Dice stays class 1's alone,
    # whatever class 2 predicts (its false positives are BCE's and CE's).
    for fill in (-5.0, 5.0):
        extra = torch.cat([logits, torch.full((1, 1, 2, 2), fill)], dim=1)
        raw = pixel_attention_loss_terms(extra, seg, smooth=0.0,
                                         terms=('dice', ))
        assert set(raw) == {'dice'}
        assert raw['dice'].item() == pytest.approx(dice, abs=1e-6)
    # only background present and background excluded: 0 with graph kept
    x = logits.clone().requires_grad_(True)
    terms = PixelAttentionLoss(return_terms=True)(x, torch.zeros(1, 2, 2,
                                                                 dtype=int))
    assert terms['loss_pixel_dice'].item() == 0
    sum(terms.values()).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_pixel_zero_weight_terms_and_registry():
    loss = MODELS.build(dict(type='PixelAttentionLoss', dice_weight=0.0,
                             return_terms=True))
    assert isinstance(loss, PixelAttentionLoss)
    terms = loss(torch.tensor([S]), torch.tensor([Y]))
    assert set(terms) == {'loss_pixel_bce', 'loss_pixel_ce'}
    all_ignored = torch.full((1, 2, 2), 255)
    x = torch.tensor([S], requires_grad=True)
    out = PixelAttentionLoss()(x, all_ignored)
    assert out.item() == 0
    out.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
