import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import cps4  # noqa: F401  (registers the safe globals)


class Payload:
    """An arbitrary object: must never be unpickled by a checkpoint load."""

    def __reduce__(self):
        return (print, ('pwned',))


def test_message_hub_state_round_trips_under_weights_only(tmp_path):
    hub = MessageHub.get_instance('cps4-test-ckpt')
    for v in (1.0, 2.0, 4.0):
        hub.update_scalar('train/loss', np.float64(v))
    hub.update_info('best_score', np.float32(0.5))
    path = tmp_path / 'ckpt.pth'
    torch.save({'message_hub': hub.state_dict(),
                'meta': {'seed': np.int64(3), 'arr': np.arange(3.0)}}, path)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    loaded = torch.load(path)  # weights_only=True is torch's default
    buf = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.mean() == pytest.approx(7.0 / 3)
    np.testing.assert_array_equal(loaded['meta']['arr'], np.arange(3.0))


def test_arbitrary_pickled_object_is_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': Payload()}, path)
    with pytest.raises(pickle.UnpicklingError, match='GLOBAL print was not an allowed global'):
        torch.load(path)
