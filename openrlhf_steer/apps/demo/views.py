"""Pictures of the mechanism stage and the runs: per-quadrant Delta H vs Omega, STEER's weights, per-seed curves."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence

from .mechanism_math import QUADRANT_SIGN, QUADRANTS
from .report import pyplot, save_figure

Mechanism = Mapping[int, Mapping[str, Any]]


def _on_policy(mechanism: Mechanism):
    for seed in sorted(mechanism):
        for record in mechanism[seed]["checkpoints"]:
            if record.get("on_policy"):
                yield seed, record["step"], record["on_policy"]


def plot_quadrants(mechanism: Mechanism, path: Path) -> None:
    """Per quadrant: each token's measured Delta H at its own prefix after a step on that quadrant alone,
    against its Omega (STEER Eq. 7, same eta); the diagonal is Omega = Delta H."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(16, 4))
    for ax, q in zip(axes, QUADRANTS):
        xs: List[float] = []
        ys: List[float] = []
        for _, _, on in _on_policy(mechanism):
            row = on["subsets"].get(q, {})
            xs += row.get("own_omega", [])
            ys += row.get("own_dh", [])
        ax.scatter(xs, ys, s=8, alpha=0.5)
        if xs:
            # the diagonal over Omega's own range: where Omega is far smaller than the change, it lies flat
            lo, hi = min(xs), max(xs)
            ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, label="Delta H = Omega")
            scale = sorted(abs(y) for y in ys)[len(ys) // 2] / max(sorted(abs(x) for x in xs)[len(xs) // 2], 1e-300)
            ax.text(0.02, 0.02, f"median |Delta H| / median |Omega| = {scale:.3g}", transform=ax.transAxes, fontsize=7)
        ax.axhline(0, color="black", lw=0.5)
        ax.axvline(0, color="black", lw=0.5)
        sign = "lowers" if QUADRANT_SIGN[q] < 0 else "raises"
        ax.set_title(f"quadrant {q} (paper: {sign} H), {len(xs)} tokens")
        ax.set_xlabel("Omega (STEER Eq. 7)")
        ax.legend(loc="best", fontsize=7)
    axes[0].set_ylabel("measured Delta H_t (one GD step)")
    fig.tight_layout()
    save_figure(fig, path)


def plot_weights(mechanism: Mechanism, path: Path) -> None:
    """STEER's token weights (exp mapping as the authors configure it) beside GRPO's (all 1)."""
    plt = pyplot()
    weights: List[float] = []
    stats: List[Mapping[str, float]] = []
    for _, _, on in _on_policy(mechanism):
        norm = on.get("equal_norm")
        if norm:
            weights += norm["steer_exp"].get("weight_values", [])
            stats.append(norm["steer_exp"]["weights"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    bins = [0.8 + 0.01 * i for i in range(22)]
    axes[0].hist([1.0] * len(weights), bins=bins, color="tab:blue")
    axes[0].set_title(f"GRPO: every weight 1 ({len(weights)} tokens)")
    axes[1].hist(weights, bins=bins, color="tab:orange")
    if stats:
        median = sum(s["median"] for s in stats) / len(stats)
        share = sum(s["share_below_0.95"] for s in stats) / len(stats)
        axes[1].set_title(f"STEER exp, lambda_min 0.8\nmedian {median:.3f}, share below 0.95 {share:.2f}", fontsize=10)
    for ax in axes:
        ax.set_xlabel("token weight")
        ax.set_yscale("log")
    axes[0].set_ylabel("tokens (log)")
    fig.tight_layout()
    save_figure(fig, path)


def plot_seed_curves(histories: Mapping[str, Sequence[Sequence[Dict[str, Any]]]], path: Path, start: float) -> None:
    """Rollout entropy of every run, one line per seed (no band: each seed is visible)."""
    plt = pyplot()
    names = list(histories)
    cols = 4
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), sharey=True, squeeze=False)
    for ax, name in zip(axes.flat, names):
        for seed, rows_of_seed in enumerate(histories[name]):
            steps = [r["step"] for r in rows_of_seed]
            ax.plot(steps, [r["entropy/rollout"] for r in rows_of_seed], lw=0.9, label=f"seed {seed}")
        ax.axhline(start, color="grey", lw=0.6, ls="--")
        ax.set_title(name)
        ax.set_xlabel("rollout step")
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    axes[0][0].set_ylabel("rollout entropy")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, path)


def write_views(output_dir: Path, mechanism: Mechanism, histories, start_eval: Mapping[str, Any]) -> List[str]:
    """Every view; returns the file names written."""
    output_dir = Path(output_dir)
    plot_quadrants(mechanism, output_dir / "mechanism_quadrants.png")
    plot_weights(mechanism, output_dir / "steer_weights.png")
    plot_seed_curves(histories, output_dir / "entropy_per_seed.png", float(start_eval["train_rollout_entropy"]))
    return ["mechanism_quadrants.png", "steer_weights.png", "entropy_per_seed.png"]


def plot_target_tracking(histories: Mapping[str, Sequence[Sequence[Dict[str, Any]]]], runs: Sequence[str], path: Path):
    """Per run with an entropy target: the target curve and the measured rollout entropy (mean over seeds, band
    mean +- 2 SE) above, the lever's value below (controller/target/*, as the controller logged them)."""
    import numpy as np

    from openrlhf_steer.core.stats import standard_error

    plt = pyplot()
    fig, axes = plt.subplots(2, len(runs), figsize=(5.6 * len(runs), 6.4), squeeze=False, sharex=True)
    for column, name in enumerate(runs):
        seeds = [rows for rows in histories.get(name, []) if rows]
        length = min(len(rows) for rows in seeds)
        steps = np.arange(length)
        for ax, key, colour, label in (
            (axes[0][column], "controller/target/measured", "tab:blue", "measured (rollout entropy)"),
            (axes[1][column], "controller/target/lever", "tab:orange", "lever: Pos-Adv lambda"),
        ):
            values = np.array([[r[key] for r in rows[:length]] for rows in seeds], dtype=float)
            mean = values.mean(0)
            se = standard_error(values, axis=0) if len(seeds) > 1 else np.zeros_like(mean)
            ax.plot(steps, mean, color=colour, lw=1.8, label=f"{label} (n={len(seeds)})")
            ax.fill_between(steps, mean - 2 * se, mean + 2 * se, color=colour, alpha=0.2, linewidth=0)
            ax.grid(alpha=0.3)
        target = [seeds[0][i]["controller/target/target"] for i in range(length)]
        axes[0][column].plot(steps, target, color="black", ls="--", lw=1.2, label="target")
        tail = length - max(1, length // 10)
        axes[0][column].axvspan(tail - 0.5, length - 0.5, color="grey", alpha=0.12, label="last tenth (claim 8)")
        axes[0][column].set_xlim(-0.5, length - 0.5)
        axes[0][column].set_title(name, fontsize=10)
        axes[0][column].set_ylabel("entropy (nats/token)")
        axes[0][column].legend(fontsize=7, loc="best")
        axes[1][column].set_ylabel("lambda")
        axes[1][column].set_xlabel("rollout step")
    fig.suptitle("Entropy target vs measured entropy (line: mean over seeds; band: mean ± 2 SE)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
