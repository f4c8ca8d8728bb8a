"""Run in a fresh process (it initialises torch.distributed): OpenRLHF's real DeepspeedStrategy on CPU
(gloo, ZeRO-2, fp32), our EntropyControlActorPPOTrainer, one optimizer-step window of 2 micro-batches through
the window iterator. Prints JSON: DeepSpeed's global grad norm of that step and the norm of the
independently computed gradient of the window's loss (core PolicyLoss, window token count)."""

from __future__ import annotations

import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def main(model_dir: str, cases_json: str) -> None:
    """``cases_json``: a JSON list of [method, config] pairs; prints one JSON line per case."""
    torch.cuda.set_device = lambda *a, **k: None  # OpenRLHF sets the CUDA device when LOCAL_RANK is set
    torch.cuda.current_device = lambda: "cpu"  # strategy.all_reduce moves CPU tensors to "the" device
    os.environ.update(
        LOCAL_RANK="0",
        RANK="0",
        WORLD_SIZE="1",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=os.environ.get("STEERTEST_PORT", "29533"),
    )
    from steertest_openrlhf import cpu_deepspeed_strategy, make_args

    from openrlhf_steer.integration import entropy_patch
    from openrlhf_steer.integration.actor_trainer import install_window_iterator

    entropy_patch.install()
    install_window_iterator()
    args = make_args(seed=5)
    strategy = cpu_deepspeed_strategy(args, stage=2, train_batch_size=6)
    strategy.setup_distributed()
    assert strategy.accumulated_gradient == 2
    for method, config in json.loads(cases_json):
        result = _one_window(model_dir, method, config, args, strategy)
        print(json.dumps(dict(result, method=method)), flush=True)


def _one_window(model_dir, method, config, args, strategy):
    from steertest_openrlhf import load_actor, make_batch, make_experience, reference_logprobs_entropy

    from openrlhf.trainer.ray.ppo_actor import ActorPPOTrainer

    from openrlhf_steer.integration.actor_trainer import (
        active_trainer,
        enable_entropy_control,
        step_seed,
        window_iterator,
    )
    from openrlhf_steer.integration.flags import EntropyControlSpec, apply_method_args
    from openrlhf_steer.integration.policy_loss import EntropyControlPolicyLoss
    from openrlhf_steer.integration.side_channel import OLD_ENTROPY_KEY
    from openrlhf_steer.core.loss import PolicyLoss
    from openrlhf_steer.methods import build_method
    from openrlhf_steer.core.types import LossConfig, LossInputs

    spec = EntropyControlSpec(methods=[(method, config)])
    args.actor.entropy_coef = None
    apply_method_args(args, spec)
    plain = load_actor(model_dir).model  # independent copy (the engine's params carry ZeRO grad hooks)
    actor = load_actor(model_dir)
    cfg = dict(
        optim="adam",
        adam={"lr": 1e-3, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.0},
        lr_scheduler="constant",
        lr_warmup_ratio=0.0,
        max_norm=1e9,
        scheduler_steps=10,
    )
    actor, optim, sched = strategy.prepare((actor, cfg))

    batches = []
    for seed in (1, 2):
        seqs, attn, amask = make_batch(seed=seed, pad=[0, 3, 1] if seed == 1 else [2, 0, 4])
        with torch.no_grad():
            lp, ent = reference_logprobs_entropy(plain, seqs, attn)
        g = torch.Generator().manual_seed(seed)
        old_lp = (lp + 0.3 * torch.randn(lp.shape, generator=g)) * amask.float()
        old_ent = (ent + 0.1) * amask.float()
        adv = torch.tensor([1.0, -0.6, 0.5])[:, None] * amask.float()
        batches.append((seqs, attn, amask, old_lp, old_ent, adv))

    # Independent window gradient on the plain copy (same weights as the engine before its step).
    model = plain
    model.zero_grad()
    window_tokens = float(sum(b[2].sum() for b in batches))
    reference = build_method(method, config)
    generator = torch.Generator().manual_seed(step_seed(5, 0, 0))
    total = 0.0
    for seqs, attn, amask, old_lp, old_ent, adv in batches:
        lp, ent = reference_logprobs_entropy(model, seqs, attn)
        inputs = LossInputs(
            log_probs=lp,
            old_log_probs=old_lp,
            advantages=adv,
            action_mask=amask,
            entropy=ent,
            old_entropy=old_ent,
            step=0,
            total_steps=10,
            epoch=1,
            total_epochs=1,
            generator=generator,
        )
        loss, _ = PolicyLoss(LossConfig(eps_low=0.2, eps_high=0.28, dual_clip=10.0), reference)(
            inputs, num_tokens=window_tokens
        )
        loss.backward()
        total += float(loss.detach())
    expected_norm = float(
        torch.sqrt(sum((p.grad.float() ** 2).sum() for p in model.parameters() if p.grad is not None))
    )

    trainer = ActorPPOTrainer.__new__(ActorPPOTrainer)
    trainer.strategy, trainer.args, trainer.actor, trainer.ema_model = strategy, args, actor, None
    trainer.actor_optim, trainer.actor_scheduler, trainer.aux_loss, trainer.replay_buffer = optim, sched, False, None
    trainer.actor_loss_fn = EntropyControlPolicyLoss(clip_eps_low=0.2, clip_eps_high=0.28, dual_clip=10.0)
    state = enable_entropy_control(trainer, spec, args, max_steps=10, rank=0)
    experiences = [make_experience(b[0], b[1], b[2], b[3], b[5], info={OLD_ENTROPY_KEY: b[4]}) for b in batches]
    logged = []
    with active_trainer(trainer):
        for step, (exp, info) in enumerate(window_iterator(iter(experiences), strategy, 2, lambda e: e.action_mask)):
            status = trainer.training_step(exp, 0.0, step, info)
            logged.append(float(status["metrics"]["policy_loss"]))
    return {
        "ds_grad_norm": float(strategy.get_grad_norm(actor)),
        "expected_norm": expected_norm,
        "logged_sum": sum(logged) / 2.0,
        "expected_loss": total,
        "optimizer_steps": state.optimizer_step,
        "engine_steps": int(actor.model.global_steps),
    }


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    main(sys.argv[1], sys.argv[2])
