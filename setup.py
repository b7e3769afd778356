"""Install the ``cps4`` package.

Use ``pip install --no-build-isolation -e .`` inside an environment that
already holds torch (see ``tools/setup_env.sh``).
"""
import os
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


def get_extensions():
    """Build ``cps4._C``: the CPU kernels always, CUDA ones when available.

    CUDA is compiled when torch is a CUDA build and nvcc is found (or when
    ``FORCE_CUDA=1``); ``CPS4_NO_EXT=1`` skips the extension entirely (the
    ops then fall back to their pure-PyTorch reference).
    """
    if os.getenv('CPS4_NO_EXT', '0') == '1':
        return [], {}
    from torch.utils import cpp_extension
    import torch
    src = Path('csrc') / 'pixel_text_attention'
    sources = [str(src / 'pixel_text_attention.cpp'),
               str(src / 'cpu' / 'pixel_text_attention_cpu.cpp')]
    cxx_flags = ['-O3', '-fopenmp', '-std=c++20']
    # The extension is built where it runs (editable install), so it may use
    # the build machine's vector units; CPS4_NATIVE_ARCH=0 for portable code.
    if os.getenv('CPS4_NATIVE_ARCH', '1') == '1':
        cxx_flags.append('-march=native')
    extra = dict(extra_compile_args=dict(cxx=cxx_flags),
                 extra_link_args=['-fopenmp'])
    with_cuda = os.getenv('FORCE_CUDA', '0') == '1' or (
        torch.version.cuda is not None
        and cpp_extension.CUDA_HOME is not None)
    if with_cuda:
        sources.append(str(src / 'cuda' / 'pixel_text_attention_cuda.cu'))
        extra['extra_compile_args']['nvcc'] = [
            '-O3', '-std=c++20', '--expt-relaxed-constexpr']
        ext = cpp_extension.CUDAExtension('cps4._C', sources, **extra)
    else:
        ext = cpp_extension.CppExtension('cps4._C', sources, **extra)
    return [ext], dict(build_ext=cpp_extension.BuildExtension)


ext_modules, cmdclass = get_extensions()

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
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    zip_safe=False,
)
