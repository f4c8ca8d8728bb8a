"""Controllers update once per rollout step by default (issue 12, part 5).

The entropy-guided Pos-Adv-Reweight lambda (Jin et al. Sec. 7.3, Eq. 5: "training step t") and
Skywork-OR1's adaptive entropy coefficient (updated after the whole update of a training step) step
once per rollout step, from that rollout's token-weighted statistics; ``update_every=optimizer_step``
keeps the per-optimizer-step variant (N times as many updates with N optimizer steps per rollout).
Checked on the methods, the CPU demo's loop and OpenRLHF's own ``ppo_train``, with resumed runs.
"""

import pytest
import torch

from openrlhf_steer.methods import build_method, compose_methods

POS_ADV = {"schedule": "entropy", "entropy_target": 0.2, "step_size": 0.05, "lambda_init": 0.0}


# --------------------------------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------------------------------
def test_defaults_are_rollout_step():
    assert build_method("pos_adv_reweight").config.update_every == "rollout_step"
    assert build_method("adaptive_entropy").config.update_every == "rollout_step"
    with pytest.raises(ValueError, match="update_every"):
        build_method("adaptive_entropy", update_every="epoch")


def test_rollout_step_controller_ignores_optimizer_step_boundaries():
    method = build_method("pos_adv_reweight", **POS_ADV)
    high = {"entropy/old_mean": 0.5}
    for _ in range(4):  # N = 4 optimizer steps: no update
        method.on_boundary("optimizer_step", high)
    assert method.lam == 0.0
    method.on_boundary("rollout_step", high)  # H > 0.2: lambda rises by 0.05 once
    assert method.lam == pytest.approx(0.05)
    method.on_boundary("rollout_step", {"entropy/old_mean": 0.1})  # H < 0.2: falls
    assert method.lam == pytest.approx(0.0)

    per_opt = build_method("pos_adv_reweight", update_every="optimizer_step", **POS_ADV)
    for _ in range(4):
        per_opt.on_boundary("optimizer_step", high)
    per_opt.on_boundary("rollout_step", high)
    assert per_opt.lam == pytest.approx(0.20)  # four updates, none at the rollout boundary
    with pytest.raises(ValueError, match="boundary"):
        per_opt.on_boundary("epoch", high)


def test_entropy_guided_rule_at_the_target_falls():
    # Sec. 7.3: lambda rises when the entropy exceeds delta, "otherwise" falls -- H == delta falls.
    method = build_method("pos_adv_reweight", **dict(POS_ADV, lambda_init=0.1))
    method.on_boundary("rollout_step", {"entropy/old_mean": 0.2})
    assert method.lam == pytest.approx(0.05)
    method.on_boundary("rollout_step", {"entropy/old_mean": 0.2000001})
    assert method.lam == pytest.approx(0.10)


def test_composed_members_update_at_their_own_boundary():
    pos = build_method("pos_adv_reweight", **POS_ADV)
    ada = build_method(
        "adaptive_entropy",
        update_every="optimizer_step",
        entropy_metric="entropy/old_mean",
        target_entropy=0.3,
        coef_delta=1e-4,
    )
    both = compose_methods([pos, ada])
    stats = {"entropy/old_mean": 0.25}  # above 0.2 (lambda rises), below 0.3 (coef rises)
    for _ in range(3):
        both.on_boundary("optimizer_step", stats)
    both.on_boundary("rollout_step", stats)
    assert pos.lam == pytest.approx(0.05)
    assert ada.coef == pytest.approx(3e-4)


# --------------------------------------------------------------------------------------------------
# The CPU demo's loop
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def start_dir(tmp_path_factory):
    from openrlhf_steer.apps.demo.models import build_char_tokenizer, build_tiny_model, save_policy

    d = tmp_path_factory.mktemp("tiny_start") / "model"
    save_policy(build_tiny_model("xxs", seed=0), build_char_tokenizer(), d)
    return d


def _demo_run(start_dir, run_dir, options):
    from openrlhf_steer.apps.demo.config import MethodSpec, RLConfig
    from openrlhf_steer.apps.demo.task import get_task
    from openrlhf_steer.apps.demo.train import MethodRun

    task = get_task("add1")
    pool, _ = task.split(0, 16)
    # 16 samples, 4 optimizer steps of 4 samples each per rollout step
    rl = RLConfig(
        steps=3,
        prompts_per_step=4,
        samples_per_prompt=4,
        mini_batches=4,
        micro_batch_size=2,
        max_new_tokens=3,
        save_every=1,
        probe_prompts=4,
    )
    spec = MethodSpec("pos", "pos_adv_reweight", dict(options), {"eps_low": 0.2, "eps_high": 0.2}, "")
    return MethodRun(spec, start_dir, run_dir, task, pool, rl)


def _record_updates(run):
    seen = []
    original = run.method.on_step_end

    def on_step_end(stats):
        seen.append(dict(stats))
        original(stats)

    run.method.on_step_end = on_step_end
    return seen


def test_demo_updates_once_per_rollout_from_the_rollout_entropy(start_dir, tmp_path):
    # target 0: every rollout's entropy exceeds it, so lambda rises by 0.05 per controller update.
    options = dict(POS_ADV, entropy_target=0.0)
    run = _demo_run(start_dir, tmp_path / "rollout", options)
    seen = _record_updates(run)
    rows = run.train(progress=False)
    assert len(seen) == 3 and run.method.lam == pytest.approx(0.15)
    assert [r["controller/pos_adv_lambda"] for r in rows] == pytest.approx([0.05, 0.10, 0.15])
    # the statistic is the whole rollout's token-mean rollout entropy (4 equal-size windows cover it)
    for stats, row in zip(seen, rows):
        assert stats["entropy/old_mean"] == pytest.approx(row["entropy/rollout"], rel=1e-6)

    per_opt = _demo_run(start_dir, tmp_path / "optimizer", dict(options, update_every="optimizer_step"))
    seen = _record_updates(per_opt)
    rows = per_opt.train(progress=False)
    assert len(seen) == 12 and per_opt.method.lam == pytest.approx(0.60)
    assert [r["controller/pos_adv_lambda"] for r in rows] == pytest.approx([0.20, 0.40, 0.60])


def test_demo_resumed_run_continues_exactly(start_dir, tmp_path):
    options = dict(POS_ADV, entropy_target=0.0)
    whole = _demo_run(start_dir, tmp_path / "whole", options)
    rows_whole = whole.train(progress=False)
    assert whole.method.lam == pytest.approx(0.15)  # a run that forgot the restored lambda would end at 0.10
    first = _demo_run(start_dir, tmp_path / "split", options)
    first.train(progress=False, stop_after=1)
    assert first.method.state_dict()["steps_seen"] == 1
    resumed = _demo_run(start_dir, tmp_path / "split", options)
    rows_split = resumed.train(progress=False)
    assert resumed.method.state_dict() == whole.method.state_dict()
    drop = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in rows_split] == [
        {k: v for k, v in r.items() if k not in drop} for r in rows_whole
    ]


# --------------------------------------------------------------------------------------------------
# OpenRLHF's ppo_train (one rollout step) with our trainer subclass
# --------------------------------------------------------------------------------------------------
def _replay_buffer(sample_batch_size):
    from openrlhf.trainer.ppo_utils import NaiveReplayBuffer

    rb = NaiveReplayBuffer.__new__(NaiveReplayBuffer)  # its __init__ asks CUDA for the target device
    rb.sample_batch_size, rb.limit, rb.cpu_offload, rb.packing_samples = sample_batch_size, 0, True, False
    rb.target_device, rb.items, rb.dynamic_batch = torch.device("cpu"), [], False
    rb.dynamic_indices, rb.dynamic_sample_loss_scale, rb.dynamic_batch_num_tokens = [], [], []
    rb.dynamic_global_batch_size, rb.dynamic_optimizer_step = [], []
    return rb


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    pytest.importorskip("openrlhf")
    from steertest_openrlhf import save_tiny_qwen2

    return save_tiny_qwen2(tmp_path_factory.mktemp("qwen") / "m")


def _openrlhf_trainer(model_path, monkeypatch, config):
    from steertest_openrlhf import (
        load_actor,
        make_args,
        make_batch,
        make_experience,
        make_trainer,
        reference_logprobs_entropy,
    )

    from openrlhf_steer.integration import entropy_patch
    from openrlhf_steer.integration.actor_trainer import enable_entropy_control, install_window_iterator
    from openrlhf_steer.integration.flags import EntropyControlSpec, apply_method_args

    monkeypatch.setattr(torch.cuda, "current_device", lambda: "cpu")
    entropy_patch.install()
    install_window_iterator()
    actor = load_actor(model_path)
    spec = EntropyControlSpec(methods=[("adaptive_entropy", config)])
    args = make_args()
    apply_method_args(args, spec)
    trainer = make_trainer(actor, args)  # lr 0: the policy stays fixed, every rollout step sees the same data
    trainer.replay_buffer = _replay_buffer(sample_batch_size=2)
    trainer.dataloader_pin_memory = False
    trainer.strategy.accumulated_gradient = 1  # 6 samples / 2 per micro-batch = 3 optimizer steps per rollout
    state = enable_entropy_control(trainer, spec, args, max_steps=12, rank=0)
    nll_sum = tokens = 0.0
    for seed in (1, 2):
        seqs, attn, amask = make_batch(seed=seed)
        with torch.no_grad():
            lp, _ = reference_logprobs_entropy(actor.model, seqs, attn)
        old = lp * amask.float()
        nll_sum += float(-(old.double()).sum())
        tokens += float(amask.sum())
        adv = torch.tensor([0.9, -0.4, 0.3])[:, None] * amask.float()
        trainer.replay_buffer.append(make_experience(seqs, attn, amask, old, adv, info={"reward": torch.ones(3)}))
    return trainer, state, nll_sum / tokens


def _ppo_train(trainer, seed):
    torch.manual_seed(seed)  # the DataLoader shuffle
    return trainer.ppo_train(0.0)


def test_openrlhf_controller_steps_once_per_ppo_train(tiny_qwen, monkeypatch):
    config = {"target_entropy": 100.0, "coef_delta": 0.002, "coef_max": 0.05}  # below target: coef += delta
    trainer, state, rollout_nll = _openrlhf_trainer(tiny_qwen, monkeypatch, config)
    seen = []
    original = state.method.on_step_end
    state.method.on_step_end = lambda stats: (seen.append(dict(stats)), original(stats))
    status = _ppo_train(trainer, 0)
    assert state.optimizer_step == 3 and state.rollout_step == 1
    assert len(seen) == 1 and state.method.coef == pytest.approx(0.002)
    assert status["controller/entropy_coef"] == 0.0  # value used during the rollout step
    # the rollout's token-weighted -mean(log p_old) over all 6 responses, computed from the experiences
    assert seen[0]["entropy/sampled_nll"] == pytest.approx(rollout_nll, rel=1e-5)
    status = _ppo_train(trainer, 1)
    assert state.rollout_step == 2 and state.method.coef == pytest.approx(0.004)
    assert status["controller/entropy_coef"] == pytest.approx(0.002)

    per_opt, per_opt_state, _ = _openrlhf_trainer(tiny_qwen, monkeypatch, dict(config, update_every="optimizer_step"))
    _ppo_train(per_opt, 0)
    assert per_opt_state.method.coef == pytest.approx(0.006)  # three optimizer steps, three updates


def test_openrlhf_resumed_controller_continues_exactly(tiny_qwen, monkeypatch):
    config = {"target_entropy": 100.0, "coef_delta": 0.001}
    whole, whole_state, _ = _openrlhf_trainer(tiny_qwen, monkeypatch, config)
    statuses = [_ppo_train(whole, seed) for seed in (0, 1, 2)]
    assert whole_state.method.coef == pytest.approx(0.003)

    first, first_state, _ = _openrlhf_trainer(tiny_qwen, monkeypatch, config)
    _ppo_train(first, 0)
    saved = first_state.state_dict()  # what EntropyControlPolicyModelActor puts into OpenRLHF's checkpoint
    assert saved["rollout_step"] == 1 and saved["optimizer_step"] == 3
    resumed, resumed_state, _ = _openrlhf_trainer(tiny_qwen, monkeypatch, config)
    resumed_state.load_state_dict(saved)
    resumed_statuses = [_ppo_train(resumed, seed) for seed in (1, 2)]
    assert resumed_state.state_dict() == whole_state.state_dict()
    for a, b in zip(resumed_statuses, statuses[1:]):
        assert a["controller/entropy_coef"] == b["controller/entropy_coef"]
        assert a["controller/entropy_enabled"] == b["controller/entropy_enabled"]
