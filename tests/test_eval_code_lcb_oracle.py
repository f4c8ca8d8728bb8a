"""Oracle: ``lcb_exec`` against the official LiveCodeBench runner (``lcb_runner`` at ``code_lcb.LCB_REVISION``),
verdict by verdict.

* Committed cases (always run): one program per way of reaching stdin, with the per-test results the
  official runner gives, worked out from its code (``testing_util.py``: ``call_method``'s patches and
  ``MockStdinWithBuffer``; ``compute_code_generation_metrics.py``: the int-string limit, the global
  timeout and the fallback after it). Each comment says why.
* With the runner (found by ``steertest_lcb_answers.locate_official_runner``: ``$LCB_RUNNER_DIR``, the user cache
  ``$XDG_CACHE_HOME/openrlhf-steer/refs/LiveCodeBench-<sha>``, filled from a local mirror or GitHub; run by
  ``$LCB_RUNNER_PYTHON`` or this interpreter, which need numpy, pandas and tqdm): the committed cases go
  through the official ``codegen_metrics`` too, and (slow) 140 generated answers go through both graders.
  Skipped, with the reason, when the runner cannot be had.
"""

import json

import pytest
from steertest_lcb_answers import (
    generate_answers,
    locate_official_runner,
    normalise,
    probe_official,
    run_official,
)

from openrlhf_steer_eval.data_code import load_livecodebench
from openrlhf_steer_eval.graders.base import GraderConfig
from openrlhf_steer_eval.graders.code_lcb import LcbExecConfig, extract_code, run_program

TIMEOUT = 1  # seconds per test for the committed cases (the official runner takes whole seconds)

GAME = "A. Game with Integers"  # input "6\n1\n3\n5\n100\n999\n1000\n", output First/Second per number
SORT = "A. Short Sort"  # input "6\nabc\nacb\nbac\nbca\ncab\ncba\n", output YES YES YES NO NO YES
CHOCO = "buy-two-chocolates"  # functional, 2 tests
GAME_BODY = "for n in nums:\n    print('Second' if int(n) % 3 == 0 else 'First')\n"
SORT_BODY = "for _ in range(t):\n    s = input()\n    print('YES' if s in ('abc', 'acb', 'bac', 'cba') else 'NO')\n"

# (problem, program, official per-test results, why)
CASES = [
    (GAME, "t = int(input())\nnums = [input() for _ in range(t)]\n" + GAME_BODY, [True], "input(): mock readline"),
    (
        SORT,
        "import sys\ninput = sys.stdin.readline\nt = int(input())\n" + SORT_BODY,
        [-2],
        "the assignment runs inside wrapped_function, so it binds the mock's readline, which keeps the newline: "
        "s == 'abc\\n' matches nothing, every line is NO",
    ),
    (
        SORT,
        "from sys import stdin\ninput = stdin.readline\nt = int(input())\n" + SORT_BODY,
        [True],
        "the import stays at module level and binds the real sys.stdin, whose readline call_method patched with "
        "next() over input.split('\\n'): lines without newline",
    ),
    (
        SORT,
        "input = stdin.readline\nt = int(input())\n" + SORT_BODY,
        [True],
        "`stdin` comes from the prelude's `from sys import *`: the real, patched sys.stdin, as above",
    ),
    (
        SORT,
        "from sys import stdin\ninput = stdin.readline\nfor _ in range(100):\n    input()\n",
        [-4],
        "the patched readline is next() on an iterator: StopIteration past the end, a runtime error",
    ),
    (
        SORT,
        "import sys\nlines = sys.stdin.readlines()\nt = int(lines[0])\nfor s in lines[1:t + 1]:\n"
        "    print('YES' if s in ('abc', 'acb', 'bac', 'cba') else 'NO')\n",
        [True],
        "the mock's readlines is input.split('\\n'): no newlines (plain Python keeps them and would fail)",
    ),
    (
        GAME,
        "import sys\nt = int(sys.stdin.read().split()[0])\nnums = sys.stdin.read().split()[1:t + 1]\n" + GAME_BODY,
        [True],
        "the mock's read returns the whole input every time (plain Python gives '' the second time)",
    ),
    (
        GAME,
        "import sys\nnums = sys.stdin.buffer.read().split()[1:]\n" + GAME_BODY,
        [True],
        "the mock has .buffer (since 16de2a1): read() is the whole input as bytes; int(b'3') works",
    ),
    (
        GAME,
        "import sys\nt = int(sys.stdin.buffer.readline())\nnums = [sys.stdin.buffer.readline() for _ in range(t)]\n"
        + GAME_BODY,
        [-2],
        "the mock buffer's readline always returns the first line ('6'): six 'Second', the first expected is First",
    ),
    (
        GAME,
        "import sys\nnums = sys.stdin.buffer.readlines()[1:]\n" + GAME_BODY,
        [-4],
        "the mock buffer has no readlines: AttributeError",
    ),
    (
        GAME,
        "from sys import stdin\nnums = stdin.buffer.read().split()[1:]\n" + GAME_BODY,
        [-2],
        "the real sys.stdin's buffer is not patched: the worker's stdin is /dev/null, b'', nothing printed",
    ),
    (
        GAME,
        "import sys\nnums = [line for line in sys.stdin][1:]\n" + GAME_BODY,
        [-4],
        "the mock class defines no __iter__: TypeError, not iterable (plain Python iterates)",
    ),
    (
        GAME,
        "from sys import stdin\nnums = [line for line in stdin][1:]\n" + GAME_BODY,
        [-2],
        "iterating the real sys.stdin reads /dev/null: no lines, nothing printed",
    ),
    (
        GAME,
        "nums = open(0).read().split()[1:]\n" + GAME_BODY,
        [-2],
        "the prelude's `from builtins import *` bound the real open before builtins.open was mocked: fd 0 is empty",
    ),
    (
        GAME,
        "import sys\nwhile True:\n    line = sys.stdin.readline()\n    if not line:\n        break\n    print(line)\n",
        [-2],
        "the mock's readline gives '' at the end (the loop ends), but the echo is not the answer",
    ),
    (
        GAME,
        "import sys\nt = int(sys.stdin.readline())\nnums = [sys.stdin.readline() for _ in range(t)]\n" + GAME_BODY,
        [True],
        "int() ignores the newline the mock's readline keeps",
    ),
    (GAME, "while True:\n    print(input())\n", [-4], "input() at the end of the mock's StringIO: EOFError"),
    (
        GAME,
        "def main():\n    t = int(input())\n    nums = [input() for _ in range(t)]\n    "
        + GAME_BODY.replace("\n", "\n    ").rstrip()
        + "\nif __name__ == '__main__':\n    main()\n",
        [True],
        "clean_if_name unwraps the final main guard",
    ),
    (
        GAME,
        "from sys import stdout\nt = int(input())\nfor _ in range(t):\n    stdout.write('First\\n')\n",
        [-2],
        "stdout bound at module level is the real one, not the capture: nothing captured",
    ),
    (
        GAME,
        "_ = str(10 ** 20000)\nt = int(input())\nnums = [input() for _ in range(t)]\n" + GAME_BODY,
        [True],
        "the metrics module raised the int-string limit to 50000 digits before forking",
    ),
    (GAME, "print(len(str(10 ** 60000)))\n", [-4], "past 50000 digits str() raises ValueError"),
    (GAME, "while True:\n    pass\n", [-3], "the alarm's TimeoutException: time limit"),
    (
        GAME,
        "try:\n    while True:\n        pass\nexcept Exception:\n    pass\nt = int(input())\n"
        "nums = [input() for _ in range(t)]\n" + GAME_BODY,
        [-2],
        "TimeoutException is an Exception: caught, the program goes on, but the handler printed "
        "'timeout occured: alarm went off' into the captured output: 7 lines for 6",
    ),
    (GAME, "print('First')\nexit()\nprint('x')\n", [-2], "SystemExit is swallowed; the output is just short"),
    (GAME, "quit()\n", [-4], "reliability_guard set builtins.quit to None: TypeError"),
    (GAME, "import os\nprint(os.getcwd())\n", [-4], "reliability_guard set os.getcwd to None"),
    (GAME, "import resource\n", [-4], "sys.modules['resource'] is None: the import fails at compile (run_test's -4)"),
    (
        GAME,
        "class Solution:\n    pass\nprint(1)\n",
        [-4],
        "'class Solution' in stdin code: Solution() looked up on the module",
    ),
    (GAME, "def f(:\n", [-4], "compile error"),
    (GAME, "", [-4], "empty extraction: the empty wrapped_function does not compile"),
    (CHOCO, "", [-4], "empty extraction, functional: no method, run_test's -4"),
    (
        CHOCO,
        "class Solution:\n    def buyChoco(self, prices, money):\n        exit()\n",
        [-2],
        "SystemExit escapes grade_call_based and ends the worker; check_correctness then fails on the missing "
        "metadata and evaluate_generations_by_problem keeps its initial [-2]",
    ),
    (
        CHOCO,
        "class Solution:\n    def buyChoco(self, prices, money):\n        return money\n",
        [False],
        "a functional wrong answer records the comparison's value, False",
    ),
    (
        CHOCO,
        "class Solution:\n    def buyChoco(self, prices, money):\n        while True:\n            pass\n",
        [-3],
        "functional time limit",
    ),
]


@pytest.fixture(scope="module")
def problems(data_dir):
    rows = load_livecodebench(
        str(data_dir / "livecodebench" / "deepcoder_public_tests_sample20.jsonl"), start_date="none", end_date="none"
    )
    return {r["question_id"]: r for r in rows}


@pytest.fixture(scope="module")
def official():
    checkout, why = locate_official_runner()
    if checkout is None:
        pytest.skip(f"the official LiveCodeBench runner is not available: {why}")
    problem = probe_official(checkout)
    if problem:
        pytest.skip(f"the official runner at {checkout} does not import ({problem}); set LCB_RUNNER_PYTHON")
    return checkout


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{i}" for i in range(len(CASES))])
def test_committed_case_gets_the_official_results(problems, index):
    title, code, expected, why = CASES[index]
    problem = problems[title]
    detail = run_program(code, problem["tests"], problem["fn_name"], LcbExecConfig(test_timeout=TIMEOUT))
    assert detail["results"] == expected, (why, detail)


def test_committed_cases_against_the_official_runner(problems, official, tmp_path):
    chosen = [problems[title] for title, *_ in CASES]
    responses = [f"```python\n{code}\n```" for _, code, _, _ in CASES]
    results, _, _ = run_official(official, chosen, responses, TIMEOUT, 2, tmp_path)
    wrong = [(i, CASES[i][3], results[i]) for i in range(len(CASES)) if normalise(results[i]) != normalise(CASES[i][2])]
    assert not wrong, wrong


def test_generated_set_covers_the_cases_named_in_the_issue():
    answers = generate_answers()
    labels = [a["label"] for a in answers]
    assert len(answers) == 140 and sum(label.startswith("tle:") for label in labels) == 17
    idioms = {label.split(":", 1)[1] for label in labels if label.startswith("idiom:")}
    assert {"readline_raw", "from_stdin_readline", "buffer_read", "iterate", "from_stdin_iterate", "open0"} <= idioms


@pytest.mark.slow
@pytest.mark.oracle
def test_generated_answers_agree_with_the_official_runner(problems, official, tmp_path):
    from openrlhf_steer_eval.benchmarks import make_grader

    answers = generate_answers()
    chosen = [problems[a["question_id"]] for a in answers]
    responses = [a["response"] for a in answers]
    theirs, their_codes, _ = run_official(official, chosen, responses, 2, 2, tmp_path)
    grader = make_grader("lcb_exec", GraderConfig(workers=2, options={"test_timeout": "2"}))
    verdicts = [vs[0] for vs in grader.grade(chosen, [[r] for r in responses])]
    assert [extract_code(r) for r in responses] == their_codes
    rows = []
    for answer, verdict, official_results in zip(answers, verdicts, theirs):
        ours = verdict.detail["results"]
        official_pass = all(r is True for r in official_results) and len(official_results) > 0
        rows.append((answer["label"], answer["question_id"], normalise(ours), json.dumps(official_results)))
        rows[-1] += (verdict.correct == official_pass and normalise(ours) == normalise(official_results),)
    agree = sum(r[-1] for r in rows)
    print(f"\nlcb_exec vs official lcb_runner: {agree}/{len(rows)} agree")
    assert agree == len(rows), [r for r in rows if not r[-1]]
