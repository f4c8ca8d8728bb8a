"""End-to-end checks of `python -m openrlhf_steer.apps.demo` on the quick preset (a few steps, tiny model).

One quick run (run + all three analyses) is shared by the artefact tests; the resume test makes two
more short runs. Everything asserts on the files written.
"""

import json
import math
import shutil
import subprocess
import sys

import pytest
import torch

from openrlhf_steer.apps.demo.__main__ import main
from openrlhf_steer.apps.demo.config import DEFAULT_METHODS, quick_preset
from openrlhf_steer.apps.demo.io import read_jsonl

FORBIDDEN = ("openrlhf", "ray", "deepspeed")
QUICK_STEPS = quick_preset().rl.steps

RUN_SCRIPT = """
import json, sys
from openrlhf_steer.apps.demo.__main__ import main
rc = main(["run", "--quick", "--output-dir", sys.argv[1], "--no-progress"])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {forbidden!r})
print("FORBIDDEN=" + json.dumps(loaded))
sys.exit(rc)
"""


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_quick")
    proc = subprocess.run(
        [sys.executable, "-c", RUN_SCRIPT.format(forbidden=FORBIDDEN), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the single-seed analyses are no longer part of `run`; `analyze all` adds them to the same directory
    assert main(["analyze", "all", "--output-dir", str(out), "--no-progress"]) == 0
    return out, proc.stdout


def _finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value)


def test_demo_never_imports_openrlhf_ray_or_deepspeed(quick_run):
    _, stdout = quick_run
    line = [ln for ln in stdout.splitlines() if ln.startswith("FORBIDDEN=")][-1]
    assert json.loads(line.split("=", 1)[1]) == []


SEEDS = quick_preset().rl_seeds()
CLAIM_KEYS = {"id", "claim", "paper_ref", "statistic", "value", "interval", "held"}


def test_results_table_has_one_row_per_method_plus_start(quick_run):
    out, stdout = quick_run
    results = json.loads((out / "results.json").read_text())
    runs = [r["run"] for r in results["rows"]]
    assert runs == ["start (step 0)"] + DEFAULT_METHODS
    for row in results["rows"]:
        for key in ("heldout_entropy", "avg@n", "pass@1", "pass@4", "distinct_correct"):
            assert _finite(row[key]), (row["run"], key)
        assert 0.0 <= row["pass@1"] <= row["pass@4"] <= 1.0
        assert row["avg@n"] == pytest.approx(row["pass@1"])  # avg@n equals unbiased pass@1
    # each run's row is the mean of its per-seed results
    per_seed = [r for r in results["runs"] if r["run"] == "grpo"]
    assert sorted(r["seed"] for r in per_seed) == SEEDS
    grpo_row = next(r for r in results["rows"] if r["run"] == "grpo")
    assert grpo_row["heldout_entropy"] == pytest.approx(sum(r["heldout_entropy"] for r in per_seed) / len(per_seed))
    md = (out / "results.md").read_text()
    assert md.startswith("# Demo results\n\n## Claims")
    assert md.index("| id | level | claim |") < md.index("| run | seeds |")
    steer = read_jsonl(out / "runs" / "steer_extreme" / f"seed{SEEDS[0]}" / "metrics.jsonl")
    assert all(0.8 - 1e-9 <= r["train/weights/min"] <= 1.0 for r in steer)
    # what exact numbers depend on beyond the config: the versions and torch's CPU kernels of the run
    # (the run is a subprocess of this same interpreter, so it sees the same torch)
    env = results["environment"]
    assert env["versions"]["torch"] == torch.__version__
    assert env["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert f"CPU kernels {torch.backends.cpu.get_cpu_capability()}" in md


def test_claims_list_has_every_claim_with_an_interval_from_the_seed_values(quick_run):
    out, _ = quick_run
    from openrlhf_steer.apps.demo.claims import CLAIMS
    from openrlhf_steer.apps.demo.claims_stats import mean_interval

    from openrlhf_steer.apps.demo.mechanism_claims import MECHANISM_CLAIMS

    listed = json.loads((out / "results.json").read_text())["claims"]
    # the mechanism claims open the table; each claim says its level
    assert [c["id"] for c in listed] == [c.id for c in MECHANISM_CLAIMS] + [c.id for c in CLAIMS]
    assert {c["level"] for c in listed[: len(MECHANISM_CLAIMS)]} == {"mechanism"}
    claims = listed[len(MECHANISM_CLAIMS) :]
    for claim in claims:
        assert CLAIM_KEYS <= set(claim), claim["id"]
        assert claim["held"] in (True, False), claim  # the quick preset runs every claim's runs with 2 seeds
        assert len(claim["per_seed"]) == len(SEEDS)
        interval = mean_interval(claim["per_seed"])
        assert claim["interval"] == pytest.approx([interval.low, interval.high])
        if claim["id"] == "7a":  # fewer distinct answers than the start: the whole interval below 0
            assert claim["held"] == (claim["interval"][1] < 0)
        elif claim["id"].startswith("8-"):  # tracking error: the whole interval below issue 25's 0.15
            assert claim["held"] == (claim["interval"][1] < 0.15), claim["id"]
        elif claim["id"] not in ("1a", "1b", "2a", "3a", "3b", "4"):  # differences claimed > 0 (others: ratios)
            assert claim["held"] == (claim["interval"][0] > 0), claim["id"]
    # the paired claims are differences of the written per-seed results
    results = {(r["run"], r["seed"]): r for r in json.loads((out / "results.json").read_text())["runs"]}
    clip = next(c for c in claims if c["id"] == "2b")
    assert clip["per_seed"] == pytest.approx(
        [results[("clip_higher", s)]["heldout_entropy"] - results[("grpo", s)]["heldout_entropy"] for s in SEEDS]
    )


def test_entropy_change_records_raw_estimates_of_the_first_steps(quick_run):
    out, _ = quick_run
    from openrlhf_steer.core.stats import agreement as agreement_raw

    steps = quick_preset().entropy_change_steps
    for seed in SEEDS:
        rows = read_jsonl(out / "runs" / "grpo" / f"seed{seed}" / "entropy_change.jsonl")
        assert [r["step"] for r in rows] == list(range(steps))
        result = json.loads((out / "runs" / "grpo" / f"seed{seed}" / "result.json").read_text())
        truth = [v for r in rows for v in r["true"]]
        for name in ("omega", "cov"):
            assert len([v for r in rows for v in r[name]]) == len(truth)
            recomputed = agreement_raw([v for r in rows for v in r[name]], truth)
            assert result["entropy_change"][name]["MSE"] == pytest.approx(recomputed["MSE"])
        # every token of each optimizer step is recorded: the rollout's valid tokens, once per step
        metrics = read_jsonl(out / "runs" / "grpo" / f"seed{seed}" / "metrics.jsonl")
        assert len(rows[0]["true"]) == pytest.approx(metrics[0]["train/tokens/valid"] * quick_preset().rl.mini_batches)


def test_heldout_metrics_match_the_written_correctness_counts(quick_run):
    out, _ = quick_run
    from openrlhf_steer_eval.metrics import pass_at_k

    result = json.loads((out / "runs" / "grpo" / f"seed{SEEDS[0]}" / "result.json").read_text())
    held = result["heldout"]
    # avg@n and pass@k are means over problems of c/n and 1 - C(n-c,k)/C(n,k): recover consistency via
    # pass@n >= avg@n and pass@1 == avg@n exactly.
    assert held["pass@1"] == pytest.approx(held["avg@n"])
    assert held["pass@4"] >= held["avg@n"]
    assert pass_at_k(4, 1, 4) == 1.0 and pass_at_k(4, 1, 1) == pytest.approx(1 / 4)
    # distinct correct answers: at most the samples and the prompt's correct answers, 0 when no sample is correct
    from openrlhf_steer.apps.demo.task import get_task

    task = get_task("split")
    _, prompts = task.split(0, 0)
    for problem, count in zip(prompts, held["distinct_correct_per_problem"]):
        assert 0 <= count <= min(held["samples"], task.correct_answers(problem))
    assert held["distinct_correct"] == pytest.approx(sum(held["distinct_correct_per_problem"]) / len(prompts))


def test_metrics_jsonl_one_finite_row_per_step(quick_run):
    out, _ = quick_run
    for name in DEFAULT_METHODS:
        rows = read_jsonl(out / "runs" / name / f"seed{SEEDS[0]}" / "metrics.jsonl")
        assert [r["step"] for r in rows] == list(range(QUICK_STEPS)), name
        for r in rows:
            for key in (
                "reward/mean",
                "accuracy",
                "entropy/rollout",
                "entropy/probe",
                "train/loss/total",
                "train/clip/frac_low",
                "train/weights/mean",
            ):
                assert _finite(r[key]), (name, key)
            assert 0.0 <= r["entropy/probe"] and r["optimizer_steps"] == (r["step"] + 1) * 2
    pos = read_jsonl(out / "runs" / "pos_adv_reweight" / f"seed{SEEDS[0]}" / "metrics.jsonl")
    assert all("controller/pos_adv_lambda" in r for r in pos)


def test_plots_are_written(quick_run):
    out, _ = quick_run
    for name in (
        "entropy_claims.png",
        "entropy_quadrants.png",
        "reward.png",
        "entropy_change.png",
        "diversity.png",
        "analyses/estimator.png",
        "analyses/quadrants.png",
        "analyses/clip_bands.png",
    ):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name


def test_estimator_analysis_json(quick_run):
    out, _ = quick_run
    est = json.loads((out / "analyses" / "estimator.json").read_text())
    assert est["num_tokens"] == len(est["tokens"]) >= 3
    for name in ("omega", "cov", "exact_logit"):
        stats = est["estimators"][name]
        assert -1.0 <= stats["pearson"] <= 1.0 and -1.0 <= stats["spearman"] <= 1.0
        assert stats["mse"] >= 0 and stats["mse_scaled"] <= stats["mse_baseline_zero"] + 1e-15
    for tok in est["tokens"]:
        assert tok["advantage"] != 0.0
        # Omega recomputed from the token's own p, H and A (r = 1 before the step): A (1-p)^2 (log p + H)
        p = tok["prob"]
        assert tok["omega"] == pytest.approx(
            tok["advantage"] * (1 - p) ** 2 * (math.log(p) + tok["entropy"]), rel=1e-6, abs=1e-12
        )
    assert est["nonlinearity"] < 0.2  # the step is small enough for a first-order comparison


def test_quadrant_analysis_json(quick_run):
    out, _ = quick_run
    quad = json.loads((out / "analyses" / "quadrants.json").read_text())
    assert [q["run"] for q in quad["quadrants"]] == ["mask_pos_high", "mask_pos_low", "mask_neg_high", "mask_neg_low"]
    steps = quad["settings"]["steps"]
    assert all(len(curve) == steps for curve in quad["curves"].values())
    for q in quad["quadrants"]:
        diffs = [a - b for a, b in zip(quad["curves"][q["run"]], quad["baseline_entropy"])]
        assert q["mean_minus_baseline"] == pytest.approx(sum(diffs) / len(diffs))
        assert q["moved_as_predicted"] == (
            q["mean_minus_baseline"] * (1 if q["predicted"] == "above baseline" else -1) > 0
        )
    assert quad["moved_as_predicted"] == sum(q["moved_as_predicted"] for q in quad["quadrants"])


def test_clip_band_counts_cover_every_trained_token(quick_run):
    out, _ = quick_run
    bands = json.loads((out / "analyses" / "clip_bands.json").read_text())
    for name, run in bands["runs"].items():
        rows = read_jsonl(out / "analyses" / "clip_bands_runs" / name / "metrics.jsonl")
        mini = bands["settings"]["mini_batches"]
        # each rollout's tokens are trained once, split over `mini` optimizer steps
        trained = sum(r["train/tokens/valid"] * mini for r in rows)
        assert sum(run["counts"]["tokens"]) == pytest.approx(trained)
        assert all(0 <= c <= t for c, t in zip(run["counts"]["clip_low"], run["counts"]["tokens"]))
    assert bands["runs"]["clip_higher"]["loss"]["eps_high"] == pytest.approx(0.28)
    assert bands["runs"]["grpo"]["loss"]["eps_high"] == pytest.approx(0.2)


def test_rerun_skips_finished_work(quick_run):
    out, _ = quick_run
    stamp = {
        p: p.stat().st_mtime_ns
        for p in [out / "start_model" / "model.safetensors", out / "runs" / "grpo" / f"seed{SEEDS[0]}" / "result.json"]
    }
    assert main(["run", "--quick", "--output-dir", str(out), "--no-progress"]) == 0
    assert {p: p.stat().st_mtime_ns for p in stamp} == stamp


def test_interrupted_run_resumes_to_the_uninterrupted_metrics(tmp_path, quick_run):
    common = ["--quick", "--no-progress", "--methods", "grpo,steer", "--rl-steps", "5"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    for out in (straight, resumed):  # reuse the cached SFT checkpoint (same SFT settings => no retraining)
        shutil.copytree(quick_run[0] / "start_model", out / "start_model")
    assert main(["run", "--output-dir", str(straight)] + common) == 0
    # stop after 3 of 5 steps: the checkpoint is at step 2 (save_every 2), so step index 2 is redone
    assert main(["run", "--output-dir", str(resumed), "--stop-after-steps", "3"] + common) == 0
    assert not (resumed / "results.json").exists()
    assert len(read_jsonl(resumed / "runs" / "grpo" / f"seed{SEEDS[0]}" / "metrics.jsonl")) == 3
    assert main(["run", "--output-dir", str(resumed)] + common) == 0
    for name in ("grpo", "steer"):
        for seed in SEEDS:
            a = read_jsonl(straight / "runs" / name / f"seed{seed}" / "metrics.jsonl")
            b = read_jsonl(resumed / "runs" / name / f"seed{seed}" / "metrics.jsonl")
            assert [r["step"] for r in b] == [0, 1, 2, 3, 4]
            strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
            assert strip(a) == strip(b), name
    # the entropy-change rows (steps 0-1 in the quick preset) survive the interruption unchanged
    for seed in SEEDS:
        assert read_jsonl(straight / "runs" / "grpo" / f"seed{seed}" / "entropy_change.jsonl") == read_jsonl(
            resumed / "runs" / "grpo" / f"seed{seed}" / "entropy_change.jsonl"
        )
    ra = json.loads((straight / "results.json").read_text())["rows"]
    rb = json.loads((resumed / "results.json").read_text())["rows"]
    assert [(r["run"], r["avg@n"], r["heldout_entropy"]) for r in ra] == [
        (r["run"], r["avg@n"], r["heldout_entropy"]) for r in rb
    ]


def test_bad_input_names_the_field(tmp_path, capsys):
    assert main(["run", "--quick", "--output-dir", str(tmp_path), "--methods", "grpo,nope", "--no-progress"]) == 2
    assert "--methods" in capsys.readouterr().err
    assert (
        main(["run", "--quick", "--output-dir", str(tmp_path / "b"), "--samples-per-prompt", "1", "--no-progress"]) == 2
    )
    assert "samples_per_prompt" in capsys.readouterr().err


def test_analyze_reuses_the_run_settings_and_keeps_mask_results(quick_run):
    out, _ = quick_run
    model_file = out / "start_model" / "model.safetensors"
    before = (model_file.stat().st_mtime_ns, (out / "analyses" / "quadrants.json").read_text())
    # no --quick here: the settings must come from the output dir's demo_config.json, not the full preset
    assert (
        main(
            [
                "analyze",
                "quadrants",
                "--output-dir",
                str(out),
                "--no-progress",
                "--quadrant-action",
                "upweight",
                "--analysis-steps",
                "1",
            ]
        )
        == 0
    )
    assert (model_file.stat().st_mtime_ns, (out / "analyses" / "quadrants.json").read_text()) == before
    up = json.loads((out / "analyses" / "quadrants_upweight.json").read_text())
    assert up["settings"]["action"] == "upweight" and up["settings"]["steps"] == 1
    assert all(len(c) == 1 for c in up["curves"].values())
    predicted = {q["run"]: q["predicted"] for q in up["quadrants"]}
    assert predicted == {
        "upweight_pos_high": "below baseline",
        "upweight_pos_low": "above baseline",
        "upweight_neg_high": "above baseline",
        "upweight_neg_low": "below baseline",
    }
    assert (out / "analyses" / "quadrants_upweight.png").exists()
