"""`--dry-run` of every table: every printed training command passes OpenRLHF's own parser and validation
(``openrlhf_steer.integration.check_args``) and carries the config's recipe and method options."""

import json

import pytest

from steertest_reproduce import CONFIGS, run_table, train_commands

from repro_config import load_config  # noqa: E402
from repro_pipeline import context_model_dir  # noqa: E402


def launcher_argv(cmd):
    assert cmd[1:3] == ["-m", "openrlhf_steer.apps.train"], cmd[:3]
    return cmd[3:]


@pytest.fixture(scope="module")
def check_args():
    from openrlhf_steer.integration import check_args as _check

    return _check


RESULTS = [p for p in CONFIGS if load_config(p).kind == "results"]


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.stem)
def test_every_training_command_passes_openrlhf_parser(path, tmp_path, check_args):
    cfg = load_config(path)
    code, out, err = run_table(["--config", str(path), "--dry-run", "--output-dir", str(tmp_path)])
    assert code == 0, err
    cmds = train_commands(out)
    runs = [row for row in cfg.rows if row.trains]
    assert len(cmds) == len(runs)
    assert out.count("[data] ") == len(runs)
    assert not any(tmp_path.iterdir()), "a dry run must not create anything"
    for row, cmd in zip(runs, cmds):
        args = check_args(launcher_argv(cmd))
        recipe = cfg.recipe_for(row)
        expected_model = recipe["model"]
        if recipe.get("max_position_embeddings"):  # trains from the extended-context copy (reproduce/prepare_model.py)
            expected_model = str(
                context_model_dir(recipe["model"], recipe["max_position_embeddings"], tmp_path.resolve() / "models")
            )
        assert args.actor.model_name_or_path == expected_model
        assert args.rollout.batch_size == recipe["prompts_per_rollout"]
        assert args.rollout.n_samples_per_prompt == recipe["samples_per_prompt"]
        if "updates_per_rollout" in recipe:
            expected_batch = (
                recipe["prompts_per_rollout"] // recipe["updates_per_rollout"] * recipe["samples_per_prompt"]
            )
        else:
            expected_batch = recipe["mini_batch_prompts"] * recipe["samples_per_prompt"]
        assert args.train.batch_size == expected_batch
        assert list(args.actor.eps_clip_low_high) == [recipe["eps_clip_low"], recipe["eps_clip_high"]]
        if "max_rollout_steps" in recipe:  # STEER: <= 150 rollout steps of 512 prompts over 17,398 prompts: 5 passes
            assert args.train.num_episodes == -(
                -recipe["max_rollout_steps"] // (17398 // recipe["prompts_per_rollout"])
            )
        else:
            assert args.train.num_episodes == recipe["epochs"]
        assert args.actor.adam.lr == recipe["lr"] and args.actor.lr_scheduler == recipe["lr_scheduler"]
        assert args.rollout.max_new_tokens == recipe["max_response_len"]
        assert args.data.max_len == recipe["max_prompt_len"] + recipe["max_response_len"]
        assert args.algo.kl.init_coef == 0.0
        # STEER trains on the authors' strict-box DAPO reward, Pos-Adv on the Answer:-line rule
        expected_reward = "dapo_math_reward_strict_box.py" if path.stem.startswith("steer") else "dapo_math_reward.py"
        assert [str(u).rsplit("/", 1)[-1] for u in args.reward.remote_url] == [expected_reward]
        assert args.train.seed == recipe["seed"]
        spec = json.loads(args.entropy_spec)
        assert spec["methods"] == [[row.method, row.option_values()]]


def test_rows_and_layout_flags(tmp_path, check_args):
    path = next(p for p in CONFIGS if p.stem == "steer_table1")
    code, out, err = run_table(
        [
            "--config",
            str(path),
            "--dry-run",
            "--rows",
            "steer,grpo",
            "--gpus",
            "8",
            "--nodes",
            "2",
            "--vllm-tp",
            "4",
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert code == 0, err
    cmds = train_commands(out)
    assert len(cmds) == 2  # one run per row: the text reports no seeds
    assert "== steer_table1 / grpo" in out and "== steer_table1 / steer" in out
    assert "clip_high" not in out
    args = check_args(launcher_argv(cmds[1]))
    assert "/rows/steer/ckpt" in args.ckpt.path
    assert (args.actor.num_nodes, args.actor.num_gpus_per_node) == (2, 8)
    assert (args.vllm.num_engines, args.vllm.tensor_parallel_size) == (4, 4)
    # App. E.2: the checkpoints (every 10 steps; from step 80, the authors' save_after) up to step 150 are scored on
    # AIME24 (avg@32); the best is tested
    assert (
        "for every <STEP> >= 80 and <= 150 with a saved checkpoint (every 10)" in out
        and "--benchmarks aime24 --n 32" in out
    )
    # the final evaluation is split by sample count: avg@32 sets and avg@1 sets, both graders; the prompts of the
    # authors' eval files: DAPO's instruction on AIME24/AIME25/AMC23 (selection too), the bare question elsewhere
    assert (
        out.count("--benchmarks aime24,aime25,amc23 --n 32") == 2
        and out.count("--benchmarks math500,minerva_math,olympiadbench --n 1") == 2
    )
    assert out.count("--prompt-template dapo --graders steer_both,math_verify") == 4
    assert out.count("--prompt-template question --graders steer_both,math_verify") == 2


def test_released_rows_are_evaluated_once_without_training(tmp_path):
    path = next(p for p in CONFIGS if p.stem == "steer_table1")
    code, out, err = run_table(
        ["--config", str(path), "--dry-run", "--rows", "simplerl_zoo,base", "--output-dir", str(tmp_path)]
    )
    assert code == 0, err
    assert train_commands(out) == [] and "[data]" not in out
    assert out.count("[eval] ") == 4 and "--model hkust-nlp/Qwen-2.5-Math-7B-SimpleRL-Zoo" in out
    assert "--model Qwen/Qwen2.5-Math-7B" in out


def test_bad_flags_give_clear_errors(tmp_path):
    path = RESULTS[0]
    code, out, err = run_table(["--config", str(path), "--dry-run", "--rows", "nope", "--output-dir", str(tmp_path)])
    assert code == 2 and "unknown row(s) ['nope']" in err
    code, out, err = run_table(["--config", str(path), "--dry-run", "--vllm-tp", "3", "--output-dir", str(tmp_path)])
    assert code == 2 and "--vllm-tp=3" in err
    code, out, err = run_table(["--config", str(tmp_path / "missing.yaml"), "--dry-run"])
    assert code == 2 and "does not exist" in err


def test_smoke_dry_run_prints_the_cpu_pipeline_and_creates_nothing(tmp_path, data_dir):
    path = next(p for p in CONFIGS if p.stem == "posadv_table2")
    code, out, err = run_table(
        [
            "--config",
            str(path),
            "--dry-run",
            "--smoke",
            "--data-dir",
            str(data_dir),
            "--rows",
            "grpo_n4,rand_pos_clip",
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert code == 0, err
    assert not any(tmp_path.iterdir())
    cmds = train_commands(out)
    assert len(cmds) == 2 and all(
        "--rollout.max_new_tokens" in c and c[c.index("--rollout.max_new_tokens") + 1] == "16" for c in cmds
    )
    assert "--backend hf" in out and "--limit 2" in out and "livecodebench" not in out.split("[eval]")[-1]
    # the layout OpenRLHF's train() gets on CPU: one actor GPU, one stand-in engine, nothing colocated
    for c in cmds:
        assert c[c.index("--actor.num_gpus_per_node") + 1] == "1" and c[c.index("--vllm.num_engines") + 1] == "1"
        assert "--train.colocate_all" not in c and "--vllm.enable_sleep" not in c
    # 2 smoke steps over 8 prompts of 4 per rollout step: one episode
    assert all(c[c.index("--train.num_episodes") + 1] == "1" for c in cmds)


def test_reading_flag_switches_every_baseline_and_names_bad_input(tmp_path, check_args):
    """--reading baseline_clip=authors_scripts gives the authors' run_exp.sh clip (0.2 / 0.28, dual clip 10) to every
    trained row of STEER Table 1; the default is App. D.2's 0.2 / 0.2. A malformed or unknown reading stops with 2."""
    path = next(p for p in CONFIGS if p.stem == "steer_table1")
    clips = {}
    for reading, expected in (([], [0.2, 0.2]), (["--reading", "baseline_clip=authors_scripts"], [0.2, 0.28])):
        code, out, err = run_table(["--config", str(path), "--dry-run", "--output-dir", str(tmp_path), *reading])
        assert code == 0, err
        parsed = [check_args(launcher_argv(cmd)) for cmd in train_commands(out)]
        clips[tuple(reading)] = {tuple(a.actor.eps_clip_low_high) for a in parsed}
        assert clips[tuple(reading)] == {tuple(expected)}
        assert {a.actor.dual_clip for a in parsed} == {10.0}
    code, _, err = run_table(["--config", str(path), "--dry-run", "--reading", "baseline_clip"])
    assert code == 2 and "write NAME=CHOICE" in err
    code, _, err = run_table(["--config", str(path), "--dry-run", "--reading", "baseline_clip=verl"])
    assert code == 2 and "'verl' is not one of its choices" in err
