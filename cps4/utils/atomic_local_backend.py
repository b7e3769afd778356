"""A local storage backend whose writes are atomic."""
import os
import os.path as osp
from pathlib import Path
from typing import Union

import mmengine
from mmengine.fileio import register_backend
from mmengine.fileio.backends import LocalBackend

from .atomic_file import atomic_file


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """:class:`LocalBackend` that never leaves a half-written file.

    ``put`` and ``put_text`` write to a temporary file in the destination
    folder, flush it to disk and rename it over the destination. A process
    killed while saving a checkpoint therefore leaves the previous
    ``iter_N.pth`` and ``last_checkpoint`` intact (plus, at worst, a
    ``.iter_N.pth.*.tmp`` file, which nothing reads). The schedules select
    it for the checkpoint hook with
    ``backend_args=dict(backend='atomic_local')``.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        self._atomic_write(obj, filepath)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        self._atomic_write(obj.encode(encoding), filepath)

    @staticmethod
    def _atomic_write(data: bytes, filepath: Union[str, Path]) -> None:
        mmengine.mkdir_or_exist(osp.dirname(osp.abspath(str(filepath))))
        with atomic_file(filepath) as tmp:
            with open(tmp, 'wb') as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
