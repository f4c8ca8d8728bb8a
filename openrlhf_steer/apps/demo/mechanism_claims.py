"""The mechanism claims: each a statistic of one update from the same state (``mechanism``), per seed.

Per seed, a statistic is the mean over the GRPO checkpoints where it is defined (a quadrant with no
token at a checkpoint is left out there); the interval is mean +- 2 SE over the seeds and the verdict
says whether the whole interval lies on the paper's side. Thresholds are fixed here before the full run:
a sign (0) for every direction claim, [0.9, 1.1] for Theorem 1's ratio [assumed tolerance].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional

from .claims_stats import claim_header, mean_interval, verdict
from .mechanism_math import QUADRANT_SIGN

Mechanism = Mapping[int, Mapping[str, Any]]  # seed -> mechanism record (mechanism.measure_seed)
RATIO_BAND = (0.9, 1.1)  # Theorem 1: Omega equals the measured change to first order [assumed tolerance]
STEER_D1 = "STEER Sec. 3.2.1, Fig. 4"


@dataclass(frozen=True)
class MechanismClaim:
    id: str
    claim: str
    paper_ref: str
    statistic: str
    per_checkpoint: Callable[[Mapping[str, Any]], Optional[float]]  # checkpoint record -> value (None: undefined)
    above: Optional[float] = None
    below: Optional[float] = None
    level: str = "mechanism"


def _on(record: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
    return record.get("on_policy")


def subset_change(name: str) -> Callable[[Mapping[str, Any]], Optional[float]]:
    """Mean Delta H / eta over the mini-batch after a step on ``name``'s tokens only (None if it has none)."""

    def value(record):
        subset = (_on(record) or {}).get("subsets", {}).get(name)
        return None if not subset or subset["tokens"] == 0 else subset["mean_dh_per_lr"]

    return value


def eps_effect(variant: str) -> Callable[[Mapping[str, Any]], Optional[float]]:
    """Mean Delta H / eta of the step with the higher eps minus that with the lower, same off-policy state."""

    def value(record):
        off = record.get("off_policy")
        return None if not off else off[variant]["mean_dh_per_lr"] - off["base"]["mean_dh_per_lr"]

    return value


def tail_gap(steer: str) -> Callable[[Mapping[str, Any]], Optional[float]]:
    """q90 |Delta H_t| / eta of GRPO's step minus STEER's at the same update norm."""

    def value(record):
        norm = (_on(record) or {}).get("equal_norm")
        return None if not norm else norm["grpo"]["tail_per_lr"] - norm[steer]["tail_per_lr"]

    return value


def tabular_ratio(record) -> Optional[float]:
    """Measured Delta H over Omega (least squares over the table's states) at the smallest step."""
    tabular = (_on(record) or {}).get("tabular")
    if not tabular:
        return None
    return min(tabular["by_lr"], key=lambda row: row["lr"])["ratio_to_omega"]


def _direction(sign: int) -> str:
    return "held if < 0" if sign < 0 else "held if > 0"


MECHANISM_CLAIMS: List[MechanismClaim] = [
    *[
        MechanismClaim(
            f"M1-{q}",
            f"A step on quadrant {q}'s tokens alone {'lowers' if QUADRANT_SIGN[q] < 0 else 'raises'} entropy",
            STEER_D1,
            f"mean Delta H / eta over the mini-batch, one plain GD step on quadrant {q} only; "
            + _direction(QUADRANT_SIGN[q]),
            subset_change(q),
            **({"below": 0.0} if QUADRANT_SIGN[q] < 0 else {"above": 0.0}),
        )
        for q in ("I", "II", "III", "IV")
    ],
    MechanismClaim(
        "M2-pos",
        "A step on the A > 0 tokens alone lowers entropy",
        "Pos-Adv Sec. 7.1 (Eqs. 3-4, App. E.1)",
        "mean Delta H / eta over the mini-batch, one plain GD step on A > 0 only; held if < 0",
        subset_change("positive"),
        below=0.0,
    ),
    MechanismClaim(
        "M2-neg",
        "A step on the A < 0 tokens alone raises entropy",
        "Pos-Adv Sec. 7.1 (Eqs. 3-4, App. E.1)",
        "mean Delta H / eta over the mini-batch, one plain GD step on A < 0 only; held if > 0",
        subset_change("negative"),
        above=0.0,
    ),
    MechanismClaim(
        "M3-high",
        "A higher eps_high raises the step's entropy change",
        "STEER Sec. 3.2.2",
        "Delta(mean Delta H / eta), eps_high 0.28 - 0.2, same off-policy state; held if > 0",
        eps_effect("high"),
        above=0.0,
    ),
    MechanismClaim(
        "M3-low",
        "A higher eps_low lowers the step's entropy change",
        "STEER Sec. 3.2.2",
        "Delta(mean Delta H / eta), eps_low 0.3 - 0.2, same off-policy state; held if < 0",
        eps_effect("low"),
        below=0.0,
    ),
    *[
        MechanismClaim(
            f"M4-{mapping}",
            f"STEER ({mapping} mapping) changes per-token entropy less than GRPO at the same update norm",
            "STEER Sec. 4 (Eq. 10)" + (", authors' run_exp.sh" if mapping == "exp" else ", Sec. 5.2"),
            f"q90 |Delta H_t| / eta, GRPO - STEER-{mapping}, STEER's step rescaled to GRPO's norm; held if > 0",
            tail_gap(f"steer_{mapping}"),
            above=0.0,
        )
        for mapping in ("exp", "binary")
    ],
    MechanismClaim(
        "M5",
        "In its exact setting (a logit table), Omega equals the measured entropy change to first order",
        "STEER Theorem 1, Assumption 1, App. C",
        f"least-squares ratio measured Delta H / Omega over the table's states at the smallest step; held if "
        f"inside {list(RATIO_BAND)}",
        tabular_ratio,
        above=RATIO_BAND[0],
        below=RATIO_BAND[1],
    ),
]


def per_seed_values(claim: MechanismClaim, mechanism: Mechanism) -> List[Optional[float]]:
    values = []
    for seed in sorted(mechanism):
        defined = [v for v in (claim.per_checkpoint(r) for r in mechanism[seed]["checkpoints"]) if v is not None]
        values.append(sum(defined) / len(defined) if defined else None)
    return values


def evaluate_mechanism_claims(mechanism: Optional[Mechanism], min_seeds: int = 2) -> List[Dict[str, Any]]:
    rows = []
    for claim in MECHANISM_CLAIMS:
        row: Dict[str, Any] = claim_header(claim)
        if not mechanism:
            rows.append({**row, "value": None, "interval": None, "held": None, "skipped": "mechanism stage not run"})
            continue
        values = per_seed_values(claim, mechanism)
        finite = [v for v in values if v is not None]
        if len(finite) < min_seeds:
            reason = f"defined on {len(finite)} seed(s); an interval needs {min_seeds}"
            rows.append({**row, "value": None, "interval": None, "held": None, "skipped": reason})
            continue
        interval = mean_interval(finite)
        held = verdict(interval, above=claim.above, below=claim.below)
        rows.append(
            {
                **row,
                "per_seed": values,
                "value": interval.mean,
                "interval": interval.as_list(),
                "held": held,
                "seeds": len(finite),
            }
        )
    return rows
