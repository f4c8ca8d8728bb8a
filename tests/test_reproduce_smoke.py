"""`--smoke`: one table row end to end on CPU, then resume.

The row's training command runs through OpenRLHF's own ``train()`` (local Ray, DeepSpeed ZeRO-3 on gloo with
packing and gradient checkpointing, as the recipe sets), 2 rollout steps of a tiny model; then the real eval CLI
with the HF backend on 2 problems per benchmark and the real table assembly.

Stand-ins: the same as ``make e2e``'s, each with its reason in tests/test_openrlhf_e2e.py's docstring (the vLLM
engines and the weight broadcast to them, the CUDA-only calls, the flash_attn / vllm import stubs); the smoke
layout is one logical GPU for the actor and one stand-in engine, not colocated.
"""

import json

import pytest

from steertest_reproduce import REPRODUCE, run_table

from repro_entropy import entropy_series


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
    # training: the printed command ran through OpenRLHF's train(), whose policy actor used our loss
    train_cmd = json.loads((row / "train.done.json").read_text())["command"]
    assert train_cmd[train_cmd.index("--ds.zero_stage") + 1] == "3" and "--ds.packing_samples" in train_cmd
    report = [json.loads(line) for line in (row / "smoke_report.jsonl").read_text().splitlines()]
    actors = [r for r in report if r["event"] == "policy_actor"]
    assert [r["loss_class"] for r in actors] == ["EntropyControlPolicyLoss"]
    assert any(r["event"] == "engine" and not r["deepspeed"] for r in report)
    log = (row / "train.log").read_text()
    lam = entropy_series(log, "controller/pos_adv_lambda")
    assert [s for s, _ in lam] == [1, 2]
    # entropy-guided controller: lambda_0 = 0 during step 1; a random tiny model has entropy >> delta = 0.2, so
    # lambda rises by Delta = 0.05 once per rollout step (the papers' training step), although each rollout makes
    # N = 4 optimizer updates
    assert [round(v, 6) for _, v in lam] == [0.0, 0.05]
    # the tiny model's short warm-up makes some sampled answers right and some wrong: mixed GRPO groups, so the
    # method's loss ran with non-zero advantages (an all-wrong batch would give loss 0 and test nothing)
    rewards, losses = dict(entropy_series(log, "reward")), dict(entropy_series(log, "loss/total"))
    assert any(-1.0 < rewards[s] < 1.0 and losses[s] != 0.0 for s in (1, 2))
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
    # the Entropy column: App. D.3's EMA (0.6) over the logged training entropy of both steps, s2 = 0.6 s1 + 0.4 x2
    entropy = [v for _, v in entropy_series(log, "entropy/current_mean")]
    assert len(entropy) == 2 and result["training_entropy"] == pytest.approx(0.6 * entropy[0] + 0.4 * entropy[1])
    for value in result["scores"].values():
        assert 0.0 <= value["avg@n"] <= value["pass@n"] <= 100.0  # pass@2 >= avg@2 on the same samples
    md = (tmp_path / "posadv_table2.md").read_text()
    assert "SMOKE RUN" in md and "| + Pos-Adv-Reweight (Entropy-guided) |" in md and "/ 45.66 (" in md
    # resume: the finished row is skipped
    code, out, err = run_table(argv)
    assert code == 0 and "[skip] pos_adv_entropy: done" in out


@pytest.mark.slow
def test_smoke_steer_row_reweights_tokens_within_its_bounds(tmp_path, data_dir):
    """STEER Table 1's STEER row (exp mapping, lambda_min 0.7, STEER's strict-box reward) through OpenRLHF's
    train(): the warm-up reply ``Answer: \\boxed{..}`` gives mixed rewards, so Omega is non-zero and the token
    weights move inside [lambda_min, 1] (the exp mapping never exceeds 1)."""
    config = REPRODUCE / "configs" / "steer_table1.yaml"
    argv = ["--config", str(config), "--rows", "steer", "--smoke", "--quiet", "--data-dir", str(data_dir)]
    code, out, err = run_table(argv + ["--output-dir", str(tmp_path)])
    assert code == 0, err + out
    row = tmp_path / "rows" / "steer"
    cmd = json.loads((row / "train.done.json").read_text())["command"]
    assert cmd[cmd.index("--reward.remote_url") + 1].endswith("dapo_math_reward_strict_box.py")
    log = (row / "train.log").read_text()
    rewards = [v for _, v in entropy_series(log, "reward")]
    assert len(rewards) == 2 and any(-1.0 < r < 1.0 for r in rewards)
    w_min = [v for _, v in entropy_series(log, "weights/min")]
    w_max = [v for _, v in entropy_series(log, "weights/max")]
    omega = [v for _, v in entropy_series(log, "method/omega_abs_max")]
    assert all(v >= 0.7 - 1e-6 for v in w_min) and all(v <= 1.0 + 1e-6 for v in w_max)
    assert any(v > 0 for v in omega) and any(v < 1.0 - 1e-3 for v in w_min)
