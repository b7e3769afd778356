"""AdaBN: BatchNorm statistics re-estimated on other images, by hand, and
the tool that measures its effect on val."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from torch import nn

from cps4.apis import adapt_batchnorm

REPO_ROOT = Path(__file__).resolve().parents[2]


class _Stack(nn.Module):
    """Stacks the ``inputs`` of a collated batch (a data preprocessor)."""

    def forward(self, data, training=False):
        return dict(inputs=torch.stack(data['inputs']).float(),
                    data_samples=data['data_samples'])


class _TwoBranches(nn.Module):
    """A conv and a BatchNorm on the forward path, a second BatchNorm off
    it (as the VLM of a stage-2 model in ``mode='tensor'``)."""

    def __init__(self):
        super().__init__()
        self.data_preprocessor = _Stack()
        self.conv = nn.Conv2d(1, 2, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -2.0]).view(2, 1, 1, 1))
        self.bn = nn.BatchNorm2d(2, momentum=0.3)
        self.unused = nn.BatchNorm2d(2)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        assert mode == 'tensor'
        return self.bn(self.conv(inputs))


def _item(values, shape):
    return dict(inputs=torch.tensor(values, dtype=torch.float32).view(shape),
                data_samples=None)


def test_adapt_batchnorm_by_hand():
    model = _TwoBranches()
    model.unused.running_mean.fill_(7.0)
    weight = model.conv.weight.clone()
    # batches: the two 1x2x2 images (same shape, batch of 2), then the
    # 1x1x2 image alone (another shape: no padding)
    data = [_item([0, 1, 2, 3], (1, 2, 2)), _item([4, 5, 6, 7], (1, 2, 2)),
            _item([10, 20], (1, 1, 2))]
    assert adapt_batchnorm(model, data, batch_size=4, progress=False) == 1
    b1, b2 = torch.arange(8.0), torch.tensor([10.0, 20.0])
    # channel 0 sees x, channel 1 sees -2x; the running statistics are the
    # plain average over the two batches of their mean and unbiased var
    mean0 = (b1.mean() + b2.mean()) / 2
    var0 = (b1.var() + b2.var()) / 2
    torch.testing.assert_close(model.bn.running_mean,
                               torch.stack([mean0, -2 * mean0]))
    torch.testing.assert_close(model.bn.running_var,
                               torch.stack([var0, 4 * var0]))
    assert model.bn.num_batches_tracked.item() == 2
    # the rest is as before: weights, momentum, the layer off the path,
    # eval mode
    assert torch.equal(model.conv.weight, weight)
    assert model.bn.momentum == 0.3 and not model.bn.training
    assert (model.unused.running_mean == 7.0).all()
    assert model.unused.num_batches_tracked.item() == 0


def test_adapt_batchnorm_batch_size_and_errors():
    model = _TwoBranches()
    data = [_item([1, 2, 3, 4], (1, 2, 2)), _item([5, 6, 7, 8], (1, 2, 2))]
    adapt_batchnorm(model, data, batch_size=1, progress=False)
    assert model.bn.num_batches_tracked.item() == 2  # one item per batch
    with pytest.raises(ValueError, match='no images'):
        adapt_batchnorm(model, [], progress=False)
    with pytest.raises(ValueError, match='no BatchNorm'):
        adapt_batchnorm(nn.Conv2d(1, 1, 1), data, progress=False)


def _trained_tiny_model_and_tool(tiny_sup_config, tmp_path):
    """Train the tiny supervised config for 2 iterations in ``tmp_path``
    (``iter_2.pth``); return its config path and the loaded tool module."""
    cfg_path = tiny_sup_config(tmp_path, 2, ckpt=2)
    cfg = Config.fromfile(cfg_path)
    cfg.work_dir = str(tmp_path)
    Runner.from_cfg(cfg).train()
    spec = importlib.util.spec_from_file_location(
        'adabn_eval', REPO_ROOT / 'tools/analysis/adabn_eval.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return cfg_path, tool


def test_adabn_eval_tool(tiny_sup_config, tmp_path):
    """The tool's first row is the trained model's Dice; AdaBN on the test
    slices (their images only) changes it; the JSON has both."""
    cfg_path, tool = _trained_tiny_model_and_tool(tiny_sup_config, tmp_path)
    out = tmp_path / 'adabn.json'
    tool.main([str(cfg_path), str(tmp_path / 'iter_2.pth'),
               '--stats-subset', 'test', '--subset', 'val',
               '--out-json', str(out), '--no-progress'])
    result = json.loads(out.read_text())
    before, after = result['results']
    assert result['layers_adapted'] > 0
    assert result['delta'] == pytest.approx(
        after['mDice'] - before['mDice'], abs=0.01)
    # the trained row is the model as trained: evaluate it again by hand
    from cps4.apis import build_test_dataset, evaluate_dataset, init_model
    model = init_model(str(cfg_path), str(tmp_path / 'iter_2.pth'))
    dataset = build_test_dataset(model.cfg, 'val')
    assert evaluate_dataset(model, dataset, tool.METRIC, 8,
                            False)['mDice'] == before['mDice']
    # the statistics dataset reads no label
    stats = tool.image_dataset(model.cfg, 'test')
    assert 'gt_sem_seg' not in stats[0]['data_samples']


def test_test_tool_on_the_config_of_a_resumed_training(tiny_sup_config,
                                                       tmp_path):
    """A resumed training dumps its config with ``resume = True``;
    tools/test.py on that config tests an adapted checkpoint (weights and
    meta only) instead of trying to restore a training state."""
    import subprocess
    import sys
    cfg_path, tool = _trained_tiny_model_and_tool(tiny_sup_config, tmp_path)
    resumed = tmp_path / 'resumed_config.py'
    resumed.write_text(cfg_path.read_text() + '\nresume = True\n')
    adapted = tmp_path / 'adapted.pth'
    tool.main([str(resumed), str(tmp_path / 'iter_2.pth'),
               '--stats-subset', 'test', '--subset', 'val',
               '--save-checkpoint', str(adapted), '--no-progress'])
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools/test.py'), str(resumed),
         str(adapted), '--work-dir', str(tmp_path / 'test')],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 'mDice' in proc.stdout + proc.stderr
