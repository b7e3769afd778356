"""Write a file or a folder so that no reader ever sees it half-written."""
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _file_mode() -> int:
    """Permission bits of a new regular file under the current umask."""
    return 0o666 & ~_umask()


@contextmanager
def atomic_file(path: Union[str, Path], suffix: str = '.tmp') -> Iterator[str]:
    """A temporary file name next to ``path``, renamed over it on success.

    Write to the yielded name; when the ``with`` block ends without an error
    the file gets the usual permissions and replaces ``path`` in one rename.
    On any error (including ``KeyboardInterrupt``) the temporary file is
    removed and ``path`` keeps its previous content.

    Example:
        >>> with atomic_file('result.json') as tmp:
        ...     with open(tmp, 'w') as f:
        ...         f.write('{}')

    Args:
        path (str | Path): Destination file; its folder must exist.
        suffix (str): Suffix of the temporary name; writers that choose the
            format from the name (``.nii.gz``, ``.png``) need the real one.

    Yields:
        str: The temporary file's path (``.<name>.<random><suffix>``).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.',
                               suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


@contextmanager
def atomic_dir(path: Union[str, Path]) -> Iterator[Path]:
    """A temporary folder next to ``path`` that replaces it on success.

    Fill the yielded folder; when the ``with`` block ends without an error
    it replaces ``path`` (an existing folder is moved aside first and put
    back if the swap fails). On any error the temporary folder is removed
    and ``path`` keeps its previous content, so a set of files written
    together is never mixed with an earlier set.

    Args:
        path (str | Path): Destination folder; its parent is created.

    Yields:
        Path: The temporary folder (``.<name>.tmp-<random>``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{path.name}.tmp-',
                                dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp made it 0o700
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f'.{path.name}.old-',
                                        dir=path.parent))
            os.replace(path, old / path.name)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old / path.name, path)  # put the old one back
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_figure(fig, path: Union[str, Path], dpi: int = 120) -> None:
    """Save a matplotlib figure through :func:`atomic_file`, then close it.

    Args:
        fig (matplotlib.figure.Figure): The figure; closed in any case.
        path (str | Path): Destination image; its folder must exist.
        dpi (int): Resolution. Defaults to 120.
    """
    import matplotlib.pyplot as plt
    try:
        with atomic_file(path, Path(path).suffix or '.png') as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
