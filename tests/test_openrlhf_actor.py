"""EntropyControlPolicyModelActor pieces on CPU: the rollout-entropy pass, the checkpoint state, the patches."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest
import torch

pytest.importorskip("openrlhf")

from steertest_openrlhf import (  # noqa: E402
    load_actor,
    make_args,
    make_batch,
    make_experience,
    make_trainer,
    reference_logprobs_entropy,
    save_tiny_qwen2,
)

import openrlhf.trainer.ray.ppo_actor as ppo_actor  # noqa: E402
from openrlhf_steer.integration import ray_actors  # noqa: E402  (applies the actor patches in this process)
from openrlhf_steer.integration.actor_trainer import enable_entropy_control  # noqa: E402
from openrlhf_steer.integration.flags import EntropyControlSpec, apply_method_args  # noqa: E402
from openrlhf_steer.integration.policy_loss import EntropyControlPolicyLoss  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_qwen2(tmp_path_factory.mktemp("tiny_qwen2_actor"), seed=3)


def _policy_actor(model_dir, name, config, monkeypatch, temperature=1.0):
    monkeypatch.setattr(torch.cuda, "current_device", lambda: "cpu")  # PolicyModelActor.forward asks CUDA
    actor = load_actor(model_dir, temperature=temperature)
    spec = EntropyControlSpec(methods=[(name, dict(config))])
    args = make_args()
    apply_method_args(args, spec)
    trainer = make_trainer(actor, args)
    state = enable_entropy_control(trainer, spec, args, max_steps=20, rank=0)
    pa = ray_actors.EntropyControlPolicyModelActor.__new__(ray_actors.EntropyControlPolicyModelActor)
    pa.actor, pa.trainer, pa.strategy = actor, trainer, trainer.strategy
    pa._entropy_state, pa._old_entropy_cache = state, []
    return pa, state


def test_patches_are_active_in_this_process():
    assert ppo_actor.PolicyLoss is EntropyControlPolicyLoss
    assert ppo_actor.iter_grad_accum_global_norm.__module__ == "openrlhf_steer.integration.actor_trainer"
    import openrlhf.models.actor as actor_module

    assert actor_module.compute_entropy.__module__ == "openrlhf_steer.integration.entropy_patch"
    probe = ray_actors.EntropyControlPolicyModelActor.entropy_control_probe(None)
    assert probe["policy_loss_is_ours"] and probe["policy_loss"] == "EntropyControlPolicyLoss"


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_rollout_pass_returns_logprobs_and_caches_entropy(model_dir, monkeypatch, temperature):
    pa, _ = _policy_actor(model_dir, "steer", {}, monkeypatch, temperature=temperature)
    seqs, attn, amask = make_batch(seed=5)
    log_probs = pa.forward(seqs, amask, attn)
    with torch.no_grad():
        ref_lp, ref_ent = reference_logprobs_entropy(pa.actor.model, seqs, attn, temperature=temperature)
    maskf = amask.float()
    assert torch.allclose(log_probs, ref_lp * maskf, atol=1e-5)  # OpenRLHF's return value is unchanged
    cached = pa.pop_old_entropy()
    assert len(cached) == 1 and cached[0].shape == amask.shape
    assert torch.allclose(cached[0], ref_ent * maskf, atol=1e-4)  # temperature-scaled full-vocab entropy
    assert float(cached[0].max()) > 0.1 and pa.pop_old_entropy() == []


def test_rollout_pass_untouched_without_old_entropy(model_dir, monkeypatch):
    pa, _ = _policy_actor(model_dir, "grpo", {}, monkeypatch)
    seqs, attn, amask = make_batch(seed=5)
    pa.forward(seqs, amask, attn)
    assert pa.pop_old_entropy() == []


def test_controller_state_saved_with_openrlhf_checkpoint_and_restored(model_dir, monkeypatch, tmp_path):
    config = {"target_entropy": 5.0, "coef_delta": 0.001, "coef_max": 0.01}
    pa, state = _policy_actor(model_dir, "adaptive_entropy", config, monkeypatch)
    for _ in range(3):  # entropy below target -> coefficient rises by delta per optimizer step
        state.method.on_step_end({"entropy/sampled_nll": 1.0, "entropy/mean": 1.0, "entropy/old_mean": 1.0})
        state.optimizer_step += 1
    coef = state.method.controller_values()["entropy_coef"]
    assert coef == pytest.approx(0.003)

    saved = {}
    pa.strategy.save_ckpt = lambda model, path, tag, max_num, max_mem, client_states, **kw: saved.update(
        path=path, tag=tag, client_states=client_states
    )
    pa.strategy.args.ckpt = NS(path=str(tmp_path), max_num=3, max_mem=1000)
    pa.disable_ds_ckpt, pa.save_hf_ckpt = False, False
    monkeypatch.setattr(ppo_actor, "torch_dist_barrier_and_cuda_sync", lambda: None)
    pa.save_checkpoint("global_step3", client_states={"episode": 0, "global_step": 3})
    states = saved["client_states"]
    assert states["episode"] == 0 and states["global_step"] == 3  # OpenRLHF's own states kept
    assert states[ray_actors.STATE_KEY]["optimizer_step"] == 3

    fresh, fresh_state = _policy_actor(model_dir, "adaptive_entropy", config, monkeypatch)
    assert fresh_state.method.controller_values()["entropy_coef"] == 0.0
    assert fresh._restore_entropy_control(states)
    assert fresh_state.optimizer_step == 3
    assert fresh_state.method.controller_values()["entropy_coef"] == pytest.approx(coef)
    # the restored coefficient is what the next training step uses and logs
    seqs, attn, amask = make_batch(seed=9)
    with torch.no_grad():
        lp, _ = reference_logprobs_entropy(fresh.actor.model, seqs, attn)
    exp = make_experience(seqs, attn, amask, lp * amask, 0.5 * amask.float())
    status = fresh.trainer.training_step(exp, 0.0, 0, None)
    assert float(status["metrics"]["controller/entropy_coef"]) == pytest.approx(coef)

    other, _ = _policy_actor(model_dir, "steer", {}, monkeypatch)
    with pytest.raises(ValueError, match="--entropy.method adaptive_entropy"):
        other._restore_entropy_control(states)
