"""Options of an entropy target (``--entropy.target.<field>``); each help names its source and default."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from openrlhf_steer.methods.base import MethodConfig, check_choice, check_range

ENTROPIC = "EntroPIC, Yang et al., arXiv 2511.15248"
POS_ADV = "Pos-Adv-Reweight, Jin et al., arXiv 2511.05993"
DIRECTIONS = ("auto", "raises", "lowers")


@dataclass
class EntropyTargetConfig(MethodConfig):
    lever: str = field(
        default="",
        metadata={
            "help": "What the controller moves (required): pos_adv.lambda, pos_adv.negative_weight, entropy_loss.coef, "
            "steer.lambda_min, clip.eps_low or clip.eps_high; the method that owns it must be in --entropy.method "
            "(default none)."
        },
    )
    controller: str = field(
        default="pi",
        metadata={
            "help": f"bang_bang (fixed step, Pos-Adv Sec. 7.3 / Skywork-OR1), pi (proportional-integral with "
            f"anti-windup, {ENTROPIC}) or hysteresis (two thresholds, AEPO's switch) (default pi)."
        },
    )
    schedule: str = field(
        default="constant",
        metadata={
            "help": "Target over training progress: constant (start), linear (start -> end, or the knots) or "
            "cosine (start -> end) (default constant)."
        },
    )
    start: float = field(
        default=0.2,
        metadata={"help": f"Target entropy in nats at progress 0 ({POS_ADV} Sec. 7.3 uses 0.2; default 0.2)."},
    )
    end: Optional[float] = field(
        default=None, metadata={"help": "Target at progress 1 for linear / cosine (default: start)."}
    )
    knots: str = field(
        default="",
        metadata={
            "help": "schedule=linear: piecewise-linear curve as progress:value pairs, e.g. 0:0.6,0.5:0.4,1:0.2 "
            "(overrides start/end; default none)."
        },
    )
    total_steps: int = field(
        default=0,
        metadata={
            "help": "Planned rollout steps, the denominator of training progress (needed by linear / cosine; "
            "default 0 = constant schedules only)."
        },
    )
    metric: str = field(
        default="entropy/old_mean",
        metadata={
            "help": "Measured entropy: a rollout-step statistic, reduced over data-parallel ranks like the window "
            "statistics (default entropy/old_mean, the rollout policy's token-mean entropy)."
        },
    )
    ema: float = field(
        default=0.0,
        metadata={
            "help": "EMA factor beta of the measured entropy, m = beta m + (1 - beta) H ([assumed]; default 0.0 = "
            "no smoothing)."
        },
    )
    direction: str = field(
        default="auto",
        metadata={
            "help": "Whether raising the lever raises (raises) or lowers (lowers) the entropy; auto takes the lever's "
            "documented direction (default auto)."
        },
    )
    initial: Optional[float] = field(
        default=None, metadata={"help": "Lever value before the first update (default: the method's own option)."}
    )
    lever_min: Optional[float] = field(
        default=None,
        metadata={"help": "Lower output limit, inside the method's valid range (default: that range's low end)."},
    )
    lever_max: Optional[float] = field(
        default=None,
        metadata={
            "help": "Upper output limit, inside the method's valid range (default: its high end; required where the "
            "method allows any value, e.g. entropy_loss.coef, clip.eps_high)."
        },
    )
    step_size: float = field(
        default=0.05,
        metadata={
            "help": f"bang_bang: lever step per update ({POS_ADV} Sec. 7.3, value lost in the text; 0.05 from "
            f"third-party notes; default 0.05)."
        },
    )
    kp: float = field(
        default=1.0,
        metadata={"help": f"pi: proportional gain, lever units per nat ({ENTROPIC}; value [assumed]; default 1.0)."},
    )
    ki: float = field(
        default=0.1,
        metadata={"help": f"pi: integral gain per update ({ENTROPIC}; value [assumed]; default 0.1)."},
    )
    band: float = field(
        default=0.02,
        metadata={
            "help": "hysteresis: half-width in nats of the band around the target inside which the switch holds "
            "([assumed]; default 0.02)."
        },
    )

    def validate(self) -> None:
        from openrlhf_steer.control.controllers import CONTROLLERS
        from openrlhf_steer.control.levers import LEVERS
        from openrlhf_steer.control.targets import SCHEDULES, parse_knots

        if not self.lever:
            raise ValueError(
                f"EntropyTargetConfig.lever is required: set --entropy.target.lever to one of {sorted(LEVERS)}"
            )
        check_choice(self, "lever", sorted(LEVERS))
        check_choice(self, "controller", sorted(CONTROLLERS))
        check_choice(self, "schedule", sorted(SCHEDULES))
        check_choice(self, "direction", DIRECTIONS)
        check_range(self, "start", 0.0, None, hint="nats, e.g. 0.2")
        if self.end is not None:
            check_range(self, "end", 0.0, None, hint="nats, e.g. 0.2")
        if self.knots:
            if self.schedule != "linear":
                raise ValueError(
                    "EntropyTargetConfig.knots is for schedule=linear: set --entropy.target.schedule linear"
                )
            parse_knots(self.knots)
        check_range(self, "total_steps", 0, None, hint="planned rollout steps")
        if self.schedule != "constant" and self.total_steps < 1:
            raise ValueError(
                f"EntropyTargetConfig.total_steps={self.total_steps}: schedule={self.schedule} needs the planned "
                f"rollout steps; set --entropy.target.total_steps"
            )
        check_range(self, "ema", 0.0, 1.0, high_open=True, hint="0 = no smoothing, e.g. 0.9")
        check_range(self, "step_size", 0.0, None, hint="default 0.05")
        check_range(self, "kp", 0.0, None, hint="default 1.0")
        check_range(self, "ki", 0.0, None, hint="default 0.1")
        check_range(self, "band", 0.0, None, hint="nats, default 0.02")
