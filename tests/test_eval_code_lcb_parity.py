"""Differential test: our LiveCodeBench executor against the official runner's ``testing_util.run_test``
(as packaged by NVIDIA on PyPI, ``nvidia-livecodebench==26.3``), on real problems and hand-written
solutions covering passes, wrong answers, runtime/compile errors, time limits and the stdin quirks.
The per-test result lists must be identical."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from openrlhf_steer_eval.data_code import load_livecodebench
from openrlhf_steer_eval.graders.code_lcb import LcbExecConfig, run_program

_SPEC = importlib.util.find_spec("livecodebench")
OFFICIAL = Path(list(_SPEC.submodule_search_locations)[0]) / "evaluation" / "testing_util.py" if _SPEC else None
pytestmark = pytest.mark.skipif(
    OFFICIAL is None or not OFFICIAL.is_file(), reason="nvidia-livecodebench (official runner code) is not installed"
)

# Runs the official run_test in its own interpreter (it disables os functions in-process).
_RUNNER = r"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("official_testing_util", sys.argv[1])
official = importlib.util.module_from_spec(spec)
spec.loader.exec_module(official)
with open(sys.argv[2]) as fh:
    job = json.load(fh)
sample = {"input_output": json.dumps({"inputs": [t["input"] for t in job["tests"]],
                                      "outputs": [t["output"] for t in job["tests"]],
                                      "fn_name": job["fn_name"]})}
results, _ = official.run_test(sample, test=job["code"], timeout=job["timeout"])
results = [r.item() if hasattr(r, "item") else r for r in results]
with open(sys.argv[3], "w") as fh:
    fh.write(json.dumps(results))
"""

TIMEOUT = 1


def official_results(tmp_path, code, problem):
    job, out = tmp_path / "job.json", tmp_path / "out.json"
    job.write_text(
        json.dumps({"code": code, "tests": problem["tests"], "fn_name": problem["fn_name"], "timeout": TIMEOUT})
    )
    subprocess.run(
        [sys.executable, "-c", _RUNNER, str(OFFICIAL), str(job), str(out)],
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    return json.loads(out.read_text())


GAME = (
    "import sys\ndata = sys.stdin.read().split()\nfor n in data[1:]:\n    print('Second' if int(n) % 3 == 0 else "
    "'First')\n"
)
GOOD_KID = (
    "t = int(input())\nfor _ in range(t):\n    n = int(input())\n    a = sorted(map(int, input().split()))\n"
    "    a[0] += 1\n    p = 1\n    for x in a:\n        p *= x\n    print(p)\n"
)
CASES = [
    ("A. Game with Integers", GAME),
    ("A. Game with Integers", GAME.replace("== 0", "== 1")),  # wrong answer
    ("A. Game with Integers", "data = open(0).read().split()\nprint(len(data))\n"),  # open(0): real, empty stdin
    ("A. Game with Integers", "import sys\ndata = sys.stdin.buffer.read().split()\nprint(data[0])\n"),  # no .buffer
    (
        "A. Game with Integers",
        "import sys\ninput = sys.stdin.readline\nt = int(input())\nfor _ in range(t):\n"
        "    print('Second' if int(input()) % 3 == 0 else 'First')\n",
    ),
    (
        "A. Game with Integers",
        "def main():\n    " + GAME.replace("\n", "\n    ").rstrip() + "\nif __name__ == '__main__':\n    main()\n",
    ),
    ("A. Game with Integers", GAME + "exit(0)\n"),
    ("A. Game with Integers", "import sys\nimport math\n"),  # imports only: empty wrapped function
    ("A. Game with Integers", "class Solution:\n    pass\n" + GAME),  # stdin code that defines Solution
    ("A. Game with Integers", "x = input()\nprint(x)\nprint(input())\nprint(input())\n"),  # too few lines read
    ("A. Game with Integers", "while True:\n    print(input())\n"),  # reads past the end of the input
    ("B. Good Kid", GOOD_KID),
    ("B. Good Kid", GOOD_KID.replace("print(p)", "print(float(p))")),  # 16.0 == 16 as Decimal
    ("B. Good Kid", GOOD_KID.replace("print(p)", "print(p, '')")),  # trailing space is stripped
    ("B. Good Kid", "x = int(input())\nprint(1 // (x - x))\n"),  # runtime error
    ("B. Good Kid", "while True:\n    pass\n"),  # time limit
    ("B. Good Kid", "def f(:\n"),  # syntax error
    (
        "buy-two-chocolates",
        "class Solution:\n    def buyChoco(self, prices, money):\n        a, b = sorted(prices)[:2]\n"
        "        return money - a - b if a + b <= money else money\n",
    ),
    ("buy-two-chocolates", "class Solution:\n    def buyChoco(self, prices, money):\n        return money\n"),
    ("buy-two-chocolates", "class Solution:\n    def buy(self, prices, money):\n        return 0\n"),  # no method
    (
        "find-the-distinct-difference-array",
        "class Solution:\n    def distinctDifferenceArray(self, nums):\n        return tuple(len(set(nums[:i + 1])) - "
        "len(set(nums[i + 1:])) for i in range(len(nums)))\n",
    ),  # tuple -> list
    (
        "number-of-senior-citizens",
        "class Solution:\n    def countSeniors(self, details):\n        raise ValueError('nope')\n",
    ),
]


@pytest.fixture(scope="module")
def problems(data_dir):
    rows = load_livecodebench(
        str(data_dir / "livecodebench" / "deepcoder_public_tests_sample20.jsonl"), start_date="none", end_date="none"
    )
    return {r["question_id"]: r for r in rows}


@pytest.mark.parametrize("index", range(len(CASES)))
def test_same_results_as_the_official_runner(tmp_path, problems, index):
    title, code = CASES[index]
    problem = problems[title]
    ours = run_program(code, problem["tests"], problem["fn_name"], LcbExecConfig(test_timeout=TIMEOUT, memory_mb=2048))
    assert ours["results"] == official_results(tmp_path, code, problem), ours
