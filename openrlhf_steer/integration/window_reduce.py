"""Cross-rank (data-parallel) combination of a method's optimizer-step window statistics.

With ``stat_scope=mini_batch`` the window is the whole optimizer step, which OpenRLHF spreads over its
data-parallel ranks. Each rank computes ``method.window_stats`` on its share; the keys listed by
``method.window_stats_reduction()`` are then all-reduced with their op (``sum`` / ``max`` / ``min``), so
every rank ends up with the statistic of the global window. The methods only read reduced components
(STEER's max/min/count, Clip-/KL-Cov's sums and count, from which they take the means at loss time),
so nothing has to be derived again afterwards.

A quantile cannot be combined from per-rank values. A method that needs one returns its per-token
values from ``method.window_values``; they are all-gathered (variable length per rank: sizes first,
then zero-padded to the longest, gathered, unpadded), concatenated in rank order, and
``method.window_stats_from_values`` computes the statistic on every rank from the same global set
(forking tokens' entropy threshold, STEER's binary |Omega| threshold).

A rank whose share of the window has no valid token reports ``max = min = 0`` for STEER; that would
corrupt the global min (and max if every value is negative). Such a rank takes part with the identity
of each op instead (-inf for max, +inf for min, 0 for sum), which makes the result exactly the
statistic of the concatenated window. To a gather it contributes no values (size 0).

We call ``torch.distributed`` collectives directly: OpenRLHF's ``strategy.all_reduce`` moves data to
CUDA and knows no ``min``. Tensors live where the group's backend expects them (the current CUDA
device for NCCL, the CPU otherwise).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.distributed as dist

Tensor = torch.Tensor

REDUCE_OPS = ("sum", "max", "min")
# Each op's identity: what a rank without valid tokens contributes.
_IDENTITY = {"sum": 0.0, "max": -math.inf, "min": math.inf}
_TORCH_OP = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}


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


def pack_window_stats(
    local: Mapping[str, Any], reduction: Mapping[str, str], local_valid_tokens: float
) -> Dict[str, Tuple[List[str], List[float]]]:
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
            raise ValueError(
                f"window_stats_reduction() lists {key!r} but window_stats(...) returned only "
                f"{sorted(local)}; the method must return every key it asks to reduce"
            )
        keys, values = packed[op]
        keys.append(key)
        values.append(_IDENTITY[op] if empty else float(local[key]))
    packed["sum"][0].append("_valid_tokens")
    packed["sum"][1].append(float(local_valid_tokens))
    return packed


def unpack_window_stats(
    local: Mapping[str, Any], packed: Mapping[str, Tuple[List[str], Sequence[float]]]
) -> Dict[str, Any]:
    """The reduced values merged into the local statistics (unchanged when the whole window is empty)."""
    reduced = {key: float(value) for op in REDUCE_OPS for key, value in zip(*packed[op])}
    if reduced.pop("_valid_tokens") <= 0:
        return dict(local)  # no rank has a valid token: every rank's (empty) statistic is the same
    return {**dict(local), **reduced}


def reduce_window_stats(
    local: Mapping[str, Any], reduction: Mapping[str, str], *, local_valid_tokens: float, group=None
) -> Dict[str, Any]:
    """All-reduce ``local`` (this rank's ``method.window_stats``) over ``group``; a no-op on one rank.

    ``local_valid_tokens``: valid (action-mask) tokens of this rank's window share.
    """
    if distributed_world_size(group) <= 1:
        return dict(local)
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


def pad_values(values: Tensor, length: int) -> Tensor:
    """1-D ``values`` as float64 (exact for float32/64), zero-padded to ``length``: all_gather needs one
    size on every rank."""
    flat = values.detach().reshape(-1).to(torch.float64)
    if flat.numel() > length:
        raise ValueError(f"pad_values: {flat.numel()} values do not fit in length {length}")
    return torch.cat([flat, flat.new_zeros(length - flat.numel())])


def unpad_concat(padded: Sequence[Tensor], sizes: Sequence[int]) -> Tensor:
    """The first ``sizes[r]`` entries of each rank's padded tensor, concatenated in rank order."""
    if len(padded) != len(sizes):
        raise ValueError(f"unpad_concat: {len(padded)} tensors but {len(sizes)} sizes")
    return torch.cat([chunk[: int(n)] for chunk, n in zip(padded, sizes)])


def gather_window_values(values: Mapping[str, Tensor], group=None) -> Dict[str, Tensor]:
    """Every rank's 1-D ``values[key]`` concatenated in rank order, on every rank; as is on one rank.

    Every rank must pass the same keys (the configured method decides them); sizes may differ, 0
    included. Results are float64 on the backend's device.
    """
    world = distributed_world_size(group)
    if world <= 1:
        return dict(values)
    keys = sorted(values)  # the same collective order on every rank
    device = _device_for(group)
    local_sizes = torch.tensor([values[k].numel() for k in keys], dtype=torch.int64, device=device)
    all_sizes = [torch.empty_like(local_sizes) for _ in range(world)]
    dist.all_gather(all_sizes, local_sizes, group=group)
    sizes = torch.stack(all_sizes).cpu()  # [world, keys]
    gathered: Dict[str, Tensor] = {}
    for i, key in enumerate(keys):
        per_rank = sizes[:, i].tolist()
        if max(per_rank) == 0:  # every rank agrees (same sizes): skip a collective on empty tensors
            gathered[key] = torch.zeros(0, dtype=torch.float64, device=device)
            continue
        local = pad_values(values[key].to(device), max(per_rank))
        chunks = [torch.empty_like(local) for _ in range(world)]
        dist.all_gather(chunks, local, group=group)
        gathered[key] = unpad_concat(chunks, per_rank)
    return gathered


def global_window_stats(method, inputs_list: Sequence[Any], *, group=None) -> Dict[str, Any]:
    """``method``'s window statistics over every DP rank's share (``inputs_list`` is this rank's).

    One rank (or no ``torch.distributed``): ``method.window_stats(inputs_list)`` unchanged. Otherwise the
    reducible keys are all-reduced and the statistics of ``method.window_values`` are recomputed from
    the values gathered over ``group``.
    """
    local = method.window_stats(inputs_list)
    if distributed_world_size(group) <= 1:
        return local
    valid_tokens = float(sum(int(x.action_mask.sum()) for x in inputs_list))
    stats = reduce_window_stats(local, method.window_stats_reduction(), local_valid_tokens=valid_tokens, group=group)
    values = method.window_values(inputs_list)
    if values:
        stats.update(method.window_stats_from_values(gather_window_values(values, group=group)))
    return stats
