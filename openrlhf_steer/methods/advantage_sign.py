"""Interventions keyed on the advantage sign (Jin et al., "Revisiting Entropy in RLVR", arXiv 2511.05993).

- ``pos_adv_reweight``: weight lambda on tokens with A > 0 (``negative_weight``, default 1, on A < 0), lambda
  scheduled: stage-based, epoch-wise, entropy-guided (a controller), constant, or set by an entropy target
  (``--entropy.target.lever pos_adv.lambda``, :mod:`openrlhf_steer.control`).
- ``rand_pos_clip``: zero the gradient of random positive-advantage tokens, as many as Clip-Cov zeroes.
- ``positive_only`` (the paper's "Adv>=0"): weight 0 on A < 0 tokens.
- ``negative_only`` (the paper's "Adv<=0"): weight 0 on A > 0 tokens.

The authors' code is not public; the schedules follow the paper (Sec. 7.3, App. E.2). Values the
text extraction lost (entropy-guided step size and initial lambda) come from third-party reading
notes, and every unknown detail is an option. The entropy-guided controller updates once per rollout
step (the paper's training step), from that rollout's statistics. All weights
keep the token-mean denominator (every valid token), as the reference implementations of the other
weighting methods do.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

import torch

from openrlhf_steer.control.controllers import bang_bang_step
from openrlhf_steer.core.types import LossInputs
from openrlhf_steer.methods.registry import register_method
from openrlhf_steer.methods.base import (
    CONTROLLER_BOUNDARIES,
    Method,
    MethodConfig,
    check_choice,
    check_range,
    inputs_for_metric,
)
from openrlhf_steer.methods.covariance import clip_cov_budget
from openrlhf_steer.methods.sampling import choose_random_tokens

Tensor = torch.Tensor

PAPER = "Pos-Adv-Reweight, Jin et al., arXiv 2511.05993"
SCHEDULES = ("stage", "epoch", "entropy", "constant", "target")


def stage_lambda(step: int, total_steps: int, split: float = 0.5) -> float:
    """0 during the first ``split`` of training, then a linear ramp 0 -> 1 over the rest."""
    start = split * total_steps
    if step < start:
        return 0.0
    span = total_steps - start
    return 1.0 if span <= 0 else min(1.0, (step - start) / span)


def epoch_lambda(epoch: int, total_epochs: int) -> float:
    """(e - 1) / (E - 1) for 1-indexed epoch e of E."""
    return min(1.0, max(0.0, (epoch - 1) / (total_epochs - 1)))


def entropy_guided_lambda(current: float, entropy: float, target: float, step_size: float) -> float:
    """lambda_{k+1} = clip(lambda_k + step, 0, 1) if H_k > target else clip(lambda_k - step, 0, 1).

    Jin et al. Sec. 7.3: lambda rises "when the LLM entropy exceeds" the target, "otherwise" it falls: the
    shared bang-bang rule with drive H - target (raising lambda lowers the entropy).
    """
    return bang_bang_step(current, entropy - target, step_size, 0.0, 1.0)


@dataclass
class PosAdvReweightConfig(MethodConfig):
    schedule: str = field(
        default="stage",
        metadata={
            "help": f"stage | epoch | entropy | constant | target: how lambda (the weight of A>0 tokens) evolves "
            f"({PAPER}; target = set by --entropy.target with lever pos_adv.lambda; default stage)."
        },
    )
    lambda_value: float = field(default=0.5, metadata={"help": "lambda for schedule=constant (default 0.5)."})
    negative_weight: float = field(
        default=1.0,
        metadata={
            "help": f"Weight of A<0 tokens ({PAPER} keeps 1; EntroPIC, arXiv 2511.15248, moves it: lever "
            f"pos_adv.negative_weight; default 1.0)."
        },
    )
    stage_split: float = field(
        default=0.5,
        metadata={
            "help": f"Stage-based: fraction of total steps with lambda=0 before the linear ramp to 1 ({PAPER}, "
            f"indexing inferred; default 0.5)."
        },
    )
    entropy_target: float = field(
        default=0.2,
        metadata={
            "help": f"Entropy-guided: target entropy delta; lambda rises by step_size when H exceeds delta, else falls "
            f"({PAPER} Sec. 7.3: 'the target value of 0.2'; default 0.2)."
        },
    )
    step_size: float = field(
        default=0.05,
        metadata={
            "help": f"Entropy-guided: lambda step Delta per controller update ({PAPER} Sec. 7.3 fixes it, value lost "
            f"in the text; 0.05 from third-party notes; default 0.05)."
        },
    )
    lambda_init: float = field(
        default=0.0,
        metadata={
            "help": f"Entropy-guided: initial lambda_0 ({PAPER} Sec. 7.3, value lost in the text; 0 from third-party "
            f"notes; default 0.0)."
        },
    )
    update_every: str = field(
        default="rollout_step",
        metadata={
            "help": f"Entropy-guided: when lambda updates: rollout_step = once per rollout step from that rollout's "
            f"statistics, the paper's training step t of Eq. 5 ({PAPER} Sec. 7.3; its runs take N = 4 updates per "
            f"rollout, App. E.2), or optimizer_step = after every optimizer step (N times as often) (default "
            f"rollout_step)."
        },
    )
    entropy_metric: str = field(
        default="entropy/old_mean",
        metadata={
            "help": "Entropy-guided: step statistic fed to on_step_end (which pass is unknown; default the "
            "rollout-policy token-mean entropy, entropy/old_mean)."
        },
    )
    normalize_by: str = field(
        default="valid_tokens",
        metadata={
            "help": f"Token-mean denominator: valid_tokens keeps every valid token (suggested; the paper's choice is "
            f"unknown) or weights rescales the weights by N_valid / sum(w) of the loss call so that the loss is "
            f"divided by sum(w) instead ({PAPER}; default valid_tokens)."
        },
    )

    def validate(self) -> None:
        check_choice(self, "schedule", SCHEDULES)
        check_range(self, "lambda_value", 0.0, None, hint="a nonnegative weight, e.g. 0.5")
        check_range(self, "negative_weight", 0.0, None, hint="a nonnegative weight, default 1.0")
        check_range(self, "stage_split", 0.0, 1.0, hint="fraction of training, default 0.5")
        check_range(self, "entropy_target", 0.0, None, hint="nats, default 0.2")
        check_range(self, "step_size", 0.0, 1.0, hint="default 0.05")
        check_range(self, "lambda_init", 0.0, 1.0, hint="default 0.0")
        check_choice(self, "update_every", CONTROLLER_BOUNDARIES)
        check_choice(self, "normalize_by", ("valid_tokens", "weights"))


@register_method
class PosAdvReweight(Method):
    """Positive-Advantage Reweighting: weight lambda on A > 0 tokens (hook b), lambda scheduled (hook e)."""

    name = "pos_adv_reweight"
    config_cls = PosAdvReweightConfig
    paper = PAPER

    def __init__(self, config: Optional[PosAdvReweightConfig] = None):
        super().__init__(config)
        self.lam = float(self.config.lambda_init)
        self.steps_seen = 0

    def required_inputs(self) -> tuple:
        return inputs_for_metric(self.config.entropy_metric) if self.config.schedule == "entropy" else ()

    def current_lambda(self, inputs: LossInputs) -> float:
        c = self.config
        if c.schedule == "constant":
            return float(c.lambda_value)
        if c.schedule == "stage":
            if not inputs.total_steps or inputs.total_steps <= 0:
                raise ValueError(
                    "pos_adv_reweight schedule=stage needs LossInputs.total_steps (> 0): pass the planned optimizer "
                    "steps"
                )
            return stage_lambda(inputs.step, inputs.total_steps, c.stage_split)
        if c.schedule == "epoch":
            if not inputs.total_epochs or inputs.total_epochs < 2:
                raise ValueError(
                    "pos_adv_reweight schedule=epoch needs LossInputs.total_epochs >= 2 (lambda = (e-1)/(E-1)); "
                    "use schedule=stage for single-epoch runs"
                )
            return epoch_lambda(inputs.epoch, inputs.total_epochs)
        return self.lam

    def token_weights(self, inputs: LossInputs) -> Tensor:
        lam = self.current_lambda(inputs)
        self._record(pos_adv_lambda=lam)
        pos = inputs.advantages > 0
        others = torch.ones_like(inputs.log_probs)
        if self.config.negative_weight != 1.0:
            others = torch.where(inputs.advantages < 0, torch.full_like(others, self.config.negative_weight), others)
        weights = torch.where(pos, torch.full_like(inputs.log_probs, lam), others)
        weights = weights.detach() * inputs.action_mask.to(weights.dtype)
        if self.config.normalize_by == "weights":
            total = float(weights.sum())
            if total > 0:
                weights = weights * (float(inputs.action_mask.sum()) / total)
        return weights

    def on_step_end(self, stats: Mapping[str, float]) -> None:
        self.steps_seen += 1
        if self.config.schedule != "entropy":
            return
        if self.config.entropy_metric not in stats:
            raise ValueError(
                f"pos_adv_reweight (schedule=entropy) needs stats[{self.config.entropy_metric!r}] in on_step_end; "
                f"got keys {sorted(stats)[:12]}...; set entropy_metric to one of them"
            )
        entropy = float(stats[self.config.entropy_metric])
        self.lam = entropy_guided_lambda(self.lam, entropy, self.config.entropy_target, self.config.step_size)

    def controller_values(self) -> Dict[str, float]:
        return {"pos_adv_lambda": self.lam} if self.config.schedule == "entropy" else {}

    def state_dict(self) -> Dict[str, Any]:
        return {"lambda": self.lam, "steps_seen": self.steps_seen}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.lam = float(state["lambda"])
        self.steps_seen = int(state.get("steps_seen", 0))


RAND_POS_BUDGETS = ("clip_cov", "fraction")


@dataclass
class RandPosClipConfig(MethodConfig):
    budget: str = field(
        default="clip_cov",
        metadata={
            "help": f"How many A > 0 tokens lose their gradient per loss call: clip_cov = Clip-Cov's count "
            f"max(int(clip_ratio * N_valid), 1) ({PAPER} App. E.2: 'the same proportion of tokens' as Clip-Cov) "
            f"or fraction = round(clip_fraction * N_pos) (default clip_cov)."
        },
    )
    clip_ratio: float = field(
        default=2e-4,
        metadata={
            "help": f"budget=clip_cov: Clip-Cov's ratio of valid tokens ({PAPER} App. E.2 matches Clip-Cov; Cui et "
            f"al.'s default 2e-4; default 2e-4)."
        },
    )
    clip_fraction: float = field(
        default=0.1,
        metadata={
            "help": "budget=fraction: fraction of the positive-advantage tokens zeroed ([assumed]; default 0.1)."
        },
    )

    def validate(self) -> None:
        check_choice(self, "budget", RAND_POS_BUDGETS)
        check_range(self, "clip_ratio", 0.0, 1.0, hint="Clip-Cov default 2e-4")
        check_range(self, "clip_fraction", 0.0, 1.0, hint="a fraction, e.g. 0.1")


@register_method
class RandPosClip(Method):
    """Rand-Pos-Clip: zero the gradient of as many random A > 0 tokens as Clip-Cov clips (hook c)."""

    name = "rand_pos_clip"
    config_cls = RandPosClipConfig
    paper = PAPER

    def clip_mask(self, inputs: LossInputs, per_token: Dict[str, Tensor]) -> Tensor:
        c = self.config
        valid = inputs.action_mask.bool()
        candidates = (inputs.advantages > 0) & valid
        if c.budget == "clip_cov":
            chosen = choose_random_tokens(
                candidates, None, inputs.generator, count=clip_cov_budget(int(valid.sum()), c.clip_ratio)
            )
        else:
            chosen = choose_random_tokens(candidates, c.clip_fraction, inputs.generator)
        self._record(rand_pos_clipped=chosen.sum())
        return (~chosen).to(inputs.log_probs.dtype)


@dataclass
class SignOnlyConfig(MethodConfig):
    """No options."""


@register_method
class PositiveOnly(Method):
    """Train on positive samples only ("Adv>=0"): weight 0 on A < 0 tokens (hook b)."""

    name = "positive_only"
    config_cls = SignOnlyConfig
    paper = PAPER + " (Adv>=0 baseline); cf. PSR, Zhu et al., arXiv 2506.01347"

    def token_weights(self, inputs: LossInputs) -> Tensor:
        keep = (inputs.advantages >= 0) & inputs.action_mask.bool()
        return keep.to(inputs.log_probs.dtype)


@register_method
class NegativeOnly(Method):
    """Train on negative samples only ("Adv<=0"): weight 0 on A > 0 tokens (hook b)."""

    name = "negative_only"
    config_cls = SignOnlyConfig
    paper = PAPER + " (Adv<=0 baseline); cf. NSR, Zhu et al., arXiv 2506.01347"

    def token_weights(self, inputs: LossInputs) -> Tensor:
        keep = (inputs.advantages <= 0) & inputs.action_mask.bool()
        return keep.to(inputs.log_probs.dtype)
