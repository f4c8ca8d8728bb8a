"""STEER: Stabilizing Token-level Entropy-changE via Reweighting (Hao et al., arXiv 2510.10150).

Each valid token gets a detached loss weight that shrinks with |Omega_t|, the first-order estimate of
the entropy change its update causes (``openrlhf_steer.core.estimators.first_order_entropy_change``).
That function returns the authors' code's ``metric``, which is minus the paper's Omega (Eq. 7 / 9:
Omega = -eta * I_clip * r A (1 - p)^2 (log p + H), > 0 raises the entropy) divided by eta. Only the
signed binary ranking and the experimental asymmetric mode read the sign; they use the paper's sign.

    exp     (default): k = -ln(lambda_min) / max(max|Omega|, omega_floor);  w = clamp(exp(-k |Omega|), lambda_min, 1)
    linear:            |Omega| in [min, max] maps linearly to [lambda_max, lambda_min] (midpoint if max == min)
    binary  (paper ablation, not in the code): the top ``binary_top_fraction`` of tokens get lambda_min, others 1,
            ranked by |Omega| (``binary_rank=abs``, default: the statistic of Eq. 10 and of the linear mapping,
            which Sec. 5.2 also writes as plain Omega) or by the paper's signed Omega, literally as Sec. 5.2
            writes the rule: lambda_min where Omega > Q_0.8(Omega), i.e. the 20% most entropy-raising tokens
            (``binary_rank=signed``)

``entropy_control_mode=asymmetric`` is an experimental variant, not the authors' method: no commit of
their repository and no line of the paper has it (its source: see ``SteerConfig``). It maps the
paper-signed m = Omega (m > 0 raises entropy) instead of |Omega|: exp w = clamp(exp(k m), lambda_min,
lambda_max) with k = -ln(lambda_min) / max(max|m|, omega_floor); linear ascending from lambda_min at
min m to lambda_max at max m. With lambda_max = 1 the exp mapping down-weights only entropy-lowering
tokens (m < 0); the linear mapping down-weights every token below max m, entropy-raising ones included
(less than the entropy-lowering ones).

max/min/quantile are taken over the valid tokens of one loss call (``stat_scope=micro_batch``, the
authors' code) or over the optimizer-step window (``mini_batch``, the paper's wording). The weights
multiply the final per-token clipped loss; the token-mean denominator is unchanged. Under data
parallelism the window's max/min are all-reduced and the binary quantile's ranked values gathered,
so every rank uses the statistic of the global window.
"""

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from openrlhf_steer.core.estimators import first_order_entropy_change
from openrlhf_steer.core.types import LossInputs
from openrlhf_steer.methods.registry import register_method
from openrlhf_steer.methods.window import WindowStatsMethod
from openrlhf_steer.methods.base import STAT_SCOPES, MethodConfig, check_choice, check_range
from openrlhf_steer.methods.sampling import linear_quantile, linear_quantile_tensor

Tensor = torch.Tensor

STEER_MAPPINGS = ("exp", "linear", "binary")


def paper_signed_omega(omega: Tensor) -> Tensor:
    """The paper's Omega (Eq. 7; > 0 raises the entropy) up to the positive factor eta, from the code's metric."""
    return -omega


# Binary ranking -> the statistic ranked, from the code's signed metric (first_order_entropy_change).
BINARY_RANK_STATISTICS: Dict[str, Callable[[Tensor], Tensor]] = {
    "abs": torch.abs,
    "signed": paper_signed_omega,
}
BINARY_RANKS = tuple(BINARY_RANK_STATISTICS)
CONTROL_MODES = ("symmetric", "asymmetric")
PAPER = "STEER, Hao et al., arXiv 2510.10150"


def _validate_mapping_args(
    lambda_min: float, lambda_max: float, mapping: str, omega_floor: float, binary_top_fraction: float
) -> None:
    if mapping not in STEER_MAPPINGS:
        raise ValueError(f"mapping={mapping!r} is unknown: choose one of {list(STEER_MAPPINGS)}")
    if not (0.0 < lambda_min <= 1.0):
        raise ValueError(f"lambda_min={lambda_min} is out of range: use 0 < lambda_min <= 1 (code default 0.8)")
    if lambda_max < lambda_min:
        raise ValueError(
            f"lambda_max={lambda_max} must be >= lambda_min={lambda_min} (1.0 for exp, 1.2 in the linear scripts)"
        )
    if not omega_floor > 0:
        raise ValueError(f"omega_floor={omega_floor} must be > 0 (code default 0.02)")
    if not (0.0 < binary_top_fraction <= 1.0):
        raise ValueError(f"binary_top_fraction={binary_top_fraction} must be in (0, 1] (paper ablation 0.2)")


# The weight distribution STEER logs per loss call (issue 22): recorded keys -> quantile of the valid weights.
WEIGHT_QUANTILES: Dict[str, float] = {"weight_p10": 0.1, "weight_median": 0.5}
# Weights below this count as down-weighted in ``weight_frac_below_0.95``: a weight of 0.998 (the exp mapping
# when one outlier sets max|Omega|) leaves the update as GRPO's.
WEIGHT_BELOW = 0.95
WEIGHT_BELOW_KEY = f"weight_frac_below_{WEIGHT_BELOW}"


def masked_linear_quantiles(values: Tensor, mask: Tensor, quantiles: Sequence[float]) -> Tensor:
    """Quantiles of ``values[mask]`` with torch.quantile's linear interpolation, as a float64 tensor
    [len(quantiles)] on the values' device, with no host read: masked positions sort to +inf and the
    order statistics are gathered at indices computed from the valid count as tensors (no boolean
    indexing). NaN where no position is valid."""
    flat = values.detach().reshape(-1).to(torch.float64)
    valid = mask.reshape(-1).bool()
    if flat.numel() == 0:
        return torch.full((len(quantiles),), math.nan, dtype=torch.float64, device=flat.device)
    ordered = torch.where(valid, flat, torch.full_like(flat, math.inf)).sort().values
    count = valid.sum()
    last = (count - 1).clamp(min=0)
    # the quantiles enter as Python scalars: a host-to-device copy of them would wait for the stream on a GPU
    position = torch.stack([last.to(torch.float64) * float(q) for q in quantiles])
    lower = position.floor().long()
    upper = torch.minimum(lower + 1, last)
    low_value, high_value = ordered.index_select(0, lower), ordered.index_select(0, upper)
    spread = torch.where(upper > lower, high_value - low_value, torch.zeros_like(low_value))
    result = low_value + (position - lower.to(torch.float64)) * spread
    return torch.where(count > 0, result, torch.full_like(result, math.nan))


def weight_distribution(weights: Tensor, mask: Tensor) -> Dict[str, Tensor]:
    """STEER's weight distribution over the valid tokens of one loss call, as 0-dim float64 device tensors
    (no host read): ``weight_median``, ``weight_p10`` (torch.quantile's linear interpolation) and
    ``weight_frac_below_0.95``, the share of valid tokens whose weight is below 0.95. With no valid token
    the quantiles are 1 and the share 0 (the neutral values ``weights/*`` also use), so a token-weighted
    window mean stays finite."""
    valid = mask.bool()
    count = valid.sum()
    quantiles = masked_linear_quantiles(weights, valid, list(WEIGHT_QUANTILES.values()))
    quantiles = torch.where(count > 0, quantiles, torch.ones_like(quantiles))
    below = ((weights.detach() < WEIGHT_BELOW) & valid).sum().to(torch.float64) / count.clamp(min=1)
    out = {key: quantiles[i] for i, key in enumerate(WEIGHT_QUANTILES)}
    out[WEIGHT_BELOW_KEY] = below
    return out


def binary_threshold(ranked_values: Tensor, binary_top_fraction: float) -> float:
    """The (1 - fraction) quantile of the valid ranked values (|Omega| or Omega, 1-D); 0.0 for none."""
    return linear_quantile(ranked_values, 1.0 - binary_top_fraction) if ranked_values.numel() else 0.0


def binary_selection(ranked: Tensor, threshold: float, binary_rank: str = "abs") -> Tensor:
    """Tokens that get lambda_min in the binary mapping, from the ranked statistic (``BINARY_RANK_STATISTICS``).

    abs: |Omega| >= Q and |Omega| > 0 (a zero change is never down-weighted); signed: Omega > Q with the
    paper's sign, the literal rule of STEER Sec. 5.2 (lambda_min where Omega > Q_0.8(Omega)).
    """
    if binary_rank == "signed":
        return ranked > threshold
    return (ranked >= threshold) & (ranked > 0)


def omega_statistics(
    mapped: Tensor,
    mask: Tensor,
    binary_top_fraction: float = 0.2,
    with_threshold: bool = True,
    ranked: Optional[Tensor] = None,
) -> Dict[str, float]:
    """max, min of the mapped statistic (|Omega|; the paper-signed Omega in the asymmetric mode) and (binary
    mapping) the (1 - fraction) quantile of ``ranked`` (default the mapped statistic) over the valid tokens."""
    valid = mask.bool()
    values = mapped[valid].detach().double()
    if values.numel() == 0:
        return {"max": 0.0, "min": 0.0, "threshold": 0.0, "count": 0.0}
    ranked_values = values if ranked is None else ranked[valid].detach().double()
    read = [values.max(), values.min()]
    if with_threshold:  # binary_threshold's quantile, read together with max and min
        read.append(linear_quantile_tensor(ranked_values, 1.0 - binary_top_fraction))
    host = torch.stack(read).tolist()  # one host read for all of them
    return {
        "max": host[0],
        "min": host[1],
        "threshold": host[2] if with_threshold else 0.0,
        "count": float(values.numel()),
    }


def omega_to_weights(
    omega_abs: Tensor,
    mask: Tensor,
    stats: Mapping[str, float],
    *,
    mapping: str = "exp",
    lambda_min: float = 0.8,
    lambda_max: float = 1.0,
    omega_floor: float = 0.02,
    omega: Optional[Tensor] = None,
    binary_rank: str = "abs",
) -> Tensor:
    """Map |Omega| [B, T] to weights with the given statistics; 0 on masked positions.

    The binary mapping with ``binary_rank=signed`` also needs ``omega``, the code's signed metric
    (``first_order_entropy_change``); it ranks the paper's sign of it.
    """
    maskf = mask.to(omega_abs.dtype)
    m_max, m_min = stats["max"], stats["min"]
    if stats.get("count", 1.0) == 0:
        return torch.zeros_like(omega_abs)
    if m_max <= 0.0:
        # Every valid |Omega| is 0 (e.g. all advantages 0): a defined neutral result for every mapping.
        return maskf.clone()
    if mapping == "exp":
        k = -math.log(lambda_min) / max(m_max, omega_floor)
        weights = torch.exp(-k * omega_abs).clamp(lambda_min, 1.0)
    elif mapping == "linear":
        if m_max > m_min:
            weights = lambda_max - (omega_abs - m_min) * (lambda_max - lambda_min) / (m_max - m_min)
        else:
            weights = torch.full_like(omega_abs, (lambda_min + lambda_max) / 2.0)
        weights = weights.clamp(lambda_min, lambda_max)
    else:  # binary
        if binary_rank == "signed" and omega is None:
            raise ValueError("omega_to_weights: binary_rank=signed needs the signed omega")
        ranked = omega_abs if binary_rank == "abs" else BINARY_RANK_STATISTICS[binary_rank](omega)
        selected = binary_selection(ranked, stats["threshold"], binary_rank)
        weights = torch.where(selected, torch.full_like(omega_abs, lambda_min), torch.ones_like(omega_abs))
    return weights * maskf


def asymmetric_weights(
    metric: Tensor,
    mask: Tensor,
    stats: Mapping[str, float],
    *,
    mapping: str = "exp",
    lambda_min: float = 0.8,
    lambda_max: float = 1.0,
    omega_floor: float = 0.02,
) -> Tensor:
    """The experimental asymmetric mode: weights of the paper-signed m = Omega [B, T] (m > 0 raises entropy);
    0 on masked positions.

    ``stats`` holds max and min of m over the valid tokens. exp: clamp(exp(k m), lambda_min, lambda_max),
    k = -ln(lambda_min) / max(max|m|, omega_floor); linear: lambda_min + (m - min)(lambda_max - lambda_min)
    / (max - min), the midpoint when max == min, clamped to [lambda_min, lambda_max].
    """
    maskf = mask.to(metric.dtype)
    if stats.get("count", 1.0) == 0:
        return torch.zeros_like(metric)
    if mapping not in ("exp", "linear"):
        raise ValueError(f"entropy_control_mode=asymmetric has exp and linear mappings only, got {mapping!r}")
    m_max, m_min = stats["max"], stats["min"]
    if mapping == "exp":
        k = -math.log(lambda_min) / max(abs(m_max), abs(m_min), omega_floor)
        weights = torch.exp(k * metric)
    elif m_max > m_min:
        weights = lambda_min + (metric - m_min) * (lambda_max - lambda_min) / (m_max - m_min)
    else:
        weights = torch.full_like(metric, (lambda_min + lambda_max) / 2.0)
    return weights.clamp(lambda_min, lambda_max) * maskf


def steer_weights(
    log_probs: Tensor,
    old_log_probs: Tensor,
    entropy: Tensor,
    advantages: Tensor,
    action_mask: Tensor,
    *,
    lambda_min: float = 0.8,
    lambda_max: float = 1.0,
    mapping: str = "exp",
    prob_power: int = 2,
    omega_floor: float = 0.02,
    binary_top_fraction: float = 0.2,
    binary_rank: str = "abs",
    entropy_control_mode: str = "symmetric",
    window: Optional[Mapping[str, float]] = None,
) -> Tuple[Tensor, Tensor]:
    """STEER token weights and Omega, both [B, T] and detached (the authors' ``compute_token_weights``).

    ``Omega = A / p_old * p (1 - p)^prob_power * (log p + H)``; see the module docstring for the
    mappings. ``window`` optionally gives precomputed ``max`` / ``min`` / ``threshold`` of |Omega|
    over a larger set (mini-batch scope). Weights are 0 on masked positions. The returned Omega is the
    code's signed metric (minus the paper's sign, see the module docstring).
    """
    _validate_mapping_args(lambda_min, lambda_max, mapping, omega_floor, binary_top_fraction)
    if binary_rank not in BINARY_RANKS:
        raise ValueError(f"binary_rank={binary_rank!r} is unknown: choose one of {list(BINARY_RANKS)}")
    if entropy_control_mode not in CONTROL_MODES:
        raise ValueError(
            f"entropy_control_mode={entropy_control_mode!r} is unknown: choose one of {list(CONTROL_MODES)}"
        )
    shapes = {
        "log_probs": log_probs,
        "old_log_probs": old_log_probs,
        "entropy": entropy,
        "advantages": advantages,
        "action_mask": action_mask,
    }
    for name, tensor in shapes.items():
        if tensor.shape != log_probs.shape:
            raise ValueError(
                f"steer_weights: {name} has shape {tuple(tensor.shape)}, expected {tuple(log_probs.shape)} like "
                f"log_probs"
            )
    mask = action_mask.bool()
    omega = first_order_entropy_change(log_probs, old_log_probs, entropy, advantages, prob_power=prob_power)
    omega = torch.where(mask, omega, torch.zeros_like(omega))
    weights, _ = weights_from_omega(
        omega,
        mask,
        window,
        lambda_min=lambda_min,
        lambda_max=lambda_max,
        mapping=mapping,
        omega_floor=omega_floor,
        binary_top_fraction=binary_top_fraction,
        binary_rank=binary_rank,
        entropy_control_mode=entropy_control_mode,
    )
    return weights, omega


def weights_from_omega(
    omega: Tensor,
    mask: Tensor,
    window: Optional[Mapping[str, float]] = None,
    *,
    lambda_min: float = 0.8,
    lambda_max: float = 1.0,
    mapping: str = "exp",
    omega_floor: float = 0.02,
    binary_top_fraction: float = 0.2,
    binary_rank: str = "abs",
    entropy_control_mode: str = "symmetric",
) -> Tuple[Tensor, Dict[str, float]]:
    """STEER's weights [B, T] of the code's signed Omega (0 on masked positions) and the statistics they used:
    the one mapping that ``steer_weights`` and ``Steer.token_weights`` share.

    ``window`` gives the statistics over a larger set (mini-batch scope); without it they are taken over
    ``omega``'s valid tokens.
    """
    mask = mask.bool()
    if entropy_control_mode == "asymmetric":
        metric = paper_signed_omega(omega)
        stats = dict(window) if window is not None else omega_statistics(metric, mask, with_threshold=False)
        weights = asymmetric_weights(
            metric, mask, stats, mapping=mapping, lambda_min=lambda_min, lambda_max=lambda_max, omega_floor=omega_floor
        )
        return weights, stats
    omega_abs = omega.abs()
    if window is not None:
        stats = dict(window)
    else:
        ranked = BINARY_RANK_STATISTICS[binary_rank](omega) if binary_rank == "signed" else None
        stats = omega_statistics(
            omega_abs, mask, binary_top_fraction, with_threshold=mapping == "binary", ranked=ranked
        )
    weights = omega_to_weights(
        omega_abs,
        mask,
        stats,
        mapping=mapping,
        lambda_min=lambda_min,
        lambda_max=lambda_max,
        omega_floor=omega_floor,
        omega=omega,
        binary_rank=binary_rank,
    )
    return weights, stats


@dataclass
class SteerConfig(MethodConfig):
    lambda_min: float = field(
        default=0.8,
        metadata={
            "help": f"Smallest token weight lambda_min ({PAPER}; scripts 0.8, paper range 0.6-0.8; default 0.8)."
        },
    )
    lambda_max: float = field(
        default=1.0,
        metadata={
            "help": f"Largest weight, used by the linear mapping only ({PAPER}; linear scripts 1.2; default 1.0)."
        },
    )
    mapping: str = field(
        default="exp",
        metadata={
            "help": f"exp | linear | binary: |Omega| -> weight ({PAPER}; code default in scripts exp; binary = paper "
            f"ablation, top fraction gets lambda_min; default exp)."
        },
    )
    prob_power: int = field(
        default=2,
        metadata={
            "help": f"Exponent of (1 - p) in Omega: 2 = paper and first code release, 1 = later .py ({PAPER}; default "
            f"2)."
        },
    )
    omega_floor: float = field(
        default=0.02,
        metadata={
            "help": f"Floor of max|Omega| in the exp mapping's k = -ln(lambda_min)/max(max|Omega|, floor) ({PAPER} "
            f"code; default 0.02)."
        },
    )
    binary_top_fraction: float = field(
        default=0.2,
        metadata={
            "help": f"Fraction of valid tokens ranked highest (see binary_rank) that get lambda_min in the binary "
            f"mapping ({PAPER} Sec. 5.2 ablation: Q_0.8, the top 20%; default 0.2)."
        },
    )
    entropy_control_mode: str = field(
        default="symmetric",
        metadata={
            "help": "symmetric: weights shrink with |Omega| (paper Sec. 4, Eq. 10; authors' code b31df71). asymmetric: "
            "an experimental variant, not the authors' method (no commit of zz-haooo/STEER and no line of the paper "
            "has it); its source is the third-party repository Parkdev22222/entropy_collapse "
            "(tests/reference_steer.py, commit 17dc2b6), which attributes it to an upstream revision we could not "
            "find. Weights follow the "
            "paper-signed Omega m (m > 0 raises entropy): exp clamp(exp(k m), lambda_min, lambda_max), which with "
            "lambda_max 1 down-weights only entropy-lowering tokens, or linear ascending from lambda_min at min m to "
            "lambda_max at max m, which down-weights entropy-raising tokens too (less) (default symmetric)."
        },
    )
    binary_rank: str = field(
        default="abs",
        metadata={
            "help": f"Binary mapping's ranking: abs = |Omega|, the statistic of Eq. 10 and of the code's linear "
            f"mapping, which Sec. 5.2 writes as plain Omega in the same paragraph (down-weights the largest entropy "
            f"changes of either sign); signed = the paper's signed Omega (Eq. 7: > 0 raises entropy), the rule as "
            f"Sec. 5.2 literally writes it: lambda_min where Omega > Q_0.8(Omega), the most entropy-raising tokens "
            f"({PAPER} Sec. 5.2, Table 2) (default abs)."
        },
    )
    entropy_source: str = field(
        default="old",
        metadata={
            "help": f"Entropy H in Omega: old = rollout policy (authors' code), current = the training forward "
            f"({PAPER}; default old)."
        },
    )
    stat_scope: str = field(
        default="micro_batch",
        metadata={
            "help": f"Set over which max/min/quantile of |Omega| are taken: micro_batch (authors' code, per GPU) or "
            f"mini_batch (optimizer-step window, paper wording) ({PAPER}; default micro_batch)."
        },
    )

    def validate(self) -> None:
        check_choice(self, "mapping", STEER_MAPPINGS)
        check_range(self, "lambda_min", 0.0, 1.0, low_open=True, hint="code default 0.8")
        check_range(
            self, "lambda_max", self.lambda_min, None, hint="lambda_max >= lambda_min; 1.2 in the linear scripts"
        )
        check_choice(self, "prob_power", (1, 2))
        check_range(self, "omega_floor", 0.0, None, low_open=True, hint="code default 0.02")
        check_range(self, "binary_top_fraction", 0.0, 1.0, low_open=True, hint="paper ablation 0.2")
        check_choice(self, "binary_rank", BINARY_RANKS)
        check_choice(self, "entropy_control_mode", CONTROL_MODES)
        if self.entropy_control_mode == "asymmetric" and self.mapping == "binary":
            raise ValueError(
                "SteerConfig.entropy_control_mode=asymmetric has exp and linear mappings only "
                "(the authors' code has no binary mapping); use mapping exp or linear"
            )
        check_choice(self, "entropy_source", ("old", "current"))
        check_choice(self, "stat_scope", STAT_SCOPES)


@register_method
class Steer(WindowStatsMethod):
    """STEER token reweighting by the estimated entropy change |Omega| (hook b).

    Logged per loss call (``method/<key>``): ``omega_abs_max``, ``omega_abs_mean`` and the weight
    distribution of :func:`weight_distribution` (``weight_median``, ``weight_p10``,
    ``weight_frac_below_0.95``). A window's (optimizer step's) value of each of the last three is the
    token-weighted mean of its micro-batches' values (``core.metrics.reduction_of``), over the data-parallel
    ranks too: exact for the share below 0.95, and for the median and 10th percentile the token-weighted
    mean of per-micro-batch quantiles, not the quantile of the pooled window (a mean of medians is not a
    median). With the micro-batch scope, the authors' code, each micro-batch is also where the weights' own
    max|Omega| is taken.
    """

    name = "steer"
    config_cls = SteerConfig
    paper = PAPER

    def _omega(self, inputs: LossInputs) -> Tensor:
        """Signed Omega, 0 on masked positions."""
        omega = first_order_entropy_change(
            inputs.log_probs,
            inputs.old_log_probs,
            self.source_entropy(inputs),
            inputs.advantages,
            prob_power=self.config.prob_power,
        )
        return torch.where(inputs.action_mask.bool(), omega, torch.zeros_like(omega))

    def _omega_abs(self, inputs: LossInputs) -> Tensor:
        return self._omega(inputs).abs()

    @property
    def _asymmetric(self) -> bool:
        return self.config.entropy_control_mode == "asymmetric"

    def _mapped(self, omega: Tensor) -> Tensor:
        """The statistic the exp/linear mappings read: |Omega|, or the paper-signed Omega (m > 0 raises entropy)
        in the experimental asymmetric mode."""
        return paper_signed_omega(omega) if self._asymmetric else omega.abs()

    def _ranked(self, omega: Tensor) -> Tensor:
        """The binary mapping's ranked statistic (``BINARY_RANK_STATISTICS``) of the code's signed metric."""
        return BINARY_RANK_STATISTICS[self.config.binary_rank](omega)

    def _window_values_of(self, inputs_list: List[LossInputs], statistic: Callable[[Tensor], Tensor]) -> Tensor:
        """Valid-token values of ``statistic(omega)`` over the window."""
        values = []
        for x in inputs_list:
            chosen = statistic(self._omega(x))
            values.append(chosen[x.action_mask.bool()].detach().reshape(-1).double())
        return torch.cat(values) if values else torch.zeros(0, dtype=torch.float64)

    @property
    def _ranked_key(self) -> str:
        """Window-values key of the binary mapping's ranked statistic (steer/omega: the paper-signed Omega)."""
        return "steer/omega" if self.config.binary_rank == "signed" else "steer/omega_abs"

    def window_values(self, inputs_list: List[LossInputs]) -> Dict[str, Tensor]:
        # Only the binary mapping needs a quantile; max/min/count are all-reduced instead.
        if self.config.mapping != "binary":
            return {}
        return {self._ranked_key: self._window_values_of(inputs_list, self._ranked)}

    def window_stats_from_values(self, values: Mapping[str, Tensor]) -> Dict[str, Any]:
        if self._ranked_key not in values:
            return {}
        return {"steer/threshold": binary_threshold(values[self._ranked_key].double(), self.config.binary_top_fraction)}

    def window_stats(self, inputs_list: List[LossInputs]) -> Dict[str, Any]:
        flat = self._window_values_of(inputs_list, self._mapped)
        stats = omega_statistics(flat, torch.ones_like(flat, dtype=torch.bool), with_threshold=False)
        stats = {f"steer/{k}": v for k, v in stats.items()}
        # The threshold from the same function the data-parallel gather uses: bit-identical results.
        stats.update(self.window_stats_from_values(self.window_values(inputs_list)))
        return stats

    def window_stats_reduction(self) -> Dict[str, str]:
        # The binary threshold (a quantile) is gathered instead (window_values).
        return {"steer/max": "max", "steer/min": "min", "steer/count": "sum"}

    def token_weights(self, inputs: LossInputs) -> Tensor:
        c = self.config
        mask = inputs.action_mask.bool()
        omega = self._omega(inputs)
        omega_abs = omega.abs()
        window = None
        if self.needs_window_stats:
            try:
                window = {k: inputs.window_stats[f"steer/{k}"] for k in ("max", "min", "threshold", "count")}
            except KeyError:
                raise ValueError(
                    "steer with stat_scope=mini_batch needs LossInputs.window_stats from method.window_stats(...) "
                    "over the optimizer-step window; fix the adapter or use stat_scope=micro_batch"
                ) from None
        weights, stats = weights_from_omega(
            omega,
            mask,
            window,
            lambda_min=c.lambda_min,
            lambda_max=c.lambda_max,
            mapping=c.mapping,
            omega_floor=c.omega_floor,
            binary_top_fraction=c.binary_top_fraction,
            binary_rank=c.binary_rank,
            entropy_control_mode=c.entropy_control_mode,
        )
        abs_max = max(abs(stats["max"]), abs(stats["min"])) if self._asymmetric else stats["max"]
        valid = mask.to(omega_abs.dtype)  # mean over the valid tokens (0 if none), kept on the device
        self._record(
            omega_abs_max=abs_max,
            omega_abs_mean=torch.where(mask, omega_abs, torch.zeros_like(omega_abs)).sum() / valid.sum().clamp(min=1.0),
            # when max|Omega| is an outlier the exp weights are all ~1 and STEER is GRPO (issue 22)
            **weight_distribution(weights, mask),
        )
        return weights
