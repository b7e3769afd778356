"""What a benchmark figure depends on besides its command: the code
version, the numeric libraries and the number of threads."""
import json
import platform
import subprocess
from importlib import metadata
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from .schedules import REPO_ROOT

#: Distributions whose version can change a trained model's numbers
#: (the first installed name of each group is recorded).
PACKAGES = (('torch', ), ('numpy', ), ('scipy', ), ('pillow', ),
            ('opencv-python', 'opencv-python-headless'), ('mmcv', ),
            ('mmengine', ), ('mmsegmentation', ), ('transformers', ))


def _version(names: Sequence[str]) -> Optional[str]:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _git_commit() -> Optional[str]:
    """``HEAD`` of the repository, with ``+changes`` when the tracked
    files differ from it; None outside a git checkout."""
    try:
        head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=30)
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ['git', 'status', '--porcelain', '--untracked-files=no'],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = head.stdout.strip()[:12]
    return commit + ('+changes' if status.stdout.strip() else '')


def environment() -> dict:
    """The environment of this process, as a cell's record keeps it.

    The training and test subprocesses of a cell inherit it: the same
    interpreter and packages and the same ``OMP_NUM_THREADS``. At one or
    two labelled cases a different thread count or numeric library can
    move a cell's mDice by more than the difference between methods
    (docs/results.md, the demo re-run), so each figure carries it.

    Returns:
        dict: ``commit`` (None outside a git checkout), ``python``,
        ``threads`` (``torch.get_num_threads()``) and ``packages``
        (distribution name to version, None when not installed).
    """
    return dict(commit=_git_commit(), python=platform.python_version(),
                threads=torch.get_num_threads(),
                packages={names[0]: _version(names) for names in PACKAGES})


def environment_table(records: Sequence[dict]) -> str:
    """Markdown table of the environments the records were obtained in:
    one row per distinct environment, with the cells that share it.
    Derived rows (``METHOD+best``, ``+order``, ``+adabn``) belong to their
    cell and are left out; records written before environments were kept
    count as not recorded."""
    groups: Dict[str, Tuple[Optional[dict], List[str]]] = {}
    for r in records:
        if '+' in r['method']:
            continue
        env = r.get('environment')
        key = json.dumps(env, sort_keys=True)
        groups.setdefault(key, (env, []))[1].append(
            f'{r["method"]}/{r.get("labels", "")}/seed{r["seed"]}')
    rows: List[Tuple[str, ...]] = []
    for env, cells in groups.values():
        if env is None:
            rows.append(('not recorded', '-', '-', '-', str(len(cells)),
                         ', '.join(cells)))
            continue
        packages = ', '.join(f'{name} {version}' for name, version in
                             env['packages'].items() if version)
        rows.append((str(env['commit']), env['python'], str(env['threads']),
                     packages, str(len(cells)), ', '.join(cells)))
    lines = ['| commit | python | threads | packages | cells | which |',
             '| --- | --- | --- | --- | --- | --- |']
    lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
    return '\n'.join(lines) + '\n'
