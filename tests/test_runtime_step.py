"""The step runtime: window metric reduction (one definition, one host copy), across ranks, seeds, boundaries."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))

from steertest_loss_batch import count_host_syncs  # noqa: E402

from openrlhf_steer.core.metrics import MetricWindow, reduce_window, reduction_of  # noqa: E402
from openrlhf_steer.runtime import StepRuntime, rollout_means, step_seed  # noqa: E402


def test_reduction_rules_by_hand():
    rows = [
        {"loss/total": 0.25, "tokens/valid": 3.0, "weights/min": 0.5, "weights/max": 1.0, "omega_max": 2.0, "m": 1.0},
        {"loss/total": 0.5, "tokens/valid": 1.0, "weights/min": 0.75, "weights/max": 1.5, "omega_max": 1.0, "m": 5.0},
    ]
    out = reduce_window(rows, [3.0, 1.0])
    assert out == {
        "loss/total": 0.75,  # summed: each micro loss already divides by the window's tokens
        "tokens/valid": 4.0,
        "weights/min": 0.5,
        "weights/max": 1.5,
        "omega_max": 2.0,
        "m": 0.75 * 1.0 + 0.25 * 5.0,  # token-weighted
    }
    keys = ("loss/kl", "weights/mean", "method/omega_abs_max")
    assert [reduction_of(k) for k in keys] == ["sum", "token_mean", "max"]


def test_window_copies_to_the_host_once():
    window = MetricWindow()
    for i in range(4):
        window.add({"a": torch.tensor(float(i)), "tokens/valid": torch.tensor(2.0)}, torch.tensor(2.0))
    with count_host_syncs() as calls:
        out = window.reduce()
    assert calls == ["tolist"] and out == {"a": 1.5, "tokens/valid": 8.0}


def test_two_ranks_equal_one_process_over_all_micro_batches():
    """Rank r's window, reduced with the other rank's sums/maxima/minima, equals the whole window in one
    process (loss values recombined from their denominators: token sums over the global tokens)."""
    global_tokens = 10.0
    micro = [  # (token sum of the loss, valid tokens, weights/min, mean metric) per micro-batch
        [(1.0, 3.0, 0.4, 2.0), (2.0, 2.0, 0.9, 1.0)],  # rank 0
        [(0.5, 4.0, 0.2, 3.0), (1.5, 1.0, 0.7, 5.0)],  # rank 1
    ]
    windows = []
    for rank_micro in micro:
        w = MetricWindow()
        for s, n, wmin, m in rank_micro:  # each rank divides by its share of the global count (OpenRLHF: N/dp)
            w.add({"loss/total": s / (global_tokens / 2), "tokens/valid": n, "weights/min": wmin, "m": m}, n, 5.0)
        windows.append(w)

    payloads = []

    def capture(sums, maxima, minima):
        payloads.append((dict(sums), dict(maxima), dict(minima)))
        return sums, maxima, minima

    for w in windows:
        w.reduce(capture)

    def combine(sums, maxima, minima):
        keys = sums.keys()
        return (
            {k: sum(p[0][k] for p in payloads) for k in keys},
            {k: max(p[1][k] for p in payloads) for k in maxima},
            {k: min(p[2][k] for p in payloads) for k in minima},
        )

    out = windows[0].reduce(combine)
    assert out["loss/total"] == pytest.approx((1.0 + 2.0 + 0.5 + 1.5) / global_tokens)
    assert out["tokens/valid"] == 10.0 and out["weights/min"] == 0.2
    assert out["m"] == pytest.approx((3 * 2.0 + 2 * 1.0 + 4 * 3.0 + 1 * 5.0) / 10.0)


class Recorder:
    def __init__(self):
        self.calls = []

    def on_boundary(self, boundary, stats):
        self.calls.append((boundary, dict(stats)))


def test_boundaries_seeds_and_counters():
    method = Recorder()
    runtime = StepRuntime(method, seed=5, rank=1)
    assert runtime.reseed().initial_seed() == step_seed(5, 1, 0)
    for tokens, value in ((2.0, 1.0), (6.0, 3.0)):
        runtime.record({"m": torch.tensor(value), "tokens/valid": torch.tensor(tokens)}, torch.tensor(tokens))
        runtime.end_optimizer_step(extra={"grad_norm": 1.0})
    assert runtime.optimizer_step == 2 and runtime.reseed().initial_seed() == step_seed(5, 1, 2)
    logged = runtime.end_rollout_step()
    assert [c[0] for c in method.calls] == ["optimizer_step", "optimizer_step", "rollout_step"]
    assert method.calls[-1][1]["m"] == pytest.approx((2 * 1.0 + 6 * 3.0) / 8)  # token-weighted for the controller
    assert logged["m"] == 2.0 and runtime.rollout_step == 1  # logged: the mean over the optimizer steps
    assert rollout_means([]) == {}
    assert step_seed(5, 0, 3) != step_seed(5, 1, 3)


def test_seq_mean_losses_recombine_over_sequences_across_ranks():
    """seq-mean modes divide by sequences: the window loss is sum(per-sequence terms) / all sequences."""
    per_rank = [[(0.6, 2), (0.3, 1)], [(0.9, 3)]]  # (sum of per-sequence terms, sequences) per micro-batch
    total_seqs = 6.0
    windows, payloads = [], []
    for rank_micro in per_rank:
        w = MetricWindow()
        for s, seqs in rank_micro:  # each rank divides by num_seqs = global sequences / dp
            w.add({"loss/total": s / (total_seqs / 2), "tokens/valid": 4.0 * seqs}, 4.0 * seqs, 3.0, seqs)
        windows.append(w)
        w.reduce(lambda a, b, c: (payloads.append(dict(a)) or a, b, c))
    out = windows[0].reduce(lambda a, b, c: ({k: sum(p[k] for p in payloads) for k in a}, b, c))
    assert out["loss/total"] == pytest.approx((0.6 + 0.3 + 0.9) / total_seqs)
    assert out["tokens/valid"] == 24.0
