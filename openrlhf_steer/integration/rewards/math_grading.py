"""Math reward implementation behind ``openrlhf_steer/integration/rewards/math_reward.py`` (the file given to OpenRLHF).

OpenRLHF loads this file with ``importlib`` in every vLLM engine process and calls
``reward_func(queries, prompts, labels)`` one sample at a time from ``asyncio.to_thread`` threads.
Math-Verify's timeouts use ``signal.alarm`` and fail outside the main thread, so grading runs in the
evaluation harness's :class:`~openrlhf_steer_eval.graders.math.MathGraderPool` worker processes
(each sample in a worker's main thread, the worker killed and replaced after a per-sample timeout).
A dispatcher thread batches the concurrent calls into the pool; each caller also waits at most an
outer timeout. Any failure gives the incorrect reward and is counted in ``extra_logs``; the
function never raises for a response and never blocks past the outer timeout.

Settings (environment variables, read once per process):
    OPENRLHF_STEER_REWARD_GRADER     math_verify (default) | qwen
    OPENRLHF_STEER_REWARD_WORKERS    grading processes per vLLM engine process (default 2)
    OPENRLHF_STEER_REWARD_TIMEOUT    seconds per sample inside the pool (default 10)
    OPENRLHF_STEER_REWARD_WAIT       outer seconds a caller waits for its verdict (default 120)
    OPENRLHF_STEER_REWARD_CORRECT    reward of a correct answer (default 1.0)
    OPENRLHF_STEER_REWARD_INCORRECT  reward of a wrong / missing / failed answer (default 0.0; DAPO uses -1)
    OPENRLHF_STEER_REWARD_MAX_ANSWER longest final answer graded, in characters (default 1000)

This file must stay importable without DeepSpeed or OpenRLHF (vLLM processes load it).
"""

from __future__ import annotations

import atexit
import os
import queue
import re
import threading
from concurrent.futures import Future, TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch

EXTRA_LOG_KEYS = ("reward_correct", "reward_no_answer", "reward_error", "reward_timeout")
_TRAILING_SPECIAL = re.compile(r"(?:\s*(?:<\|[^<>|]{1,40}\|>|</s>|<eos>|<end_of_turn>))+\s*$")
_TAIL_CHARS = 4000  # Math-Verify looks at the end of the response; huge bodies are cut to this tail


@dataclass(frozen=True)
class RewardSettings:
    grader: str = "math_verify"
    workers: int = 2
    timeout: float = 10.0
    wait: float = 120.0
    correct: float = 1.0
    incorrect: float = 0.0
    max_answer_chars: int = 1000

    @classmethod
    def from_env(cls) -> "RewardSettings":
        env = os.environ

        def number(name: str, default, convert):
            raw = env.get(f"OPENRLHF_STEER_REWARD_{name}")
            if raw is None or raw == "":
                return default
            try:
                return convert(raw)
            except ValueError:
                raise ValueError(f"OPENRLHF_STEER_REWARD_{name}={raw!r} is not a valid {convert.__name__}") from None

        settings = cls(
            grader=env.get("OPENRLHF_STEER_REWARD_GRADER", cls.grader),
            workers=number("WORKERS", cls.workers, int),
            timeout=number("TIMEOUT", cls.timeout, float),
            wait=number("WAIT", cls.wait, float),
            correct=number("CORRECT", cls.correct, float),
            incorrect=number("INCORRECT", cls.incorrect, float),
            max_answer_chars=number("MAX_ANSWER", cls.max_answer_chars, int),
        )
        if settings.grader not in ("math_verify", "qwen"):
            raise ValueError(f"OPENRLHF_STEER_REWARD_GRADER={settings.grader!r}: use math_verify or qwen")
        if settings.workers < 1 or settings.timeout <= 0 or settings.wait <= 0:
            raise ValueError("OPENRLHF_STEER_REWARD_WORKERS must be >= 1 and _TIMEOUT/_WAIT > 0 seconds")
        return settings


# --------------------------------------------------------------------------------------------------
# Pure text helpers
# --------------------------------------------------------------------------------------------------
def response_text(query: str, prompt: Optional[str]) -> str:
    """The model's response: ``query`` (prompt + response, special tokens kept) minus the prompt."""
    query = "" if query is None else str(query)
    if prompt:
        if query.startswith(prompt):
            query = query[len(prompt) :]
        else:  # the engine left-truncates long prompts: the query starts with a suffix of the prompt
            for keep in range(len(prompt) - 1, 15, -1):
                if query.startswith(prompt[-keep:]):
                    query = query[keep:]
                    break
    return _TRAILING_SPECIAL.sub("", query)


def gradable_text(response: str, max_answer_chars: int) -> Tuple[Optional[str], str]:
    """(text to grade, problem) where problem is '' or why the response gets no credit without grading."""
    from openrlhf_steer_eval.graders.math_text import last_boxed_content

    if not response.strip():
        return None, "no_answer"
    tail = response[-_TAIL_CHARS:]
    boxed_at = response.rfind("\\boxed")
    if boxed_at >= 0:
        boxed = last_boxed_content(response[boxed_at:])
        if boxed is not None:
            if not boxed.strip():
                return None, "no_answer"  # \boxed{} with nothing in it
            if len(boxed) > max_answer_chars:
                return None, "no_answer"
            return response[max(0, boxed_at - 200) :], ""
    return tail, ""


# --------------------------------------------------------------------------------------------------
# Process-wide grading service (lazy; one per process, safe from many threads)
# --------------------------------------------------------------------------------------------------
class _GradingService:
    MAX_BATCH = 64

    def __init__(self, settings: RewardSettings):
        from openrlhf_steer_eval.graders.math import MathGraderPool

        self.settings = settings
        self.pool = MathGraderPool(workers=settings.workers, timeout=settings.timeout)
        self.requests: "queue.Queue[Tuple[str, str, Future]]" = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="math-reward-dispatch", daemon=True)
        self.thread.start()
        atexit.register(self.pool.close)  # never leave grading processes behind

    def submit(self, text: str, gold: str) -> Future:
        future: Future = Future()
        self.requests.put((text, gold, future))
        return future

    def _loop(self) -> None:
        while True:
            batch = [self.requests.get()]
            while len(batch) < self.MAX_BATCH:
                try:
                    batch.append(self.requests.get(timeout=0.005))
                except queue.Empty:
                    break
            try:
                verdicts = self.pool.grade_many([(t, g) for t, g, _ in batch], grader=self.settings.grader)
            except Exception as exc:  # the pool itself failed (e.g. workers cannot start): no credit
                verdicts = [None] * len(batch)
                error = f"{type(exc).__name__}: {exc}"[:200]
                for _, _, fut in batch:
                    fut.set_result(("error", error))
                continue
            for (_, _, fut), verdict in zip(batch, verdicts):
                fut.set_result(("ok", verdict))


_SERVICE: Optional[_GradingService] = None
_SERVICE_PID: Optional[int] = None
_SERVICE_LOCK = threading.Lock()


def _service() -> _GradingService:
    global _SERVICE, _SERVICE_PID
    with _SERVICE_LOCK:
        if _SERVICE is None or _SERVICE_PID != os.getpid():  # a forked child needs its own workers
            _SERVICE = _GradingService(RewardSettings.from_env())
            _SERVICE_PID = os.getpid()
        return _SERVICE


def _outcome(future: Optional[Future], problem: str, wait: float) -> str:
    """'correct' | 'wrong' | 'no_answer' | 'timeout' | 'error'."""
    if future is None:
        return problem
    try:
        status, verdict = future.result(timeout=wait)
    except FutureTimeout:
        return "timeout"
    if status != "ok" or verdict is None:
        return "error"
    if verdict.correct:
        return "correct"
    error = (verdict.detail or {}).get("error")
    if error in ("timeout",):
        return "timeout"
    if error:
        return "error"
    return "wrong" if verdict.extracted else "no_answer"


def grade_responses(responses: Sequence[str], golds: Sequence[str]) -> List[str]:
    """Outcomes for response/gold pairs (all submitted before waiting, so they grade in parallel)."""
    service = _service()
    settings = service.settings
    pending = []
    for response, gold in zip(responses, golds):
        try:
            text, problem = gradable_text(response, settings.max_answer_chars)
        except Exception:
            text, problem = None, "error"
        future = service.submit(text, str(gold)) if text is not None else None
        pending.append((future, problem))
    return [_outcome(future, problem, settings.wait) for future, problem in pending]


def reward_func(queries, prompts, labels, **kwargs):
    """OpenRLHF reward hook: ``{"rewards": [N], "scores": [N] in {0,1}, "extra_logs": {key: [N]}}``."""
    queries = list(queries)
    prompts = list(prompts) if prompts is not None else [None] * len(queries)
    labels = list(labels) if labels is not None else [None] * len(queries)
    if not (len(queries) == len(prompts) == len(labels)):
        raise ValueError(
            f"reward_func got {len(queries)} queries, {len(prompts)} prompts and {len(labels)} labels; "
            "they must have one entry per sample"
        )
    responses = [response_text(q, p) for q, p in zip(queries, prompts)]
    outcomes = []
    for response, label in zip(responses, labels):
        outcomes.append("error" if label is None or str(label).strip() == "" else None)
    todo = [i for i, o in enumerate(outcomes) if o is None]
    if todo:
        graded = grade_responses([responses[i] for i in todo], [str(labels[i]) for i in todo])
        for i, outcome in zip(todo, graded):
            outcomes[i] = outcome
    settings = _service().settings if todo else RewardSettings.from_env()
    correct = torch.tensor([o == "correct" for o in outcomes], dtype=torch.float32)
    rewards = torch.where(correct.bool(), torch.tensor(settings.correct), torch.tensor(settings.incorrect))
    extra = {
        "reward_correct": correct,
        "reward_no_answer": torch.tensor([o == "no_answer" for o in outcomes], dtype=torch.float32),
        "reward_error": torch.tensor([o == "error" for o in outcomes], dtype=torch.float32),
        "reward_timeout": torch.tensor([o == "timeout" for o in outcomes], dtype=torch.float32),
    }
    return {"rewards": rewards, "scores": correct.clone(), "extra_logs": extra}
