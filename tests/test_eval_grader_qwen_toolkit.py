"""Differential test: the ``qwen`` grader, and ``steer_both``'s extraction with ``math_qwen.math_equal`` called as
STEER calls it, against Qwen2.5-Math's evaluation toolkit itself (``evaluation/parser.py``, ``grader.py`` and its
vendored ``latex2sympy``), run in its own interpreter. (``steer_both`` itself parses as the STEER authors'
environment does, not as this toolkit: tests/test_eval_grader_steer_oracle.py checks it against their code.)

Needs, at test time: ``$QWEN_TOOLKIT_PYTHON``, a Python with the toolkit's requirements (sympy 1.12,
antlr4-python3-runtime 4.11.1, word2number, regex, numpy), and the toolkit's source from ``$QWEN25_MATH_REPO``
(a clone or bare mirror of github.com/QwenLM/Qwen2.5-Math; default ``../.mirror/QwenLM+Qwen2.5-Math/repo``).
Skipped otherwise. The pairs are built from the real test sets: reference solutions, and boxed / "the answer is" /
Minerva-style responses holding the gold, rewritten golds (``\\dfrac``, ``x =``, units, a near number, gold/100)
or another problem's gold.
"""

import json
import os
import random
import subprocess
from pathlib import Path

import pytest

from openrlhf_steer_eval.benchmarks import get_benchmark
from openrlhf_steer_eval.graders.math import grade_answer
from openrlhf_steer_eval.graders.math_qwen import math_equal
from openrlhf_steer_eval.graders.math_steer import qwen_side_prediction

REPO_ROOT = Path(__file__).resolve().parent.parent
TOOLKIT_PYTHON = os.environ.get("QWEN_TOOLKIT_PYTHON")
TOOLKIT_REPO = Path(os.environ.get("QWEN25_MATH_REPO", REPO_ROOT.parent / ".mirror" / "QwenLM+Qwen2.5-Math" / "repo"))
pytestmark = pytest.mark.skipif(
    not TOOLKIT_PYTHON or not TOOLKIT_REPO.is_dir(),
    reason="set QWEN_TOOLKIT_PYTHON (and QWEN25_MATH_REPO) to run the toolkit itself",
)
DATA_NAMES = {
    "math500": "math",
    "minerva_math": "minerva_math",
    "olympiadbench": "olympiadbench",
    "aime24": "aime24",
    "amc23": "amc23",
}
TEMPLATES = (
    "So the answer is \\boxed{%s}.",
    "The final answer is $%s$. I hope it is correct.",
    "Therefore, the answer is %s",
    "We get $\\boxed{%s}$",
)

# The toolkit's evaluation path: math_eval.py (extraction, run_execute's second strip_string, parse_ground_truth,
# the choice fix-ups) and evaluate.py (math_equal, 3 s); then the STEER authors' call (data_name "math", the
# gold as given, 10 s) on the last 300 characters.
_RUNNER = r"""
import json, signal, sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/latex2sympy"]
from grader import math_equal
from parser import extract_answer, strip_string, STRIP_EXCEPTIONS, choice_answer_clean

class Late(BaseException):
    pass

def _late(*_):
    raise Late()

signal.signal(signal.SIGALRM, _late)

def limited(seconds, f, *args):
    signal.alarm(seconds)
    try:
        return bool(f(*args))
    except (Late, Exception):
        return False
    finally:
        signal.alarm(0)

out = open(sys.argv[3], "w")
for line in open(sys.argv[2]):
    job = json.loads(line)
    response, gold, data = job["response"], job["gold"], job["data_name"]
    pred = strip_string(extract_answer(response, data), skip_unit=data in STRIP_EXCEPTIONS)
    gt = strip_string(gold, skip_unit=data in STRIP_EXCEPTIONS)
    if gt in ["A", "B", "C", "D", "E"] and pred not in ["A", "B", "C", "D", "E"]:
        pred = choice_answer_clean(response)
    elif all(c in "ABCDE" for c in gt) and not all(c in "ABCDE" for c in pred):
        pred = "".join(c for c in pred if c in "ABCDE")
    steer_pred = extract_answer(response[-300:], "math")
    out.write(json.dumps({"pred": pred, "score": limited(3, math_equal, pred, gt), "steer_pred": steer_pred,
                          "steer_score": limited(10, math_equal, steer_pred, gold)}) + "\n")
"""


def _export_toolkit(dest: Path) -> Path:
    """evaluation/*.py and evaluation/latex2sympy/** (no data) from a checkout or a bare mirror."""
    evaluation = dest / "evaluation"
    if (TOOLKIT_REPO / "evaluation" / "grader.py").is_file():
        files = [p.relative_to(TOOLKIT_REPO).as_posix() for p in (TOOLKIT_REPO / "evaluation").rglob("*.py")]

        def read(rel):
            return (TOOLKIT_REPO / rel).read_bytes()
    else:
        git = ["git", "--git-dir", str(TOOLKIT_REPO)]
        listing = subprocess.run(
            git + ["ls-tree", "-r", "--name-only", "HEAD", "evaluation"], capture_output=True, text=True, check=True
        ).stdout.split()
        files = [f for f in listing if f.endswith(".py") and not f.startswith("evaluation/data/")]

        def read(rel):
            return subprocess.run(git + ["show", f"HEAD:{rel}"], capture_output=True, check=True).stdout

    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read(rel))
    return evaluation


def _variants(gold: str, others: list, rng: random.Random) -> list:
    out = [gold, gold.replace("\\frac", "\\dfrac"), "x = " + gold, gold + " \\text{ cm}", rng.choice(others)]
    try:
        x = float(gold.replace(",", ""))
        out += [repr(x * 1.00005), repr(x / 100), repr(x + 1)]
    except ValueError:
        pass
    return out


def _jobs(data_dir: Path, per_set: int = 60) -> list:
    rng = random.Random(0)
    jobs = []
    for name, data_name in DATA_NAMES.items():
        problems = get_benchmark(name).load(str(data_dir / name))
        golds = [p["gold_answer"] for p in problems]
        for p in rng.sample(problems, min(per_set, len(problems))):
            base = {"gold": p["gold_answer"], "data_name": data_name, "keep_units": bool(p.get("keep_units"))}
            if isinstance(p.get("solution"), str):
                jobs.append({**base, "response": p["solution"]})
            for v in rng.sample(_variants(p["gold_answer"], golds, rng), 2):
                jobs.append({**base, "response": rng.choice(TEMPLATES) % v})
    return jobs


def test_verdicts_equal_the_toolkits(data_dir, tmp_path):
    jobs = _jobs(data_dir)
    (tmp_path / "jobs.jsonl").write_text("".join(json.dumps(j) + "\n" for j in jobs))
    (tmp_path / "runner.py").write_text(_RUNNER)
    evaluation = _export_toolkit(tmp_path / "toolkit")
    proc = subprocess.run(
        [
            TOOLKIT_PYTHON,
            str(tmp_path / "runner.py"),
            str(evaluation),
            str(tmp_path / "jobs.jsonl"),
            str(tmp_path / "theirs.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    theirs = [json.loads(line) for line in (tmp_path / "theirs.jsonl").read_text().splitlines()]
    assert len(theirs) == len(jobs) > 500
    assert 0 < sum(t["score"] for t in theirs) < len(jobs)  # both verdicts occur
    differing = []
    for job, t in zip(jobs, theirs):
        ours = grade_answer(job["response"], job["gold"], "qwen", keep_units=job["keep_units"])
        steer_pred = qwen_side_prediction(job["response"][-300:])  # steer_both's Qwen step, run even where
        steer_ok = math_equal(steer_pred, job["gold"])  # DAPO's strict box already decides
        expected = (t["pred"], t["score"], t["steer_pred"], t["steer_score"])
        if (ours.extracted, ours.correct, steer_pred, steer_ok) != expected:
            differing.append((job["gold"], job["response"][-80:], t, ours.extracted, ours.correct, steer_ok))
    assert differing == []
