"""The DAPO reward rule of reproduce/rewards/dapo_math_reward.py on hand-made responses."""
import pytest
import torch

from steertest_reproduce import load_reward_module

R = load_reward_module()
PROMPT = "<|im_start|>user\nSolve ... after \"Answer:\".<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize(
    "response,label,expected",
    [
        ("2+3=5 so\nAnswer: 5", "5", 1.0),
        ("Answer: 4\nwait, recheck\nAnswer: 5<|im_end|>", "5", 1.0),  # the last Answer: line counts
        ("Answer: 5.", "5", 1.0),  # trailing period
        ("Answer: $10,000$", "10000", 1.0),  # thousands separator and $...$
        ("Answer: \\boxed{42}", "42", 1.0),
        ("Answer: 90^\\circ", "90", 1.0),
        ("Answer: \\dfrac{1}{2}", "\\frac{1}{2}", 1.0),
        ("Answer: 6", "5", -1.0),
        ("the answer is 5", "5", -1.0),  # no 'Answer:' line: DAPO gives the incorrect reward
        ("Answer: 5.0", "5", 1.0),
        ("Answer: 7<|im_end|><pad><pad>", "7", 1.0),  # end-of-turn and padding tokens end the answer
        ("Answer: 7<|eot_id|>", "7", 1.0),
    ],
)
def test_score(response, label, expected):
    assert R.score(response, label) == expected


def test_only_the_tail_is_searched():
    early = "Answer: 5\n" + "x" * (R.TAIL_CHARS + 10)
    assert R.score(early, "5") == -1.0


def test_prompt_is_stripped_before_extraction():
    # the DAPO prompt itself contains 'Answer:'; only the response may be graded
    assert R.response_of(PROMPT + "Answer: 7", PROMPT) == "Answer: 7"
    assert R.response_of("garbled prefix <|im_start|>assistant\nAnswer: 7", "other prompt") == "\nAnswer: 7"


def test_reward_func_contract():
    out = R.reward_func([PROMPT + "so\nAnswer: 12"], [PROMPT], ["12"])
    assert torch.equal(out["rewards"], torch.tensor([1.0]))
    assert torch.equal(out["scores"], torch.tensor([1.0]))
    out = R.reward_func([PROMPT + "Answer: 13"], [PROMPT], ["12"])
    assert torch.equal(out["rewards"], torch.tensor([-1.0])) and torch.equal(out["scores"], torch.tensor([0.0]))
