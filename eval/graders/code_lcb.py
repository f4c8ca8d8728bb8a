"""LiveCodeBench code-generation grader (``lcb_exec``), following the official runner's semantics.

Semantics (LiveCodeBench ``lcb_runner/evaluation/testing_util.py`` and ``utils/extraction_utils.py``):

* code extraction: the lines between the *last two* lines that contain a triple backtick; no fence
  pair means no code (scored as failed). ``code_style="base"`` takes the whole response instead.
* stdin problems: an ``if __name__ == "__main__":`` block at the end is unwrapped, every non-import
  statement is wrapped in one function behind the standard star-import prelude, and each test calls
  it with ``sys.stdin`` (``read``/``readline``/``readlines``) and ``open`` serving the test input and
  ``sys.stdout`` captured; ``SystemExit`` is ignored. Outputs match when, after ``strip()`` and
  splitting into lines (each stripped), both have the same number of lines and every line is equal
  either exactly or element-wise as ``Decimal`` numbers.
* functional (LeetCode) problems: the prelude is prepended, ``Solution()`` is instantiated when the
  code defines it, ``method(*args)`` is called with one JSON value per input line, a tuple result
  becomes a list, and it must ``==`` the JSON-decoded output.
* per-test time limit (official default 6 s), first failure stops the problem; result codes
  True (pass), -2 wrong answer (False for a functional wrong answer, as upstream records it),
  -3 time limit, -4 runtime/compile error, -1 the whole run died (official: global timeout); a
  response passes when every test passed.

Differences, all on the safe side: each (problem, response) runs in our sandbox (separate
interpreter, memory/CPU limits, no network, guarded file system) instead of a forked process with
``reliability_guard``; time limits are float seconds (``setitimer``) instead of whole seconds.

The ``run_tests_in_child`` function is the sandbox driver; it runs in the child and must only use the
standard library plus ``sandbox`` helpers.
"""

from __future__ import annotations

import ast
import builtins
import io
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import sandbox

# Result codes of the official runner.
PASSED = True
WRONG_ANSWER = -2
TIME_LIMIT = -3
RUNTIME_ERROR = -4
RUN_DIED = -1

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
class _LcbStdin(io.StringIO):
    """sys.stdin as the official runner mocks it: ``readline`` yields lines without their newline
    (and raises StopIteration when exhausted), ``read``/``readlines`` return the whole input."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._text = text
        self._lines = iter(text.split("\n"))

    def readline(self, *args):  # noqa: D401
        return next(self._lines)

    def readlines(self, *args):
        return self._text.split("\n")

    def read(self, *args):
        return self._text


def _failure(results: list, code: int, message: str, **extra) -> Dict[str, Any]:
    results.append(code)
    return {"results": results, "error_code": code, "error_message": message, **extra}


def _compile_module(source: str, timeout: float) -> dict:
    namespace: dict = {"__name__": "tmp_sol", "__builtins__": builtins}
    with sandbox.time_limit(timeout):
        exec(compile(source, "<solution>", "exec"), namespace)
    return namespace


def _run_stdin_tests(code: str, tests: Sequence[dict], timeout: float, max_chars: int) -> Dict[str, Any]:
    source = wrap_stdin_program(unwrap_main_guard(code))
    results: list = []
    try:
        namespace = _compile_module(source, timeout)
        # upstream's compile step instantiates a module-level Solution class whenever the text
        # mentions one, then looks for wrapped_function on it
        owner = namespace["Solution"]() if "class Solution" in source else None
        method = getattr(owner, WRAPPED_FUNCTION, None) if owner is not None else namespace.get(WRAPPED_FUNCTION)
        if method is None:
            raise NameError("no statements to run (wrapped_function missing)")
    except BaseException as exc:
        return _failure(results, RUNTIME_ERROR, f"Error during testing: {sandbox.exception_summary(exc)}")
    real_open = builtins.open
    for test in tests:
        stdin_text = test["input"] if isinstance(test["input"], str) else "\n".join(test["input"])
        captured = sandbox.CappedStringIO(max_chars)
        saved_streams = (sys.stdin, sys.stdout)
        sys.stdin, sys.stdout = _LcbStdin(stdin_text), captured
        builtins.open = lambda *a, **k: io.StringIO(stdin_text)  # the official runner mocks open() too
        try:
            with sandbox.time_limit(timeout):
                try:
                    method()
                except SystemExit:
                    pass
        except sandbox.TestTimeout as exc:
            return _failure(
                results, TIME_LIMIT, "Time Limit Exceeded", error=str(exc), inputs=sandbox.short_repr(stdin_text)
            )
        except BaseException as exc:
            return _failure(
                results,
                RUNTIME_ERROR,
                "Runtime Error",
                error=sandbox.exception_summary(exc),
                inputs=sandbox.short_repr(stdin_text),
            )
        finally:
            builtins.open = real_open
            sys.stdin, sys.stdout = saved_streams
        ok, reason = stdout_matches(captured.getvalue(), test["output"])
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
    source = PRELUDE + "\n\n" + code
    results: list = []
    try:
        namespace = _compile_module(source, timeout)
        target = namespace["Solution"]() if "class Solution" in code else None
        method = getattr(target, fn_name, None) if target is not None else namespace.get(fn_name)
        if method is None:
            raise AttributeError(f"the solution defines no {fn_name!r}")
    except BaseException as exc:
        return _failure(results, RUNTIME_ERROR, f"Error during testing: {sandbox.exception_summary(exc)}")
    for test in tests:
        try:
            args = [json.loads(line) for line in test["input"].split("\n")]
            expected = json.loads(test["output"])
        except (ValueError, AttributeError) as exc:
            return _failure(results, RUNTIME_ERROR, f"bad test case: {exc}")
        try:
            with sandbox.time_limit(timeout):
                prediction = method(*args)
        except sandbox.TestTimeout as exc:
            return _failure(results, TIME_LIMIT, "Time Limit Exceeded", error=str(exc), inputs=sandbox.short_repr(args))
        except BaseException as exc:
            return _failure(
                results,
                RUNTIME_ERROR,
                "Runtime Error",
                error=sandbox.exception_summary(exc),
                inputs=sandbox.short_repr(args),
            )
        if isinstance(prediction, tuple):  # ground truth sequences are lists
            prediction = list(prediction)
        try:
            same = bool(prediction == expected)
        except BaseException:  # a user object whose __eq__ raises
            same = False
        if not same:
            # the official runner records False (not -2) for a functional wrong answer; error_code is -2
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
        results.append(PASSED)
    return {"results": results}


def run_tests_in_child(payload: Dict[str, Any]) -> Dict[str, Any]:
    """Sandbox driver: run one program against a problem's tests (official semantics)."""
    builtins.quit = None  # as the official reliability_guard; exit() stays usable
    start = time.perf_counter()
    if payload.get("fn_name"):
        out = _run_functional_tests(payload["code"], payload["tests"], payload["fn_name"], payload["timeout"])
    else:
        out = _run_stdin_tests(payload["code"], payload["tests"], payload["timeout"], payload["max_output_chars"])
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
        return {"passed": False, "results": [], "error_code": RUNTIME_ERROR, "error_message": "no code extracted"}
    limits = sandbox.SandboxLimits(
        wall_timeout=(config.test_timeout + 1) * len(tests) + 5,  # the official global timeout
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
        # The whole run died (limit, crash): every test counts as failed, like the official -1.
        detail = {
            "results": [RUN_DIED] * len(tests),
            "error_code": RUN_DIED,
            "error_message": f"sandbox {run.status}: {run.error}",
        }
    results = detail.get("results", [])
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
