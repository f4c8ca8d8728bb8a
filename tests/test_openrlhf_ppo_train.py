"""OpenRLHF's own ActorPPOTrainer.ppo_train (replay buffer, DataLoader, window iterator, metric merging)
with our trainer subclass: rollout entropy survives the replay buffer row by row, the controller
steps once per optimizer step, and every method metric comes out of ppo_train (what OpenRLHF logs)."""

from __future__ import annotations

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

from openrlhf_steer.integration import entropy_patch  # noqa: E402
from openrlhf_steer.integration.actor_trainer import enable_entropy_control, install_window_iterator  # noqa: E402
from openrlhf_steer.integration.flags import EntropyControlSpec, apply_method_args  # noqa: E402
from openrlhf_steer.integration.side_channel import OLD_ENTROPY_KEY  # noqa: E402


def _replay_buffer(sample_batch_size):
    from openrlhf.trainer.ppo_utils import NaiveReplayBuffer

    rb = NaiveReplayBuffer.__new__(NaiveReplayBuffer)  # its __init__ asks CUDA for the target device
    rb.sample_batch_size, rb.limit, rb.cpu_offload, rb.packing_samples = sample_batch_size, 0, True, False
    rb.target_device, rb.items, rb.dynamic_batch = torch.device("cpu"), [], False
    rb.dynamic_indices, rb.dynamic_sample_loss_scale, rb.dynamic_batch_num_tokens = [], [], []
    rb.dynamic_global_batch_size, rb.dynamic_optimizer_step = [], []
    return rb


def test_ppo_train_end_to_end_on_cpu(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "current_device", lambda: "cpu")
    entropy_patch.install()
    install_window_iterator()
    torch.manual_seed(0)  # the DataLoader shuffle
    actor = load_actor(save_tiny_qwen2(tmp_path / "m"))
    spec = EntropyControlSpec(
        methods=[("steer", {"lambda_min": 0.8}), ("adaptive_entropy", {"target_entropy": 100.0, "coef_delta": 0.002})]
    )
    args = make_args()
    apply_method_args(args, spec)
    assert args.actor.entropy_coef == 0.0  # adaptive_entropy reads the current entropy
    trainer = make_trainer(actor, args)
    trainer.replay_buffer = _replay_buffer(sample_batch_size=2)
    trainer.dataloader_pin_memory = False
    trainer.strategy.accumulated_gradient = 3  # 6 samples / 2 per micro-batch = one optimizer step
    state = enable_entropy_control(trainer, spec, args, max_steps=4, rank=0)

    old_entropy_by_row = {}
    for seed in (1, 2):
        seqs, attn, amask = make_batch(seed=seed)
        with torch.no_grad():
            lp, ent = reference_logprobs_entropy(actor.model, seqs, attn)
        old_ent = (ent + 0.05) * amask.float()
        for r in range(seqs.shape[0]):
            old_entropy_by_row[tuple(seqs[r].tolist())] = old_ent[r]
        adv = torch.tensor([0.9, -0.4, 0.3])[:, None] * amask.float()
        trainer.replay_buffer.append(
            make_experience(
                seqs, attn, amask, lp * amask.float(), adv, info={OLD_ENTROPY_KEY: old_ent, "reward": torch.ones(3)}
            )
        )

    seen_rows = []
    core_loss = trainer.actor_loss_fn.binding.loss

    def spy(inputs, num_tokens=None, num_seqs=None):
        seen_rows.append((inputs.old_entropy.detach().clone(), inputs.action_mask.clone()))
        return core_loss(inputs, num_tokens=num_tokens, num_seqs=num_seqs)

    trainer.actor_loss_fn.binding.loss = spy
    sequences_seen = []
    original_step = type(trainer).training_step

    def recording_step(self, experience, kl_ctl, step, loss_batch_info=None):
        sequences_seen.append(experience.sequences.clone())
        return original_step(self, experience, kl_ctl, step, loss_batch_info)

    monkeypatch.setattr(type(trainer), "training_step", recording_step)
    status = trainer.ppo_train(0.0)

    # rollout entropy reached the loss for the right rows, padding re-aligned after the replay buffer
    assert len(seen_rows) == 3
    for seqs, (old_entropy, mask) in zip(sequences_seen, seen_rows):
        for r in range(seqs.shape[0]):
            key = tuple(seqs[r][: int((seqs[r] != 0).sum())].tolist())
            expected = next(v for k, v in old_entropy_by_row.items() if tuple(k[: len(key)]) == key)
            width = mask.shape[1]
            assert torch.allclose(old_entropy[r], expected[:width] * mask[r].float(), atol=1e-6)
    # one optimizer-step window -> one controller update (entropy far below target: coef += delta)
    assert state.optimizer_step == 1
    assert state.method.controller_values()["entropy_coef"] == pytest.approx(0.002)
    # metrics OpenRLHF will log as train/<key>
    for key in (
        "policy_loss",
        "entropy_loss",
        "loss/total",
        "loss/policy",
        "weights/mean",
        "weights/min",
        "entropy/current_mean",
        "entropy/old_mean",
        "clip/frac_high",
        "controller/entropy_coef",
        "method/omega_abs_max",
        "ppo_clip_ratio",
        "reward",
    ):
        assert key in status, key
    assert OLD_ENTROPY_KEY not in status
    assert status["controller/entropy_coef"] == 0.0  # value during the step; the update applies next step
    assert 0.8 <= status["weights/min"] < 1.0
