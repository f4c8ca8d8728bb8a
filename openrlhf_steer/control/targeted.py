"""A selected method plus an entropy target: the controller runs where the methods' controllers run.

:class:`TargetedMethod` wraps the built method (one or composed) and delegates every hook to it. At each
rollout-step boundary (``on_boundary("rollout_step", stats)``: the rollout step's token-weighted
statistics, already reduced over data-parallel ranks by the adapter) it reads the measured entropy,
smooths it, compares it with the schedule's target and lets the controller set the lever. Its
``state_dict`` holds the method's state and the controller's, so it is saved with the adapters'
checkpoints; ``controller_values`` adds ``target/target``, ``target/measured``, ``target/error`` and
``target/lever``, which the loss logs as ``controller/target/*`` each step.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Union

from openrlhf_steer.control.config import EntropyTargetConfig
from openrlhf_steer.control.controllers import Bounds, build_controller
from openrlhf_steer.control.levers import get_lever
from openrlhf_steer.control.targets import EmaSmoother, build_schedule
from openrlhf_steer.methods.base import Method, inputs_for_metric


def _members(method: Method) -> List[Method]:
    return list(getattr(method, "methods", [method]))


def resolve_bounds(lever, member: Method, config: EntropyTargetConfig) -> Bounds:
    """The method's valid range narrowed by ``lever_min`` / ``lever_max``; both ends must be finite."""
    valid = lever.bounds(member)
    low = valid.low if config.lever_min is None else float(config.lever_min)
    high = valid.high if config.lever_max is None else float(config.lever_max)
    if low < valid.low or high > valid.high:
        raise ValueError(
            f"--entropy.target.lever_min/lever_max [{low}, {high}] leave the range {lever.name} accepts "
            f"[{valid.low}, {valid.high}] ({member.name}'s validation); choose limits inside it"
        )
    missing = [flag for flag, end in (("lever_min", low), ("lever_max", high)) if not math.isfinite(end)]
    if missing:
        raise ValueError(
            f"lever {lever.name} has no finite limit in {member.name}'s validation: set "
            f"{' and '.join('--entropy.target.' + flag for flag in missing)}"
        )
    if low > high:
        raise ValueError(f"--entropy.target.lever_min={low} > lever_max={high}: need lever_min <= lever_max")
    return Bounds(low, high)


class TargetedMethod(Method):
    """The wrapped method, plus a controller that holds the entropy on the target (module doc)."""

    config_cls = EntropyTargetConfig

    def __init__(self, inner: Method, config: EntropyTargetConfig):
        super().__init__(config)
        self.inner = inner
        self.name = inner.name
        self.paper = inner.paper
        self.requires = inner.requires
        self.differentiates_entropy = inner.differentiates_entropy
        self.group_requires = inner.group_requires
        self.lever = get_lever(config.lever)
        owners = [m for m in _members(inner) if m.name in self.lever.methods]
        if not owners:
            raise ValueError(
                f"--entropy.target.lever {self.lever.name} moves an option of {' or '.join(self.lever.methods)}: "
                f"add one of them to --entropy.method (selected: {inner.name})"
            )
        self.member = owners[0]
        self.lever.check(self.member)
        self.bounds = resolve_bounds(self.lever, self.member, config)
        self.direction = {"auto": self.lever.direction, "raises": 1, "lowers": -1}[config.direction]
        initial = self.lever.get(self.member) if config.initial is None else float(config.initial)
        if not self.bounds.low <= initial <= self.bounds.high:
            raise ValueError(
                f"the lever's initial value {initial} is outside [{self.bounds.low}, {self.bounds.high}]: set "
                f"--entropy.target.initial or the limits"
            )
        self.controller = build_controller(config.controller, config, self.bounds, initial)
        self.lever.set(self.member, self.controller.value)
        self.schedule = build_schedule(config)
        self.smoother = EmaSmoother(config.ema)
        self.updates = 0
        self.last = {"target": self.schedule(0.0), "measured": math.nan, "error": math.nan}

    def __repr__(self) -> str:
        return f"TargetedMethod({self.inner!r}, {self.config!r})"

    # -- the controller --------------------------------------------------------------------------
    def progress(self) -> float:
        total = self.config.total_steps
        return 0.0 if total < 1 else min(1.0, self.updates / total)

    def on_step_end(self, stats: Mapping[str, float]) -> None:
        key = self.config.metric
        if key not in stats:
            raise ValueError(
                f"the entropy target needs stats[{key!r}] at the rollout-step boundary; got keys "
                f"{sorted(stats)[:12]}...; set --entropy.target.metric to one of them"
            )
        measured = self.smoother.update(float(stats[key]))
        target = self.schedule(self.progress())
        error = target - measured
        value = self.controller.update(self.direction * error)
        self.lever.set(self.member, value)
        self.updates += 1
        self.last = {"target": target, "measured": measured, "error": error}

    def on_boundary(self, boundary: str, stats: Mapping[str, float]) -> None:
        self.inner.on_boundary(boundary, stats)
        if boundary == "rollout_step":
            self.on_step_end(stats)

    def controller_values(self) -> Dict[str, float]:
        values = dict(self.inner.controller_values())
        values.update({f"target/{k}": v for k, v in self.last.items()})
        values["target/lever"] = self.controller.value
        return values

    def state_dict(self) -> Dict[str, Any]:
        return {
            "method": self.inner.state_dict(),
            "target": {
                "lever": self.lever.name,
                "controller_name": self.config.controller,
                "controller": self.controller.state_dict(),
                "ema": self.smoother.state_dict(),
                "updates": self.updates,
                "last": dict(self.last),
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "target" not in state:
            raise ValueError(
                "checkpoint has no entropy-target state (it was saved without --entropy.target.*); resume "
                "with the same --entropy.target flags or start a new --ckpt.path"
            )
        saved = state["target"]
        if (saved.get("lever"), saved.get("controller_name")) != (self.lever.name, self.config.controller):
            raise ValueError(
                f"checkpoint's entropy target moved {saved.get('lever')} with {saved.get('controller_name')}; this "
                f"run selects {self.lever.name} with {self.config.controller}: resume with the same flags"
            )
        self.inner.load_state_dict(state["method"])
        self.controller.load_state_dict(saved["controller"])
        self.smoother.load_state_dict(saved["ema"])
        self.updates = int(saved["updates"])
        self.last = {k: float(v) for k, v in saved["last"].items()}
        self.lever.set(self.member, self.controller.value)  # config-held levers are not in the method's state

    # -- everything else is the wrapped method's -------------------------------------------------
    def shape_rewards(self, group):
        return self.inner.shape_rewards(group)

    def compute_advantages(self, group):
        return self.inner.compute_advantages(group)

    def shape_advantages(self, inputs, advantages):
        return self.inner.shape_advantages(inputs, advantages)

    def token_weights(self, inputs):
        return self.inner.token_weights(inputs)

    def loss_config(self, base):
        return self.inner.loss_config(base)

    def clip_mask(self, inputs, per_token):
        return self.inner.clip_mask(inputs, per_token)

    def extra_token_terms(self, inputs, per_token):
        return self.inner.extra_token_terms(inputs, per_token)

    def required_inputs(self) -> tuple:
        return tuple(dict.fromkeys((*self.inner.required_inputs(), *inputs_for_metric(self.config.metric))))

    @property
    def needs_window_stats(self) -> bool:
        return self.inner.needs_window_stats

    def window_stats(self, inputs_list):
        return self.inner.window_stats(inputs_list)

    def window_stats_reduction(self):
        return self.inner.window_stats_reduction()

    def window_values(self, inputs_list):
        return self.inner.window_values(inputs_list)

    def window_stats_from_values(self, values):
        return self.inner.window_stats_from_values(values)

    def needs(self):
        from openrlhf_steer.methods.needs import MethodNeeds

        measured = inputs_for_metric(self.config.metric)
        return self.inner.needs() | MethodNeeds(
            old_entropy="old_entropy" in measured, current_entropy="entropy" in measured, controller=True
        )

    def overrides_hook(self, hook: str) -> bool:
        return hook == "on_step_end" or self.inner.overrides_hook(hook)

    def recorded_metrics(self):
        return self.inner.recorded_metrics()

    def reset_metrics(self) -> None:
        self.inner.reset_metrics()


def attach_target(
    method: Optional[Method], target: Union[None, EntropyTargetConfig, Mapping[str, Any]]
) -> Optional[Method]:
    """``method`` with the entropy target ``target`` (a config or its field values); unchanged when None/empty."""
    if not target:
        return method
    if method is None:
        raise ValueError("--entropy.target.* needs a method whose option it moves: set --entropy.method")
    config = target if isinstance(target, EntropyTargetConfig) else _config_from(target)
    return TargetedMethod(method, config)


def _config_from(values: Mapping[str, Any]) -> EntropyTargetConfig:
    import dataclasses

    known = {f.name for f in dataclasses.fields(EntropyTargetConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"the entropy target has no option(s) {unknown}; its options are {sorted(known)}")
    return EntropyTargetConfig(**dict(values))
