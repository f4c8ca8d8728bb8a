"""``openrlhf-steer train``'s own flags: generated from the method registry, parsed and validated here.

``--entropy.method NAME[,NAME2]`` selects one or more registered methods (several are composed with
``compose_methods``); every config field of every method becomes ``--entropy.<method>.<field>``,
typed from the dataclass annotation, with the field's ``metadata["help"]`` (paper and default) as its
help. Everything else on the command line belongs to OpenRLHF and is passed through untouched.

One module, one error type: every refusal (a bad flag, a bad value, a combination with OpenRLHF's flags
that cannot work) raises :class:`EntropyArgsError`, whose message names the flag and the fix.

* :func:`split_argv`: our flags -> :class:`EntropyControlSpec`, and OpenRLHF's part of the command line;
* :func:`apply_method_args`: checks OpenRLHF's parsed args against the methods and sets what they need;
* :func:`check_args`: both, around OpenRLHF's own parser and validation (``openrlhf_main``), without
  starting anything.

Importing this module imports neither OpenRLHF nor DeepSpeed (only ``check_args`` runs OpenRLHF's parser).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
from functools import cached_property
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

PREFIX = "entropy"
NO_METHOD = "none"
ARGS_ATTR = "entropy_spec"  # args.entropy_spec = spec JSON (travels with the pickled strategy)
GROUPED_ESTIMATORS = ("group_norm", "reinforce_baseline", "dr_grpo")
BUILTIN_REWARDS = {"openrlhf_steer:math": "math_reward_path"}


class EntropyArgsError(ValueError):
    """A flag, a value or a combination of our flags and OpenRLHF's that cannot work; the message names
    the flag and the fix."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`EntropyArgsError` instead of printing and exiting."""

    def error(self, message: str):
        raise EntropyArgsError(f"{message} (see `openrlhf-steer train --help` for our flags and their types)")


def _parse_bool(text: str) -> bool:
    lowered = str(text).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _optional(convert):
    def parse(text: str):
        if str(text).strip().lower() in ("none", "null"):
            return None
        return convert(text)

    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


@dataclass
class FieldFlag:
    """How one config field is exposed on the command line."""

    flag: str
    dest: str
    kwargs: Dict[str, Any]


def _field_flag(method: str, f: dataclasses.Field, annotation: Any) -> FieldFlag:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    optional = False
    if origin is typing.Union and type(None) in args:  # Optional[X]
        optional = True
        rest = [a for a in args if a is not type(None)]
        annotation = rest[0] if len(rest) == 1 else str
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)

    kwargs: Dict[str, Any] = {}
    metavar = None
    if origin is typing.Literal:
        kwargs["choices"] = list(args)
        convert = type(args[0]) if args else str
    elif origin in (tuple, list, Tuple, List):
        elem = args[0] if args else float
        convert = elem if elem in (int, float, str) else float
        kwargs["nargs"] = "+"
    elif annotation is bool:
        convert = _parse_bool
        metavar = "{true,false}"
    elif annotation in (int, float, str):
        convert = annotation
    else:
        convert = str
    kwargs["type"] = _optional(convert) if optional else convert
    kwargs["metavar"] = metavar or ("NAME" if "choices" in kwargs else getattr(convert, "__name__", "VALUE").upper())

    default = (
        f.default
        if f.default is not dataclasses.MISSING
        else (f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
    )
    help_text = f.metadata.get("help", "") or f.name
    if "default" not in help_text.lower():
        help_text = f"{help_text} (default: {default})"
    kwargs["help"] = help_text.replace("%", "%%")
    kwargs["default"] = argparse.SUPPRESS  # only explicitly given values override the config defaults
    dest = f"{PREFIX}.{method}.{f.name}"
    return FieldFlag(flag=f"--{dest}", dest=dest, kwargs=kwargs)


TARGET = "target"  # --entropy.target.<field>: the entropy target (openrlhf_steer.control)


def target_field_flags() -> List[FieldFlag]:
    from openrlhf_steer.control import EntropyTargetConfig

    hints = typing.get_type_hints(EntropyTargetConfig)
    return [_field_flag(TARGET, f, hints.get(f.name, str)) for f in dataclasses.fields(EntropyTargetConfig)]


def method_field_flags(method: str) -> List[FieldFlag]:
    from openrlhf_steer.methods import get_method_class

    config_cls = get_method_class(method).config_cls
    hints = typing.get_type_hints(config_cls)
    return [_field_flag(method, f, hints.get(f.name, str)) for f in dataclasses.fields(config_cls)]


# OpenRLHF settings a method maps onto; shown in the help of --entropy.method.
OPENRLHF_MAPPING_HELP = (
    "Interaction with OpenRLHF flags: the base clip range comes from --actor.eps_clip / "
    "--actor.eps_clip_low_high / --actor.dual_clip and --actor.loss_agg_mode; clip_higher, clip_lower, "
    "clip_tighter and clip_free replace it with their own options (their values win, and the effective "
    "range is printed). Methods that read the current-policy entropy set --actor.entropy_coef 0 when it "
    "is unset (log-only; OpenRLHF's full fp32 entropy is replaced by our chunked one). OpenRLHF's "
    "--actor.entropy_coef > 0 is OpenRLHF's own entropy bonus and adds to the method. "
    "--algo.advantage.estimator stays OpenRLHF's; advantage methods (w_reinforce, opo, edge_grpo, gtpo, "
    "unlikeliness_reward, ...) recompute the advantages from the raw rewards after it and need "
    "--algo.advantage.estimator group_norm (std-normalised GRPO) or reinforce_baseline/dr_grpo (no std), and "
    "--algo.kl.init_coef 0 or --algo.kl.use_loss."
)


def build_parser(add_help: bool = True) -> argparse.ArgumentParser:
    from openrlhf_steer.methods import available_methods, get_method_class

    parser = _Parser(
        prog="openrlhf-steer train",
        description="OpenRLHF 0.11.2 train_ppo_ray with an entropy-control method. Our flags are listed "
        "first; every other flag is OpenRLHF's own (listed after ours) and is parsed and validated by "
        "OpenRLHF's parser unchanged.",
        add_help=add_help,
        allow_abbrev=False,
        usage="openrlhf-steer train [--entropy.method NAME[,NAME2]] [--entropy.<method>.<option> VALUE ...] "
        "[OpenRLHF train_ppo_ray flags ...]",
    )
    names = available_methods()
    core = parser.add_argument_group("entropy control")
    core.add_argument(
        f"--{PREFIX}.method",
        dest=f"{PREFIX}.method",
        default="grpo",
        metavar="NAME[,NAME2]",
        help=f"Registered method name, or several comma-separated (composed in order), or '{NO_METHOD}' to run "
        f"OpenRLHF unpatched. Choices: {', '.join(names)}. Default: grpo (OpenRLHF's clipped surrogate "
        f"computed by our loss, with our metrics). " + OPENRLHF_MAPPING_HELP,
    )
    core.add_argument(
        f"--{PREFIX}.seed",
        dest=f"{PREFIX}.seed",
        type=int,
        default=None,
        metavar="INT",
        help="Seed of the generator used by methods that draw random tokens (clip_cov, rand_pos_clip); "
        "default: --train.seed (OpenRLHF default 42). Each DP rank offsets it by its rank.",
    )
    core.add_argument(
        f"--{PREFIX}.chunk_rows",
        dest=f"{PREFIX}.chunk_rows",
        type=int,
        default=1024,
        metavar="INT",
        help="Token rows per chunk of our entropy pass (float32 memory is chunk_rows x vocab). Default 1024.",
    )
    for name in names:
        cls = get_method_class(name)
        group = parser.add_argument_group(f"--entropy.{name}", f"{cls.paper or name}")
        for ff in method_field_flags(name):
            group.add_argument(ff.flag, dest=ff.dest, **ff.kwargs)
    group = parser.add_argument_group(
        f"--entropy.{TARGET}",
        "Entropy target: a controller moves one method option (the lever) once per rollout step to hold the "
        "rollout entropy on a schedule (docs/entropy_targets.md); off unless a --entropy.target.* flag is given.",
    )
    for ff in target_field_flags():
        group.add_argument(ff.flag, dest=ff.dest, **ff.kwargs)
    return parser


@dataclass
class EntropyControlSpec:
    """The parsed entropy-control selection; travels to the Ray workers as JSON inside OpenRLHF's args."""

    methods: List[Tuple[str, Dict[str, Any]]] = field(default_factory=list)
    seed: Optional[int] = None
    chunk_rows: int = 1024
    target: Dict[str, Any] = field(default_factory=dict)  # EntropyTargetConfig values; empty = no target

    @property
    def enabled(self) -> bool:
        return bool(self.methods)

    @property
    def names(self) -> List[str]:
        return [name for name, _ in self.methods]

    def to_json(self) -> str:
        return json.dumps(
            {
                "methods": [[n, c] for n, c in self.methods],
                "seed": self.seed,
                "chunk_rows": self.chunk_rows,
                "target": self.target,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> "EntropyControlSpec":
        data = json.loads(text)
        return cls(
            methods=[(n, dict(c)) for n, c in data.get("methods", [])],
            seed=data.get("seed"),
            chunk_rows=int(data.get("chunk_rows", 1024)),
            target=dict(data.get("target") or {}),
        )

    def build_method(self):
        """A new Method object (several selected methods are composed in the given order, an entropy target
        wraps them), or None."""
        from openrlhf_steer.control import attach_target
        from openrlhf_steer.methods import build_method, compose_methods

        built = [build_method(name, config) for name, config in self.methods]
        if not built:
            if self.target:
                raise ValueError("--entropy.target.* moves an option of a method: select one with --entropy.method")
            return None
        return attach_target(built[0] if len(built) == 1 else compose_methods(built), self.target)

    @cached_property
    def method(self):
        """This process's method, built once from the spec (the launcher, the controller and every policy
        actor each hold one; a controller's state lives in it)."""
        return self.build_method()

    @property
    def needs(self):
        """What the selected methods need from OpenRLHF (:class:`~openrlhf_steer.methods.needs.MethodNeeds`)."""
        from openrlhf_steer.methods.needs import MethodNeeds

        return MethodNeeds() if self.method is None else self.method.needs()


def split_argv(
    argv: Sequence[str], parser: Optional[argparse.ArgumentParser] = None
) -> Tuple[EntropyControlSpec, List[str]]:
    """Split a command line into our spec and OpenRLHF's remaining flags (order preserved)."""
    from openrlhf_steer.methods import available_methods

    parser = parser or build_parser(add_help=False)
    namespace, rest = parser.parse_known_args(list(argv))
    stray = [a for a in rest if a.startswith(f"--{PREFIX}.")]
    if stray:
        known = [a for group in parser._actions for a in group.option_strings]
        hints = []
        for a in stray:
            close = difflib.get_close_matches(a.split("=")[0], known, n=1)
            hints.append(f"{a}" + (f" (did you mean {close[0]}?)" if close else ""))
        raise EntropyArgsError(
            f"unknown entropy-control flag(s): {', '.join(hints)}. "
            f"See `openrlhf-steer train --help` for the generated --entropy.<method>.<option> flags."
        )

    values = vars(namespace)
    method_arg = str(values.pop(f"{PREFIX}.method")).strip()
    seed = values.pop(f"{PREFIX}.seed")
    chunk_rows = values.pop(f"{PREFIX}.chunk_rows")
    if chunk_rows < 1:
        raise EntropyArgsError(f"--entropy.chunk_rows={chunk_rows} must be >= 1 (e.g. 1024).")
    names = [] if method_arg.lower() == NO_METHOD else [n.strip() for n in method_arg.split(",") if n.strip()]
    unknown = [n for n in names if n not in available_methods()]
    if unknown:
        raise EntropyArgsError(
            f"--entropy.method has unknown method(s) {unknown}; "
            f"choose from {', '.join(available_methods())} (comma-separate several)."
        )
    if len(set(names)) != len(names):
        raise EntropyArgsError(
            f"--entropy.method lists a method twice: {method_arg}; name each method once (e.g. steer,clip_higher)."
        )

    target_prefix = f"{PREFIX}.{TARGET}."
    target = {k[len(target_prefix) :]: values.pop(k) for k in [k for k in values if k.startswith(target_prefix)]}
    per_method: Dict[str, Dict[str, Any]] = {n: {} for n in names}
    for dest, value in values.items():
        _, method, option = dest.split(".", 2)
        if method not in per_method:
            raise EntropyArgsError(
                f"--{dest} was given but {method!r} is not selected by "
                f"--entropy.method {method_arg!r}; add it there (e.g. --entropy.method {method})."
            )
        if isinstance(value, list):
            value = list(value)
        per_method[method][option] = value
    spec = EntropyControlSpec(
        methods=[(n, per_method[n]) for n in names], seed=seed, chunk_rows=chunk_rows, target=target
    )
    try:  # build here so that a bad value fails before Ray starts, naming the field
        spec.method
    except (TypeError, ValueError) as exc:
        raise EntropyArgsError(f"invalid entropy-control option: {exc}") from None
    return spec, list(rest)


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


# --------------------------------------------------------------------------------------------------
# Validation against OpenRLHF's parsed args
# --------------------------------------------------------------------------------------------------
def check_rollout_engines(args) -> None:
    """OpenRLHF 0.11.2's PPO trainer generates rollouts only with vLLM engines (no other samples path)."""
    if not args.vllm.num_engines:
        raise EntropyArgsError(
            "--vllm.num_engines is 0: OpenRLHF 0.11.2's PPO trainer generates rollouts only with "
            "vLLM engines (its samples generator has no other path); set --vllm.num_engines >= 1."
        )


def apply_method_args(args, spec: EntropyControlSpec):
    """Check the OpenRLHF args against the selected methods and set what they need (in place); returns
    the methods' :class:`~openrlhf_steer.methods.needs.MethodNeeds`.

    Raises :class:`EntropyArgsError` naming the flag to change.
    """
    from openrlhf_steer.methods.needs import MethodNeeds

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


def validated_openrlhf_args(spec: EntropyControlSpec, openrlhf_argv: Sequence[str]):
    """OpenRLHF's own parser and validation on its part of the command line, then our checks
    (``check_rollout_engines``, ``apply_method_args``); nothing is started. Returns (args, needs)."""
    from . import openrlhf_main

    found = {}

    def on_args(args) -> None:
        check_rollout_engines(args)
        found["needs"] = apply_method_args(args, spec)

    args = openrlhf_main.run_openrlhf_main(openrlhf_argv, on_args, stop=True)
    if args is None:  # pragma: no cover - OpenRLHF changed its __main__; the version guard should catch it
        raise RuntimeError("OpenRLHF's train_ppo_ray returned without reaching train(args)")
    return args, found["needs"]


def check_args(argv: Sequence[str]):
    """Parse and validate a full ``openrlhf-steer train`` command line without starting anything.

    Runs our parser, then OpenRLHF 0.11.2's own parser and validation (``train_ppo_ray.__main__``) and
    our consistency checks; returns OpenRLHF's hierarchical args (``args.actor.adam.lr`` ...) with
    ``args.entropy_spec`` (JSON spec) set. ``--reward.remote_url openrlhf_steer:math`` names our
    math reward file. Raises :class:`EntropyArgsError` for our flags and their combinations (OpenRLHF's
    own parser still exits with ``SystemExit`` on its flags, as argparse does).
    """
    from .version import require_openrlhf

    require_openrlhf()
    spec, rest = split_argv(list(argv))
    args, _ = validated_openrlhf_args(spec, expand_builtin_rewards(rest))
    return args
