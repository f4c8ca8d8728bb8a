"""Import placeholders for OpenRLHF's GPU-only dependencies, so its flags can be listed without them.

``openrlhf.cli.train_ppo_ray`` imports vLLM and flash-attn at module level although its parser
needs neither. On a CPU install (no ``vllm``, no ``flash_attn``) :func:`placeholders_for_absent`
lets that module import for ``--help`` only: each absent package becomes a placeholder whose
attributes raise a clear error when used. Packages that are installed are never shadowed, and
the placeholders (and every ``openrlhf`` module imported under them) are removed on exit.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import sys
import types
from typing import Iterator, List, Sequence

GPU_ONLY_PACKAGES = ("vllm", "flash_attn")


class _Absent:
    """Stands for a name of an absent package; any use other than import raises."""

    def __init__(self, qualname: str):
        self._qualname = qualname

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Absent(f"{self._qualname}.{name}")

    def __call__(self, *args, **kwargs):
        root = self._qualname.split(".")[0]
        raise ModuleNotFoundError(
            f"{self._qualname} is unavailable: {root} is not installed (only OpenRLHF's flags "
            f"can be listed here; training needs pip install 'openrlhf-steer[train]')",
            name=root,
        )


class _PlaceholderModule(types.ModuleType):
    __path__: List[str] = []  # a package: its submodules import too

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Absent(f"{self.__name__}.{name}")


class _PlaceholderFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, roots: Sequence[str]):
        self.roots = set(roots)

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.roots:
            return importlib.util.spec_from_loader(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _PlaceholderModule(spec.name)
        module.__version__ = "0+absent"
        return module

    def exec_module(self, module) -> None:
        return None


def absent(packages: Sequence[str] = GPU_ONLY_PACKAGES) -> List[str]:
    return [name for name in packages if name not in sys.modules and importlib.util.find_spec(name) is None]


@contextlib.contextmanager
def placeholders_for_absent(packages: Sequence[str] = GPU_ONLY_PACKAGES) -> Iterator[List[str]]:
    """Within the block, absent ``packages`` import as placeholders; yields their names."""
    missing = absent(packages)
    if not missing:
        yield []
        return
    finder = _PlaceholderFinder(missing)
    before = set(sys.modules)
    sys.meta_path.append(finder)  # last: a real package found by another finder always wins
    try:
        yield missing
    finally:
        sys.meta_path.remove(finder)
        for name in set(sys.modules) - before:
            if name.split(".")[0] in finder.roots or name.startswith("openrlhf."):
                del sys.modules[name]
