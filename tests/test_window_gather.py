"""Gathered window values: forking tokens' and STEER binary's quantiles over the global window under DP.

A quantile cannot be all-reduced, so ``global_window_stats`` all-gathers the per-token values a method
returns from ``window_values`` (variable length per rank, 0 included) and every rank computes the
statistic of the concatenation. Fast tests: the pad/unpad packing and the one-process no-op. The
3-process gloo test gives each rank a hand-chosen share of one window (rank 1 has no valid token):
each rank's tau must be the quantile of the concatenated window (by hand, numpy, and bit-identical to
one process), the kept tokens the single-process ones, and both must differ from the rank-local ones.

STEER's binary mapping gathers |Omega| the same way: with log p = log p_old = -1 and the current
entropy, |Omega| = |A| (1 - e^-1)^2 |H - 1|, so the threshold is known by hand (STEER_HAND_G below).

This file is also the rank worker: ``python test_window_gather.py worker RANK``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

WORLD = 3
RHO = 0.3
# Per rank: micro-batches of (entropy row, valid mask row). Masked tokens carry large entropies that
# must not move the quantile. Window valid entropies, sorted: 0.1 0.2 0.3 0.4 1.5 1.7 1.9 5.0.
SHARES = (
    [([1.5, 1.9, 1.7], [1, 1, 1])],
    [([7.0, 8.0], [0, 0])],  # no valid token
    [([0.1, 50.0, 0.2], [1, 0, 1]), ([0.4, 5.0, 0.3, 60.0], [1, 1, 1, 0])],
)
# tau = quantile(0.7) at position 0.7 * 7 = 4.9: 1.5 + 0.9 * (1.7 - 1.5); rank-local: rank 0 1.78, rank 2 0.38
HAND_TAU = 1.68
# A second method composed with forking tokens exercises reduce + gather in one call.
ADVANTAGES = {0: [1.0, -2.0, 0.5], 1: [3.0, 3.0], 2: [-1.0, 4.0, 2.0, 0.25, 1.0, -0.5, 9.0]}
# STEER binary, top 50%: |A| |H - 1| of the valid tokens, rank 0: 0.5 1.8 0.35; rank 2: 0.9 1.6 | 0.15 4.0 0.35.
# Sorted: 0.15 0.35 0.35 0.5 0.9 1.6 1.8 4.0; the 0.5 quantile sits at 3.5: 0.5 + 0.5 * (0.9 - 0.5) = 0.7.
STEER_TOP = 0.5
STEER_C = (1.0 - np.exp(-1.0)) ** 2
STEER_HAND_G = 0.7
# Rank-local thresholds (/ STEER_C): rank 0 at 1.0 of (0.35 0.5 1.8): 0.5; rank 2 at 2.0 of 5 values: 0.9.
STEER_LOCAL_G = (0.5, 0.9)


def _inputs(rank):
    from openrlhf_steer.core.types import LossInputs

    out, offset = [], 0
    for entropy, mask in SHARES[rank]:
        n = len(entropy)
        adv = ADVANTAGES[rank][offset : offset + n]
        offset += n
        lp = torch.full((1, n), -1.0, dtype=torch.float64)
        out.append(
            LossInputs(
                log_probs=lp,
                old_log_probs=lp.clone(),
                advantages=torch.tensor([adv], dtype=torch.float64),
                action_mask=torch.tensor([mask], dtype=torch.bool),
                entropy=torch.tensor([entropy], dtype=torch.float64),
            )
        )
    return out


def _forking():
    from openrlhf_steer.methods import build_method

    return build_method("forking_tokens", top_entropy_fraction=RHO, stat_scope="mini_batch")


def _steer_binary():
    from openrlhf_steer.methods import build_method

    return build_method(
        "steer",
        mapping="binary",
        binary_top_fraction=STEER_TOP,
        lambda_min=0.8,
        entropy_source="current",
        stat_scope="mini_batch",
    )


def _composed():
    from openrlhf_steer.methods import build_method
    from openrlhf_steer.methods.compose import compose_methods

    return compose_methods([build_method("clip_cov", stat_scope="mini_batch"), _forking()])


def _weights(method, inputs_list, stats):
    """Per micro-batch token weights (forking tokens: the 0/1 kept mask) under the given window stats."""
    out = []
    for x in inputs_list:
        x.window_stats = dict(stats)
        out.append(method.token_weights(x).reshape(-1).tolist())
    return out


# --------------------------------------------------------------------------------------------------
# Fast: packing and the one-process no-op
# --------------------------------------------------------------------------------------------------
def test_pad_unpad_sizes_3_0_5():
    from openrlhf_steer.integration.window_reduce import pad_values, unpad_concat

    parts = [
        torch.tensor([0.5, -1.0, 2.25]),
        torch.zeros(0),
        torch.tensor([3.0, 0.0, 7.5, 1e-30, -4.0], dtype=torch.float64),
    ]
    sizes = [3, 0, 5]
    padded = [pad_values(p, 5) for p in parts]
    assert all(p.shape == (5,) and p.dtype == torch.float64 for p in padded)
    assert padded[0].tolist() == [0.5, -1.0, 2.25, 0.0, 0.0]
    assert padded[1].tolist() == [0.0] * 5
    assert padded[2].tolist() == [3.0, 0.0, 7.5, 1e-30, -4.0]
    # a padding zero is dropped, a real zero (rank 2's second value) is kept
    assert unpad_concat(padded, sizes).tolist() == [0.5, -1.0, 2.25, 3.0, 0.0, 7.5, 1e-30, -4.0]
    assert unpad_concat([pad_values(torch.zeros(0), 0)] * 2, [0, 0]).numel() == 0
    with pytest.raises(ValueError, match="do not fit"):
        pad_values(torch.ones(6), 5)
    with pytest.raises(ValueError, match="3 tensors but 2 sizes"):
        unpad_concat(padded, sizes[:2])


def test_one_process_is_a_no_op():
    from openrlhf_steer.integration.window_reduce import gather_window_values, global_window_stats

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        pytest.skip("a process group is initialized in this process")
    method = _composed()
    window = [x for rank in range(WORLD) for x in _inputs(rank)]
    assert global_window_stats(method, window) == method.window_stats(window)
    values = method.window_values(window)
    assert gather_window_values(values) == values
    assert list(values) == ["forking_tokens/entropy"]
    assert sorted(values["forking_tokens/entropy"].tolist()) == [0.1, 0.2, 0.3, 0.4, 1.5, 1.7, 1.9, 5.0]
    assert method.window_stats(window)["forking_tokens/threshold"] == pytest.approx(HAND_TAU, rel=1e-12)


def test_steer_binary_threshold_by_hand_one_process():
    steer = _steer_binary()
    window = [x for rank in range(WORLD) for x in _inputs(rank)]
    values = steer.window_values(window)
    assert list(values) == ["steer/omega_abs"]
    assert sorted(values["steer/omega_abs"].tolist()) == pytest.approx(
        sorted(STEER_C * v for v in (0.5, 1.8, 0.35, 0.9, 1.6, 0.15, 4.0, 0.35)), rel=1e-12
    )
    stats = steer.window_stats(window)
    assert stats["steer/threshold"] == pytest.approx(STEER_C * STEER_HAND_G, rel=1e-12)
    assert stats["steer/count"] == 8.0 and stats["steer/max"] == pytest.approx(STEER_C * 4.0, rel=1e-12)
    for rank, hand in ((0, STEER_LOCAL_G[0]), (2, STEER_LOCAL_G[1])):
        assert steer.window_stats(_inputs(rank))["steer/threshold"] == pytest.approx(STEER_C * hand, rel=1e-12)
    # the other mappings need no quantile, so nothing is gathered for them
    from openrlhf_steer.methods import build_method

    assert build_method("steer", stat_scope="mini_batch").window_values(window) == {}
    assert build_method("steer", stat_scope="mini_batch", mapping="linear").window_values(window) == {}


# --------------------------------------------------------------------------------------------------
# A real 3-process gloo group
# --------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def per_rank():
    env = dict(
        os.environ,
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(_free_port()),
        WORLD_SIZE=str(WORLD),
        CUDA_VISIBLE_DEVICES="",
        OMP_NUM_THREADS="1",
    )
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "worker", str(rank)],
            env=dict(env, RANK=str(rank)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(WORLD)
    ]
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            outputs.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for code, _, err in outputs:
        assert code == 0, err[-4000:]
    return [json.loads(next(line for line in out.splitlines() if line.startswith("{"))) for _, out, _ in outputs]


def test_every_rank_gets_the_global_quantile(per_rank):
    window = [x for rank in range(WORLD) for x in _inputs(rank)]
    concatenated = np.concatenate([np.asarray(e)[np.asarray(m, dtype=bool)] for share in SHARES for e, m in share])
    by_numpy = float(np.quantile(concatenated, 1.0 - RHO, method="linear"))
    one_process = _forking().window_stats(window)["forking_tokens/threshold"]
    assert one_process == pytest.approx(HAND_TAU, rel=1e-12) and by_numpy == pytest.approx(HAND_TAU, rel=1e-12)
    for rank, r in enumerate(per_rank):
        assert r["tau"] == one_process  # bit-identical to one process
        assert r["tau"] == pytest.approx(by_numpy, rel=1e-12)
        # rank order: rank 0's values, none from rank 1, then rank 2's (valid tokens only)
        assert r["gathered"] == [1.5, 1.9, 1.7, 0.1, 0.2, 0.4, 5.0, 0.3]
    # the test can fail: the rank-local quantile is another value (rank 1 alone has none: inf)
    assert [r["local_tau"] for r in per_rank] == [pytest.approx(1.78), float("inf"), pytest.approx(0.38)]


def test_kept_tokens_equal_the_single_process_mask(per_rank):
    forking = _forking()
    window = [x for rank in range(WORLD) for x in _inputs(rank)]
    stats = forking.window_stats(window)
    for rank, r in enumerate(per_rank):
        expected = _weights(forking, _inputs(rank), stats)
        assert r["kept"] == expected
        if rank != 1:  # the test can fail: the rank-local threshold keeps other tokens (rank 1 keeps none)
            assert r["kept"] != _weights(forking, _inputs(rank), forking.window_stats(_inputs(rank)))
    assert per_rank[0]["kept"] == [[0.0, 1.0, 1.0]]  # H >= 1.68: 1.9 and 1.7 (rank-local tau 1.78 drops 1.7)
    assert per_rank[1]["kept"] == [[0.0, 0.0]]
    assert per_rank[2]["kept"] == [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]


def test_gather_composes_with_reduced_keys_and_empty_windows(per_rank):
    composed = _composed()
    window = [x for rank in range(WORLD) for x in _inputs(rank)]
    expected = composed.window_stats(window)
    for r in per_rank:
        assert r["composed"] == pytest.approx(expected, rel=1e-12)
        assert r["composed"]["forking_tokens/threshold"] == expected["forking_tokens/threshold"]
        assert r["all_empty_tau"] == float("inf")  # no rank has a valid token
        assert r["warned"] is False  # forking tokens declares no rank-local key any more


def test_steer_binary_every_rank_gets_the_global_threshold(per_rank):
    steer = _steer_binary()
    window = [x for rank in range(WORLD) for x in _inputs(rank)]
    one_process = steer.window_stats(window)
    for r in per_rank:
        assert r["steer"]["steer/threshold"] == one_process["steer/threshold"]  # bit-identical
        assert r["steer"]["steer/threshold"] == pytest.approx(STEER_C * STEER_HAND_G, rel=1e-12)
        assert r["steer"] == pytest.approx(one_process, rel=1e-12)
    # weights 0.8 on |A| |H - 1| >= 0.7: rank 0 only on 1.8 (its rank-local 0.5 would also take 0.5);
    # rank 2 on 0.9, 1.6 and 4.0
    assert per_rank[0]["steer_weights"] == [pytest.approx([1.0, 0.8, 1.0])]
    assert per_rank[1]["steer_weights"] == [[0.0, 0.0]]
    assert per_rank[2]["steer_weights"] == [pytest.approx([0.8, 0.0, 0.8]), pytest.approx([1.0, 0.8, 1.0, 0.0])]
    local_rank0 = _weights(steer, _inputs(0), steer.window_stats(_inputs(0)))
    assert local_rank0 == [pytest.approx([0.8, 0.8, 1.0])]  # the test can fail: rank-local differs


# --------------------------------------------------------------------------------------------------
# The rank worker (runs in a subprocess; prints one JSON line)
# --------------------------------------------------------------------------------------------------
def _worker(rank: int) -> None:
    import logging

    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=WORLD)
    from openrlhf_steer.integration import window_reduce
    from openrlhf_steer.integration.window_reduce import gather_window_values, global_window_stats

    warnings = []
    handler = logging.Handler()
    handler.emit = lambda record: warnings.append(record.getMessage())
    logging.getLogger(window_reduce.__name__).addHandler(handler)

    forking, mine = _forking(), _inputs(rank)
    stats = global_window_stats(forking, mine)
    gathered = gather_window_values(forking.window_values(mine))["forking_tokens/entropy"]
    composed = global_window_stats(_composed(), _inputs(rank))
    empty = [_inputs(1)[0]]  # every rank with only masked tokens
    all_empty = global_window_stats(forking, empty)
    steer = _steer_binary()
    steer_stats = global_window_stats(steer, _inputs(rank))
    print(
        json.dumps(
            {
                "tau": stats["forking_tokens/threshold"],
                "local_tau": forking.window_stats(mine)["forking_tokens/threshold"],
                "gathered": gathered.tolist(),
                "kept": _weights(forking, mine, stats),
                "composed": {k: float(v) for k, v in composed.items()},
                "all_empty_tau": all_empty["forking_tokens/threshold"],
                "warned": bool(warnings),
                "steer": {k: float(v) for k, v in steer_stats.items()},
                "steer_weights": _weights(steer, _inputs(rank), steer_stats),
            }
        ),
        flush=True,
    )
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "worker":
    _worker(int(sys.argv[2]))
