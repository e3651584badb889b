"""mmlocal: supervised local learning (DGL, InfoPro, PredSim, HPFF, MLAAN) for OpenMMLab."""
import os.path as osp

from setuptools import find_packages, setup


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(osp.dirname(__file__), 'mmlocal', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_requirements(name: str) -> list:
    path = osp.join(osp.dirname(__file__), 'requirements', name)
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith('#')]


setup(
    name='mmlocal',
    version=read_version(),
    description='Supervised local learning (DGL, InfoPro, PredSim, HPFF, MLAAN) '
    'for mmsegmentation, mmpretrain and mmdetection',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'docs')),
    python_requires='>=3.9',
    # torch and mmcv are installed first by tools/setup_env.sh (mmcv must be
    # compiled against the installed torch), so they are not pulled from here.
    install_requires=read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt')},
    license='Apache License 2.0',
    zip_safe=False,
)
