"""Mechanism claims: ONE update from the same state, paired, measured token by token.

The training-level claims (60 AdamW steps) mix every effect the papers name with the optimizer's
rescaling. The mechanisms themselves are statements about one update, in the setting of STEER's
Theorem 1: one step of plain gradient descent with a small learning rate. So, at several checkpoints of
a GRPO run (rollout steps 0, 1/3 and 2/3 of the run, the demo's own ``grpo`` run replayed with the same
seed), the policy is copied to float64 and every variant of the update is taken from that same state on
the same mini-batch; each token's full-vocabulary entropy at its own prefix is measured before and after
(Delta H_t), and the state is restored before the next variant. Variants:

* on-policy (the rollout step's first optimizer window, r = 1): only one quadrant's tokens (STEER Sec.
  3.2.1 / Fig. 4), only A > 0 or only A < 0 tokens (Pos-Adv Sec. 7.1), GRPO and STEER (exp as the authors
  configure it, and binary) at GRPO's update norm (STEER Sec. 4);
* off-policy (the second window, after the run's first AdamW step, as in training): GRPO with eps_high
  0.2 vs 0.28 and eps_low 0.2 vs 0.3 (STEER Sec. 3.2.2);
* Theorem 1 in its exact setting: a logit table with one row per prefix of the same mini-batch (STEER
  Assumption 1), initialised from the model's logits, one plain gradient step, Omega against the
  measured change as the step shrinks.

One set-up for every claim, chosen from the theory's assumptions (first order: plain gradient descent,
small step, float64 so that the change is far above rounding), not per claim.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from openrlhf_steer.core.loss import PolicyLoss
from openrlhf_steer.core.stats import agreement
from openrlhf_steer.methods import LossConfig, LossInputs, build_method

from .batch import TokenBatch, completion_logits, completion_logprobs
from .mechanism_math import (
    equal_norm_scale,
    first_order_change,
    paper_omega,
    quadrant_masks,
    ratio_through_origin,
    sampled_logit_step,
    softmax_entropy,
    tabular_step,
    upper_tail,
    weight_distribution,
)

Tensor = torch.Tensor
FOLDER = "mechanism"


@dataclass(frozen=True)
class MechanismSettings:
    checkpoint_fractions: tuple = field(
        default=(0.0, 1 / 3, 2 / 3),
        metadata={"help": "Checkpoints of the GRPO run, as fractions of its rollout steps (full preset: 0, 20, 40)."},
    )
    lr: float = field(
        default=1e-4,
        metadata={
            "help": "Step size of the one plain gradient-descent step (STEER Theorem 1 is first order: a small "
            "step; the loss is token-mean over the mini-batch) [assumed value]."
        },
    )
    tabular_lrs: tuple = field(
        default=(1.0, 1e-1, 1e-2, 1e-3, 1e-4),
        metadata={"help": "Step sizes of the tabular check (Theorem 1: Omega -> measured change as eta -> 0)."},
    )
    eps_high: tuple = field(
        default=(0.2, 0.28),
        metadata={"help": "eps_high lower / higher (GRPO 0.2, DAPO clip-higher 0.28; STEER Sec. 3.2.2, Fig. 7)."},
    )
    eps_low: tuple = field(
        default=(0.2, 0.3), metadata={"help": "eps_low lower / higher (0.2 as GRPO; 0.3 [assumed])."}
    )
    tail_quantile: float = field(
        default=0.9, metadata={"help": "Quantile of |Delta H_t| compared in the STEER-vs-GRPO claim (Sec. 4)."}
    )
    steer_exp: tuple = field(
        default=(("mapping", "exp"), ("lambda_min", 0.8)),
        metadata={"help": "STEER as the authors configure it (run_exp.sh: exp mapping, lambda_min 0.8)."},
    )
    steer_binary: tuple = field(
        default=(("mapping", "binary"), ("lambda_min", 0.7)),
        metadata={"help": "STEER's binary mapping (Sec. 5.2 ablation: the top 20% by |Omega| get lambda_min 0.7)."},
    )

    def checkpoints(self, steps: int) -> List[int]:
        return sorted({min(steps - 1, int(round(f * steps))) for f in self.checkpoint_fractions})

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


CLIP = {"eps_low": 0.2, "eps_high": 0.2}


class OneStepProbe:
    """A float64 copy of the policy at one state and one mini-batch: gradients of loss variants and the
    per-token entropy change of a step along any of them (the state is restored after each)."""

    def __init__(
        self,
        model,
        batch: TokenBatch,
        advantages: Tensor,
        old_log_probs: Optional[Tensor],
        old_entropy: Optional[Tensor],
        temperature: float,
    ):
        self.model = copy.deepcopy(model).double().eval()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.theta = parameters_to_vector(self.params).detach().clone()
        self.batch, self.temperature = batch, temperature
        self.mask = batch.action_mask.double()
        self.advantages = advantages.double()
        with torch.no_grad():
            log_probs, entropy = completion_logprobs(self.model, batch, temperature=temperature)
        self.log_probs, self.entropy = log_probs, entropy
        # on-policy: the current policy is the rollout policy (r = 1 exactly)
        self.old_log_probs = log_probs if old_log_probs is None else old_log_probs.double()
        self.old_entropy = entropy if old_entropy is None else old_entropy.double()
        self.tokens = float(self.mask.sum())

    def inputs(self, log_probs: Tensor, advantages: Tensor) -> LossInputs:
        return LossInputs(
            log_probs=log_probs,
            old_log_probs=self.old_log_probs,
            advantages=advantages,
            action_mask=self.mask,
            entropy=self.entropy,
            old_entropy=self.old_entropy,
        )

    def descent(self, method_name: str, method_config: Dict[str, Any], loss: Dict[str, Any], token_mask=None):
        """-grad of the token-mean surrogate (one loss call over the mini-batch) and the method's weights;
        ``token_mask`` keeps only those tokens' advantages (the others contribute nothing)."""
        method = build_method(method_name, method_config)
        advantages = self.advantages if token_mask is None else self.advantages * token_mask.double()
        loss_fn = PolicyLoss(LossConfig(**loss), method)
        with torch.no_grad():
            weights = method.token_weights(self.inputs(self.log_probs, advantages))
        self.model.zero_grad(set_to_none=True)
        log_probs, _ = completion_logprobs(self.model, self.batch, temperature=self.temperature, with_entropy=False)
        inputs = self.inputs(log_probs, advantages)
        if method.needs_window_stats:
            inputs.window_stats = method.window_stats([self.inputs(self.log_probs, advantages)])
        value, _ = loss_fn(inputs, num_tokens=self.tokens)
        value.backward()
        grad = parameters_to_vector([p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params])
        return -grad.detach(), weights

    @torch.no_grad()
    def entropy_change(self, step: Tensor) -> Tensor:
        """Delta H_t at every token's own prefix after theta += step (then theta is restored)."""
        vector_to_parameters(self.theta + step, self.params)
        _, after = completion_logprobs(self.model, self.batch, temperature=self.temperature)
        vector_to_parameters(self.theta, self.params)
        return after - self.entropy

    def valid(self, values: Tensor) -> Tensor:
        return values[self.mask.bool()]

    def omega(self, lr: float) -> Tensor:
        return paper_omega(self.log_probs, self.old_log_probs, self.entropy, self.advantages, lr)


def on_policy_record(probe: OneStepProbe, settings: MechanismSettings) -> Dict[str, Any]:
    """Quadrant-only, sign-only and STEER-vs-GRPO steps from one on-policy state."""
    lr, valid = settings.lr, probe.mask.bool()
    record: Dict[str, Any] = {"tokens": int(valid.sum()), "entropy": float(probe.valid(probe.entropy).mean())}
    omega = probe.omega(lr / probe.tokens)  # the loss is a token mean: each token's weight is w_t / N
    masks = quadrant_masks(probe.advantages, probe.log_probs, probe.entropy, probe.mask)
    masks["positive"] = valid & (probe.advantages > 0)
    masks["negative"] = valid & (probe.advantages < 0)
    record["subsets"] = {}
    for name, subset in masks.items():
        if not bool(subset.any()):
            record["subsets"][name] = {"tokens": 0, "mean_dh_per_lr": 0.0}
            continue
        direction, _ = probe.descent("grpo", {}, CLIP, token_mask=subset)
        change = probe.entropy_change(lr * direction)
        row = {"tokens": int(subset.sum()), "mean_dh_per_lr": float(probe.valid(change).mean()) / lr}
        # each updated token's own measured change against its Omega (the view; where the change lands)
        row["own_dh"] = change[subset].tolist()
        row["own_omega"] = omega[subset].tolist()
        record["subsets"][name] = row
    grpo, _ = probe.descent("grpo", {}, CLIP)
    if float(grpo.norm()) == 0.0:  # no group with mixed rewards in this mini-batch: nothing to compare
        record["equal_norm"], record["tabular"] = None, None
        return record
    grpo_change = probe.valid(probe.entropy_change(lr * grpo))
    # Omega against the measured change of GRPO's own step: claim 6's comparison without AdamW
    record["grpo_step"] = agreement(probe.valid(omega).tolist(), grpo_change.tolist())
    norm = {"grpo": _tail_row(grpo_change, lr, settings.tail_quantile)}
    norm["grpo"]["step_norm"] = float((lr * grpo).norm())
    for name, config in (("steer_exp", settings.steer_exp), ("steer_binary", settings.steer_binary)):
        direction, weights = probe.descent("steer", dict(config), CLIP)
        scale = equal_norm_scale(grpo, direction)
        row = _tail_row(probe.valid(probe.entropy_change(lr * scale * direction)), lr, settings.tail_quantile)
        row["weights"] = weight_distribution(weights, probe.mask)
        if name == "steer_exp":
            row["weight_values"] = probe.valid(weights).tolist()
        norm[name] = row
    record["equal_norm"] = norm
    record["tabular"] = tabular_record(probe, settings)
    return record


def _tail_row(change: Tensor, lr: float, quantile: float) -> Dict[str, float]:
    return {"tail_per_lr": upper_tail(change, quantile) / lr, "mean_abs_per_lr": float(change.abs().mean()) / lr}


def off_policy_record(probe: OneStepProbe, settings: MechanismSettings) -> Dict[str, Any]:
    """GRPO's step with a lower and a higher eps_high / eps_low from the same off-policy state."""
    lr, valid = settings.lr, probe.mask.bool()
    ratio = (probe.log_probs - probe.old_log_probs).exp()
    record: Dict[str, Any] = {"tokens": int(valid.sum())}
    variants = {
        "base": {"eps_low": settings.eps_low[0], "eps_high": settings.eps_high[0]},
        "high": {"eps_low": settings.eps_low[0], "eps_high": settings.eps_high[1]},
        "low": {"eps_low": settings.eps_low[1], "eps_high": settings.eps_high[0]},
    }
    for name, loss in variants.items():
        direction, _ = probe.descent("grpo", {}, loss)
        change = probe.entropy_change(lr * direction)
        record[name] = {**loss, "mean_dh_per_lr": float(probe.valid(change).mean()) / lr}
    a = probe.advantages
    # tokens whose gate the change of eps opens: A > 0, r in (1 + 0.2, 1 + 0.28]; A < 0, r in [0.7, 0.8)
    record["gated_high"] = int((valid & (a > 0) & (ratio > 1 + settings.eps_high[0])).sum())
    record["gated_low"] = int((valid & (a < 0) & (ratio < 1 - settings.eps_low[0])).sum())
    record["ratio_abs_dev_max"] = float(probe.valid((ratio - 1).abs()).max())
    return record


def prefix_states(batch: TokenBatch) -> tuple:
    """(state index per valid token, number of states, valid mask): one state per distinct prefix."""
    keys: Dict[tuple, int] = {}
    index = torch.full(batch.action_mask.shape, -1, dtype=torch.long)
    p = batch.prompt_len
    for i in range(batch.action_mask.shape[0]):
        for t in range(batch.action_mask.shape[1]):
            if batch.action_mask[i, t] > 0:
                key = tuple(batch.input_ids[i, : p + t].tolist())
                index[i, t] = keys.setdefault(key, len(keys))
    return index, len(keys)


def tabular_record(probe: OneStepProbe, settings: MechanismSettings) -> Dict[str, Any]:
    """Theorem 1 in its exact setting: a logit table (one row per prefix of the mini-batch, initialised from
    the model's logits), one plain gradient step of sum_t A_t log pi(a_t | s_t) at each step size;
    the measured Delta H per state against the sum of its tokens' Omega, and against the exact first-order
    change <grad H, Delta z> (which the measurement must approach, a check of the measurement itself)."""
    state, count = prefix_states(probe.batch)
    valid = probe.mask.bool()
    with torch.no_grad():
        logits = completion_logits(probe.model, probe.batch) / probe.temperature
    table = torch.zeros(count, logits.shape[-1], dtype=torch.float64)
    table[state[valid]] = logits[valid]
    states, actions = state[valid], probe.batch.completion_ids[valid]
    weights = probe.advantages[valid]
    log_p = torch.log_softmax(table, -1)[states, actions]
    entropy = softmax_entropy(table)[states]
    rows = []
    for lr in settings.tabular_lrs:
        new = tabular_step(table, states, actions, weights, lr)
        measured = softmax_entropy(new) - softmax_entropy(table)
        omega = torch.zeros(count, dtype=torch.float64).index_add_(
            0, states, paper_omega(log_p, log_p, entropy, weights, lr)
        )
        exact = first_order_change(table, new)
        proof = softmax_entropy(sampled_logit_step(table, states, actions, weights, lr)) - softmax_entropy(table)
        moved = omega != 0
        rows.append(
            {
                "lr": lr,
                "ratio_to_omega": ratio_through_origin(measured[moved], omega[moved]),
                "ratio_to_first_order": ratio_through_origin(measured[moved], exact[moved]),
                # the proof's own update (only the sampled logit moves): Omega against its measured change
                "proof_update_ratio_to_omega": ratio_through_origin(proof[moved], omega[moved]),
            }
        )
    return {"states": count, "by_lr": rows}


class MechanismProbe:
    """Step observer of ``MethodRun``: at the checkpoint rollout steps, records the on-policy claims before
    the first optimizer step of the rollout and the off-policy ones before the second."""

    log_name = "mechanism.jsonl"  # unused: the records are returned, not appended

    def __init__(self, checkpoints: List[int], settings: MechanismSettings, temperature: float):
        self.checkpoints, self.settings, self.temperature = set(checkpoints), settings, temperature
        self.records: Dict[int, Dict[str, Any]] = {}

    def before_step(self, run, rollout, advantages: Tensor, micro_indices: List[Tensor]) -> None:
        if run.step not in self.checkpoints:
            return
        window = torch.cat(micro_indices)
        batch = rollout.batch.select(window)
        slot = run.optimizer_steps % run.rl.mini_batches
        record = self.records.setdefault(run.step, {"step": run.step})
        with torch.random.fork_rng():
            if slot == 0:
                probe = OneStepProbe(run.model, batch, advantages[window], None, None, self.temperature)
                record["on_policy"] = on_policy_record(probe, self.settings)
            elif slot == 1:
                probe = OneStepProbe(
                    run.model,
                    batch,
                    advantages[window],
                    rollout.old_log_probs[window],
                    rollout.old_entropy[window],
                    self.temperature,
                )
                record["off_policy"] = off_policy_record(probe, self.settings)

    def after_step(self, run, rollout, advantages: Tensor, micro_indices: List[Tensor]) -> None:
        return None

    def take_row(self, step: int) -> None:
        return None


def measure_seed(job: Dict[str, Any]) -> Dict[str, Any]:
    """Worker: replay the demo's GRPO run of one seed up to the last checkpoint with the probe attached."""
    from .analyses.jobs import make_run
    from .io import read_json, write_json

    settings: MechanismSettings = job["settings"]
    path = Path(job["path"])
    if path.exists():
        saved = read_json(path)
        if saved.get("settings") == job["settings_dict"]:
            return saved
    run = make_run(job)
    checkpoints = settings.checkpoints(run.rl.steps)
    probe = MechanismProbe(checkpoints, settings, run.rl.temperature)
    run.step_observers.append(probe)
    while run.step <= max(checkpoints):
        run.train_step()
    result = {
        "seed": job["seed"],
        "settings": job["settings_dict"],
        "checkpoints": [probe.records[c] for c in checkpoints],
    }
    write_json(path, result)
    return result


def run_mechanism(ws, *, workers: int, settings: Optional[MechanismSettings] = None) -> Dict[int, Dict[str, Any]]:
    """seed -> mechanism record, one job per training seed (resumable: a finished seed is read back)."""
    import json

    from .analyses.jobs import run_jobs
    from .config import METHOD_SPECS

    settings = settings or MechanismSettings()
    settings_dict = json.loads(json.dumps(settings.to_dict()))
    folder = ws.output_dir / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [
        {
            "config": ws.config,
            "output_dir": str(ws.output_dir),
            "spec": METHOD_SPECS["grpo"],
            "run_dir": str(folder / f"grpo_seed{seed}"),
            "rl_overrides": {"seed": seed},
            "seed": seed,
            "settings": settings,
            "settings_dict": settings_dict,
            "path": str(folder / f"seed{seed}.json"),
        }
        for seed in ws.config.rl_seeds()
    ]
    return {int(r["seed"]): r for r in run_jobs(measure_seed, jobs, workers)}
