"""``openrlhf-steer train``: our flags, then OpenRLHF's own ``train_ppo_ray`` with the swaps installed."""

from __future__ import annotations

import sys
from typing import List, Optional, Sequence

from .args import (
    EntropyArgsError,
    apply_method_args,
    check_rollout_engines,
    effective_loss_config,
    expand_builtin_rewards,
    run_openrlhf_main,
)
from .flags import build_parser, split_argv
from .version import require_openrlhf


def print_help(out=None) -> None:
    """Our flags, then OpenRLHF's (its own parser prints them; vLLM / flash-attn need not be installed)."""
    from .absent_packages import placeholders_for_absent

    out = out or sys.stdout
    build_parser().print_help(out)
    print("\n" + "=" * 30 + " OpenRLHF 0.11.2 train_ppo_ray flags " + "=" * 30 + "\n", file=out)
    out.flush()
    with placeholders_for_absent() as missing:
        try:
            run_openrlhf_main(["--help"], on_args=lambda args: None, stop=True)
        except SystemExit:
            pass
    if missing:
        print(
            f"\n(Listed without {', '.join(missing)}, which training needs: pip install 'openrlhf-steer[train]' "
            f"on the GPU machine.)",
            file=out,
        )


def _missing_runtime_message() -> Optional[str]:
    from .absent_packages import absent

    missing = absent()
    if not missing:
        return None
    return (
        f"OpenRLHF's train_ppo_ray needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
        f"not installed: pip install 'openrlhf-steer[train]' on a GPU machine (--help works without them)."
    )


def _summary(args, spec, needs) -> str:
    method = spec.method
    cfg = effective_loss_config(args, method)
    advantage = args.algo.advantage
    is_correction = (
        advantage.is_correction_level
        if advantage.is_correction_level == "off"
        else f"{advantage.is_correction_level}/{advantage.is_correction_mode}/{advantage.is_correction_gating}"
        f"/{list(advantage.is_correction_threshold)}"
    )
    parts = [
        f"methods={','.join(spec.names)} {dict(spec.methods)}",
        f"clip=({cfg.eps_low}, {cfg.eps_high}) dual_clip={cfg.dual_clip} clip_on={cfg.clip}",
        f"loss={args.actor.policy_loss_type} agg={cfg.loss_agg_mode} is_correction={is_correction}",
        f"needs={ {k: v for k, v in vars(needs).items() if v} }",
        f"actor.entropy_coef={args.actor.entropy_coef}",
    ]
    return "[openrlhf-steer] " + " | ".join(parts)


def launch(argv: Sequence[str]) -> int:
    argv = list(argv)
    if any(a in ("-h", "--help") for a in argv):
        print_help()
        return 0
    require_openrlhf()
    missing = _missing_runtime_message()
    if missing:
        print(f"openrlhf-steer train: {missing}", file=sys.stderr)
        return 2
    spec, rest = split_argv(argv)
    rest = expand_builtin_rewards(rest)
    if not spec.enabled:
        print("[openrlhf-steer] --entropy.method none: running OpenRLHF train_ppo_ray unpatched", flush=True)
        run_openrlhf_main(rest, on_args=lambda args: None)
        return 0

    def on_args(args) -> None:
        check_rollout_engines(args)
        needs = apply_method_args(args, spec)
        summary.append(_summary(args, spec, needs))

    summary: List[str] = []
    try:  # first pass: OpenRLHF's parser + validation + our checks, before Ray or any model starts
        run_openrlhf_main(rest, on_args, stop=True)
    except EntropyArgsError as exc:
        print(f"openrlhf-steer train: {exc}", file=sys.stderr)
        return 2
    print(summary[-1], flush=True)

    from .ray_actors import install_driver_swaps

    install_driver_swaps()
    run_openrlhf_main(rest, lambda args: apply_method_args(args, spec))
    return 0
