"""The entropy target's options, controllers and levers as text (``openrlhf-steer methods``) and as the
README's Markdown table (``openrlhf-steer methods --target-markdown``; a test keeps the README in sync)."""

from __future__ import annotations

import dataclasses
from typing import List

from openrlhf_steer.control.config import EntropyTargetConfig
from openrlhf_steer.control.controllers import CONTROLLERS
from openrlhf_steer.control.levers import LEVERS


def _default(f: dataclasses.Field):
    return f.default if f.default is not dataclasses.MISSING else None


def _direction(direction: int) -> str:
    return "raises" if direction > 0 else "lowers"


def describe_target() -> str:
    """Every ``--entropy.target.<option>`` with its help, then the controllers and the levers."""
    lines: List[str] = [
        "target  [entropy target: controller + lever, docs/entropy_targets.md]  hooks: e:controller (rollout step)",
        "    defined in openrlhf_steer/control/ (EntropyTargetConfig, TargetedMethod)",
    ]
    for f in dataclasses.fields(EntropyTargetConfig):
        lines.append(f"    --entropy.target.{f.name} (default {_default(f)!r}): {f.metadata.get('help', '')}")
    lines.append("  controllers:")
    for name, cls in sorted(CONTROLLERS.items()):
        lines.append(f"    {name}: {cls.reference}")
    lines.append("  levers (raising the lever ... the entropy):")
    for name, cls in sorted(LEVERS.items()):
        lines.append(f"    {name} ({', '.join(cls.methods)}): {_direction(cls.direction)}; {cls.why}")
    return "\n".join(lines) + "\n"


def target_markdown_table() -> str:
    """The README's table of the target options, controllers and levers."""
    rows = ["| option | default | what it sets (source) |", "|---|---|---|"]
    for f in dataclasses.fields(EntropyTargetConfig):
        help_text = f.metadata.get("help", "").replace("|", "\\|")
        rows.append(f"| `--entropy.target.{f.name}` | `{_default(f)!r}` | {help_text} |")
    rows += ["", "| controller | reference |", "|---|---|"]
    rows += [f"| `{name}` | {cls.reference} |" for name, cls in sorted(CONTROLLERS.items())]
    rows += ["", "| lever | methods | raising it ... the entropy | why |", "|---|---|---|---|"]
    rows += [
        f"| `{name}` | {', '.join(f'`{m}`' for m in cls.methods)} | {_direction(cls.direction)} | {cls.why} |"
        for name, cls in sorted(LEVERS.items())
    ]
    return "\n".join(rows) + "\n"
