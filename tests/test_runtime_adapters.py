"""Issue 24: the OpenRLHF actor and the demo's training loop log the same metrics for the same window.

Both adapters run their own training step on the same two micro-batches (one optimizer-step window of
the tiny Qwen2 of the OpenRLHF tests): the actor through OpenRLHF's ``training_step`` and window
iterator (OpenRLHF's window normaliser, our chunked forward), the demo through ``MethodRun.optimizer_step``
(its window token count, a plain HF forward). The runtime's window statistics and rollout-step metrics
must agree: one definition of every ``loss/*``, ``weights/*``, ``*_max``, ``tokens/valid`` and mean metric.
(What the actor hands to OpenRLHF's logger for ``loss/*`` stays OpenRLHF's own reduction of the
per-micro-batch losses, the one its ``policy_loss`` gets; ``make e2e`` compares the two.)
"""

from __future__ import annotations

from types import SimpleNamespace

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

from openrlhf_steer.apps.demo.train import MethodRun  # noqa: E402
from openrlhf_steer.core.loss import PolicyLoss  # noqa: E402
from openrlhf_steer.core.types import LossConfig, LossInputs  # noqa: E402
from openrlhf_steer.integration import entropy_patch  # noqa: E402
from openrlhf_steer.integration.actor_trainer import active_trainer, enable_entropy_control, window_iterator  # noqa: E402
from openrlhf_steer.integration.flags import EntropyControlSpec, apply_method_args  # noqa: E402
from openrlhf_steer.integration.side_channel import OLD_ENTROPY_KEY  # noqa: E402
from openrlhf_steer.methods import build_method  # noqa: E402
from openrlhf_steer.runtime import StepRuntime  # noqa: E402

CASES = [
    ("grpo", {}),
    ("steer", {"lambda_min": 0.7}),
    ("entropy_loss", {"coef": 0.05}),
    ("pos_adv_reweight", {"schedule": "constant", "lambda_value": 0.25}),
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    entropy_patch.install()
    return save_tiny_qwen2(tmp_path_factory.mktemp("tiny_qwen2"))


def _window(actor):
    """Two micro-batches (3 rows each): sequences, masks, rollout log-probs/entropy away from the current ones."""
    parts = []
    for seed in (3, 4):
        seqs, attn, amask = make_batch(seed=seed)
        with torch.no_grad():
            lp, ent = reference_logprobs_entropy(actor.model, seqs, attn)
        g = torch.Generator().manual_seed(seed + 100)
        maskf = amask.float()
        old_lp = (lp + 0.3 * torch.randn(lp.shape, generator=g)) * maskf
        parts.append((seqs, attn, amask, old_lp, (ent + 0.1) * maskf, torch.tensor([1.2, -0.7, 0.4])[:, None] * maskf))
    return parts


def _actor_logged(actor, name, config, parts):
    spec = EntropyControlSpec(methods=[(name, dict(config))])
    args = make_args(seed=7)
    needs = apply_method_args(args, spec)
    trainer = make_trainer(actor, args)  # lr 0: the parameters stay as they are
    enable_entropy_control(trainer, spec, args, max_steps=10, rank=0)
    experiences = []
    for seqs, attn, amask, old_lp, old_ent, adv in parts:
        rows = [old_ent[i, : max(int(attn[i].sum()) - 1, 1)].clone() for i in range(seqs.shape[0])]
        experiences.append(make_experience(seqs, attn, amask, old_lp, adv, info={OLD_ENTROPY_KEY: rows}))
    with active_trainer(trainer):
        for step, (exp, info) in enumerate(
            window_iterator(iter(experiences), trainer.strategy, 2, lambda e: e.action_mask)
        ):
            trainer.training_step(exp, 0.0, step, info)
    return trainer._end_rollout_step(), needs


def _demo_logged(actor, name, config, parts, needs):
    """The demo's MethodRun.optimizer_step and rollout boundary, with the OpenRLHF test model's forward."""
    seqs, attn, amask, old_lp, old_ent, adv = (torch.cat(t) for t in zip(*parts))
    run = MethodRun.__new__(MethodRun)  # the demo's step on this model: skip loading the demo's own model
    run.model = actor.model
    run.method = build_method(name, dict(config))
    run.loss_fn = PolicyLoss(LossConfig(eps_low=0.2, eps_high=0.28, dual_clip=10.0), run.method)
    run.optimizer = torch.optim.SGD(actor.model.parameters(), lr=0.0)
    run.rl = SimpleNamespace(grad_clip=1e9)
    run.runtime = StepRuntime(run.method, seed=7)
    run.observers, run.step_observers = [], []

    def loss_inputs(rollout, advantages, index, with_grad, generator):
        with torch.set_grad_enabled(with_grad):
            lp, ent = reference_logprobs_entropy(actor.model, seqs[index], attn[index])
        return LossInputs(
            log_probs=lp,
            old_log_probs=old_lp[index],
            advantages=advantages[index],
            action_mask=amask[index],
            entropy=ent if needs.current_entropy else None,
            old_entropy=old_ent[index],
            step=run.optimizer_steps,
            total_steps=10,
            generator=generator,
        )

    run.loss_inputs = loss_inputs
    rollout = SimpleNamespace(batch=SimpleNamespace(action_mask=amask))
    run.optimizer_step(rollout, adv, [torch.arange(0, 3), torch.arange(3, 6)])
    return run.runtime.end_rollout_step()


@pytest.mark.parametrize("name,config", CASES, ids=[c[0] for c in CASES])
def test_actor_and_demo_log_the_same_metrics(model_dir, name, config):
    actor = load_actor(model_dir)
    parts = _window(actor)
    actor_logged, needs = _actor_logged(actor, name, config, parts)
    demo_logged = _demo_logged(actor, name, config, parts, needs)

    assert set(demo_logged) - {"grad_norm"} == set(actor_logged)
    assert actor_logged["tokens/valid"] == float(sum(p[2].sum() for p in parts))
    for key, value in actor_logged.items():
        assert demo_logged[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    # the window loss is the token-mean over both micro-batches, not a mean of per-micro values
    assert demo_logged["loss/total"] != pytest.approx(0.0)


def test_openrlhf_patches_are_recorded_with_their_originals():
    """Every OpenRLHF global we replace is in one registry, with OpenRLHF's own value kept once."""
    import openrlhf.models.actor as actor_module
    from openrlhf.models.loss import PolicyLoss as OpenRLHFPolicyLoss
    from openrlhf.trainer.ray import ppo_actor

    from openrlhf_steer.integration import ray_actors
    from openrlhf_steer.integration.entropy_patch import ChunkedEntropy
    from openrlhf_steer.integration.patches import OPENRLHF_PATCHES

    ray_actors.apply_actor_patches()
    ray_actors.apply_actor_patches()  # idempotent: the original stays OpenRLHF's
    assert OPENRLHF_PATCHES.original(ppo_actor, "PolicyLoss") is OpenRLHFPolicyLoss
    assert ppo_actor.PolicyLoss is ray_actors.EntropyControlPolicyLoss
    assert isinstance(actor_module.compute_entropy, ChunkedEntropy)
    replaced = OPENRLHF_PATCHES.replaced()
    assert replaced["openrlhf.trainer.ray.ppo_actor.iter_grad_accum_global_norm"].endswith("window_iterator")


@pytest.mark.parametrize("is_level", ["off", "token"])
def test_openrlhf_loss_shim_reads_the_device_at_most_twice(is_level):
    """The actor's loss call (OpenRLHF signature, IS correction on or off) keeps the core loss's budget."""
    from steertest_loss_batch import count_host_syncs, fixed_inputs

    from openrlhf_steer.integration.policy_loss import EntropyControlPolicyLoss, LossCallContext

    fn = EntropyControlPolicyLoss(clip_eps_low=0.2, clip_eps_high=0.28, dual_clip=3.0, is_correction_level=is_level)
    fn.bind(build_method("steer"), LossConfig(eps_low=0.2, eps_high=0.28, dual_clip=3.0))
    x = fixed_inputs()
    fn.binding.context = LossCallContext(old_entropy=x.old_entropy, step=1, total_steps=10)
    with count_host_syncs() as calls:
        loss, clip_ratio, ppo_kl, _, _ = fn(
            x.log_probs,
            x.old_log_probs,
            x.advantages,
            action_mask=x.action_mask,
            rollout_log_probs=x.old_log_probs - 0.01,
            batch_num_tokens=30.0,
            global_batch_size=6.0,
        )
    assert len(calls) <= 2, calls
    assert torch.is_tensor(clip_ratio) and torch.is_tensor(ppo_kl)
