#!/usr/bin/env python
"""A copy of a model with a larger context window, for runs whose prompt + response exceed its config.

    python reproduce/prepare_model.py --model Qwen/Qwen2.5-Math-7B --max-position-embeddings 32768 \
        --output runs/reproduce/posadv_table2/models/Qwen2.5-Math-7B-ctx32768

Why: the released Qwen2.5-Math-7B config has ``max_position_embeddings`` 4096, so vLLM refuses a
``max_model_len`` of prompt 1024 + response 4096 (Pos-Adv App. B), and OpenRLHF 0.11.2 has no flag that passes
a config override to vLLM (no ``hf_overrides``) or to the DeepSpeed actor. Both load the model from
``--actor.model_name_or_path``, so the override reaches both through a folder whose ``config.json`` carries the
larger value: every other file of the model is a symbolic link to the original (no weights are copied), and
``rope_theta`` / ``rope_scaling`` are kept. veRL's own DAPO recipe for this model does the same with
``override_config.max_position_embeddings=32768`` (see the ``max_position_embeddings`` entry of
reproduce/configs/recipes/posadv.yaml).

The folder is built under a temporary name and renamed into place (atomic); ``context_override.json`` records
the model, the original and the new value. An existing folder with the same record is kept (resume); a different
one is an error unless ``--force``. The model is a local folder or a hub id (resolved with huggingface_hub, which
uses its cache or downloads).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict

MANIFEST = "context_override.json"
FIELD = "max_position_embeddings"


def resolve_model_dir(model: str) -> Path:
    """A local folder as is; a hub id through ``huggingface_hub.snapshot_download`` (cache first)."""
    path = Path(os.path.expanduser(model))
    if path.is_dir():
        return path.resolve()
    if model.startswith((".", "/", "~")):
        raise FileNotFoundError(f"--model {model}: no such folder")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise RuntimeError("resolving a hub id needs huggingface_hub; or pass the model's local folder") from None
    try:
        return Path(snapshot_download(model)).resolve()
    except Exception as exc:
        raise RuntimeError(
            f"cannot fetch {model!r} from the hub ({type(exc).__name__}: {exc}); offline, pass its local folder "
            "(e.g. the snapshot under ~/.cache/huggingface/hub)"
        ) from None


def extended_config(config: Dict[str, Any], tokens: int, model: str) -> Dict[str, Any]:
    """``config`` with ``max_position_embeddings`` raised to ``tokens`` (refuses to lower it)."""
    if FIELD not in config:
        raise ValueError(f"{model}: config.json has no {FIELD}; this override applies to RoPE decoder configs")
    original = int(config[FIELD])
    if tokens < original:
        raise ValueError(
            f"--max-position-embeddings {tokens} is below {model}'s own {original}; a context override only "
            "raises it (set the recipe's max_position_embeddings to null for this model)"
        )
    return dict(config, **{FIELD: int(tokens)})


def manifest_for(model: str, source: Path, original: int, tokens: int) -> Dict[str, Any]:
    return {"model": model, "source_dir": str(source), "field": FIELD, "original": original, "value": tokens}


def build(model: str, tokens: int, output: Path, force: bool = False) -> Path:
    """Write the extended-context copy of ``model`` to ``output``; return ``output``."""
    output = Path(output)
    source = resolve_model_dir(model)
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    new_config = extended_config(config, tokens, model)
    record = manifest_for(model, source, int(config[FIELD]), int(tokens))
    if output.exists():
        old = output / MANIFEST
        if old.is_file() and json.loads(old.read_text(encoding="utf-8")) == record and not force:
            print(f"[prepare_model] {output} is up to date ({FIELD} {tokens}); --force to rebuild")
            return output
        if not force:
            raise FileExistsError(f"{output} exists and was built from another request; --force replaces it")
        shutil.rmtree(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.tmp-"))
    try:
        for entry in sorted(source.iterdir()):
            if entry.name in ("config.json", MANIFEST) or entry.name.startswith("."):
                continue
            (tmp / entry.name).symlink_to(entry.resolve())
        (tmp / "config.json").write_text(json.dumps(new_config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        (tmp / MANIFEST).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"[prepare_model] {output}: {model} with {FIELD} {record['original']} -> {tokens} (weights linked)")
    return output


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="hub id or local folder of the model")
    p.add_argument("--max-position-embeddings", type=int, required=True, help="the context window of the copy")
    p.add_argument("--output", required=True, help="folder to write (built under a temporary name, then renamed)")
    p.add_argument("--force", action="store_true", help="rebuild even if a matching copy exists")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    build(args.model, args.max_position_embeddings, Path(args.output), force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
