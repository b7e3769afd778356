"""The stage-1 model: modes, class checks, a short run and its checkpoint."""
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import cps4  # noqa: F401
from tiny_models import TINY_TEXT

REPO_ROOT = Path(__file__).resolve().parents[2]
CFG = REPO_ROOT / 'configs/cps4/cps4-vlm_r18_1xb4-1k_synthetic-5pct-128px.py'
def tiny_model_cfg():
    cfg = Config.fromfile(CFG)
    model = cfg.model
    model.text_encoder = TINY_TEXT
    model.embed_dim = 32
    return cfg, model


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmseg')


def samples(batch, size=64, num_classes=20, seed=0):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(batch):
        s = SegDataSample()
        seg = torch.zeros(1, size, size, dtype=torch.long)
        seg[:, 20:40, 24:40] = torch.randint(1, num_classes, (1, ),
                                             generator=gen)
        s.gt_sem_seg = PixelData(data=seg)
        s.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                            pad_shape=(size, size),
                            padding_size=[0, 0, 0, 0]))
        out.append(s)
    return out


def test_loss_predict_tensor_modes():
    _, model_cfg = tiny_model_cfg()
    model = MODELS.build(model_cfg)
    inputs = torch.randn(2, 1, 64, 64)
    losses = model(inputs, samples(2), mode='loss')
    assert 'loss_token' in losses
    assert any(k.startswith('loss_pixel') for k in losses)
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    total.backward()
    assert model.log_logit_scale.grad is not None
    assert model.class_bias.grad is not None

    model.eval()
    with torch.no_grad():
        logits = model(inputs, mode='tensor')
        results = model(inputs, samples(2), mode='predict')
    assert logits.shape == (2, 20, 16, 16)
    for r in results:
        assert r.pred_sem_seg.data.shape == (1, 64, 64)
        assert r.class_maps.data.shape == (20, 64, 64)
        conf = r.confidence.data
        assert conf.shape == (1, 64, 64)
        maps = r.class_maps.data
        torch.testing.assert_close(conf[0], maps.max(0).values)
        # unified map: argmax where confident, background elsewhere
        expected = torch.where(conf[0] >= model.threshold,
                               maps.argmax(0), torch.zeros_like(conf[0],
                                                                dtype=torch.long))
        assert torch.equal(r.pred_sem_seg.data[0], expected)


def test_loss_switches_for_ablations():
    _, model_cfg = tiny_model_cfg()
    model_cfg.token_loss = None
    model_cfg.pixel_loss = None
    model = MODELS.build(model_cfg)
    losses = model(torch.randn(1, 1, 64, 64), samples(1), mode='loss')
    assert set(losses) == {'loss_ce'}


def test_prompt_class_mismatch_raises():
    _, model_cfg = tiny_model_cfg()
    model = MODELS.build(model_cfg)
    with pytest.raises(ValueError, match='20'):
        model.check_classes(('background', 'L1', 'L2', 'L3', 'L4', 'L5'))


def test_twenty_iterations_lower_both_losses_and_checkpoint_loads(
        tiny_spine_root, tmp_path):
    cfg, model_cfg = tiny_model_cfg()
    cfg.model = model_cfg
    meta_keys = cfg.meta_keys
    pipeline = [
        dict(type='LoadImageFromFile', color_type='grayscale'),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs', meta_keys=meta_keys),
    ]
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = str(tiny_spine_root)
        cfg[key].dataset.pipeline = pipeline
        cfg[key].num_workers = 0
        cfg[key].persistent_workers = False
    cfg.train_dataloader.dataset.split = 'splits/seed0_100pct.json'
    cfg.train_dataloader.dataset.skip_empty = True
    cfg.train_dataloader.batch_size = 4
    cfg.optim_wrapper.optimizer.lr = 2e-3
    cfg.param_scheduler = []
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=20,
                         val_interval=1000)
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False,
                                        interval=20)
    cfg.default_hooks.visualization = dict(type='SegVisualizationHook')
    cfg.work_dir = str(tmp_path)
    cfg.randomness = dict(seed=0)
    runner = Runner.from_cfg(cfg)
    runner.train()
    hub = runner.message_hub
    for name in ('train/loss_token', 'train/loss_pixel_bce'):
        values = hub.get_scalar(name).data[0]
        assert np.isfinite(values).all()
        assert np.mean(values[-5:]) < np.mean(values[:5]), (name, values)
    ckpt = tmp_path / 'iter_20.pth'
    assert ckpt.is_file()
    fresh = MODELS.build(model_cfg)
    load_checkpoint(fresh, str(ckpt), map_location='cpu', strict=True)
    for (name, a), (_, b) in zip(runner.model.state_dict().items(),
                                 fresh.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)
    # stage 2 loads this checkpoint as its frozen VLM
    semi = MODELS.build(dict(
        type='CPS4SemiSegmentor',
        segmentor=Config.fromfile(
            REPO_ROOT / 'configs/_base_/models/unet_fcn.py').model,
        vlm=dict(model_cfg,
                 init_cfg=dict(type='Pretrained', checkpoint=str(ckpt))),
        ssl_strategy=dict(type='FixMatch'),
        data_preprocessor=dict(type='MultiBranchDataPreprocessor',
                               data_preprocessor=model_cfg.data_preprocessor)))
    semi.init_weights()  # what the runner does before training
    for name, value in fresh.state_dict().items():
        torch.testing.assert_close(semi.vlm.state_dict()[name], value,
                                   msg=name)
