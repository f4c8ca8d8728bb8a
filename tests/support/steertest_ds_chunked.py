"""Run in a fresh process (it initialises torch.distributed): the chunked policy forward under OpenRLHF's
real DeepspeedStrategy on CPU (gloo, fp32) at the given ZeRO stage, against OpenRLHF's stock
``Actor.forward`` on a plain (DeepSpeed-free) copy of the same model. Prints one JSON line per model
(untied and tied embeddings): value and gradient differences, and whether ZeRO-3 had released the
head weight between calls (so the chunked head really ran on a gathered weight)."""

from __future__ import annotations

import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPERATURE = 0.7
ENTROPY_COEF = 0.3


def _loss(log_probs, entropy, action_mask):
    weights = torch.linspace(-1.0, 1.0, log_probs.numel()).view_as(log_probs)
    return (log_probs * weights).sum() + ENTROPY_COEF * (entropy * action_mask).sum()


def main(stage: int, model_dirs_json: str) -> None:
    torch.cuda.set_device = lambda *a, **k: None  # OpenRLHF sets the CUDA device when LOCAL_RANK is set
    torch.cuda.current_device = lambda: "cpu"
    os.environ.update(
        LOCAL_RANK="0",
        RANK="0",
        WORLD_SIZE="1",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=os.environ.get("STEERTEST_PORT", "29534"),
    )
    from steertest_openrlhf import cpu_deepspeed_strategy, load_actor, make_args, make_batch

    from deepspeed.utils import safe_get_full_grad

    from openrlhf_steer.integration import chunked_actor

    args = make_args()
    strategy = cpu_deepspeed_strategy(args, stage=stage, train_batch_size=3)
    strategy.setup_distributed()
    seqs, attn, amask = make_batch(seed=4, pad=[0, 2, 5])
    for name, model_dir in json.loads(model_dirs_json).items():
        stock = load_actor(model_dir, temperature=TEMPERATURE)
        lp_ref, out_ref = stock(seqs, amask, attention_mask=attn, return_output=True, return_entropy=True)
        ent_ref = out_ref.entropy[:, -amask.shape[1] :]
        _loss(lp_ref, ent_ref, amask).backward()
        ref_grads = {n: p.grad for n, p in stock.model.named_parameters()}

        actor = load_actor(model_dir, temperature=TEMPERATURE)
        cfg = dict(
            optim="adam",
            adam={"lr": 1e-3, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.0},
            lr_scheduler="constant",
            lr_warmup_ratio=0.0,
            max_norm=1e9,
            scheduler_steps=10,
        )
        actor, optim, _ = strategy.prepare((actor, cfg))
        installed = chunked_actor.install(actor, chunk_rows=4, strict=True)
        head = actor.model.module.get_output_embeddings()
        released = head.weight.numel() == 0  # ZeRO-3 keeps only the partition between calls
        with torch.no_grad():
            lp_rollout = actor(seqs, amask, attention_mask=attn)
        actor.train()
        lp, out = actor(seqs, amask, attention_mask=attn, return_output=True, return_entropy=True)
        ent = out.entropy[:, -amask.shape[1] :]
        strategy.backward(_loss(lp, ent, amask), actor, optim)
        errors = {}
        for n, p in actor.model.module.named_parameters():
            grad = safe_get_full_grad(p)
            ref = ref_grads[n]
            errors[n] = float((grad.float().reshape(ref.shape) - ref).norm() / ref.norm().clamp_min(1e-12))
        print(
            json.dumps(
                {
                    "model": name,
                    "stage": stage,
                    "installed": installed,
                    "released_between_calls": released,
                    "tied": bool(getattr(actor.model.module.config, "tie_word_embeddings", False)),
                    "lp_max_diff": float((lp - lp_ref).abs().max()),
                    "rollout_lp_max_diff": float((lp_rollout - lp_ref).abs().max()),
                    "entropy_max_diff": float(((ent - ent_ref) * amask).abs().max()),
                    "grad_rel_errors": errors,
                    "n_params": len(errors),
                    "n_ref_params": len(ref_grads),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    main(int(sys.argv[1]), sys.argv[2])
