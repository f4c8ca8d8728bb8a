"""LiveCodeBench: loader (official + DeepCoder formats, releases, v5 window, private-test decoding) and
the executor with the official runner's semantics, on real problems with hand-written solutions."""

import base64
import json
import os
import pickle
import zlib

import pytest

from openrlhf_steer_eval.data_code import decode_private_tests, lcb_prompt, lcb_release_files, load_livecodebench
from openrlhf_steer_eval.graders.base import GraderConfig, PromptOptions
from openrlhf_steer_eval.graders.code_lcb import (
    LcbExecConfig,
    extract_code,
    run_program,
    stdout_matches,
    unwrap_main_guard,
)

CFG = LcbExecConfig(test_timeout=1.5, memory_mb=1024)


def _encode_private(tests):
    """How LiveCodeBench stores private tests: base64(zlib(pickle(json string)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode()


@pytest.fixture(scope="module")
def deepcoder(data_dir):
    rows = load_livecodebench(
        str(data_dir / "livecodebench" / "deepcoder_public_tests_sample20.jsonl"), start_date="none", end_date="none"
    )
    return {r["question_id"]: r for r in rows}


# ------------------------------------------------------------------------------------------ pure helpers
def test_extract_code_takes_the_last_fenced_block():
    text = "First try:\n```python\nprint(1)\n```\nBetter:\n```python\nx = 2\nprint(x)\n```\nDone."
    assert extract_code(text) == "x = 2\nprint(x)"
    assert extract_code("no code at all") == ""
    assert extract_code("```python\nprint(1)") == ""  # one fence: the official runner gives up
    assert extract_code("  print(5)  \n", code_style="base") == "print(5)"
    with pytest.raises(ValueError, match="code_style"):
        extract_code("x", code_style="markdown")


def test_stdout_comparison_follows_the_official_rules():
    assert stdout_matches("3\n4\n", "3\n4")[0]
    assert stdout_matches("  3  \n 4\n\n", "3\n4\n")[0]  # strip per line and overall
    assert stdout_matches("1.0 2.50\n", "1 2.5\n")[0]  # Decimal element-wise
    assert stdout_matches("1e2\n", "100\n")[0]  # Decimal('1e2') == Decimal('100')
    assert not stdout_matches("0.333\n", "0.3333\n")[0]  # no tolerance beyond exact Decimal
    assert not stdout_matches("YES\n", "yes\n")[0]  # case matters
    ok, why = stdout_matches("1\n2\n", "1\n")
    assert not ok and "mismatched output length" in why
    assert not stdout_matches("1 2\n", "1 2 3\n")[0]


def test_main_guard_is_unwrapped():
    code = "def solve():\n    print(7)\nif __name__ == '__main__':\n    solve()\n"
    assert unwrap_main_guard(code).strip().endswith("solve()")
    assert "__name__" not in unwrap_main_guard(code)


def test_release_files():
    assert lcb_release_files("release_v1") == ("test.jsonl",)
    assert lcb_release_files("release_v5") == ("test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl")
    assert lcb_release_files("v5") == ("test5.jsonl",)
    assert len(lcb_release_files("release_latest")) == 6
    with pytest.raises(ValueError, match="release"):
        lcb_release_files("release_v9")


def test_private_tests_decode_and_refuse_code():
    tests = [{"input": "1\n", "output": "2\n", "testtype": "stdin"}]
    assert decode_private_tests(_encode_private(tests)) == tests
    assert decode_private_tests(json.dumps(tests)) == tests
    evil = base64.b64encode(zlib.compress(pickle.dumps(os.system))).decode()
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        decode_private_tests(evil)


# ------------------------------------------------------------------------------------------ executor on real data
SHORT_SORT = (
    "t = int(input())\nfor _ in range(t):\n    s = input().strip()\n"
    "    print('YES' if sum(a != b for a, b in zip(s, 'abc')) != 3 else 'NO')\n"
)
GOOD_KID = (
    "t = int(input())\nfor _ in range(t):\n    n = int(input())\n    a = sorted(map(int, input().split()))\n"
    "    a[0] += 1\n    p = 1\n    for x in a:\n        p *= x\n    print(p)\n"
)
GAME = (
    "import sys\ndata = sys.stdin.read().split()\nfor n in data[1:]:\n    print('Second' if int(n) % 3 == 0 else "
    "'First')\n"
)


@pytest.mark.parametrize(
    "title,code", [("A. Short Sort", SHORT_SORT), ("B. Good Kid", GOOD_KID), ("A. Game with Integers", GAME)]
)
def test_correct_stdin_solutions_pass(deepcoder, title, code):
    problem = deepcoder[title]
    detail = run_program(code, problem["tests"], problem["fn_name"], CFG)
    assert detail["passed"], detail
    assert detail["results"] == [True] * len(problem["tests"])


def test_wrong_stdin_solutions_fail_with_official_codes(deepcoder):
    tests = deepcoder["B. Good Kid"]["tests"]
    wrong = GOOD_KID.replace("a[0] += 1", "a[-1] += 1")  # adds 1 to the largest digit
    detail = run_program(wrong, tests, None, CFG)
    assert not detail["passed"] and detail["results"] == [-2] and detail["expected"].startswith("16")
    detail = run_program("while True:\n    pass\n", tests, None, CFG)
    assert detail["results"] == [-3] and detail["error_message"] == "Time Limit Exceeded"
    detail = run_program("x = int(input())\nprint(x // 0)\n", tests, None, CFG)
    assert detail["results"] == [-4] and "ZeroDivisionError" in detail["error"]
    detail = run_program("def broken(:\n", tests, None, CFG)
    assert detail["results"] == [-4] and "SyntaxError" in detail["error_message"]
    assert run_program("", tests, None, CFG)["passed"] is False


def test_stdin_mocks_like_the_official_runner(deepcoder):
    tests = deepcoder["A. Game with Integers"]["tests"]
    # Official quirk kept on purpose: the prelude's `from builtins import *` binds `open` before the
    # runner mocks builtins.open, so open(0) reads the real (empty) stdin and such programs fail.
    via_open = (
        "data = open(0).read().split()\nfor n in data[1:]:\n    print('Second' if int(n) % 3 == 0 else 'First')\n"
    )
    assert run_program(via_open, tests, None, CFG)["results"] == [-2]
    readline = (
        "import sys\ninput = sys.stdin.readline\nt = int(input())\nfor _ in range(t):\n"
        "    print('Second' if int(input()) % 3 == 0 else 'First')\n"
    )
    assert run_program(readline, tests, None, CFG)["passed"]
    with_main = (
        "def main():\n"
        + "".join("    " + line + "\n" for line in GAME.splitlines())
        + "if __name__ == '__main__':\n    main()\n"
    )
    assert run_program(with_main, tests, None, CFG)["passed"]
    exits = GAME + "exit()\n"  # SystemExit is ignored
    assert run_program(exits, tests, None, CFG)["passed"]


FUNCTIONAL = {
    "number-of-senior-citizens": "class Solution:\n    def countSeniors(self, details: List[str]) -> int:\n"
    "        return sum(int(d[11:13]) > 60 for d in details)\n",
    "sum-in-a-matrix": "class Solution:\n    def matrixSum(self, nums):\n        rows = [sorted(r) for r in nums]\n"
    "        return sum(max(col) for col in zip(*rows))\n",
    "buy-two-chocolates": "class Solution:\n    def buyChoco(self, prices, money):\n        a, b = sorted(prices)[:2]\n"
    "        return money - a - b if a + b <= money else money\n",
    # a tuple result counts as the list it holds (official runner)
    "find-the-distinct-difference-array": "class Solution:\n    def distinctDifferenceArray(self, nums):\n"
    "        return tuple(len(set(nums[:i + 1])) - len(set(nums[i + 1:]))"
    " for i in range(len(nums)))\n",
}


@pytest.mark.parametrize("title", sorted(FUNCTIONAL))
def test_correct_functional_solutions_pass(deepcoder, title):
    problem = deepcoder[title]
    assert problem["fn_name"] and all(t["testtype"] == "functional" for t in problem["tests"])
    detail = run_program(FUNCTIONAL[title], problem["tests"], problem["fn_name"], CFG)
    assert detail["passed"], detail


def test_wrong_functional_solutions_fail(deepcoder):
    problem = deepcoder["buy-two-chocolates"]
    wrong = FUNCTIONAL["buy-two-chocolates"].replace("sorted(prices)[:2]", "sorted(prices)[-2:]")
    detail = run_program(wrong, problem["tests"], problem["fn_name"], CFG)
    assert not detail["passed"] and detail["results"][-1] is False and detail["error_code"] == -2
    renamed = FUNCTIONAL["buy-two-chocolates"].replace("buyChoco", "buy_choco")
    detail = run_program(renamed, problem["tests"], problem["fn_name"], CFG)
    assert detail["results"] == [-4] and "buyChoco" in detail["error_message"]


def test_adversarial_program_is_scored_failed_and_grading_continues(deepcoder):
    problem = deepcoder["A. Short Sort"]
    for evil in (
        "import os\nwhile True:\n    os.fork()\n",
        "x = bytearray(10**11)\n",
        "import socket\nsocket.create_connection(('127.0.0.1', 80), timeout=1)\n",
        "open('/tmp/lcb-evil-%d.txt' % 1, 'w').write('x')\n",
    ):
        assert not run_program(evil, problem["tests"], None, CFG)["passed"]
    assert not os.path.exists("/tmp/lcb-evil-1.txt")
    assert run_program(SHORT_SORT, problem["tests"], None, CFG)["passed"]


# ------------------------------------------------------------------------------------------ official format
def _official_rows():
    return [
        {
            "question_title": "Add",
            "question_content": "Print a+b.",
            "platform": "atcoder",
            "question_id": "abc999_a",
            "contest_id": "abc999",
            "contest_date": "2024-09-01T00:00:00",
            "starter_code": "",
            "difficulty": "easy",
            "public_test_cases": json.dumps([{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]),
            "private_test_cases": _encode_private(
                [
                    {"input": "10 20\n", "output": "30\n", "testtype": "stdin"},
                    {"input": "-5 5\n", "output": "0\n", "testtype": "stdin"},
                ]
            ),
            "metadata": "{}",
        },
        {
            "question_title": "two-sum-count",
            "question_content": "Count pairs.",
            "platform": "leetcode",
            "question_id": "9001",
            "contest_id": "weekly-999",
            "contest_date": "2024-12-15T00:00:00",
            "starter_code": "class Solution:\n    def countPairs(self, nums: List[int], target: int) -> int:\n        ",
            "difficulty": "easy",
            "public_test_cases": json.dumps([{"input": "[1, 2, 3]\n4", "output": "1", "testtype": "functional"}]),
            "private_test_cases": json.dumps([{"input": "[1, 1, 1]\n2", "output": "3", "testtype": "functional"}]),
            "metadata": json.dumps({"func_name": "countPairs"}),
        },
        {
            "question_title": "Old",
            "question_content": "Print 1.",
            "platform": "atcoder",
            "question_id": "abc300_a",
            "contest_id": "abc300",
            "contest_date": "2024-05-01T00:00:00",
            "starter_code": "",
            "difficulty": "easy",
            "public_test_cases": json.dumps([{"input": "\n", "output": "1\n", "testtype": "stdin"}]),
            "private_test_cases": "",
            "metadata": "{}",
        },
        {
            "question_title": "Edge",
            "question_content": "Print 2.",
            "platform": "atcoder",
            "question_id": "abc390_a",
            "contest_id": "abc390",
            "contest_date": "2025-02-01T00:00:00",
            "starter_code": "",
            "difficulty": "easy",
            "public_test_cases": json.dumps([{"input": "\n", "output": "2\n", "testtype": "stdin"}]),
            "private_test_cases": "",
            "metadata": "{}",
        },
    ]


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_official_loader_window_and_private_tests(tmp_path):
    path = _write_jsonl(tmp_path / "test5.jsonl", _official_rows())
    rows = load_livecodebench(str(path))  # default: the v5 window [2024-08-01, 2025-02-01)
    assert [r["question_id"] for r in rows] == ["abc999_a", "9001"]
    add, pairs = rows
    assert add["num_public_tests"] == 1 and len(add["tests"]) == 3 and add["tests"][2]["input"] == "-5 5\n"
    assert pairs["fn_name"] == "countPairs" and len(pairs["tests"]) == 2
    everything = load_livecodebench(str(path), start_date="none", end_date="none")
    assert len(everything) == 4
    assert add["errata"] is None
    flagged = dict(_official_rows()[0], question_id="abc343_a")  # listed in LiveCodeBench's ERRATA.md
    _write_jsonl(tmp_path / "errata.jsonl", [flagged])
    assert "multiple valid outputs" in load_livecodebench(str(tmp_path / "errata.jsonl"))[0]["errata"]
    assert [
        r["question_id"] for r in load_livecodebench(str(path), start_date="2024-01-01", end_date="2024-06-01")
    ] == ["abc300_a"]
    # private tests decide: a solution fitted to the public test fails
    assert run_program("print(sum(map(int, input().split())))", add["tests"], None, CFG)["passed"]
    detail = run_program("print(3)", add["tests"], None, CFG)
    assert detail["results"] == [True, -2]
    pairs_code = (
        "class Solution:\n    def countPairs(self, nums, target):\n"
        "        return sum(nums[i] + nums[j] == target for i in range(len(nums)) "
        "for j in range(i + 1, len(nums)))\n"
    )
    assert run_program(pairs_code, pairs["tests"], "countPairs", CFG)["passed"]


def test_release_folder_selection(tmp_path):
    rows = _official_rows()
    _write_jsonl(tmp_path / "test.jsonl", rows[:2])
    _write_jsonl(tmp_path / "test2.jsonl", rows[2:])
    assert len(load_livecodebench(str(tmp_path), release="release_v2", start_date="none", end_date="none")) == 4
    assert len(load_livecodebench(str(tmp_path), release="v2", start_date="none", end_date="none")) == 2
    with pytest.raises(FileNotFoundError, match="test3.jsonl"):
        load_livecodebench(str(tmp_path), release="release_v3")


def test_malformed_rows_name_the_line(tmp_path):
    rows = _official_rows()
    bad = dict(rows[1], metadata="{}")  # functional tests without func_name
    path = _write_jsonl(tmp_path / "bad.jsonl", [rows[0], bad])
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: functional tests but metadata has no 'func_name'"):
        load_livecodebench(str(path))
    path.write_text(json.dumps(rows[0]) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
        load_livecodebench(str(path))
    evil = dict(rows[0], private_test_cases=base64.b64encode(zlib.compress(pickle.dumps(os.system))).decode())
    _write_jsonl(path, [evil])
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: cannot decode private_test_cases: refusing"):
        load_livecodebench(str(path))
    _write_jsonl(path, [{k: v for k, v in rows[0].items() if k != "contest_date"}])
    with pytest.raises(ValueError, match="start_date=none"):
        load_livecodebench(str(path))


def test_prompt_follows_the_official_template(deepcoder):
    stdin_problem, leetcode = deepcoder["A. Short Sort"], deepcoder["buy-two-chocolates"]
    messages = lcb_prompt(stdin_problem, PromptOptions(chat=True))
    assert messages[0]["role"] == "system" and messages[0]["content"].startswith("You are an expert Python programmer.")
    assert messages[1]["content"].startswith("### Question:\n") and "# YOUR CODE HERE" in messages[1]["content"]
    assert messages[1]["content"].endswith("### Answer: (use the provided format with backticks)\n\n")
    text = lcb_prompt(leetcode, PromptOptions(chat=False))
    assert "def buyChoco(self" in text and "### Format: You will use the following starter code" in text


def test_grader_through_the_registry(deepcoder):
    from openrlhf_steer_eval.benchmarks import get_benchmark, make_grader

    bench = get_benchmark("livecodebench")
    assert bench.graders == ["lcb_exec"]
    assert (bench.sampling.n, bench.sampling.temperature, bench.sampling.top_p, bench.sampling.max_tokens) == (
        10,
        0.2,
        0.95,
        2000,
    )
    grader = make_grader("lcb_exec", GraderConfig(workers=2, options={"test_timeout": "1.5", "memory_mb": "1024"}))
    problems = [deepcoder["A. Short Sort"], deepcoder["sum-in-a-matrix"]]
    responses = [
        [f"```python\n{SHORT_SORT}```", "I don't know.", f"```python\n{SHORT_SORT.replace('!= 3', '== 3')}```"],
        [f"Here you go:\n```python\n{FUNCTIONAL['sum-in-a-matrix']}```"],
    ]
    verdicts = grader.grade(problems, responses)
    assert [[v.correct for v in vs] for vs in verdicts] == [[True, False, False], [True]]
    # no fence pair: the official runner runs the empty program and records -4 (compile error)
    assert verdicts[0][1].detail["results"] == [-4]
    assert verdicts[0][1].detail["error_message"] == "Error during testing: no code extracted"
    with pytest.raises(ValueError, match="'tests'"):
        grader.grade([{"question_id": "x"}], [["print(1)"]])


def test_hub_source_downloads_release_files_or_explains_offline(tmp_path, monkeypatch):
    import huggingface_hub

    rows = _official_rows()
    for name, part in (("test.jsonl", rows[:1]), ("test2.jsonl", rows[1:2])):
        _write_jsonl(tmp_path / name, part)
    asked = []

    def fake_download(repo_id, filename, repo_type):
        asked.append((repo_id, filename, repo_type))
        return str(tmp_path / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    loaded = load_livecodebench(None, release="release_v2")
    assert [r["question_id"] for r in loaded] == ["abc999_a", "9001"]
    assert asked == [
        ("livecodebench/code_generation_lite", "test.jsonl", "dataset"),
        ("livecodebench/code_generation_lite", "test2.jsonl", "dataset"),
    ]

    def offline(**kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: offline())
    with pytest.raises(RuntimeError, match="Offline, download the code_generation_lite files"):
        load_livecodebench(None)


@pytest.mark.slow
def test_swallowed_time_limit_is_ended_by_the_whole_run_limit_and_nothing_leaks(deepcoder, tmp_path):
    """The per-test timeout is catchable, as upstream's; a program that swallows it and loops on is ended by
    the parent at the whole-run limit ((0.5 + 1) x 1 test + 5 s), recorded as upstream's fallback ([-2],
    error_code -5), and leaves no process and no sandbox folder behind."""
    import glob
    import tempfile

    import psutil

    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "steer-sandbox-*")))
    code = (
        "import threading\nthreading.Thread(target=lambda: [0 for _ in iter(int, 1)], daemon=True).start()\n"
        "open('left_behind.txt', 'w').write('x')\n"
        "while True:\n    try:\n        while True:\n            pass\n    except Exception:\n        pass\n"
    )
    detail = run_program(code, deepcoder["A. Short Sort"]["tests"], None, LcbExecConfig(test_timeout=0.5))
    assert detail["results"] == [-2] and detail["error_code"] == -5, detail
    assert detail["sandbox_status"] in ("timeout", "cpu_limit")
    assert psutil.Process().children(recursive=True) == []
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "steer-sandbox-*"))) <= before
