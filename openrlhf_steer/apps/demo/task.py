"""Verifiable toy tasks generated from a seed: integer addition, graded by exact match.

A task turns a problem (a, b) into a prompt text and a target text and scores a completion. Three
tasks are registered: ``add2`` (two-digit addition with a raw ``a+b=`` prompt, for the char-level
tiny model), ``add1`` (single-digit, the same format, for the quick/test path) and ``add1-chat``
(single-digit addition with a chat prompt, for SmolLM2-135M-Instruct).

``split`` is the claims demo's task: given n, write it as a sum of two digits ("13=" -> "4+9"). Most
n have several correct answers (up to 10), so a policy that collapses onto one answer per prompt
loses measurable diversity (distinct correct answers, Pos-Adv App. C.1's point) while keeping its
accuracy.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

Problem = Tuple[int, int]

_FIRST_INT = re.compile(r"-?\d+")


@dataclass(frozen=True)
class AdditionTask:
    """a + b with a, b drawn from [low, high]; the held-out split is a seeded, disjoint subset."""

    name: str
    low: int
    high: int
    chat: bool  # wrap the question in the tokenizer's chat template

    def all_problems(self) -> List[Problem]:
        return [(a, b) for a in range(self.low, self.high + 1) for b in range(self.low, self.high + 1)]

    def split(self, seed: int, num_heldout: int) -> Tuple[List[Problem], List[Problem]]:
        """(train pool, held-out) with the held-out problems never used in SFT or RL."""
        problems = self.all_problems()
        if not 0 < num_heldout < len(problems):
            raise ValueError(
                f"num_heldout={num_heldout} must be between 1 and {len(problems) - 1} for task {self.name!r} "
                f"({len(problems)} problems in total)"
            )
        rng = random.Random(seed)
        rng.shuffle(problems)
        return problems[num_heldout:], problems[:num_heldout]

    def question(self, problem: Problem) -> str:
        a, b = problem
        if self.chat:
            return f"What is {a} + {b}? Reply with only the number."
        return f"{a}+{b}="

    def target(self, problem: Problem) -> str:
        return str(problem[0] + problem[1])

    def reward(self, problem: Problem, completion: str) -> float:
        """1.0 if the completion's answer equals a + b, else 0.0."""
        return 1.0 if self.parse_answer(completion) == problem[0] + problem[1] else 0.0

    def parse_answer(self, completion: str) -> Optional[int]:
        if not self.chat:
            # The char model answers with digits then EOS; anything else is wrong.
            text = completion.strip()
            return int(text) if re.fullmatch(r"-?\d+", text) else None
        # Chat models often echo "a + b = c": take the number after the first '=' of the first
        # line, else the first number of that line.
        lines = completion.strip().splitlines()
        first = lines[0] if lines else ""
        after = first.split("=", 1)[1] if "=" in first else first
        match = _FIRST_INT.search(after)
        return int(match.group()) if match else None


_SPLIT_ANSWER = re.compile(r"(\d)\+(\d)")


@dataclass(frozen=True)
class SplitTask:
    """Write n in [0, 2 * max_digit] as d1+d2 with digits d1, d2 <= max_digit; every such pair is correct.

    A problem is a pair (d1, d2): the prompt shows only n = d1 + d2, and the pair is the SFT target, so
    SFT on the uniform pool teaches a uniform choice among n's decompositions. The evaluation set is
    every n once (there is nothing to hold out: the prompts are the n values).
    """

    name: str
    max_digit: int
    preference: float = 1.0  # pair (a, b) appears ceil(copies * preference**a) times in the pool
    copies: int = 1
    chat: bool = False

    def all_problems(self) -> List[Problem]:
        return [(a, b) for a in range(self.max_digit + 1) for b in range(self.max_digit + 1)]

    def pool(self) -> List[Problem]:
        """Every pair, repeated so that small first digits are preferred: the SFT model then has a likely
        answer per prompt and less likely ones, as a pretrained model has (and GRPO can collapse onto)."""
        return [p for p in self.all_problems() for _ in range(math.ceil(self.copies * self.preference ** p[0]))]

    def split(self, seed: int, num_heldout: int) -> Tuple[List[Problem], List[Problem]]:
        """(the weighted pool, one pair per n): the evaluation prompts are all n values; nothing is held out,
        so ``seed`` and ``num_heldout`` are unused."""
        del seed, num_heldout
        prompts = [(min(n, self.max_digit), n - min(n, self.max_digit)) for n in range(2 * self.max_digit + 1)]
        return self.pool(), prompts

    def question(self, problem: Problem) -> str:
        return f"{problem[0] + problem[1]}="

    def target(self, problem: Problem) -> str:
        return f"{problem[0]}+{problem[1]}"

    def correct_answers(self, problem: Problem) -> int:
        """How many distinct completions are correct for this prompt."""
        n = problem[0] + problem[1]
        return sum(1 for a in range(self.max_digit + 1) if 0 <= n - a <= self.max_digit)

    def answer_key(self, problem: Problem, completion: str) -> Optional[str]:
        """The normalised answer if correct (distinct keys = distinct correct answers), else None."""
        match = _SPLIT_ANSWER.fullmatch(completion.strip())
        if not match:
            return None
        a, b = int(match.group(1)), int(match.group(2))
        return f"{a}+{b}" if a + b == problem[0] + problem[1] else None

    def reward(self, problem: Problem, completion: str) -> float:
        return 1.0 if self.answer_key(problem, completion) is not None else 0.0


TASKS: Dict[str, object] = {
    "add2": AdditionTask(name="add2", low=10, high=99, chat=False),
    "add1": AdditionTask(name="add1", low=0, high=9, chat=False),  # quick/test path: learnt in a few dozen SFT steps
    "add1-chat": AdditionTask(name="add1-chat", low=1, high=9, chat=True),
    "split": SplitTask(name="split", max_digit=9, preference=0.6, copies=16),
}


def get_task(name: str):
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)}") from None


def sample_problems(pool: Sequence[Problem], count: int, seed: int, step: int) -> List[Problem]:
    """The problems of one step, a pure function of (seed, step) so that a resumed run sees the same ones."""
    rng = random.Random(seed * 1_000_003 + step)
    return [pool[rng.randrange(len(pool))] for _ in range(count)]
