"""IF-Eval: Google's checkers (via lm-eval, without lm_eval.tasks) on real prompts with hand-written
responses whose pass/fail per instruction follows from reading the instruction."""

import json
import sys

import pytest

from openrlhf_steer_eval.graders import ifeval
from openrlhf_steer_eval.graders.base import GraderConfig, PromptOptions


@pytest.fixture(scope="module")
def nltk_dir(data_dir):
    return str(data_dir / "ifeval" / "nltk_data")


@pytest.fixture(scope="module")
def rows(data_dir):
    loaded = ifeval.load_ifeval(str(data_dir / "ifeval" / "input_data.jsonl"))
    assert len(loaded) == 541
    return {r["key"]: r for r in loaded}


@pytest.fixture(scope="module")
def strict(nltk_dir):
    return ifeval.IfevalGrader("strict", seed=0, nltk_data=nltk_dir)


@pytest.fixture(scope="module")
def loose(nltk_dir):
    return ifeval.IfevalGrader("loose", seed=0, nltk_data=nltk_dir)


def _check(grader, row, response):
    return ifeval.check_response(grader.checkers, row, response, grader.mode)


def test_checkers_load_without_lm_eval_tasks(strict):
    assert "lm_eval.tasks" not in sys.modules and "lm_eval.tasks.ifeval" not in sys.modules
    assert "punctuation:no_comma" in strict.checkers.instructions_registry.INSTRUCTION_DICT
    assert strict.checkers.utils.__file__.endswith("lm_eval/tasks/ifeval/utils.py")


CAPS_TWO_PARAGRAPHS = (
    "PARAGRAPH 1\nTHE SENTENCE IS TOO SIMPLE AND THE LAW IS NOT A REASON TO DISOBEY.\n\nPARAGRAPH "
    "2\nLAWS SHOULD BE CHANGED THROUGH VOTES AND DEBATE, NOT IGNORED."
)

# key -> (response, expected strict per instruction)
CASES = [
    # 1001: "You are not allowed to use any commas"
    (1001, "Day one: to Kyoto we go. Day two: Nara and its deer.", [True]),
    (1001, "Day one, Kyoto.", [False]),
    # 1019: in English and all lowercase
    (1019, "what are the two young boys going to do with their toy guns and horns?", [True]),
    (1019, "What are the two young boys going to do?", [False]),
    # 1094: the entire output is JSON (a ```json fence is allowed by Google's checker)
    (1094, '```json\n{"moms": ["Marge Simpson", "Morticia Addams"]}\n```', [True]),
    (1094, 'Here you go: {"moms": ["Marge Simpson"]}', [False]),
    # 1021: all capital letters (and English, per langdetect) + 2 sections marked "PARAGRAPH X"
    (1021, CAPS_TWO_PARAGRAPHS, [True, True]),
    (1021, "PARAGRAPH 1\nThe sentence is too simple.", [False, False]),
    # 1092: less than 300 words
    (1092, " ".join(["tokyo"] * 299), [True]),
    (1092, " ".join(["tokyo"] * 300), [False]),
    # 1128: the very last sentence must be "Is there anything else I can help with?"
    (1128, "The sentiment is negative. Is there anything else I can help with?", [True]),
    (1128, "Is there anything else I can help with? The sentiment is negative.", [False]),
]


@pytest.mark.parametrize("key,response,expected", CASES)
def test_strict_results_per_instruction(strict, rows, key, response, expected):
    assert _check(strict, rows[key], response) == expected


def test_loose_accepts_markdown_and_preambles_strict_does_not(strict, loose, rows):
    bold_end = "The sentiment is negative. **Is there anything else I can help with?**"
    assert _check(strict, rows[1128], bold_end) == [False]
    assert _check(loose, rows[1128], bold_end) == [True]  # the variant without '*'
    preamble = "Sure! Here is my question:\nwhat are the boys going to do with the toy guns?"
    assert _check(strict, rows[1019], preamble) == [False]
    assert _check(loose, rows[1019], preamble) == [True]  # the variant without the first line
    assert _check(loose, rows[1001], "Day one, Kyoto.") == [False]  # no variant removes a comma
    assert _check(strict, rows[1019], "") == [False] and _check(loose, rows[1019], "") == [False]


def test_graders_and_the_four_metrics(strict, loose, rows):
    problems = [rows[1001], rows[1021], rows[1128]]
    responses = [
        ["Day one: Kyoto.", "Day one, Kyoto."],
        [CAPS_TWO_PARAGRAPHS, CAPS_TWO_PARAGRAPHS.split("\n\n")[0]],
        ["It is negative. **Is there anything else I can help with?**"],
    ]
    s = strict.grade(problems, responses)
    assert [[v.correct for v in vs] for vs in s] == [[True, False], [True, False], [False]]
    assert s[1][1].detail["follow_instruction_list"] == [True, False]
    # strict: prompts 2 of 5 responses; instructions: 1+0 + 2+1 + 0 = 4 of 2*1 + 2*2 + 1 = 7
    assert strict.extra_metrics(problems, s) == {
        "prompt_level_acc": pytest.approx(2 / 5),
        "inst_level_acc": pytest.approx(4 / 7),
    }
    lo = loose.grade(problems, responses)
    assert [[v.correct for v in vs] for vs in lo] == [[True, False], [True, False], [True]]
    assert loose.extra_metrics(problems, lo) == {
        "prompt_level_acc": pytest.approx(3 / 5),
        "inst_level_acc": pytest.approx(5 / 7),
    }


def test_seeded_runs_are_deterministic(strict, rows):
    # key 1122 asks for '#' four times: Google's builder draws a random letter for non-letters
    response = "#sunset #beach #chill #vibes watching the waves tonight"
    first = [_check(strict, rows[1122], response) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    assert first[0][0] is True  # all lowercase


def test_missing_punkt_tab_names_nltk_data_and_the_fix(tmp_path, monkeypatch):
    with pytest.raises(ifeval.IfevalDataError, match=r"NLTK_DATA=\.\./shared/data/ifeval/nltk_data"):
        ifeval.locate_punkt_tab(str(tmp_path))
    monkeypatch.setenv("NLTK_DATA", str(tmp_path))
    with pytest.raises(ifeval.IfevalDataError, match="NLTK_DATA=.*never downloaded"):
        ifeval.locate_punkt_tab()
    with pytest.raises(ifeval.IfevalDataError):
        ifeval.IfevalGrader("strict", nltk_data=str(tmp_path / "absent"))


def test_punkt_tab_found_through_the_environment(nltk_dir, monkeypatch):
    monkeypatch.setenv("NLTK_DATA", nltk_dir)
    assert ifeval.locate_punkt_tab() == nltk_dir


def test_loader_validates_rows(tmp_path):
    good = {"key": 1, "prompt": "Say hi.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(dict(good, key=2, kwargs=[])) + "\n")
    with pytest.raises(ValueError, match=r"in\.jsonl:2: kwargs has 0 entries but instruction_id_list has 1"):
        ifeval.load_ifeval(str(path))
    path.write_text(json.dumps(good) + "\n" + json.dumps({"key": 3, "prompt": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"in\.jsonl:2: missing field 'instruction_id_list'"):
        ifeval.load_ifeval(str(path))
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(ValueError, match="duplicate key 1"):
        ifeval.load_ifeval(str(path))


def test_hub_style_none_kwargs_are_dropped(strict):
    # google/IFEval pads kwargs with None values; they must not reach build_description
    row = {
        "key": 7,
        "prompt": "Answer in lowercase in fewer than 6 words.",
        "instruction_id_list": ["change_case:english_lowercase", "length_constraints:number_words"],
        "kwargs": [
            {"num_words": None, "relation": None},
            {"num_words": 6, "relation": "less than", "keyword": None, "frequency": None},
        ],
    }
    assert _check(strict, row, "this answer is short") == [True, True]  # 4 words
    assert _check(strict, row, "this answer is short and clear") == [True, False]  # 6 words


def test_unknown_instruction_is_a_problem_error(strict):
    row = {"key": 9, "prompt": "x", "instruction_id_list": ["made:up"], "kwargs": [{}]}
    with pytest.raises(ValueError, match=r"unknown instruction id\(s\) \['made:up'\]"):
        strict.grade([row], [["y"]])


def test_registry_entry(rows, nltk_dir):
    from openrlhf_steer_eval.benchmarks import get_benchmark, make_grader

    bench = get_benchmark("ifeval")
    assert bench.graders == ["ifeval_strict", "ifeval_loose"]
    assert (bench.sampling.n, bench.sampling.temperature, bench.sampling.max_tokens) == (1, 0.0, 1280)
    assert bench.problem_id(rows[1001], 0) == "1001"
    assert bench.prompt(rows[1001], PromptOptions(chat=True)) == [{"role": "user", "content": rows[1001]["prompt"]}]
    grader = make_grader("ifeval_loose", GraderConfig(seed=3, options={"nltk_data": nltk_dir}))
    assert grader.name == "ifeval_loose" and grader.seed == 3


def test_hub_loader_offline_error(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(RuntimeError, match="offline, pass Google's input_data.jsonl"):
        ifeval.load_ifeval(None)
