"""Parity of the ``qwen`` grader with Qwen2.5-Math's evaluation toolkit on responses the toolkit graded itself.

Data: ``evaluation/data/eval_rm_maj_example/math_cot_100.jsonl`` of github.com/QwenLM/Qwen2.5-Math (100 MATH
problems x 8 Qwen2.5-Math responses with the toolkit's extracted ``pred`` and verdict ``score``). The full
file is read at test time from ``$QWEN25_MATH_COT_JSONL`` (the file) or ``$QWEN25_MATH_REPO`` (a clone or
bare mirror of the repository; default ``../.mirror/QwenLM+Qwen2.5-Math/repo`` next to this checkout) and
the test is skipped when neither exists; a 64-response sample is committed (tests/data/README.md).
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from openrlhf_steer_eval.graders.math import grade_answer

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE = REPO_ROOT / "tests" / "data" / "qwen25_math_cot_100_sample.jsonl"
IN_REPO = "evaluation/data/eval_rm_maj_example/math_cot_100.jsonl"


def _full_file_rows():
    path = os.environ.get("QWEN25_MATH_COT_JSONL")
    if path and Path(path).is_file():
        return Path(path).read_text(encoding="utf-8").splitlines()
    repo = Path(os.environ.get("QWEN25_MATH_REPO", REPO_ROOT.parent / ".mirror" / "QwenLM+Qwen2.5-Math" / "repo"))
    if (repo / IN_REPO).is_file():
        return (repo / IN_REPO).read_text(encoding="utf-8").splitlines()
    if repo.is_dir():
        shown = subprocess.run(
            ["git", "--git-dir", str(repo), "show", f"HEAD:{IN_REPO}"], capture_output=True, text=True
        )
        if shown.returncode == 0:
            return shown.stdout.splitlines()
    return None


def _flatten(lines):
    out = []
    for row in map(json.loads, lines):
        for j, (response, pred, score) in enumerate(zip(row["code"], row["pred"], row["score"])):
            out.append(
                {
                    "idx": row["idx"],
                    "sample": j,
                    "answer": row["answer"],
                    "gt": row["gt"],
                    "response": response,
                    "pred": pred,
                    "score": score,
                }
            )
    return out


def _mismatches(rows):
    bad = []
    for r in rows:
        v = grade_answer(r["response"], r["answer"], "qwen")
        if v.extracted != r["pred"] or v.correct != r["score"]:
            bad.append((r["idx"], r["sample"], r["answer"], r["pred"], r["score"], v.extracted, v.correct))
    return bad


def test_committed_sample_matches_the_toolkit():
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 64
    assert sum(not r["score"] for r in rows) == 32  # 24 sampled wrong ones + all 8 of problem 72
    assert _mismatches(rows) == []


def test_gold_ten_thousand_written_with_braces():
    """Problem 72 (gold ``10{,}000``): the toolkit marks every sample wrong, even ``10000``."""
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if r["idx"] == 72]
    assert [r["pred"] for r in rows].count("10000") == 1
    assert [grade_answer(r["response"], r["answer"], "qwen").correct for r in rows] == [False] * 8


def test_all_800_stored_verdicts():
    lines = _full_file_rows()
    if lines is None:
        pytest.skip(
            "Qwen2.5-Math's math_cot_100.jsonl is not available (set QWEN25_MATH_COT_JSONL or QWEN25_MATH_REPO)"
        )
    rows = _flatten(lines)
    assert len(rows) == 800 and sum(r["score"] for r in rows) == 728
    assert _mismatches(rows) == []
