#!/usr/bin/env python
"""Assemble a results table: ours next to the paper's number for every cell and metric, as Markdown and JSON.

    python reproduce/assemble_table.py --config reproduce/configs/steer_table1.yaml \
        --output-dir runs/reproduce/steer_table1

Reads ``<output-dir>/rows/<row>/result.json`` for every row of the config (missing rows are shown as
"not run") and writes ``<output-dir>/<table>.md``, ``.json`` and ``.png`` atomically.

Averages are computed as the paper computes them: the unrounded mean of the member columns (e.g.
STEER's Avg. over six benchmarks; Pos-Adv's Average (ID) over five, Average (OOD) over two). The
paper's own average is shown as printed; where it differs from the mean of the paper's printed
cells by more than rounding can explain (half a unit in the average's last printed place plus the mean of
the cells' half units), the table says so.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from repro_config import Column, Row, TableConfig, load_config  # noqa: E402

from openrlhf_steer_eval.atomic_io import atomic_path, atomic_write_text  # noqa: E402

NOT_RUN = "not run"
NOT_PRINTED = "–"


def mean_of(values: Sequence[Optional[float]]) -> Optional[float]:
    """Mean over the members, or None when any is missing (a partial mean would mislead)."""
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)  # type: ignore[arg-type]


def metric_label(metric: str, n: Optional[int]) -> str:
    """``avg@n`` with n = 32 -> ``avg@32``; lighteval-style names carry their parameter."""
    return metric.replace("@n", f"@{n}") if n is not None else metric


def fmt(value: Optional[float], precision: int, missing: str = NOT_PRINTED) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return f"{value:.{precision}f}"


def cell_metrics(config: TableConfig, column: Column) -> List[str]:
    return ["entropy"] if column.training_entropy else list(config.metrics)


def rounding_tolerance(average_precision: int, member_precisions: Sequence[int]) -> float:
    """The largest gap between a printed average and the mean of its printed member cells that rounding alone
    explains: half a unit in the average's last printed place, plus the mean of the members' half units (each
    printed cell is within half a unit of its true value, and the mean carries those errors at most in full)."""
    if not member_precisions:
        raise ValueError("rounding_tolerance needs the precision of at least one member cell")
    half = [0.5 * 10.0**-p for p in member_precisions]
    return 0.5 * 10.0**-average_precision + sum(half) / len(half)


def paper_average_check(config: TableConfig, row: Row, column: Column) -> Optional[Dict[str, Any]]:
    """For a mean column: the mean of the paper's own printed member cells, and whether the printed average
    matches it up to rounding (``rounding_tolerance``: the average's and the cells' own half units)."""
    if not column.mean_of:
        return None
    out: Dict[str, Any] = {}
    members = [config.precision_of(config.column(k)) for k in column.mean_of]
    tolerance = rounding_tolerance(config.precision_of(column), members) + 1e-9
    for metric in config.metrics:
        cells = [row.paper[k][metric] for k in column.mean_of]
        printed = row.paper[column.key][metric]
        computed = mean_of(cells)
        consistent = None if computed is None or printed is None else abs(computed - printed) <= tolerance
        out[metric] = {"mean_of_printed_cells": computed, "printed": printed, "consistent": consistent}
    return out


def ours_cells(config: TableConfig, result: Optional[Mapping[str, Any]]) -> Dict[str, Dict[str, Optional[float]]]:
    """Our value per column and metric; mean columns averaged exactly as the paper does."""
    scores = (result or {}).get("scores", {})
    ours: Dict[str, Dict[str, Optional[float]]] = {}
    for col in config.columns:
        if col.benchmark:
            got = scores.get(col.benchmark) or {}
            ours[col.key] = {m: got.get(m) for m in config.metrics}
        elif col.training_entropy:
            ours[col.key] = {"entropy": (result or {}).get("training_entropy")}
    for col in config.columns:
        if col.mean_of:
            ours[col.key] = {m: mean_of([ours[k][m] for k in col.mean_of]) for m in config.metrics}
    return ours


def build_table(config: TableConfig, results: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    n_of = config.values("eval").get("n")
    rows = []
    for row in config.rows:
        res = results.get(row.name)
        ours = ours_cells(config, res)
        cells: Dict[str, Dict[str, Any]] = {}
        for col in config.columns:
            cells[col.key] = {}
            for metric in cell_metrics(config, col):
                o, p = ours[col.key].get(metric), row.paper[col.key].get(metric)
                cells[col.key][metric] = {"ours": o, "paper": p, "diff": None if o is None or p is None else o - p}
        checks = {c.key: paper_average_check(config, row, c) for c in config.columns if c.mean_of}
        rows.append(
            {
                "name": row.name,
                "label": row.label,
                "group": row.group,
                "printed_label": row.printed_label,
                "label_inferred": row.label_inferred,
                "paper_note": row.paper_note,
                "method": row.method,
                "status": "done" if res else NOT_RUN,
                "checkpoint": (res or {}).get("checkpoint"),
                "smoke": bool((res or {}).get("smoke")),
                "cells": cells,
                "paper_average_checks": checks,
            }
        )
    return {
        "table": config.table,
        "title": config.title,
        "paper": config.paper,
        "metrics": config.metrics,
        "columns": [
            {
                "key": c.key,
                "label": c.label,
                "kind": c.kind,
                "benchmark": c.benchmark,
                "mean_of": c.mean_of,
                "precision": config.precision_of(c),
                "metric_labels": {m: metric_label(m, _n_for(n_of, c)) for m in cell_metrics(config, c)},
            }
            for c in config.columns
        ],
        "eval": config.values("eval"),
        "selection": config.values("selection"),
        "rows": rows,
    }


def _n_for(n_of: Any, column: Column) -> Optional[int]:
    if column.training_entropy:
        return None
    if isinstance(n_of, Mapping):
        if column.benchmark:
            return n_of.get(column.benchmark, n_of.get("default"))
        return None  # a mean over columns sampled differently (STEER's Avg.): no single n
    return n_of


def _row_label(r: Mapping[str, Any]) -> str:
    return r["label"] + (" †" if r["label_inferred"] else "")


def render_markdown(table: Mapping[str, Any]) -> str:
    paper = table["paper"]
    cols = table["columns"]
    lines = [f"# {table['title']}", ""]
    lines.append(
        f"Paper: {paper.get('name', '')} ({paper.get('id', '')}), {paper.get('table', '')}, {paper.get('section', '')}."
    )
    lines.append(f"Sampling: {json.dumps(table['eval'])}. Checkpoint selection: {json.dumps(table['selection'])}.")
    if any(r["smoke"] for r in table["rows"]):
        lines += [
            "",
            "**SMOKE RUN**: tiny CPU model, few steps, a few problems: the numbers test the pipeline, not the method.",
        ]
    lines += [
        "",
        "Each cell: ours / paper (ours − paper), at the paper's precision. Averages are ours computed as the "
        "paper does; the paper's average is shown as printed. † marks a row whose label the text lost (inferred).",
    ]
    metrics = list(table["metrics"])
    value_cols = [c for c in cols if c["kind"] != "training_entropy"]
    for metric in metrics:
        lines += ["", f"## {metric}", ""]
        header = [
            f"{c['label']} ({c['metric_labels'][metric]})" if c["metric_labels"][metric] != metric else c["label"]
            for c in value_cols
        ]
        lines.append("| row | " + " | ".join(header) + " |")
        lines.append("|---|" + "---|" * len(value_cols))
        for r in table["rows"]:
            cells = []
            for c in value_cols:
                cell = r["cells"][c["key"]][metric]
                ours = fmt(cell["ours"], c["precision"], NOT_RUN if r["status"] != "done" else NOT_PRINTED)
                diff = "" if cell["diff"] is None else f" ({cell['diff']:+.{c['precision']}f})"
                cells.append(f"{ours} / {fmt(cell['paper'], c['precision'])}{diff}")
            lines.append(f"| {_row_label(r)} | " + " | ".join(cells) + " |")
    entropy_cols = [c for c in cols if c["kind"] == "training_entropy"]
    if entropy_cols:
        c = entropy_cols[0]
        lines += ["", f"## {c['label']} (final training entropy)", "", "| row | ours / paper (diff) |", "|---|---|"]
        for r in table["rows"]:
            cell = r["cells"][c["key"]]["entropy"]
            ours = fmt(cell["ours"], c["precision"], NOT_RUN if r["status"] != "done" else NOT_PRINTED)
            diff = "" if cell["diff"] is None else f" ({cell['diff']:+.{c['precision']}f})"
            lines.append(f"| {_row_label(r)} | {ours} / {fmt(cell['paper'], c['precision'])}{diff} |")
    notes = []
    for r in table["rows"]:
        for key, check in (r["paper_average_checks"] or {}).items():
            for metric, ch in (check or {}).items():
                if ch["consistent"] is False:
                    col = next(c for c in cols if c["key"] == key)
                    notes.append(
                        f"{r['label']}, {col['label']} ({metric}): the paper prints {ch['printed']}, the mean of "
                        f"its printed cells is {ch['mean_of_printed_cells']:.2f}."
                    )
        if r["paper_note"]:
            notes.append(f"{r['label']}: {r['paper_note']}")
        if r["label_inferred"]:
            printed = f" (printed as '{r['printed_label']}')" if r["printed_label"] else ""
            notes.append(f"† {r['label']}{printed}: label inferred, {r['label_inferred']}")
    if notes:
        lines += ["", "## Notes on the paper's numbers", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def render_plot(table: Mapping[str, Any], path: Path) -> Optional[Path]:
    """Grouped bars of the first average column (or the last column), ours vs paper, one group per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [c for c in table["columns"] if c["kind"] == "mean"] or [
        c for c in table["columns"] if c["kind"] == "benchmark"
    ][-1:]
    col, metric = cols[0], table["metrics"][0]
    rows = table["rows"]
    ours = [r["cells"][col["key"]][metric]["ours"] for r in rows]
    paper = [r["cells"][col["key"]][metric]["paper"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows) + 2), 4.2))
    xs = range(len(rows))
    width = 0.4
    ax.bar([x - width / 2 for x in xs], [v or 0 for v in ours], width, label="ours", color="#3b7dd8")
    ax.bar([x + width / 2 for x in xs], [v or 0 for v in paper], width, label="paper", color="#bbbbbb")
    for x, (o, p) in enumerate(zip(ours, paper)):  # mark missing values instead of drawing a misleading 0
        if o is None:
            ax.text(x - width / 2, 0.5, NOT_RUN, rotation=90, ha="center", va="bottom", fontsize=7)
        if p is None:
            ax.text(x + width / 2, 0.5, "n/a", rotation=90, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(list(xs))
    ax.set_xticklabels([_row_label(r) for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"{col['label']} ({col['metric_labels'][metric]}, %)")
    smoke = "[SMOKE RUN: pipeline check, not results] " if any(r["smoke"] for r in rows) else ""
    ax.set_title(f"{smoke}{table['title']}", fontsize=9)
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
