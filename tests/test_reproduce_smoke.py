"""`--smoke`: one table row end to end on CPU (tiny model, 2 training steps on the core PolicyLoss,
the real eval CLI with the HF backend on 2 problems per benchmark, the real table assembly), then resume."""

import json

import pytest

from steertest_reproduce import REPRODUCE, run_table


@pytest.mark.slow
def test_smoke_one_row_end_to_end_and_resume(tmp_path, data_dir):
    config = REPRODUCE / "configs" / "posadv_table2.yaml"
    argv = [
        "--config",
        str(config),
        "--rows",
        "pos_adv_entropy",
        "--smoke",
        "--smoke-steps",
        "2",
        "--quiet",
        "--data-dir",
        str(data_dir),
        "--output-dir",
        str(tmp_path),
    ]
    code, out, err = run_table(argv)
    assert code == 0, err + out
    row = tmp_path / "rows" / "pos_adv_entropy"
    # training: the printed OpenRLHF command was executed by the CPU trainer with the row's method
    log = [json.loads(line) for line in (row / "train.log").read_text().splitlines() if line.startswith("{")]
    assert "PolicyLoss + method 'pos_adv_reweight'" in log[0]["loss_impl"]
    steps = [r for r in log if "step" in r]
    assert [r["step"] for r in steps] == [1, 2]
    # entropy-guided controller: lambda_0 = 0; a random tiny model has entropy >> delta = 0.2, so lambda rises
    # by Delta = 0.05 once per rollout step (the papers' training step), although each rollout makes N = 4 updates
    assert [round(r["controller"]["pos_adv_lambda"], 6) for r in steps] == [0.05, 0.1]
    # the tiny model's short warm-up makes some sampled answers right and some wrong: mixed GRPO groups, so the
    # method's loss ran with non-zero advantages (an all-wrong batch would give loss 0 and test nothing)
    assert any(-1.0 < r["reward_mean"] < 1.0 and r["loss"] != 0.0 for r in steps)
    assert (row / "ckpt" / "global_step1_hf" / "config.json").is_file()
    assert (row / "ckpt" / "global_step2_hf" / "config.json").is_file()
    # selection: the paper's rule (best on AIME 2025) over both smoke checkpoints, then the eval CLI's results
    selection = json.loads((row / "selection.json").read_text())
    assert (
        selection["policy"] == "best"
        and selection["benchmarks"] == ["aime25"]
        and set(selection["scores"]) == {"1", "2"}
    )
    best = max(selection["scores"].values())
    assert selection["step"] == min(int(s) for s, v in selection["scores"].items() if v == best)
    # two eval calls: the math sets graded by the configured Math-Verify, IF-Eval by its own checkers
    math_results = json.loads((row / "eval" / "g0_n2" / "results.json").read_text())
    assert any(k.startswith("aime24/math_verify/avg@2") for k in math_results["metrics"])
    ifeval_results = json.loads((row / "eval" / "g1_n2" / "results.json").read_text())
    assert all(k.startswith("ifeval/") for k in ifeval_results["metrics"])
    result = json.loads((row / "result.json").read_text())
    # every table benchmark except LiveCodeBench (its problems are not in the offline data)
    assert (
        set(result["scores"]) == {"aime24", "aime25", "amc23", "math500", "minerva_math", "ifeval"} and result["smoke"]
    )
    for value in result["scores"].values():
        assert 0.0 <= value["avg@n"] <= value["pass@n"] <= 100.0  # pass@2 >= avg@2 on the same samples
    md = (tmp_path / "posadv_table2.md").read_text()
    assert "SMOKE RUN" in md and "| + Pos-Adv-Reweight (Entropy-guided) |" in md and "/ 45.66 (" in md
    # resume: the finished row is skipped
    code, out, err = run_table(argv)
    assert code == 0 and "[skip] pos_adv_entropy: done" in out
