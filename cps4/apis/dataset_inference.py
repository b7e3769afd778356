"""Run a model from :func:`~cps4.apis.init_model` over a split subset.

The analysis tools score or draw a model on the labelled slices of a
dataset; this is their shared loop: the config's test dataset with another
subset, batches of its samples through ``model.test_step`` (the same
preprocessing and prediction as ``tools/test.py``).

Example::

    from cps4.apis import build_test_dataset, inference_dataset, init_model

    model = init_model(CONFIG, CHECKPOINT)
    dataset = build_test_dataset(model.cfg, subset='val')
    for batch, samples in inference_dataset(model, dataset):
        ...  # samples carry pred_sem_seg and gt_sem_seg
"""
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import Evaluator
from mmengine.runner.amp import autocast
from mmengine.utils import ProgressBar


def build_test_dataset(cfg: Config, subset: Optional[str] = None):
    """The test dataset of ``cfg`` (its test pipeline), on ``subset`` of the
    split (``'val'``, ``'test'``, ...) instead of the config's."""
    from mmseg.registry import DATASETS
    dataset_cfg = cfg.test_dataloader.dataset.copy()
    if subset is not None:
        dataset_cfg['subset'] = subset
    return DATASETS.build(dataset_cfg)


def inference_dataset(model: nn.Module,
                      dataset,
                      indices: Optional[Sequence[int]] = None,
                      batch_size: int = 8,
                      progress: bool = True,
                      amp: Optional[bool] = None) -> Iterator[Tuple[dict,
                                                                   List]]:
    """Predict ``dataset`` (or its ``indices``) batch by batch.

    Args:
        model (nn.Module): From :func:`~cps4.apis.init_model`.
        dataset: A dataset whose items are packed model inputs.
        indices (Sequence[int], optional): Items to predict, in this order.
            Defaults to all.
        batch_size (int): Items per forward pass.
        progress (bool): Show a progress bar.
        amp (bool, optional): Mixed-precision autocast; defaults to the
            config's ``test_cfg.fp16``.

    Yields:
        tuple: The collated batch (``inputs``, ``data_samples``) and the
        predicted data samples, in ``indices`` order.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    order = list(range(len(dataset))) if indices is None else list(indices)
    cfg = getattr(model, 'cfg', None) or {}
    if amp is None:
        amp = bool((cfg.get('test_cfg') or {}).get('fp16', False))
    device_type = next(model.parameters()).device.type
    bar = ProgressBar(len(order)) if progress and order else None
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = pseudo_collate([dataset[i] for i in chunk])
            with autocast(device_type=device_type, enabled=amp):
                samples = model.test_step(batch)
            yield batch, samples
            if bar is not None:
                for _ in chunk:
                    bar.update()
    if bar is not None:
        bar.file.write('\n')


def evaluate_dataset(model: nn.Module,
                     dataset,
                     metric: Optional[dict] = None,
                     batch_size: int = 8,
                     progress: bool = True) -> dict:
    """Score ``model`` on every item of ``dataset`` with one metric.

    Args:
        model (nn.Module): From :func:`~cps4.apis.init_model`.
        dataset: From :func:`build_test_dataset`.
        metric (dict, optional): Metric config; defaults to
            ``dict(type='VolumeDiceMetric')``, the metric of ``tools/test.py``.
        batch_size (int): Items per forward pass.
        progress (bool): Show a progress bar.

    Returns:
        dict: The metric's results (``mDice``, ``Dice.<class>``, ...).
    """
    evaluator = Evaluator(metric or dict(type='VolumeDiceMetric'))
    evaluator.dataset_meta = dataset.metainfo
    for batch, samples in inference_dataset(model, dataset,
                                            batch_size=batch_size,
                                            progress=progress):
        evaluator.process(samples, batch)
    return evaluator.evaluate(len(dataset))
