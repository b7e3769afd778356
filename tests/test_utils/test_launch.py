"""cps4.utils.launch: leaving the process group at the end of a run."""
import torch
import torch.distributed as dist

from cps4.utils import close_dist


def test_close_dist_without_a_process_group_does_nothing():
    assert not dist.is_initialized()
    close_dist()
    assert not dist.is_initialized()


def test_close_dist_leaves_the_group_after_a_collective(tmp_path):
    store = dist.FileStore(str(tmp_path / 'store'), 1)
    dist.init_process_group('gloo', store=store, rank=0, world_size=1)
    try:
        value = torch.ones(3)
        dist.all_reduce(value)
        assert value.tolist() == [1.0, 1.0, 1.0]
        close_dist()
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
