#!/usr/bin/env python
"""Write the OpenRLHF prompt dataset for the reproduction runs.

    python reproduce/prepare_data.py --source BytedTsinghua-SIA/DAPO-Math-17k --output data/dapo17k.jsonl
    python reproduce/prepare_data.py --source dapo-math-17k.parquet --output data/kmeans616.jsonl \
        --subset kmeans_top_clusters --size 616 --clusters 50 --seed 0 --embed-model Qwen/Qwen2.5-Math-7B

K-means subsets embed each problem with ``--featurizer`` (default: App. D.3's mean-pooled final-layer
states of ``--embed-model``, cached under ``--embed-cache``; ``hashed_tfidf`` is the model-free fallback).

The source is a hub dataset id (loaded lazily with ``datasets``) or a local .parquet/.jsonl/.json
file in DAPO-Math-17k's format. Rows are deduplicated, wrapped in the DAPO prompt template and
written as one-message chat lists (``prompt``) with the gold answer (``label``), atomically, with a
``<output>.manifest.json`` recording counts, the subset rule and a sha256. An existing output whose
manifest matches the request is kept (resume).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from openrlhf_steer.data import DAPO_HF_ID, load_dapo_math, make_subset, write_openrlhf_jsonl  # noqa: E402
from openrlhf_steer.data.featurizers import DEFAULT_FEATURIZER, FEATURIZERS, PAPER_EMBED_MODEL  # noqa: E402
from openrlhf_steer.data.subsets import SUBSET_STRATEGIES  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default=DAPO_HF_ID, help=f"hub id or local file (default {DAPO_HF_ID})")
    p.add_argument("--split", default="train", help="hub split (default train)")
    p.add_argument("--output", required=True, help="output .jsonl path")
    p.add_argument(
        "--subset", choices=sorted(SUBSET_STRATEGIES), default=None, help="data-diversity subset (Jin et al. §6.3)"
    )
    p.add_argument("--size", type=int, default=None, help="subset size (required with --subset)")
    p.add_argument("--clusters", type=int, default=None, help="k of the k-means subset (default: size // 8)")
    p.add_argument(
        "--featurizer",
        choices=sorted(FEATURIZERS),
        default=DEFAULT_FEATURIZER,
        help=f"prompt features of the k-means subsets (default {DEFAULT_FEATURIZER}: Jin et al. App. D.3; "
        "hashed_tfidf: model-free fallback)",
    )
    p.add_argument(
        "--embed-model",
        default=PAPER_EMBED_MODEL,
        help=f"model whose final layer is mean-pooled (default {PAPER_EMBED_MODEL}, App. D.3)",
    )
    p.add_argument("--embed-batch-size", type=int, default=16, help="prompts per forward pass (default 16)")
    p.add_argument(
        "--embed-cache", default=None, help="embedding cache folder (default: <output folder>/embedding_cache)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the subset draw / k-means (default 0)")
    p.add_argument("--limit", type=int, default=None, help="keep only the first N unique problems (smoke runs)")
    p.add_argument("--no-dedup", action="store_true", help="keep repeated problems (not what the papers trained on)")
    p.add_argument("--force", action="store_true", help="rewrite the output even if a matching one exists")
    return p


def featurizer_options(args, out: Path) -> dict:
    if args.featurizer != DEFAULT_FEATURIZER:
        return {}
    cache = Path(args.embed_cache) if args.embed_cache else out.parent / "embedding_cache"
    return {"model": args.embed_model, "batch_size": args.embed_batch_size, "cache_dir": str(cache)}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.subset and not args.size:
        raise SystemExit("--subset needs --size N (e.g. --size 616)")
    request = {
        "source": args.source,
        "split": args.split,
        "subset": args.subset,
        "size": args.size,
        "clusters": args.clusters,
        "seed": args.seed,
        "featurizer": args.featurizer if (args.subset or "").startswith("kmeans") else None,
        "embed_model": args.embed_model
        if (args.subset or "").startswith("kmeans") and args.featurizer == DEFAULT_FEATURIZER
        else None,
        "limit": args.limit,
        "dedup": not args.no_dedup,
    }
    out = Path(args.output)
    manifest_path = Path(str(out) + ".manifest.json")
    if out.is_file() and manifest_path.is_file() and not args.force:
        old = json.loads(manifest_path.read_text())
        if old.get("request") == request:
            print(f"[prepare_data] {out} is up to date ({old.get('rows')} rows); --force to rebuild")
            return 0
    records, stats = load_dapo_math(args.source, split=args.split, dedup=not args.no_dedup)
    if args.limit:
        records = records[: args.limit]
    if args.subset:
        options = {}
        if args.subset.startswith("kmeans"):
            options = {
                "n_clusters": args.clusters or max(1, args.size // 8),
                "text_of": lambda r: r.problem,
                "featurizer": args.featurizer,
                "featurizer_options": featurizer_options(args, out),
            }
        records = make_subset(args.subset, records, args.size, seed=args.seed, **options)
    info = write_openrlhf_jsonl(records, out, manifest={"request": request, "load_stats": stats})
    print(
        f"[prepare_data] wrote {info['rows']} prompts to {out} (read {stats['rows_read']} rows, {stats['unique']} "
        f"unique)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
