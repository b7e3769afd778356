"""cps4.utils.atomic_file: all or nothing."""
import os

import pytest

from cps4.utils import atomic_file


def test_success_replaces_with_usual_permissions(tmp_path):
    dest = tmp_path / 'out.json'
    dest.write_text('old')
    with atomic_file(dest, '.json') as tmp:
        assert tmp.endswith('.json') and os.path.dirname(tmp) == str(tmp_path)
        with open(tmp, 'w') as f:
            f.write('new')
        assert dest.read_text() == 'old'  # not visible before the rename
    assert dest.read_text() == 'new'
    umask = os.umask(0)
    os.umask(umask)
    assert dest.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ['out.json']


@pytest.mark.parametrize('error', [RuntimeError, KeyboardInterrupt])
def test_error_keeps_old_content_and_no_temporary(tmp_path, error):
    dest = tmp_path / 'out.png'
    dest.write_bytes(b'good')
    with pytest.raises(error):
        with atomic_file(dest, '.png') as tmp:
            with open(tmp, 'wb') as f:
                f.write(b'half')
            raise error('killed while writing')
    assert dest.read_bytes() == b'good'
    assert [p.name for p in tmp_path.iterdir()] == ['out.png']


def test_save_figure_writes_png_and_closes(tmp_path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from cps4.utils import save_figure
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    save_figure(fig, tmp_path / 'plot.png')
    assert (tmp_path / 'plot.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert not plt.fignum_exists(fig.number)
    assert [p.name for p in tmp_path.iterdir()] == ['plot.png']
