"""Infinite sampler that mixes the sources of a ConcatDataset per batch."""
import itertools
from typing import Iterator, Optional, Sequence, Sized

import torch
from mmengine.dataset import ConcatDataset
from mmengine.dist import get_dist_info, sync_random_seed
from mmseg.registry import DATA_SAMPLERS
from torch.utils.data import Sampler


@DATA_SAMPLERS.register_module()
class MultiSourceSampler(Sampler):
    """Every batch holds a fixed number of samples from each source.

    With ``batch_size=8`` and ``source_ratio=[1, 1]`` over a
    ``ConcatDataset([labelled, unlabelled])`` each batch has 4 labelled and
    4 unlabelled slices, whatever the sizes of the two sets (the small
    labelled set is cycled more often). Each source is shuffled by its own
    infinite generator; under distributed training each rank takes every
    ``world_size``-th index of every source, so ranks see disjoint samples.

    Args:
        dataset (Sized): A :class:`mmengine.dataset.ConcatDataset`.
        batch_size (int): Samples per batch (per process); must equal the
            dataloader's ``batch_size``.
        source_ratio (Sequence[int | float]): Relative share of each
            source in a batch.
        shuffle (bool): Shuffle each source. Defaults to True.
        seed (int, optional): Base seed, shared across ranks. Defaults to
            a random one synced over ranks.
    """

    def __init__(self,
                 dataset: Sized,
                 batch_size: int,
                 source_ratio: Sequence[float],
                 shuffle: bool = True,
                 seed: Optional[int] = None) -> None:
        if not isinstance(dataset, ConcatDataset):
            raise TypeError(
                'MultiSourceSampler needs a ConcatDataset (one dataset per '
                f'source), got {type(dataset).__name__}; set '
                "train_dataloader.dataset=dict(type='ConcatDataset', "
                'datasets=[labelled, unlabelled]).')
        if len(source_ratio) != len(dataset.datasets):
            raise ValueError(
                f'MultiSourceSampler: {len(source_ratio)} source_ratio '
                f'entries for {len(dataset.datasets)} datasets.')
        if batch_size < len(source_ratio) or any(r <= 0
                                                 for r in source_ratio):
            raise ValueError(
                'MultiSourceSampler: need batch_size >= number of sources '
                f'and positive ratios, got batch_size={batch_size}, '
                f'source_ratio={list(source_ratio)}.')
        self.rank, self.world_size = get_dist_info()
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else seed
        self.cumulative_sizes = [0] + list(dataset.cumulative_sizes)
        total = float(sum(source_ratio))
        counts = [int(batch_size * r / total) for r in source_ratio]
        counts[0] += batch_size - sum(counts)
        if any(c == 0 for c in counts):
            raise ValueError(
                f'MultiSourceSampler: batch_size {batch_size} is too small '
                f'for source_ratio {list(source_ratio)} (counts {counts}).')
        self.num_per_source = counts
        for i, d in enumerate(dataset.datasets):
            if len(d) == 0:
                raise ValueError(f'MultiSourceSampler: source {i} '
                                 f'({type(d).__name__}) is empty.')

    def _infinite(self, source: int) -> Iterator[int]:
        size = len(self.dataset.datasets[source])
        gen = torch.Generator()
        gen.manual_seed(self.seed + source)
        while True:
            if self.shuffle:
                yield from torch.randperm(size, generator=gen).tolist()
            else:
                yield from range(size)

    def _rank_indices(self, source: int) -> Iterator[int]:
        offset = self.cumulative_sizes[source]
        it = itertools.islice(self._infinite(source), self.rank, None,
                              self.world_size)
        for idx in it:
            yield idx + offset

    def __iter__(self) -> Iterator[int]:
        streams = [self._rank_indices(s) for s in range(len(self.num_per_source))]
        while True:
            for stream, n in zip(streams, self.num_per_source):
                for _ in range(n):
                    yield next(stream)

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        """Unused: the sampler is infinite (for iteration-based loops)."""
