"""The chunked policy forward (openrlhf_steer.integration.chunked_actor) against OpenRLHF's own
``Actor.forward``: values and every parameter gradient, padded and packed, tied and untied, temperature,
gradient checkpointing, entropy with and without gradient; no [rows x V] tensor larger than one chunk;
unsupported models fall back with a warning; DeepSpeed ZeRO-2/3 on CPU (slow)."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

pytest.importorskip("openrlhf")

from steertest_openrlhf import VOCAB, load_actor, make_batch, save_tiny_qwen2  # noqa: E402

from openrlhf_steer.integration import chunked_actor  # noqa: E402
from openrlhf_steer.integration.chunked_actor import ChunkedActorForward, UnsupportedActorModel  # noqa: E402

SUPPORT = Path(__file__).resolve().parent / "support"
CHUNK_ROWS = 4


@pytest.fixture(autouse=True)
def stock_openrlhf_entropy(monkeypatch):
    """The reference is OpenRLHF's own forward: undo the process-wide compute_entropy patch that other test
    modules install (its entropy may be detached, which would change the reference gradients)."""
    import openrlhf.models.actor as actor_module
    import openrlhf.models.utils as models_utils

    monkeypatch.setattr(actor_module, "compute_entropy", models_utils.compute_entropy)


def save_tiny_qwen2_tied(path, seed: int = 4) -> str:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=True,
    )
    model = Qwen2ForCausalLM(config)
    with torch.no_grad():
        model.model.embed_tokens.weight.mul_(10.0)  # also the head's weight: entropies from ~1.5 to ~5 nats
    model.save_pretrained(str(path))
    return str(path)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    return {
        "untied": save_tiny_qwen2(tmp_path_factory.mktemp("chunk_untied"), seed=3),
        "tied": save_tiny_qwen2_tied(tmp_path_factory.mktemp("chunk_tied")),
    }


def _pair(model_dir, temperature=1.0, packing=False, entropy_grad=True):
    stock, ours = load_actor(model_dir, temperature=temperature), load_actor(model_dir, temperature=temperature)
    stock.packing_samples = ours.packing_samples = packing
    assert chunked_actor.install(ours, chunk_rows=CHUNK_ROWS, entropy_grad=entropy_grad, strict=True)
    return stock, ours


def _run(actor, batch, entropy_coef=0.3, with_entropy=True):
    """Training-style call; a loss with distinct per-token weights; returns values and gradients."""
    seqs, attn, amask = batch
    actor.model.zero_grad()
    lp, out = actor(seqs, amask, attention_mask=attn, return_output=True, return_entropy=with_entropy)
    loss = (lp * torch.linspace(-1.0, 1.0, lp.numel()).view_as(lp)).sum()
    ent = None
    if with_entropy:
        ent = out.entropy[:, -amask.shape[1] :]
        if entropy_coef:
            loss = loss + entropy_coef * (ent * amask).sum()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in actor.model.named_parameters() if p.grad is not None}
    return lp.detach(), None if ent is None else (ent * amask).detach(), grads


def _assert_same(ref, got, *, grad_rtol=1e-5):
    (lp_ref, ent_ref, g_ref), (lp, ent, g) = ref, got
    assert torch.allclose(lp, lp_ref, atol=2e-5, rtol=0)
    if ent_ref is not None:
        assert torch.allclose(ent, ent_ref, atol=2e-5, rtol=0)
    assert set(g) == set(g_ref)
    for name in g_ref:
        err = float((g[name] - g_ref[name]).norm() / g_ref[name].norm().clamp_min(1e-12))
        assert err < grad_rtol, (name, err)


@pytest.mark.parametrize("tied", ["untied", "tied"])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_values_and_gradients_equal_openrlhf_padded(model_dirs, tied, temperature):
    stock, ours = _pair(model_dirs[tied], temperature)
    batch = make_batch(seed=5)
    ref = _run(stock, batch)
    assert float(ref[1].max()) > 0.1  # non-trivial entropies
    _assert_same(ref, _run(ours, batch))


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_values_and_gradients_equal_openrlhf_packed(model_dirs, temperature):
    stock, ours = _pair(model_dirs["untied"], temperature, packing=True)
    batch = make_batch(seed=6, pad=[0, 4, 2])
    _assert_same(_run(stock, batch), _run(ours, batch))


def test_gradient_checkpointing(model_dirs):
    stock, ours = _pair(model_dirs["tied"], 0.7)
    for actor in (stock, ours):
        actor.gradient_checkpointing_enable()
        actor.train()
    batch = make_batch(seed=7)
    _assert_same(_run(stock, batch), _run(ours, batch))


def test_entropy_without_gradient(model_dirs):
    stock, ours = _pair(model_dirs["untied"], 0.7, entropy_grad=False)
    seqs, attn, amask = batch = make_batch(seed=8)
    _, out = ours(seqs, amask, attention_mask=attn, return_output=True, return_entropy=True)
    assert not out.entropy.requires_grad
    # Log-prob gradient alone, and entropy values, equal OpenRLHF's.
    _assert_same(_run(stock, batch, entropy_coef=0.0), _run(ours, batch, entropy_coef=0.0))
    # Without return_entropy no entropy is computed at all.
    _assert_same(_run(stock, batch, with_entropy=False), _run(ours, batch, with_entropy=False))


def test_rollout_pass_no_grad_and_layout(model_dirs):
    stock, ours = _pair(model_dirs["untied"], 0.7)
    seqs, attn, amask = make_batch(seed=9)
    with torch.no_grad():
        ref_lp, ref_out = stock(seqs, amask, attention_mask=attn, return_output=True, return_entropy=True)
        lp = ours(seqs, amask, attention_mask=attn)
        _, out = ours(seqs, amask, attention_mask=attn, return_output=True, return_entropy=True)
    assert lp.shape == ref_lp.shape and torch.allclose(lp, ref_lp, atol=2e-5, rtol=0)
    assert out.entropy.shape == ref_out.entropy.shape == (seqs.shape[0], seqs.shape[1] - 1)
    width = amask.shape[1]
    entropy_actions = out.entropy[:, -width:]
    assert torch.allclose(entropy_actions[amask], ref_out.entropy[:, -width:][amask], atol=2e-5, rtol=0)
    assert torch.all(entropy_actions[~amask] == 0) and torch.all(lp[~amask] == 0)  # only response rows computed


class _LargestVocabTensor(TorchDispatchMode):
    """Records the largest number of rows of any op output whose last dimension is the vocabulary
    (except the transposed [H, V] head weight that every linear layer's call produces)."""

    def __init__(self, vocab, hidden):
        super().__init__()
        self.vocab, self.hidden, self.rows = vocab, hidden, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if (
                isinstance(t, torch.Tensor)
                and t.dim() >= 2
                and t.shape[-1] == self.vocab
                and tuple(t.shape) != (self.hidden, self.vocab)
            ):
                self.rows = max(self.rows, t.numel() // self.vocab)
        return out


def test_at_most_one_chunk_of_logits_alive_forward_and_backward(model_dirs):
    stock, ours = _pair(model_dirs["tied"], 0.7)
    batch = make_batch(seed=10, batch=3, seqlen=12)
    seen = {}
    for name, actor in (("stock", stock), ("ours", ours)):
        with _LargestVocabTensor(VOCAB, actor.model.config.hidden_size) as spy:
            _run(actor, batch)
        seen[name] = spy.rows
    assert seen["stock"] >= 3 * 12  # the spy sees OpenRLHF's [B, T, V] logits
    assert 0 < seen["ours"] <= CHUNK_ROWS


def test_rows_are_the_response_positions():
    amask = torch.tensor([[0, 1, 1, 0], [1, 0, 0, 1]], dtype=torch.bool)  # A = 4, T = 6
    flat_rows, positions = chunked_actor.response_rows(amask, seqlen=6)
    # row b, action a -> hidden position t = T - 1 - A + a = 1 + a; flat = b * T + t
    assert flat_rows.tolist() == [0 * 6 + 2, 0 * 6 + 3, 1 * 6 + 1, 1 * 6 + 4]
    assert positions.tolist() == [1, 2, 4, 7]


def test_calls_needing_logits_use_openrlhf_forward(model_dirs):
    _, ours = _pair(model_dirs["untied"])
    seqs, attn, _ = make_batch(seed=11)
    with torch.no_grad():
        output = ours(seqs, attention_mask=attn, return_output=True)  # no action_mask: logits requested
    assert output["logits"].shape == (*seqs.shape, VOCAB)


def test_ring_attention_falls_back_with_warning(model_dirs, caplog):
    _, ours = _pair(model_dirs["untied"])
    calls = []
    ours.forward.original = lambda *a, **k: calls.append(k["ring_attn_group"]) or "stock"
    seqs, attn, amask = make_batch(seed=12)
    with caplog.at_level(logging.WARNING, logger=chunked_actor.__name__):
        assert ours(seqs, amask, attention_mask=attn, ring_attn_group="group") == "stock"
    assert calls == ["group"] and "ring attention" in caplog.text


def test_custom_head_falls_back_or_raises(model_dirs, caplog):
    class ScaledHead(torch.nn.Module):
        def __init__(self, linear):
            super().__init__()
            self.linear = linear

        def forward(self, hidden):
            return self.linear(hidden) * 0.5

    actor = load_actor(model_dirs["untied"])
    actor.model.lm_head = ScaledHead(actor.model.lm_head)
    with pytest.raises(UnsupportedActorModel, match="ScaledHead"):
        chunked_actor.install(actor, strict=True)
    with caplog.at_level(logging.WARNING, logger=chunked_actor.__name__):
        assert chunked_actor.install(actor) is False
    assert "forward" not in actor.__dict__ and "chunked actor forward disabled" in caplog.text


def test_logits_post_processing_detected_by_probe(model_dirs):
    actor = load_actor(model_dirs["untied"])

    def soft_cap(module, inputs, output):  # what Gemma-2-style soft-capping does after lm_head
        output["logits"] = torch.tanh(output["logits"] / 30.0) * 30.0
        return output

    actor.model.register_forward_hook(soft_cap)
    with pytest.raises(UnsupportedActorModel, match="differ"):
        chunked_actor.install(actor, strict=True)


def test_install_is_idempotent_and_wrapped_by_policy_hook(model_dirs):
    from openrlhf_steer.integration.actor_trainer import install_actor_forward_hook

    actor = load_actor(model_dirs["untied"])
    assert chunked_actor.install(actor) and chunked_actor.install(actor)
    chunked = actor.__dict__["forward"]
    assert isinstance(chunked, ChunkedActorForward) and not isinstance(chunked.original, ChunkedActorForward)
    from openrlhf_steer.runtime import EntropyChannel

    holder = EntropyChannel(capture_old_entropy=True)
    install_actor_forward_hook(actor, holder)
    seqs, attn, amask = make_batch(seed=13)
    calls = []
    original_chunked = chunked._chunked
    chunked._chunked = lambda *a: calls.append(1) or original_chunked(*a)
    with torch.no_grad():
        actor(seqs, amask, attention_mask=attn)
    assert calls == [1] and holder.old_entropy.shape == amask.shape  # the rollout pass went through ours


# --------------------------------------------------------------------------------------------------
# DeepSpeed on CPU (slow)
# --------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_zero_stage(model_dirs, stage):
    pytest.importorskip("deepspeed")
    paths = [str(SUPPORT)]
    if str(SUPPORT / "stubs") in sys.path or importlib.util.find_spec("flash_attn") is None:
        paths.append(str(SUPPORT / "stubs"))
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")]),
        STEERTEST_PORT=str(_free_port()),
        TORCHDYNAMO_DISABLE="1",
        CUDA_VISIBLE_DEVICES="",
    )
    cmd = [sys.executable, str(SUPPORT / "steertest_ds_chunked.py"), str(stage), json.dumps(model_dirs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {r["model"]: r for r in (json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{"))}
    assert set(results) == {"untied", "tied"}
    for name, r in results.items():
        assert r["installed"] and r["tied"] == (name == "tied")
        assert r["released_between_calls"] == (stage == 3)  # ZeRO-3: the head ran on a gathered weight
        assert r["lp_max_diff"] < 2e-5 and r["rollout_lp_max_diff"] < 2e-5 and r["entropy_max_diff"] < 2e-5
        assert r["n_params"] == r["n_ref_params"]
        assert max(r["grad_rel_errors"].values()) < 1e-5, r["grad_rel_errors"]


@pytest.mark.slow
def test_actor_memory_benchmark_end_to_end_tiny(tmp_path):
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "actor_memory.py"
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            "--vocab",
            "500",
            "--seqlen",
            "32",
            "--chunk-rows",
            "8",
            "--repeats",
            "1",
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ, TORCHDYNAMO_DISABLE="1"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("actor_memory: peak_ratio=") and " time_ratio=" in last
    summary = json.loads((tmp_path / "actor_memory.json").read_text())
    jobs = {f"{v}:{m}" for v in ("stock", "chunked") for m in ("forward", "forward_backward")}
    assert set(summary["results"]) == jobs
    for check in summary["checks"].values():  # same policy, same numbers, in both processes
        assert check["mean_log_prob_abs_diff"] < 1e-5 and check["mean_entropy_abs_diff"] < 1e-5
    assert summary["checks"]["forward_backward"]["grad_norm_rel_diff"] < 1e-5
