"""The demo's optimizers by name: AdamW (the papers' and OpenRLHF's) and plain SGD (isolates token weights).

AdamW divides each parameter's step by its running gradient scale, so a token weight below 1 changes
the update far less than it changes the gradient (issue 22 measured STEER at lambda_min 0.3 ending at
GRPO's entropy). Plain SGD keeps the step proportional to the weighted gradient: it is not the papers'
optimizer, and is offered only to isolate the token-weight effect.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Mapping

import torch

from .config import RLConfig


def _adamw(params: Iterable, rl: RLConfig, options: Mapping[str, Any]):
    return torch.optim.AdamW(params, lr=float(options.get("lr", rl.lr)), betas=tuple(rl.betas))


def _sgd(params: Iterable, rl: RLConfig, options: Mapping[str, Any]):
    return torch.optim.SGD(params, lr=float(options.get("lr", rl.lr)))


OPTIMIZERS: Dict[str, Callable] = {"adamw": _adamw, "sgd": _sgd}


def build_optimizer(params: Iterable, rl: RLConfig, options: Mapping[str, Any]):
    """``options`` = {} (AdamW at rl.lr) or {"name": "adamw" | "sgd", "lr": ...} from MethodSpec.optimizer."""
    name = options.get("name", "adamw")
    if name not in OPTIMIZERS:
        raise ValueError(f"MethodSpec.optimizer name={name!r} is unknown; choose one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[name](params, rl, options)
