"""The method registry: ``@register_method`` on a class, ``build_method(name, options)`` to get one.

Every module of this package registers its methods when imported; :func:`load_methods` imports them all
by scanning the package, so adding a method is adding a module. An import error is raised, never skipped.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Type

from openrlhf_steer.methods.base import Method

# Modules of the package that define the contract rather than methods.
INFRASTRUCTURE = frozenset({"base", "compose", "needs", "registry", "window", "describe"})

_REGISTRY: Dict[str, Type[Method]] = {}
_LOADED = False


def register_method(cls: Type[Method]) -> Type[Method]:
    """Class decorator: ``@register_method`` on a Method subclass with a unique ``name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(
            f"method name {cls.name!r} is registered twice ({_REGISTRY[cls.name].__name__} and {cls.__name__})"
        )
    _REGISTRY[cls.name] = cls
    return cls


def load_methods() -> None:
    """Import every method module of this package once (their ``@register_method`` fills the registry)."""
    global _LOADED
    if _LOADED:
        return
    package = importlib.import_module("openrlhf_steer.methods")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.name in INFRASTRUCTURE:
            continue
        importlib.import_module(f"{package.__name__}.{info.name}")
    _LOADED = True


def available_methods() -> List[str]:
    load_methods()
    return sorted(_REGISTRY)


def get_method_class(name: str) -> Type[Method]:
    load_methods()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown entropy-control method {name!r}; choose one of: {', '.join(available_methods())}"
        ) from None


def method_location(name: str) -> str:
    """Where a method is defined, relative to the repository root, e.g. ``openrlhf_steer/methods/steer.py``."""
    module = importlib.import_module(get_method_class(name).__module__)
    path = Path(module.__file__).resolve()
    package_root = Path(importlib.import_module("openrlhf_steer").__file__).resolve().parent.parent
    return path.relative_to(package_root).as_posix()


def build_method(name: str, config: Optional[Mapping[str, Any]] = None, **overrides: Any) -> Method:
    """Build a registered method from a name and config values (unknown keys are an error)."""
    cls = get_method_class(name)
    values = dict(config or {}, **overrides)
    known = {f.name for f in dataclasses.fields(cls.config_cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"method {name!r} has no option(s) {unknown}; its options are {sorted(known)}")
    return cls(cls.config_cls(**values))
