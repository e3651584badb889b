"""What the tests take from the checkout beyond the package: the command-line
tools (``tools/``), which are scripts, not modules of ``mmlocal``."""
import importlib.util
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(relpath: str):
    """A command-line tool of this repository (``tools/...``) as a module, so
    a test calls its ``main(argv)`` and reads what it returns."""
    path = osp.join(ROOT, relpath)
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
