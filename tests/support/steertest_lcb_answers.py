"""A generated set of model-style answers to the LiveCodeBench sample problems, and a bridge that grades
them with the official runner (``lcb_runner`` at ``code_lcb.LCB_REVISION``) in its own interpreter.

Used by tests/test_eval_code_lcb_oracle.py (verdict-by-verdict comparison) and
benchmarks/lcb_grader_timing.py (timing). The answers cover every way a program reaches stdin, wrong
answers, time limits (17), crashes, the int-string limit and empty extractions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from openrlhf_steer_eval.graders.code_lcb import LCB_REVISION

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = "livecodebench/deepcoder_public_tests_sample20.jsonl"

# ------------------------------------------------------------------------------------ stdin problems
# Each solution reads through I() (an int line), L() (a line of ints) and S() (a string line, taken as
# the reader gives it: with its newline when the reader keeps one), and prints its answers.
STDIN_SOLUTIONS: Dict[str, str] = {
    "A. Short Sort": """
for _ in range(I()):
    s = S()
    print('YES' if sum(a != b for a, b in zip(s, 'abc')) != 3 else 'NO')
""",
    "B. Good Kid": """
for _ in range(I()):
    I()
    a = sorted(L())
    a[0] += 1
    p = 1
    for x in a:
        p *= x
    print(p)
""",
    "D. 1D Eraser": """
for _ in range(I()):
    n, k = L()
    s = S()
    i = ops = 0
    while i < n:
        if s[i] == 'B':
            ops += 1
            i += k
        else:
            i += 1
    print(ops)
""",
    "B. Chemistry": """
from collections import Counter
for _ in range(I()):
    n, k = L()
    s = S()
    odd = sum(c % 2 for c in Counter(s).values())
    print('YES' if odd <= k + 1 else 'NO')
""",
    "C. Raspberries": """
for _ in range(I()):
    n, k = L()
    a = L()
    best = min((k - x % k) % k for x in a)
    if k == 4:
        best = min(best, max(0, 2 - sum(x % 2 == 0 for x in a)))
    print(best)
""",
    "A. Game with Integers": """
for _ in range(I()):
    print('Second' if I() % 3 == 0 else 'First')
""",
    "B. 250 Thousand Tons of TNT": """
for _ in range(I()):
    n = I()
    a = L()
    best = 0
    for k in range(1, n):
        if n % k == 0:
            sums = [sum(a[i:i + k]) for i in range(0, n, k)]
            best = max(best, max(sums) - min(sums))
    print(best)
""",
    "C. Yarik and Array": """
for _ in range(I()):
    I()
    a = L()
    best = cur = a[0]
    for prev, x in zip(a, a[1:]):
        cur = x if (prev - x) % 2 == 0 or cur < 0 else cur + x
        best = max(best, cur)
    print(best)
""",
    "D. Yarik and Musical Notes": """
from collections import Counter
for _ in range(I()):
    I()
    c = Counter(L())
    print(sum(v * (v - 1) // 2 for v in c.values()) + c[1] * c[2])
""",
    "Overall Winner": """
I()
s = S()
t, a = s.count('T'), s.count('A')
print('T' if t > a else 'A' if a > t else ('A' if s[-1] == 'T' else 'T'))
""",
}

_NEXT = "rd = lambda: next(lines)\n"
_HELPERS = "I = lambda: int(rd())\nL = lambda: list(map(int, rd().split()))\nS = lambda: rd()\n"

# How the program reaches stdin: code that defines rd() (the next line) before the solution.
IDIOMS: Dict[str, str] = {
    "input": "rd = input\n",
    "readline_raw": "import sys\ninput = sys.stdin.readline\nrd = input\n",
    "readline_strip": "import sys\nrd = lambda: sys.stdin.readline().strip()\n",
    "from_stdin_readline": "from sys import stdin\ninput = stdin.readline\nrd = input\n",
    "prelude_stdin_readline": "rd = stdin.readline\n",  # `stdin` from the runner's `from sys import *`
    "read_split": "import sys\nlines = iter(sys.stdin.read().split('\\n'))\n" + _NEXT,
    "readlines": "import sys\nlines = iter(sys.stdin.readlines())\n" + _NEXT,
    "buffer_read": "import sys\nlines = iter(sys.stdin.buffer.read().decode().split('\\n'))\n" + _NEXT,
    "buffer_readline": "import sys\nrd = lambda: sys.stdin.buffer.readline().decode()\n",
    "iterate": "import sys\nlines = iter([x.rstrip('\\n') for x in sys.stdin])\n" + _NEXT,
    "from_stdin_iterate": "from sys import stdin\nlines = iter([x.rstrip('\\n') for x in stdin])\n" + _NEXT,
    "open0": "lines = iter(open(0).read().split('\\n'))\n" + _NEXT,
    "from_stdin_read": "from sys import stdin\nlines = iter(stdin.read().split('\\n'))\n" + _NEXT,
    "from_stdin_buffer": "from sys import stdin\nlines = iter(stdin.buffer.read().decode().split('\\n'))\n" + _NEXT,
    "readline_loop": "import sys\nbuf = []\nwhile True:\n    x = sys.stdin.readline()\n    if not x:\n        break\n"
    "    buf.append(x.rstrip('\\n'))\nlines = iter(buf)\n" + _NEXT,
    "input_until_eof": "buf = []\nwhile True:\n    try:\n        buf.append(input())\n"
    "    except EOFError:\n        break\nlines = iter(buf)\n" + _NEXT,
}

# ------------------------------------------------------------------------------------ functional problems
FUNCTIONAL_SOLUTIONS: Dict[str, Tuple[str, str]] = {
    # title: (method header, body); wrong answers change the body
    "number-of-senior-citizens": ("countSeniors(self, details)", "return sum(int(d[11:13]) > 60 for d in details)"),
    "sum-in-a-matrix": ("matrixSum(self, nums)", "return sum(max(c) for c in zip(*[sorted(r) for r in nums]))"),
    "maximum-or": (
        "maximumOr(self, nums, k)",
        "pre = [0]\n        for x in nums:\n            pre.append(pre[-1] | x)\n        suf = 0\n"
        "        best = 0\n        for i in range(len(nums) - 1, -1, -1):\n"
        "            best = max(best, pre[i] | (nums[i] << k) | suf)\n            suf |= nums[i]\n        return best",
    ),
    "maximum-strength-of-a-group": (
        "maxStrength(self, nums)",
        "from itertools import combinations\n        best = max(nums)\n        for r in range(1, len(nums) + 1):\n"
        "            for c in combinations(nums, r):\n                p = 1\n                for x in c:\n"
        "                    p *= x\n                best = max(best, p)\n        return best",
    ),
    "extra-characters-in-a-string": (
        "minExtraChar(self, s, dictionary)",
        "words = set(dictionary)\n        dp = [0] * (len(s) + 1)\n        for i in range(1, len(s) + 1):\n"
        "            dp[i] = dp[i - 1] + 1\n            for j in range(i):\n"
        "                if s[j:i] in words:\n                    dp[i] = min(dp[i], dp[j])\n        return dp[-1]",
    ),
    "buy-two-chocolates": (
        "buyChoco(self, prices, money)",
        "a, b = sorted(prices)[:2]\n        return money - a - b if a + b <= money else money",
    ),
    "count-of-integers": (
        "count(self, num1, num2, min_sum, max_sum)",
        "from functools import lru_cache\n        M = 10**9 + 7\n        def upto(x):\n"
        "            @lru_cache(None)\n            def go(i, tight, s):\n                if s > max_sum:\n"
        "                    return 0\n                if i == len(x):\n                    return int(s >= min_sum)\n"
        "                top = int(x[i]) if tight else 9\n"
        "                return sum(go(i + 1, tight and d == top, s + d) for d in range(top + 1)) % M\n"
        "            return go(0, True, 0)\n"
        "        low = num1\n        ok = min_sum <= sum(map(int, low)) <= max_sum\n"
        "        return (upto(num2) - upto(low) + ok) % M",
    ),
    "find-the-distinct-difference-array": (
        "distinctDifferenceArray(self, nums)",
        "return [len(set(nums[:i + 1])) - len(set(nums[i + 1:])) for i in range(len(nums))]",
    ),
    "number-of-adjacent-elements-with-the-same-color": (
        "colorTheArray(self, n, queries)",
        "c = [0] * n\n        out = []\n        same = 0\n        for i, v in queries:\n"
        "            for j in (i - 1, i + 1):\n                if 0 <= j < n and c[j] and c[j] == c[i]:\n"
        "                    same -= 1\n            c[i] = v\n            for j in (i - 1, i + 1):\n"
        "                if 0 <= j < n and c[j] and c[j] == c[i]:\n                    same += 1\n"
        "            out.append(same)\n        return out",
    ),
    "power-of-heroes": (
        "sumOfPower(self, nums)",
        "M = 10**9 + 7\n        nums.sort()\n        total = acc = 0\n        for x in nums:\n"
        "            total = (total + x * x % M * (x + acc)) % M\n            acc = (acc * 2 + x) % M\n"
        "        return total",
    ),
}


def stdin_program(title: str, idiom: str, prefix: str = "", suffix: str = "") -> str:
    return IDIOMS[idiom] + _HELPERS + prefix + STDIN_SOLUTIONS[title].lstrip("\n") + suffix


def functional_program(title: str, body: Optional[str] = None) -> str:
    header, good = FUNCTIONAL_SOLUTIONS[title]
    return f"class Solution:\n    def {header}:\n        {body if body is not None else good}\n"


def fenced(code: str) -> str:
    return f"Here is my solution.\n```python\n{code}```\n"


def generate_answers() -> List[Dict[str, str]]:
    """140 answers as {"question_id", "label", "response"} (responses hold the code in a fence); 17 of
    them are time-limit answers. Deterministic: the idioms rotate over the stdin problems."""
    stdin_titles = sorted(STDIN_SOLUTIONS)
    idiom_names = list(IDIOMS)
    answers: List[Dict[str, str]] = []

    def add(title: str, label: str, code: str, raw: Optional[str] = None) -> None:
        answers.append({"question_id": title, "label": label, "response": raw if raw is not None else fenced(code)})

    # 80: every stdin problem through 8 idioms (each idiom on 5 problems, string-reading ones among them)
    for p, title in enumerate(stdin_titles):
        for j in range(8):
            idiom = idiom_names[(p + 2 * j) % len(idiom_names)]  # odd p: the string-reading problems
            add(title, f"idiom:{idiom}", stdin_program(title, idiom))
    # 10 wrong answers: one extra output line
    for title in stdin_titles:
        add(title, "wrong:extra_line", stdin_program(title, "input", suffix="print(0)\n"))
    # 10 stdin time-limit answers
    loops = [
        ("tle:loop_first", "while True:\n    pass\n", ""),
        ("tle:loop_after_answer", "", "while True:\n    pass\n"),
        ("tle:sleep", "import time\ntime.sleep(100)\n", ""),
        ("tle:caught_then_answer", "try:\n    while True:\n        pass\nexcept Exception:\n    pass\n", ""),
        ("tle:slow_search", "x = 0\nfor i in range(10**10):\n    x ^= i\n", ""),
    ]
    for t, title in enumerate(stdin_titles):
        label, prefix, suffix = loops[t % len(loops)]
        add(title, label, stdin_program(title, "input", prefix=prefix, suffix=suffix))
    # 7 functional time-limit answers (one of them swallows the alarm and loops on: the whole run overruns)
    functional_titles = sorted(FUNCTIONAL_SOLUTIONS)
    for title in functional_titles[:6]:
        add(title, "tle:functional_loop", functional_program(title, "while True:\n            pass"))
    add(
        functional_titles[6],
        "tle:caught_forever",
        functional_program(
            functional_titles[6],
            "while True:\n            try:\n                while True:\n                    pass\n"
            "            except Exception:\n                pass",
        ),
    )
    # 5 crashes and exits
    g = stdin_titles
    add(g[0], "crash:zero_division", stdin_program(g[0], "input", prefix="print(1 // 0)\n"))
    add(g[1], "crash:index", stdin_program(g[1], "input", prefix="[][1]\n"))
    add(g[2], "exit:before_output", stdin_program(g[2], "input", prefix="exit()\n"))
    add(g[3], "exit:after_output", stdin_program(g[3], "input", suffix="import sys\nsys.exit(3)\n"))
    add(g[4], "crash:recursion", stdin_program(g[4], "input", prefix="def f(n):\n    return f(n + 1)\nf(0)\n"))
    # 3 around the int-string limit (4300 by default, 50000 in the official workers)
    add(g[5], "int_str:20000_digits", stdin_program(g[5], "input", prefix="_big = len(str(10**20000))\n"))
    add(g[6], "int_str:parse_10000", stdin_program(g[6], "input", prefix="_big = int('7' * 10000)\n"))
    add(g[7], "int_str:60000_digits", stdin_program(g[7], "input", prefix="_big = str(10**60000)\n"))
    # 2 empty extractions
    add(g[8], "empty:no_fence", "", raw="I could not solve this problem.")
    add(g[9], "empty:comment_only", "# nothing to do\n")
    # 23 functional: right, wrong, and three run endings
    for title in functional_titles:
        add(title, "functional:right", functional_program(title))
        add(title, "functional:wrong", functional_program(title, "return 0"))
    add(functional_titles[0], "functional:exit_in_method", functional_program(functional_titles[0], "exit()"))
    add(functional_titles[1], "functional:raises", functional_program(functional_titles[1], "raise ValueError('no')"))
    distinct = "find-the-distinct-difference-array"
    add(
        distinct,
        "functional:tuple",
        functional_program(distinct, "return tuple(" + FUNCTIONAL_SOLUTIONS[distinct][1][7:] + ")"),
    )
    return answers


# ------------------------------------------------------------------------------------ the official runner
_OFFICIAL_DRIVER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from lcb_runner.evaluation.compute_code_generation_metrics import codegen_metrics
from lcb_runner.utils.extraction_utils import extract_code
from lcb_runner.lm_styles import LMStyle
job = json.load(open(sys.argv[2]))
samples = [{"input_output": json.dumps(s)} for s in job["samples"]]
start = time.perf_counter()
codes = [extract_code(r, LMStyle.OpenAIChat) for r in job["responses"]]
_, results, _ = codegen_metrics(samples, [[c] for c in codes], k_list=[1],
                                num_process_evaluate=job["workers"], timeout=job["timeout"])
seconds = time.perf_counter() - start
rows = []
for i in range(len(codes)):
    rows.append([x if isinstance(x, bool) else (bool(x) if type(x).__name__ == "bool_" else int(x))
                 for x in results[i][0]])
json.dump({"results": rows, "codes": codes, "seconds": seconds}, open(sys.argv[3], "w"))
"""


def cache_checkout() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "openrlhf-steer" / "refs" / f"LiveCodeBench-{LCB_REVISION}"


def _has_runner(path: Path) -> bool:
    return (path / "lcb_runner" / "evaluation" / "compute_code_generation_metrics.py").is_file()


def _extract(git_dir: Path, target: Path) -> Optional[str]:
    """``git archive`` the pinned lcb_runner out of a clone or bare mirror into ``target`` (atomically)."""
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        archive = subprocess.run(
            ["git", f"--git-dir={git_dir}", "archive", LCB_REVISION, "lcb_runner"], capture_output=True, timeout=120
        )
        if archive.returncode != 0:
            return archive.stderr.decode(errors="replace").strip()[-300:]
        subprocess.run(["tar", "-x", "-C", str(staging)], input=archive.stdout, check=True, timeout=120)
        os.replace(staging, target)
        return None
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def locate_official_runner() -> Tuple[Optional[Path], str]:
    """(folder holding lcb_runner at the pinned revision, or None; why not). Looks at $LCB_RUNNER_DIR,
    the user cache, then fills the cache from a local mirror ($LIVECODEBENCH_REPO, default
    ../.mirror/LiveCodeBench+LiveCodeBench/repo) or a shallow fetch from GitHub."""
    env = os.environ.get("LCB_RUNNER_DIR")
    if env:
        path = Path(env)
        return (path, "") if _has_runner(path) else (None, f"$LCB_RUNNER_DIR={env} holds no lcb_runner/evaluation")
    target = cache_checkout()
    if _has_runner(target):
        return target, ""
    target.parent.mkdir(parents=True, exist_ok=True)
    mirror = Path(
        os.environ.get("LIVECODEBENCH_REPO", REPO_ROOT.parent / ".mirror" / "LiveCodeBench+LiveCodeBench" / "repo")
    )
    problems = []
    if mirror.is_dir():
        git_dir = mirror / ".git" if (mirror / ".git").is_dir() else mirror
        error = _extract(git_dir, target)
        if error is None:
            return target, ""
        problems.append(f"mirror {mirror}: {error}")
    else:
        problems.append(f"no mirror at {mirror}")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run(["git", "init", "-q", "--bare", tmp], check=True, capture_output=True, timeout=30)
            fetch = subprocess.run(
                [
                    "git",
                    f"--git-dir={tmp}",
                    "fetch",
                    "-q",
                    "--depth",
                    "1",
                    "https://github.com/LiveCodeBench/LiveCodeBench",
                    LCB_REVISION,
                ],
                capture_output=True,
                timeout=120,
            )
            if fetch.returncode == 0 and _extract(Path(tmp), target) is None:
                return target, ""
            problems.append("fetch from GitHub failed: " + fetch.stderr.decode(errors="replace").strip()[-200:])
        except (OSError, subprocess.SubprocessError) as exc:
            problems.append(f"fetch from GitHub failed: {exc}")
    return None, "; ".join(problems)


def runner_python() -> str:
    return os.environ.get("LCB_RUNNER_PYTHON") or sys.executable


def probe_official(checkout: Path) -> str:
    """'' when the runner imports in ``runner_python()``, else why not (its requirements: numpy, pandas, tqdm)."""
    probe = subprocess.run(
        [
            runner_python(),
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import lcb_runner.evaluation.compute_code_generation_metrics",
            str(checkout),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    if probe.returncode == 0:
        return ""
    lines = probe.stderr.strip().splitlines()
    return lines[-1] if lines else f"import failed with exit code {probe.returncode}"


def official_sample(problem: dict) -> dict:
    """The ``input_output`` the official benchmark builds for a problem."""
    return {
        "inputs": [t["input"] for t in problem["tests"]],
        "outputs": [t["output"] for t in problem["tests"]],
        "fn_name": problem.get("fn_name") or None,
    }


def run_official(checkout: Path, problems: List[dict], responses: List[str], timeout: int, workers: int, work: Path):
    """Grade ``responses[i]`` against ``problems[i]`` with the official ``codegen_metrics``; returns
    (per-answer result lists, extracted codes, seconds spent in codegen_metrics and extraction)."""
    job, out = work / "official_job.json", work / "official_out.json"
    job.write_text(
        json.dumps(
            {
                "samples": [official_sample(p) for p in problems],
                "responses": responses,
                "timeout": int(timeout),
                "workers": int(workers),
            }
        )
    )
    done = subprocess.run(
        [runner_python(), "-c", _OFFICIAL_DRIVER, str(checkout), str(job), str(out)],
        cwd=work,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=3600,
        env=dict(os.environ, PYTHONHASHSEED="0"),
    )
    if done.returncode != 0:
        raise RuntimeError(f"the official runner failed: {done.stderr[-2000:]}")
    data = json.loads(out.read_text())
    return data["results"], data["codes"], data["seconds"]


def normalise(results) -> str:
    """One comparable spelling of a result list (True and 1 stay distinct)."""
    return json.dumps([r if isinstance(r, bool) else int(r) for r in results])
