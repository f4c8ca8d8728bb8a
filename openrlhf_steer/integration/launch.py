"""``openrlhf-steer train``: validate (``flags``), then run OpenRLHF's own ``train_ppo_ray`` with the swaps
installed (``openrlhf_main``). Parsing and validation live in ``flags``; this module only launches."""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from . import flags, openrlhf_main
from .args import effective_loss_config
from .version import require_openrlhf


def print_help(out=None) -> None:
    """Our flags, then OpenRLHF's (its own parser prints them; vLLM / flash-attn need not be installed)."""
    from .absent_packages import placeholders_for_absent

    out = out or sys.stdout
    flags.build_parser().print_help(out)
    print("\n" + "=" * 30 + " OpenRLHF 0.11.2 train_ppo_ray flags " + "=" * 30 + "\n", file=out)
    out.flush()
    with placeholders_for_absent() as missing:
        try:
            openrlhf_main.run_openrlhf_main(["--help"], on_args=lambda args: None, stop=True)
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


def _summary(args, needs, spec) -> str:
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
    try:
        spec, rest = flags.split_argv(argv)
        rest = flags.expand_builtin_rewards(rest)
        # first pass: OpenRLHF's parser + validation + our checks, before Ray or any model starts
        checked = flags.validated_openrlhf_args(spec, rest) if spec.enabled else None
    except flags.EntropyArgsError as exc:
        print(f"openrlhf-steer train: {exc}", file=sys.stderr)
        return 2
    if checked is None:
        print("[openrlhf-steer] --entropy.method none: running OpenRLHF train_ppo_ray unpatched", flush=True)
        openrlhf_main.run_openrlhf_main(rest, on_args=lambda args: None)
        return 0
    args, needs = checked
    print(_summary(args, needs, spec), flush=True)

    from .ray_actors import install_driver_swaps

    install_driver_swaps()
    # OpenRLHF parses its flags again in the training pass; the spec rides along in the args it builds
    openrlhf_main.run_openrlhf_main(rest, lambda parsed: flags.apply_method_args(parsed, spec))
    return 0
