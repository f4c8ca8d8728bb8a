"""File helpers: line-numbered JSONL reading, atomic writes, crash-safe appends."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, List, Tuple, Union

from openrlhf_steer_eval.atomic_io import atomic_write_text  # also used by other eval modules

PathLike = Union[str, os.PathLike]


def iter_jsonl(path: PathLike) -> Iterator[Tuple[int, dict]]:
    """Yield ``(line_number, object)`` for each non-blank line; bad lines raise naming file:line."""
    path = Path(path)
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno}); "
                    "each line must be one JSON object"
                ) from None
            if not isinstance(obj, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def read_jsonl(path: PathLike) -> List[dict]:
    return [obj for _, obj in iter_jsonl(path)]


def atomic_write_json(path: PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def atomic_write_jsonl(path: PathLike, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def append_jsonl(path: PathLike, rows: Iterable[dict]) -> None:
    """Append rows and fsync, so a crash loses at most a partly written last line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl_tolerant(path: PathLike) -> List[dict]:
    """Read an append-only cache file; a torn final line (from a crash) is dropped and truncated away."""
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    rows: List[dict] = []
    good_bytes = 0
    for line in raw.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break  # torn tail
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
        good_bytes += len(line)
    if good_bytes != len(raw):
        with path.open("r+b") as fh:
            fh.truncate(good_bytes)
    return rows
