"""Sampling G completions per prompt, grading them, and the old-policy pass (log-probs + entropy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

import torch

from .batch import TokenBatch, build_batch, completion_logprobs
from .models import encode_prompts
from .task import AdditionTask, Problem

Tensor = torch.Tensor


@dataclass
class Rollout:
    batch: TokenBatch
    problems: List[Problem]  # one per completion
    group_ids: Tensor  # [N] prompt index of each completion
    rewards: Tensor  # [N] 0/1
    old_log_probs: Tensor  # [N, C]
    old_entropy: Tensor  # [N, C]
    texts: List[str]

    @property
    def num_samples(self) -> int:
        return int(self.rewards.shape[0])


@torch.no_grad()
def sample_completions(
    model,
    tokenizer,
    task: AdditionTask,
    problems: Sequence[Problem],
    *,
    samples_per_prompt: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    greedy: bool = False,
) -> tuple:
    """(prompt token lists, completion token lists), prompts repeated G times (rows i*G .. i*G+G-1)."""
    prompts = encode_prompts(tokenizer, task, problems)
    repeated = [ids for ids in prompts for _ in range(samples_per_prompt)]
    width = max(len(p) for p in repeated)
    input_ids = torch.full((len(repeated), width), tokenizer.pad_token_id, dtype=torch.long)
    attention = torch.zeros_like(input_ids)
    for row, ids in enumerate(repeated):
        input_ids[row, width - len(ids) :] = torch.tensor(ids)
        attention[row, width - len(ids) :] = 1
    sampling = dict(do_sample=False) if greedy else dict(do_sample=True, top_k=0, top_p=1.0, temperature=temperature)
    out = model.generate(
        input_ids=input_ids,
        attention_mask=attention,
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **sampling,
    )
    completions = []
    for row in out[:, width:].tolist():
        if tokenizer.eos_token_id in row:
            row = row[: row.index(tokenizer.eos_token_id) + 1]
        completions.append(row)
    return repeated, completions


@torch.no_grad()
def collect_rollout(
    model,
    tokenizer,
    task: AdditionTask,
    problems: Sequence[Problem],
    *,
    samples_per_prompt: int,
    max_new_tokens: int,
    temperature: float = 1.0,
) -> Rollout:
    """One GRPO rollout: sample, grade, and score the samples under the (old) sampling policy."""
    model.eval()
    prompts, completions = sample_completions(
        model,
        tokenizer,
        task,
        problems,
        samples_per_prompt=samples_per_prompt,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
    )
    batch = build_batch(prompts, completions, tokenizer.pad_token_id, tokenizer.eos_token_id)
    texts = tokenizer.batch_decode(completions, skip_special_tokens=True)
    per_sample = [p for p in problems for _ in range(samples_per_prompt)]
    rewards = torch.tensor([task.reward(p, t) for p, t in zip(per_sample, texts)], dtype=torch.float32)
    group_ids = torch.arange(len(problems)).repeat_interleave(samples_per_prompt)
    old_log_probs, old_entropy = completion_logprobs(model, batch, temperature=temperature)
    return Rollout(
        batch=batch,
        problems=per_sample,
        group_ids=group_ids,
        rewards=rewards,
        old_log_probs=old_log_probs.detach(),
        old_entropy=old_entropy.detach(),
        texts=texts,
    )
