"""Partially labelled masks: an ignore value becomes 255, which the
converted slices keep and every configured loss leaves out."""
import json

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from cps4.datasets.converters import (DatasetFormatError, convert_dataset,
                                      load_case_volume)

from test_converters import REPO, make_nnunet


def _mark_unannotated(src, case, value):
    """Set a block of ``case``'s mask to ``value``; return the block mask."""
    path = src / 'labelsTr' / f'{case}.nii.gz'
    img = nib.load(str(path))
    data = np.asanyarray(img.dataobj).copy()
    block = np.zeros(data.shape, bool)
    block[4:10, 2:8, 1:4] = True
    data[block] = value
    nib.Nifti1Image(data, img.affine).to_filename(str(path))
    return block, np.asanyarray(img.dataobj)


def _labels(out, case, n):
    return np.stack([np.array(Image.open(out / 'labels' / f'{case}_{i:04d}'
                                          '.png')) for i in range(n)], -1)


def test_dataset_json_ignore_label_becomes_255(tmp_path):
    src = tmp_path / 'raw'
    make_nnunet(src, n=3, labels={'background': 0, 'disc': 2,
                                  'vertebra': 5, 'ignore': 9})
    block, before = _mark_unannotated(src, 'case_001', 9)
    out = convert_dataset(src, tmp_path / 'out', 'nnunet', splits=False)
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['classes'] == ['background', 'disc', 'vertebra']
    assert meta['label_values'] == [0, 2, 5] and meta['ignore_value'] == 9
    labels = _labels(out, 'case_001', 5)
    assert np.all(labels[block] == 255)
    assert np.all(labels[~block] < 3)
    # foreground_voxels counts annotated foreground only
    annotated = (before > 0) & ~block
    assert meta['cases']['case_001']['foreground_voxels'] == int(
        annotated.sum())
    # written back as source values, the ignore value included
    volume = load_case_volume(out, 'case_001', to_source_values=True)
    assert np.all(volume[block] == 9)
    np.testing.assert_array_equal(volume[~block], before[~block])


def test_ignore_label_option_and_its_errors(tmp_path):
    src = tmp_path / 'raw'
    make_nnunet(src, n=3)
    block, _ = _mark_unannotated(src, 'case_002', 7)
    # without a declared ignore value, 7 is an unknown label
    with pytest.raises(DatasetFormatError, match=r'label values \[7\]'):
        convert_dataset(src, tmp_path / 'a', 'nnunet', splits=False)
    out = convert_dataset(src, tmp_path / 'b', 'nnunet', splits=False,
                          ignore_label=7)
    assert np.all(_labels(out, 'case_002', 5)[block] == 255)
    with pytest.raises(DatasetFormatError,
                       match="ignore label 5 is the value of class "
                       "'vertebra'"):
        convert_dataset(src, tmp_path / 'c', 'nnunet', splits=False,
                        ignore_label=5)
    # the converter scripts take --ignore-label
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'nnunet_cli', REPO / 'tools' / 'dataset_converters' / 'nnunet.py')
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    assert cli.main([str(src), str(tmp_path / 'd'), '--no-splits',
                     '--ignore-label', '7']) == 0
    assert json.loads(
        (tmp_path / 'd' / 'meta.json').read_text())['ignore_value'] == 7


@pytest.mark.parametrize('config', [
    'configs/supervised/sup_unet-s5-d16-fcn_1xb8-2k_synthetic-100pct-192px.py',
])
def test_configured_losses_leave_ignored_pixels_out(config):
    """The decode head's configured losses do not change when the logits
    change only where the label is 255."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    import cps4  # noqa: F401 - registers the modules
    init_default_scope('mmseg')
    cfg = Config.fromfile(str(REPO / config))
    head = MODELS.build(cfg.model.decode_head)
    k = head.num_classes
    torch.manual_seed(0)
    logits = torch.randn(2, k, 16, 16)
    gt = torch.randint(0, k, (2, 16, 16))
    gt[:, 3:9, 5:12] = 255
    samples = []
    for g in gt:
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=g[None])
        s.set_metainfo(dict(img_shape=(16, 16), ori_shape=(16, 16)))
        samples.append(s)
    changed = logits.clone()
    changed[:, :, 3:9, 5:12] += 5 * torch.randn(2, k, 6, 7)
    a = head.loss_by_feat(logits, samples)
    b = head.loss_by_feat(changed, samples)
    losses = [key for key in a if key.startswith('loss')]
    assert len(losses) >= 2, losses  # cross-entropy and Dice
    for key in losses:
        torch.testing.assert_close(a[key], b[key], msg=key)
