"""Run OpenRLHF's own parser and validation, then adapt the parsed args to the selected methods.

OpenRLHF 0.11.2 declares its flags inside ``if __name__ == "__main__":`` of
``openrlhf.cli.train_ppo_ray``; we execute that block with ``runpy`` (never re-declaring a flag).
Its last statement is ``train(args)``, whose first calls are ``ray.is_initialized()`` and
``get_strategy(args)``: :func:`run_openrlhf_main` hooks ``get_strategy`` (imported by name into the
fresh module namespace) to see the validated args, apply our adjustments and either continue into
training or stop with the args (``check_args``).
"""

from __future__ import annotations

import contextlib
import runpy
import sys
from types import SimpleNamespace
from typing import Callable, Iterator, List, Optional, Sequence

from .flags import EntropyControlSpec, split_argv
from openrlhf_steer.methods.needs import MethodNeeds

OPENRLHF_MAIN = "openrlhf.cli.train_ppo_ray"
ARGS_ATTR = "entropy_control"  # args.entropy_control = spec JSON (travels with the pickled strategy)
GROUPED_ESTIMATORS = ("group_norm", "reinforce_baseline", "dr_grpo")


class EntropyArgsError(ValueError):
    """A combination of our flags and OpenRLHF's that cannot work; the message names the fix."""


class _StopBeforeTraining(Exception):
    def __init__(self, args):
        super().__init__("stopped before training")
        self.parsed = args


def spec_from_args(args) -> Optional[EntropyControlSpec]:
    text = getattr(args, ARGS_ATTR, None)
    return EntropyControlSpec.from_json(text) if text else None


def check_rollout_engines(args) -> None:
    """OpenRLHF 0.11.2's PPO trainer generates rollouts only with vLLM engines (no other samples path)."""
    if not args.vllm.num_engines:
        raise EntropyArgsError(
            "--vllm.num_engines is 0: OpenRLHF 0.11.2's PPO trainer generates rollouts only with "
            "vLLM engines (its samples generator has no other path); set --vllm.num_engines >= 1."
        )


def apply_method_args(args, spec: EntropyControlSpec) -> MethodNeeds:
    """Check the OpenRLHF args against the selected methods and set what they need (in place).

    Raises :class:`EntropyArgsError` naming the flag to change.
    """
    setattr(args, ARGS_ATTR, spec.to_json())
    if not spec.enabled:
        return MethodNeeds()
    needs = spec.needs
    actor, algo = args.actor, args.algo
    names = ",".join(spec.names)
    if actor.policy_loss_type == "gspo":
        _check_sequence_ratio(spec, names)
    if needs.current_entropy and actor.entropy_coef is None:
        # 0 = compute and log only; the actor's entropy pass is replaced by our chunked one.
        actor.entropy_coef = 0.0
    if needs.ref_log_probs and not (algo.kl.init_coef > 0 and algo.kl.use_loss):
        raise EntropyArgsError(
            f"--entropy.method {names} needs reference log-probs in the loss: add --algo.kl.use_loss and "
            f"--algo.kl.init_coef > 0 (any value: it only makes OpenRLHF create the reference model; the "
            f"method's own coefficient replaces OpenRLHF's KL loss term)."
        )
    if needs.advantage_hooks:
        if algo.advantage.estimator not in GROUPED_ESTIMATORS:
            raise EntropyArgsError(
                f"--entropy.method {names} recomputes advantages per prompt group; set --algo.advantage.estimator "
                f"to one of {list(GROUPED_ESTIMATORS)} (e.g. group_norm), got {algo.advantage.estimator}."
            )
        if args.rollout.n_samples_per_prompt < 2:
            raise EntropyArgsError(f"--entropy.method {names} needs groups: set --rollout.n_samples_per_prompt >= 2.")
    if args.train.async_enable and (needs.advantage_hooks or needs.old_entropy):
        raise EntropyArgsError(
            f"--entropy.method {names} runs hooks in the synchronous PPOTrainer (advantages / rollout entropy); "
            f"drop --train.async_enable."
        )
    if needs.advantage_hooks and algo.kl.init_coef > 0 and not algo.kl.use_loss:
        raise EntropyArgsError(
            f"--entropy.method {names} recomputes advantages from raw rewards, which would drop OpenRLHF's "
            f"KL-in-reward term; use --algo.kl.init_coef 0 or add --algo.kl.use_loss."
        )
    if needs.window_stats and args.train.dynamic_batch_enable:
        raise EntropyArgsError(
            f"stat_scope mini_batch (--entropy.method {names}) needs fixed optimizer-step windows; drop "
            f"--train.dynamic_batch_enable or use stat_scope micro_batch."
        )
    return needs


def _check_sequence_ratio(spec: EntropyControlSpec, names: str) -> None:
    """``--actor.policy_loss_type gspo``: refuse the methods whose hooks have no meaning there."""
    from openrlhf_steer.core.loss import sequence_ratio_conflicts

    conflicts = sequence_ratio_conflicts(spec.method)
    if conflicts:
        name, reason = next(iter(conflicts.items()))
        raise EntropyArgsError(
            f"--actor.policy_loss_type gspo cannot run --entropy.method {name} ({names}): {reason}. Use "
            f"--actor.policy_loss_type ppo (the default) with this method, or another method."
        )


def effective_loss_config(args, method):
    """The LossConfig our loss will use: OpenRLHF's clip flags, then the method's override.

    GSPO aggregates seq-mean-token-mean whatever ``--actor.loss_agg_mode`` says (as OpenRLHF does).
    """
    from openrlhf_steer.core.types import LossConfig

    low, high = args.actor.eps_clip_low_high
    token_mean = args.actor.loss_agg_mode == "token-mean" and args.actor.policy_loss_type != "gspo"
    base = LossConfig(
        eps_low=float(low),
        eps_high=float(high),
        dual_clip=args.actor.dual_clip,
        loss_agg_mode="token-mean" if token_mean else "seq-mean-token-mean",
    )
    return method.loss_config(base) if method is not None else base


@contextlib.contextmanager
def _patched(obj, name: str, value) -> Iterator[None]:
    original = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, original)


def run_openrlhf_main(openrlhf_argv: Sequence[str], on_args: Callable[[SimpleNamespace], None], stop: bool = False):
    """Execute OpenRLHF's ``train_ppo_ray`` ``__main__`` on ``openrlhf_argv``.

    ``on_args(args)`` sees the args after OpenRLHF's validation, just before ``train`` uses them. With
    ``stop=True`` nothing is started (no Ray) and the args are returned.
    """
    import ray

    import openrlhf.utils

    original_get_strategy = openrlhf.utils.get_strategy

    def get_strategy_hook(args):
        on_args(args)
        if stop:
            raise _StopBeforeTraining(args)
        return original_get_strategy(args)

    saved_argv = sys.argv
    sys.argv = ["openrlhf-steer train"] + list(openrlhf_argv)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(_patched(openrlhf.utils, "get_strategy", get_strategy_hook))
            if stop:  # train() calls ray.init unless Ray is up; pretend it is, we stop right after
                stack.enter_context(_patched(ray, "is_initialized", lambda: True))
            try:
                runpy.run_module(OPENRLHF_MAIN, run_name="__main__", alter_sys=False)
            except _StopBeforeTraining as captured:
                return captured.parsed
    finally:
        sys.argv = saved_argv
    return None


BUILTIN_REWARDS = {"openrlhf_steer:math": "math_reward_path"}


def expand_builtin_rewards(openrlhf_argv: Sequence[str]) -> List[str]:
    """``--reward.remote_url openrlhf_steer:math`` -> the absolute path of our math reward file."""
    from openrlhf_steer.integration import rewards

    out = list(openrlhf_argv)
    for i, token in enumerate(out[:-1]):
        if token == "--reward.remote_url" and out[i + 1] in BUILTIN_REWARDS:
            out[i + 1] = getattr(rewards, BUILTIN_REWARDS[out[i + 1]])()
        elif token.startswith("--reward.remote_url="):
            value = token.split("=", 1)[1]
            if value in BUILTIN_REWARDS:
                out[i] = "--reward.remote_url=" + getattr(rewards, BUILTIN_REWARDS[value])()
    return out


def check_args(argv: Sequence[str]) -> SimpleNamespace:
    """Parse and validate a full ``openrlhf-steer train`` command line without starting anything.

    Runs our parser, then OpenRLHF 0.11.2's own parser and validation (``train_ppo_ray.__main__``) and
    our consistency checks; returns OpenRLHF's hierarchical args (``args.actor.adam.lr`` ...) with
    ``args.entropy_control`` (JSON spec) set. ``--reward.remote_url openrlhf_steer:math`` names our
    math reward file. Raises ``SystemExit`` on a parser error (argparse's
    behaviour) and :class:`EntropyArgsError` on an inconsistent combination.
    """
    from .version import require_openrlhf

    require_openrlhf()
    spec, rest = split_argv(list(argv))
    rest = expand_builtin_rewards(rest)

    def on_args(args):
        check_rollout_engines(args)
        apply_method_args(args, spec)

    args = run_openrlhf_main(rest, on_args, stop=True)
    if args is None:  # pragma: no cover - OpenRLHF changed its __main__; the version guard should catch it
        raise RuntimeError("OpenRLHF's train_ppo_ray returned without reaching train(args)")
    return args
