"""Verifiable toy tasks generated from a seed: integer addition, graded by exact match.

A task turns a problem (a, b) into a prompt text and a target text and scores a completion. Three
tasks are registered: ``add2`` (two-digit addition with a raw ``a+b=`` prompt, for the char-level
tiny model), ``add1`` (single-digit, the same format, for the quick/test path) and ``add1-chat`` (single-digit addition with a chat prompt, for SmolLM2-135M-Instruct).
"""
from __future__ import annotations

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


TASKS: Dict[str, AdditionTask] = {
    "add2": AdditionTask(name="add2", low=10, high=99, chat=False),
    "add1": AdditionTask(name="add1", low=0, high=9, chat=False),  # quick/test path: learnt in a few dozen SFT steps
    "add1-chat": AdditionTask(name="add1-chat", low=1, high=9, chat=True),
}


def get_task(name: str) -> AdditionTask:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)}") from None


def sample_problems(pool: Sequence[Problem], count: int, seed: int, step: int) -> List[Problem]:
    """The problems of one step, a pure function of (seed, step) so that a resumed run sees the same ones."""
    rng = random.Random(seed * 1_000_003 + step)
    return [pool[rng.randrange(len(pool))] for _ in range(count)]
