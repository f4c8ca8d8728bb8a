"""Held-out evaluation: n samples per unseen problem, scored with the eval harness's metric functions."""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

import torch

from openrlhf_steer_eval.metrics import correctness_metrics

from .batch import build_batch, completion_logprobs
from .config import EvalConfig
from .rollout import sample_completions
from .task import AdditionTask, Problem

BENCHMARK = "heldout"
GRADER = "exact"


@torch.no_grad()
def evaluate_heldout(
    model,
    tokenizer,
    task: AdditionTask,
    problems: Sequence[Problem],
    config: EvalConfig,
    *,
    max_new_tokens: int,
    seed: int,
    temperature: float = 1.0,
    chunk: int = 64,
) -> Dict[str, Any]:
    """avg@n, pass@k (unbiased, Chen et al.), the mean token entropy of the samples (T=1) and, for a task
    with several correct answers, the mean number of distinct correct completions among the n samples.

    Sampling is seeded independently of training, so every method is scored on the same draws of
    the sampler's random numbers.
    """
    config.validate()
    model.eval()
    correct: List[List[bool]] = []
    distinct: List[int] = []  # tasks with several correct answers: distinct correct completions per problem
    answer_key = getattr(task, "answer_key", None)
    entropy_sum, token_count = 0.0, 0.0
    # per completion position: position 0 is the first digit (the choice among correct answers), position 1
    # the second (arithmetic); the token mean mixes them
    position_sum, position_count = [0.0, 0.0], [0.0, 0.0]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for start in range(0, len(problems), chunk):
            part = list(problems[start : start + chunk])
            prompts, completions = sample_completions(
                model,
                tokenizer,
                task,
                part,
                samples_per_prompt=config.samples,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
            )
            texts = tokenizer.batch_decode(completions, skip_special_tokens=True)
            for i, problem in enumerate(part):
                row = texts[i * config.samples : (i + 1) * config.samples]
                correct.append([task.reward(problem, t) > 0.5 for t in row])
                if answer_key is not None:
                    distinct.append(len({k for k in (answer_key(problem, t) for t in row) if k is not None}))
            batch = build_batch(prompts, completions, tokenizer.pad_token_id, tokenizer.eos_token_id)
            _, entropy = completion_logprobs(model, batch, temperature=temperature)
            entropy_sum += float((entropy * batch.action_mask).sum())
            token_count += float(batch.action_mask.sum())
            for position in range(min(2, entropy.shape[1])):
                position_sum[position] += float((entropy[:, position] * batch.action_mask[:, position]).sum())
                position_count[position] += float(batch.action_mask[:, position].sum())
    metrics, stderr = correctness_metrics(BENCHMARK, GRADER, correct, ks=config.ks)
    n = config.samples
    result: Dict[str, Any] = {
        "num_problems": len(problems),
        "samples": n,
        "avg@n": metrics[f"{BENCHMARK}/{GRADER}/avg@{n}"],
        "avg@n_stderr": stderr[f"{BENCHMARK}/{GRADER}/avg@{n}"],
        "entropy": entropy_sum / max(token_count, 1.0),
        "entropy_first_token": position_sum[0] / max(position_count[0], 1.0),
        "entropy_second_token": position_sum[1] / max(position_count[1], 1.0),
        "metrics": metrics,
        "stderr": stderr,
    }
    for k in config.ks:
        key = f"{BENCHMARK}/{GRADER}/pass@k:k={k}&n={n}"
        result[f"pass@{k}"] = metrics[key]
    if distinct:
        result["distinct_correct"] = sum(distinct) / len(distinct)
        result["distinct_correct_per_problem"] = distinct
    return result
