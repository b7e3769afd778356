"""EMA teacher hook, pseudo-label quality hook, teacher/student validation,
and a short semi-supervised run through the Runner."""
import json
from pathlib import Path
from types import SimpleNamespace

import mmcv
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint
from mmseg.registry import MODELS

import cps4  # noqa: F401
from cps4.engine import EMATeacherHook, PseudoLabelQualityHook, ema_update
from tiny_models import tiny_student
from tiny_data import use_tiny_semi_data

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmseg')


class _Pair(nn.Module):

    def __init__(self, t, s):
        super().__init__()
        self.teacher = nn.BatchNorm1d(2)
        self.student = nn.BatchNorm1d(2)
        with torch.no_grad():
            self.teacher.weight.fill_(t)
            self.student.weight.fill_(s)
            self.teacher.running_mean.fill_(t)
            self.student.running_mean.fill_(s)
            self.student.num_batches_tracked.fill_(7)


def test_ema_update_math():
    pair = _Pair(0.0, 1.0)
    ema_update(pair.teacher, pair.student, 0.25)
    torch.testing.assert_close(pair.teacher.weight, torch.full((2, ), 0.25))
    torch.testing.assert_close(pair.teacher.running_mean,
                               torch.full((2, ), 0.25))
    assert int(pair.teacher.num_batches_tracked) == 7  # integers copied
    ema_update(pair.teacher, pair.student, 0.25)
    # 0.75 * 0.25 + 0.25 * 1
    torch.testing.assert_close(pair.teacher.weight, torch.full((2, ), 0.4375))
    # buffers copied instead of averaged (EMATeacherHook(skip_buffers=True))
    pair = _Pair(0.0, 1.0)
    ema_update(pair.teacher, pair.student, 0.25, average_buffers=False)
    torch.testing.assert_close(pair.teacher.weight, torch.full((2, ), 0.25))
    torch.testing.assert_close(pair.teacher.running_mean,
                               torch.full((2, ), 1.0))
    with pytest.raises(KeyError, match='differ'):
        ema_update(nn.Linear(2, 2), nn.BatchNorm1d(2), 0.5)


def test_ema_hook_starts_from_student_only_on_fresh_runs():
    pair = _Pair(0.0, 1.0)
    hook = EMATeacherHook(momentum=0.5, interval=2)
    hook.before_train(SimpleNamespace(model=pair, iter=5))  # resumed
    assert float(pair.teacher.weight[0]) == 0.0
    hook.before_train(SimpleNamespace(model=pair, iter=0))
    assert float(pair.teacher.weight[0]) == 1.0
    with torch.no_grad():
        pair.student.weight.fill_(3.0)
    hook.after_train_iter(SimpleNamespace(model=pair, iter=0), 0)  # skipped
    assert float(pair.teacher.weight[0]) == 1.0
    hook.after_train_iter(SimpleNamespace(model=pair, iter=1), 1)
    assert float(pair.teacher.weight[0]) == 2.0
    with pytest.raises(AttributeError, match='teacher'):
        hook.before_train(SimpleNamespace(model=nn.Linear(1, 1), iter=0))
    with pytest.raises(ValueError, match='momentum'):
        EMATeacherHook(momentum=0)


def test_quality_hook_history_and_plot(tmp_path):
    hook = PseudoLabelQualityHook(interval=2, window=2)
    runner = SimpleNamespace(work_dir=str(tmp_path), iter=0)
    for i, (t, f) in enumerate([(0.2, 0.4), (0.3, 0.5), (0.4, 0.7)]):
        runner.iter = i
        hook.after_train_iter(runner, i, outputs=dict(
            loss=torch.tensor(1.0), pl_dice_teacher=torch.tensor(t),
            pl_dice_fused=torch.tensor(f)))
    assert set(hook.history) == {'pl_dice_teacher', 'pl_dice_fused'}
    assert hook.summary(last=2) == pytest.approx(
        dict(pl_dice_teacher=0.35, pl_dice_fused=0.6))
    hook.after_train(runner)
    saved = json.loads((tmp_path / 'pseudo_label_quality.json').read_text())
    assert saved['history']['pl_dice_fused'][2] == pytest.approx([3, 0.7])
    png = tmp_path / 'pseudo_label_quality.png'
    assert png.read_bytes()[:4] == b'\x89PNG'
    assert not list(tmp_path.glob('*.tmp*'))


def test_short_semi_run_through_runner(tiny_spine_root, tmp_path):
    cfg = Config.fromfile(
        REPO_ROOT / 'configs/ssl/'
        'fixmatch_unet-s5-d16-fcn_2xb4-500_synthetic-5pct-128px.py')
    cfg.model.segmentor = tiny_student(20)
    cfg.model.semi_train_cfg.pseudo_threshold = 0.0
    use_tiny_semi_data(cfg, tiny_spine_root, batch_size=4,
                       loaders=('train_dataloader', 'val_dataloader'))
    cfg.param_scheduler = []
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=4,
                         val_interval=4)
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False,
                                        interval=4)
    for hook in cfg.custom_hooks:
        if hook.type in ('PseudoLabelQualityHook',
                         'PseudoLabelVisualizationHook'):
            hook.interval = 2
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend'),
                                   dict(type='TensorboardVisBackend')]
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.train()
    # pseudo-label pictures at iterations 2 and 4, and TensorBoard events
    vis = tmp_path / runner.timestamp / 'vis_data'
    pictures = sorted(p.name for p in (vis / 'vis_image').iterdir())
    assert pictures == ['pseudo_labels_2.png', 'pseudo_labels_4.png']
    picture = mmcv.imread(str(vis / 'vis_image' / pictures[-1]))
    # weak view | teacher | kept | hidden ground truth, side by side
    snapshot = runner.message_hub.get_info('pseudo_label_snapshot')
    width = snapshot['image'].shape[-1]
    assert picture.shape[1] == 4 * width, picture.shape
    assert list(vis.glob('events.out.tfevents.*'))
    scalars = runner.message_hub.log_scalars
    assert 'val/teacher/mDice' in scalars and 'val/student/mDice' in scalars
    assert 'train/loss_unsup_ce' in scalars
    assert 'train/pl_dice_teacher' in scalars
    assert (tmp_path / 'pseudo_label_quality.png').is_file()
    model = runner.model
    # the EMA teacher moved, but is not the student
    differs = [
        not torch.equal(a, b) for a, b in zip(model.teacher.parameters(),
                                              model.student.parameters())
    ]
    assert any(differs)
    fresh = MODELS.build(cfg.model)
    load_checkpoint(fresh, str(tmp_path / 'iter_4.pth'), map_location='cpu',
                    strict=True)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[name], value, msg=name)
