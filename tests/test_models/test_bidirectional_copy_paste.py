"""BidirectionalCopyPaste: the mixed batches, their targets and the loss,
against hand-computed values."""
import math

import pytest
import torch
import torch.nn.functional as F

from cps4.models.ssl_strategies import BidirectionalCopyPaste, LabelledBatch

H = W = 6
K = 3


class RecordingNets:
    """The part of SemiNetworks the strategy uses: the student's logits,
    here a function of the mixed batch, recorded."""

    student = object()

    def __init__(self, logits_fn):
        self.logits_fn, self.seen = logits_fn, []

    def logits(self, net, x):
        self.seen.append(x.clone())
        return self.logits_fn(x)


def _box_rows_1_to_4(strategy):
    box = torch.zeros(H, W, dtype=torch.bool)
    box[1:5, 1:5] = True
    strategy.box_mask = lambda h, w, device=None: box
    return box


def _batch(n=4):
    """Labelled images 0 with ground truth 1, unlabelled images 1 with
    pseudo labels 2 (confident everywhere)."""
    labelled = LabelledBatch(torch.zeros(n, 1, H, W),
                             torch.ones(n, H, W, dtype=torch.long))
    weak = torch.ones(n, 1, H, W)
    target = dict(labels=torch.full((n, H, W), 2),
                  weight=torch.ones(n, H, W),
                  probs=torch.zeros(n, K, H, W))
    return labelled, weak, [target]


def test_box_and_halves():
    s = BidirectionalCopyPaste()
    torch.manual_seed(0)
    box = s.box_mask(12, 9)
    assert box.sum() == 8 * 6  # int(12 * 2/3) x int(9 * 2/3)
    rows, cols = box.any(1).nonzero(), box.any(0).nonzero()
    assert len(rows) == 8 and rows.max() - rows.min() == 7
    assert len(cols) == 6 and cols.max() - cols.min() == 5
    assert s.halves(4, 4) == (slice(0, 2), slice(2, 4))
    assert s.halves(4, 3) == (slice(0, 1), slice(1, 2))
    assert s.halves(1, 4) == (slice(0, 1), slice(0, 1))
    with pytest.raises(ValueError, match='patch_ratio'):
        BidirectionalCopyPaste(patch_ratio=1.0)


def test_inward_and_outward_batches_and_targets():
    s = BidirectionalCopyPaste()
    box = _box_rows_1_to_4(s)
    labelled, weak, targets = _batch()
    # logits that are right exactly where the target is: ground truth (1)
    # where the labelled image (0) shows, pseudo label (2) where the
    # unlabelled one (1) shows
    nets = RecordingNets(lambda x: 30.0 * F.one_hot(
        (1 + x[:, 0]).long(), K).permute(0, 3, 1, 2).float())
    losses = s.unsup_loss(nets, [], targets, weak, labelled=labelled)
    x = nets.seen[0]
    assert x.shape == (4, 1, H, W)  # halves a (2) and b (2)
    # inward: labelled slices with the unlabelled box
    assert torch.equal(x[:2, 0], box.float().expand(2, H, W))
    # outward: unlabelled slices with the labelled box
    assert torch.equal(x[2:, 0], (~box).float().expand(2, H, W))
    assert set(losses) == {'loss_unsup_bcp_in', 'loss_unsup_bcp_out'}
    for v in losses.values():
        assert float(v) < 1e-6
    # the same logits against swapped regions are far off
    wrong = RecordingNets(lambda x: 30.0 * F.one_hot(
        (2 - x[:, 0]).long(), K).permute(0, 3, 1, 2).float())
    for v in s.unsup_loss(wrong, [], targets, weak,
                          labelled=labelled).values():
        assert float(v) > 10


def test_loss_of_uniform_logits_by_hand():
    """Two classes, logits 0: CE is ln 2 on every pixel; in each region
    the present class has Dice loss 1 - N / (0.25 N + N) = 0.2 and the
    absent one 1 - 0 / 0.25 N = 1, mean 0.6. Each direction sums the
    ground-truth region and 0.5 x the pseudo-label region."""
    s = BidirectionalCopyPaste(unlabelled_weight=0.5)
    _box_rows_1_to_4(s)
    labelled = LabelledBatch(torch.zeros(2, 1, H, W),
                             torch.ones(2, H, W, dtype=torch.long))
    weak = torch.ones(2, 1, H, W)
    target = dict(labels=torch.zeros(2, H, W, dtype=torch.long),
                  weight=torch.ones(2, H, W))
    nets = RecordingNets(lambda x: torch.zeros(len(x), 2, H, W))
    losses = s.unsup_loss(nets, [], [target], weak, labelled=labelled)
    region = (math.log(2) + 0.6) / 2
    for v in losses.values():
        assert float(v) == pytest.approx(1.5 * region, abs=1e-4)
    # pixels outside the confidence mask and ignored ground truth count 0:
    # only the ground-truth region of the inward batch is left
    target['weight'] = torch.zeros(2, H, W)
    labelled.labels[1] = 255
    losses = s.unsup_loss(nets, [], [target], weak, labelled=labelled)
    assert float(losses['loss_unsup_bcp_in']) == pytest.approx(region,
                                                              abs=1e-4)
    assert float(losses['loss_unsup_bcp_out']) == 0


def test_masked_dice_loss_by_hand():
    probs = torch.tensor([0.5, 0.5]).view(1, 2, 1, 1).expand(1, 2, 1, 2)
    one_hot = torch.tensor([[1.0, 1.0], [0.0, 0.0]]).view(1, 2, 1, 2)
    weight = torch.tensor([[[1.0, 0.0]]])  # the second pixel is masked out
    # class 0: 1 - 2 * 0.5 / (0.25 + 1) = 0.2; class 1: 1 - 0 / 0.25 = 1
    loss = BidirectionalCopyPaste.masked_dice_loss(probs, one_hot, weight)
    assert float(loss) == pytest.approx(0.6, abs=1e-4)


def test_errors_name_the_fix():
    s = BidirectionalCopyPaste()
    labelled, weak, targets = _batch()
    nets = RecordingNets(lambda x: torch.zeros(len(x), K, H, W))
    with pytest.raises(ValueError, match='needs the labelled batch'):
        s.unsup_loss(nets, [], targets, weak)
    small = LabelledBatch(torch.zeros(4, 1, 4, 4),
                          torch.ones(4, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match='crop both pipelines'):
        s.unsup_loss(nets, [], targets, weak, labelled=small)


def test_pretraining_pastes_labelled_into_labelled_first():
    """The first quarter of the run (iteration < 0.25 max_iters) mixes
    labelled slices only; both regions are ground truth, weight 1."""
    from mmengine.logging import MessageHub
    s = BidirectionalCopyPaste(pretrain_ratio=0.25)
    box = _box_rows_1_to_4(s)
    inputs = torch.zeros(2, 1, H, W)
    inputs[1] = 1.0  # labelled slice b shows 1, slice a 0
    labels = torch.ones(2, H, W, dtype=torch.long)
    labelled = LabelledBatch(inputs, labels)
    weak = torch.full((2, 1, H, W), 5.0)
    target = dict(labels=torch.zeros(2, H, W, dtype=torch.long),
                  weight=torch.ones(2, H, W))
    nets = RecordingNets(lambda x: torch.zeros(len(x), 2, H, W))
    hub = MessageHub.get_current_instance()
    try:
        hub.update_info('max_iters', 100)
        hub.update_info('iter', 24)
        losses = s.unsup_loss(nets, [], [target], weak, labelled=labelled)
        assert set(losses) == {'loss_unsup_bcp_pre'}
        # slice a (0) with the box of slice b (1); no unlabelled pixel
        assert torch.equal(nets.seen[-1][0, 0], box.float())
        # two ground-truth regions of weight 1: 2 x (ln 2 + 0.6) / 2
        assert float(losses['loss_unsup_bcp_pre']) == pytest.approx(
            math.log(2) + 0.6, abs=1e-4)
        hub.update_info('iter', 25)
        losses = s.unsup_loss(nets, [], [target], weak, labelled=labelled)
        assert set(losses) == {'loss_unsup_bcp_in', 'loss_unsup_bcp_out'}
    finally:
        hub.runtime_info.pop('iter', None)
        hub.runtime_info.pop('max_iters', None)
    with pytest.raises(ValueError, match='pretrain_ratio'):
        BidirectionalCopyPaste(pretrain_ratio=1.0)
