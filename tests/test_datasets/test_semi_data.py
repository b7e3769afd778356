"""Data side of stage 2: branch views, photometric transforms, sampling."""
import numpy as np
import pytest
import torch
from mmengine.dataset import BaseDataset, ConcatDataset, pseudo_collate
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS, TRANSFORMS

import cps4  # noqa: F401
from cps4.datasets import MultiSourceSampler


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmseg')


def _results(seed=0, size=48):
    rng = np.random.RandomState(seed)
    img = rng.randint(0, 255, (size, size)).astype(np.uint8)
    seg = np.zeros((size, size), np.uint8)
    seg[10:30, 12:20] = 3
    seg[30:40, 12:20] = 4
    return dict(img=img, gt_seg_map=seg, seg_fields=['gt_seg_map'],
                img_shape=img.shape, ori_shape=img.shape,
                img_path=f'case{seed}.png', seg_map_path=None,
                reduce_zero_label=False)


BRANCHES = ['sup', 'unsup_teacher', 'unsup_student']
PACK = dict(type='PackSegInputs', meta_keys=('img_shape', 'ori_shape'))


def test_views_are_pixel_aligned_after_geometry():
    """Geometry before the split: both views share the same crop/rotation;
    the strong view differs by an intensity map only."""
    rotate = TRANSFORMS.build(dict(
        type='RandomRotate', prob=1.0, degree=20, pad_val=0, seg_pad_val=0))
    crop = TRANSFORMS.build(dict(type='RandomCrop', crop_size=(32, 32)))
    branch = TRANSFORMS.build(dict(
        type='MultiBranch', branch_field=BRANCHES,
        unsup_teacher=[PACK],
        unsup_student=[
            dict(type='RandomIntensityScaleShift', scale_range=(1.3, 1.3),
                 shift_range=(-7, -7), prob=1.0), PACK
        ]))
    np.random.seed(1)
    out = branch(crop(rotate(_results())))
    assert out['inputs']['sup'] is None and out['data_samples']['sup'] is None
    weak = out['inputs']['unsup_teacher'].float()
    strong = out['inputs']['unsup_student'].float()
    assert weak.shape == strong.shape == (1, 32, 32)
    # exactly the same pixels, only x -> 1.3 x - 7
    torch.testing.assert_close(strong, 1.3 * weak - 7, atol=1e-4, rtol=0)
    torch.testing.assert_close(
        out['data_samples']['unsup_teacher'].gt_sem_seg.data,
        out['data_samples']['unsup_student'].gt_sem_seg.data)


def test_photometric_transforms_keep_labels_and_shapes():
    np.random.seed(0)
    for cfg in (dict(type='RandomGamma', gamma_range=(0.5, 0.5), prob=1.0),
                dict(type='RandomGaussianNoise', std_range=(5, 5), prob=1.0),
                dict(type='RandomGaussianBlur', sigma_range=(1, 1), prob=1.0),
                dict(type='RandomIntensityScaleShift', prob=1.0)):
        res = _results()
        seg = res['gt_seg_map'].copy()
        img = res['img'].astype(np.float32)
        out = TRANSFORMS.build(cfg)(res)
        assert out['img'].shape == img.shape
        assert not np.allclose(out['img'], img), cfg['type']
        np.testing.assert_array_equal(out['gt_seg_map'], seg)
    # gamma keeps the range and is monotone
    res = _results()
    lo, hi = res['img'].min(), res['img'].max()
    out = TRANSFORMS.build(
        dict(type='RandomGamma', gamma_range=(2, 2), prob=1.0))(res)
    assert out['img'].min() == pytest.approx(lo)
    assert out['img'].max() == pytest.approx(hi)
    x = (np.float32(100) - lo) / (hi - lo)
    i = np.argwhere(_results()['img'] == 100)
    if len(i):
        assert out['img'][tuple(i[0])] == pytest.approx(lo + (hi - lo) * x**2,
                                                         rel=1e-5)
    with pytest.raises(ValueError, match='gamma_range'):
        TRANSFORMS.build(dict(type='RandomGamma', gamma_range=(0, 1)))


def test_multi_branch_rejects_unknown_branch_and_missing_pack():
    with pytest.raises(ValueError, match='not in branch_field'):
        TRANSFORMS.build(dict(type='MultiBranch', branch_field=['sup'],
                              unsup_teacher=[PACK]))
    branch = TRANSFORMS.build(dict(type='MultiBranch', branch_field=['sup'],
                                   sup=[dict(type='RandomGamma')]))
    with pytest.raises(KeyError, match='PackSegInputs'):
        branch(_results())


class _Range(BaseDataset):

    def __init__(self, n, offset):
        self.n, self.offset = n, offset
        super().__init__(serialize_data=False)

    def load_data_list(self):
        return [dict(i=self.offset + k) for k in range(self.n)]


def test_multi_source_sampler_mixes_each_batch():
    data = ConcatDataset([_Range(3, 0), _Range(50, 100)])
    sampler = MultiSourceSampler(data, batch_size=8, source_ratio=[1, 3],
                                 seed=0)
    it = iter(sampler)
    seen_lab = set()
    for _ in range(20):
        batch = [next(it) for _ in range(8)]
        lab = [i for i in batch if i < 3]
        assert len(lab) == 2  # 8 * 1/4
        seen_lab.update(lab)
    assert seen_lab == {0, 1, 2}  # the small source is cycled
    with pytest.raises(TypeError, match='ConcatDataset'):
        MultiSourceSampler(_Range(3, 0), batch_size=4, source_ratio=[1])
    with pytest.raises(ValueError, match='source_ratio'):
        MultiSourceSampler(data, batch_size=4, source_ratio=[1])
    # the rounding remainder goes to the first (labelled) source
    assert MultiSourceSampler(data, batch_size=2,
                              source_ratio=[1, 10]).num_per_source == [1, 1]
    three = ConcatDataset([_Range(3, 0), _Range(3, 10), _Range(3, 20)])
    with pytest.raises(ValueError, match='too small'):
        MultiSourceSampler(three, batch_size=3, source_ratio=[1, 1, 100])


def test_multi_branch_preprocessor_drops_missing_views():
    pre = MODELS.build(dict(
        type='MultiBranchDataPreprocessor',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[100.],
                               std=[10.], size_divisor=16, seg_pad_val=255)))
    branch = TRANSFORMS.build(dict(
        type='MultiBranch', branch_field=BRANCHES, sup=[PACK],
        unsup_teacher=[PACK], unsup_student=[PACK]))
    sup = TRANSFORMS.build(dict(type='MultiBranch', branch_field=BRANCHES,
                                sup=[PACK]))
    unsup = TRANSFORMS.build(dict(type='MultiBranch', branch_field=BRANCHES,
                                  unsup_teacher=[PACK], unsup_student=[PACK]))
    batch = pseudo_collate([sup(_results(0)), unsup(_results(1)),
                            unsup(_results(2))])
    out = pre(batch, training=True)
    assert out['inputs']['sup'].shape == (1, 1, 48, 48)
    assert out['inputs']['unsup_teacher'].shape == (2, 1, 48, 48)
    assert len(out['data_samples']['unsup_student']) == 2
    raw = torch.from_numpy(_results(1)['img']).float()
    torch.testing.assert_close(out['inputs']['unsup_teacher'][0, 0],
                               (raw - 100) / 10)
    # a batch without unlabelled samples leaves those branches out
    out = pre(pseudo_collate([sup(_results(0))]), training=True)
    assert set(out['inputs']) == {'sup'}
    # evaluation batches are ordinary ones
    plain = pseudo_collate([TRANSFORMS.build(PACK)(_results(0))])
    assert pre(plain, training=False)['inputs'].shape == (1, 1, 48, 48)
    del branch
