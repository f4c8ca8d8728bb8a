"""Tables (Markdown + JSON) and figures (PNG) of a demo run."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..atomic_io import atomic_path
from .io import write_json, write_text


def moving_average(values: Sequence[float], window: int) -> List[float]:
    """Trailing mean over the last ``window`` values (shorter at the start)."""
    out, total, queue = [], 0.0, []
    for v in values:
        queue.append(v)
        total += v
        if len(queue) > window:
            total -= queue.pop(0)
        out.append(total / len(queue))
    return out


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(histories: Mapping[str, List[Dict[str, Any]]], keys: Sequence[tuple], path: Path, title: str,
                window: int = 10) -> None:
    """One panel per (metric key, y label); every method a colour; raw faint, moving average bold."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(keys), figsize=(6.2 * len(keys), 4.2), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, (key, label) in zip(axes[0], keys):
        for i, (name, rows) in enumerate(histories.items()):
            points = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
            if not points:
                continue
            steps, values = zip(*points)
            colour = colours(i % 10)
            ax.plot(steps, values, color=colour, alpha=0.22, linewidth=0.8)
            ax.plot(steps, moving_average(values, window), color=colour, linewidth=2.0, label=name)
        ax.set_xlabel("rollout step")
        ax.set_ylabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="best")
    smoothing = f"bold: moving average over {window} steps; faint: per step" if window > 1 else "per step"
    fig.suptitle(f"{title}  ({smoothing})", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def save_figure(fig, path: Path) -> None:
    """Write a PNG atomically and close the figure."""
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        pyplot().close(fig)


def _fmt(value: Optional[float], digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def results_table(rows: List[Dict[str, Any]], ks: Sequence[int], samples: int) -> str:
    """Markdown table of the final results, one row per method (plus the start model)."""
    head = ["run", "method", "final entropy (held-out)", "final entropy (probe)", "train acc (last 10)",
            f"avg@{samples}"] + [f"pass@{k}" for k in ks] + ["steps", "settings"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["run"], r["method"], _fmt(r.get("heldout_entropy")), _fmt(r.get("probe_entropy")),
                 _fmt(r.get("train_accuracy_last10")), _fmt(r.get("avg@n"))]
        cells += [_fmt(r.get(f"pass@{k}")) for k in ks]
        cells += [str(r.get("steps", 0)), r.get("note", "")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _environment_line(environment: Optional[Mapping[str, Any]]) -> List[str]:
    if not environment:
        return []
    versions = environment.get("versions", {})
    return [f"Environment: torch {versions.get('torch', '?')}, transformers {versions.get('transformers', '?')}, "
            f"CPU kernels {environment.get('torch_cpu_capability', '?')} (seeded numbers repeat exactly only "
            "with the same versions and kernels).", ""]


def write_results(output_dir: Path, rows: List[Dict[str, Any]], ks: Sequence[int], samples: int,
                  extra: Mapping[str, Any]) -> None:
    write_json(Path(output_dir) / "results.json", {"rows": rows, **extra})
    md = ["# Demo results", "",
          f"Held-out: {extra.get('heldout_problems')} unseen problems x n={samples} samples (T=1); avg@{samples} and "
          "unbiased pass@k from openrlhf_steer_eval.metrics. Entropy in nats per completion token.", "",
          results_table(rows, ks, samples), "", *_environment_line(extra.get("environment")),
          "![entropy per method](entropy.png)", "", "![reward per method](reward.png)", ""]
    write_text(Path(output_dir) / "results.md", "\n".join(md))


ANALYSES_HEADING = "## Analyses"


def append_analyses(output_dir: Path, lines: Sequence[str], figures: Sequence[str]) -> None:
    """Add (or replace) the analyses section of results.md: one summary line and figure per analysis."""
    path = Path(output_dir) / "results.md"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    text = text.split(ANALYSES_HEADING)[0].rstrip() + "\n\n"
    section = [ANALYSES_HEADING, ""] + [f"- {line}" for line in lines] + [""]
    section += [f"![{Path(f).stem}]({f})" for f in figures] + [""]
    write_text(path, text + "\n".join(section))
