"""Pos-Adv Tables 1 and 4: Spearman correlation between training entropy and Avg@64 / Pass@64.

A point is one trained run, a row of another table (the config's ``runs``: ``<table>:<row>``): its
final training entropy (the source table's Entropy column, EMA-smoothed) against its score on each
benchmark (the source table's cell: the selected checkpoint's Avg@64 / Pass@64). With these points
the paper's own printed cells reproduce every printed coefficient (Table 4 from Table 5's six trained
rows, Table 1 from Tables 2 and 3's 29 distinct runs), which is how the pooling was determined.

The runs are trained, selected and evaluated by run_table's own pipeline (``TableRunner.run_row``), in
``runs/reproduce/<source table>/`` (shared with that table's own run) or, with ``--output-dir D``, in
``D/sources/<source table>/``; finished rows are skipped. Then ``<table>.md`` / ``.json`` (ours, the
value recomputed from the paper's cells, and the printed value, at 5 decimals) and ``<table>.png``
(entropy against Avg@64, one panel per benchmark).

``correlation.points: checkpoints`` (an option, not what the paper's numbers show) makes every saved
checkpoint of every run a point instead: its scores on every benchmark (``points/step<N>/`` in the row's
folder) against the EMA training entropy at its step.

``--smoke``: the first three runs only (the fewest a rank correlation needs), the source tables' CPU
smoke pipeline (training through OpenRLHF's ``train()``), the last checkpoint instead of the best-of sweep
and the eval CLI called in-process, so the whole table takes a few minutes on CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import repro_pipeline as pipeline
import run_table as rt
from openrlhf_steer.core.stats import spearman
from openrlhf_steer_eval.atomic_io import atomic_path, atomic_write_text

SMOKE_RUNS = 3
POINT_TEXT = {
    "runs": "one per trained run, its final EMA training entropy and its selected checkpoint's scores",
    "checkpoints": "one per saved checkpoint, the EMA training entropy at its step and its scores",
}
METRIC_LABELS = {"avg@n": "Avg@64", "pass@n": "Pass@64"}
RUN_REF = re.compile(r"^(?P<table>[a-z0-9_]+):(?P<row>[a-z0-9][a-z0-9_\-]*)$")


def fmt(value: Optional[float], digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


# --------------------------------------------------------------------------------------------------
# Runs and points
# --------------------------------------------------------------------------------------------------
@dataclass
class RunRef:
    table: str
    row: str
    source: str

    @property
    def key(self) -> str:
        return f"{self.table}:{self.row}"


@dataclass
class Point:
    run: str
    label: str
    entropy: Optional[float]
    scores: Dict[str, Dict[str, float]]  # benchmark -> metric -> value (percent)


def run_refs(config) -> List[RunRef]:
    """The config's ``runs`` list (``{value: <table>:<row>, source}``), validated."""
    import yaml

    raw = yaml.safe_load(Path(config.path).read_text(encoding="utf-8")).get("runs")
    if not raw:
        raise ValueError(
            f"{config.path}: an entropy_correlation table needs a 'runs' list of {{value: <table>:<row>, source}}"
        )
    refs = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, Mapping) or "value" not in entry or not str(entry.get("source", "")).strip():
            raise ValueError(f"{config.path}: runs[{i}] must be {{value: <table>:<row>, source: ...}}")
        m = RUN_REF.match(str(entry["value"]))
        if not m:
            raise ValueError(f"{config.path}: runs[{i}].value {entry['value']!r} is not <table>:<row>")
        refs.append(RunRef(m["table"], m["row"], str(entry["source"])))
    if len({r.key for r in refs}) != len(refs):
        raise ValueError(f"{config.path}: a run is listed twice in 'runs'")
    return refs


def correlation_settings(config) -> Dict[str, Any]:
    """The config's ``correlation`` section ({name: {value, source}}) as plain values."""
    import yaml

    raw = yaml.safe_load(Path(config.path).read_text(encoding="utf-8")).get("correlation") or {}
    return {k: v["value"] for k, v in raw.items() if isinstance(v, Mapping) and "value" in v}


def source_config(config, table: str):
    from repro_config import load_config

    # The source rows are trained under the readings chosen for this table (the same recipe's readings).
    chosen = {name: reading.value for name, reading in config.readings.items()}
    return load_config(Path(config.path).parent / f"{table}.yaml", readings=chosen)


def paper_points(config, refs: Sequence[RunRef]) -> List[Point]:
    """The points as the paper prints them: each source row's printed cells and final entropy."""
    points = []
    for ref in refs:
        src = source_config(config, ref.table)
        row = src.row(ref.row)
        entropy_col = next(c.key for c in src.columns if c.training_entropy)
        scores = {
            c.benchmark: {m: v for m, v in row.paper[c.key].items() if v is not None}
            for c in src.columns
            if c.benchmark
        }
        points.append(Point(ref.key, row.label, row.paper[entropy_col]["entropy"], scores))
    return points


def correlations(config, points: Sequence[Point]) -> Dict[str, Dict[str, Optional[float]]]:
    """benchmark -> metric -> Spearman(entropy, score) over the points that have both."""
    out: Dict[str, Dict[str, Optional[float]]] = {}
    for bench in config.benchmarks:
        out[bench] = {}
        for metric in config.metrics:
            pairs = [
                (p.entropy, p.scores[bench][metric])
                for p in points
                if p.entropy is not None and metric in p.scores.get(bench, {})
            ]
            out[bench][metric] = spearman([a for a, _ in pairs], [b for _, b in pairs]) if pairs else None
    return out


# --------------------------------------------------------------------------------------------------
# Running the source rows with run_table's pipeline
# --------------------------------------------------------------------------------------------------
class InProcessEvalSmokeExecutor(rt.SmokeExecutor):
    """--smoke only: the eval CLI's own ``main`` in this process (one import instead of one per call)."""

    def run(self, stage: str, cmd: Sequence[str], log_path: Path, env=None) -> None:
        if self.dry or pipeline.EVAL_MODULE not in cmd:
            return super().run(stage, cmd, log_path, env=env)
        from openrlhf_steer_eval.cli import main as eval_main

        self.echo(f"[{stage}] {pipeline.shell_join(cmd)}  (in-process)")
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            code = eval_main(list(cmd)[list(cmd).index(pipeline.EVAL_MODULE) + 1 :])
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"\n$ {pipeline.shell_join(cmd)}\n{buffer.getvalue()}")
        if code != 0:
            raise RuntimeError(
                f"[{stage}] eval failed with exit code {code}; log: {log_path}\n{buffer.getvalue()[-3000:]}"
            )


def _executor(args) -> rt.Executor:
    if args.smoke:
        return InProcessEvalSmokeExecutor(quiet=args.quiet, dry=args.dry_run)
    return rt.make_executor(args)


def source_dir(args, out: Path, table: str) -> Path:
    if args.output_dir:
        return out / "sources" / table
    return Path("runs") / "reproduce" / table  # run_table's own default for that table: runs are shared


def smoke_config(src):
    """--smoke: the last checkpoint (no best-of sweep: each sweep point is one more eval call)."""
    from dataclasses import replace

    from repro_config import Sourced

    selection = dict(src.selection)
    selection["policy"] = Sourced("last", "--smoke: last checkpoint")
    return replace(src, selection=selection)


def entropy_series_of(row_dir: Path, src) -> List[Tuple[int, float]]:
    """(rollout step, logged entropy) of a run, from OpenRLHF's ``Global step N: {...}`` console lines (smoke runs
    train through OpenRLHF too, so they log the same lines)."""
    from repro_entropy import DEFAULT_METRIC, entropy_series

    log = row_dir / "train.log"
    if not log.is_file():
        return []
    text = log.read_text(errors="replace")
    return entropy_series(text, str(src.values("training_entropy").get("metric", DEFAULT_METRIC)))


def entropy_at(series: Sequence[Tuple[int, float]], src, step: Optional[int] = None) -> Optional[float]:
    """The EMA-smoothed entropy (the source table's training_entropy settings) at ``step`` (default: the last)."""
    from repro_entropy import ema

    values = [v for s, v in series if step is None or s <= step]
    return ema(values, float(src.values("training_entropy").get("ema", 0.0))) if values else None


def _scores(result_scores: Mapping[str, Mapping[str, Any]], metrics: Sequence[str]) -> Dict[str, Dict[str, float]]:
    return {b: {m: float(v) for m, v in s.items() if m in metrics} for b, s in result_scores.items()}


def run_points(config, runner, src, ref: RunRef, executor) -> List[Point]:
    """One point per run: the row's result (selected checkpoint's scores) and its final training entropy."""
    row = src.row(ref.row)
    runner.run_row(row)
    if executor.dry:
        return []
    row_dir = runner.out / "rows" / row.name
    result = json.loads((row_dir / "result.json").read_text())
    entropy = result.get("training_entropy")
    if entropy is None:
        entropy = entropy_at(entropy_series_of(row_dir, src), src, src.recipe_for(row).get("max_rollout_steps"))
    return [Point(ref.key, row.label, entropy, _scores(result["scores"], config.metrics))]


def checkpoint_points(config, runner, src, ref: RunRef, executor) -> List[Point]:
    """One point per saved checkpoint of the run: its scores on every benchmark and the EMA entropy at its step."""
    from repro_selection import candidates

    row = src.row(ref.row)
    row_dir = runner.out / "rows" / row.name
    recipe = runner.recipe(row)
    ckpt_dir = runner.train(row, row_dir, recipe, runner.prepare_data(recipe))
    benches = runner.benchmarks()
    if executor.dry:
        runner.run_eval(
            "points",
            ckpt_dir / "global_step<STEP>_hf",
            benches,
            runner.eval_sampling(),
            row_dir / "points" / "step<STEP>",
            row_dir / "points.log",
            config.metrics,
        )
        return []
    series = entropy_series_of(row_dir, src)
    points = []
    for step, path in candidates(ckpt_dir, 0, 1):
        scores = runner.run_eval(
            "points",
            path,
            benches,
            runner.eval_sampling(),
            row_dir / "points" / f"step{step}",
            row_dir / "points.log",
            config.metrics,
        )
        points.append(
            Point(
                f"{ref.key}@{step}",
                f"{row.label} (step {step})",
                entropy_at(series, src, step),
                _scores(scores, config.metrics),
            )
        )
    return points


# correlation.points -> how a run becomes points
POINT_COLLECTORS = {"runs": run_points, "checkpoints": checkpoint_points}


def train_and_score(config, refs: Sequence[RunRef], args, out: Path, mode: str = "runs") -> List[Point]:
    """Run every source row through run_table's pipeline (resumable) and collect its points."""
    collect = POINT_COLLECTORS[mode]
    executor = _executor(args)
    points: List[Point] = []
    by_table: Dict[str, List[RunRef]] = {}
    for ref in refs:
        by_table.setdefault(ref.table, []).append(ref)
    for table, table_refs in by_table.items():
        src = source_config(config, table)
        if args.smoke:
            src = smoke_config(src)
        src_args = argparse.Namespace(**{**vars(args), "output_dir": str(source_dir(args, out, table))})
        runner = rt.TableRunner(src, src_args, executor)
        for ref in table_refs:
            points += collect(config, runner, src, ref, executor)
    return points


# --------------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------------
Cells = Mapping[str, Mapping[str, Optional[float]]]  # benchmark -> metric -> coefficient


def build_table(
    config,
    ours: Cells,
    from_cells: Cells,
    points: Sequence[Point],
    refs: Sequence[RunRef],
    smoke: bool,
    points_mode: str = "runs",
) -> Dict[str, Any]:
    rows = []
    for r in config.analysis_rows:
        bench = str(r["benchmark"])
        printed = dict(zip(config.metrics, r["paper"]))
        rows.append(
            {
                "benchmark": bench,
                "label": r["label"],
                "cells": {
                    m: {
                        "ours": ours.get(bench, {}).get(m),
                        "paper_cells": from_cells.get(bench, {}).get(m),
                        "paper": printed[m],
                    }
                    for m in config.metrics
                },
            }
        )
    return {
        "table": config.table,
        "title": config.title,
        "paper": config.paper,
        "smoke": smoke,
        "precision": config.precision,
        "points_mode": points_mode,
        "runs": [{"run": r.key, "source": r.source} for r in refs],
        "points": [{"run": p.run, "label": p.label, "entropy": p.entropy, "scores": p.scores} for p in points],
        "rows": rows,
    }


def markdown(table: Mapping[str, Any], metrics: Sequence[str]) -> str:
    d = table["precision"]
    lines = [f"# {table['title']}", ""]
    if table["smoke"]:
        lines += [
            "**Smoke run** (tiny model on CPU, the first runs only): the numbers test the pipeline, not the paper.",
            "",
        ]
    head = " | ".join(
        f"{METRIC_LABELS[m]} ours | {METRIC_LABELS[m]} from the paper's cells | {METRIC_LABELS[m]} paper"
        for m in metrics
    )
    lines += [f"| Benchmark | {head} |", "|---|" + "---|" * (3 * len(metrics))]
    for row in table["rows"]:
        cells = " | ".join(
            f"{fmt(row['cells'][m]['ours'], d)} | {fmt(row['cells'][m]['paper_cells'], d)} | "
            f"{fmt(row['cells'][m]['paper'], d)}"
            for m in metrics
        )
        lines.append(f"| {row['label']} | {cells} |")
    lines += [
        "",
        f"Spearman over {len(table['points'])} points ({table['points_mode']}: "
        + POINT_TEXT[table["points_mode"]]
        + "); 'from the paper's cells' is the same statistic over the runs' "
        "printed cells.",
        "",
        "| Point | Entropy |",
        "|---|---|",
    ]
    lines += [f"| {p['run']} ({p['label']}) | {fmt(p['entropy'], 5)} |" for p in table["points"]]
    return "\n".join(lines) + "\n"


def plot(config, points: Sequence[Point], ours: Cells, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {str(r["benchmark"]): str(r["label"]) for r in config.analysis_rows}
    benches = config.benchmarks
    cols = 4
    rows = -(-len(benches) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.3 * rows), squeeze=False)
    for ax, bench in zip([a for line in axes for a in line], benches):
        pairs = [
            (p.entropy, p.scores[bench]["avg@n"])
            for p in points
            if p.entropy is not None and "avg@n" in p.scores.get(bench, {})
        ]
        if pairs:
            xs = [a for a, _ in pairs]
            ax.scatter(xs, [b for _, b in pairs], s=14)
            if min(xs) > 0 and max(xs) / min(xs) > 10:  # entropies span decades (0.015 to 2.2 in Table 5)
                ax.set_xscale("log")
        ax.set_title(f"{labels.get(bench, bench)}: Spearman {fmt(ours.get(bench, {}).get('avg@n'), 3)}", fontsize=9)
        ax.set_xlabel("training entropy")
        ax.set_ylabel("Avg@n (%)")
    for ax in [a for line in axes for a in line][len(benches) :]:
        ax.axis("off")
    fig.suptitle(config.title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------
# The runner (called by run_table.py through repro_analyses)
# --------------------------------------------------------------------------------------------------
def run(config, args) -> int:
    refs = run_refs(config)
    wanted = [r.strip() for r in (args.rows or "").split(",") if r.strip()]
    unknown = [w for w in wanted if w not in {r.key for r in refs}]
    if unknown:
        raise ValueError(f"--rows: {unknown} are not runs of {config.table}; choose from {[r.key for r in refs]}")
    if wanted:
        refs = [r for r in refs if r.key in wanted]
    if args.smoke:
        refs = refs[:SMOKE_RUNS]
    out = Path(args.output_dir or Path("runs") / "reproduce" / config.table).resolve()
    from_cells = correlations(config, paper_points(config, refs))
    mode = str(correlation_settings(config).get("points", "runs"))
    if mode not in POINT_TEXT:
        raise ValueError(f"{config.path}: correlation.points {mode!r} is not one of {sorted(POINT_TEXT)}")
    if args.dry_run:
        print(f"[runs] {len(refs)} trained runs ({POINT_TEXT[mode]}): " + ", ".join(r.key for r in refs))
    points = train_and_score(config, refs, args, out, mode)
    if args.dry_run:
        print(
            f"[table] {out / (config.table + '.md')}, .json and .png: Spearman(entropy, "
            f"{'/'.join(config.metrics)}) per benchmark over the points"
        )
        return 0
    ours = correlations(config, points)
    table = build_table(config, ours, from_cells, points, refs, bool(args.smoke), mode)
    atomic_write_text(out / f"{config.table}.json", json.dumps(table, indent=2) + "\n")
    atomic_write_text(out / f"{config.table}.md", markdown(table, config.metrics))
    plot(config, points, ours, out / f"{config.table}.png")
    print(f"[table] wrote {out / (config.table + '.md')}, .json and .png")
    return 0
