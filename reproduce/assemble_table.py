#!/usr/bin/env python
"""Assemble a table from finished rows: ours / paper / difference per benchmark, as Markdown and JSON.

    python reproduce/assemble_table.py --config reproduce/configs/steer_main_qwen25_math_7b.yaml \
        --output-dir runs/reproduce/steer_main_qwen25_math_7b

Reads ``<output-dir>/rows/<row>/result.json`` for every row of the config (missing rows are shown
as "not run") and writes ``<output-dir>/<table>.md`` and ``<output-dir>/<table>.json`` atomically.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from repro_config import TableConfig, load_config  # noqa: E402

from openrlhf_steer.atomic_io import atomic_path, atomic_write_text  # noqa: E402

NOT_FOUND = "n/a (not found)"
NOT_RUN = "not run"


def mean_of(values: Sequence[Optional[float]]) -> Optional[float]:
    """Mean over the benchmarks, or None when any is missing (a partial mean would mislead)."""
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)  # type: ignore[arg-type]


def _fmt(v: Optional[float], missing: str) -> str:
    return missing if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"


def _fmt_diff(ours: Optional[float], paper: Optional[float]) -> str:
    if ours is None or paper is None:
        return "–"
    return f"{ours - paper:+.1f}"


def build_table(config: TableConfig, results: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """Table data: for each row, ours / paper / diff per benchmark plus the average column."""
    benches = list(config.benchmarks)
    rows = []
    for row in config.rows:
        res = results.get(row.name)
        ours: Dict[str, Optional[float]] = {b: None for b in benches}
        if res:
            ours.update({b: res.get("scores", {}).get(b) for b in benches})
        paper: Dict[str, Optional[float]] = {b: row.paper.get(b) for b in benches}
        avg_over = config.average_benchmarks or benches
        ours_avg = mean_of([ours[b] for b in avg_over]) if res else None
        paper_avg = row.paper.get("avg")
        if paper_avg is None:
            paper_avg = mean_of([paper[b] for b in avg_over])
        cells = {}
        for b in benches + ["avg"]:
            o = ours_avg if b == "avg" else ours[b]
            p = paper_avg if b == "avg" else paper[b]
            cells[b] = {"ours": o, "paper": p, "diff": None if o is None or p is None else o - p}
        rows.append(
            {
                "name": row.name,
                "label": row.label,
                "method": row.method,
                "status": "done" if res else "not run",
                "checkpoint": (res or {}).get("checkpoint"),
                "smoke": bool((res or {}).get("smoke")),
                "cells": cells,
                "paper_source": row.paper_source,
            }
        )
    return {
        "table": config.table,
        "title": config.title,
        "paper": config.paper,
        "metric": config.metric,
        "benchmarks": benches,
        "average_over": list(config.average_benchmarks or benches),
        "eval": {k: v.value for k, v in config.eval.items()},
        "selection": {k: v.value for k, v in config.selection.items()},
        "rows": rows,
    }


def render_markdown(table: Mapping[str, Any]) -> str:
    benches = list(table["benchmarks"]) + ["avg"]
    paper = table["paper"]
    lines = [f"# {table['title']}", ""]
    lines.append(f"Paper: {paper.get('name', '')} ({paper.get('id', '')}), {paper.get('table', '')}.")
    lines.append(f"Metric: {table['metric']} in %, sampling {json.dumps(table['eval'])}.")
    lines.append(f"Checkpoint selection: {json.dumps(table['selection'])}.")
    if table["average_over"] != table["benchmarks"]:
        lines.append(f"'avg' is the mean over {', '.join(table['average_over'])} (as in the paper).")
    if any(r["smoke"] for r in table["rows"]):
        lines += ["", "**SMOKE RUN**: tiny CPU model, few steps, a few problems: the numbers test the pipeline, not the method."]
    lines += ["", "Each cell: ours / paper (ours − paper). Paper numbers are 'n/a (not found)' where we could not find them.", ""]
    lines.append("| row | " + " | ".join(benches) + " |")
    lines.append("|---|" + "---|" * len(benches))
    for r in table["rows"]:
        cells = []
        for b in benches:
            c = r["cells"][b]
            ours = _fmt(c["ours"], NOT_RUN if r["status"] != "done" else "–")
            cells.append(f"{ours} / {_fmt(c['paper'], NOT_FOUND)} ({_fmt_diff(c['ours'], c['paper'])})")
        lines.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    sources = sorted({r["paper_source"] for r in table["rows"] if r["paper_source"]})
    if sources:
        lines += ["", "Sources of the paper numbers:"] + [f"- {s}" for s in sources]
    return "\n".join(lines) + "\n"


def render_plot(table: Mapping[str, Any], path: Path) -> Optional[Path]:
    """Grouped bars of the 'avg' column, ours vs paper, one group per row (PNG, written atomically)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is a project requirement
        return None
    rows = table["rows"]
    labels = [r["label"] for r in rows]
    ours = [r["cells"]["avg"]["ours"] for r in rows]
    paper = [r["cells"]["avg"]["paper"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows) + 2), 4.2))
    xs = range(len(rows))
    width = 0.4
    ax.bar([x - width / 2 for x in xs], [v if v is not None else 0 for v in ours], width, label="ours", color="#3b7dd8")
    ax.bar([x + width / 2 for x in xs], [v if v is not None else 0 for v in paper], width, label="paper", color="#bbbbbb")
    for x, (o, p) in enumerate(zip(ours, paper)):  # mark missing values instead of drawing a misleading 0
        if o is None:
            ax.text(x - width / 2, 0.5, "not run", rotation=90, ha="center", va="bottom", fontsize=7)
        if p is None:
            ax.text(x + width / 2, 0.5, "n/a", rotation=90, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    over = ", ".join(table.get("average_over", table["benchmarks"]))
    ax.set_ylabel(f"avg {table['metric']} (%)")
    smoke = "[SMOKE RUN: pipeline check, not results] " if any(r["smoke"] for r in rows) else ""
    ax.set_title(f"{smoke}{table['title']}\n(avg over {over})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=120)
    finally:
        plt.close(fig)
    return path


def load_results(config: TableConfig, output_dir: Path) -> Dict[str, Dict[str, Any]]:
    results = {}
    for row in config.rows:
        path = output_dir / "rows" / row.name / "result.json"
        if path.is_file():
            results[row.name] = json.loads(path.read_text())
    return results


def assemble(config: TableConfig, output_dir: Path) -> Dict[str, Path]:
    table = build_table(config, load_results(config, output_dir))
    md_path = output_dir / f"{config.table}.md"
    json_path = output_dir / f"{config.table}.json"
    atomic_write_text(json_path, json.dumps(table, indent=2) + "\n")
    atomic_write_text(md_path, render_markdown(table))
    paths = {"markdown": md_path, "json": json_path}
    plot = render_plot(table, output_dir / f"{config.table}.png")
    if plot is not None:
        paths["plot"] = plot
    return paths


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--output-dir", required=True)
    args = p.parse_args(argv)
    paths = assemble(load_config(args.config), Path(args.output_dir))
    print(paths["markdown"].read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
