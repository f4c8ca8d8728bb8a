"""Entropy-change estimator check (STEER paper, validation of Omega at small scale).

For each sampled token t of a rollout of the start model, take ONE real SGD step on that token's
own clipped-surrogate loss (``PolicyLoss`` on a mask holding only t; ratio = 1 so no clipping), and
measure the true change of the full-vocabulary entropy at t's position (same prefix, before vs
after the step). Compare with the estimates made before the step:

* STEER's Omega_t (``openrlhf_steer.core.estimators.first_order_entropy_change``): predicted
  Delta H_t = -eta * Omega_t;
* the covariance estimate of Cui et al. (``covariance_entropy_change``, the centred product
  (A_t - mean A)(log p_t - mean log p) over the rollout's tokens): predicted Delta H_t = -eta * cov_t;
* for reference, the exact first-order change if the logits themselves were the parameters
  (tabular softmax): Delta H_t = -eta * A_t * [p (log p + H) - sum_v pi_v^2 (log pi_v + H)].

The model runs in float64 so that the measured changes are free of rounding noise, and each step
is undone before the next token. Tokens with A = 0 have no gradient and are skipped.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List

import torch
from tqdm import tqdm

from openrlhf_steer.core.advantages import compute_advantages
from openrlhf_steer.core.entropy import token_logprobs_and_entropy
from openrlhf_steer.core.estimators import covariance_entropy_change, first_order_entropy_change
from openrlhf_steer.core.loss import PolicyLoss
from openrlhf_steer.core.stats import scaled_agreement
from openrlhf_steer.methods import GroupInputs, LossConfig, LossInputs

from ..batch import completion_logits
from ..io import write_json
from ..models import load_policy
from ..rollout import collect_rollout
from ..task import sample_problems
from .common import analysis_dir, pyplot, save_figure


@dataclass
class EstimatorSettings:
    prompts: int = field(default=16, metadata={"help": "Prompts in the rollout whose tokens are probed."})
    samples_per_prompt: int = field(
        default=8, metadata={"help": "G samples per prompt (GRPO advantages need a group)."}
    )
    max_tokens: int = field(
        default=200,
        metadata={
            "help": "Tokens probed (each costs one backward + one forward), drawn with the seed among tokens "
            "with A != 0."
        },
    )
    sgd_lr: float = field(
        default=1e-6,
        metadata={
            "help": "eta of the single SGD step. Single-token gradients of the tiny model move its logits a "
            "lot (eta=1e-4 already changes some entropies by 0.3 nats), so the default is small; float64 keeps "
            "the changes far above rounding. The JSON reports the measured nonlinearity."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of the prompts, the samples and the token subset."})


def preset_settings(quick: bool, config) -> EstimatorSettings:
    """quick: 4 prompts x 4 samples, 12 tokens; else the defaults. Seeded by the demo's master seed."""
    if quick:
        return EstimatorSettings(prompts=4, samples_per_prompt=4, max_tokens=12, seed=config.seed)
    return EstimatorSettings(seed=config.seed)


def summary(result: Dict[str, Any]) -> str:
    e = result["estimators"]
    return (
        f"estimator ({result['num_tokens']} tokens): Pearson / Spearman / sign agreement: Omega "
        f"{e['omega']['pearson']:.3f} / {e['omega']['spearman']:.3f} / {e['omega']['sign_agreement']:.2f}, "
        f"covariance "
        f"{e['cov']['pearson']:.3f} / {e['cov']['spearman']:.3f} / {e['cov']['sign_agreement']:.2f}"
    )


def exact_logit_space_change(logits: torch.Tensor, label: int, advantage: float) -> float:
    """-dH/deta at eta=0 if the logits were the parameters: A * [p_a (log p_a + H) - sum_v p_v^2 (log p_v + H)].

    (Gradient ascent on A*log p_a moves logits by eta*A*(e_a - pi); dH/dz_v = -p_v (log p_v + H).)
    The returned value follows the sign convention of Omega: predicted Delta H = -eta * value.
    """
    log_pi = torch.log_softmax(logits.double(), dim=-1)
    pi = log_pi.exp()
    entropy = -(pi * log_pi).sum()
    centred = log_pi + entropy
    return float(advantage * (pi[label] * centred[label] - (pi * pi * centred).sum()))


def run(ws, settings: EstimatorSettings, progress: bool = True) -> Dict[str, Any]:
    model, tokenizer = load_policy(ws.start_dir)
    model = model.double().eval()
    rl = ws.config.rl
    torch.manual_seed(settings.seed)
    problems = sample_problems(ws.pool, settings.prompts, settings.seed, step=10_000)
    rollout = collect_rollout(
        model,
        tokenizer,
        ws.task,
        problems,
        samples_per_prompt=settings.samples_per_prompt,
        max_new_tokens=rl.max_new_tokens,
        temperature=rl.temperature,
    )
    mask = rollout.batch.action_mask.bool()
    group = GroupInputs(rewards=rollout.rewards, group_ids=rollout.group_ids, response_mask=rollout.batch.action_mask)
    advantages = compute_advantages(group).double()
    log_p, entropy = rollout.old_log_probs.double(), rollout.old_entropy.double()
    omega = first_order_entropy_change(log_p, log_p, entropy, advantages)
    cov = covariance_entropy_change(log_p, advantages, mask)

    candidates = [(int(b), int(t)) for b, t in ((mask & (advantages != 0)).nonzero().tolist())]
    rng = random.Random(settings.seed)
    if len(candidates) > settings.max_tokens:
        candidates = sorted(rng.sample(candidates, settings.max_tokens))
    if len(candidates) < 3:
        raise RuntimeError(
            f"only {len(candidates)} tokens with a nonzero advantage in the rollout; "
            "raise --prompts or use a start model whose groups have mixed rewards"
        )

    params = [p for p in model.parameters() if p.requires_grad]
    saved = [p.detach().clone() for p in params]
    loss_fn = PolicyLoss(LossConfig())
    eta = settings.sgd_lr
    records: List[Dict[str, float]] = []
    by_row: Dict[int, List[int]] = {}
    for b, t in candidates:
        by_row.setdefault(b, []).append(t)
    bar = tqdm(total=len(candidates), desc="estimator check", disable=not progress, leave=False)
    for row, cols in by_row.items():
        sub = rollout.batch.select(torch.tensor([row]))
        logits = completion_logits(model, sub)
        log_probs, before = token_logprobs_and_entropy(logits, sub.completion_ids)
        # All gradients first: the in-place SGD steps below would invalidate the retained graph.
        token_grads = []
        for col in cols:
            one_hot = torch.zeros_like(sub.action_mask)
            one_hot[0, col] = 1.0
            inputs = LossInputs(
                log_probs=log_probs,
                old_log_probs=log_probs.detach(),
                advantages=advantages[row : row + 1],
                action_mask=one_hot,
            )
            loss, _ = loss_fn(inputs)
            token_grads.append(torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True))
        for col, grads in zip(cols, token_grads):
            with torch.no_grad():
                for p, g in zip(params, grads):
                    if g is not None:
                        p.sub_(eta * g)
                _, after = token_logprobs_and_entropy(completion_logits(model, sub), sub.completion_ids)
                # Half the step from the same start: a first-order regime gives exactly half the change.
                for p, s, g in zip(params, saved, grads):
                    p.copy_(s)
                    if g is not None:
                        p.sub_(0.5 * eta * g)
                _, after_half = token_logprobs_and_entropy(completion_logits(model, sub), sub.completion_ids)
                for p, s in zip(params, saved):
                    p.copy_(s)
            records.append(
                {
                    "row": row,
                    "position": col,
                    "advantage": float(advantages[row, col]),
                    "prob": float(log_p[row, col].exp()),
                    "entropy": float(before[0, col]),
                    "omega": float(omega[row, col]),
                    "cov": float(cov[row, col]),
                    "exact_logit": exact_logit_space_change(
                        logits[0, col].detach(), int(sub.completion_ids[0, col]), float(advantages[row, col])
                    ),
                    "true_delta_entropy": float(after[0, col] - before[0, col]),
                    "true_delta_entropy_half_step": float(after_half[0, col] - before[0, col]),
                }
            )
            bar.update(1)
    bar.close()

    truth = [r["true_delta_entropy"] for r in records]
    estimates = {
        "omega": [-eta * r["omega"] for r in records],
        "cov": [-eta * r["cov"] for r in records],
        "exact_logit": [-eta * r["exact_logit"] for r in records],
    }
    result: Dict[str, Any] = {
        "analysis": "estimator",
        "what": "per-token true entropy change after one SGD step on that token's surrogate vs estimates made "
        "before it",
        "settings": asdict(settings),
        "num_tokens": len(records),
        "estimators": {name: scaled_agreement(values, truth) for name, values in estimates.items()},
        "true_delta_entropy_abs_mean": sum(abs(x) for x in truth) / len(truth),
        # sum|dH(eta) - 2 dH(eta/2)| / sum|dH(eta)|: ~0 when eta is small enough for a first-order comparison.
        "nonlinearity": sum(abs(r["true_delta_entropy"] - 2 * r["true_delta_entropy_half_step"]) for r in records)
        / max(sum(abs(r["true_delta_entropy"]) for r in records), 1e-300),
        "tokens": records,
    }
    om, cv = result["estimators"]["omega"], result["estimators"]["cov"]
    # The paper's claim, criterion by criterion: does Omega track the true change better than Cov?
    result["omega_beats_cov"] = {
        "pearson": _finite(om["pearson"]) and _finite(cv["pearson"]) and om["pearson"] > cv["pearson"],
        "spearman": _finite(om["spearman"]) and _finite(cv["spearman"]) and om["spearman"] > cv["spearman"],
        "mse_scaled": om["mse_scaled"] < cv["mse_scaled"],
        "sign_agreement": _finite(om["sign_agreement"])
        and _finite(cv["sign_agreement"])
        and om["sign_agreement"] > cv["sign_agreement"],
    }
    out = analysis_dir(ws)
    write_json(out / "estimator.json", result)
    plot(result, estimates, truth, out / "estimator.png")
    return result


def _finite(x) -> bool:
    return x is not None and isinstance(x, float) and math.isfinite(x)


def symlog_ticks(linthresh: float, largest: float) -> List[float]:
    """0 and +-10^k every second decade from the first power of ten above ``linthresh`` to ``largest``.
    Ticks inside the linear band would print on top of the 0 label, so there are none."""
    first = math.ceil(math.log10(linthresh))
    last = max(first, math.ceil(math.log10(max(largest, linthresh))))
    powers = [10.0**k for k in range(last, first - 1, -2)]
    return sorted([0.0] + powers + [-v for v in powers])


def plot(result: Dict[str, Any], estimates: Dict[str, List[float]], truth: List[float], path) -> None:
    plt = pyplot()
    import matplotlib.ticker

    titles = {"omega": "STEER Omega", "cov": "covariance (Cui et al.)", "exact_logit": "exact first order, logit space"}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    for ax, name in zip(axes, ["omega", "cov", "exact_logit"]):
        stats = result["estimators"][name]
        x = [v * stats["scale_fit"] for v in estimates[name]]
        ax.scatter(x, truth, s=9, alpha=0.6)
        lo, hi = min(min(x), min(truth)), max(max(x), max(truth))
        ax.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8, linestyle="--")
        ax.set_title(
            f"{titles[name]}\nPearson {stats['pearson']:.3f}  Spearman {stats['spearman']:.3f}  "
            f"scaled MSE {stats['mse_scaled']:.2e}",
            fontsize=9,
        )
        # The changes are heavy-tailed: a symmetric log scale keeps both the bulk and the tails readable.
        # Four decades below the largest change; smaller values sit in the linear band around 0.
        linthresh = max(max(abs(v) for v in truth) * 1e-4, 1e-300)
        ticks = symlog_ticks(linthresh, max(abs(lo), abs(hi)))
        for axis in ("x", "y"):
            getattr(ax, f"set_{axis}scale")("symlog", linthresh=linthresh)
            getattr(ax, f"{axis}axis").set_major_locator(matplotlib.ticker.FixedLocator(ticks))
        ax.set_xlabel("predicted entropy change (x best scale, symlog)")
        ax.set_ylabel("true entropy change after one SGD step (symlog)")
        ax.grid(alpha=0.3)
    fig.suptitle(
        f"Per-token entropy change: estimate vs measurement ({result['num_tokens']} tokens, "
        f"eta={result['settings']['sgd_lr']}, float64)",
        fontsize=10,
    )
    fig.tight_layout()
    save_figure(fig, path)
