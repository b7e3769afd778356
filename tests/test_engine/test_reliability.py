"""Kill and resume, atomic checkpoints, NaN losses, unsafe checkpoints."""
import hashlib
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint
from mmseg.registry import HOOKS, MODELS

import cps4  # noqa: F401
from cps4.utils import CorruptCheckpointError, UnsafeCheckpointError

REPO_ROOT = Path(__file__).resolve().parents[2]

# the tiny supervised config with random flips and rotations, so that a
# resumed run must replay the augmentation stream to match
AUGMENTED = """
_base_ = ['{base}']
meta_keys = {{{{_base_.meta_keys}}}}
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='RandomRotate', prob=0.5, degree=10, pad_val=0, seg_pad_val=0),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(
    backend_args=dict(backend='atomic_local')))
randomness = dict(seed=0, deterministic=True)
"""


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_cmd(cfg, work, *extra):
    return [sys.executable, str(REPO_ROOT / 'tools/train.py'), str(cfg),
            '--work-dir', str(work), *extra]


def run(cmd, cwd):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          timeout=900)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmseg')


@pytest.mark.slow  # about a minute: two full runs and a kill
def test_sigkill_then_resume_ends_like_an_uninterrupted_run(
        tiny_sup_config, tmp_path):
    # 150 iterations: enough for a non-zero test Dice
    base = tiny_sup_config(tmp_path, 150, ckpt=50)
    cfg = tmp_path / 'augmented.py'
    cfg.write_text(AUGMENTED.format(base=base))
    rc, log = run(train_cmd(cfg, tmp_path / 'straight'), tmp_path)
    assert rc == 0, log[-3000:]

    killed = tmp_path / 'killed'
    proc = subprocess.Popen(train_cmd(cfg, killed), cwd=tmp_path,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    pointer = killed / 'last_checkpoint'
    deadline = time.time() + 600
    while not pointer.is_file() and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, 'the run ended before it could be killed'
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = pointer.read_text().strip()
    assert not saved.endswith('iter_150.pth'), saved
    rc, log = run(train_cmd(cfg, killed, '--resume'), tmp_path)
    assert rc == 0, log[-3000:]
    assert f'Load checkpoint from {saved}' in log or 'resumed' in log

    a = torch.load(tmp_path / 'straight' / 'iter_150.pth')['state_dict']
    b = torch.load(killed / 'iter_150.pth')['state_dict']
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    # and the test metric of both final checkpoints is the same number
    scores = []
    for work in ('straight', 'killed'):
        rc, log = run([sys.executable, str(REPO_ROOT / 'tools/test.py'),
                       str(cfg), str(tmp_path / work / 'iter_150.pth'),
                       '--work-dir', str(tmp_path / f'test_{work}')],
                      tmp_path)
        assert rc == 0, log[-3000:]
        scores.append(log[log.rindex('mDice: '):].split()[1])
    assert scores[0] == scores[1]
    assert float(scores[0]) > 0
    print(f'resumed from {Path(saved).name}: mDice {scores[1]} '
          f'(uninterrupted {scores[0]})')


KILL_WHILE_SAVING = """
import os, sys
import cps4  # noqa: F401  (registers the backend)
from mmengine.fileio import get_file_backend
backend = get_file_backend(sys.argv[1], backend_args=dict(
    backend='atomic_local'))
os.fsync = lambda fd: os._exit(9)   # killed once the bytes are written
if sys.argv[2] == 'bytes':
    backend.put(b'new' * 100000, sys.argv[1])
else:
    backend.put_text('/new/iter_8.pth', sys.argv[1])
"""


@pytest.mark.parametrize('kind', ['bytes', 'text'])
def test_kill_while_saving_keeps_the_previous_file(tmp_path, kind):
    target = tmp_path / ('iter_4.pth' if kind == 'bytes' else
                         'last_checkpoint')
    target.write_bytes(b'old and good')
    proc = subprocess.run([sys.executable, '-c', KILL_WHILE_SAVING,
                           str(target), kind], capture_output=True)
    assert proc.returncode == 9, proc.stderr.decode()[-2000:]
    assert target.read_bytes() == b'old and good'
    others = [p.name for p in tmp_path.iterdir() if p != target]
    assert all(name.startswith('.') and name.endswith('.tmp')
               for name in others), others


@HOOKS.register_module()
class _PoisonWeightsHook(Hook):
    """Test helper: sets a weight to NaN before iteration ``at``."""

    def __init__(self, at: int):
        self.at = at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == self.at:
            with torch.no_grad():
                next(runner.model.parameters()).fill_(float('nan'))


def test_nan_loss_stops_and_names_the_last_good_checkpoint(
        tiny_sup_config, tmp_path):
    cfg = Config.fromfile(tiny_sup_config(tmp_path, 12, ckpt=4))
    cfg.custom_hooks = list(cfg.custom_hooks) + [
        dict(type='_PoisonWeightsHook', at=6)]
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = 'nan_loss'
    runner = Runner.from_cfg(cfg)
    with pytest.raises(FloatingPointError) as info:
        runner.train()
    message = str(info.value)
    assert 'at iteration 6' in message
    good = tmp_path / 'work' / 'iter_4.pth'
    assert f'Last good checkpoint: {good}' in message
    assert sorted(p.name for p in (tmp_path / 'work').glob('*.pth')) == [
        'iter_4.pth']
    state = torch.load(good)['state_dict']
    assert all(torch.isfinite(v).all() for v in state.values()
               if v.is_floating_point())


class Payload:
    """Creates a folder when unpickled: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker, ))


def test_every_checkpoint_load_refuses_pickled_code(tiny_sup_config,
                                                    tmp_path):
    marker = tmp_path / 'code_ran'
    cfg_path = tiny_sup_config(tmp_path, 4, ckpt=4)
    model = MODELS.build(Config.fromfile(cfg_path).model)
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {},
                'payload': Payload(marker)}, evil)

    # mmengine's load_checkpoint (load_from, the stage-1 VLM, infer)
    with pytest.raises(UnsafeCheckpointError,
                       match=r'evil\.pth: refused to load.*mkdir'):
        load_checkpoint(model, str(evil))
    # the notebook API
    from cps4.apis import init_model
    with pytest.raises(RuntimeError, match='refused to load'):
        init_model(str(cfg_path), str(evil))
    # --resume and load_from through tools/train.py
    for extra in (['--resume', str(evil)],
                  ['--cfg-options', f'load_from={evil}']):
        rc, log = run(train_cmd(cfg_path, tmp_path / 'w', *extra), tmp_path)
        assert rc != 0 and 'refused to load' in log, log[-2000:]
    # the stage-1 VLM of stage 2
    vlm_cfg = Config.fromfile(
        REPO_ROOT / 'configs/cps4/cps4-vlm_r18_1xb4-1k_synthetic-5pct-128px.py')
    vlm_evil = tmp_path / 'vlm_evil.pth'
    vlm = MODELS.build(vlm_cfg.model)
    torch.save({'state_dict': vlm.state_dict(), 'x': Payload(marker)},
               vlm_evil)
    semi = Config.fromfile(
        REPO_ROOT / 'configs/cps4/'
        'cps4-mean-teacher_unet-s5-d16-fcn_2xb4-500_synthetic-5pct-128px.py')
    semi.model.vlm.init_cfg.checkpoint = str(vlm_evil)
    semi_model = MODELS.build(semi.model)
    with pytest.raises(UnsafeCheckpointError, match='vlm_evil.pth'):
        semi_model.init_weights()  # where the runner loads the VLM
    assert not marker.exists()  # no code from a checkpoint ever ran


def test_truncated_checkpoint_is_named(tiny_sup_config, tmp_path):
    cfg_path = tiny_sup_config(tmp_path, 4, ckpt=4)
    model = MODELS.build(Config.fromfile(cfg_path).model)
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': model.state_dict()}, good)
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(good.read_bytes()[:len(good.read_bytes()) // 2])
    with pytest.raises(CorruptCheckpointError,
                       match=r'cut\.pth: cannot read the checkpoint.*'
                       'truncated'):
        load_checkpoint(model, str(cut))


def test_unknown_type_lists_the_registered_ones(tiny_sup_config, tmp_path):
    cfg_path = tiny_sup_config(tmp_path, 4, ckpt=4)
    work = tmp_path / 'work'
    rc, log = run(train_cmd(cfg_path, work), tmp_path)
    assert rc == 0, log[-2000:]
    before = sha(work / 'iter_4.pth')
    rc, log = run(train_cmd(cfg_path, work, '--cfg-options',
                            'model.backbone.type=UNett'), tmp_path)
    assert rc != 0
    assert ("unknown type 'UNett' in the mmseg::model registry. Did you "
            "mean ['UNet'") in log, log[-2000:]
    assert 'Registered types' in log and 'CPS4VLM' in log
    assert sha(work / 'iter_4.pth') == before  # nothing was damaged


VLM_CFG = 'configs/cps4/cps4-vlm_r18_1xb4-1k_synthetic-5pct-128px.py'
CPS4_CFG = ('configs/cps4/'
            'cps4-mean-teacher_unet-s5-d16-fcn_2xb4-500_synthetic-5pct-128px.py')


def _roots(root):
    return [f'{k}.dataset.data_root={root}'
            for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')]


@pytest.mark.parametrize('case', ['missing_stage1_checkpoint',
                                  'prompt_class_mismatch',
                                  'data_root_not_converted',
                                  'split_file_missing'])
def test_bad_config_stops_cleanly(case, tiny_sup_config, tiny_spine_root,
                                  tmp_path):
    """Each bad setting stops tools/train.py with a message naming the key
    to fix, and an existing checkpoint in the work dir is left as it was."""
    work = tmp_path / 'work'
    work.mkdir()
    keep = work / 'iter_4.pth'
    keep.write_bytes(b'a good checkpoint from an earlier run')
    before = sha(keep)
    cfg, options, expected = {
        'missing_stage1_checkpoint': (
            REPO_ROOT / CPS4_CFG,
            ['model.vlm.init_cfg.checkpoint=/nowhere/s1.pth'],
            r'stage-1 checkpoint /nowhere/s1\.pth not found; train stage 1 '
            r'first .* set model\.vlm\.init_cfg\.checkpoint'),
        'prompt_class_mismatch': (
            REPO_ROOT / VLM_CFG,
            ['model.prompt.prompt_file='
             'configs/_base_/prompts/vertebral_bodies_l1_l5.json',
             *_roots(tiny_spine_root)],
            r'prompt file .*vertebral_bodies_l1_l5\.json defines 6 classes '
            r'.* but the dataset has 20'),
        'data_root_not_converted': (
            tiny_sup_config(tmp_path, 4),
            _roots(tmp_path / 'raw_not_converted'),
            r'meta\.json not found: `data_root` must be a folder written by '
            r'tools/dataset_converters'),
        'split_file_missing': (
            tiny_sup_config(tmp_path, 4),
            ['train_dataloader.dataset.split=splits/seed0_150pct.json'],
            r'split file .*seed0_150pct\.json not found'),
    }[case]
    rc, log = run(train_cmd(cfg, work, '--cfg-options', *options), REPO_ROOT)
    assert rc != 0
    assert re.search(expected, log), log[-3000:]
    assert sha(keep) == before


def test_bad_label_ratio_keeps_existing_splits(tiny_spine_root, tmp_path):
    import shutil
    root = tmp_path / 'data'
    shutil.copytree(tiny_spine_root, root)
    before = {p.name: sha(p) for p in (root / 'splits').iterdir()}
    rc, log = run([sys.executable,
                   str(REPO_ROOT / 'tools/dataset_converters/make_splits.py'),
                   str(root), '--seeds', '5', '--ratios', '0.1', '1.5'],
                  tmp_path)
    assert rc != 0
    assert re.search(r'\(0, 1\], got 1\.5', log), log[-2000:]
    assert {p.name: sha(p) for p in (root / 'splits').iterdir()} == before
