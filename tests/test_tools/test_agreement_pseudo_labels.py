"""A self-training dataset from agreeing models: labels where they agree,
255 elsewhere, and the hidden labels of the unlabelled cases never read."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, save_checkpoint
from PIL import Image

from cps4.apis import init_model
from cps4.apis.pseudo_label_dataset import write_agreement_dataset
from cps4.datasets.splits import load_split

SPLIT = 'splits/seed0_25pct.json'


@pytest.fixture(scope='module')
def experts(tiny_sup_config, tmp_path_factory):
    """Two copies of a UNet trained 2 iterations whose classifiers got
    noise (the second a little more): two (config, checkpoint) pairs that
    name foreground classes and agree on part of each slice."""
    work = tmp_path_factory.mktemp('experts')
    cfg_path = tiny_sup_config(work, 2, ckpt=2)
    cfg = Config.fromfile(cfg_path)
    cfg.work_dir = str(work)
    Runner.from_cfg(cfg).train()
    ckpt = torch.load(work / 'iter_2.pth', map_location='cpu',
                      weights_only=False)
    gen = torch.Generator().manual_seed(0)
    paths = []
    for name, scale in (('noisy', 1.0), ('noisier', 0.3)):
        for key, value in ckpt['state_dict'].items():
            if 'conv_seg' in key:
                value.add_(scale * torch.randn(value.shape, generator=gen))
        save_checkpoint(ckpt, str(work / f'{name}.pth'))
        paths.append((str(cfg_path), str(work / f'{name}.pth')))
    return paths


def test_labels_where_the_experts_agree(experts, tiny_spine_root,
                                        tmp_path):
    src = tmp_path / 'src'
    shutil.copytree(tiny_spine_root, src)
    split = load_split(src / SPLIT)
    meta = json.loads((src / 'meta.json').read_text())
    # the hidden labels of the unlabelled cases are gone: reading one fails
    for case in split['unlabelled']:
        for f in (src / 'labels').glob(f'{case}_*.png'):
            f.unlink()
    out = write_agreement_dataset(src, SPLIT, tmp_path / 'round2',
                                  experts, progress=False)
    new = load_split(out / 'splits/seed0_25pct_agreement.json')
    assert new['val'] == split['val'] and new['test'] == split['test']
    assert set(split['labelled']) <= set(new['labelled'])
    assert set(new['pseudo_labelled']) <= set(split['unlabelled'])
    assert set(new['labelled']) | set(new['unlabelled']) == set(
        split['labelled']) | set(split['unlabelled'])
    # one unlabelled slice, predicted by both experts by hand
    case = split['unlabelled'][0]
    image = np.array(Image.open(src / 'images' / f'{case}_0003.png'))
    init_default_scope('mmseg')
    from cps4.apis.inference import _predict_slices
    preds = [_predict_slices(init_model(c, k), image[None], 1, False, False,
                             None)[0][0] for c, k in experts]
    label = np.array(Image.open(out / 'labels' / f'{case}_0003.png'))
    agree = preds[0] == preds[1]
    assert 0 < agree.mean() < 1  # the two experts disagree somewhere
    np.testing.assert_array_equal(label[agree], preds[0][agree])
    assert (label[~agree] == 255).all()
    # labelled and val/test cases keep their ground truth (links)
    lab = split['labelled'][0]
    assert (out / 'labels' / f'{lab}_0000.png').resolve() == (
        src / 'labels' / f'{lab}_0000.png').resolve()
    out_meta = json.loads((out / 'meta.json').read_text())
    assert out_meta['cases'][case]['label'] == 'pseudo'
    assert out_meta['classes'] == meta['classes']
    assert out_meta['pseudo_labels']['cases'] == sorted(split['unlabelled'])
    assert out_meta['pseudo_labels']['pseudo_labelled'] == new[
        'pseudo_labelled']
    # the agreed share is the mean over unlabelled cases of the share of
    # their pixels that are not 255
    shares = [np.mean([(np.array(Image.open(f)) != 255).mean()
                       for f in sorted((out / 'labels').glob(f'{c}_*.png'))])
              for c in split['unlabelled']]
    assert out_meta['pseudo_labels']['agreed_share'] == pytest.approx(
        np.mean(shares))
    # the dataset class reads it: pseudo-labelled cases are labelled now
    from cps4.datasets import SpineSliceDataset
    ds = SpineSliceDataset(data_root=str(out),
                           split='splits/seed0_25pct_agreement.json',
                           subset='labelled', pipeline=[])
    names = {Path(ds.get_data_info(i)['seg_map_path']).name
             for i in range(len(ds))}
    assert new['pseudo_labelled'], 'the experts agree on no foreground'
    pseudo = new['pseudo_labelled'][0]
    assert f'{pseudo}_0003.png' in names
    assert len(names) > sum(meta['cases'][c]['n_slices']
                            for c in split['labelled'])
    # an existing output is only replaced when asked
    with pytest.raises(FileExistsError, match='overwrite'):
        write_agreement_dataset(src, SPLIT, out, experts, progress=False)
    with pytest.raises(ValueError, match='source dataset'):
        write_agreement_dataset(src, SPLIT, src, experts, overwrite=True)
    assert not list(tmp_path.glob('.round2.*'))  # no staging folder left


def test_cli_exit_codes(experts, tiny_spine_root, tmp_path, monkeypatch):
    import importlib.util
    tool = (Path(__file__).parents[2] / 'tools' / 'dataset_converters'
            / 'agreement_pseudo_labels.py')
    spec = importlib.util.spec_from_file_location('agreement_cli', tool)
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    (cfg, ckpt), _ = experts
    assert cli.main([str(tiny_spine_root), SPLIT, str(tmp_path / 'o'),
                     '--expert', cfg, ckpt, '--no-progress']) == 0
    assert (tmp_path / 'o/splits/seed0_25pct_agreement.json').is_file()
    assert cli.main([str(tiny_spine_root), SPLIT, str(tmp_path / 'o'),
                     '--expert', cfg, ckpt, '--no-progress']) == 1
    assert cli.main([str(tmp_path / 'none'), SPLIT, str(tmp_path / 'p'),
                     '--expert', cfg, ckpt]) == 1
