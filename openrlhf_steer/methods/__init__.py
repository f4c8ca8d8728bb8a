"""The method registry: ``build_method(name, config)``, ``compose_methods``, ``describe_methods``.

Importing this package registers every method module listed in ``_METHOD_MODULES``.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import List

from openrlhf_steer.methods.base import (  # noqa: F401  (re-exported contract)
    AGG_MODES, GroupInputs, LossConfig, LossInputs, Method, MethodConfig, available_methods, build_method,
    get_method_class, register_method,
)
from openrlhf_steer.methods.compose import ComposedMethod, compose_methods  # noqa: F401

_METHOD_MODULES = (
    "grpo",
    "steer",
    "advantage_sign",
    "quadrant",
    "clipping",
    "entropy_regularization",
    "covariance",
    "entropy_advantage",
    "forking_tokens",
    "outcome_advantages",
    "gtpo",
    "kl_penalty",
)

for _module in _METHOD_MODULES:
    try:
        importlib.import_module(f"{__name__}.{_module}")
    except ModuleNotFoundError as exc:  # a module still being written must not break the others
        if exc.name != f"{__name__}.{_module}":
            raise


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


_HOOK_LABELS = (
    ("shape_rewards", "a:rewards"), ("compute_advantages", "a:advantages"), ("shape_advantages", "a:token-advantages"),
    ("token_weights", "b:weights"), ("loss_config", "c:clip-range"), ("clip_mask", "c:clip-mask"),
    ("extra_token_terms", "d:extra-terms"), ("on_step_end", "e:controller"),
)


def method_hooks(cls) -> List[str]:
    """Labels of the hooks a method class overrides, e.g. ['b:weights']."""
    return [label for hook, label in _HOOK_LABELS if getattr(cls, hook) is not getattr(Method, hook)]


def describe_methods(names: List[str] = None) -> str:
    """Human-readable list of the registered methods, their papers and options with help texts."""
    lines: List[str] = []
    for name in names or available_methods():
        cls = get_method_class(name)
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        lines.append(f"{name}  [{cls.paper}]  hooks: {', '.join(method_hooks(cls)) or 'none'}")
        if doc:
            lines.append(f"    {doc}")
        fields = dataclasses.fields(cls.config_cls)
        if not fields:
            lines.append("    (no options)")
        for f in fields:
            default = f.default if f.default is not dataclasses.MISSING else None
            lines.append(f"    --{f.name} ({_type_name(f.type)}, default {default!r}): {f.metadata.get('help', '')}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
