"""Crash-safe file output: every artefact is written to a temporary file and moved into place."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, List, Mapping

import torch

from openrlhf_steer_eval.atomic_io import atomic_path, atomic_write_text


def _json_safe(value: Any) -> Any:
    """NaN/inf are not JSON; store them as null so every artefact stays strictly parseable."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _json_safe(value.tolist())
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _json_safe(value.item())
    return value


def write_json(path: Path, payload: Any) -> None:
    text = json.dumps(_json_safe(payload), indent=2, sort_keys=False, allow_nan=False)
    atomic_write_text(path, text + "\n")


def write_text(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def read_json(path: Path) -> Any:
    with open(path, "r", encoding="utf-8") as handle:
        return json.load(handle)


def save_torch(path: Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def read_jsonl(path: Path) -> List[dict]:
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    with open(path, "r", encoding="utf-8") as handle:
        lines = [line.strip() for line in handle]
    lines = [line for line in lines if line]
    for index, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if index == len(lines) - 1:  # a write torn by a crash: the resume rewrites it
                break
            raise ValueError(
                f"{path}: line {index + 1} is not valid JSON; delete the file to restart this run"
            ) from None
    return rows


def rewrite_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Replace a JSONL file atomically (used on resume to drop rows past the last checkpoint)."""
    text = "".join(json.dumps(_json_safe(dict(r)), allow_nan=False) + "\n" for r in rows)
    atomic_write_text(path, text)


def append_jsonl(path: Path, row: Mapping[str, Any]) -> None:
    """Append one row and fsync; a torn last line is dropped by ``read_jsonl``'s caller on resume."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(_json_safe(dict(row)), allow_nan=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
