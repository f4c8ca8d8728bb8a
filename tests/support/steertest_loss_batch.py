"""A fixed, seeded loss batch and one configured instance of every registered method (plus the variants
whose options change the loss path), shared by the host-sync and metric-reference tests."""

from __future__ import annotations

import contextlib
from typing import Dict, Iterator, List, Tuple

import torch

from openrlhf_steer.core.types import LossConfig, LossInputs

# Options that put a method on another code path than its defaults (window statistics, schedules).
VARIANTS: Dict[str, Dict[str, object]] = {
    "steer@mini_batch": {"stat_scope": "mini_batch"},
    "clip_cov@mini_batch": {"stat_scope": "mini_batch"},
    "kl_cov@mini_batch": {"stat_scope": "mini_batch"},
    "steer@binary": {"mapping": "binary"},
    "steer@binary_signed": {"mapping": "binary", "binary_rank": "signed"},
    "steer@linear": {"mapping": "linear", "lambda_max": 1.2},
    "steer@asymmetric": {"entropy_control_mode": "asymmetric"},
    "quadrant@quantile": {"threshold_mode": "quantile"},
    "pos_adv_reweight@entropy": {"schedule": "entropy"},
    "forking_tokens@current": {"entropy_source": "current"},
}

LOSS_CONFIG = dict(eps_low=0.2, eps_high=0.28, dual_clip=3.0)


def fixed_inputs(seed: int = 0, n: int = 6, width: int = 9) -> LossInputs:
    """A [6, 9] float32 batch with left-aligned ragged masks, mixed-sign advantages and every optional field."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, width, generator=g) > 0.2
    mask[:, 0] = True
    mask = torch.cumprod(mask.long(), dim=1).bool()
    old = -torch.rand(n, width, generator=g) * 4 - 1e-3
    new = (old + 0.3 * torch.randn(n, width, generator=g)).clamp(max=-1e-4)
    adv = torch.randn(n, 1, generator=g).expand(n, width).clone() * mask
    entropy = torch.rand(n, width, generator=g) * 3
    return LossInputs(
        log_probs=new.requires_grad_(),
        old_log_probs=old,
        advantages=adv,
        action_mask=mask,
        entropy=entropy.clone().requires_grad_(),
        old_entropy=entropy + 0.1,
        ref_log_probs=old - 0.05,
        step=6,
        total_steps=10,
        epoch=2,
        total_epochs=3,
        generator=torch.Generator().manual_seed(seed + 1),
    )


def method_cases() -> List[Tuple[str, str, Dict[str, object]]]:
    """(case id, registered name, options): every registered method with its defaults, then the variants."""
    from openrlhf_steer.methods import available_methods

    cases = [(name, name, {}) for name in available_methods()]
    cases += [(case, case.split("@")[0], dict(opts)) for case, opts in VARIANTS.items()]
    return cases


def run_case(name: str, options: Dict[str, object], seed: int = 0):
    """Build the method, fill window statistics when its options ask for them, return (loss_fn, inputs)."""
    from openrlhf_steer.core.loss import PolicyLoss
    from openrlhf_steer.methods import build_method

    method = build_method(name, options)
    inputs = fixed_inputs(seed)
    if method.needs_window_stats:
        with torch.no_grad():
            preview = fixed_inputs(seed)
        inputs.window_stats = method.window_stats([preview])
    return PolicyLoss(LossConfig(**LOSS_CONFIG), method), inputs


SYNC_METHODS = ("item", "__float__", "__bool__", "__int__", "__index__", "tolist")


@contextlib.contextmanager
def count_host_syncs() -> Iterator[List[str]]:
    """Count calls of the Tensor methods that copy a value to the host (each one stalls a GPU stream)."""
    calls: List[str] = []
    originals = {name: getattr(torch.Tensor, name) for name in SYNC_METHODS}

    def wrap(name, fn):
        def counted(self, *args, **kwargs):
            calls.append(name)
            return fn(self, *args, **kwargs)

        return counted

    for name, fn in originals.items():
        setattr(torch.Tensor, name, wrap(name, fn))
    try:
        yield calls
    finally:
        for name, fn in originals.items():
            setattr(torch.Tensor, name, fn)
