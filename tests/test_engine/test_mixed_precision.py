"""Mixed precision (bfloat16 on the CPU) and channels-last weights."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS, OPTIM_WRAPPERS

from cps4.engine import MemoryFormatHook, to_memory_format
from cps4.models.losses import SoftDiceLoss
from cps4.utils import (disable_mixed_precision, enable_channels_last,
                        enable_mixed_precision, memory_format_of)

REPO_ROOT = Path(__file__).resolve().parents[2]


def build_wrapper(model, **kwargs):
    return OPTIM_WRAPPERS.build(dict(
        type='MixedPrecisionOptimWrapper', device='cpu',
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1), **kwargs))


def test_wrapper_autocasts_bf16_on_cpu_and_keeps_fp32_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(4, 2, 1))
    wrapper = build_wrapper(model, clip_grad=dict(max_norm=1.0))
    assert wrapper.cast_dtype == torch.bfloat16
    assert wrapper.loss_scaler is None  # bf16 needs no loss scaling
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(2, 1, 8, 8)
    with wrapper.optim_context(model):
        assert torch.is_autocast_enabled('cpu')
        assert torch.get_autocast_dtype('cpu') == torch.bfloat16
        out = model(x)
        assert out.dtype == torch.bfloat16
        loss = out.float().square().mean()
    assert not torch.is_autocast_enabled('cpu')
    wrapper.update_params(loss)
    for p, old in zip(model.parameters(), before):
        assert p.dtype == torch.float32 and p.grad is None
        assert not torch.equal(p, old)  # the step happened
    state = wrapper.state_dict()
    assert 'loss_scaler' not in state
    wrapper.load_state_dict(state)


def test_wrapper_refuses_float16_on_cpu_and_unknown_dtypes():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="bfloat16 only.*dtype='bfloat16'"):
        build_wrapper(model, dtype='float16')
    with pytest.raises(ValueError, match='dtype must be one of'):
        build_wrapper(model, dtype='float64')
    assert build_wrapper(model, dtype=torch.bfloat16).cast_dtype == \
        torch.bfloat16


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_wrapper_scales_float16_loss_on_cuda():  # pragma: no cover
    model = nn.Linear(4, 2).cuda()
    wrapper = OPTIM_WRAPPERS.build(dict(
        type='MixedPrecisionOptimWrapper', device='cuda',
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    assert wrapper.cast_dtype == torch.float16
    with wrapper.optim_context(model):
        loss = model(torch.randn(3, 4, device='cuda')).float().sum()
    wrapper.update_params(loss)
    assert 'loss_scaler' in wrapper.state_dict()


def test_memory_format_hook_converts_4d_weights():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8),
                          nn.Flatten(), nn.Linear(8, 2))
    to_memory_format(model, 'channels_last')
    conv = model[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert not conv.is_contiguous()
    assert model[3].weight.is_contiguous()  # 2-D weights stay as they are
    to_memory_format(model, 'contiguous')
    assert model[0].weight.is_contiguous()
    with pytest.raises(ValueError, match='memory_format must be one of'):
        MemoryFormatHook('nhwc')


def test_config_switches():
    cfg = Config(dict(
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD')),
        val_cfg=dict(type='ValLoop'), test_cfg=dict(type='TestLoop'),
        custom_hooks=[dict(type='InvalidLossHook')]))
    assert memory_format_of(cfg) is None
    enable_mixed_precision(cfg)
    enable_channels_last(cfg)
    enable_channels_last(cfg)  # idempotent
    assert cfg.optim_wrapper.type == 'MixedPrecisionOptimWrapper'
    assert cfg.val_cfg.fp16 and cfg.test_cfg.fp16
    assert [h['type'] for h in cfg.custom_hooks] == [
        'InvalidLossHook', 'MemoryFormatHook']
    assert memory_format_of(cfg) == 'channels_last'
    disable_mixed_precision(cfg)  # back to the float32 config
    assert cfg.optim_wrapper == dict(type='OptimWrapper',
                                     optimizer=dict(type='SGD'))
    assert 'fp16' not in cfg.val_cfg and 'fp16' not in cfg.test_cfg
    assert [h['type'] for h in cfg.custom_hooks] == ['InvalidLossHook']
    assert memory_format_of(cfg) is None

    test_only = Config(dict(optim_wrapper=dict(type='OptimWrapper'),
                            test_cfg=dict(type='TestLoop')))
    enable_mixed_precision(test_only, train=False)
    assert test_only.optim_wrapper.type == 'OptimWrapper'
    assert test_only.test_cfg.fp16
    other = Config(dict(optim_wrapper=dict(type='ZeroRedundancyOptimizer')))
    with pytest.raises(ValueError, match='needs optim_wrapper.type'):
        enable_mixed_precision(other)


def test_losses_stay_float32_under_autocast():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 16, 16)
    target = torch.randint(0, 4, (2, 16, 16))
    loss = SoftDiceLoss()
    ref = loss(logits, target)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        low = loss(logits.bfloat16(), target)
    assert low.dtype == torch.float32
    # only the input rounding to bf16 (8 bits of mantissa) remains
    assert abs(float(low) - float(ref)) < 2e-3


def test_semi_logits_are_float32_under_autocast():
    from tiny_models import tiny_student
    init_default_scope('mmseg')
    model = MODELS.build(dict(type='SemiBaseSegmentor',
                              segmentor=tiny_student(5)))
    x = torch.randn(2, 1, 32, 32)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        logits = model.networks.logits(model.student, x)
        probs = model.networks.probs(model.teacher, x)
    assert logits.dtype == probs.dtype == torch.float32
    assert logits.shape == (2, 5, 32, 32)
    assert torch.allclose(probs.sum(1), torch.ones(2, 32, 32), atol=1e-5)


def run_tool(tool, args, cwd):
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools' / tool), *args],
        cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_train_and_test_with_amp_and_channels_last(tiny_sup_config,
                                                    tmp_path):
    cfg = str(tiny_sup_config(tmp_path, 4))
    work = tmp_path / 'work'
    log = run_tool('train.py', [cfg, '--work-dir', str(work), '--amp',
                                '--channels-last'], tmp_path)
    assert 'MemoryFormatHook: model weights in channels_last' in log
    dumped = Config.fromfile(str(next(work.glob('*/vis_data/config.py'))))
    assert dumped.optim_wrapper.type == 'MixedPrecisionOptimWrapper'
    ckpt = torch.load(work / 'iter_4.pth', map_location='cpu')
    assert all(v.dtype == torch.float32 for k, v in
               ckpt['state_dict'].items() if v.is_floating_point())
    log = run_tool('test.py', [cfg, str(work / 'iter_4.pth'), '--work-dir',
                               str(tmp_path / 'test'), '--amp',
                               '--channels-last'], tmp_path)
    assert 'mDice' in log
    dumped = Config.fromfile(
        str(next((tmp_path / 'test').glob('*/vis_data/config.py'))))
    assert dumped.test_cfg.fp16 is True
