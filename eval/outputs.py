"""Run outputs: per-sample JSONL, results JSON (config + versions + metrics) and a Markdown table."""

from __future__ import annotations

import importlib.metadata
import platform
import re
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Sequence

from .graders.base import Verdict
from .io_utils import atomic_write_jsonl, atomic_write_text


def package_versions() -> Dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in (
        "openrlhf-steer",
        "math-verify",
        "latex2sympy2_extended",
        "sympy",
        "antlr4-python3-runtime",
        "transformers",
        "torch",
        "vllm",
        "numpy",
    ):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str:
    try:
        here = Path(__file__).resolve().parent
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except Exception:
        return ""


def write_samples(
    path: Path,
    benchmark: str,
    ids: Sequence[str],
    problems: Sequence[dict],
    prompts: Sequence[Any],
    responses: Sequence[Sequence[str]],
    verdicts: Dict[str, List[List[Verdict]]],
    gold_key: str = "gold_answer",
) -> None:
    """One line per (problem, sample): response, gold, extracted answer and verdict per grader."""
    rows = []
    for i, (pid, problem, prompt, rs) in enumerate(zip(ids, problems, prompts, responses)):
        for j, response in enumerate(rs):
            rows.append(
                {
                    "benchmark": benchmark,
                    "id": pid,
                    "index": i,
                    "sample": j,
                    "gold": problem.get(gold_key),
                    "prompt": prompt if j == 0 else None,
                    "response": response,
                    "verdicts": {g: v[i][j].to_dict() for g, v in verdicts.items()},
                }
            )
    atomic_write_jsonl(path, rows)


_PASS_RE = re.compile(r"pass@k:k=(\d+)&n=(\d+)$")


def _pct(value: float, err: float) -> str:
    return f"{100 * value:.1f} ± {100 * err:.1f}"


def markdown_report(results: Dict[str, Any]) -> str:
    metrics, stderr = results.get("metrics", {}), results.get("stderr", {})
    rows: Dict[tuple, Dict[str, str]] = {}
    ks = set()
    for key, value in metrics.items():
        bench, grader, metric = key.split("/", 2)
        cell = rows.setdefault((bench, grader), {})
        m = _PASS_RE.match(metric)
        if m:
            ks.add(int(m.group(1)))
            cell[f"pass@{m.group(1)}"] = _pct(value, stderr.get(key, 0.0))
        elif metric.startswith("avg@"):
            cell["n"] = metric[4:]
            cell["avg@n"] = _pct(value, stderr.get(key, 0.0))
        else:
            cell.setdefault("other", [])
            cell["other"].append(f"{metric}={100 * value:.1f}")
    cols = ["n", "avg@n"] + [f"pass@{k}" for k in sorted(ks)]
    lines = ["# Evaluation results", ""]
    cfg = results.get("config", {})
    if cfg.get("model"):
        lines += [f"Model: `{cfg['model']}` (backend `{cfg.get('backend')}`)", ""]
    lines += [
        "Values in %, ± one standard error over problems.",
        "",
        "| benchmark | grader | " + " | ".join(cols) + " | other |",
        "|" + "---|" * (len(cols) + 3),
    ]
    for (bench, grader), cell in sorted(rows.items()):
        other = ", ".join(cell.get("other", [])) if isinstance(cell.get("other"), list) else ""
        lines.append(f"| {bench} | {grader} | " + " | ".join(cell.get(c, "") for c in cols) + f" | {other} |")
    dis = results.get("disagreements", {})
    if dis:
        lines += [
            "",
            "## Grader disagreements",
            "",
            "| benchmark | graders | samples differing | only first | only second | problem ids (first 10) |",
            "|---|---|---|---|---|---|",
        ]
        for bench, pairs in sorted(dis.items()):
            for pair, d in pairs.items():
                ids = ", ".join(d["problem_ids"][:10])
                lines.append(
                    f"| {bench} | {pair} | {d['count']} / {d['samples']} | {d['first_only']} | "
                    f"{d['second_only']} | {ids} |"
                )
    lines += [
        "",
        "## Sampling",
        "",
        "| benchmark | problems | n | temperature | top-p | max tokens | source |",
        "|---|---|---|---|---|---|---|",
    ]
    for bench, info in sorted(results.get("benchmarks", {}).items()):
        s = info.get("sampling", {})
        cells = [s.get(k, "-") for k in ("n", "temperature", "top_p", "max_tokens")]
        lines.append(
            f"| {bench} | {info.get('num_problems')} | "
            + " | ".join(str(c) for c in cells)
            + f" | {info.get('mode')} |"
        )
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, results: Dict[str, Any]) -> None:
    atomic_write_text(path, markdown_report(results))


def pass_at_k_series(results: Dict[str, Any]) -> Dict[str, Dict[str, List[tuple]]]:
    """{benchmark: {grader: [(k, pass@k, stderr), ...]}} sorted by k, from a results dict."""
    series: Dict[str, Dict[str, List[tuple]]] = {}
    for key, value in results.get("metrics", {}).items():
        bench, grader, metric = key.split("/", 2)
        m = _PASS_RE.match(metric)
        if m:
            series.setdefault(bench, {}).setdefault(grader, []).append(
                (int(m.group(1)), value, results.get("stderr", {}).get(key, 0.0))
            )
    for graders in series.values():
        for points in graders.values():
            points.sort()
    return series


def plot_pass_at_k(path: Path, results: Dict[str, Any]) -> bool:
    """pass@k curves (one panel per benchmark, one line per grader, ± 1 s.e.); False if nothing to plot."""
    series = pass_at_k_series(results)
    series = {b: g for b, g in series.items() if any(len(p) > 1 for p in g.values())}
    if not series:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(series))
    rows = (len(series) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, (bench, graders) in zip(axes.flat, sorted(series.items())):
        for grader, points in sorted(graders.items()):
            ks = [p[0] for p in points]
            ys = [100 * p[1] for p in points]
            es = [100 * p[2] for p in points]
            ax.errorbar(ks, ys, yerr=es, marker="o", capsize=3, label=grader)
        ax.set_xscale("log", base=2)
        ax.set_title(bench)
        ax.set_xlabel("k")
        ax.set_ylabel("pass@k (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(series) :]:
        ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return True
