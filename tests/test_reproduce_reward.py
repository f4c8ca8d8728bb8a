"""The reward file's contract: prompt and special tokens removed, the rule chosen by OPENRLHF_STEER_DAPO_RULE,
OpenRLHF's return shape. The rules themselves: tests/test_reproduce_reward_dapo_corpus.py."""

import pytest
import torch

from steertest_reproduce import load_reward_module

R = load_reward_module()
PROMPT = "<|im_start|>user\nSolve ... after \"Answer:\".<|im_end|>\n<|im_start|>assistant\n"


def test_prompt_is_stripped_before_extraction():
    # the DAPO prompt itself contains 'Answer:'; only the response may be graded
    assert R.response_of(PROMPT + "Answer: 7", PROMPT) == "Answer: 7"
    assert R.response_of("garbled prefix <|im_start|>assistant\nAnswer: 7", "other prompt") == "\nAnswer: 7"


def test_special_tokens_are_removed_as_in_decoding():
    assert R.response_of(PROMPT + "Answer: 7<|im_end|><|endoftext|><pad></s>", PROMPT) == "Answer: 7"
    # 30 pad tokens (150 characters) after a box would push it out of strict_box's 100-character window
    query = PROMPT + "so \\boxed{7}<|im_end|>" + "<pad>" * 30
    assert R.score(R.response_of(query, PROMPT), "7", "strict_box") == 1.0
    assert R.score(query[len(PROMPT) :], "7", "strict_box") == -1.0


def test_reward_func_contract(monkeypatch):
    monkeypatch.delenv(R.RULE_ENV, raising=False)
    out = R.reward_func([PROMPT + "so\nAnswer: 12<|im_end|>"], [PROMPT], ["12"])
    assert torch.equal(out["rewards"], torch.tensor([1.0]))
    assert torch.equal(out["scores"], torch.tensor([1.0]))
    out = R.reward_func([PROMPT + "Answer: 13"], [PROMPT], ["12"])
    assert torch.equal(out["rewards"], torch.tensor([-1.0])) and torch.equal(out["scores"], torch.tensor([0.0]))


def test_rule_comes_from_the_environment(monkeypatch):
    boxed = PROMPT + "so \\boxed{12}<|im_end|>"
    monkeypatch.delenv(R.RULE_ENV, raising=False)
    assert R.active_rule() == "minerva"
    assert R.reward_func([boxed], [PROMPT], ["12"])["rewards"].tolist() == [-1.0]  # no Answer: line
    monkeypatch.setenv(R.RULE_ENV, "strict_box")
    assert R.reward_func([boxed], [PROMPT], ["12"])["rewards"].tolist() == [1.0]
    monkeypatch.setenv(R.RULE_ENV, "lenient")
    with pytest.raises(ValueError, match=R.RULE_ENV):
        R.reward_func([boxed], [PROMPT], ["12"])


def test_strict_box_reward_file_fixes_the_steer_authors_rule():
    """The strict-box file scores by the last \\boxed{} alone; the default file by the last Answer: line."""
    import importlib.util

    import repro_pipeline as P

    def load(path):
        spec = importlib.util.spec_from_file_location("reward_under_test", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    strict = load(P.REWARD_FILES["strict_box"])
    default = load(P.REWARD_FILES["minerva"])
    prompt = "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"
    answer_line = prompt + "2+3 = 5.\nAnswer: 5<|im_end|>"
    boxed = prompt + "2+3 = 5, so the answer is \\boxed{5}.<|im_end|>"
    # strict box: the Answer: line alone is wrong (-1), the boxed answer right (+1); the default rule the reverse
    assert strict.reward_func([answer_line, boxed], [prompt, prompt], ["5", "5"])["rewards"].tolist() == [-1.0, 1.0]
    assert default.reward_func([answer_line, boxed], [prompt, prompt], ["5", "5"])["rewards"].tolist() == [1.0, -1.0]
    assert P.reward_file({"reward_rule": "strict_box"}) == P.REWARD_FILES["strict_box"]
    assert P.reward_file({}) == P.REWARD_FILE
    with pytest.raises(ValueError, match="reward_rule='boxed'"):
        P.reward_file({"reward_rule": "boxed"})
