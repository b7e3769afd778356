"""Fusion rules and CutMix on hand-made maps."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import cps4  # noqa: F401
from cps4.models.utils import cutmix


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmseg')


def _maps():
    """Two pixels, three classes.

    Pixel 0: teacher (0.2, 0.5, 0.3), VLM maps (0.1, 0.2, 0.9) -> VLM says 2.
    Pixel 1: teacher (0.1, 0.8, 0.1), VLM maps (0.1, 0.8, 0.1) -> both say 1.
    """
    q_t = torch.tensor([[0.2, 0.1], [0.5, 0.8], [0.3, 0.1]]).reshape(
        1, 3, 1, 2)
    b = torch.tensor([[0.1, 0.1], [0.2, 0.8], [0.9, 0.1]]).reshape(1, 3, 1, 2)
    vlm_labels = torch.tensor([[[2, 1]]])
    return q_t, b, vlm_labels


def test_product_fusion_by_hand():
    q_t, b, lab = _maps()
    out = MODELS.build(dict(type='ProductFusion'))(q_t, b, lab)
    # pixel 0: q_v = (0.1, 0.2, 0.9) / 1.2; q_t * q_v ∝ (0.02, 0.10, 0.27)
    expect0 = torch.tensor([0.02, 0.10, 0.27]) / 0.39
    torch.testing.assert_close(out['probs'][0, :, 0, 0], expect0,
                               atol=1e-5, rtol=0)
    assert out['probs'][0, :, 0, 0].argmax() == 2  # the VLM overrules
    # pixel 1: ∝ (0.01, 0.64, 0.01)
    expect1 = torch.tensor([0.01, 0.64, 0.01]) / 0.66
    torch.testing.assert_close(out['probs'][0, :, 0, 1], expect1,
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(out['confidence'][0, 0],
                               torch.stack([expect0.max(), expect1.max()]))
    # alpha = 0 gives the teacher back
    out0 = MODELS.build(dict(type='ProductFusion', alpha=0.0))(q_t, b, lab)
    torch.testing.assert_close(out0['probs'], q_t, atol=1e-5, rtol=0)


def test_confidence_weighted_fusion_by_hand():
    q_t, b, lab = _maps()
    out = MODELS.build(dict(type='ConfidenceWeightedFusion'))(q_t, b, lab)
    # pixel 0: c_t = 0.5, c_v = 0.9, q_v = (1, 2, 9) / 12
    q_v = torch.tensor([1., 2., 9.]) / 12
    expect = (0.5 * q_t[0, :, 0, 0] + 0.9 * q_v) / 1.4
    torch.testing.assert_close(out['probs'][0, :, 0, 0], expect,
                               atol=1e-5, rtol=0)
    assert out['confidence'][0, 0, 0] == pytest.approx(float(expect.max()),
                                                       abs=1e-5)
    torch.testing.assert_close(out['probs'].sum(1), torch.ones(1, 1, 2))


def test_agreement_fusion_by_hand():
    q_t, b, lab = _maps()
    out = MODELS.build(dict(type='AgreementFusion'))(q_t, b, lab)
    torch.testing.assert_close(out['probs'], q_t)
    torch.testing.assert_close(out['confidence'],
                               torch.tensor([[[0.5, 0.8]]]))
    # pixel 0 disagrees (teacher 1, VLM 2), pixel 1 agrees: the mask holds
    # at any threshold, 0 included
    assert out['valid'].tolist() == [[[False, True]]]
    for rule in ('ProductFusion', 'ConfidenceWeightedFusion'):
        assert 'valid' not in MODELS.build(dict(type=rule))(q_t, b, lab)


def test_fusion_shape_errors():
    q_t, b, lab = _maps()
    rule = MODELS.build(dict(type='ProductFusion'))
    with pytest.raises(ValueError, match='same classes'):
        rule(q_t, b[:, :2], lab)
    with pytest.raises(ValueError, match='vlm_labels'):
        rule(q_t, b, lab[0])
    with pytest.raises(ValueError, match='alpha'):
        MODELS.build(dict(type='ProductFusion', alpha=-1))


def test_cutmix_moves_images_and_targets_together():
    torch.manual_seed(0)
    x = torch.arange(4.).reshape(4, 1, 1, 1).expand(4, 1, 16, 16).clone()
    labels = torch.arange(4).reshape(4, 1, 1).expand(4, 16, 16).clone()
    probs = torch.nn.functional.one_hot(labels, 4).permute(0, 3, 1, 2).float()
    t = dict(labels=labels, probs=probs, weight=torch.ones(4, 16, 16),
             name='kept')
    mx, (mt, mt2) = cutmix(x, [t, t], prob=1.0)
    pasted = mx[:, 0] != x[:, 0]
    assert pasted.any(dim=(1, 2)).all()  # every sample got a box
    for i in range(4):
        src = (i - 1) % 4  # torch.roll by one
        assert torch.all(mx[i, 0][pasted[i]] == src)
        # the labels follow the pixels exactly
        torch.testing.assert_close(mt['labels'][i].float(), mx[i, 0])
        torch.testing.assert_close(mt['probs'][i].argmax(0).float(), mx[i, 0])
    torch.testing.assert_close(mt['labels'], mt2['labels'])
    assert mt['name'] == 'kept'
    same, (st, ) = cutmix(x, [t], prob=0.0)
    assert same is x and st is t
