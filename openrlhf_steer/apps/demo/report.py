"""Tables (Markdown + JSON) and figures (PNG) of a demo run."""

from __future__ import annotations

import math

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from openrlhf_steer_eval.atomic_io import atomic_path
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


def save_figure(fig, path: Path) -> None:
    """Write a PNG atomically and close the figure."""
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        pyplot().close(fig)


def _environment_line(environment: Optional[Mapping[str, Any]]) -> List[str]:
    if not environment:
        return []
    versions = environment.get("versions", {})
    return [
        f"Environment: torch {versions.get('torch', '?')}, transformers {versions.get('transformers', '?')}, "
        f"CPU kernels {environment.get('torch_cpu_capability', '?')} (seeded numbers repeat exactly only "
        "with the same versions and kernels).",
        "",
    ]


def write_results(
    output_dir: Path, claims: Sequence[Mapping[str, Any]], rows: List[Dict[str, Any]], config, extra: Mapping[str, Any]
) -> None:
    """results.json ({claims, rows, ...}) and results.md, which opens with the claims table."""
    samples = config.eval.samples
    write_json(Path(output_dir) / "results.json", {"claims": list(claims), "rows": rows, **extra})
    held = [c for c in claims if c.get("held") is True]
    judged = [c for c in claims if c.get("held") is not None]
    seeds = config.rl_seeds()
    skipped = f" ({len(claims) - len(judged)} skipped)" if len(judged) < len(claims) else ""
    md = [
        "# Demo results",
        "",
        f"## Claims: {len(held)} of {len(judged)} held{skipped}",
        "",
        *_level_line(claims),
        f"Each value is the mean over {len(seeds)} training seeds ({', '.join(map(str, seeds))}) from one start "
        "model; the interval is mean ± 2 standard errors of the per-seed values (paired by seed where two runs "
        "are compared); a claim holds when the whole interval lies on the claimed side of its threshold. H0 is "
        "the start model's entropy.",
        "",
    ]
    if config.preset == "quick":
        md += [
            f"**Quick preset: {config.rl.steps} training steps per run. These verdicts test the machinery, not the "
            "papers' claims; `make demo` is the evidence.**",
            "",
        ]
    md += [claims_table(claims), ""]
    target_lines = target_section(claims, extra.get("figures", []))
    md += target_lines
    from .explain import not_held_section

    md += not_held_section(claims, extra.get("mechanism"))
    estimator = estimator_table(claims)
    if estimator:
        md += [
            "Claim 6 next to STEER Figure 2 (Qwen-Math-7B row); raw estimates, no fitted scale, the run's "
            f"learning rate {config.rl.lr:g}, the first {config.entropy_change_steps} rollout steps of GRPO:",
            "",
            estimator,
            "",
        ]
    md += [
        "## Runs",
        "",
        f"Evaluation: every prompt of the task x n={samples} samples (T=1); avg@{samples} and unbiased pass@k from "
        "openrlhf_steer_eval.metrics; entropy in nats per completion token of the policy's own samples; "
        "mean ± SE over seeds.",
        "",
        run_summary_table(rows, samples),
        "",
        *position_entropy_section(extra.get("runs", []), extra.get("start", {})),
        *weights_section(Path(output_dir), extra.get("runs", [])),
        *_environment_line(extra.get("environment")),
    ]
    shown_above = {f for f in extra.get("figures", []) if any(f"({f})" in line for line in target_lines)}
    md += [f"![{Path(f).stem}]({f})" for f in extra.get("figures", []) if f not in shown_above] + [""]
    write_text(Path(output_dir) / "results.md", "\n".join(md))


def target_section(claims: Sequence[Mapping[str, Any]], figures: Sequence[str]) -> List[str]:
    """Claim 8 (issue 25): the entropy-target runs' tracking error per controller, and their picture."""
    rows = [c for c in claims if c["id"].startswith("8-") and c.get("held") is not None]
    if not rows:
        return []
    lines = ["### Entropy targets (claim 8)", ""]
    target = rows[0].get("target", {})
    if target:
        lines += [
            f"Target: {target.get('schedule')} from {target.get('start')} to {target.get('end')} nats over "
            f"{target.get('total_steps')} rollout steps on {target.get('lever')}, lambda_0 {target.get('initial')}; "
            "the measured value is the rollout step's token-mean rollout entropy.",
            "",
        ]
    for c in rows:
        verdict = "held" if c["held"] else "not held"
        lines.append(
            f"- {c['id']}: mean relative error over the last tenth {_num(c['value'])} "
            f"[{_num(c['interval'][0])}, {_num(c['interval'][1])}], {verdict} (criterion < 0.15)"
        )
    lines.append("")
    figure = next((f for f in figures if "entropy_target" in f), None)
    if figure:
        lines += [f"![target vs measured entropy]({figure})", ""]
    return lines


def _level_line(claims: Sequence[Mapping[str, Any]]) -> List[str]:
    """'mechanism: a of b held; training: c of d held' (mechanism = one update from one state, measured)."""
    parts = []
    for level in ("mechanism", "training"):
        judged = [c for c in claims if c.get("level", "training") == level and c.get("held") is not None]
        if judged:
            parts.append(f"{level}: {sum(c['held'] is True for c in judged)} of {len(judged)} held")
    return ["; ".join(parts) + ".", ""] if parts else []


def _mean_se(values: Sequence[float]) -> str:
    values = [float(v) for v in values if v is not None]
    if not values:
        return "n/a"
    mean = sum(values) / len(values)
    if len(values) < 2:
        return _num(mean)
    se = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values))
    return f"{_num(mean)} ± {_num(se)}"


def _by_run(runs: Sequence[Mapping[str, Any]]) -> Dict[str, List[Mapping[str, Any]]]:
    grouped: Dict[str, List[Mapping[str, Any]]] = {}
    for r in runs:
        grouped.setdefault(r["run"], []).append(r)
    return grouped


def position_entropy_section(runs: Sequence[Mapping[str, Any]], start: Mapping[str, Any]) -> List[str]:
    """Token-mean entropy beside the first digit's (the choice among correct answers) and the second's."""
    if "entropy_first_token" not in start and not any("entropy_first_token" in r.get("heldout", {}) for r in runs):
        return []
    head = "| run | token mean | first digit (decision) | second digit |\n|---|---|---|---|"
    lines = [
        "### Decision entropy beside the token mean",
        "",
        "The token mean mixes two positions: the first digit (which correct answer) and the second (arithmetic that "
        "is being learned). Mean ± SE over seeds, same samples as the runs table.",
        "",
        head,
    ]
    if "entropy_first_token" in start:
        cells = [_num(start.get(k)) for k in ("entropy", "entropy_first_token", "entropy_second_token")]
        lines.append("| start (step 0) | " + " | ".join(cells) + " |")
    for name, rows in _by_run(runs).items():
        held = [r.get("heldout", {}) for r in rows]
        cells = [_mean_se([h.get(k) for h in held]) for k in ("entropy", "entropy_first_token", "entropy_second_token")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + [""]


def weights_section(output_dir: Path, runs: Sequence[Mapping[str, Any]]) -> List[str]:
    """STEER's weight distribution per step (weight_log.py), mean over steps and seeds and at the last step."""
    from .io import read_jsonl
    from .weight_log import LOG_NAME

    keys = ("weights/median", "weights/p10", "weights/share_below_0.95")
    lines = []
    for name, rows in _by_run(runs).items():
        logs = [read_jsonl(output_dir / "runs" / name / f"seed{r['seed']}" / LOG_NAME) for r in rows]
        logs = [log for log in logs if log]
        if not logs:
            continue
        every = [row for log in logs for row in log]
        last = [log[-1] for log in logs]
        cells = [
            f"{_num(sum(x[k] for x in every) / len(every))} / {_num(sum(x[k] for x in last) / len(last))}" for k in keys
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if not lines:
        return []
    return [
        "### STEER's token weights per step",
        "",
        "Each optimizer window's weights (valid tokens): mean over all steps and seeds / at the last step. A median "
        "near 1 means the mapping barely changes GRPO's update (the max-|Omega| outlier of the exp mapping).",
        "",
        "| run | median | 10th percentile | share below 0.95 |",
        "|---|---|---|---|",
        *lines,
        "",
    ]


# ------------------------------------------------------------------------------------------------
# Claims: the table that opens results.md, per-run summaries over seeds, and figures with seed bands
# ------------------------------------------------------------------------------------------------
def _num(value: Optional[float]) -> str:
    if value is None:
        return "n/a"
    value = float(value)
    return f"{value:.2e}" if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e3) else f"{value:.3f}"


def claim_verdict(row: Mapping[str, Any]) -> str:
    if row.get("held") is None:
        return f"skipped ({row.get('skipped', 'not run')})"
    return "**held**" if row["held"] else "**not held**"


def claims_table(claims: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table: id, claim, statistic, value (mean over seeds), interval (mean +- 2 SE), verdict, paper."""
    head = ["id", "level", "claim", "statistic", "value", "interval (mean ± 2 SE)", "seeds", "verdict", "paper"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in claims:
        interval = c.get("interval")
        shown = "n/a" if not interval else f"[{_num(interval[0])}, {_num(interval[1])}]"
        lines.append(
            "| "
            + " | ".join(
                [
                    c["id"],
                    c.get("level", "training"),
                    c["claim"],
                    c["statistic"],
                    _num(c.get("value")),
                    shown,
                    str(c.get("seeds", "")),
                    claim_verdict(c),
                    c["paper_ref"],
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def estimator_table(claims: Sequence[Mapping[str, Any]]) -> str:
    """Claim 6's numbers next to STEER Figure 2's (Qwen-Math-7B row)."""
    rows = {c["id"].split("-")[1]: c for c in claims if c["id"].startswith("6-") and c.get("ours")}
    if not rows:
        return ""
    head = [f"{m} (demo)" for m in rows] + [f"{m} (paper)" for m in rows]
    lines = ["| estimate | " + " | ".join(head) + " |", "|" + "---|" * (1 + len(head))]
    for name in ("Cov", "Omega"):
        demo = [_num(rows[m]["ours"][name]) for m in rows]
        paper = [_num(rows[m]["paper"][name]) for m in rows]
        lines.append(f"| {name} | " + " | ".join(demo) + " | " + " | ".join(paper) + " |")
    if "MSE" in rows and "zero" in rows["MSE"]["ours"]:
        blanks = ["n/a"] * (len(rows) - 1)
        lines.append(
            "| zero (predict no change) | "
            + " | ".join([_num(rows["MSE"]["ours"]["zero"])] + blanks)
            + " | "
            + " | ".join(["n/a"] * len(rows))
            + " |"
        )
    return "\n".join(lines) + "\n"


def run_summary_table(summaries: Sequence[Mapping[str, Any]], samples: int) -> str:
    """One row per run: mean over seeds (± SE) of the final metrics."""
    head = [
        "run",
        "seeds",
        "final entropy",
        "H_end / H0",
        f"avg@{samples}",
        f"pass@{samples}",
        f"distinct correct (of {samples})",
        "train acc (last tenth)",
        "settings",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        cell = (
            lambda key: "n/a"
            if s.get(key) is None
            else (f"{s[key]:.3f}" + (f" ± {s[key + '_se']:.3f}" if s.get(key + "_se") is not None else ""))
        )
        lines.append(
            "| "
            + " | ".join(
                [
                    s["run"],
                    str(s["seeds"]),
                    cell("heldout_entropy"),
                    cell("entropy_ratio"),
                    cell("avg@n"),
                    cell(f"pass@{samples}"),
                    cell("distinct_correct"),
                    cell("train_accuracy_last"),
                    s.get("note", ""),
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def plot_seed_bands(
    histories: Mapping[str, Sequence[Sequence[Dict[str, Any]]]],
    panels: Sequence[tuple],
    path: Path,
    title: str,
    key: str = "entropy/rollout",
    ylabel: str = "rollout entropy (nats/token)",
    hlines: Optional[Mapping[str, float]] = None,
) -> None:
    """One panel per (title, run names[, panel hlines]); each run's mean over seeds with a band of mean ± 2 SE.

    ``hlines`` (label -> y) are drawn on every panel, a panel's own third element on that panel only."""
    import numpy as np

    from openrlhf_steer.core.stats import standard_error

    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.2), squeeze=False)
    colours = plt.get_cmap("tab10")
    names = sorted({n for panel in panels for n in panel[1]})
    for ax, panel in zip(axes[0], panels):
        panel_title, runs = panel[0], panel[1]
        panel_lines = {**(hlines or {}), **(panel[2] if len(panel) > 2 else {})}
        for name in runs:
            seeds = [rows for rows in histories.get(name, []) if rows]
            if not seeds:
                continue
            length = min(len(rows) for rows in seeds)
            values = np.array([[r[key] for r in rows[:length]] for rows in seeds], dtype=float)
            mean = values.mean(0)
            se = standard_error(values, axis=0) if len(seeds) > 1 else np.zeros_like(mean)
            steps = np.arange(length)
            colour = colours(names.index(name) % 10)
            ax.plot(steps, mean, color=colour, linewidth=1.8, label=f"{name} (n={len(seeds)})")
            ax.fill_between(steps, mean - 2 * se, mean + 2 * se, color=colour, alpha=0.18, linewidth=0)
        for label, value in panel_lines.items():
            ax.axhline(value, color="grey", linestyle="--", linewidth=0.9)
            ax.annotate(label, (0, value), fontsize=7, color="grey", xytext=(2, 2), textcoords="offset points")
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel("rollout step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"{title}  (line: mean over seeds; band: mean ± 2 SE)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def plot_estimator(rows_by_seed: Sequence[Sequence[Dict[str, Any]]], path: Path) -> None:
    """Raw Omega and Cov estimates against the measured per-token entropy change (all seeds pooled)."""
    plt = pyplot()
    truth = [v for rows in rows_by_seed for r in rows for v in r["true"]]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    for ax, name, label in ((axes[0], "omega", "Omega (STEER Eq. 7), raw"), (axes[1], "cov", "Cov (Cui et al.), raw")):
        estimate = [v for rows in rows_by_seed for r in rows for v in r[name]]
        ax.scatter(truth, estimate, s=4, alpha=0.35)
        ax.set_xscale("symlog", linthresh=1e-4)
        ax.set_yscale("symlog", linthresh=1e-4)
        ax.set_xlabel("measured entropy change of the token (nats)")
        ax.set_ylabel("estimate (nats)")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    fig.suptitle(f"Per-token entropy change vs its estimates, first GRPO steps ({len(truth)} tokens)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def plot_diversity(points: Sequence[Mapping[str, Any]], start: Mapping[str, Any], path: Path, samples: int) -> None:
    """Final entropy vs distinct correct answers, one point per (run, seed); the start model as a star."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    colours = plt.get_cmap("tab20")
    names = sorted({p["run"] for p in points})
    for i, name in enumerate(names):
        mine = [p for p in points if p["run"] == name]
        ax.scatter(
            [p["heldout_entropy"] for p in mine],
            [p["distinct_correct"] for p in mine],
            s=22,
            color=colours(i % 20),
            label=name,
        )
    ax.scatter([start["entropy"]], [start["distinct_correct"]], marker="*", s=160, color="black", label="start")
    ax.set_xlabel("final entropy (nats/token, own samples)")
    ax.set_ylabel(f"distinct correct answers per prompt (of {samples} samples)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="best")
    ax.set_title("Diversity vs entropy, one point per run and seed", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
