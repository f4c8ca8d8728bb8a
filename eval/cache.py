"""Generation cache: one append-only JSONL per (benchmark, model, backend, sampling, prompt, data source).

Each line holds one problem's responses and is fsync'ed when written, so an interrupted run resumes
without regenerating finished problems (a torn last line is dropped). A sidecar ``.meta.json`` records
the configuration the file belongs to.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, List

from .io_utils import append_jsonl, atomic_write_json, read_jsonl_tolerant


def cache_key(config: Dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


class GenerationCache:
    def __init__(self, output_dir: Path, benchmark: str, config: Dict[str, Any]):
        self.config = config
        self.key = cache_key(config)
        folder = Path(output_dir) / "generations"
        self.path = folder / f"{benchmark}-{self.key}.jsonl"
        self.meta_path = folder / f"{benchmark}-{self.key}.meta.json"
        if not self.meta_path.exists():
            atomic_write_json(self.meta_path, {"benchmark": benchmark, "key": self.key, "config": config})

    def load(self) -> Dict[str, List[str]]:
        """Cached responses by problem id (entries with the wrong number of responses are ignored)."""
        n = int(self.config["sampling"]["n"])
        return {
            str(row["id"]): list(row["responses"])
            for row in read_jsonl_tolerant(self.path)
            if isinstance(row.get("responses"), list) and len(row["responses"]) == n
        }

    def append(self, rows: List[dict]) -> None:
        append_jsonl(self.path, rows)
