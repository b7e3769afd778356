"""Install the ``cps4`` package.

Use ``pip install --no-build-isolation -e .`` inside an environment that
already holds torch (see ``tools/setup_env.sh``).
"""
import re
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent


def get_version():
    """Read ``__version__`` from ``cps4/__init__.py``."""
    text = (ROOT / 'cps4' / '__init__.py').read_text()
    return re.search(r"__version__ = '([^']+)'", text).group(1)


def parse_requirements(fname):
    """Return the requirement lines of ``fname``, following ``-r`` includes."""
    reqs = []
    for line in (ROOT / fname).read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        if line.startswith('-r '):
            reqs += parse_requirements(Path(fname).parent / line[3:].strip())
        else:
            reqs.append(line)
    return reqs


setup(
    name='cps4',
    version=get_version(),
    description='Text-guided semi-supervised spine segmentation (CPS4) '
    'on OpenMMLab',
    long_description=(ROOT / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    python_requires='>=3.9',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'docs')),
    include_package_data=True,
    install_requires=parse_requirements('requirements/runtime.txt'),
    extras_require=dict(
        mim=parse_requirements('requirements/mminstall.txt'),
        tests=parse_requirements('requirements/tests.txt'),
        optional=parse_requirements('requirements/optional.txt'),
    ),
    zip_safe=False,
)
