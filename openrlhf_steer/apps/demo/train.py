"""The RL loop of one method: rollout -> advantages -> clipped surrogate (core library) -> AdamW.

One rollout step samples P x G completions, computes GRPO advantages with the method's hooks
(``openrlhf_steer.core.advantages.compute_advantages``), then takes ``mini_batches`` optimizer steps over
shuffled slices of it. Each optimizer step is a window of micro-batches; every micro-batch calls
``openrlhf_steer.core.loss.PolicyLoss`` with ``num_tokens`` = the window's token count (OpenRLHF's
token-mean), exactly the call the OpenRLHF integration makes. After each optimizer step and after each
rollout step (token-weighted over its windows) the method's controller is offered that span's
statistics (``on_boundary``); it updates at the boundary its ``update_every`` names.

Resumable: a checkpoint (model, optimizer, method state, step) is written atomically every
``save_every`` rollout steps; rerunning resumes from it and drops metric rows past it. All randomness
is a pure function of (seed, step), so a resumed run reproduces an uninterrupted one exactly.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
from tqdm import tqdm

from openrlhf_steer.control import attach_target
from openrlhf_steer.core.advantages import compute_advantages
from openrlhf_steer.core.loss import PolicyLoss
from openrlhf_steer.methods import GroupInputs, LossConfig, LossInputs, build_method
from openrlhf_steer.runtime import StepRuntime

from .batch import TokenBatch, completion_logprobs, masked_mean
from .config import MethodSpec, RLConfig
from .io import append_jsonl, read_jsonl, rewrite_jsonl, save_torch
from .models import load_policy
from .optimizers import build_optimizer
from .rollout import Rollout, collect_rollout
from .task import AdditionTask, Problem, sample_problems

Tensor = torch.Tensor
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"


def demo_seed(seed: int, step: int, salt: int = 0) -> int:
    """The demo's seed of one random stream (salt) at one rollout step. Its published numbers depend on
    these values, so the demo keeps them (the runtime's ``step_seed`` serves the OpenRLHF runs)."""
    return (seed * 1_000_003 + step * 7_919 + salt * 104_729) % (2**63 - 1)


@dataclass
class ProbeBatch:
    """A fixed set of (prompt, completion) pairs sampled once from the start model; its teacher-forced
    mean entropy under the current model is a low-noise entropy curve shared by every run."""

    batch: TokenBatch

    @torch.no_grad()
    def entropy(self, model, temperature: float = 1.0) -> float:
        model.eval()
        _, entropy = completion_logprobs(model, self.batch, temperature=temperature)
        return masked_mean(entropy, self.batch.action_mask)

    def state(self) -> Dict[str, Any]:
        return asdict(self.batch)

    @classmethod
    def from_state(cls, state: Dict[str, Any]) -> "ProbeBatch":
        return cls(TokenBatch(**state))


def make_probe(model, tokenizer, task: AdditionTask, problems: List[Problem], rl: RLConfig) -> ProbeBatch:
    with torch.random.fork_rng():
        torch.manual_seed(demo_seed(rl.seed, 0, salt=99))
        rollout = collect_rollout(
            model,
            tokenizer,
            task,
            problems,
            samples_per_prompt=4,
            max_new_tokens=rl.max_new_tokens,
            temperature=rl.temperature,
        )
    return ProbeBatch(rollout.batch)


def window_slices(
    num_samples: int, mini_batches: int, micro_batch_size: int, generator: torch.Generator
) -> List[List[Tensor]]:
    """Shuffled sample indices -> mini-batches (optimizer steps) -> micro-batches (loss calls)."""
    order = torch.randperm(num_samples, generator=generator)
    per_mini = num_samples // mini_batches
    windows = []
    for m in range(mini_batches):
        mini = order[m * per_mini : (m + 1) * per_mini]
        windows.append([mini[i : i + micro_batch_size] for i in range(0, len(mini), micro_batch_size)])
    return windows


class MethodRun:
    """Everything needed to train one method: model, optimizer, method, loss, and the step loop."""

    def __init__(
        self,
        spec: MethodSpec,
        start_dir: Path,
        run_dir: Path,
        task: AdditionTask,
        pool: List[Problem],
        rl: RLConfig,
        probe: Optional[ProbeBatch] = None,
        method_overrides: Optional[Dict[str, Any]] = None,
        target: Optional[Dict[str, Any]] = None,
    ):
        rl.validate()
        self.spec, self.run_dir, self.task, self.pool, self.rl, self.probe = (
            spec,
            Path(run_dir),
            task,
            list(pool),
            rl,
            probe,
        )
        self.model, self.tokenizer = load_policy(start_dir)
        self.method = build_method(spec.method, dict(spec.config), **(method_overrides or {}))
        # an entropy target wraps the method before the loss and the runtime see it, so its controller runs at
        # the rollout-step boundary and its values are logged as controller/target/* (openrlhf_steer.control)
        self.method = attach_target(self.method, target)
        self.loss_fn = PolicyLoss(LossConfig(**dict(spec.loss)), self.method)
        self.optimizer = build_optimizer(self.model.parameters(), rl, spec.optimizer)
        # Optimizer step k of the run is window k % mini_batches of rollout step k // mini_batches.
        self.runtime = StepRuntime(
            self.method,
            seed=rl.seed,
            seed_schedule=lambda k: demo_seed(rl.seed, k // rl.mini_batches, salt=10 + k % rl.mini_batches),
        )
        # Callables (inputs, effective LossConfig) -> None that see every micro-batch (analyses).
        self.observers: List[Callable[[LossInputs, LossConfig], None]] = []
        # Objects with before_step/after_step(run, rollout, advantages, micro_indices) around each optimizer
        # step, and take_row(step) -> dict appended to run_dir/<log_name> after each rollout step.
        self.step_observers: List[Any] = []

    @property
    def step(self) -> int:
        """Rollout steps done."""
        return self.runtime.rollout_step

    @property
    def optimizer_steps(self) -> int:
        return self.runtime.optimizer_step

    # ------------------------------------------------------------------------------------------
    def checkpoint_state(self) -> Dict[str, Any]:
        return {
            "step": self.step,
            "optimizer_steps": self.optimizer_steps,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "method": self.method.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "spec": self.spec.to_dict(),
            "rl": asdict(self.rl),
        }

    def save_checkpoint(self) -> None:
        save_torch(self.run_dir / CHECKPOINT, self.checkpoint_state())

    def try_resume(self) -> bool:
        """Load the last checkpoint if there is one; keep only metric rows of the steps it covers."""
        path = self.run_dir / CHECKPOINT
        metrics_path = self.run_dir / METRICS
        if not path.exists():
            for stale in [metrics_path] + [self.run_dir / o.log_name for o in self.step_observers]:
                if stale.exists():
                    stale.unlink()  # rows without a checkpoint cannot be continued
            return False
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state["spec"] != self.spec.to_dict() or state["rl"] != asdict(self.rl):
            raise ValueError(
                f"{path} was written with other settings (method or RL config); "
                f"use a new --output-dir or delete {self.run_dir} to restart this method"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.method.load_state_dict(state["method"])
        torch.set_rng_state(state["torch_rng"])
        self.runtime.rollout_step, self.runtime.optimizer_step = int(state["step"]), int(state["optimizer_steps"])
        for path in [metrics_path] + [self.run_dir / o.log_name for o in self.step_observers]:
            rewrite_jsonl(path, [r for r in read_jsonl(path) if r["step"] < self.step])
        return True

    # ------------------------------------------------------------------------------------------
    def loss_inputs(
        self, rollout: Rollout, advantages: Tensor, index: Tensor, with_grad: bool, generator: Optional[torch.Generator]
    ) -> LossInputs:
        batch = rollout.batch.select(index)
        with torch.set_grad_enabled(with_grad):
            log_probs, entropy = completion_logprobs(
                self.model, batch, temperature=self.rl.temperature, entropy_grad=with_grad
            )
        return LossInputs(
            log_probs=log_probs,
            old_log_probs=rollout.old_log_probs[index],
            advantages=advantages[index],
            action_mask=batch.action_mask,
            entropy=entropy,
            old_entropy=rollout.old_entropy[index],
            step=self.optimizer_steps,
            total_steps=self.rl.steps * self.rl.mini_batches,
            generator=generator,
        )

    def optimizer_step(self, rollout: Rollout, advantages: Tensor, micro_indices: List[Tensor]) -> Dict[str, float]:
        """One optimizer step over a window of micro-batches; returns the token-weighted mean metrics."""
        self.model.train()
        window_tokens = float(sum(rollout.batch.action_mask[idx].sum() for idx in micro_indices))
        window_stats: Dict[str, Any] = {}
        if self.method.needs_window_stats:
            with torch.no_grad():
                previews = [self.loss_inputs(rollout, advantages, idx, False, None) for idx in micro_indices]
            window_stats = self.method.window_stats(previews)
        generator = self.runtime.reseed()
        for observer in self.step_observers:
            observer.before_step(self, rollout, advantages, micro_indices)
        self.optimizer.zero_grad(set_to_none=True)
        for idx in micro_indices:
            inputs = self.loss_inputs(rollout, advantages, idx, True, generator)
            inputs.window_stats = window_stats
            loss, metrics = self.loss_fn(inputs, num_tokens=window_tokens)
            loss.backward()
            for observe in self.observers:
                observe(inputs, self.method.loss_config(self.loss_fn.loss_config))
            self.runtime.record(metrics, inputs.action_mask.sum())
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.rl.grad_clip)
        self.optimizer.step()

        # the window's metrics, copied to the host once, go to the controller after the observers
        def observe_step():
            for observer in self.step_observers:
                observer.after_step(self, rollout, advantages, micro_indices)

        return self.runtime.end_optimizer_step(extra={"grad_norm": float(grad_norm)}, before_controller=observe_step)

    def train_step(self) -> Dict[str, Any]:
        """One rollout step: sample, advantages, `mini_batches` optimizer steps. Returns the metrics row."""
        rl = self.rl
        started = time.time()
        step = self.step
        torch.manual_seed(demo_seed(rl.seed, self.step))
        problems = sample_problems(self.pool, rl.prompts_per_step, rl.seed, self.step)
        rollout = collect_rollout(
            self.model,
            self.tokenizer,
            self.task,
            problems,
            samples_per_prompt=rl.samples_per_prompt,
            max_new_tokens=rl.max_new_tokens,
            temperature=rl.temperature,
        )
        mask = rollout.batch.action_mask
        group = GroupInputs(
            rewards=rollout.rewards,
            group_ids=rollout.group_ids,
            response_mask=mask,
            old_log_probs=rollout.old_log_probs,
            entropy=rollout.old_entropy,
        )
        advantages = compute_advantages(group, self.method)
        shuffle = torch.Generator().manual_seed(demo_seed(rl.seed, self.step, salt=1))
        windows = window_slices(rollout.num_samples, rl.mini_batches, rl.micro_batch_size, shuffle)
        for micro in windows:
            self.optimizer_step(rollout, advantages, micro)
        logged = self.runtime.end_rollout_step()

        rewards = rollout.rewards.view(rl.prompts_per_step, rl.samples_per_prompt)
        row: Dict[str, Any] = {
            "step": step,
            "method": self.spec.run_name,
            "reward/mean": float(rollout.rewards.mean()),
            "accuracy": float((rollout.rewards > 0.5).float().mean()),
            "entropy/rollout": masked_mean(rollout.old_entropy, mask),
            "response_length": float(mask.sum(1).mean()),
            "groups/mixed_frac": float(((rewards.max(1).values - rewards.min(1).values) > 0).float().mean()),
            "optimizer_steps": self.optimizer_steps,
        }
        if self.probe is not None:
            row["entropy/probe"] = self.probe.entropy(self.model, rl.temperature)
        for key, value in logged.items():
            row[f"train/{key}"] = value
        for key, value in self.method.controller_values().items():
            row[f"controller/{key}"] = float(value)
        row["seconds"] = time.time() - started
        return row

    def train(
        self,
        *,
        progress: bool = True,
        position: int = 0,
        stop_after: Optional[int] = None,
        on_row: Optional[Callable[[Dict[str, Any]], None]] = None,
    ) -> List[Dict[str, Any]]:
        """Run (or resume) up to ``rl.steps``; ``stop_after`` ends early after that many steps of this call
        (used to simulate an interruption)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.try_resume()
        todo = range(self.step, self.rl.steps)
        bar = tqdm(
            total=self.rl.steps,
            initial=self.step,
            desc=f"{self.spec.run_name:>16}",
            position=position,
            disable=not progress,
            leave=True,
            dynamic_ncols=True,
        )
        done_now = 0
        for _ in todo:
            row = self.train_step()
            for observer in self.step_observers:
                extra = observer.take_row(row["step"])
                if extra is not None:
                    append_jsonl(self.run_dir / observer.log_name, extra)
            append_jsonl(self.run_dir / METRICS, row)
            if on_row:
                on_row(row)
            bar.update(1)
            bar.set_postfix(H=f"{row.get('entropy/probe', row['entropy/rollout']):.3f}", acc=f"{row['accuracy']:.2f}")
            if self.step % self.rl.save_every == 0 or self.step == self.rl.steps:
                self.save_checkpoint()
            done_now += 1
            if stop_after is not None and done_now >= stop_after:
                break
        bar.close()
        return read_jsonl(self.run_dir / METRICS)

    @property
    def finished(self) -> bool:
        return self.step >= self.rl.steps
