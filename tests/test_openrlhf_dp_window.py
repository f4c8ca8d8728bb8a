"""stat_scope=mini_batch across data-parallel ranks: the window statistic is that of the global window.

Fast tests: the pack/unpack of the reduction (identities for empty ranks, errors) with the all-reduce
emulated by hand. Slow test: a real 2-process gloo group; each rank runs our EntropyControlActorPPOTrainer
through OpenRLHF's ActorPPOTrainer.training_step on half of a 4-micro-batch window. The reduced
statistics and every token weight / clip mask / extra loss term used on each rank must equal a
single-process computation on the concatenated window (core ``method.window_stats`` + core
``PolicyLoss``, independent HF forward), and differ from the rank-local statistic (the test can fail).
Forking tokens' and STEER binary's quantiles go through the gathered values (``method.window_values``);
the packing of the gather has its own tests in test_window_gather.py.

This file is also the rank worker: ``python test_openrlhf_dp_window.py worker RANK MODEL_DIR``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SUPPORT = Path(__file__).resolve().parent / "support"
WORLD = 2
SEED = 11
# (seed, right padding per row, advantage scale); rank r gets micro-batches 2r and 2r+1. Small advantages on
# rank 0 and large ones on rank 1 put the window's min |Omega| and max |Omega| on different ranks.
BATCH_SEEDS = ((1, [0, 3, 1], 0.3), (2, [2, 0, 4], 0.3), (3, [1, 1, 0], 3.0), (4, [4, 0, 2], 3.0))

CASES = [
    ("steer", {"lambda_min": 0.6, "omega_floor": 1e-4, "stat_scope": "mini_batch"}),  # floor below max|Omega|
    (
        "steer",
        {
            "lambda_min": 0.7,
            "lambda_max": 1.2,
            "mapping": "linear",
            "entropy_source": "current",
            "stat_scope": "mini_batch",
        },
    ),
    # clip_ratio 1 clips every candidate: the mask is set by the window means, not by the random draw
    ("clip_cov", {"clip_ratio": 1.0, "cov_lb": 0.0, "cov_ub": 1e9, "stat_scope": "mini_batch"}),
    ("kl_cov", {"kl_ratio": 0.3, "kl_coef": 1.0, "stat_scope": "mini_batch"}),
    (
        "forking_tokens",
        {"top_entropy_fraction": 0.2, "stat_scope": "mini_batch"},
    ),  # gathered quantile; masks differ from rank-local
    # gathered |Omega| quantile: rank 0's small advantages alone would put its threshold far lower
    ("steer", {"lambda_min": 0.6, "mapping": "binary", "binary_top_fraction": 0.3, "stat_scope": "mini_batch"}),
]
HOOKS = ("token_weights", "clip_mask", "extra_token_terms")


# --------------------------------------------------------------------------------------------------
# Fast: pack / unpack with a hand-emulated all-reduce
# --------------------------------------------------------------------------------------------------
def _emulated_all_reduce(per_rank_locals, reduction, valid):
    from openrlhf_steer.integration.window_reduce import pack_window_stats, unpack_window_stats

    packs = [pack_window_stats(local, reduction, n) for local, n in zip(per_rank_locals, valid)]
    combine = {"sum": sum, "max": max, "min": min}
    reduced = {
        op: (packs[0][op][0], [combine[op](p[op][1][i] for p in packs) for i in range(len(packs[0][op][0]))])
        for op in packs[0]
    }
    return [unpack_window_stats(local, reduced) for local in per_rank_locals]


def _inputs(log_probs, advantages, old_entropy, mask=None):
    from openrlhf_steer.core.types import LossInputs

    lp = torch.tensor(log_probs, dtype=torch.float64)
    mask = torch.ones_like(lp, dtype=torch.bool) if mask is None else torch.tensor(mask)
    return LossInputs(
        log_probs=lp,
        old_log_probs=lp.clone(),
        advantages=torch.tensor(advantages, dtype=torch.float64),
        action_mask=mask,
        old_entropy=torch.tensor(old_entropy, dtype=torch.float64),
    )


def test_empty_rank_does_not_corrupt_steer_min_max():
    """A rank with no valid token reports max = min = 0; it must not become the global min."""
    from openrlhf_steer.methods import build_method

    steer = build_method("steer", stat_scope="mini_batch")
    # p = 0.5, H = 1, A / p_old = A / 0.5: Omega = 2A * 0.5 * 0.25 * (ln 0.5 + 1) = 0.25 A (1 - ln 2)
    full = _inputs([[math.log(0.5), math.log(0.5)]], [[1.0, 2.0]], [[1.0, 1.0]])
    empty = _inputs([[math.log(0.5)]], [[3.0]], [[1.0]], mask=[[False]])
    local = [steer.window_stats([full]), steer.window_stats([empty])]
    assert local[1]["steer/min"] == 0.0  # what the empty rank reports on its own
    reduced = _emulated_all_reduce(local, steer.window_stats_reduction(), valid=[2, 0])
    unit = 0.25 * (1 - math.log(2))
    for stats in reduced:
        assert stats["steer/max"] == pytest.approx(2 * unit)
        assert stats["steer/min"] == pytest.approx(unit)  # not 0
        assert stats["steer/count"] == 2


def test_covariance_sums_and_all_empty_window():
    from openrlhf_steer.methods import build_method

    clip_cov = build_method("clip_cov", stat_scope="mini_batch")
    a = _inputs([[-0.5, -1.0]], [[3.0, 1.0]], [[1.0, 1.0]])
    b = _inputs([[-2.0, -3.0, -1.0]], [[-1.0, -3.0, 4.0]], [[1.0, 1.0, 1.0]], mask=[[True, False, True]])
    reduced = _emulated_all_reduce(
        [clip_cov.window_stats([a]), clip_cov.window_stats([b])], clip_cov.window_stats_reduction(), valid=[2, 2]
    )
    # valid tokens: A = 3, 1, -1, 4 -> sum 7; log p = -0.5, -1, -2, -1 -> sum -4.5; count 4
    for stats in reduced:
        assert stats == pytest.approx({"clip_cov/adv_sum": 7.0, "clip_cov/log_prob_sum": -4.5, "clip_cov/count": 4.0})
    steer = build_method("steer", stat_scope="mini_batch")
    nothing = _inputs([[0.0]], [[1.0]], [[1.0]], mask=[[False]])
    local = steer.window_stats([nothing])
    assert _emulated_all_reduce([local, local], steer.window_stats_reduction(), valid=[0, 0]) == [local, local]


def test_reduction_errors_name_the_key():
    from openrlhf_steer.integration.window_reduce import pack_window_stats

    with pytest.raises(ValueError, match="'steer/max'.*window_stats"):
        pack_window_stats({"steer/min": 0.1}, {"steer/max": "max"}, 3)
    with pytest.raises(ValueError, match="'x'.*'mean'.*sum"):
        pack_window_stats({"x": 1.0}, {"x": "mean"}, 3)


def test_single_process_reduction_is_a_no_op():
    from openrlhf_steer.integration import window_reduce

    if not torch.distributed.is_initialized():  # one process: the statistics are returned as they are
        local = {"steer/max": 0.5, "steer/min": 0.1, "steer/count": 3.0}
        assert window_reduce.reduce_window_stats(local, {"steer/max": "max"}, local_valid_tokens=3) == local


# --------------------------------------------------------------------------------------------------
# Slow: a real 2-process gloo group through OpenRLHF's training_step
# --------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dp_results(tmp_path_factory):
    pytest.importorskip("openrlhf")
    from steertest_openrlhf import save_tiny_qwen2

    model_dir = save_tiny_qwen2(tmp_path_factory.mktemp("tiny_qwen2_dp"))
    paths = [str(SUPPORT)]
    if str(SUPPORT / "stubs") in sys.path or importlib.util.find_spec("flash_attn") is None:  # conftest's CPU stubs
        paths.append(str(SUPPORT / "stubs"))
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")]),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(_free_port()),
        WORLD_SIZE=str(WORLD),
        TORCHDYNAMO_DISABLE="1",
        CUDA_VISIBLE_DEVICES="",
        OMP_NUM_THREADS="1",
    )
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "worker", str(rank), model_dir],
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
            out, err = proc.communicate(timeout=300)
            outputs.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for code, out, err in outputs:
        assert code == 0, err[-4000:]
    return [
        {(r["case"]): r for r in map(json.loads, (line for line in out.splitlines() if line.startswith("{")))}
        for _, out, _ in outputs
    ], [err for _, _, err in outputs]


@pytest.mark.slow
@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_two_gloo_ranks_match_single_process_window(dp_results, case):
    per_rank, _ = dp_results
    name, config = CASES[case]
    for rank in range(WORLD):
        r = per_rank[rank][case]
        assert r["optimizer_steps"] == 1 and r["micro_batches"] == 2
        assert r["dp_group_is_mesh"] and r["dp_group_size"] == WORLD  # reduced over OpenRLHF's "dp" mesh group
        assert r["records"] >= 2 and r["tokens_compared"] > 0  # one record per hook and micro-batch
        exact = sorted(k for k in r["global_stats"] if k in r["exact_keys"])  # reduced or from gathered values
        assert exact
        for key in exact:
            assert r["got_stats"][key] == pytest.approx(r["global_stats"][key], rel=1e-5, abs=1e-8), key
        # the test can fail: this rank's own share gives a different statistic ...
        assert any(r["local_stats"][k] != pytest.approx(r["global_stats"][k], rel=1e-3) for k in exact)
        # ... and the weights / masks / terms used in the loss are the single-process ones for these tokens
        assert r["max_diff_vs_global"] <= 1e-5, r
    assert per_rank[0][case]["got_stats"] == pytest.approx(per_rank[1][case]["got_stats"], rel=1e-12)
    # with rank-local statistics the loss would differ (on a rank holding the global extremes it may not)
    assert max(per_rank[rank][case]["max_diff_vs_local"] for rank in range(WORLD)) > 1e-3


@pytest.mark.slow
# --------------------------------------------------------------------------------------------------
# The rank worker (runs in a subprocess; prints one JSON line per case)
# --------------------------------------------------------------------------------------------------
def _worker(rank: int, model_dir: str) -> None:
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=WORLD)
    from openrlhf_steer.integration import entropy_patch

    entropy_patch.install()
    # OpenRLHF's layout (DeepspeedStrategy.setup_distributed): a (dp, sp, tp) mesh, here on CPU
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh("cpu", (WORLD, 1, 1), mesh_dim_names=("dp", "sp", "tp"))
    for index, (name, config) in enumerate(CASES):
        print(json.dumps(dict(_one_case(rank, model_dir, name, config, mesh), case=index)), flush=True)
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


def _recording(method, sink):
    """Record what each loss hook returns (instance attributes shadow the class methods)."""
    for hook in HOOKS:
        original = getattr(method, hook)

        def wrapped(*args, _original=original, _hook=hook, **kwargs):
            out = _original(*args, **kwargs)
            if isinstance(out, dict):
                sink.extend((f"{_hook}:{k}", v.detach().double().clone()) for k, v in sorted(out.items()))
            elif out is not None:
                sink.append((_hook, out.detach().double().clone()))
            return out

        setattr(method, hook, wrapped)


def _one_case(rank, model_dir, name, config, mesh):
    from steertest_openrlhf import (
        load_actor,
        make_args,
        make_batch,
        make_experience,
        make_trainer,
        reference_logprobs_entropy,
    )

    from openrlhf_steer.integration.actor_trainer import (
        active_trainer,
        enable_entropy_control,
        step_seed,
        window_iterator,
    )
    from openrlhf_steer.integration.flags import EntropyControlSpec, apply_method_args
    from openrlhf_steer.integration.side_channel import OLD_ENTROPY_KEY
    from openrlhf_steer.core.loss import PolicyLoss
    from openrlhf_steer.methods import build_method
    from openrlhf_steer.core.types import LossConfig, LossInputs

    actor = load_actor(model_dir)
    spec = EntropyControlSpec(methods=[(name, dict(config))])
    args = make_args(seed=SEED)
    needs = apply_method_args(args, spec)
    trainer = make_trainer(actor, args)  # lr 0: parameters stay those of the statistic's forward
    state = enable_entropy_control(trainer, spec, args, max_steps=10, rank=rank)
    trainer.strategy.ds_device_mesh = mesh
    from openrlhf_steer.integration.window_reduce import data_parallel_group

    dp_group_size = torch.distributed.get_world_size(group=data_parallel_group(trainer.strategy))

    # The whole window (4 micro-batches), built identically on every rank, with independent tensors.
    window = []
    for seed, pad, scale in BATCH_SEEDS:
        seqs, attn, amask = make_batch(seed=seed, pad=pad)
        with torch.no_grad():
            lp, ent = reference_logprobs_entropy(actor.model, seqs, attn)
        g = torch.Generator().manual_seed(seed + 100)
        maskf = amask.float()
        old_lp = (lp + 0.3 * torch.randn(lp.shape, generator=g)) * maskf
        old_ent = (ent + 0.2 * torch.rand(lp.shape, generator=g)) * maskf
        adv = (torch.randn(3, generator=g) * scale)[:, None] * maskf
        window.append((seqs, attn, amask, old_lp, old_ent, adv, lp, ent))
    mine = window[2 * rank : 2 * rank + 2]
    total_tokens = float(sum(w[2].sum() for w in window))

    def loss_inputs(w, stats=None):
        seqs, attn, amask, old_lp, old_ent, adv, lp, ent = w
        return LossInputs(
            log_probs=lp,
            old_log_probs=old_lp,
            advantages=adv,
            action_mask=amask,
            entropy=ent if needs.current_entropy else None,
            old_entropy=old_ent,
            step=0,
            total_steps=10,
            epoch=1,
            total_epochs=1,
            window_stats=dict(stats or {}),
            generator=torch.Generator().manual_seed(step_seed(SEED, rank, 0)),
        )

    reference = build_method(name, config)
    global_stats = reference.window_stats([loss_inputs(w) for w in window])  # one process, concatenated window
    local_stats = reference.window_stats([loss_inputs(w) for w in mine])

    def expected_hooks(stats):
        method = build_method(name, config)
        sink = []
        _recording(method, sink)
        for w in mine:
            PolicyLoss(LossConfig(eps_low=0.2, eps_high=0.28, dual_clip=10.0), method)(
                loss_inputs(w, stats), num_tokens=total_tokens / WORLD
            )
        return sink

    # The distributed run: OpenRLHF's training_step through our window iterator (gas = 2 on each rank).
    got_sink, got_stats = [], {}
    _recording(state.method, got_sink)
    experiences = [
        make_experience(
            w[0],
            w[1],
            w[2],
            w[3],
            w[5],
            info={OLD_ENTROPY_KEY: [w[4][i, : max(int(w[1][i].sum()) - 1, 1)].clone() for i in range(3)]},
        )
        for w in mine
    ]
    with active_trainer(trainer):
        micro = 0
        for step, (exp, info) in enumerate(
            window_iterator(iter(experiences), trainer.strategy, 2, lambda e: e.action_mask)
        ):
            got_stats = dict(state.micro["window_stats"])
            info = dict(info, dp_size=WORLD, batch_num_tokens=torch.tensor(total_tokens))
            trainer.training_step(exp, 0.0, step, info)
            micro += 1

    def max_diff(expected):
        assert [k for k, _ in expected] == [k for k, _ in got_sink], (
            [k for k, _ in expected],
            [k for k, _ in got_sink],
        )
        return max(float((e - g).abs().max()) for (_, e), (_, g) in zip(expected, got_sink))

    expected_global = expected_hooks(global_stats)
    return {
        "method": name,
        "optimizer_steps": state.optimizer_step,
        "micro_batches": micro,
        "records": len(got_sink),
        "dp_group_size": dp_group_size,
        "dp_group_is_mesh": data_parallel_group(trainer.strategy) is mesh["dp"].get_group(),
        "tokens_compared": int(sum(float(w[2].sum()) for w in mine)),
        "exact_keys": sorted(state.method.window_stats_reduction())
        + sorted(state.method.window_stats_from_values(state.method.window_values([loss_inputs(w) for w in mine]))),
        "global_stats": _floats(global_stats),
        "local_stats": _floats(local_stats),
        "got_stats": _floats(got_stats),
        "max_diff_vs_global": max_diff(expected_global),
        "max_diff_vs_local": max_diff(expected_hooks(local_stats)),
    }


def _floats(stats):
    return {k: float(v) for k, v in stats.items()}


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "worker":
    _worker(int(sys.argv[2]), sys.argv[3])
