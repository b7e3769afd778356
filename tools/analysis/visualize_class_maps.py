"""Draw a stage-1 model's class maps: image, ground truth, B_k, unified map.

One row per chosen slice: the image, its ground truth, every class's binary
map B_k = sigmoid(S_k) and the unified multi-class map, in one PNG grid.

Example::

    python tools/analysis/visualize_class_maps.py CONFIG CHECKPOINT \
        --out docs/figures/class_maps.png --num-slices 2
"""
import argparse
import os
import os.path as osp

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402

from cps4.apis import (build_test_dataset, inference_dataset,  # noqa: E402
                       init_model)
from cps4.utils import save_figure  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Plot CPS4 class maps')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, help='output PNG')
    parser.add_argument('--subset', default='test',
                        help='split subset to draw from (default: test)')
    parser.add_argument('--num-slices', type=int, default=2)
    parser.add_argument('--slices', nargs='+', default=None,
                        help='explicit slices as CASE:INDEX')
    parser.add_argument('--max-cols', type=int, default=10,
                        help='panels per row (default: 10)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def pick_indices(dataset, args):
    """Indices of the requested slices (default: the most labelled ones)."""
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    if args.slices:
        wanted = {(c, int(i)) for c, i in (s.split(':') for s in args.slices)}
        idx = [i for i, d in enumerate(infos)
               if (d['case_id'], d['slice_idx']) in wanted]
        if len(idx) != len(wanted):
            raise ValueError(f'some of {sorted(wanted)} are not in the '
                             f'{args.subset!r} subset')
        return idx
    # the central slice of the first cases: most spine units are visible
    by_case = {}
    for i, d in enumerate(infos):
        by_case.setdefault(d['case_id'], []).append(i)
    picks = [v[len(v) // 2] for v in by_case.values()]
    return picks[:args.num_slices]


def main():
    args = parse_args()
    logger = MMLogger.get_instance('cps4_class_maps', log_level='INFO')
    model = init_model(args.config, args.checkpoint, args.device,
                       args.cfg_options)
    dataset = build_test_dataset(model.cfg, args.subset)
    classes = dataset.metainfo['classes']
    palette = np.array(dataset.metainfo['palette'], dtype=float) / 255
    cmap = ListedColormap(palette)

    indices = pick_indices(dataset, args)
    k = len(classes)
    n_panels = k + 3
    cols = min(args.max_cols, n_panels)
    rows_per_slice = -(-n_panels // cols)
    fig, axes = plt.subplots(
        rows_per_slice * len(indices), cols,
        figsize=(1.7 * cols, 1.9 * rows_per_slice * len(indices)),
        squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    labels = dict(cmap=cmap, vmin=0, vmax=k - 1, interpolation='nearest')
    binary = dict(cmap='magma', vmin=0, vmax=1, interpolation='nearest')
    predictions = inference_dataset(model, dataset, indices, batch_size=1,
                                    progress=False)
    for row, (idx, (batch, (result, ))) in enumerate(zip(indices,
                                                         predictions)):
        maps = result.class_maps.data.float().cpu().numpy()
        d = dataset.get_data_info(idx)
        panels = [(f"{d['case_id']}:{d['slice_idx']}",
                   batch['inputs'][0][0].numpy(), dict(cmap='gray')),
                  ('ground truth', result.gt_sem_seg.data[0].cpu().numpy(),
                   labels)]
        panels += [(f'B: {name}', maps[i], binary)
                   for i, name in enumerate(classes)]
        panels.append(('unified',
                       result.pred_sem_seg.data[0].cpu().numpy(), labels))
        for j, (title, data, style) in enumerate(panels):
            ax = axes[row * rows_per_slice + j // cols, j % cols]
            ax.imshow(data, **style)
            ax.set_title(title, fontsize=8)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    save_figure(fig, args.out, dpi=110)
    logger.info(f'wrote {args.out} ({len(indices)} slices x {n_panels} '
                'panels)')


if __name__ == '__main__':
    main()
