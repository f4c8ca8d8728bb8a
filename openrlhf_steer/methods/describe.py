"""Human-readable descriptions of the registered methods: the CLI listing and the README/docs tables."""

from __future__ import annotations

import dataclasses
from typing import List, Optional

from openrlhf_steer.methods.base import Method
from openrlhf_steer.methods.registry import available_methods, get_method_class, method_location

_HOOK_LABELS = (
    ("shape_rewards", "a:rewards"),
    ("compute_advantages", "a:advantages"),
    ("shape_advantages", "a:token-advantages"),
    ("token_weights", "b:weights"),
    ("loss_config", "c:clip-range"),
    ("clip_mask", "c:clip-mask"),
    ("extra_token_terms", "d:extra-terms"),
    ("on_step_end", "e:controller"),
)


def method_hooks(cls) -> List[str]:
    """Labels of the hooks a method class overrides, e.g. ['b:weights']."""
    return [label for hook, label in _HOOK_LABELS if getattr(cls, hook) is not getattr(Method, hook)]


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _summary(cls) -> str:
    return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""


def describe_methods(names: Optional[List[str]] = None) -> str:
    """Every registered method (or ``names``): paper, hooks, file, and each option with its help text."""
    lines: List[str] = []
    for name in names or available_methods():
        cls = get_method_class(name)
        lines.append(f"{name}  [{cls.paper}]  hooks: {', '.join(method_hooks(cls)) or 'none'}")
        lines.append(f"    defined in {method_location(name)} ({cls.__name__})")
        if _summary(cls):
            lines.append(f"    {_summary(cls)}")
        fields = dataclasses.fields(cls.config_cls)
        if not fields:
            lines.append("    (no options)")
        for f in fields:
            default = f.default if f.default is not dataclasses.MISSING else None
            lines.append(f"    --{f.name} ({_type_name(f.type)}, default {default!r}): {f.metadata.get('help', '')}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def methods_markdown_table() -> str:
    """The method table of README.md and docs/methods.md, generated from the registry."""
    rows = ["| registry name | module | paper | hooks | what it changes |", "|---|---|---|---|---|"]
    for name in available_methods():
        cls = get_method_class(name)
        summary = _summary(cls).replace("|", "\\|")  # |Omega| inside a Markdown table cell
        rows.append(
            f"| `{name}` | `{method_location(name)}` | {cls.paper} | {', '.join(method_hooks(cls)) or '–'} "
            f"| {summary} |"
        )
    return "\n".join(rows) + "\n"
