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


# ------------------------------------------------- ReliabilityWeightedFusion
def _expert_maps(teacher_labels, vlm_labels, k=3):
    """Teacher probabilities 0.7 on its label (0.15 elsewhere), VLM maps 0.9
    on its label (0.1 elsewhere), from label maps (1, H, W)."""
    q_t = torch.full((1, k) + teacher_labels.shape[1:], 0.15)
    q_t.scatter_(1, teacher_labels.unsqueeze(1), 0.7)
    b = torch.full((1, k) + vlm_labels.shape[1:], 0.1)
    b.scatter_(1, vlm_labels.unsqueeze(1), 0.9)
    return q_t, b, vlm_labels


def _columns(spec, width=8):
    """A (1, 4, width) label map: ``spec`` maps class -> columns."""
    lab = torch.zeros(1, 4, width, dtype=torch.long)
    for k, cols in spec.items():
        lab[..., cols] = k
    return lab


def test_largest_component_share_by_hand():
    from cps4.models.utils import largest_component_share
    lab = _columns({1: [0, 1, 6], 2: [3]})
    lab[0, 0, 3] = 0  # class 2: 3 pixels, one column
    largest, total = largest_component_share(lab, 4)
    # class 1: columns 0-1 (8 px) and column 6 (4 px); class 3 absent
    assert largest[1:].tolist() == [8, 3, 0]
    assert total[1:].tolist() == [12, 3, 0]
    # background: columns 2, 4, 5, 7 and the top pixel of column 3, which
    # joins columns 2 and 4: one region of 13 px, and column 7 (4 px)
    assert total[0] == 17 and largest[0] == 13
    # 8-connectivity: pixels touching at a corner are one region
    diagonal = torch.tensor([[[1, 0], [0, 1]]])
    largest, total = largest_component_share(diagonal, 2)
    assert largest[1] == total[1] == 2


def test_reliability_fusion_is_the_teacher_where_the_teacher_is_better():
    # teacher: class 1 and 2 one region each; VLM: class 2 split in two
    teacher = _columns({1: [0, 1], 2: [4, 5]})
    vlm = _columns({1: [0, 1], 2: [4, 6]})
    q_t, b, lab = _expert_maps(teacher, vlm)
    rule = MODELS.build(dict(type='ReliabilityWeightedFusion', momentum=0.0,
                             min_pixels=4))
    out = rule(q_t, b, lab)
    assert torch.equal(out['probs'], q_t)  # exactly the base method
    assert torch.equal(out['confidence'], q_t.max(1)[0])
    assert float(out['log']['pl_vlm_weight']) == 0
    # running reliabilities (teacher, VLM): class 2 shares 1.0 and 0.5
    torch.testing.assert_close(rule.reliability[:, 1:],
                               torch.tensor([[1.0, 1.0], [1.0, 0.5]]))


def test_reliability_fusion_is_the_confidence_vote_where_the_vlm_is_better():
    teacher = _columns({1: [0, 2], 2: [4, 6]})  # both classes split
    vlm = _columns({1: [0, 1], 2: [4, 5]})
    q_t, b, lab = _expert_maps(teacher, vlm)
    rule = MODELS.build(dict(type='ReliabilityWeightedFusion',
                             vlm_weight=4.0, margin=0.5, momentum=0.0,
                             min_pixels=4))
    out = rule(q_t, b, lab)
    vote = MODELS.build(dict(type='ConfidenceWeightedFusion',
                             vlm_weight=4.0))(q_t, b, lab)
    torch.testing.assert_close(out['probs'], vote['probs'])
    assert float(out['log']['pl_vlm_weight']) == 4.0


def test_reliability_fusion_per_class_by_hand():
    # class 1: both one region (gap 0 -> weight 0); class 2: teacher split
    # (share 0.5), VLM one region (1.0): gap 0.5 = margin -> weight 4;
    # background: mean of the foreground weights, 2
    teacher = _columns({1: [0, 1], 2: [4, 6]})
    vlm = _columns({1: [0, 1], 2: [4, 5]})
    q_t, b, lab = _expert_maps(teacher, vlm)
    rule = MODELS.build(dict(type='ReliabilityWeightedFusion',
                             vlm_weight=4.0, margin=0.5, momentum=0.0,
                             min_pixels=4))
    out = rule(q_t, b, lab)
    assert float(out['log']['pl_vlm_weight']) == 2.0  # mean of 0 and 4
    # column 6: teacher says 2 (0.15, 0.15, 0.7), VLM says background
    # (maps 0.9, 0.1, 0.1): c_t = 0.7, c_v = 0.9, q_v = (9, 1, 1) / 11
    votes = torch.tensor([0.7 * 0.15 + 2 * 0.9 * 9 / 11,
                          0.7 * 0.15 + 0 * 0.9 * 1 / 11,
                          0.7 * 0.70 + 4 * 0.9 * 1 / 11])
    torch.testing.assert_close(out['probs'][0, :, 0, 6],
                               votes / votes.sum(), atol=1e-6, rtol=0)
    assert out['probs'][0, :, 0, 6].argmax() == 0  # the VLM wins here
    # column 1: both say class 1 -> class 1 stays
    assert out['probs'][0, :, 0, 1].argmax() == 1


def test_reliability_fusion_running_mean_and_unseen_classes():
    rule = MODELS.build(dict(type='ReliabilityWeightedFusion',
                             momentum=0.5, min_pixels=4))
    vlm = _columns({1: [0, 1], 2: [4, 5]})
    # batch 1: teacher class 2 split (0.5); batch 2: one region (1.0)
    rule(*_expert_maps(_columns({1: [0, 1], 2: [4, 6]}), vlm))
    rule(*_expert_maps(_columns({1: [0, 1], 2: [4, 5]}), vlm))
    assert float(rule.reliability[0, 2]) == pytest.approx(0.75)
    # batch 3: class 2 drawn by no expert -> its reliability is kept
    rule(*_expert_maps(_columns({1: [0, 1]}), _columns({1: [0, 1]})))
    assert float(rule.reliability[0, 2]) == pytest.approx(0.75)
    # a class only the VLM draws scores 0 for the teacher
    rule(*_expert_maps(_columns({1: [0, 1]}), vlm))
    assert float(rule.reliability[0, 2]) == pytest.approx(0.375)
    with pytest.raises(ValueError, match='margin'):
        MODELS.build(dict(type='ReliabilityWeightedFusion', margin=0))


def test_foreground_first_by_hand():
    from cps4.models.pseudo_label.base_fusion import BaseFusion

    # pixel 0: two levels share the foreground, each below background;
    # pixel 1: background holds more than half the mass
    q = torch.tensor([[0.40, 0.35, 0.25],
                      [0.60, 0.10, 0.30]]).T.reshape(1, 3, 1, 2)
    out = BaseFusion.foreground_first(q)
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([0.4, 0.6, 0.]))
    torch.testing.assert_close(out[0, :, 0, 1], torch.tensor([0.6, 0., 0.4]))
    assert out[0, :, 0, 0].argmax() == 1 and q[0, :, 0, 0].argmax() == 0
    assert out[0, :, 0, 1].argmax() == 0
    torch.testing.assert_close(out.sum(1), torch.ones(1, 1, 2))


def test_reliability_fusion_foreground_first():
    # the VLM is the more reliable expert on class 2 (as in the by-hand
    # test above): the option reshapes the fused distribution; where the
    # teacher is better it reshapes the teacher's own distribution
    teacher = _columns({1: [0, 1], 2: [4, 6]})
    vlm = _columns({1: [0, 1], 2: [4, 5]})
    q_t, b, lab = _expert_maps(teacher, vlm)
    cfg = dict(type='ReliabilityWeightedFusion', vlm_weight=4.0, margin=0.5,
               momentum=0.0, min_pixels=4)
    plain = MODELS.build(cfg)(q_t, b, lab)
    first = MODELS.build(dict(cfg, foreground_first=True))(q_t, b, lab)
    from cps4.models.pseudo_label.base_fusion import BaseFusion
    torch.testing.assert_close(first['probs'],
                               BaseFusion.foreground_first(plain['probs']))
    torch.testing.assert_close(first['confidence'],
                               first['probs'].max(1)[0])
    q_t, b, lab = _expert_maps(_columns({1: [0, 1], 2: [4, 5]}),
                               _columns({1: [0, 1], 2: [4, 6]}))
    out = MODELS.build(dict(cfg, foreground_first=True))(q_t, b, lab)
    torch.testing.assert_close(out['probs'], BaseFusion.foreground_first(q_t))
