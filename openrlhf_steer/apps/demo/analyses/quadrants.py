"""Quadrant interventions (STEER paper's quadrant analysis, small scale).

From the same start model and seed, train a baseline (GRPO) and four runs that mask (or up-weight)
a random 10% of the tokens in one quadrant of (advantage sign) x (rollout probability band, split at
p = 0.5), via the core ``quadrant`` method. Entropy is the fixed-probe entropy after each step.

Predicted direction relative to the baseline, from the first-order entropy change
-eta * A * (log p + H) (p high => log p + H > 0 for a peaked distribution):
A > 0 on a likely token and A < 0 on an unlikely token lower entropy; the other two raise it.
Masking removes a quadrant's contribution, so masking an entropy-lowering quadrant leaves entropy
above the baseline; up-weighting does the opposite.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict

from ..config import MethodSpec
from ..io import write_json
from .common import analysis_dir, pyplot, save_figure
from .jobs import make_run, run_jobs

QUADRANTS = [("pos", "high"), ("pos", "low"), ("neg", "high"), ("neg", "low")]
# Sign of the quadrant's own effect on entropy (-1 lowers it, +1 raises it).
QUADRANT_EFFECT = {("pos", "high"): -1, ("pos", "low"): +1, ("neg", "high"): +1, ("neg", "low"): -1}


@dataclass
class QuadrantSettings:
    steps: int = field(default=40, metadata={"help": "Rollout steps per run (baseline + 4 quadrants)."})
    action: str = field(
        default="mask", metadata={"help": "mask (weight 0) or upweight (weight upweight_factor) of the chosen tokens."}
    )
    fraction: float = field(
        default=0.1, metadata={"help": "Fraction of each quadrant's tokens acted on (STEER paper: 10%)."}
    )
    upweight_factor: float = field(default=2.0, metadata={"help": "Weight of chosen tokens when action=upweight."})
    prob_threshold: float = field(
        default=0.5, metadata={"help": "Rollout probability separating the high and low bands."}
    )


def preset_settings(quick: bool, config) -> QuadrantSettings:
    """quick: 2 rollout steps per run; else the defaults."""
    return QuadrantSettings(steps=2) if quick else QuadrantSettings()


def summary(result: Dict[str, Any]) -> str:
    return f"quadrants: {result['moved_as_predicted']}/4 moved entropy in the predicted direction"


def predicted_sign(sign: str, band: str, action: str) -> int:
    """+1 if the run's entropy should end above the baseline's, -1 if below."""
    effect = QUADRANT_EFFECT[(sign, band)]
    return -effect if action == "mask" else effect


def _train(job: Dict[str, Any]) -> Dict[str, Any]:
    run = make_run(job)
    start_entropy = run.probe.entropy(run.model)
    # Token counts over every micro-batch; a resumed run would miss earlier ones, so always start over.
    import shutil

    shutil.rmtree(run.run_dir, ignore_errors=True)
    counts = {"quadrant_candidates": 0.0, "quadrant_chosen": 0.0, "valid_tokens": 0.0}

    def count(inputs, _config):
        metrics = run.method.last_metrics()
        for key in ("quadrant_candidates", "quadrant_chosen"):
            counts[key] += metrics.get(key, 0.0)
        counts["valid_tokens"] += float(inputs.action_mask.sum())

    run.observers.append(count)
    rows = run.train(progress=job["progress"], position=job["position"])
    return {
        "name": job["spec"].run_name,
        "start_entropy": start_entropy,
        "entropy": [r["entropy/probe"] for r in rows],
        "reward": [r["reward/mean"] for r in rows],
        **counts,
    }


def run(ws, settings: QuadrantSettings, progress: bool = True) -> Dict[str, Any]:
    out = analysis_dir(ws)
    specs = [MethodSpec("baseline", "grpo", {}, {"eps_low": 0.2, "eps_high": 0.2}, "GRPO")]
    for sign, band in QUADRANTS:
        config = {
            "sign": sign,
            "band": band,
            "action": settings.action,
            "fraction": settings.fraction,
            "prob_threshold": settings.prob_threshold,
            "upweight_factor": settings.upweight_factor,
        }
        specs.append(
            MethodSpec(
                f"{settings.action}_{sign}_{band}",
                "quadrant",
                config,
                {"eps_low": 0.2, "eps_high": 0.2},
                f"{settings.action} {settings.fraction:.0%} of A{'>' if sign == 'pos' else '<'}0, p {band}",
            )
        )
    jobs = [
        {
            "config": ws.config,
            "output_dir": str(ws.output_dir),
            "spec": spec,
            "run_dir": str(out / "quadrants_runs" / spec.run_name),
            "rl_overrides": {"steps": settings.steps},
            "progress": progress,
            "position": i % max(1, ws.config.workers),
        }
        for i, spec in enumerate(specs)
    ]
    runs = {r["name"]: r for r in run_jobs(_train, jobs, ws.config.workers)}
    base = runs["baseline"]["entropy"]
    quadrants = []
    for (sign, band), spec in zip(QUADRANTS, specs[1:]):
        curve = runs[spec.run_name]["entropy"]
        diffs = [a - b for a, b in zip(curve, base)]
        mean_diff = sum(diffs) / len(diffs)
        expected = predicted_sign(sign, band, settings.action)
        quadrants.append(
            {
                "run": spec.run_name,
                "advantage_sign": sign,
                "prob_band": band,
                "final_entropy": curve[-1],
                "baseline_final_entropy": base[-1],
                "final_minus_baseline": curve[-1] - base[-1],
                "mean_minus_baseline": mean_diff,
                "predicted": "above baseline" if expected > 0 else "below baseline",
                "moved_as_predicted": bool(mean_diff * expected > 0),
                "tokens_in_quadrant": int(runs[spec.run_name]["quadrant_candidates"]),
                "tokens_acted_on": int(runs[spec.run_name]["quadrant_chosen"]),
                "tokens_trained": int(runs[spec.run_name]["valid_tokens"]),
            }
        )
    result = {
        "analysis": "quadrants",
        "settings": asdict(settings),
        "what": "probe entropy per step; each quadrant run vs the GRPO baseline from the same start and seed",
        "start_entropy": runs["baseline"]["start_entropy"],
        "baseline_entropy": base,
        "curves": {name: r["entropy"] for name, r in runs.items()},
        "quadrants": quadrants,
        "moved_as_predicted": sum(q["moved_as_predicted"] for q in quadrants),
    }
    stem = "quadrants" if settings.action == "mask" else f"quadrants_{settings.action}"
    write_json(out / f"{stem}.json", result)
    plot(result, out / f"{stem}.png")
    return result


def plot(result: Dict[str, Any], path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    start = result["start_entropy"]
    colours = {"baseline": "black"}
    palette = plt.get_cmap("tab10")
    for i, (name, curve) in enumerate(result["curves"].items()):
        colour = colours.get(name, palette(i))
        axes[0].plot(
            range(0, len(curve) + 1),
            [start] + curve,
            label=name,
            color=colour,
            linewidth=2.2 if name == "baseline" else 1.4,
        )
    axes[0].set_xlabel("rollout step")
    axes[0].set_ylabel("probe entropy (nats)")
    axes[0].set_title("Entropy per run", fontsize=10)
    axes[0].legend(fontsize=8)
    axes[0].grid(alpha=0.3)
    names = [q["run"] for q in result["quadrants"]]
    values = [q["mean_minus_baseline"] for q in result["quadrants"]]
    colours_bar = ["tab:green" if q["moved_as_predicted"] else "tab:red" for q in result["quadrants"]]
    axes[1].bar(range(len(names)), values, color=colours_bar)
    for i, q in enumerate(result["quadrants"]):
        axes[1].annotate(
            f"predicted {q['predicted']}\n{q['tokens_acted_on']} of {q['tokens_in_quadrant']} tokens "
            f"{q['run'].split('_')[0]}ed",
            (i, values[i]),
            ha="center",
            fontsize=7,
            xytext=(0, 4 if values[i] >= 0 else -22),
            textcoords="offset points",
        )
    axes[1].axhline(0, color="grey", linewidth=0.8)
    axes[1].margins(y=0.3)
    axes[1].set_xticks(range(len(names)))
    axes[1].set_xticklabels(names, fontsize=8)
    axes[1].set_ylabel("mean entropy difference to baseline (nats)")
    axes[1].set_title(f"{result['moved_as_predicted']}/4 quadrants moved as predicted (green)", fontsize=10)
    axes[1].grid(alpha=0.3, axis="y")
    fig.tight_layout()
    save_figure(fig, path)
