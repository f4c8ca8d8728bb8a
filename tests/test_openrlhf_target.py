"""The entropy target on the OpenRLHF path (CPU): flags -> spec -> the actor's controller boundary, the
state saved with OpenRLHF's checkpoint, a resumed actor continuing exactly, the logged target metrics."""

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
    save_tiny_qwen2,
)

import openrlhf.trainer.ray.ppo_actor as ppo_actor  # noqa: E402
from openrlhf_steer.integration import ray_actors  # noqa: E402  (applies the actor patches in this process)
from openrlhf_steer.integration.actor_trainer import enable_entropy_control  # noqa: E402
from openrlhf_steer.integration.side_channel import OLD_ENTROPY_KEY  # noqa: E402
from openrlhf_steer.integration.flags import (  # noqa: E402
    EntropyArgsError,
    EntropyControlSpec,
    apply_method_args,
    build_parser,
    split_argv,
)

ARGV = (
    "--entropy.method clip_higher --entropy.target.lever clip.eps_high --entropy.target.controller pi "
    "--entropy.target.schedule cosine --entropy.target.start 0.6 --entropy.target.end 0.2 "
    "--entropy.target.total_steps 4 --entropy.target.kp 0.5 --entropy.target.ki 0.5 --entropy.target.lever_max 0.4"
).split()
# Rollout-step entropies (the target follows a cosine 0.6 -> 0.2 over 4 rollout steps)
ENTROPIES = [0.9, 0.7, 0.3, 0.1, 0.25, 0.2]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_qwen2(tmp_path_factory.mktemp("tiny_qwen2_target"), seed=3)


def _policy_actor(model_dir, spec, monkeypatch):
    monkeypatch.setattr(torch.cuda, "current_device", lambda: "cpu")
    actor = load_actor(model_dir)
    args = make_args()
    apply_method_args(args, spec)
    trainer = make_trainer(actor, args)
    state = enable_entropy_control(trainer, spec, args, max_steps=20, rank=0)
    pa = ray_actors.EntropyControlPolicyModelActor.__new__(ray_actors.EntropyControlPolicyModelActor)
    pa.actor, pa.trainer, pa.strategy = actor, trainer, trainer.strategy
    pa._entropy_state, pa._old_entropy_cache = state, []
    return pa, state


def _rollout_step(pa, entropy):
    """One rollout step's boundary as the actor runs it: its (DP-reduced) window statistics, then
    ``_end_rollout_step`` (where the methods' controllers run)."""
    state = pa._entropy_state
    state.runtime.rollout_windows = [{"entropy/old_mean": entropy, "tokens/valid": 12.0}]
    pa.trainer._end_rollout_step()
    return state.method.controller_values()


def test_flags_build_a_target_and_travel_as_json():
    spec, rest = split_argv(ARGV + ["--actor.eps_clip", "0.2"])
    assert rest == ["--actor.eps_clip", "0.2"]
    assert spec.target["lever"] == "clip.eps_high" and spec.target["start"] == 0.6
    again = EntropyControlSpec.from_json(spec.to_json())
    assert again.target == spec.target and type(again.method).__name__ == "TargetedMethod"
    assert spec.needs.old_entropy and spec.needs.controller  # the rollout entropy pass runs
    help_text = build_parser().format_help()
    assert "--entropy.target.controller" in help_text and "EntroPIC" in help_text
    with pytest.raises(EntropyArgsError, match="add one of them to --entropy.method"):
        split_argv(["--entropy.method", "grpo", "--entropy.target.lever", "clip.eps_high"])


def test_target_runs_at_the_rollout_boundary_and_resumes_exactly(model_dir, monkeypatch, tmp_path):
    spec, _ = split_argv(ARGV)
    pa, state = _policy_actor(model_dir, spec, monkeypatch)
    whole = [_rollout_step(pa, h) for h in ENTROPIES]
    # first update by hand: target 0.6, H 0.9, error -0.3, eps_high raises entropy so d = -0.3;
    # u = 0.28 + 0.5 * (-0.3) + 0.5 * (-0.3) = -0.02 < 0 with d < 0: anti-windup keeps I = 0, u = 0.13
    assert whole[0]["target/target"] == pytest.approx(0.6)
    assert whole[0]["target/error"] == pytest.approx(-0.3)
    assert whole[0]["target/lever"] == pytest.approx(0.13)
    # cosine 0.6 -> 0.2 over 4 rollout steps: 0.4 at progress 1/2
    assert whole[2]["target/target"] == pytest.approx(0.4)

    spec, _ = split_argv(ARGV)
    first, first_state = _policy_actor(model_dir, spec, monkeypatch)
    head = [_rollout_step(first, h) for h in ENTROPIES[:3]]
    saved = {}
    first.strategy.save_ckpt = lambda model, path, tag, max_num, max_mem, client_states, **kw: saved.update(
        client_states=client_states
    )
    first.strategy.args.ckpt = NS(path=str(tmp_path), max_num=3, max_mem=1000)
    first.disable_ds_ckpt, first.save_hf_ckpt = False, False
    monkeypatch.setattr(ppo_actor, "torch_dist_barrier_and_cuda_sync", lambda: None)
    first.save_checkpoint("global_step3", client_states={"episode": 0, "global_step": 3})
    states = saved["client_states"]
    assert states[ray_actors.STATE_KEY]["method"]["target"]["updates"] == 3

    spec, _ = split_argv(ARGV)
    fresh, fresh_state = _policy_actor(model_dir, spec, monkeypatch)
    assert fresh_state.method.inner.config.eps_high == 0.28  # before the restore: the method's default
    assert fresh._restore_entropy_control(states)
    assert fresh_state.method.inner.config.eps_high == head[-1]["target/lever"]
    tail = [_rollout_step(fresh, h) for h in ENTROPIES[3:]]
    assert head + tail == whole  # exactly the uninterrupted sequence

    # the next training step's loss uses the restored eps_high and logs target, measured, error and lever
    seqs, attn, amask = make_batch(seed=9)
    lp = fresh.forward(seqs, amask, attn)  # the rollout pass: log-probs, and the rollout entropy cached
    exp = make_experience(seqs, attn, amask, lp, 0.5 * amask.float())
    exp.info[OLD_ENTROPY_KEY] = fresh.pop_old_entropy()[0]
    metrics = fresh.trainer.training_step(exp, 0.0, 0, None)["metrics"]
    for key in ("target", "measured", "error", "lever"):
        assert float(metrics[f"controller/target/{key}"]) == pytest.approx(whole[-1][f"target/{key}"])
    assert fresh_state.method.loss_config(fresh.trainer.actor_loss_fn.binding.loss.loss_config).eps_high == (
        pytest.approx(whole[-1]["target/lever"])
    )
