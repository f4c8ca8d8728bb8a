"""Cross-rank (data-parallel) reduction of a method's optimizer-step window statistics.

With ``stat_scope=mini_batch`` the window is the whole optimizer step, which OpenRLHF spreads over its
data-parallel ranks. Each rank computes ``method.window_stats`` on its share; the keys listed by
``method.window_stats_reduction()`` are then all-reduced with their op (``sum`` / ``max`` / ``min``), so
every rank ends up with the statistic of the global window. The methods only read reduced components
(STEER's max/min/count, Clip-/KL-Cov's sums and count, from which they take the means at loss time),
so nothing has to be derived again afterwards. Keys the method reports as rank-local (quantiles) are
left as they are, with a one-time warning.

A rank whose share of the window has no valid token reports ``max = min = 0`` for STEER; that would
corrupt the global min (and max if every value is negative). Such a rank takes part with the identity
of each op instead (-inf for max, +inf for min, 0 for sum), which makes the result exactly the
statistic of the concatenated window.

We call ``torch.distributed.all_reduce`` directly: OpenRLHF's ``strategy.all_reduce`` moves data to
CUDA and knows no ``min``. The tensor lives where the group's backend expects it (the current CUDA
device for NCCL, the CPU otherwise).
"""
from __future__ import annotations

import logging
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)

REDUCE_OPS = ("sum", "max", "min")
# Each op's identity: what a rank without valid tokens contributes.
_IDENTITY = {"sum": 0.0, "max": -math.inf, "min": math.inf}
_TORCH_OP = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}
_WARNED: set = set()


def data_parallel_group(strategy) -> Optional[Any]:
    """OpenRLHF's DP process group (``ds_device_mesh["dp"]``), or None (= the default WORLD group).

    Ring-attention and tensor-parallel peers hold the same samples; reducing over the DP group alone
    counts each sample once (the means would be the same over WORLD, but the counts would not).
    """
    mesh = getattr(strategy, "ds_device_mesh", None)
    if mesh is None:
        return None
    try:
        return mesh["dp"].get_group()
    except (KeyError, RuntimeError, AttributeError, TypeError):
        return None


def distributed_world_size(group=None) -> int:
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size(group=group)


def _device_for(group) -> torch.device:
    backend = str(dist.get_backend(group)).lower()
    if "nccl" in backend:
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def pack_window_stats(local: Mapping[str, Any], reduction: Mapping[str, str],
                      local_valid_tokens: float) -> Dict[str, Tuple[List[str], List[float]]]:
    """Per op: (keys, values) of this rank, the identity replacing values of an empty rank.

    The valid-token count rides along in the ``sum`` group under ``"_valid_tokens"``.
    """
    packed: Dict[str, Tuple[List[str], List[float]]] = {op: ([], []) for op in REDUCE_OPS}
    empty = local_valid_tokens <= 0
    for key in sorted(reduction):  # the same order on every rank
        op = reduction[key]
        if op not in REDUCE_OPS:
            raise ValueError(f"window_stats_reduction()[{key!r}] = {op!r}: choose one of {list(REDUCE_OPS)}")
        if key not in local:
            raise ValueError(f"window_stats_reduction() lists {key!r} but window_stats(...) returned only "
                             f"{sorted(local)}; the method must return every key it asks to reduce")
        keys, values = packed[op]
        keys.append(key)
        values.append(_IDENTITY[op] if empty else float(local[key]))
    packed["sum"][0].append("_valid_tokens")
    packed["sum"][1].append(float(local_valid_tokens))
    return packed


def unpack_window_stats(local: Mapping[str, Any], packed: Mapping[str, Tuple[List[str], Sequence[float]]]) -> Dict[str, Any]:
    """The reduced values merged into the local statistics (unchanged when the whole window is empty)."""
    reduced = {key: float(value) for op in REDUCE_OPS for key, value in zip(*packed[op])}
    if reduced.pop("_valid_tokens") <= 0:
        return dict(local)  # no rank has a valid token: every rank's (empty) statistic is the same
    return {**dict(local), **reduced}


def reduce_window_stats(local: Mapping[str, Any], reduction: Mapping[str, str], *, local_valid_tokens: float,
                        group=None, rank_local: Sequence[str] = ()) -> Dict[str, Any]:
    """All-reduce ``local`` (this rank's ``method.window_stats``) over ``group``; a no-op on one rank.

    ``local_valid_tokens``: valid (action-mask) tokens of this rank's window share. ``rank_local``:
    keys that stay per rank; a warning names them once per process.
    """
    if distributed_world_size(group) <= 1:
        return dict(local)
    warn_rank_local_once(rank_local)
    packed = pack_window_stats(local, reduction, local_valid_tokens)
    device = _device_for(group)
    result: Dict[str, Tuple[List[str], List[float]]] = {}
    for op in REDUCE_OPS:
        keys, values = packed[op]
        if not keys:
            result[op] = (keys, values)
            continue
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor, op=_TORCH_OP[op], group=group)
        result[op] = (keys, tensor.cpu().tolist())
    return unpack_window_stats(local, result)


def warn_rank_local_once(keys: Sequence[str]) -> None:
    new = sorted(set(keys) - _WARNED)
    if not new:
        return
    _WARNED.update(new)
    logger.warning(
        "stat_scope=mini_batch: window statistics %s are quantiles and cannot be combined exactly across "
        "data-parallel ranks; each rank uses the value over its own share of the optimizer-step window",
        new,
    )
