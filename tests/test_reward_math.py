"""The math reward file for --reward.remote_url: real model-style outputs, pathological ones,
threads (OpenRLHF calls it from asyncio.to_thread), and no DeepSpeed/OpenRLHF import."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import Future

import pytest
import torch

from openrlhf_steer.integration.rewards import math_grading, math_reward, math_reward_path
from openrlhf_steer.integration.rewards.math_reward import EXTRA_LOG_KEYS, reward_func, response_text

QWEN_PROMPT = (
    "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
    "<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"
)


def _q(question: str, response: str):
    prompt = QWEN_PROMPT.replace("{q}", question)
    return prompt + response, prompt


def _call(question, response, gold):
    query, prompt = _q(question, response)
    return reward_func([query], [prompt], [gold])


def _outcome(result):
    logs = result["extra_logs"]
    for key in EXTRA_LOG_KEYS:
        assert logs[key].shape == (1,), key
    return {k: float(v[0]) for k, v in logs.items()}, float(result["rewards"][0]), float(result["scores"][0])


CASES = [
    # (id, question, response, gold, expected reward, expected flag)
    (
        "boxed_int",
        "What is 17 + 25?",
        "17 + 25 = 42.\n\nThe answer is \\boxed{42}.<|im_end|><|endoftext|>",
        "42",
        1.0,
        "reward_correct",
    ),
    ("boxed_wrong", "What is 17 + 25?", "17 + 25 = 41, so \\boxed{41}.<|im_end|>", "42", 0.0, None),
    ("frac_vs_decimal", "Compute 1/2.", "One half is \\boxed{0.5}<|im_end|>", "\\frac{1}{2}", 1.0, "reward_correct"),
    (
        "nested_braces",
        "Find sin(60°).",
        "We get $\\boxed{\\frac{\\sqrt{3}}{2}}$.<|im_end|>",
        "\\frac{\\sqrt{3}}{2}",
        1.0,
        "reward_correct",
    ),
    ("unicode", "求 3×4。", "计算：3×4 = 12 ✅，所以答案是 \\boxed{12}。<|im_end|>", "12", 1.0, "reward_correct"),
    ("empty_box", "What is 2+2?", "I think it is \\boxed{}<|im_end|>", "4", 0.0, "reward_no_answer"),
    (
        "no_answer_text",
        "What is 2+2?",
        "I am not sure how to approach this problem.<|im_end|>",
        "4",
        0.0,
        "reward_no_answer",
    ),
    ("empty_response", "What is 2+2?", "<|im_end|>", "4", 0.0, "reward_no_answer"),
    ("huge_boxed", "Simplify.", "\\boxed{" + "+".join(["x"] * 50_000) + "}", "x", 0.0, "reward_no_answer"),
    ("unbalanced", "What is 2+2?", "so \\boxed{4 and then the text stops", "4", None, None),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_model_style_outputs(case):
    _, question, response, gold, reward, flag = case
    start = time.monotonic()
    logs, got_reward, score = _outcome(_call(question, response, gold))
    assert time.monotonic() - start < 60
    assert sum(logs[k] for k in ("reward_correct", "reward_no_answer", "reward_error", "reward_timeout")) <= 1.0
    if reward is not None:
        assert got_reward == reward and score == reward
    if flag is not None:
        assert logs[flag] == 1.0, logs


def test_prompt_answer_is_not_credited():
    """The prompt shows a worked example with \\boxed{7}; only the response counts."""
    question = "Example: 3+4 gives \\boxed{7}. Now compute 5+4."
    logs, reward, _ = _outcome(_call(question, "5+4 = 9, so \\boxed{9}<|im_end|>", "7"))
    assert reward == 0.0 and logs["reward_correct"] == 0.0
    logs, reward, _ = _outcome(_call(question, "5+4 = 9, so \\boxed{9}<|im_end|>", "9"))
    assert reward == 1.0


def test_huge_unboxed_expression_returns_quickly():
    response = "Let me expand: " + " + ".join(f"{i}*x^{i}" for i in range(12_000)) + "<|im_end|>"
    assert len(response) > 100_000
    start = time.monotonic()
    logs, reward, _ = _outcome(_call("Expand.", response, "7"))
    assert reward == 0.0 and time.monotonic() - start < 60


def test_missing_label_counts_as_error():
    query, prompt = _q("q", "\\boxed{1}")
    result = reward_func([query, query], [prompt, prompt], [None, "1"])
    assert result["rewards"].tolist() == [0.0, 1.0]
    assert result["extra_logs"]["reward_error"].tolist() == [1.0, 0.0]


def test_batch_shapes_and_mismatched_lengths():
    query, prompt = _q("q", "\\boxed{3}")
    result = reward_func([query] * 3, [prompt] * 3, ["3", "4", "3"])
    assert result["rewards"].tolist() == [1.0, 0.0, 1.0] and result["scores"].dtype == torch.float32
    with pytest.raises(ValueError, match="one entry per sample"):
        reward_func([query], [prompt, prompt], ["3"])


def test_concurrent_calls_from_threads():
    """OpenRLHF calls the function once per sample from many threads at once."""
    golds = [str(n) for n in range(24)]
    results = [None] * len(golds)

    def work(i):
        answer = golds[i] if i % 3 else str(int(golds[i]) + 1)  # every third one is wrong
        query, prompt = _q(f"What is {i}?", f"It is \\boxed{{{answer}}}.<|im_end|>")
        results[i] = float(reward_func([query], [prompt], [golds[i]])["rewards"][0])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(golds))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert results == [0.0 if i % 3 == 0 else 1.0 for i in range(len(golds))]


def test_outer_timeout_never_blocks():
    never = Future()
    start = time.monotonic()
    assert math_reward._outcome(never, "", wait=0.2) == "timeout"
    assert time.monotonic() - start < 5


def test_pool_failures_map_to_counted_outcomes():
    from openrlhf_steer_eval.graders.base import Verdict

    def done(value):
        f = Future()
        f.set_result(value)
        return f

    assert math_reward._outcome(done(("ok", Verdict(False, None, {"error": "timeout"}))), "", 1) == "timeout"
    assert math_reward._outcome(done(("ok", Verdict(False, None, {"error": "worker_died"}))), "", 1) == "error"
    assert math_reward._outcome(done(("error", "pool down")), "", 1) == "error"
    assert math_reward._outcome(done(("ok", Verdict(False, "5", {}))), "", 1) == "wrong"


def test_response_text_strips_prompt_and_special_tokens():
    query, prompt = _q("q", "answer \\boxed{1}<|im_end|><|endoftext|>")
    assert response_text(query, prompt) == "answer \\boxed{1}"
    assert response_text("truncated prompt tail" + "resp", "a long prompt ... truncated prompt tail") == "resp"


def test_settings_errors_name_the_variable(monkeypatch):
    monkeypatch.setenv("OPENRLHF_STEER_REWARD_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="OPENRLHF_STEER_REWARD_TIMEOUT"):
        math_grading.RewardSettings.from_env()
    monkeypatch.setenv("OPENRLHF_STEER_REWARD_TIMEOUT", "5")
    monkeypatch.setenv("OPENRLHF_STEER_REWARD_GRADER", "exact")
    with pytest.raises(ValueError, match="OPENRLHF_STEER_REWARD_GRADER"):
        math_grading.RewardSettings.from_env()


def test_loaded_like_openrlhf_without_deepspeed(tmp_path):
    """vLLM engine processes load the file by path; it must not pull DeepSpeed or OpenRLHF in."""
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('reward_func', {math_reward_path()!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "out = mod.reward_func(['p \\\\boxed{5}'], ['p '], ['5'])\n"
        "print(float(out['rewards'][0]), 'deepspeed' in sys.modules, 'openrlhf' in sys.modules)\n"
    )
    env = dict(os.environ, OPENRLHF_STEER_REWARD_WORKERS="1")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "1.0 False False"
