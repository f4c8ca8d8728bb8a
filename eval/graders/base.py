"""The plug-in contract of the evaluation harness: graders, benchmarks and their registries.

Everything a benchmark or grader module needs lives here, so plug-ins import only this file:

    from openrlhf_steer_eval.graders.base import (
        Benchmark, PromptOptions, SamplingDefaults, Verdict, GraderConfig,
        register_benchmark, register_grader)

Where things are registered
---------------------------
* Math benchmarks (aime24, aime25, amc23, math500, minerva_math, olympiadbench) and the math
  graders (``math_verify``, ``qwen``) are registered by ``openrlhf_steer_eval.benchmarks`` and
  ``openrlhf_steer_eval.graders.math``.
* Code and IF-Eval plug-ins register themselves at import time of their own modules, listed in
  ``PLUGIN_MODULES`` below. The lookup functions in ``openrlhf_steer_eval.benchmarks``
  (``get_benchmark``, ``make_grader``) import those modules lazily, only when a name is not yet
  registered, and turn an absent module into a clear "not installed" error (never an import crash).

Data flow
---------
1. ``Benchmark.load(source, **options)`` returns a list of problem dicts (rows). ``source`` is a
   Hugging Face dataset id or a local file/folder; ``None`` means the benchmark's default id.
   ``options`` are the benchmark-specific string options from ``--benchmark-option KEY=VALUE``
   (e.g. LiveCodeBench ``release``, ``start_date``, ``end_date``); each accepted key is declared in
   ``Benchmark.options`` (key -> help), and unknown keys are rejected before ``load`` is called.
   Malformed rows must raise ``ValueError`` naming the file and 1-based line.
2. ``Benchmark.problem_id(row, index)`` gives the stable string id of a row (``index`` is its
   0-based position). Score mode accepts either this id or the index.
3. ``Benchmark.prompt(row, PromptOptions)`` returns a plain string (completion-style prompt) when
   ``options.chat`` is False, or a list of chat messages ``[{"role": ..., "content": ...}]`` when
   True; the generation backend renders messages with the model's chat template.
4. Each grader named in ``Benchmark.graders`` is built with ``make_grader(name, GraderConfig)``
   and called once per benchmark: ``grade(problems, responses)`` with ``responses[i]`` the n
   responses of ``problems[i]``; it returns verdicts of the same shape.
5. Metrics (avg@k, pass@k with standard errors) are computed by the harness from
   ``Verdict.correct``; a grader may add its own per-benchmark aggregates (e.g. IF-Eval
   instruction-level accuracy) through the optional ``extra_metrics`` method.

Metric keys always contain the grader name: ``<benchmark>/<grader>/<metric>``, e.g.
``aime24/math_verify/avg@32`` or ``aime24/math_verify/pass@k:k=8&n=32``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Protocol, Union, runtime_checkable

# Modules that register plug-in benchmarks and graders when imported (owned by the code/IF-Eval
# part of the harness). Missing modules are tolerated; see openrlhf_steer_eval.benchmarks.
PLUGIN_MODULES = (
    "openrlhf_steer_eval.data_code",
    "openrlhf_steer_eval.graders.code_lcb",
    "openrlhf_steer_eval.graders.code_evalplus",
    "openrlhf_steer_eval.graders.ifeval",
)

# Names we know are provided by plug-in modules, so a missing module gives a precise message.
PLUGIN_BENCHMARKS = {
    "livecodebench": "openrlhf_steer_eval.data_code",
    "humaneval_plus": "openrlhf_steer_eval.data_code",
    "mbpp_plus": "openrlhf_steer_eval.data_code",
    "ifeval": "openrlhf_steer_eval.graders.ifeval",
}


# --------------------------------------------------------------------------------------------
# Grading
# --------------------------------------------------------------------------------------------
@dataclass
class Verdict:
    """The result of grading one response."""

    correct: bool
    extracted: Optional[str] = None  # the extracted final answer, or the extracted code
    detail: Dict[str, Any] = field(default_factory=dict)  # per-instruction results, test outcomes, "error"
    seconds: float = 0.0  # wall time spent grading this response

    def to_dict(self) -> Dict[str, Any]:
        return {
            "correct": bool(self.correct),
            "extracted": self.extracted,
            "detail": self.detail,
            "seconds": round(float(self.seconds), 6),
        }

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Verdict":
        return cls(
            correct=bool(d["correct"]),
            extracted=d.get("extracted"),
            detail=dict(d.get("detail") or {}),
            seconds=float(d.get("seconds", 0.0)),
        )


@dataclass
class GraderConfig:
    """Resources a grader may use. Every factory receives one of these."""

    workers: int = field(default=2, metadata={"help": "Worker processes for grading (math pool, code sandbox)."})
    timeout: float = field(
        default=10.0,
        metadata={
            "help": "Outer per-sample timeout in seconds; a sample that "
            "exceeds it is scored incorrect with detail.error='timeout'."
        },
    )
    seed: int = field(
        default=0,
        metadata={
            "help": "Seed for any randomness inside grading (e.g. IF-Eval's langdetect / letter-frequency builders)."
        },
    )
    options: Dict[str, str] = field(default_factory=dict, metadata={"help": "Grader-specific options."})


@runtime_checkable
class Grader(Protocol):
    """Grades the responses of one benchmark.

    ``name`` appears in every metric key (``math_verify``, ``qwen``, ``ifeval_strict``, ``lcb_exec``...).
    ``grade`` receives the benchmark's problem dicts and, per problem, its list of responses; it
    returns one list of ``Verdict`` per problem, in the same order and of the same length. It must not
    raise for a bad *response* (score it incorrect with ``detail["error"]``); it may raise for bad
    *problems* (ValueError naming the problem id and field).

    Optional methods the harness uses when present:
      * ``extra_metrics(problems, verdicts) -> dict[str, float]``: extra aggregates, keyed by a short
        name (the harness prefixes ``<benchmark>/<grader>/``), e.g. ``{"inst_level_acc": 0.83}``.
      * ``close()``: release worker processes.
    """

    name: str

    def grade(self, problems: List[dict], responses: List[List[str]]) -> List[List[Verdict]]: ...


GraderFactory = Callable[[GraderConfig], Grader]
_GRADERS: Dict[str, GraderFactory] = {}


def register_grader(name: str, factory: GraderFactory, *, replace: bool = False) -> None:
    """Register ``factory(config) -> Grader`` under ``name`` (the name used in metric keys)."""
    if not name or "/" in name:
        raise ValueError(f"grader name {name!r} must be non-empty and contain no '/'")
    if name in _GRADERS and not replace and _GRADERS[name] is not factory:
        raise ValueError(f"grader {name!r} is already registered; pass replace=True to override it")
    _GRADERS[name] = factory


def registered_graders() -> Dict[str, GraderFactory]:
    return dict(_GRADERS)


# --------------------------------------------------------------------------------------------
# Benchmarks
# --------------------------------------------------------------------------------------------
@dataclass
class SamplingDefaults:
    """Default decoding for a benchmark; every field can be overridden from the CLI."""

    n: int = field(default=1, metadata={"help": "Responses per problem."})
    temperature: float = field(default=0.6, metadata={"help": "Sampling temperature (0 = greedy)."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling threshold."})
    max_tokens: int = field(default=4096, metadata={"help": "Maximum new tokens per response."})
    source: str = field(default="", metadata={"help": "Where these numbers come from (paper / tool / convention)."})

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class PromptOptions:
    """How a problem becomes a model input."""

    chat: bool = field(
        default=True,
        metadata={
            "help": "Return chat messages (rendered by the model's chat template) instead of a plain-text prompt."
        },
    )
    system: Optional[str] = field(default=None, metadata={"help": "Optional system message (chat mode only)."})
    template: Optional[str] = field(
        default=None, metadata={"help": "Named prompt template; None = the benchmark's default."}
    )


Prompt = Union[str, List[Dict[str, str]]]


@dataclass
class Benchmark:
    """One evaluation set: where it comes from, how to prompt it, how to grade it."""

    name: str
    load: Callable[..., List[dict]]  # load(source: str | None, **options) -> rows
    prompt: Callable[[dict, PromptOptions], Prompt]
    graders: List[str]  # grader names, first = primary
    sampling: SamplingDefaults
    problem_id: Callable[[dict, int], str] = lambda row, index: str(index)
    default_source: Optional[str] = None  # HF dataset id (or path) used when source is None
    options: Dict[str, str] = field(default_factory=dict)  # accepted load options: key -> help
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"benchmark name {self.name!r} must be non-empty and contain no '/'")
        if not self.graders:
            raise ValueError(f"benchmark {self.name!r} needs at least one grader")


_BENCHMARKS: Dict[str, Benchmark] = {}


def register_benchmark(benchmark: Benchmark, *, replace: bool = False) -> Benchmark:
    """Add ``benchmark`` to the registry (idempotent for the same object)."""
    old = _BENCHMARKS.get(benchmark.name)
    if old is not None and old is not benchmark and not replace:
        raise ValueError(f"benchmark {benchmark.name!r} is already registered; pass replace=True to override it")
    _BENCHMARKS[benchmark.name] = benchmark
    return benchmark


def registered_benchmarks() -> Dict[str, Benchmark]:
    return dict(_BENCHMARKS)
