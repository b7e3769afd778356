"""docs/howto/own_unlabelled_data.md, run as written, end to end.

A raw folder as a user has it is built from the synthetic generator: three
labelled volumes (one partly annotated, with an ``ignore`` value), four
volumes without masks and three new volumes to segment, stored in mixed
axis orders. The how-to's commands then convert it, train stage 1 and
stage 2 and segment the new volumes; the test checks the split, the
ignored voxels, that the unlabelled volumes were trained on, and that every
mask lies on the right voxels of its input.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from axis_orders import restore

REPO_ROOT = Path(__file__).resolve().parents[2]
HOWTO = REPO_ROOT / 'docs' / 'howto' / 'own_unlabelled_data.md'
BLOCK = re.compile(r'<!-- doc-test: (\w+) -->\s*```(bash|python)\n(.*?)```',
                   re.S)
IGNORE = 20  # the `ignore` label of dataset.json: the highest value
IGNORED_SLICES = slice(0, 5)  # of spine_001, along the slice axis (2)
# (perm, flips) of each stored volume; None: as generated
ORDERS = {
    'spine_000': None,
    'spine_001': ((0, 1, 2), (True, False, False)),
    'spine_002': ((1, 0, 2), (False, False, False)),
    'spine_003': None,
    'spine_004': ((0, 1, 2), (False, False, True)),
    'spine_005': ((2, 0, 1), (True, False, True)),
    'spine_006': None,
    'new_000': ((0, 1, 2), (True, False, False)),
    'new_001': ((1, 0, 2), (False, False, False)),
    'new_002': ((2, 0, 1), (True, False, True)),
}
LABELLED = ('spine_000', 'spine_001', 'spine_002')
UNLABELLED = ('spine_003', 'spine_004', 'spine_005', 'spine_006')
NEW = ('new_000', 'new_001', 'new_002')
# The how-to's schedules are run as written (stage 1: 1000 iterations,
# validated at the end; stage 2: 500, validated every 100); shorter ones
# can be asked for, appended to its config files as a user would
SHORT = {
    'vlm': ('train_cfg = dict(max_iters={n}, val_interval={n})\n'
            'default_hooks = dict(checkpoint=dict(interval={n}))\n'),
    'cps4': ('train_cfg = dict(max_iters={n}, val_interval={v})\n'
             'default_hooks = dict(checkpoint=dict(interval={n}))\n'),
}
STAGE1_ITERS = int(os.environ.get('CPS4_HOWTO_STAGE1_ITERS', 1000))
STAGE2_ITERS = int(os.environ.get('CPS4_HOWTO_STAGE2_ITERS', 500))


def doc_blocks() -> dict:
    return {name: body for name, _, body in BLOCK.findall(HOWTO.read_text())}


def _store(data, affine, order):
    if order is None:
        return np.ascontiguousarray(data), np.asarray(affine, float)
    return restore(data, affine, *order)


def build_raw(synthetic: Path, raw: Path) -> dict:
    """The user's folder of the how-to from 10 synthetic cases; returns the
    generator's labels of the new volumes as stored (name -> (labels,
    affine))."""
    meta = json.loads((synthetic / 'dataset.json').read_text())
    for sub in ('imagesTr', 'labelsTr', 'imagesTs'):
        (raw / sub).mkdir(parents=True)
    names = [*LABELLED, *UNLABELLED, *NEW]
    truth = {}
    for i, name in enumerate(names):
        image = nib.load(str(synthetic / 'imagesTr' / f'spine_{i:03d}_0000'
                             '.nii.gz'))
        label = np.asanyarray(nib.load(str(
            synthetic / 'labelsTr' / f'spine_{i:03d}.nii.gz')).dataobj)
        data, affine = _store(np.asanyarray(image.dataobj), image.affine,
                              ORDERS[name])
        folder = 'imagesTs' if name in NEW else 'imagesTr'
        nib.Nifti1Image(data, affine).to_filename(
            str(raw / folder / f'{name}_0000.nii.gz'))
        if name == 'spine_001':  # partly annotated
            label = label.copy()
            label[:, :, IGNORED_SLICES] = IGNORE
        stored, affine = _store(label, image.affine, ORDERS[name])
        if name in LABELLED:
            nib.Nifti1Image(stored, affine).to_filename(
                str(raw / 'labelsTr' / f'{name}.nii.gz'))
        elif name in NEW:
            truth[name] = (stored, affine)
    labels = dict(meta['labels'], ignore=IGNORE)
    (raw / 'dataset.json').write_text(json.dumps(dict(
        channel_names=meta['channel_names'], labels=labels,
        file_ending='.nii.gz', slice_axis=meta['slice_axis'])))
    return truth


def run_block(name: str, source: str, cwd: Path, log: Path) -> None:
    """Run a bash block of the how-to in ``cwd`` with the test's Python."""
    env = dict(os.environ, PATH=f'{Path(sys.executable).parent}:'
               f'{os.environ["PATH"]}', PYTHONPATH=str(REPO_ROOT))
    script = source.replace('python ', f'{sys.executable} ')
    with open(log, 'a') as f:
        f.write(f'### {name}\n')
        f.flush()
        proc = subprocess.run(['bash', '-euo', 'pipefail', '-c', script],
                              cwd=cwd, env=env, stdout=f,
                              stderr=subprocess.STDOUT, timeout=3600)
    assert proc.returncode == 0, log.read_text()[-4000:]


def dice(pred, truth, value) -> float:
    a, b = pred == value, truth == value
    return 200.0 * (a & b).sum() / max(a.sum() + b.sum(), 1)


@pytest.mark.slow
def test_own_unlabelled_data_howto(tmp_path):
    from cps4.datasets.synthetic import write_synthetic_dataset
    blocks = doc_blocks()
    assert set(blocks) == {'convert', 'vlm_config', 'stage1', 'cps4_config',
                           'stage2', 'predict'}
    work = tmp_path / 'project'
    work.mkdir()
    for name in ('tools', 'configs'):  # the commands run from a checkout
        (work / name).symlink_to(REPO_ROOT / name)
    synthetic = write_synthetic_dataset(
        tmp_path / 'synthetic', num_cases=len(ORDERS), seed=0,
        image_size=(64, 64), progress=False)
    truth = build_raw(synthetic, work / 'my_raw')
    (work / 'my_configs').mkdir()
    for block, short, n in (('vlm_config', 'vlm', STAGE1_ITERS),
                            ('cps4_config', 'cps4', STAGE2_ITERS)):
        (work / 'my_configs' / f'{short}.py').write_text(
            blocks[block] + SHORT[short].format(n=n, v=max(n // 5, 1)))
    log = tmp_path / 'howto.log'

    # 2. convert: labelled cases train and validate, the four without a
    # mask are unlabelled in every split, the ignored slices are 255
    run_block('convert', blocks['convert'], work, log)
    data = work / 'data' / 'my_spine'
    meta = json.loads((data / 'meta.json').read_text())
    assert {c for c, e in meta['cases'].items() if e['label'] is None} == (
        set(UNLABELLED))
    split = json.loads((data / 'splits/seed0_100pct.json').read_text())
    assert sorted(split['labelled'] + split['val']) == list(LABELLED)
    assert len(split['labelled']) == 2 and split['test'] == []
    assert sorted(split['unlabelled']) == list(UNLABELLED)
    # every case was brought to the stored order of most of them
    source = {c: e['source_orientation'] for c, e in meta['cases'].items()}
    assert meta['orientation'] == source['spine_000']
    assert len(set(source.values())) >= 3
    case = meta['cases']['spine_001']
    for i in range(case['n_slices']):
        png = np.array(Image.open(data / 'labels' / f'spine_001_{i:04d}.png'))
        # spine_001 is stored with axis 0 flipped: slices keep their order
        assert ((png == 255).all() if i < IGNORED_SLICES.stop else
                not (png == 255).any()), i

    # 3./4. stage 1 on the labelled cases, stage 2 on labelled + unlabelled
    run_block('stage1', blocks['stage1'], work, log)
    run_block('stage2', blocks['stage2'], work, log)
    train_log = '\n'.join(p.read_text() for p in sorted(
        (work / 'work_dirs/my_cps4').glob('*/*.log')))
    assert 'pl_mask_ratio' in train_log  # unlabelled batches were used
    assert 'pl_dice' not in train_log  # no hidden masks to score against
    assert re.search(r'loss: \d', train_log)
    assert 'nan' not in re.findall(r'loss: (\S+)', train_log)
    assert len(list((work / 'work_dirs/my_cps4').glob('best_mDice_iter_*'
                                                         '.pth'))) == 1

    # 5. segment the new volumes: each mask in its input's geometry, on
    # the voxels of the generator's labels stored the same way
    run_block('predict', blocks['predict'], work, log)
    values = np.asarray(meta['label_values'])
    from cps4.apis import inference_volume, init_model
    best = next((work / 'work_dirs/my_cps4').glob('best_mDice_iter_*.pth'))
    model = init_model(str(work / 'my_configs/cps4.py'), str(best))
    for name in NEW:
        mask = nib.load(str(work / 'work_dirs/my_masks' / f'{name}.nii.gz'))
        labels, affine = truth[name]
        np.testing.assert_allclose(mask.affine, affine, atol=1e-5)
        pred = np.asanyarray(mask.dataobj)
        assert pred.shape == labels.shape
        # the volume in the generator's own axis order gets the same mask
        i = len(LABELLED) + len(UNLABELLED) + NEW.index(name)
        own = inference_volume(model, str(
            synthetic / 'imagesTr' / f'spine_{i:03d}_0000.nii.gz'),
            progress=False).labels
        stored_own, _ = restore(values[own], np.eye(4), *ORDERS[name])
        np.testing.assert_array_equal(pred, stored_own, err_msg=name)
        present = [v for v in values[1:] if (labels == v).any()]
        right = np.mean([dice(pred, labels, v) for v in present])
        spine = dice(pred > 0, labels > 0, True)
        # the same mask mirrored cranio-caudally (the generator's axis 0)
        # and antero-posteriorly (axis 1): the voxels of another place
        perm = ORDERS[name][0]
        cranio = np.flip(pred, perm.index(0))
        antero = np.flip(pred, perm.index(1))
        wrong = (np.mean([dice(cranio, labels, v) for v in present]),
                 dice(antero > 0, labels > 0, True))
        print(f'{name}: mDice {right:.2f} (cranio-caudally mirrored '
              f'{wrong[0]:.2f}), spine Dice {spine:.2f} (antero-posteriorly '
              f'mirrored {wrong[1]:.2f})')
        # measured (seed 0): mDice 8.3-12.2 against 1.3-2.7 mirrored, spine
        # Dice 49-83 against 21-30; canonical copies of the volumes give
        # the same masks, so the low mDice is the short training's
        assert right > 5 and right > 3 * wrong[0], (name, right, wrong)
        assert spine > 40 and spine > wrong[1] + 15, (name, spine, wrong)
