"""Prompt templates for math benchmarks (a registry: name -> builder).

``boxed`` (default) is the zero-shot prompt used across RLVR papers (SimpleRL-Zoo, Dr. GRPO, the
entropy papers' Qwen2.5-Math setups): the question followed by
"Please reason step by step, and put your final answer within \\boxed{}." as the user turn.
``qwen25-math-cot`` is Qwen2.5-Math's evaluation template: the same instruction as the *system*
message and the bare question as the user turn. ``question`` is the bare question with no instruction
(STEER Sec. 5.1: "zero-shot with no additional prompts"). ``dapo`` wraps the question in DAPO-Math-17k's
instruction (the "Answer:" line format), as the STEER authors' evaluation files do for AIME24, AIME25 and
AMC23 (zz-haooo/STEER ``datasets/*.parquet``; see reproduce/configs/recipes/steer.yaml, reading
``eval_prompt``). With ``chat=False`` ``boxed`` and ``qwen25-math-cot`` render to plain text ending with an
"Answer:" cue, ``question`` and ``dapo`` to their user text, for base models evaluated without a chat template.

Apart from ``qwen25-math-cot``, no template adds a system turn unless ``PromptOptions.system`` is given:
with a chat template, the model's template then decides (Qwen2.5-Math's inserts "Please reason step by
step, and put your final answer within \\boxed{}." as the system turn when the messages have none, as
verl's dataset does for the STEER authors).
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Union

from .graders.base import PromptOptions

BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
# DAPO-Math-17k's user-turn format (the same text as openrlhf_steer.data.dapo_math; a test keeps them equal).
DAPO_PREFIX = (
    "Solve the following math problem step by step. The last line of your response should be of the "
    "form Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n"
)
DAPO_SUFFIX = '\n\nRemember to put your answer on its own line after "Answer:".'

Messages = List[Dict[str, str]]
Builder = Callable[[str, PromptOptions], Union[str, Messages]]


def _with_system(messages: Messages, system: Optional[str]) -> Messages:
    return ([{"role": "system", "content": system}] if system else []) + messages


def boxed_prompt(question: str, options: PromptOptions) -> Union[str, Messages]:
    text = f"{question.strip()}\n{BOXED_INSTRUCTION}"
    if not options.chat:
        return f"Question: {text}\nAnswer: "
    return _with_system([{"role": "user", "content": text}], options.system)


def question_prompt(question: str, options: PromptOptions) -> Union[str, Messages]:
    """The bare question, no instruction: STEER evaluates "zero-shot with no additional prompts" (Sec. 5.1)."""
    if not options.chat:
        return question.strip()
    return _with_system([{"role": "user", "content": question.strip()}], options.system)


def dapo_prompt(question: str, options: PromptOptions) -> Union[str, Messages]:
    """The question inside DAPO-Math-17k's instruction, one user turn (the STEER authors' AIME/AMC eval files)."""
    text = f"{DAPO_PREFIX}{question.strip()}{DAPO_SUFFIX}"
    if not options.chat:
        return text
    return _with_system([{"role": "user", "content": text}], options.system)


def qwen25_math_cot_prompt(question: str, options: PromptOptions) -> Union[str, Messages]:
    if not options.chat:
        return f"{BOXED_INSTRUCTION}\n\nQuestion: {question.strip()}\nAnswer: "
    system = options.system or BOXED_INSTRUCTION
    return [{"role": "system", "content": system}, {"role": "user", "content": question.strip()}]


MATH_TEMPLATES: Dict[str, Builder] = {
    "boxed": boxed_prompt,
    "qwen25-math-cot": qwen25_math_cot_prompt,
    "question": question_prompt,
    "dapo": dapo_prompt,
}


def math_prompt(question: str, options: PromptOptions) -> Union[str, Messages]:
    name = options.template or "boxed"
    try:
        builder = MATH_TEMPLATES[name]
    except KeyError:
        raise ValueError(
            f"unknown prompt template {name!r} (--prompt-template); choose one of {', '.join(sorted(MATH_TEMPLATES))}"
        ) from None
    return builder(question, options)
