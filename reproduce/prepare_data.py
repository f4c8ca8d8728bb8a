#!/usr/bin/env python
"""Write the OpenRLHF prompt dataset for the reproduction runs.

    python reproduce/prepare_data.py --source BytedTsinghua-SIA/DAPO-Math-17k --output data/dapo17k.jsonl
    python reproduce/prepare_data.py --source dapo-math-17k.parquet --output data/kmeans616.jsonl \
        --subset kmeans --size 616 --clusters 8 --seed 0

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
    p.add_argument("--seed", type=int, default=0, help="seed of the subset draw / k-means (default 0)")
    p.add_argument("--limit", type=int, default=None, help="keep only the first N unique problems (smoke runs)")
    p.add_argument("--no-dedup", action="store_true", help="keep repeated problems (not what the papers trained on)")
    p.add_argument("--force", action="store_true", help="rewrite the output even if a matching one exists")
    return p


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
            options = {"n_clusters": args.clusters or max(1, args.size // 8), "text_of": lambda r: r.problem}
        records = make_subset(args.subset, records, args.size, seed=args.seed, **options)
    info = write_openrlhf_jsonl(records, out, manifest={"request": request, "load_stats": stats})
    print(
        f"[prepare_data] wrote {info['rows']} prompts to {out} (read {stats['rows_read']} rows, {stats['unique']} "
        f"unique)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
