"""The analysis tables: STEER Figure 2 (estimators against the measured entropy change) and Pos-Adv Tables 1
and 4 (Spearman of training entropy against scores). Expected values are computed by hand or are the papers'
printed numbers."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from steertest_reproduce import REPRODUCE, run_table, train_commands

import repro_correlation_table as corr  # noqa: E402  (reproduce/ is on sys.path via steertest_reproduce)
import repro_estimator_table as est  # noqa: E402
from repro_config import load_config  # noqa: E402

CONFIGS = REPRODUCE / "configs"


# --------------------------------------------------------------------------------------------------
# Figure 2: MSE / PCC / SRCC and the raw estimates
# --------------------------------------------------------------------------------------------------
def test_agreement_hand_computed():
    # x = [0, 1, 2, 10], y = [0, 2, 1, 3]
    # MSE = (0 + 1 + 1 + 49) / 4 = 12.75
    # PCC: dx = [-3.25, -2.25, -1.25, 6.75], dy = [-1.5, 0.5, -0.5, 1.5]; sum dx dy = 14.5, sum dx^2 = 62.75,
    #      sum dy^2 = 5 -> 14.5 / sqrt(313.75)
    # SRCC: ranks [1, 2, 3, 4] and [1, 3, 2, 4], sum d^2 = 2 -> 1 - 6 * 2 / (4 * 15) = 0.8
    got = est.agreement([0.0, 1.0, 2.0, 10.0], [0.0, 2.0, 1.0, 3.0])
    assert got["MSE"] == pytest.approx(12.75)
    assert got["PCC"] == pytest.approx(14.5 / math.sqrt(313.75))
    assert got["SRCC"] == pytest.approx(0.8)
    assert got["n"] == 4


def test_agreement_constant_side_has_no_correlation():
    got = est.agreement([1.0, 1.0, 1.0], [0.1, 0.2, 0.3])
    assert got["MSE"] == pytest.approx((0.81 + 0.64 + 0.49) / 3)
    assert math.isnan(got["PCC"]) and math.isnan(got["SRCC"])


def test_omega_estimate_is_eq7_with_the_learning_rate_and_clip_indicator():
    lp = torch.log(torch.tensor([0.5, 0.5, 0.5, 0.5], dtype=torch.float64))
    # ratios 1, 1, 1.5 (A > 0: clipped above 1 + 0.2), 0.5 (A < 0: clipped below 1 - 0.2)
    old = lp - torch.log(torch.tensor([1.0, 1.0, 1.5, 0.5], dtype=torch.float64))
    h = torch.tensor([1.0, 2.0, 1.0, 1.0], dtype=torch.float64)
    adv = torch.tensor([1.0, -2.0, 1.0, -1.0], dtype=torch.float64)
    got = est.omega_estimate(lp, old, h, adv, lr=1e-6, eps_low=0.2, eps_high=0.2)
    # -eta * A r (1 - p)^2 (log p + H), p = 0.5
    first = -1e-6 * 1.0 * 1.0 * 0.25 * (math.log(0.5) + 1.0)
    second = -1e-6 * -2.0 * 1.0 * 0.25 * (math.log(0.5) + 2.0)
    assert got.tolist() == pytest.approx([first, second, 0.0, 0.0], rel=1e-12, abs=0.0)


def test_cov_estimate_hand_computed_with_and_without_learning_rate():
    lp = torch.log(torch.tensor([0.5, 0.25], dtype=torch.float64))
    adv = torch.tensor([1.0, -1.0], dtype=torch.float64)
    # means: A 0, log p (log .5 + log .25) / 2; cov_t = (A - 0)(log p - mean) = 0.5 * log 2 for both tokens
    cov_t = 0.5 * math.log(2.0)
    assert est.cov_estimate(lp, adv).tolist() == pytest.approx([-cov_t, -cov_t])
    assert est.cov_estimate(lp, adv, lr=1e-6).tolist() == pytest.approx([-1e-6 * cov_t, -1e-6 * cov_t])


def test_estimates_are_raw_ten_times_the_learning_rate_gives_the_expected_mse():
    lp = torch.log(torch.tensor([0.9, 0.5, 0.2, 0.05], dtype=torch.float64))
    h = torch.tensor([0.5, 1.0, 1.5, 2.0], dtype=torch.float64)
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    truth = np.array([2e-6, -1e-6, 3e-6, 5e-6])
    x1 = est.omega_estimate(lp, lp, h, adv, 1e-6, 0.2, 0.2).numpy()
    x10 = est.omega_estimate(lp, lp, h, adv, 1e-5, 0.2, 0.2).numpy()
    np.testing.assert_allclose(x10, 10 * x1, rtol=1e-12)
    # no fitted scale: MSE(10 x, y) = mean(100 x^2 - 20 x y + y^2), from the unscaled values
    expected = float(np.mean(100 * x1**2 - 20 * x1 * truth + truth**2))
    assert est.agreement(x10, truth)["MSE"] == pytest.approx(expected, rel=1e-9)
    # and the table takes the stored estimates as they are: an estimate 10x the truth scores MSE = 81 mean(y^2)
    config = load_config(CONFIGS / "steer_figure2.yaml")
    spec = est.EstimatorSpec.from_config(config)
    arrays = {"omega": 10 * truth, "cov": truth, "cov_lr": 1e-6 * truth, "delta_entropy": truth}
    table = est.build_table(config, {"Qwen/Qwen2.5-Math-1.5B": arrays}, spec)
    rows = [r for r in table["rows"] if r["model"] == "Qwen/Qwen2.5-Math-1.5B"]
    ours = next(r["ours"] for r in rows if r["estimator"] == "omega")
    assert ours["MSE"] == pytest.approx(81 * float(np.mean(truth**2)))
    assert ours["PCC"] == pytest.approx(1.0)


def test_paper_format_prints_as_figure2():
    assert est.paper_format("MSE", 5.37) == "5.37"
    assert est.paper_format("MSE", 0.0005) == "5e-4"
    assert est.paper_format("MSE", 0.00081) == "8e-4"
    assert est.paper_format("PCC", -6.0e-05) == "-6e-5"
    assert est.paper_format("PCC", 0.42) == "+0.42"
    assert est.paper_format("SRCC", 0.04) == "+0.04"
    assert est.paper_format("SRCC", -0.1049) == "-0.10"


def test_figure2_config_printed_strings_match_the_numbers():
    config = load_config(CONFIGS / "steer_figure2.yaml")
    for row in config.analysis_rows:
        for metric in est.METRICS:
            assert est.paper_format(metric, row["paper"][metric]) == str(row["printed"][metric])


# --------------------------------------------------------------------------------------------------
# Tables 1 and 4: Spearman
# --------------------------------------------------------------------------------------------------
def test_spearman_hand_computed():
    # no ties: d = [1, -1, 1, -1, 0], sum d^2 = 4 -> 1 - 6 * 4 / (5 * 24) = 0.8
    assert corr.spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    # ties: ranks y = [1.5, 1.5, 3, 4]; sum dx dy = 4.5, sum dx^2 = 5, sum dy^2 = 4.5 -> 4.5 / sqrt(22.5)
    assert corr.spearman([1, 2, 3, 4], [1, 1, 2, 3]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert corr.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert corr.spearman([1, 2], [1, 2]) is None
    assert corr.spearman([1, 2, 3], [5, 5, 5]) is None


@pytest.mark.parametrize("table", ["posadv_table1", "posadv_table4"])
def test_runs_reproduce_the_printed_coefficients_from_the_papers_own_cells(table):
    """The pooling of the runs section: Spearman over the listed runs' printed cells (Tables 2, 3, 5) gives every
    coefficient the paper prints (5 decimals)."""
    config = load_config(CONFIGS / f"{table}.yaml")
    refs = corr.run_refs(config)
    assert len(refs) == {"posadv_table1": 29, "posadv_table4": 6}[table]
    got = corr.correlations(config, corr.paper_points(config, refs))
    for row in config.analysis_rows:
        for metric, printed in zip(config.metrics, row["paper"]):
            assert round(got[row["benchmark"]][metric], 5) == pytest.approx(printed, abs=1e-9), (
                row["benchmark"],
                metric,
            )


def test_run_refs_are_validated(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("runs:\n- value: posadv_table5\n  source: x\n")
    with pytest.raises(ValueError, match="<table>:<row>"):
        corr.run_refs(SimpleNamespace(path=bad))
    bad.write_text("runs:\n- value: posadv_table5:grpo_n1\n")
    with pytest.raises(ValueError, match="source"):
        corr.run_refs(SimpleNamespace(path=bad))


# --------------------------------------------------------------------------------------------------
# --smoke end to end (slow)
# --------------------------------------------------------------------------------------------------
def _smoke(config, tmp_path, data_dir):
    code, out, err = run_table(
        [
            "--config",
            str(CONFIGS / f"{config}.yaml"),
            "--smoke",
            "--quiet",
            "--data-dir",
            str(data_dir),
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert code == 0, err + out
    return json.loads((tmp_path / f"{config}.json").read_text())


@pytest.mark.slow
def test_smoke_figure2_end_to_end(tmp_path, data_dir):
    table = _smoke("steer_figure2", tmp_path, data_dir)
    assert table["smoke"] and len(table["rows"]) == 6
    npz = np.load(tmp_path / "models" / "Qwen_Qwen2.5-Math-1.5B" / "tokens.npz")
    # 3 rollout steps of 2 prompts, one optimizer step per prompt: every step's tokens are recorded
    assert sorted(set(npz["step"].tolist())) == [1.0, 2.0, 3.0]
    assert np.all(np.isfinite(npz["delta_entropy"])) and np.any(npz["delta_entropy"] != 0)
    # the stored Omega is STEER Eq. 7 with the run's eta, recomputed here from the stored token values; r is the
    # ratio to the rollout policy (1 on a step's first mini-batch, not after it), I_clip from Eq. 6 with eps 0.2
    p, r, a = npz["prob"], npz["ratio"], npz["advantage"]
    assert np.any(np.abs(r - 1) > 1e-9) and np.all(np.abs(r[npz["step"] == 1][:4] - 1) < 1e-9)
    kept = ~(((a > 0) & (r > 1.2)) | ((a < 0) & (r < 0.8)))
    expected = -1e-6 * kept * a * r * (1 - p) ** 2 * (np.log(p) + npz["entropy"])
    np.testing.assert_allclose(npz["omega"], expected, rtol=1e-9, atol=1e-20)
    row = next(r for r in table["rows"] if r["estimator"] == "omega")
    assert row["ours"]["MSE"] == pytest.approx(float(np.mean((npz["omega"] - npz["delta_entropy"]) ** 2)))
    assert (tmp_path / "steer_figure2.md").read_text().count("| Qwen-") == 6
    assert (tmp_path / "steer_figure2.png").stat().st_size > 0
    # resume: a second run skips the measured models
    code, out, _ = run_table(
        [
            "--config",
            str(CONFIGS / "steer_figure2.yaml"),
            "--smoke",
            "--quiet",
            "--data-dir",
            str(data_dir),
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert code == 0 and out.count(": done (") == 3


# Table 4 only: Table 1 runs the same code on other source rows (its smoke plan is checked without training below);
# each smoke run trains through OpenRLHF's train(), about 40 s per source row.
@pytest.mark.slow
@pytest.mark.parametrize("config", ["posadv_table4"])
def test_smoke_correlation_end_to_end(config, tmp_path, data_dir):
    table = _smoke(config, tmp_path, data_dir)
    assert table["smoke"] and len(table["points"]) == corr.SMOKE_RUNS
    for point in table["points"]:
        assert point["entropy"] is not None and point["entropy"] > 0
        assert {"aime24", "math500", "ifeval"} <= set(point["scores"])  # LiveCodeBench is not in the offline data
        assert set(point["scores"]["aime24"]) == {"avg@n", "pass@n"}
    expected = [r["benchmark"] for r in load_config(CONFIGS / f"{config}.yaml").analysis_rows]
    assert [r["benchmark"] for r in table["rows"]] == expected
    assert (tmp_path / f"{config}.png").stat().st_size > 0


def test_entropy_series_and_ema_at_a_checkpoint(tmp_path):
    src = load_config(CONFIGS / "posadv_table5.yaml")  # training_entropy: EMA 0.6 of entropy/current_mean
    row = tmp_path / "row"
    row.mkdir()
    (row / "train.log").write_text(
        "Global step 1: {'entropy/current_mean': 1.0, 'x': 2}\nnoise\n"
        "Global step 2: {'entropy/current_mean': 0.5}\nGlobal step 3: {'entropy/current_mean': 0.25}\n"
    )
    series = corr.entropy_series_of(row, src)
    assert series == [(1, 1.0), (2, 0.5), (3, 0.25)]
    # s1 = 1.0; s2 = 0.6 * 1.0 + 0.4 * 0.5 = 0.8; s3 = 0.6 * 0.8 + 0.4 * 0.25 = 0.58
    assert corr.entropy_at(series, src, 2) == pytest.approx(0.8)
    assert corr.entropy_at(series, src) == pytest.approx(0.58)
    # Ray's prefix before OpenRLHF's logger line; a resumed run's repeated step keeps its last value
    (row / "train.log").write_text(
        "(SteerPPOTrainer pid=1) INFO ppo_trainer.py:551] Global step 1: {'entropy/current_mean': 2.0}\n"
        "(SteerPPOTrainer pid=1) INFO ppo_trainer.py:551] Global step 2: {'entropy/current_mean': 9.0}\n"
        "(SteerPPOTrainer pid=2) INFO ppo_trainer.py:551] Global step 2: {'entropy/current_mean': 1.0}\n"
    )
    assert corr.entropy_at(corr.entropy_series_of(row, src), src) == pytest.approx(0.6 * 2.0 + 0.4 * 1.0)
    assert set(corr.POINT_COLLECTORS) == set(corr.POINT_TEXT) == {"runs", "checkpoints"}


def _measure(model_dir, micro_batch, checkpointing, step_log=None):
    base = est.EstimatorSpec(
        steps=1,
        lr=1e-3,
        prompts_per_step=2,
        samples_per_prompt=4,
        mini_batch_prompts=2,
        micro_batch=micro_batch,
        rollout_prompts=2,
        eps_low=0.2,
        eps_high=0.2,
        max_new_tokens=6,
        temperature=1.0,
        top_p=1.0,
        weight_decay=0.0,
        grad_clip=0.0,
        seed=0,
        dtype="float64",
        cov_learning_rate=False,
        apply_chat_template=True,
        gradient_checkpointing=checkpointing,
    )
    policy = est.load_policy(str(model_dir), base)
    chats = [[{"role": "user", "content": q}] for q in ("1+1=", "2*3=")]
    prompts = [(policy.tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True), "1") for c in chats]
    calls = iter(range(10_000))
    reward = lambda prompt, completion, label: float(next(calls) % 2)  # mixed groups: 1, 0, 1, 0, ...
    return est.measure_model(policy, prompts, reward, base, progress=False, step_log=step_log)


def test_measurement_does_not_depend_on_the_micro_batch_split(tmp_path):
    """One optimizer step (the mini-batch is the whole rollout): splitting it into 8 micro-batches
    of one sequence with gradient checkpointing must give the same tokens, the same measured changes and the same
    estimates as one micro-batch of 8 (the loss is a token-mean over the whole mini-batch)."""
    from steertest_evalmodel import build_tiny_model

    model_dir = build_tiny_model(tmp_path / "tiny-qwen2")
    logged = []
    whole = _measure(model_dir, micro_batch=8, checkpointing=False, step_log=logged)
    split = _measure(model_dir, micro_batch=1, checkpointing=True)
    # the GRPO steps run on the shared step runtime: one logged row per rollout step, over the measured tokens
    assert len(logged) == 1 and logged[0]["step"] == 1
    assert logged[0]["tokens/valid"] == whole["delta_entropy"].size
    np.testing.assert_allclose(logged[0]["entropy/sampled_nll"], -np.log(whole["prob"]).mean(), rtol=1e-6)
    np.testing.assert_allclose(logged[0]["ratio/mean"], 1.0, rtol=1e-9)
    assert whole["delta_entropy"].size > 8 and set(whole["step"].tolist()) == {1.0}
    assert np.any(whole["advantage"] != 0) and np.any(whole["delta_entropy"] != 0)
    for key in est.COLUMNS:
        np.testing.assert_allclose(split[key], whole[key], rtol=1e-7, atol=1e-12, err_msg=key)
    # one update per rollout step: the ratio is 1 up to rounding, so Omega = -eta A (1 - p)^2 (log p + H)
    p = whole["prob"]
    expected = -1e-3 * whole["advantage"] * (1 - p) ** 2 * (np.log(p) + whole["entropy"])
    np.testing.assert_allclose(whole["omega"], expected, rtol=1e-9, atol=1e-15)


def test_dry_runs_print_the_plan_and_rows_select_models_or_runs(tmp_path):
    code, out, err = run_table(
        [
            "--config",
            str(CONFIGS / "steer_figure2.yaml"),
            "--dry-run",
            "--rows",
            "Qwen/Qwen2.5-7B",
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert code == 0, err
    plan = [line for line in out.splitlines() if line.startswith("[estimator]")]
    assert len(plan) == 1 and "Qwen/Qwen2.5-7B: 10 GRPO steps x 512 prompts x 8 samples, 16 optimizer steps" in plan[0]
    assert "lr 1e-06" in plan[0] and not list(tmp_path.iterdir())  # nothing run, nothing written
    code, _, err = run_table(["--config", str(CONFIGS / "steer_figure2.yaml"), "--dry-run", "--rows", "gpt2"])
    assert code == 2 and "not models of steer_figure2" in err
    code, out, err = run_table(
        [
            "--config",
            str(CONFIGS / "posadv_table4.yaml"),
            "--dry-run",
            "--rows",
            "posadv_table5:grpo_n4",
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert code == 0, err
    assert "[runs] 1 trained runs" in out and "== posadv_table5 / grpo_n4" in out and "grpo_n1" not in out


def test_smoke_dry_run_of_table1_trains_its_first_three_source_runs(tmp_path, data_dir):
    config = str(CONFIGS / "posadv_table1.yaml")
    code, out, err = run_table(
        ["--config", config, "--dry-run", "--smoke", "--data-dir", str(data_dir), "--output-dir", str(tmp_path)]
    )
    assert code == 0, err
    cmds = train_commands(out)
    assert len(cmds) == corr.SMOKE_RUNS == 3
    expected = [r.row for r in corr.run_refs(load_config(CONFIGS / "posadv_table1.yaml"))[:3]]
    assert [c[c.index("--ckpt.path") + 1].split("/")[-2] for c in cmds] == expected
    assert all(c[c.index("--actor.num_gpus_per_node") + 1] == "1" for c in cmds)
