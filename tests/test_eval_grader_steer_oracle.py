"""Oracle test: ``steer_both`` against the STEER authors' own ``compute_score(eval_method="both")`` (zz-haooo/STEER @
b31df71, ``verl/utils/reward_score/multi_datasets_eval.py`` with its vendored ``qwen_math_eval_toolkit``), imported
unmodified in a separate interpreter and run on the same (response, gold) pairs, verdict by verdict.

Their code is never copied into this repository. At test time it is looked for, in this order:
  1. ``$STEER_REF_DIR``: a checkout of their repository at b31df71;
  2. the user cache ``${XDG_CACHE_HOME:-~/.cache}/openrlhf-steer/refs/STEER-b31df71`` (filled by 3 or 4);
  3. exported from ``$STEER_REPO``, a clone or bare mirror (default ``../.mirror/zz-haooo+STEER/repo`` beside
     this checkout), with ``git archive b31df71``;
  4. ``git clone`` of github.com/zz-haooo/STEER, when the network allows.
Skipped, saying why, when none works, or when the interpreter (``$STEER_REF_PYTHON``, default this one) lacks
their grader's packages (sympy, latex2sympy2_extended, regex, word2number, numpy).

The pairs: the hand-derived cases of tests/test_eval_grader_steer_both.py; Qwen2.5-Math's stored MATH outputs
against the raw MATH answers (all 800 when ``$QWEN25_MATH_COT_JSONL`` or ``$QWEN25_MATH_REPO`` has them, else
the committed 64-response sample); and pairs generated from the real test sets' golds, rewritten in each class
where the authors' parser chain matters (``{,}`` thousands, near numbers, ``^\\circ``, ``\\$``, ``\\cfrac``,
mixed numbers, ``\\left( \\right)``, ``\\{ \\}`` sets, ``;``-lists, units), in the response and in the gold.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from openrlhf_steer_eval.benchmarks import get_benchmark
from openrlhf_steer_eval.graders.math import grade_answer
from openrlhf_steer_eval.graders.math_steer import qwen_side_prediction, steer_math_equal

# Their code starts a process per pair: minutes for ~1,000 pairs, so `make test-oracle` runs it, not CI's slow step.
pytestmark = [pytest.mark.slow, pytest.mark.oracle]

REPO_ROOT = Path(__file__).resolve().parent.parent
COMMIT = "b31df71652cd103ddc3512656a430c39ba15dd13"
REWARD_DIR = "verl/utils/reward_score"
GITHUB_URL = "https://github.com/zz-haooo/STEER"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "openrlhf-steer" / "refs" / "STEER-b31df71"
LOCAL_REPO = Path(os.environ.get("STEER_REPO", REPO_ROOT.parent / ".mirror" / "zz-haooo+STEER" / "repo"))
REF_PYTHON = os.environ.get("STEER_REF_PYTHON", sys.executable)
REF_PACKAGES = ("sympy", "latex2sympy2_extended", "regex", "word2number", "numpy")
SAMPLE = REPO_ROOT / "tests" / "data" / "qwen25_math_cot_100_sample.jsonl"
QWEN_COT = "evaluation/data/eval_rm_maj_example/math_cot_100.jsonl"

# Their call, per pair: compute_score(response, gold, eval_method="both"); and their Qwen step on its own (its
# extraction and its 10 s math_equal subprocess), so that it is compared even where DAPO's box already decides.
_RUNNER = r"""
import contextlib, io, json, multiprocessing, re, sys
multiprocessing.set_start_method("fork")  # their math_equal subprocess targets a closure
sys.path.append(sys.argv[1])  # appended, as they do: the folder holds a math.py
from multi_datasets_eval import compute_score
import experience_maker as em

out = open(sys.argv[3], "w")
for line in open(sys.argv[2]):
    job = json.loads(line)
    with contextlib.redirect_stdout(io.StringIO()):
        result = compute_score(job["response"], job["gold"], eval_method="both")
    text = re.sub(r"^.*?<\|im_start\|>assistant", "<|im_start|>assistant", job["response"][-300:], flags=re.DOTALL,
                  count=1)
    for stop in ["</s>", "<|im_end|>", "<|endoftext|>"]:
        if stop in text:
            text = text.split(stop)[0].strip()
    pred = em.qwen_extract_answer(text, data_name="math")
    out.write(json.dumps({"correct": bool(result["acc"]), "dapo": bool(result["dapo_correct"]),
                          "qwen_step": bool(em.qwen_math_equal_subprocess(pred, job["gold"])), "pred": pred}) + "\n")
"""


# ----------------------------------------------------------------------------- finding their code
def _is_reference(folder: Path) -> bool:
    return (folder / REWARD_DIR / "multi_datasets_eval.py").is_file()


def _export(git_dir: Path, dest: Path) -> None:
    """``git archive`` of b31df71's reward_score folder into ``dest``, atomically."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".staging-"))
    try:
        archive = subprocess.run(
            ["git", "--git-dir", str(git_dir), "archive", COMMIT, REWARD_DIR], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(staging)], input=archive, check=True)
        staging.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _git_dir(repo: Path) -> Path:
    return repo / ".git" if (repo / ".git").exists() else repo


def _reference_dir() -> Path:
    """Their code at b31df71, or pytest.skip saying where it was looked for."""
    tried = []
    explicit = os.environ.get("STEER_REF_DIR")
    if explicit:
        if _is_reference(Path(explicit)):
            return Path(explicit)
        tried.append(f"$STEER_REF_DIR={explicit} has no {REWARD_DIR}/multi_datasets_eval.py")
    if _is_reference(CACHE):
        return CACHE
    tried.append(f"cache {CACHE} is empty")
    if LOCAL_REPO.is_dir():
        try:
            _export(_git_dir(LOCAL_REPO), CACHE)
            return CACHE
        except (subprocess.CalledProcessError, OSError) as err:
            tried.append(f"exporting {COMMIT[:7]} from {LOCAL_REPO} failed ({err})")
    else:
        tried.append(f"no clone at {LOCAL_REPO} (set $STEER_REPO)")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run(
                ["git", "clone", "--quiet", "--bare", GITHUB_URL, tmp + "/repo"],
                capture_output=True,
                check=True,
                timeout=120,
                env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},  # fail, never ask for credentials
            )
            _export(Path(tmp) / "repo", CACHE)
            return CACHE
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as err:
            tried.append(f"git clone {GITHUB_URL} failed ({type(err).__name__})")
    pytest.skip("the STEER authors' code at b31df71 is not available: " + "; ".join(tried))


def _check_interpreter() -> None:
    probe = subprocess.run(
        [REF_PYTHON, "-c", "import " + ", ".join(REF_PACKAGES)], capture_output=True, text=True, timeout=120
    )
    if probe.returncode != 0:
        pytest.skip(f"{REF_PYTHON} cannot import their grader's packages {REF_PACKAGES}: {probe.stderr[-300:]}")


# ----------------------------------------------------------------------------- the pairs
def _hand_derived_cases() -> list:
    path = Path(__file__).with_name("test_eval_grader_steer_both.py")
    spec = importlib.util.spec_from_file_location("steer_both_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [{"response": r, "gold": g, "source": "hand"} for r, g, _, _ in module.STEER_CASES + module.VERDICT_CASES]


def _qwen_math_outputs() -> list:
    """Qwen2.5-Math's stored MATH outputs with the raw MATH answers: the full 800 when available, else the sample."""
    lines = None
    path = os.environ.get("QWEN25_MATH_COT_JSONL")
    repo = Path(os.environ.get("QWEN25_MATH_REPO", REPO_ROOT.parent / ".mirror" / "QwenLM+Qwen2.5-Math" / "repo"))
    if path and Path(path).is_file():
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    elif repo.is_dir():
        shown = subprocess.run(
            ["git", "--git-dir", str(_git_dir(repo)), "show", f"HEAD:{QWEN_COT}"], capture_output=True
        )
        if shown.returncode == 0:
            lines = shown.stdout.decode().splitlines()
    if lines:
        return [
            {"response": response, "gold": row["answer"], "source": "qwen_math_800"}
            for row in map(json.loads, lines)
            for response in row["code"]
        ]
    rows = map(json.loads, SAMPLE.read_text(encoding="utf-8").splitlines())
    return [{"response": r["response"], "gold": r["answer"], "source": "qwen_math_sample"} for r in rows]


_INTEGER = re.compile(r"-?\d+")
_SIMPLE_FRACTION = re.compile(r"\\frac\{(\d+)\}\{(\d+)\}")
TEMPLATES = (
    "So the answer is \\boxed{%s}.",
    "The final answer is $%s$. I hope it is correct.",
    "Therefore, the answer is %s",
    "We get $\\boxed{%s}$" + " " * 120,  # outside DAPO's 100-character box window
)


def _rewrites(gold: str) -> list:
    """The gold written as the classes where the authors' parser chain matters."""
    out = [gold + " \\text{ cm}", "x = " + gold]
    plain = gold.replace(",", "").replace("{}", "")
    if _INTEGER.fullmatch(plain):
        n = int(plain)
        out += [f"{n}^\\circ", f"\\${n}", f"{n:,}".replace(",", "{,}"), str(n - 1), str(n + 2)]
    fraction = _SIMPLE_FRACTION.fullmatch(gold)
    if fraction:
        p, q = int(fraction.group(1)), int(fraction.group(2))
        out += [gold.replace("\\frac", "\\cfrac"), repr(p / q * 1.00005), repr(round(p / q, 2))]
        if p > q and p % q:
            out.append(f"{p // q}\\frac{{{p % q}}}{{{q}}}")
    elif "\\frac" in gold:
        out.append(gold.replace("\\frac", "\\cfrac"))
    if gold.startswith("(") and gold.endswith(")"):
        out.append("\\left( " + gold[1:-1] + " \\right)")
    if "," in gold and gold[:1] not in "([{\\":
        out += ["\\{" + gold + "\\}", gold.replace(",", ";")]
    return out


def _generated(data_dir: Path, per_set: int = 20) -> list:
    rng = random.Random(0)
    jobs = []
    for name in ("math500", "minerva_math", "olympiadbench", "aime24", "amc23"):
        problems = get_benchmark(name).load(str(data_dir / name))
        golds = [p["gold_answer"] for p in problems]
        for p in rng.sample(problems, min(per_set, len(problems))):
            gold = p["gold_answer"]
            if isinstance(p.get("solution"), str):
                jobs.append({"response": p["solution"], "gold": gold, "source": name})
            for rewritten in rng.sample(_rewrites(gold), 2) + [rng.choice(golds)]:
                jobs.append({"response": rng.choice(TEMPLATES) % rewritten, "gold": gold, "source": name})
                jobs.append({"response": rng.choice(TEMPLATES) % gold, "gold": rewritten, "source": name})
    return jobs


# ----------------------------------------------------------------------------- the comparison
def _run_theirs(reference: Path, jobs: list, tmp_path: Path, shards: int) -> list:
    (tmp_path / "runner.py").write_text(_RUNNER)
    procs = []
    for k in range(shards):
        (tmp_path / f"jobs{k}.jsonl").write_text("".join(json.dumps(j) + "\n" for j in jobs[k::shards]))
        procs.append(
            subprocess.Popen(
                [
                    REF_PYTHON,
                    str(tmp_path / "runner.py"),
                    str(reference / REWARD_DIR),
                    str(tmp_path / f"jobs{k}.jsonl"),
                    str(tmp_path / f"theirs{k}.jsonl"),
                ],
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for proc in procs:
        _, err = proc.communicate(timeout=7200)
        assert proc.returncode == 0, err[-3000:]
    shards_out = [
        [json.loads(x) for x in (tmp_path / f"theirs{k}.jsonl").read_text().splitlines()] for k in range(shards)
    ]
    return [shards_out[i % shards][i // shards] for i in range(len(jobs))]


def test_verdicts_equal_the_authors_compute_score(data_dir, tmp_path):
    reference = _reference_dir()
    _check_interpreter()
    jobs = _hand_derived_cases() + _qwen_math_outputs() + _generated(data_dir)
    theirs = _run_theirs(reference, jobs, tmp_path, shards=max(1, min(4, os.cpu_count() or 1)))
    assert len(theirs) == len(jobs) > 300
    assert 0 < sum(t["correct"] for t in theirs) < len(jobs)  # both verdicts occur
    differing = []
    for job, t in zip(jobs, theirs):
        ours = grade_answer(job["response"], job["gold"], "steer_both")
        prediction = qwen_side_prediction(job["response"][-300:])
        ours_step = steer_math_equal(prediction, job["gold"])  # their Qwen step, run even where DAPO decides
        mine = {
            "correct": ours.correct,
            "dapo": ours.detail["dapo_correct"],
            "qwen_step": ours_step,
            "pred": prediction,
        }
        if mine != t:
            differing.append(
                {"source": job["source"], "gold": job["gold"], "tail": job["response"][-80:], "theirs": t, "ours": mine}
            )
    by_source = {}
    for job in jobs:
        by_source[job["source"]] = by_source.get(job["source"], 0) + 1
    assert differing == [], f"{len(differing)} of {len(jobs)} differ ({by_source})"
