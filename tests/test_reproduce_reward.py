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
    assert R.score(query[len(PROMPT):], "7", "strict_box") == -1.0


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
