"""Clip-trigger counts by token probability band (STEER paper's clipping analysis, small scale).

Short GRPO (clip 0.2/0.2) and clip-higher (0.2/0.28) runs with several optimizer steps per rollout
(so later mini-batches are off-policy). Every micro-batch's tokens are binned by their rollout
probability p_old; a low trigger is A < 0 with ratio < 1 - eps_low, a high trigger A > 0 with
ratio > 1 + eps_high, computed by the core's ``clipped_surrogate`` with the run's effective clip
range (the same function the loss uses).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List

import torch

from openrlhf_steer.core.loss import clipped_surrogate

from ..config import MethodSpec
from ..io import write_json
from .common import analysis_dir, pyplot, save_figure
from .jobs import make_run, run_jobs

BAND_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass
class ClipBandSettings:
    steps: int = field(default=30, metadata={"help": "Rollout steps per run."})
    mini_batches: int = field(
        default=4, metadata={"help": "Optimizer steps per rollout (more = more off-policy = more clipping)."}
    )


def preset_settings(quick: bool, config) -> ClipBandSettings:
    """quick: 2 rollout steps of 2 mini-batches per run; else the defaults."""
    return ClipBandSettings(steps=2, mini_batches=2) if quick else ClipBandSettings()


def summary(result: Dict[str, Any]) -> str:
    parts = [f"{n}: low {r['total_low']} / high {r['total_high']}" for n, r in result["runs"].items()]
    return "clip-bands: " + "; ".join(parts)


def band_labels() -> List[str]:
    return [f"[{lo:.1f}, {hi:.1f}{']' if hi == 1.0 else ')'}" for lo, hi in zip(BAND_EDGES[:-1], BAND_EDGES[1:])]


class ClipCounter:
    """Observer for MethodRun: accumulates token counts and clip triggers per probability band."""

    def __init__(self):
        n = len(BAND_EDGES) - 1
        self.tokens = [0] * n
        self.low = [0] * n
        self.high = [0] * n

    def __call__(self, inputs, loss_config) -> None:
        with torch.no_grad():
            flags = clipped_surrogate(inputs.log_probs.detach(), inputs.old_log_probs, inputs.advantages, loss_config)
            mask = inputs.action_mask.bool()
            p_old = inputs.old_log_probs.exp()
            band = torch.bucketize(p_old, torch.tensor(BAND_EDGES[1:-1], dtype=p_old.dtype), right=True)
            for b in range(len(self.tokens)):
                in_band = mask & (band == b)
                self.tokens[b] += int(in_band.sum())
                self.low[b] += int((flags["clipped_low"] & in_band).sum())
                self.high[b] += int((flags["clipped_high"] & in_band).sum())

    def state(self) -> Dict[str, List[int]]:
        return {"tokens": self.tokens, "clip_low": self.low, "clip_high": self.high}


def _train(job: Dict[str, Any]) -> Dict[str, Any]:
    run = make_run(job)
    # The counts must cover every step: a resumed run would miss the steps before its checkpoint.
    import shutil

    shutil.rmtree(run.run_dir, ignore_errors=True)
    counter = ClipCounter()
    run.observers.append(counter)
    rows = run.train(progress=job["progress"], position=job["position"])
    effective = run.method.loss_config(run.loss_fn.loss_config)  # e.g. clip-higher's eps_high 0.28
    return {
        "name": job["spec"].run_name,
        "counts": counter.state(),
        "loss": asdict(effective),
        "method": job["spec"].method,
        "steps": len(rows),
        "clip_frac_low_mean": sum(r.get("train/clip/frac_low", 0.0) for r in rows) / max(len(rows), 1),
        "clip_frac_high_mean": sum(r.get("train/clip/frac_high", 0.0) for r in rows) / max(len(rows), 1),
    }


def run(ws, settings: ClipBandSettings, progress: bool = True) -> Dict[str, Any]:
    out = analysis_dir(ws)
    specs = [
        MethodSpec("grpo", "grpo", {}, {"eps_low": 0.2, "eps_high": 0.2}, "GRPO 0.2/0.2"),
        MethodSpec("clip_higher", "clip_higher", {}, {"eps_low": 0.2, "eps_high": 0.2}, "clip-higher 0.2/0.28"),
    ]
    rl_overrides = {"steps": settings.steps, "mini_batches": settings.mini_batches}
    jobs = [
        {
            "config": ws.config,
            "output_dir": str(ws.output_dir),
            "spec": spec,
            "run_dir": str(out / "clip_bands_runs" / spec.run_name),
            "rl_overrides": rl_overrides,
            "progress": progress,
            "position": i % max(1, ws.config.workers),
        }
        for i, spec in enumerate(specs)
    ]
    runs = run_jobs(_train, jobs, ws.config.workers)
    labels = band_labels()
    result = {
        "analysis": "clip-bands",
        "settings": asdict(settings),
        "bands": labels,
        "what": "clip triggers per rollout-probability band over all micro-batches of the runs",
        "runs": {},
    }
    for r in runs:
        counts = r["counts"]
        rates_low = [lo / t if t else None for lo, t in zip(counts["clip_low"], counts["tokens"])]
        rates_high = [hi / t if t else None for hi, t in zip(counts["clip_high"], counts["tokens"])]
        result["runs"][r["name"]] = {
            **r,
            "rate_low": rates_low,
            "rate_high": rates_high,
            "total_low": sum(counts["clip_low"]),
            "total_high": sum(counts["clip_high"]),
        }
    write_json(out / "clip_bands.json", result)
    plot(result, out / "clip_bands.png")
    return result


def plot(result: Dict[str, Any], path: Path) -> None:
    plt = pyplot()
    names = list(result["runs"])
    fig, axes = plt.subplots(1, len(names), figsize=(6.5 * len(names), 4.4), squeeze=False)
    labels = result["bands"]
    x = list(range(len(labels)))
    for ax, name in zip(axes[0], names):
        r = result["runs"][name]
        low, high = r["counts"]["clip_low"], r["counts"]["clip_high"]
        ax.bar([i - 0.2 for i in x], low, width=0.4, label=f"low (A<0, r<1-eps_low): {sum(low)}", color="tab:blue")
        ax.bar(
            [i + 0.2 for i in x], high, width=0.4, label=f"high (A>0, r>1+eps_high): {sum(high)}", color="tab:orange"
        )
        for i, t in enumerate(r["counts"]["tokens"]):
            ax.annotate(
                f"n={t}", (i, max(low[i], high[i])), ha="center", fontsize=7, xytext=(0, 3), textcoords="offset points"
            )
        ax.set_xticks(x)
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_xlabel("rollout probability p_old of the sampled token")
        ax.set_ylabel("clip triggers (count)")
        ax.set_title(
            f"{name} (eps_low {r['loss']['eps_low']}, eps_high {r['loss']['eps_high']}), {r['steps']} steps",
            fontsize=10,
        )
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    save_figure(fig, path)
