"""Re-estimate a model's BatchNorm statistics on unlabelled images (AdaBN,
Li et al., 2016), without touching its weights."""
from typing import List

import torch
from mmengine.dataset import pseudo_collate
from mmengine.utils import ProgressBar
from torch import nn


def _norm_layers(model: nn.Module) -> List[nn.Module]:
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def adapt_batchnorm(model: nn.Module, dataset, batch_size: int = 8,
                    progress: bool = True) -> int:
    """Replace the running mean and variance of every BatchNorm layer of
    ``model`` by their cumulative average over the batches of ``dataset``.

    Each layer's statistics are reset and then averaged over the batches
    (``momentum=None``), as in training mode; the weights are not changed
    and the model is left in eval mode with the layers' momentum restored.
    Layers the ``mode='tensor'`` forward does not reach (e.g. the teacher
    and the VLM of a stage-2 model) keep their statistics. Batches hold
    consecutive items of one image shape (no padding).

    Args:
        model (nn.Module): A segmentor from :func:`~cps4.apis.init_model`
            (its ``data_preprocessor`` and ``mode='tensor'`` forward are
            used).
        dataset: Items are packed model inputs; labels are not needed
            (build it without ``LoadAnnotations``).
        batch_size (int): Most items per forward pass.
        progress (bool): Show a progress bar.

    Returns:
        int: The number of BatchNorm layers adapted (those on the forward
        path).

    Raises:
        ValueError: ``model`` has no BatchNorm layer, or ``dataset`` is
            empty.
    """
    norms = _norm_layers(model)
    if not norms:
        raise ValueError(f'{type(model).__name__} has no BatchNorm layer '
                         'to adapt')
    if len(dataset) == 0:
        raise ValueError('no images to estimate the statistics on')
    momenta = [m.momentum for m in norms]
    saved = [(m.running_mean.clone(), m.running_var.clone(),
              m.num_batches_tracked.clone()) for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
        m.train()
    bar = ProgressBar(len(dataset)) if progress else None

    def forward(items: list) -> None:
        data = model.data_preprocessor(pseudo_collate(items), False)
        model(data['inputs'], data['data_samples'], mode='tensor')
        if bar is not None:
            for _ in items:
                bar.update()

    try:
        batch: list = []
        for i in range(len(dataset)):
            item = dataset[i]
            if batch and (len(batch) == batch_size or item['inputs'].shape
                          != batch[0]['inputs'].shape):
                forward(batch)
                batch = []
            batch.append(item)
        forward(batch)
    finally:
        adapted = 0
        for m, momentum, (mean, var, count) in zip(norms, momenta, saved):
            m.momentum = momentum
            m.eval()
            if m.num_batches_tracked.item() == 0:  # not on the forward path
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(count)
            else:
                adapted += 1
        if bar is not None:
            bar.file.write('\n')
    return adapted
