"""Helpers for the OpenRLHF integration tests: a tiny random Qwen2, OpenRLHF-shaped args, a fake
DeepSpeed strategy and an ``ActorPPOTrainer`` built without its CUDA-only ``__init__``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Dict, List, Optional

import torch

VOCAB = 256


def save_tiny_qwen2(path, seed: int = 0) -> str:
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
        tie_word_embeddings=False,
    )
    model = Qwen2ForCausalLM(config)
    # Larger output weights than the default init so that entropies and probabilities vary per token.
    with torch.no_grad():
        model.lm_head.weight.mul_(40.0)
    model.save_pretrained(str(path))
    return str(path)


def load_actor(path, temperature: float = 1.0):
    from openrlhf.models import Actor

    actor = Actor(str(path), attn_implementation="sdpa", param_dtype="bf16", temperature=temperature)
    actor.model.float()
    return actor


def make_args(
    *,
    entropy_coef=None,
    eps=(0.2, 0.28),
    dual_clip=10.0,
    loss_agg_mode="token-mean",
    seed: int = 7,
    num_episodes: int = 1,
    kl_use_loss: bool = False,
    kl_coef: float = 0.0,
):
    ns = SimpleNamespace
    return ns(
        actor=ns(
            entropy_coef=entropy_coef,
            eps_clip=eps[0],
            eps_clip_low_high=list(eps),
            dual_clip=dual_clip,
            loss_agg_mode=loss_agg_mode,
            policy_loss_type="ppo",
            aux_loss_coef=0.0,
        ),
        algo=ns(
            kl=ns(use_loss=kl_use_loss, init_coef=kl_coef, estimator="k1", unbiased_gradient=False),
            advantage=ns(
                is_correction_level="off",
                is_correction_mode="mask",
                is_correction_gating="ratio",
                is_correction_threshold=[0.5, 5.0],
                estimator="group_norm",
            ),
        ),
        train=ns(dynamic_batch_enable=False, async_enable=False, seed=seed, num_episodes=num_episodes, max_epochs=1),
        ds=ns(packing_samples=False, tensor_parallel_size=1),
        rollout=ns(n_samples_per_prompt=2),
    )


class FakeStrategy:
    """The parts of DeepspeedStrategy that training_step uses, on CPU, recording every gradient."""

    def __init__(self, args):
        self.args = args
        self.ring_attn_group = None
        self.accumulated_gradient = 1
        self.grads: List[Dict[str, torch.Tensor]] = []
        self.reduced: List[dict] = []

    def backward(self, loss, model, optimizer, **kwargs):
        loss.backward()

    def optimizer_step(self, optimizer, model, scheduler, name="model", **kwargs):
        self.grads.append({n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None})
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()

    def get_grad_norm(self, model):
        return 0.0

    def all_reduce(self, data, op="mean"):
        self.reduced.append(dict(data) if isinstance(data, dict) else data)
        return data

    def is_rank_0(self):
        return True

    def print(self, *a, **k):
        pass


def make_trainer(actor, args, lr: float = 0.0):
    """An ActorPPOTrainer with OpenRLHF's own methods, attributes set by hand (its __init__ needs CUDA)."""
    from openrlhf.trainer.ray.ppo_actor import ActorPPOTrainer

    from openrlhf_steer.integration.policy_loss import EntropyControlPolicyLoss

    trainer = ActorPPOTrainer.__new__(ActorPPOTrainer)
    strategy = FakeStrategy(args)
    trainer.strategy, trainer.args, trainer.actor, trainer.ema_model = strategy, args, actor, None
    trainer.actor_optim = torch.optim.SGD(actor.model.parameters(), lr=lr)
    trainer.actor_scheduler = torch.optim.lr_scheduler.LambdaLR(trainer.actor_optim, lambda _: 1.0)
    trainer.aux_loss = False
    trainer.replay_buffer = None  # only read in dynamic-batch mode
    trainer.max_epochs = 1
    trainer.actor_loss_fn = EntropyControlPolicyLoss(
        clip_eps_low=args.actor.eps_clip_low_high[0],
        clip_eps_high=args.actor.eps_clip_low_high[1],
        dual_clip=args.actor.dual_clip,
        token_level_loss=args.actor.loss_agg_mode == "token-mean",
        policy_loss_type="ppo",
    )
    return trainer


def make_batch(seed: int = 1, batch: int = 3, seqlen: int = 12, prompt_len: int = 4, pad: Optional[List[int]] = None):
    """Right-padded sequences with their attention/action masks (OpenRLHF 0.11 layout: A = T - 1)."""
    g = torch.Generator().manual_seed(seed)
    sequences = torch.randint(3, VOCAB, (batch, seqlen), generator=g)
    pad = pad if pad is not None else [0, 3, 1][:batch] + [0] * max(0, batch - 3)
    attention_mask = torch.ones(batch, seqlen, dtype=torch.long)
    for row, n in enumerate(pad):
        if n:
            attention_mask[row, -n:] = 0
            sequences[row, -n:] = 0
    action_mask = torch.zeros(batch, seqlen - 1, dtype=torch.bool)
    for row in range(batch):
        valid = int(attention_mask[row].sum())
        action_mask[row, prompt_len - 1 : valid - 1] = True  # tokens prompt_len..valid-1 predicted at t-1
    return sequences, attention_mask, action_mask


def reference_logprobs_entropy(model, sequences, attention_mask, temperature: float = 1.0):
    """Independent path: HF forward + full log_softmax (no OpenRLHF, no chunking). [B, T-1] each."""
    position_ids = attention_mask.long().cumsum(-1) - 1
    position_ids.masked_fill_(attention_mask == 0, 1)
    logits = model(sequences, attention_mask=attention_mask, position_ids=position_ids).logits.float() / temperature
    log_softmax = torch.log_softmax(logits[:, :-1], dim=-1)
    log_probs = log_softmax.gather(-1, sequences[:, 1:].unsqueeze(-1)).squeeze(-1)
    entropy = -(log_softmax.exp() * log_softmax).sum(-1)
    return log_probs, entropy


def make_experience(sequences, attention_mask, action_mask, old_log_probs, advantages, info=None):
    from openrlhf.trainer.ppo_utils.experience import Experience

    return Experience(
        sequences=sequences,
        attention_mask=attention_mask,
        action_mask=action_mask,
        action_log_probs=old_log_probs,
        advantages=advantages,
        info=dict(info or {}),
    )


def cpu_deepspeed_strategy(args, *, stage: int, train_batch_size: int, micro_batch_size: int = 3):
    """OpenRLHF's real DeepspeedStrategy for a CPU (gloo, fp32) test process; ``args`` gets its ``ds`` group."""
    from openrlhf.utils.deepspeed import DeepspeedStrategy

    args.ds = SimpleNamespace(
        packing_samples=False,
        tensor_parallel_size=1,
        param_dtype="fp32",
        zero_stage=stage,
        adam_offload=False,
        zpg=1,
        use_universal_ckpt=False,
        grad_accum_dtype=None,
        overlap_comm=False,
        deepcompile=False,
        ring_attn_size=1,
        enable_sleep=False,
    )
    args.local_rank = -1
    return DeepspeedStrategy(
        seed=1,
        full_determinism=False,
        max_norm=1e9,
        micro_train_batch_size=micro_batch_size,
        train_batch_size=train_batch_size,
        zero_stage=stage,
        args=args,
    )
