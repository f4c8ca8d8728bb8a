"""Math benchmarks loaded by Hugging Face dataset id (the default source), without a network.

``datasets.load_dataset`` is replaced by a fake that records its arguments and returns a real
``datasets.Dataset`` built from the real rows in ../shared/data, reshaped into the column layout of
the hub copy where the research notes (eval.md) give one (math-ai/aime25: problem/answer/id;
math-ai/minervamath: question/answer; MATH-500 and OlympiadBench: the local fields). The hub path
must ask for the right id, config and split, and give the same gold answers, question texts and
problem ids as the local files. The expected golds come from the local rows by the dataset card's
rule, written out here (not through the loader).
"""

from __future__ import annotations

import json

import pytest

datasets = pytest.importorskip("datasets")

from openrlhf_steer_eval.benchmarks import MATH_BENCHMARKS, get_benchmark  # noqa: E402
from openrlhf_steer_eval.graders.math_text import last_boxed_content  # noqa: E402


def _rows(data_dir, name):
    with open(data_dir / name / "test.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _hub_layout(name, rows):
    """The local rows in the hub copy's columns."""
    if name == "aime25":  # math-ai/aime25: problem, answer, id
        return [{"problem": r["problem"], "answer": r["answer"], "id": r["id"]} for r in rows]
    if name == "minerva_math":  # math-ai/minervamath: question and a plain answer, no solution
        return [{"question": r["problem"], "answer": last_boxed_content(r["solution"]), "idx": r["idx"]} for r in rows]
    return [dict(r) for r in rows]


def _expected_gold(name, row):
    if name == "amc23":
        return str(int(row["answer"])) if float(row["answer"]).is_integer() else repr(float(row["answer"]))
    if name == "minerva_math":
        return last_boxed_content(row["solution"]).strip()
    if name == "olympiadbench":
        return row["final_answer"][0].strip().strip("$").strip()
    return str(row["answer"]).strip()


# benchmark -> (hub id, config, split) the loader must request by default
DEFAULT_REQUEST = {
    "aime24": ("math-ai/aime24", None, "test"),
    "aime25": ("math-ai/aime25", None, "test"),
    "amc23": ("math-ai/amc23", None, "test"),
    "math500": ("HuggingFaceH4/MATH-500", None, "test"),
    "minerva_math": ("math-ai/minervamath", None, "test"),
    "olympiadbench": ("Hothan/OlympiadBench", "OE_TO_maths_en_COMP", "train"),
}


@pytest.fixture
def fake_hub(monkeypatch):
    calls, tables = [], {}

    def load_dataset(path, name=None, *, split=None, **kwargs):
        calls.append((path, name, split))
        if path not in tables:
            raise ConnectionError(f"fake hub: no dataset {path!r}")
        return datasets.Dataset.from_list(tables[path])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls, tables


def test_every_math_benchmark_has_a_default_request():
    assert sorted(DEFAULT_REQUEST) == sorted(MATH_BENCHMARKS)


@pytest.mark.parametrize("name", sorted(DEFAULT_REQUEST))
def test_hub_id_gives_the_local_golds_questions_and_ids(name, data_dir, fake_hub):
    calls, tables = fake_hub
    hub_id, config, split = DEFAULT_REQUEST[name]
    rows = _rows(data_dir, name)
    tables[hub_id] = _hub_layout(name, rows)
    bench = get_benchmark(name)

    from_hub = bench.load(None)
    assert calls == [(hub_id, config, split)]
    local = bench.load(str(data_dir / name))

    assert len(from_hub) == len(rows)
    assert [p["gold_answer"] for p in from_hub] == [_expected_gold(name, r) for r in rows]
    assert [p["gold_answer"] for p in from_hub] == [p["gold_answer"] for p in local]
    assert [p["question_text"] for p in from_hub] == [p["question_text"] for p in local]
    assert [bench.problem_id(p, i) for i, p in enumerate(from_hub)] == [
        bench.problem_id(p, i) for i, p in enumerate(local)
    ]
    if name == "minerva_math":  # Qwen2.5-Math keeps units for Minerva, whatever the source
        assert all(p["keep_units"] is True for p in from_hub)


def test_split_and_config_options_reach_the_hub(data_dir, fake_hub):
    calls, tables = fake_hub
    tables["Hothan/OlympiadBench"] = _rows(data_dir, "olympiadbench")[:3]
    tables["someone/aime-copy"] = _rows(data_dir, "aime24")[:2]
    problems = get_benchmark("olympiadbench").load(None, split="test", config="OE_TO_physics_en_COMP")
    assert calls[-1] == ("Hothan/OlympiadBench", "OE_TO_physics_en_COMP", "test") and len(problems) == 3
    problems = get_benchmark("aime24").load("someone/aime-copy")  # any hub id in place of the default
    assert calls[-1] == ("someone/aime-copy", None, "test")
    assert [p["gold_answer"] for p in problems] == [str(r["answer"]) for r in _rows(data_dir, "aime24")[:2]]


def test_bad_hub_row_names_the_dataset_and_row(data_dir, fake_hub):
    _, tables = fake_hub
    rows = _hub_layout("aime25", _rows(data_dir, "aime25"))[:4]
    rows[2] = dict(rows[2], answer="  ")
    tables["math-ai/aime25"] = rows
    with pytest.raises(ValueError, match=r"math-ai/aime25 row 3: aime25: field 'answer' is empty"):
        get_benchmark("aime25").load(None)


def test_unreachable_hub_id_is_a_clear_error(fake_hub):
    with pytest.raises(RuntimeError, match=r"could not load Hugging Face dataset 'nobody/none'.*--data NAME=PATH"):
        get_benchmark("math500").load("nobody/none")
