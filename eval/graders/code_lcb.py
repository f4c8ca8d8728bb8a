"""LiveCodeBench code-generation grader (``lcb_exec``), giving the official runner's verdicts.

Reference: LiveCodeBench/LiveCodeBench at ``LCB_REVISION`` (``lcb_runner/evaluation/testing_util.py``,
``compute_code_generation_metrics.py`` and ``utils/extraction_utils.py``); docs/eval_code_ifeval.md lists
every behaviour below with where we deliberately differ.

* code extraction: the lines between the *last two* lines that contain a triple backtick; no fence
  pair means the empty program, which the official runner still runs (and records ``[-4]``).
  ``code_style="base"`` takes the whole response instead.
* process settings of the metrics module and ``reliability_guard``: ``sys.set_int_max_str_digits(50000)``,
  ``quit``/``help`` and the destructive ``os``/``shutil``/``subprocess`` functions set to ``None``.
* stdin problems: a final ``if __name__ == "__main__":`` block is unwrapped, every non-import statement
  is wrapped in one function behind the star-import prelude, and each test calls it with stdout captured
  and two views of stdin (``_install_test_stdin``): ``sys.stdin`` looked up while the test runs is the
  runner's mock (``readline`` keeps the newline and gives ``''`` at the end, ``read``/``readlines`` give
  the whole input, ``.buffer``, not iterable), while a name bound when the module was compiled
  (``from sys import stdin`` or the prelude's ``from sys import *``) is the process' real stdin
  (``/dev/null``) whose ``read``/``readline``/``readlines`` are patched (``readline`` yields lines
  without their newline and raises StopIteration at the end). ``SystemExit`` is ignored. Outputs match
  when, after ``strip()`` and splitting into lines (each stripped), both have the same number of lines
  and every line is equal either exactly or element-wise as ``Decimal`` numbers.
* functional (LeetCode) problems: the prelude is prepended, ``Solution()`` is instantiated when the
  code mentions it, ``method(*args)`` is called with one JSON value per input line, a tuple result
  becomes a list, and it must ``==`` the JSON-decoded output.
* per-test time limit (official default 6 s) raised as an ``Exception`` subclass (user code can catch it,
  as upstream); the whole run gets ``(timeout + 1) x tests + 5`` seconds. The first failure stops the
  problem. Result codes: True pass, -2 wrong answer (False for a functional wrong answer, as upstream
  records it), -3 time limit, -4 runtime/compile error; a run that dies or overruns the whole-run limit
  is recorded as upstream's fallback does, ``[-2]`` with ``error_code`` -5 (``check_correctness`` means
  to record -1 per test, but at the pinned revision it then fails on the missing metadata). A response
  passes when every test passed.

Differences, all on the safe side: each (problem, response) runs in our sandbox (separate
interpreter, memory/CPU limits, no network, guarded file system, output capped) instead of a forked
process with only ``reliability_guard``; time limits are float seconds (``setitimer``).

The ``run_tests_in_child`` function is the sandbox driver; it runs in the child and must only use the
standard library plus ``sandbox`` helpers.
"""

from __future__ import annotations

import ast
import builtins
import io
import json
import os
import signal
import sys
import time
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import sandbox

# The official revision whose verdicts this grader reproduces (LiveCodeBench/LiveCodeBench, 2025-07-16;
# testing_util.py last changed in 16de2a1, 2025-05-23, which added the stdin mock's ``.buffer``).
LCB_REVISION = "28fef95ea8c9f7a547c8329f2cd3d32b92c1fa24"

# Result codes of the official runner.
PASSED = True
WRONG_ANSWER = -2
TIME_LIMIT = -3
RUNTIME_ERROR = -4
# check_correctness's per-test code for a run that never reported (global timeout, crash). At the pinned
# revision it never reaches the results: the missing metadata raises, and the caller's fallback records
# [WRONG_ANSWER] with metadata error_code RUNNER_ERROR. We record what the runner records.
GLOBAL_TIMEOUT = -1
RUNNER_ERROR = -5
# The official metrics module raises Python's int<->str digit limit before forking its workers.
INT_MAX_STR_DIGITS = 50000
# The official alarm handler prints this (into the captured stdout when a test is running).
TIMEOUT_MESSAGE = "timeout occured: alarm went off"

# The official runner puts every solution behind these star-imports and module imports.
PRELUDE_MODULES = (
    "string",
    "re",
    "datetime",
    "collections",
    "heapq",
    "bisect",
    "copy",
    "math",
    "random",
    "statistics",
    "itertools",
    "functools",
    "operator",
    "io",
    "sys",
    "json",
)
PRELUDE = (
    "".join(f"from {m} import *\n" for m in PRELUDE_MODULES[:-1])
    + "from json import *\nfrom builtins import *\nfrom typing import *\n"
    + "".join(f"import {m}\n" for m in PRELUDE_MODULES)
    + "sys.setrecursionlimit(50000)\n"
)

WRAPPED_FUNCTION = "wrapped_function"


# --------------------------------------------------------------------------------------------
# Pure helpers (parent and child)
# --------------------------------------------------------------------------------------------
def extract_code(response: str, code_style: str = "chat") -> str:
    """The official extraction: text between the last two lines containing a ``` fence."""
    if code_style == "base":
        return response.strip()
    if code_style != "chat":
        raise ValueError(f"code_style must be 'chat' or 'base', got {code_style!r}")
    lines = response.split("\n")
    fences = [i for i, line in enumerate(lines) if "```" in line]
    if len(fences) < 2:
        return ""
    return "\n".join(lines[fences[-2] + 1 : fences[-1]])


def stripped_lines(text: str) -> List[str]:
    return [line.strip() for line in text.strip().split("\n")]


def _as_decimals(line: str) -> Optional[List[Decimal]]:
    try:
        return [Decimal(token) for token in line.split()]
    except (InvalidOperation, ValueError):
        return None


def stdout_matches(prediction: str, expected: str) -> Tuple[bool, str]:
    """The official stdin comparison. Returns (match, reason)."""
    got, want = stripped_lines(prediction), stripped_lines(expected)
    if len(got) != len(want):
        return False, f"Wrong answer: mismatched output length ({len(got)} lines, expected {len(want)})"
    for index, (g, w) in enumerate(zip(got, want)):
        if g == w:
            continue
        g_dec, w_dec = _as_decimals(g), _as_decimals(w)
        if g_dec is None or w_dec is None or g_dec != w_dec:
            return False, (
                f"Wrong answer at output_line_idx={index}: {sandbox.short_repr(g, 120)} != {sandbox.short_repr(w, 120)}"
            )
    return True, ""


def unwrap_main_guard(code: str) -> str:
    """Move the body of a final ``if __name__ == '__main__':`` block to module level."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    if not tree.body:
        return code
    last = tree.body[-1]
    if isinstance(last, ast.If) and ast.unparse(last.test).strip() == "__name__ == '__main__'":
        return ast.unparse(tree.body[:-1]) + "\n" + ast.unparse(last.body)
    return code


def wrap_stdin_program(code: str) -> str:
    """Prelude + the program's imports + all other statements inside ``wrapped_function()``."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code  # compiling it will report the error, as upstream does
    # (an import-only program gives an empty function body, which fails to compile, as upstream)
    imports = [s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
    others = [s for s in tree.body if not isinstance(s, (ast.Import, ast.ImportFrom))]
    function = ast.FunctionDef(
        name=WRAPPED_FUNCTION,
        args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
        body=others,
        decorator_list=[],
        returns=None,
        type_comment=None,
        lineno=1,
    )
    return PRELUDE + "\n" + ast.unparse(imports) + "\n" + ast.unparse(ast.fix_missing_locations(function))


# --------------------------------------------------------------------------------------------
# Child side: the sandbox driver
# --------------------------------------------------------------------------------------------
class TimeoutException(Exception):
    """The per-test time limit as the official runner raises it: an ``Exception`` (so user code's
    ``except Exception`` can swallow it, as upstream; the parent's whole-run deadline then ends the run)
    whose repr holds "timeoutexception", the text upstream tests to tell a time limit from an error."""


def _is_time_limit(exc: BaseException) -> bool:
    return "timeoutexception" in repr(exc).lower()  # upstream's test, so a user's look-alike counts too


def _alarm(signum, frame):
    print(TIMEOUT_MESSAGE)  # upstream prints before raising; during a test this lands in the captured output
    raise TimeoutException


class _Alarm:
    """Per-test (and compile) time limit: SIGALRM after ``seconds`` of wall time, disarmed on exit."""

    def __init__(self, seconds: float) -> None:
        self.seconds = max(float(seconds), 1e-3)

    def __enter__(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)


class _StdinBytes:
    """``sys.stdin.buffer`` of the official mock: ``read`` gives the whole input as bytes every time,
    ``readline`` always the first line plus b"\\n"; nothing else (``readlines`` is an AttributeError)."""

    def __init__(self, text: str) -> None:
        self._data = text.encode("utf-8")

    def read(self, *args) -> bytes:
        return self._data

    def readline(self, *args) -> bytes:
        return self._data.split(b"\n")[0] + b"\n"


class _TestStdin:
    """``sys.stdin`` while a test runs, behaving as the official mock: ``readline`` reads a
    ``StringIO`` of the input (newline kept, ``''`` at the end; ``input()`` goes through it too),
    ``read`` returns the whole input every time, ``readlines`` the input split on "\\n" (no newlines,
    a final ``''`` when the input ends with one). Other attributes come from the ``StringIO``; iterating
    is a TypeError, because the class defines no ``__iter__``."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._stream = io.StringIO(text)
        self.buffer = _StdinBytes(text)

    def read(self, *args) -> str:
        return self._text

    def readline(self, *args) -> str:
        return self._stream.readline(*args)

    def readlines(self, *args) -> List[str]:
        return self._text.split("\n")

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


_PATCHED_STDIN_METHODS = ("read", "readline", "readlines")


class _TestStreams:
    """One test's streams, as upstream's patches leave them: the process' real stdin object (what names
    bound at compile time hold) gets instance ``read``/``readline``/``readlines`` serving the input,
    ``readline`` yielding lines without newline and raising StopIteration at the end; ``sys.stdin`` is a
    ``_TestStdin``; ``builtins.open`` returns the input; ``sys.stdout`` is the capture."""

    def __init__(self, text: str, capture: io.StringIO) -> None:
        self.text, self.capture = text, capture

    def __enter__(self) -> None:
        text = self.text
        self.saved = (sys.stdin, sys.stdout, builtins.open)
        real = sys.stdin
        lines = iter(text.split("\n"))
        real.read = lambda *a: text
        real.readline = lambda *a: next(lines)
        real.readlines = lambda *a: text.split("\n")
        sys.stdin, sys.stdout = _TestStdin(text), self.capture
        builtins.open = lambda *a, **k: io.StringIO(text)  # upstream mocks it; the prelude's `open` is the real one

    def __exit__(self, *exc) -> None:
        real, sys.stdout, builtins.open = self.saved
        sys.stdin = real
        for name in _PATCHED_STDIN_METHODS:
            real.__dict__.pop(name, None)


class _Capture(sandbox.CappedStringIO):
    """Captured stdout; ``close()`` does nothing, as in upstream's capture."""

    def close(self) -> None:
        pass


def _failure(results: list, code: int, message: str, **extra) -> Dict[str, Any]:
    results.append(code)
    return {"results": results, "error_code": code, "error_message": message, **extra}


def _testing_error(exc: BaseException) -> Dict[str, Any]:
    """What run_test records when grading itself raises (compile errors, a missing method): [-4] only."""
    return {
        "results": [RUNTIME_ERROR],
        "error_code": RUNTIME_ERROR,
        "error_message": f"Error during testing: {sandbox.exception_summary(exc)}",
    }


def _runner_died(reason: str) -> Dict[str, Any]:
    """What the official caller records when the run reports nothing (see GLOBAL_TIMEOUT)."""
    return {"results": [WRONG_ANSWER], "error_code": RUNNER_ERROR, "error_message": "TestRunnerError", "error": reason}


def _load_entry(source: str, solution_text: str, name: str, timeout: float):
    """Execute ``source`` as module ``tmp_sol`` under the time limit; return ``name`` from a ``Solution()``
    instance when ``solution_text`` mentions one (upstream's test, even for stdin code), else from the
    module. Raises what upstream's compile step would (the caller records -4)."""
    module = types.ModuleType("tmp_sol", "")
    with _Alarm(timeout):
        exec(compile(source, "<solution>", "exec"), module.__dict__)
    owner = module.Solution() if "class Solution" in solution_text else module
    entry = getattr(owner, name, None)
    if entry is None:
        raise AttributeError(f"the solution defines no {name!r}")
    return entry


def _run_stdin_tests(code: str, tests: Sequence[dict], timeout: float, max_chars: int) -> Dict[str, Any]:
    source = wrap_stdin_program(unwrap_main_guard(code))
    try:
        method = _load_entry(source, source, WRAPPED_FUNCTION, timeout)
    except Exception as exc:
        return _testing_error(exc)
    results: list = []
    for test in tests:
        stdin_text = test["input"] if isinstance(test["input"], str) else "\n".join(test["input"])
        captured = _Capture(max_chars)
        try:
            with _Alarm(timeout), _TestStreams(stdin_text, captured):
                try:
                    method()
                except SystemExit:
                    pass
        except sandbox.OutputLimitExceeded as exc:  # our cap (upstream has none): a runtime error
            return _failure(results, RUNTIME_ERROR, "Runtime Error", error=str(exc))
        except Exception as exc:
            timed_out = _is_time_limit(exc)
            return _failure(
                results,
                TIME_LIMIT if timed_out else RUNTIME_ERROR,
                "Time Limit Exceeded" if timed_out else "Runtime Error",
                error=sandbox.exception_summary(exc),
                inputs=sandbox.short_repr(stdin_text),
            )
        try:
            ok, reason = stdout_matches(captured.getvalue(), test["output"])
        except Exception as exc:  # e.g. Decimal('sNaN') compared: upstream's run_test records [-4]
            return _testing_error(exc)
        if not ok:
            return _failure(
                results,
                WRONG_ANSWER,
                reason,
                output=sandbox.short_repr(captured.getvalue()),
                inputs=sandbox.short_repr(stdin_text),
                expected=sandbox.short_repr(test["output"]),
            )
        results.append(PASSED)
    return {"results": results}


def _run_functional_tests(code: str, tests: Sequence[dict], fn_name: str, timeout: float) -> Dict[str, Any]:
    try:
        method = _load_entry(PRELUDE + "\n\n" + code, code, fn_name, timeout)
        cases = [([json.loads(line) for line in t["input"].split("\n")], json.loads(t["output"])) for t in tests]
    except Exception as exc:
        return _testing_error(exc)
    results: list = []
    for args, expected in cases:
        try:
            with _Alarm(timeout):
                prediction = method(*args)
            if isinstance(prediction, tuple):  # ground truth sequences are lists
                prediction = list(prediction)
            same = prediction == expected
            if not same:
                # upstream records the comparison's value (False), with error_code -2
                failed = _failure(
                    results,
                    WRONG_ANSWER,
                    "Wrong Answer",
                    output=sandbox.short_repr(prediction),
                    inputs=sandbox.short_repr(args),
                    expected=sandbox.short_repr(expected),
                )
                failed["results"][-1] = False
                return failed
        except Exception as exc:
            timed_out = _is_time_limit(exc)
            return _failure(
                results,
                TIME_LIMIT if timed_out else RUNTIME_ERROR,
                "Time Limit Exceeded" if timed_out else "Runtime Error",
                error=sandbox.exception_summary(exc),
                inputs=sandbox.short_repr(args),
            )
        results.append(PASSED)
    return {"results": results}


# reliability_guard of the pinned revision: names set to None before the solution is compiled.
_GUARD_NONE = {
    "os": (
        "kill system putenv remove removedirs rmdir fchdir setuid fork forkpty killpg rename renames truncate "
        "replace unlink fchmod fchown chmod chown chroot lchflags lchmod lchown getcwd chdir"
    ).split(),
    "shutil": ["rmtree", "move", "chown"],
    "subprocess": ["Popen"],
    "builtins": ["quit", "help"],
}
_GUARD_NO_IMPORT = ("ipdb", "joblib", "resource", "psutil", "tkinter")


def _official_process_settings() -> None:
    """The state upstream's worker process is in when the solution is compiled."""
    import shutil
    import subprocess

    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(INT_MAX_STR_DIGITS)
    modules = {"os": os, "shutil": shutil, "subprocess": subprocess, "builtins": builtins}
    for module_name, names in _GUARD_NONE.items():
        for name in names:
            setattr(modules[module_name], name, None)
    for name in _GUARD_NO_IMPORT:
        sys.modules[name] = None
    # multiprocessing gives its workers open(os.devnull) as stdin: what `from sys import stdin` binds
    sys.stdin = open(os.devnull)  # noqa: SIM115  (lives as long as the child)
    signal.signal(signal.SIGALRM, _alarm)


def run_tests_in_child(payload: Dict[str, Any]) -> Dict[str, Any]:
    """Sandbox driver: run one program against a problem's tests (official semantics)."""
    start = time.perf_counter()
    _official_process_settings()
    try:
        if payload.get("fn_name"):
            out = _run_functional_tests(payload["code"], payload["tests"], payload["fn_name"], payload["timeout"])
        else:
            out = _run_stdin_tests(payload["code"], payload["tests"], payload["timeout"], payload["max_output_chars"])
    except BaseException as exc:  # SystemExit from a method, KeyboardInterrupt...: upstream's worker dies
        out = _runner_died(f"the run ended with {sandbox.exception_summary(exc)}")
    out["execution_seconds"] = round(time.perf_counter() - start, 4)
    return out


# --------------------------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------------------------
@dataclass
class LcbExecConfig:
    """Execution settings of the LiveCodeBench grader (``--grader-option KEY=VALUE``)."""

    test_timeout: float = field(
        default=6.0, metadata={"help": "Per-test time limit in seconds (official runner: --timeout 6)."}
    )
    memory_mb: int = field(
        default=4096,
        metadata={"help": "Address-space limit per run in MiB (the official runner sets none; evalplus uses 4 GiB)."},
    )
    code_style: str = field(
        default="chat",
        metadata={
            "help": "'chat': code between the last two ``` lines (official, chat models); 'base': whole response."
        },
    )
    max_output_mb: int = field(default=16, metadata={"help": "Most stdout a test may print (MiB)."})
    workers: int = field(default=2, metadata={"help": "Parallel sandboxes."})

    @classmethod
    def from_options(cls, options: Dict[str, str], workers: int) -> "LcbExecConfig":
        known = {"test_timeout": float, "memory_mb": int, "code_style": str, "max_output_mb": int}
        # GraderConfig.options is shared by all graders of a run: keys we do not know are another's.
        values = {}
        for key, cast in known.items():
            if key in options:
                try:
                    values[key] = cast(options[key])
                except ValueError:
                    raise ValueError(f"lcb_exec grader option {key}={options[key]!r}: expected {cast.__name__}")
        config = cls(workers=max(1, int(workers)), **values)
        if config.test_timeout <= 0:
            raise ValueError("lcb_exec grader option test_timeout must be > 0 seconds")
        extract_code("", config.code_style)  # validates code_style
        return config


def problem_tests(problem: Dict[str, Any]) -> Tuple[List[dict], Optional[str]]:
    """The (public + private) tests and function name of a normalised problem row."""
    pid = problem.get("question_id", problem.get("id", "?"))
    tests = problem.get("tests")
    if not isinstance(tests, list) or not tests:
        raise ValueError(
            f"LiveCodeBench problem {pid!r}: field 'tests' must be a non-empty list of "
            "{input, output, testtype}; load rows with openrlhf_steer_eval.data_code"
        )
    for index, test in enumerate(tests):
        if (
            not isinstance(test, dict)
            or not isinstance(test.get("input"), str)
            or not isinstance(test.get("output"), str)
        ):
            raise ValueError(f"LiveCodeBench problem {pid!r}: tests[{index}] needs string 'input' and 'output'")
    fn_name = problem.get("fn_name") or None
    kinds = {t.get("testtype", "stdin") for t in tests}
    if "functional" in kinds and not fn_name:
        raise ValueError(f"LiveCodeBench problem {pid!r}: functional tests need 'fn_name' (metadata.func_name)")
    return tests, fn_name


def run_program(code: str, tests: List[dict], fn_name: Optional[str], config: LcbExecConfig) -> Dict[str, Any]:
    """Run one extracted program in the sandbox; returns the detail dict with ``passed``."""
    if not code.strip():
        # upstream compiles the empty program anyway: a stdin one fails to compile (empty wrapped_function),
        # a functional one has no method; run_test records [-4] either way
        return {
            "passed": False,
            "results": [RUNTIME_ERROR],
            "error_code": RUNTIME_ERROR,
            "error_message": "Error during testing: no code extracted",
            "sandbox_status": None,
        }
    limits = sandbox.SandboxLimits(
        wall_timeout=(config.test_timeout + 1) * len(tests) + 5,  # the official global timeout
        # upstream's clock starts at fork; ours covers interpreter start-up too. Runs that reach the limit
        # have overrun every per-test alarm already (n x t < (t + 1) x n + 5), so this only bounds them.
        startup_grace=1.0,
        memory_bytes=config.memory_mb * sandbox.MiB,
        max_output_bytes=(config.max_output_mb + 1) * sandbox.MiB,
    )
    payload = {
        "code": code,
        "tests": tests,
        "fn_name": fn_name,
        "timeout": config.test_timeout,
        "max_output_chars": config.max_output_mb * sandbox.MiB,
    }
    run = sandbox.run_driver(f"{__name__}:run_tests_in_child", payload, limits)
    if run.status == sandbox.SETUP_ERROR:
        raise sandbox.SandboxSetupError(f"lcb_exec: the sandbox failed to start: {run.error}")
    if run.ok and isinstance(run.value, dict):
        detail = dict(run.value)
    else:
        # The whole run died (time/CPU/output limit, crash): recorded as the official fallback records it.
        detail = _runner_died(f"sandbox {run.status}: {run.error}")
    results = detail.get("results", [])
    # upstream: correct when every recorded code is > 0 (True); it stops at the first failure
    detail["passed"] = bool(results) and len(results) == len(tests) and all(r is True for r in results)
    detail["sandbox_status"] = run.status
    detail["network_isolation"] = run.network_isolation
    return detail


class LiveCodeBenchGrader:
    """Grades LiveCodeBench responses by running them against the problem's tests."""

    name = "lcb_exec"

    def __init__(self, config: LcbExecConfig) -> None:
        self.config = config

    def grade_one(self, problem: Dict[str, Any], response: str):
        from .base import Verdict

        tests, fn_name = problem_tests(problem)
        start = time.perf_counter()
        code = extract_code(response if isinstance(response, str) else "", self.config.code_style)
        detail = run_program(code, tests, fn_name, self.config)
        if problem.get("errata"):
            detail["errata"] = problem["errata"]  # upstream-listed problem: see data_code.LCB_ERRATA
        return Verdict(correct=detail.pop("passed"), extracted=code, detail=detail, seconds=time.perf_counter() - start)

    def grade(self, problems: List[dict], responses: List[List[str]]):
        if len(problems) != len(responses):
            raise ValueError(f"lcb_exec: {len(problems)} problems but {len(responses)} response lists")
        for problem in problems:
            problem_tests(problem)  # bad problems fail before any run
        sandbox.self_check()  # a broken sandbox is an error, never a 0% score
        jobs = [(i, j) for i, rs in enumerate(responses) for j in range(len(rs))]
        verdicts: List[List[Any]] = [[None] * len(rs) for rs in responses]
        from tqdm.auto import tqdm

        with ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            futures = {pool.submit(self.grade_one, problems[i], responses[i][j]): (i, j) for i, j in jobs}
            with tqdm(total=len(jobs), desc="lcb_exec", unit="run", leave=False) as bar:
                for future in _as_completed(futures):
                    i, j = futures[future]
                    verdicts[i][j] = future.result()
                    bar.update(1)
        return verdicts


def _as_completed(futures):
    from concurrent.futures import as_completed

    return as_completed(futures)


def make_lcb_grader(config) -> LiveCodeBenchGrader:
    """Factory for the registry: ``config`` is a ``GraderConfig``."""
    return LiveCodeBenchGrader(LcbExecConfig.from_options(dict(config.options or {}), config.workers))


def _register() -> None:
    from .base import register_grader

    register_grader("lcb_exec", make_lcb_grader)


_register()
