"""Track and plot the Dice of pseudo labels against hidden ground truth."""
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import Runner
from mmseg.registry import HOOKS

from cps4.utils.atomic_file import save_figure
from cps4.utils.fileio import write_json_atomic


@HOOKS.register_module()
class PseudoLabelQualityHook(Hook):
    """Collect the ``pl_*`` statistics the semi-supervised segmentor logs.

    :class:`cps4.models.SemiBaseSegmentor` returns, with its losses,
    ``pl_dice_teacher`` (and under CPS4 ``pl_dice_vlm``, ``pl_dice_fused``),
    ``pl_dice_masked`` and ``pl_mask_ratio`` whenever the unlabelled
    samples carry a hidden ground truth. This hook keeps their history,
    logs a summary every ``interval`` iterations and, at the end of
    training, writes ``pseudo_label_quality.json`` and a PNG plot of the
    moving averages into the work dir (both written atomically).

    Args:
        interval (int): Log a summary every this many iterations.
            Defaults to 100.
        window (int): Moving-average window of the plot. Defaults to 25.
        keys (Sequence[str], optional): Which statistics to keep; defaults
            to every key starting with ``pl_``.
    """

    priority = 'LOW'

    def __init__(self,
                 interval: int = 100,
                 window: int = 25,
                 keys: Optional[Sequence[str]] = None) -> None:
        self.interval = interval
        self.window = window
        self.keys = list(keys) if keys else None
        self.history: Dict[str, List[List[float]]] = defaultdict(list)

    def after_train_iter(self,
                         runner: Runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs:
            return
        for key, value in outputs.items():
            if not key.startswith('pl_'):
                continue
            if self.keys is not None and key not in self.keys:
                continue
            self.history[key].append([runner.iter + 1, float(value)])
        if self.history and (runner.iter + 1) % self.interval == 0:
            parts = []
            for key in sorted(self.history):
                recent = [v for _, v in self.history[key][-self.interval:]]
                parts.append(f'{key} {np.mean(recent):.4f}')
            print_log('pseudo labels (mean of last iterations): ' +
                      ', '.join(parts), logger='current')

    def summary(self, last: int = 100) -> Dict[str, float]:
        """Mean of each statistic over its last ``last`` records."""
        return {
            k: float(np.mean([v for _, v in h[-last:]]))
            for k, h in self.history.items() if h
        }

    def after_train(self, runner: Runner) -> None:
        # every rank keeps its own history; the main process writes it
        if not self.history or not is_main_process():
            return
        out_json = osp.join(runner.work_dir, 'pseudo_label_quality.json')
        write_json_atomic(out_json, dict(history=self.history,
                                         summary=self.summary()))
        png = osp.join(runner.work_dir, 'pseudo_label_quality.png')
        self.plot(png)
        print_log(f'pseudo-label quality: {self.summary()} -> {png}',
                  logger='current')

    def plot(self, path: str) -> None:
        """Write the moving averages of every statistic to ``path``."""
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 4))
        for key in sorted(self.history):
            arr = np.asarray(self.history[key], dtype=float)
            w = max(1, min(self.window, len(arr)))
            smooth = np.convolve(arr[:, 1], np.ones(w) / w, mode='valid')
            ax.plot(arr[w - 1:, 0], smooth, label=key)
        ax.set_xlabel('iteration')
        ax.set_ylabel(f'value (moving average over {self.window})')
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title('pseudo labels against the hidden ground truth')
        fig.tight_layout()
        save_figure(fig, path)
