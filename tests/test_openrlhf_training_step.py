"""OpenRLHF's own ActorPPOTrainer.training_step with our loss, against an independent computation.

The trainer path: OpenRLHF ``Actor`` (tiny Qwen2 from disk, sdpa) -> our chunked entropy inside
``Actor.forward`` -> ``EntropyControlPolicyLoss`` -> core ``PolicyLoss``; OpenRLHF's backward/optimizer calls.
The independent path: a plain HF forward with a full ``log_softmax`` and a direct call of the core
``PolicyLoss`` on the same tensors. Losses and every parameter gradient must agree.
"""

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

from openrlhf_steer.integration.actor_trainer import active_trainer, enable_entropy_control, step_seed, window_iterator  # noqa: E402
from openrlhf_steer.integration.flags import EntropyControlSpec, apply_method_args  # noqa: E402
from openrlhf_steer.integration.side_channel import OLD_ENTROPY_KEY  # noqa: E402
from openrlhf_steer.integration import entropy_patch  # noqa: E402
from openrlhf_steer.core.loss import PolicyLoss  # noqa: E402
from openrlhf_steer.methods import build_method  # noqa: E402
from openrlhf_steer.core.types import LossConfig
from openrlhf_steer.methods.base import LossInputs  # noqa: E402

SEED = 7
WINDOW_SCALE = 1.5  # the window holds 1.5x this micro-batch's tokens (as with gas > 1)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    entropy_patch.install()
    return save_tiny_qwen2(tmp_path_factory.mktemp("tiny_qwen2"))


def _rollout_tensors(actor, seed=1):
    sequences, attention_mask, action_mask = make_batch(seed=seed)
    with torch.no_grad():
        lp, ent = reference_logprobs_entropy(actor.model, sequences, attention_mask)
    g = torch.Generator().manual_seed(seed + 100)
    maskf = action_mask.float()
    old_log_probs = (lp + 0.3 * torch.randn(lp.shape, generator=g)) * maskf  # ratios away from 1: some clip
    old_entropy = (ent + 0.1) * maskf
    advantages = torch.tensor([1.2, -0.7, 0.4])[:, None] * maskf
    return sequences, attention_mask, action_mask, old_log_probs, old_entropy, advantages


def _trimmed_rows(values, attention_mask):
    """What the replay buffer leaves in info: one row per sample, right padding trimmed."""
    return [values[i, : max(int(attention_mask[i].sum()) - 1, 1)].clone() for i in range(values.shape[0])]


CASES = [
    ("grpo", {}),
    ("steer", {"lambda_min": 0.8, "lambda_max": 1.0}),
    ("steer", {"lambda_min": 0.8, "lambda_max": 1.2, "mapping": "linear", "entropy_source": "current"}),
    ("clip_cov", {"clip_ratio": 0.2, "cov_lb": -1e9, "cov_ub": 1e9}),
    ("entropy_loss", {"coef": 0.05}),
    ("pos_adv_reweight", {"schedule": "constant", "lambda_value": 0.25}),
    ("clip_higher", {"eps_high": 0.05}),
]


@pytest.mark.parametrize("name,config", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_training_step_matches_core_loss(model_dir, name, config):
    actor = load_actor(model_dir)
    spec = EntropyControlSpec(methods=[(name, dict(config))])
    args = make_args(seed=SEED)
    needs = apply_method_args(args, spec)  # the launcher's adjustments (entropy_coef 0 when needed)
    assert (args.actor.entropy_coef == 0.0) == needs.current_entropy
    trainer = make_trainer(actor, args)
    enable_entropy_control(trainer, spec, args, max_steps=10, rank=0)

    seqs, attn, amask, old_lp, old_ent, adv = _rollout_tensors(actor)
    exp = make_experience(seqs, attn, amask, old_lp, adv, info={OLD_ENTROPY_KEY: _trimmed_rows(old_ent, attn)})
    n_tokens = float(amask.sum())
    loss_batch_info = {
        "dp_size": 1,
        "batch_num_tokens": torch.tensor(n_tokens * WINDOW_SCALE),
        "global_batch_size": torch.tensor(3.0),
    }
    status = trainer.training_step(exp, 0.0, 0, loss_batch_info)
    assert OLD_ENTROPY_KEY not in exp.info  # per-token side data never reaches OpenRLHF's logging

    # Independent path on the same parameters (lr = 0 keeps them unchanged).
    actor.model.zero_grad()
    lp, ent = reference_logprobs_entropy(actor.model, seqs, attn)
    method = build_method(name, config)
    base = LossConfig(eps_low=0.2, eps_high=0.28, dual_clip=10.0)
    inputs = LossInputs(
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
        generator=torch.Generator().manual_seed(step_seed(SEED, 0, 0)),
    )
    expected, expected_metrics = PolicyLoss(base, method)(inputs, num_tokens=n_tokens * WINDOW_SCALE)
    expected.backward()

    logged = status["metrics"]
    assert float(logged["policy_loss"]) == pytest.approx(float(expected.detach()), rel=1e-4, abs=1e-6)
    for key in ("loss/total", "weights/mean", "weights/min", "clip/frac_high", "entropy/mean"):
        assert key in logged and status["weights"][key] == "token"
        assert float(logged[key]) == pytest.approx(expected_metrics[key], rel=1e-4, abs=1e-6), key
    got = trainer.strategy.grads[0]
    assert got, "no gradient reached the optimizer step"
    total = 0.0
    for pname, param in actor.model.named_parameters():
        if param.grad is None:
            continue
        # float32 throughout; the chunked and the full-softmax paths differ only by rounding
        err = float((got["model." + pname] - param.grad).norm())
        assert err <= 2e-4 * float(param.grad.norm()) + 1e-6, (pname, err)
        total += float(param.grad.norm())
    assert total > 0
    if name == "entropy_loss":  # our chunked entropy was logged by OpenRLHF's own entropy_loss path
        assert float(logged["entropy_loss"]) == pytest.approx(
            expected_metrics["entropy/current_mean"] / WINDOW_SCALE, rel=1e-4
        )


def test_method_changes_the_update(model_dir):
    """STEER's weights must change the gradient relative to GRPO on the same batch (not a no-op)."""
    grads = {}
    for name, config in (("grpo", {}), ("steer", {"lambda_min": 0.5})):
        actor = load_actor(model_dir)
        spec = EntropyControlSpec(methods=[(name, config)])
        args = make_args(seed=SEED)
        apply_method_args(args, spec)
        trainer = make_trainer(actor, args)
        enable_entropy_control(trainer, spec, args, max_steps=10, rank=0)
        seqs, attn, amask, old_lp, old_ent, adv = _rollout_tensors(actor)
        exp = make_experience(seqs, attn, amask, old_lp, adv, info={OLD_ENTROPY_KEY: _trimmed_rows(old_ent, attn)})
        status = trainer.training_step(exp, 0.0, 0, None)
        grads[name] = (trainer.strategy.grads[0]["model.lm_head.weight"], status["metrics"])
    assert float(grads["steer"][1]["weights/min"]) < 1.0
    assert float(grads["grpo"][1]["weights/min"]) == 1.0
    assert not torch.allclose(grads["grpo"][0], grads["steer"][0])


def test_window_iterator_mini_batch_stats_and_controller(model_dir):
    """stat_scope=mini_batch: one statistic over both micro-batches of the window, one controller step."""
    actor = load_actor(model_dir)
    config = {"lambda_min": 0.7, "stat_scope": "mini_batch"}
    spec = EntropyControlSpec(methods=[("steer", config)])
    args = make_args(seed=SEED)
    apply_method_args(args, spec)
    trainer = make_trainer(actor, args)
    state = enable_entropy_control(trainer, spec, args, max_steps=10, rank=0)

    batches = [_rollout_tensors(actor, seed=s) for s in (1, 2)]
    experiences = [
        make_experience(b[0], b[1], b[2], b[3], b[5], info={OLD_ENTROPY_KEY: _trimmed_rows(b[4], b[1])})
        for b in batches
    ]
    # Independent window statistic: max/min |Omega| over both micro-batches, current = rollout-time policy.
    method = build_method("steer", config)
    independent_inputs = []
    with torch.no_grad():
        for seqs, attn, amask, old_lp, old_ent, adv in batches:
            lp, _ = reference_logprobs_entropy(actor.model, seqs, attn)
            independent_inputs.append(
                LossInputs(log_probs=lp, old_log_probs=old_lp, advantages=adv, action_mask=amask, old_entropy=old_ent)
            )
    expected_stats = method.window_stats(independent_inputs)

    with active_trainer(trainer):
        seen = []
        for step, (exp, info) in enumerate(
            window_iterator(iter(experiences), trainer.strategy, 2, lambda e: e.action_mask)
        ):
            assert state.micro["window_stats"]["steer/max"] == pytest.approx(
                float(expected_stats["steer/max"]), rel=1e-5
            )
            assert state.micro["window_stats"]["steer/min"] == pytest.approx(
                float(expected_stats["steer/min"]), rel=1e-5, abs=1e-9
            )
            seen.append(float(info["batch_num_tokens"]))
            trainer.training_step(exp, 0.0, step, info)
    total = sum(float(b[2].sum()) for b in batches)
    assert seen == [pytest.approx(total / 2)] * 2  # OpenRLHF's window normaliser, untouched
    assert state.optimizer_step == 1  # one optimizer-step window -> one controller update
    assert len(trainer.strategy.reduced) == 1 and "_tokens" in trainer.strategy.reduced[0]


def test_kl_penalty_replaces_openrlhf_kl_term(model_dir):
    """kl_penalty reads the reference log-probs; OpenRLHF's own KL loss is computed/logged but weighted 0."""
    actor = load_actor(model_dir)
    config = {"coef": 0.5, "estimator": "k3"}
    spec = EntropyControlSpec(methods=[("kl_penalty", config)])
    args = make_args(seed=SEED, kl_use_loss=True, kl_coef=0.01)
    apply_method_args(args, spec)
    trainer = make_trainer(actor, args)
    enable_entropy_control(trainer, spec, args, max_steps=10, rank=0)
    seqs, attn, amask, old_lp, _, adv = _rollout_tensors(actor)
    ref_lp = old_lp - 0.2 * amask.float()
    exp = make_experience(seqs, attn, amask, old_lp, adv)
    exp.base_action_log_probs = ref_lp
    status = trainer.training_step(exp, 0.01, 0, None)

    actor.model.zero_grad()
    lp, _ = reference_logprobs_entropy(actor.model, seqs, attn)
    inputs = LossInputs(log_probs=lp, old_log_probs=old_lp, advantages=adv, action_mask=amask, ref_log_probs=ref_lp)
    expected, metrics = PolicyLoss(
        LossConfig(eps_low=0.2, eps_high=0.28, dual_clip=10.0), build_method("kl_penalty", config)
    )(inputs)
    expected.backward()
    assert float(status["metrics"]["policy_loss"]) == pytest.approx(float(expected.detach()), rel=1e-4)
    assert float(status["metrics"]["kl"]) != 0.0  # OpenRLHF still logs its own KL estimate
    got = trainer.strategy.grads[0]["model.lm_head.weight"]
    ref = actor.model.lm_head.weight.grad
    assert float((got - ref).norm()) <= 2e-4 * float(ref.norm()) + 1e-6


def test_window_iterator_forking_tokens_current_entropy_quantile(model_dir):
    """80/20 forking tokens over the window: the entropy quantile uses the current policy's entropy of both
    micro-batches (extra no-grad forward), and each micro-batch's loss uses that shared threshold."""
    actor = load_actor(model_dir)
    config = {"top_entropy_fraction": 0.2, "entropy_source": "current", "stat_scope": "mini_batch"}
    spec = EntropyControlSpec(methods=[("forking_tokens", config)])
    args = make_args(seed=SEED)
    apply_method_args(args, spec)
    assert args.actor.entropy_coef == 0.0
    trainer = make_trainer(actor, args)
    enable_entropy_control(trainer, spec, args, max_steps=10, rank=0)
    batches = [_rollout_tensors(actor, seed=s) for s in (3, 4)]
    experiences = [make_experience(b[0], b[1], b[2], b[3], b[5]) for b in batches]
    method = build_method("forking_tokens", config)
    with torch.no_grad():
        independent = []
        for seqs, attn, amask, old_lp, _, adv in batches:
            lp, ent = reference_logprobs_entropy(actor.model, seqs, attn)
            independent.append(
                LossInputs(log_probs=lp, old_log_probs=old_lp, advantages=adv, action_mask=amask, entropy=ent)
            )
    expected = method.window_stats(independent)["forking_tokens/threshold"]
    losses = []
    with active_trainer(trainer):
        for step, (exp, info) in enumerate(
            window_iterator(iter(experiences), trainer.strategy, 2, lambda e: e.action_mask)
        ):
            got = trainer.entropy_state.micro["window_stats"]["forking_tokens/threshold"]
            assert float(got) == pytest.approx(float(expected), rel=1e-4)
            losses.append(float(trainer.training_step(exp, 0.0, step, info)["metrics"]["policy_loss"]))
    # independent loss of each micro-batch with the shared threshold and the window token count
    window_tokens = float(sum(b[2].sum() for b in batches))
    for (seqs, attn, amask, old_lp, _, adv), logged in zip(batches, losses):
        lp, ent = reference_logprobs_entropy(actor.model, seqs, attn)
        inputs = LossInputs(
            log_probs=lp,
            old_log_probs=old_lp,
            advantages=adv,
            action_mask=amask,
            entropy=ent,
            window_stats={"forking_tokens/threshold": expected},
        )
        ref, _ = PolicyLoss(LossConfig(eps_low=0.2, eps_high=0.28, dual_clip=10.0), method)(
            inputs, num_tokens=window_tokens / 2
        )
        assert logged == pytest.approx(float(ref.detach()), rel=1e-4, abs=1e-7)
