"""`demo run`: prepare the start model, train every method (in parallel workers), evaluate, report."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from openrlhf_steer.core.stats import standard_error

from .config import METHOD_SPECS, DemoConfig, MethodSpec
from .io import read_json, read_jsonl, write_json
from .workspace import Workspace, load_probe, open_workspace, prepare_probe, prepare_start_model


def evaluate_start(ws: Workspace) -> Dict[str, Any]:
    """Held-out metrics of the start model (the 'step 0' row, and the entropy target of Pos-Adv-Reweight)."""
    from .heldout import evaluate_heldout
    from .models import load_policy

    path = ws.output_dir / "start_eval.json"
    if path.exists():
        return read_json(path)
    model, tokenizer = load_policy(ws.start_dir)
    result = evaluate_heldout(
        model,
        tokenizer,
        ws.task,
        ws.heldout,
        ws.config.eval,
        max_new_tokens=ws.config.rl.max_new_tokens,
        seed=ws.config.seed + 12345,
    )
    result["probe_entropy"] = load_probe(ws).entropy(model)
    result["train_rollout_entropy"] = start_rollout_entropy(ws, model, tokenizer)
    write_json(path, result)
    return result


def start_rollout_entropy(ws: Workspace, model, tokenizer, rollouts: int = 4) -> float:
    """Token-mean rollout entropy of the start model on training prompts: the statistic the RL loop
    logs as entropy/old_mean, so a controller target set from it is measured the same way."""
    from .rollout import collect_rollout
    from .task import sample_problems
    from .train import demo_seed

    rl = ws.config.rl
    total, tokens = 0.0, 0.0
    with torch.random.fork_rng():
        for i in range(rollouts):
            torch.manual_seed(demo_seed(rl.seed, 0, salt=500 + i))
            problems = sample_problems(ws.pool, rl.prompts_per_step, rl.seed + 1000 + i, 0)
            rollout = collect_rollout(
                model,
                tokenizer,
                ws.task,
                problems,
                samples_per_prompt=rl.samples_per_prompt,
                max_new_tokens=rl.max_new_tokens,
                temperature=rl.temperature,
            )
            mask = rollout.batch.action_mask
            total += float((rollout.old_entropy * mask).sum())
            tokens += float(mask.sum())
    return total / max(tokens, 1.0)


# Jin et al. (arXiv 2511.05993): delta = 0.2 for Qwen2.5-Math-7B, whose start entropy they measured
# as 0.3657 (the value their Ada-Ent-Reg baseline also uses as a target).
PAPER_ENTROPY_TARGET, PAPER_START_ENTROPY = 0.2, 0.3657


def method_overrides(spec: MethodSpec, start_eval: Dict[str, Any]) -> Dict[str, Any]:
    """Task-scale settings: Pos-Adv-Reweight's entropy target keeps the paper's ratio to the start entropy.

    The paper's delta = 0.2 nats is an absolute value for a 7B model starting at 0.3657 nats. On the
    toy task the start entropy differs, so delta is set to the same fraction (0.547) of the start
    model's token-mean rollout entropy on training prompts, the statistic the controller reads
    (entropy/old_mean). An explicit ``--set pos_adv_reweight.entropy_target=...`` wins.
    """
    if (
        spec.method == "pos_adv_reweight"
        and spec.config.get("schedule") == "entropy"
        and "entropy_target" not in spec.config
    ):
        start = float(start_eval["train_rollout_entropy"])
        return {"entropy_target": round(start * PAPER_ENTROPY_TARGET / PAPER_START_ENTROPY, 4)}
    return {}


def target_settings(spec: MethodSpec, start_eval: Dict[str, Any], steps: int) -> Dict[str, Any]:
    """The run's entropy target (``spec.target``) on the demo's scale; {} for a run without one.

    Where the spec leaves them out: ``start`` is the start model's token-mean rollout entropy on training
    prompts (the statistic the controller reads, entropy/old_mean), ``end`` the same fraction of it as
    Pos-Adv's delta (0.2 / 0.3657, Sec. 7.3; claim 4's target), ``total_steps`` the run's rollout steps.
    """
    if not spec.target:
        return {}
    start = float(start_eval["train_rollout_entropy"])
    resolved = {
        "start": round(start, 4),
        "end": round(start * PAPER_ENTROPY_TARGET / PAPER_START_ENTROPY, 4),
        "total_steps": int(steps),
    }
    return {**resolved, **dict(spec.target)}


def run_one_method(job: Dict[str, Any]) -> Dict[str, Any]:
    """Worker entry point (a separate process): train or resume one method with one seed, evaluate it,
    write its result.json."""
    torch.set_num_threads(1)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    from .heldout import evaluate_heldout
    from .train import MethodRun

    config: DemoConfig = job["config"]
    ws = open_workspace(Path(job["output_dir"]), config)
    spec: MethodSpec = job["spec"]
    seed = int(job["seed"])
    run_dir = ws.run_dir(spec.run_name, seed)
    result_path = run_dir / "result.json"
    if result_path.exists():
        saved = read_json(result_path)
        if saved.get("spec") == json.loads(json.dumps(spec.to_dict())):
            return saved
        raise ValueError(
            f"{result_path} was produced with other method settings; use another --output-dir "
            f"or delete {run_dir} to rerun {spec.run_name}"
        )
    start_eval = read_json(ws.output_dir / "start_eval.json")
    overrides = method_overrides(spec, start_eval)
    rl = dataclasses.replace(config.rl, seed=seed)
    target = target_settings(spec, start_eval, rl.steps)
    run = MethodRun(
        spec,
        ws.start_dir,
        run_dir,
        ws.task,
        ws.pool,
        rl,
        probe=load_probe(ws),
        method_overrides=overrides,
        target=target,
    )
    recorder = entropy_change_recorder(spec, config, run)
    if recorder is not None:
        run.step_observers.append(recorder)
    if spec.method == "steer":  # its weight distribution per step, from the loss's own metrics (weight_log.py)
        from .weight_log import SteerWeightLogger

        SteerWeightLogger.attach(run)
    started = time.time()
    rows = run.train(
        progress=job.get("progress", True), position=job.get("position", 0), stop_after=job.get("stop_after")
    )
    if not run.finished:
        return {"run": spec.run_name, "seed": seed, "finished": False, "steps": run.step}
    run.save_checkpoint()
    heldout = evaluate_heldout(
        run.model,
        run.tokenizer,
        ws.task,
        ws.heldout,
        config.eval,
        max_new_tokens=config.rl.max_new_tokens,
        seed=config.seed + 12345,
    )
    tail = rows[-max(1, len(rows) // 10) :]
    result = {
        "run": spec.run_name,
        "method": spec.method,
        "seed": seed,
        "finished": True,
        "spec": spec.to_dict(),
        "steps": len(rows),
        "note": spec.note,
        "config": {**dict(spec.config), **overrides},
        "loss": dict(spec.loss),
        "heldout_entropy": heldout["entropy"],
        "probe_entropy": rows[-1].get("entropy/probe"),
        "rollout_entropy_last": sum(r["entropy/rollout"] for r in tail) / len(tail),
        "train_accuracy_last": sum(r["accuracy"] for r in tail) / len(tail),
        "avg@n": heldout["avg@n"],
        **{k: v for k, v in heldout.items() if k.startswith("pass@")},
        "distinct_correct": heldout.get("distinct_correct"),
        "heldout": heldout,
        "train_seconds": time.time() - started,
    }
    if target:
        from .claims_stats import tracking_error

        result["target"] = target
        result["target_tracking_error"] = tracking_error(rows)
    if recorder is not None:
        from .entropy_change import summarise

        result["entropy_change"] = summarise(read_jsonl(run_dir / recorder.log_name))
    write_json(result_path, result)
    return result


def entropy_change_recorder(spec: MethodSpec, config: DemoConfig, run):
    """Claim 6's recorder on the configured run (None elsewhere): raw Omega/Cov vs the measured change."""
    if spec.run_name != config.entropy_change_run or config.entropy_change_steps < 1:
        return None
    from openrlhf_steer.methods import LossConfig

    from .entropy_change import EntropyChangeRecorder

    loss = LossConfig(**dict(spec.loss))
    return EntropyChangeRecorder(config.entropy_change_steps, config.rl.lr, loss.eps_low, loss.eps_high)


def run_methods(
    ws: Workspace, specs: List[MethodSpec], *, workers: int, progress: bool, stop_after: Optional[int] = None
) -> List[Dict[str, Any]]:
    """Every (run, seed) pair as one job, seeds outermost so that a partial run has every method."""
    pairs = [(spec, seed) for seed in ws.config.rl_seeds() for spec in specs]
    jobs = [
        {
            "config": ws.config,
            "output_dir": str(ws.output_dir),
            "spec": spec,
            "seed": seed,
            "progress": progress,
            "position": i % max(workers, 1),
            "stop_after": stop_after,
        }
        for i, (spec, seed) in enumerate(pairs)
    ]
    from .analyses.jobs import run_jobs

    return run_jobs(run_one_method, jobs, workers)


def resolve_specs(names: List[str], options: Optional[Dict[str, Dict[str, Any]]] = None) -> List[MethodSpec]:
    unknown = [n for n in names if n not in METHOD_SPECS]
    if unknown:
        raise ValueError(f"--methods: unknown run name(s) {unknown}; choose from {sorted(METHOD_SPECS)}")
    options = options or {}
    stray = sorted(set(options) - set(names))
    if stray:
        raise ValueError(f"--set names run(s) {stray} that are not in --methods {names}")
    specs = [METHOD_SPECS[n].with_options(options.get(n, {})) for n in names]
    from openrlhf_steer.methods import build_method

    for spec in specs:  # fail now, with the method's own message, not inside a worker later
        build_method(spec.method, dict(spec.config))
    return specs


def check_config(ws: Workspace) -> None:
    """An output dir belongs to one configuration; a rerun with other settings must not mix results."""
    path = ws.output_dir / "demo_config.json"
    current = ws.config.to_dict()
    if path.exists():
        saved = read_json(path)
        free = ("methods", "workers", "analyses", "preset", "method_options")  # per-run checks cover method options
        comparable = {k: v for k, v in current.items() if k not in free}
        saved_cmp = {k: v for k, v in saved.items() if k not in free}
        if _normalise(comparable) != _normalise(saved_cmp):
            raise ValueError(
                f"{ws.output_dir} holds a run with other settings ({path}); use another --output-dir "
                "or delete it to start over"
            )
    write_json(path, current)


def _normalise(value):
    import json

    return json.loads(json.dumps(value))


def group_results(results: List[Dict[str, Any]]) -> Dict[str, Dict[int, Dict[str, Any]]]:
    """run name -> seed -> finished result, in the order the runs were given."""
    grouped: Dict[str, Dict[int, Dict[str, Any]]] = {}
    for r in results:
        if r.get("finished"):
            grouped.setdefault(r["run"], {})[int(r["seed"])] = r
    return grouped


def summarise_run(name: str, by_seed: Dict[int, Dict[str, Any]], start_eval: Dict[str, Any], ks) -> Dict[str, Any]:
    """Mean and standard error over seeds of a run's final metrics."""
    seeds = sorted(by_seed)
    out: Dict[str, Any] = {"run": name, "seeds": len(seeds), "note": by_seed[seeds[0]].get("note", "")}
    keys = ["heldout_entropy", "avg@n", "distinct_correct", "train_accuracy_last", "rollout_entropy_last"]
    keys += [f"pass@{k}" for k in ks]
    for key in keys + ["entropy_ratio"]:
        if key == "entropy_ratio":
            values = [by_seed[s]["heldout_entropy"] / start_eval["entropy"] for s in seeds]
        else:
            values = [by_seed[s].get(key) for s in seeds]
        if any(v is None for v in values):
            out[key] = None
            continue
        mean = sum(values) / len(values)
        out[key] = mean
        if len(values) > 1:
            out[key + "_se"] = float(standard_error(values))
    return out


FIGURE_PANELS = {
    "entropy_claims.png": [
        ("1: extreme clipping 0.99 / 5", ("grpo_extreme", "steer_extreme")),
        ("2: entropy loss 0.3, clip-higher", ("grpo", "clip_higher", "entropy_loss")),
        ("3: A >= 0 only, A <= 0 only", ("grpo", "positive_only", "negative_only")),
        ("4: Pos-Adv-Reweight (entropy-guided)", ("grpo", "pos_adv_reweight")),
    ],
    "entropy_quadrants.png": [
        ("5: quadrant interventions vs GRPO", ("grpo", "quadrant_I", "quadrant_II", "quadrant_III", "quadrant_IV")),
    ],
}


TARGET_FIGURE = "entropy_target.png"


def target_line(grouped: Dict[str, Dict[int, Dict[str, Any]]]) -> Dict[str, float]:
    """Pos-Adv-Reweight's entropy target delta as a labelled horizontal line."""
    target = float(next(iter(grouped["pos_adv_reweight"].values()))["config"]["entropy_target"])
    return {f"delta (target) {target:.3f}": target}


def report(
    ws: Workspace, results: List[Dict[str, Any]], start_eval: Dict[str, Any], mechanism: Optional[Dict] = None
) -> None:
    from .claims import evaluate_claims
    from .entropy_change import LOG_NAME
    from .report import plot_diversity, plot_estimator, plot_seed_bands, write_results

    cfg = ws.config
    grouped = group_results(results)
    histories = {
        name: [read_jsonl(ws.run_dir(name, s) / "metrics.jsonl") for s in sorted(by_seed)]
        for name, by_seed in grouped.items()
    }
    figures = []
    known = set(grouped)
    for filename, panels in FIGURE_PANELS.items():
        present = [(title, tuple(r for r in runs if r in known)) for title, runs in panels]
        present = [
            (title, runs, target_line(grouped) if "pos_adv_reweight" in runs else {}) for title, runs in present if runs
        ]
        if present:
            start_line = {f"start {start_eval['train_rollout_entropy']:.3f}": start_eval["train_rollout_entropy"]}
            plot_seed_bands(histories, present, ws.output_dir / filename, "Rollout entropy per run", hlines=start_line)
            figures.append(filename)
    plot_seed_bands(
        histories,
        [("all runs", tuple(grouped))],
        ws.output_dir / "reward.png",
        "Rollout accuracy per run",
        key="reward/mean",
        ylabel="mean reward (= rollout accuracy)",
    )
    figures.append("reward.png")
    recorded = grouped.get(cfg.entropy_change_run, {})
    change_rows = [read_jsonl(ws.run_dir(cfg.entropy_change_run, s) / LOG_NAME) for s in sorted(recorded)]
    if any(change_rows):
        plot_estimator(change_rows, ws.output_dir / "entropy_change.png")
        figures.append("entropy_change.png")
    if "distinct_correct" in start_eval:
        points = [r for by_seed in grouped.values() for r in by_seed.values()]
        plot_diversity(points, start_eval, ws.output_dir / "diversity.png", cfg.eval.samples)
        figures.append("diversity.png")
    if mechanism:
        from .views import write_views

        figures += write_views(ws.output_dir, mechanism, histories, start_eval)
    targeted = [name for name, by_seed in grouped.items() if next(iter(by_seed.values())).get("target")]
    if targeted:  # issue 25: target vs measured entropy of the entropy-target runs
        from .views import plot_target_tracking

        plot_target_tracking(histories, targeted, ws.output_dir / TARGET_FIGURE)
        figures.append(TARGET_FIGURE)
    claims = evaluate_claims(grouped, start_eval, mechanism=mechanism)
    summaries = [summarise_run(name, by_seed, start_eval, cfg.eval.ks) for name, by_seed in grouped.items()]
    start_row = {
        "run": "start (step 0)",
        "seeds": 0,
        "heldout_entropy": start_eval["entropy"],
        "entropy_ratio": 1.0,
        "avg@n": start_eval["avg@n"],
        "distinct_correct": start_eval.get("distinct_correct"),
        "train_accuracy_last": None,
        "note": "SFT warm start" if cfg.model == "tiny" else "SmolLM2-135M-Instruct",
        **{k: v for k, v in start_eval.items() if k.startswith("pass@")},
    }
    write_results(
        ws.output_dir,
        claims,
        [start_row] + summaries,
        cfg,
        {
            "heldout_problems": len(ws.heldout),
            "config": cfg.to_dict(),
            "environment": run_environment(),
            "figures": figures,
            "start": start_eval,
            "runs": [r for r in results if r.get("finished")],
            "mechanism": mechanism,
        },
    )


def run_environment() -> Dict[str, Any]:
    """What a seeded run's exact numbers depend on besides the config.

    The CPU kernels torch picks (AVX2 vs AVX-512) change float rounding, and 300 SFT steps amplify
    that into another warm start: runs are bit-identical only with the same versions and kernels.
    """
    from openrlhf_steer_eval.outputs import package_versions

    return {"versions": package_versions(), "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}


WEAK_START_ACCURACY = 0.2


def warn_if_weak_start(start_eval: Dict[str, Any], config: DemoConfig) -> None:
    """A warm start that rarely answers correctly gives few mixed-reward groups: say so early."""
    if config.model == "tiny" and config.preset == "full" and start_eval["avg@n"] < WEAK_START_ACCURACY:
        import sys

        print(
            f"warning: the warm start is weak (avg@{start_eval['samples']} = {start_eval['avg@n']:.3f} < "
            f"{WEAK_START_ACCURACY}): few groups will have mixed rewards, so RL has little signal. Raise --sft-steps "
            "or use another --seed.",
            file=sys.stderr,
        )


def run_demo(
    output_dir: Path, config: DemoConfig, *, progress: bool = True, stop_after: Optional[int] = None
) -> Dict[str, Any]:
    torch.set_num_threads(1)
    ws = open_workspace(output_dir, config)
    ws.output_dir.mkdir(parents=True, exist_ok=True)
    check_config(ws)
    specs = resolve_specs(config.methods, config.method_options)
    prepare_start_model(ws, progress=progress)
    prepare_probe(ws)
    start_eval = evaluate_start(ws)
    warn_if_weak_start(start_eval, config)
    results = run_methods(ws, specs, workers=config.workers, progress=progress, stop_after=stop_after)
    if not all(r.get("finished") for r in results):
        return {"finished": False, "results": results}
    mechanism = None
    if config.model == "tiny":  # one update from the same state, float64: cheap on the tiny model only
        from .mechanism import run_mechanism

        mechanism = run_mechanism(ws, workers=config.workers)
    report(ws, results, start_eval, mechanism)
    return {"finished": True, "results": results}
