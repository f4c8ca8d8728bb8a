"""Run a function on a module right after it is first imported (test support for CPU stand-ins)."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from typing import Callable, Dict, List


class _AfterImport(importlib.abc.MetaPathFinder):
    def __init__(self):
        self.hooks: Dict[str, List[Callable]] = {}

    def find_spec(self, name, path=None, target=None):
        hooks = self.hooks.pop(name, None)
        if not hooks:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            for hook in hooks:
                hook(module)

        spec.loader.exec_module = exec_module
        return spec


_FINDER = _AfterImport()


def after_import(module_name: str, hook: Callable) -> None:
    """``hook(module)`` once ``module_name`` is imported (now, if it already is)."""
    if module_name in sys.modules:
        hook(sys.modules[module_name])
        return
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    _FINDER.hooks.setdefault(module_name, []).append(hook)
