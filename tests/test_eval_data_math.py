"""Math loaders and gold extraction on the real test sets in ../shared/data."""

import json

import pytest

from openrlhf_steer_eval.benchmarks import MATH_BENCHMARKS, get_benchmark
from openrlhf_steer_eval.data_math import float_to_canonical, gold_minerva
from openrlhf_steer_eval.graders.math_text import last_boxed_content

# Published AIME 2025 answers (I then II), as listed in research notes eval.md §1.1
AIME25 = [
    70,
    588,
    16,
    117,
    279,
    504,
    821,
    77,
    62,
    81,
    259,
    510,
    204,
    60,
    735,
    468,
    49,
    82,
    106,
    336,
    293,
    237,
    610,
    149,
    907,
    113,
    19,
    248,
    104,
    240,
]


def load(name, data_dir):
    return get_benchmark(name).load(str(data_dir / name))


@pytest.mark.parametrize(
    "name,rows",
    [("aime24", 30), ("aime25", 30), ("amc23", 40), ("math500", 500), ("minerva_math", 272), ("olympiadbench", 675)],
)
def test_row_counts_and_unique_ids(name, rows, data_dir):
    problems = load(name, data_dir)
    bench = get_benchmark(name)
    assert len(problems) == rows
    ids = [bench.problem_id(p, i) for i, p in enumerate(problems)]
    assert len(set(ids)) == rows
    assert all(p["gold_answer"] and p["question_text"] for p in problems)


def test_aime25_golds_are_the_published_answers(data_dir):
    assert [p["gold_answer"] for p in load("aime25", data_dir)] == [str(a) for a in AIME25]


def test_amc_float_becomes_canonical_string(data_dir):
    problems = load("amc23", data_dir)
    assert problems[0]["answer"] == 27.0 and problems[0]["gold_answer"] == "27"
    assert [p["gold_answer"] for p in problems[:6]] == ["27", "36", "45", "3159", "36", "7"]
    assert float_to_canonical(27.0) == "27" and float_to_canonical(1.5) == "1.5"


def test_olympiadbench_dollars_stripped(data_dir):
    by_id = {p["id"]: p for p in load("olympiadbench", data_dir)}
    assert by_id[1610]["final_answer"] == ["$\\frac{1}{2 n+2}$"]
    assert by_id[1610]["gold_answer"] == "\\frac{1}{2 n+2}"
    assert by_id[1612]["gold_answer"] == "2^{1009}"
    assert by_id[1606]["gold_answer"] == "2"


def test_minerva_gold_is_last_boxed_brace_matched(data_dir):
    problems = load("minerva_math", data_dir)
    assert problems[0]["gold_answer"] == "1.6"
    assert problems[25]["gold_answer"] == "\\frac{a M^{1 / 3}}{G M^{2 / 3}+b}"
    assert problems[30]["gold_answer"] == "\\sqrt{4 \\pi G \\rho_{0} r_{0}^{2}}"
    assert all(p["keep_units"] for p in problems)  # Qwen keeps units for minerva


def test_last_boxed_content_hand_cases():
    assert last_boxed_content("a \\boxed{1} b \\boxed{\\frac{1}{2}} c") == "\\frac{1}{2}"
    assert last_boxed_content("\\boxed{{a}{b}}") == "{a}{b}"
    assert last_boxed_content("\\fbox{7}") == "7"
    assert last_boxed_content("\\boxed 5$") == "5"
    assert last_boxed_content("no box") is None
    assert last_boxed_content("\\boxed{unclosed") is None
    with pytest.raises(ValueError, match="no \\\\boxed"):
        gold_minerva({"solution": "the answer is 3"})


def test_malformed_rows_name_the_line(tmp_path):
    bench = get_benchmark("aime24")
    f = tmp_path / "test.jsonl"
    f.write_text(json.dumps({"id": 1, "problem": "p", "answer": "3"}) + "\n" + "{not json\n")
    with pytest.raises(ValueError, match=r"test.jsonl:2: not valid JSON"):
        bench.load(str(f))
    f.write_text(
        json.dumps({"id": 1, "problem": "p", "answer": "3"}) + "\n\n" + json.dumps({"id": 2, "problem": "q"}) + "\n"
    )
    with pytest.raises(ValueError, match=r"test.jsonl:3: aime24: missing field 'answer'"):
        bench.load(str(f))
    f.write_text(json.dumps({"id": 1, "answer": "3"}) + "\n")
    with pytest.raises(ValueError, match=r"test.jsonl:1: aime24: missing field 'problem' or 'question'"):
        bench.load(str(f))
    f.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match=r"test.jsonl:1: expected a JSON object"):
        bench.load(str(f))


def test_folder_without_test_file_is_a_clear_error(tmp_path):
    (tmp_path / "a.jsonl").write_text("{}\n")
    (tmp_path / "b.jsonl").write_text("{}\n")
    with pytest.raises(FileNotFoundError, match="expected test.jsonl"):
        get_benchmark("math500").load(str(tmp_path))


def test_every_math_benchmark_is_registered_with_both_graders():
    assert MATH_BENCHMARKS == ["aime24", "aime25", "amc23", "math500", "minerva_math", "olympiadbench"]
    for name in MATH_BENCHMARKS:
        b = get_benchmark(name)
        assert b.graders == ["math_verify", "qwen"]
        assert b.sampling.temperature == 0.6 and b.sampling.top_p == 0.95
        assert b.sampling.n == (32 if name in ("aime24", "aime25", "amc23") else 4)


def test_hub_id_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="could not load Hugging Face dataset 'math-ai/aime24'.*--data NAME=PATH"):
        get_benchmark("aime24").load(None)
