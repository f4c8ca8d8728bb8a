"""`--dry-run` of every table: every printed training command passes OpenRLHF's own parser and validation
(``openrlhf_steer.integration.check_args``) and carries the config's recipe and method options."""
import json

import pytest

from steertest_reproduce import CONFIGS, run_table, train_commands

from repro_config import load_config  # noqa: E402


def launcher_argv(cmd):
    assert cmd[1:3] == ["-m", "openrlhf_steer.train"], cmd[:3]
    return cmd[3:]


@pytest.fixture(scope="module")
def check_args():
    from openrlhf_steer.integration import check_args as _check

    return _check


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_training_command_passes_openrlhf_parser(path, tmp_path, check_args):
    cfg = load_config(path)
    code, out, err = run_table(["--config", str(path), "--dry-run", "--output-dir", str(tmp_path)])
    assert code == 0, err
    cmds = train_commands(out)
    runs = [(row, seed) for row in cfg.rows if row.trains for seed in (cfg.recipe_for(row).get("seeds") or [None])]
    assert len(cmds) == len(runs)
    assert out.count("[data] ") == len(runs)
    assert not any(tmp_path.iterdir()), "a dry run must not create anything"
    for (row, seed), cmd in zip(runs, cmds):
        args = check_args(launcher_argv(cmd))
        recipe = cfg.recipe_for(row)
        assert args.actor.model_name_or_path == recipe["model"]
        assert args.rollout.batch_size == recipe["prompts_per_rollout"]
        assert args.rollout.n_samples_per_prompt == recipe["samples_per_prompt"]
        if "updates_per_rollout" in recipe:
            expected_batch = recipe["prompts_per_rollout"] // recipe["updates_per_rollout"] * recipe["samples_per_prompt"]
        else:
            expected_batch = recipe["mini_batch_prompts"] * recipe["samples_per_prompt"]
        assert args.train.batch_size == expected_batch
        assert list(args.actor.eps_clip_low_high) == [recipe["eps_clip_low"], recipe["eps_clip_high"]]
        assert args.actor.adam.lr == recipe["lr"] and args.train.num_episodes == recipe["epochs"]
        assert args.rollout.max_new_tokens == recipe["max_response_len"]
        assert args.data.max_len == recipe["max_prompt_len"] + recipe["max_response_len"]
        assert args.algo.kl.init_coef == 0.0
        assert args.train.seed == (seed if seed is not None else recipe["seed"])
        spec = json.loads(args.entropy_control)
        assert spec["methods"] == [[row.method, row.option_values()]]


def test_rows_and_layout_flags(tmp_path, check_args):
    path = next(p for p in CONFIGS if p.stem == "steer_main_qwen25_math_7b")
    code, out, err = run_table(["--config", str(path), "--dry-run", "--rows", "steer,grpo", "--gpus", "8",
                                "--nodes", "2", "--vllm-tp", "4", "--output-dir", str(tmp_path)])
    assert code == 0, err
    cmds = train_commands(out)
    assert len(cmds) == 4  # 2 rows x seeds 1 and 2
    assert "== steer_main_qwen25_math_7b / grpo" in out and "== steer_main_qwen25_math_7b / steer" in out
    assert "clip_higher" not in out
    args = check_args(launcher_argv(cmds[3]))
    assert args.train.seed == 2 and "/rows/steer/seed2/ckpt" in args.ckpt.path
    assert (args.actor.num_nodes, args.actor.num_gpus_per_node) == (2, 8)
    assert (args.vllm.num_engines, args.vllm.tensor_parallel_size) == (4, 4)
    # the STEER selection rule shows up as per-checkpoint eval commands on AIME24 from step 80
    assert "for every <STEP> >= 80" in out and "--benchmarks aime24 --n 32" in out
    # the final evaluation is split by sample count: avg@32 sets and avg@1 sets
    assert out.count("--benchmarks aime24,aime25,amc23 --n 32") == 4 and out.count("--benchmarks math500,minerva_math,olympiadbench --n 1") == 4


def test_released_rows_are_evaluated_once_without_training(tmp_path):
    path = next(p for p in CONFIGS if p.stem == "steer_main_qwen25_math_7b")
    code, out, err = run_table(["--config", str(path), "--dry-run", "--rows", "simplerl_zoo", "--output-dir", str(tmp_path)])
    assert code == 0, err
    assert train_commands(out) == [] and "[data]" not in out
    assert out.count("[eval] ") == 2 and "--model hkust-nlp/Qwen-2.5-Math-7B-SimpleRL-Zoo" in out


def test_bad_flags_give_clear_errors(tmp_path):
    path = CONFIGS[0]
    code, out, err = run_table(["--config", str(path), "--dry-run", "--rows", "nope", "--output-dir", str(tmp_path)])
    assert code == 2 and "unknown row(s) ['nope']" in err
    code, out, err = run_table(["--config", str(path), "--dry-run", "--vllm-tp", "3", "--output-dir", str(tmp_path)])
    assert code == 2 and "--vllm-tp=3" in err
    code, out, err = run_table(["--config", str(tmp_path / "missing.yaml"), "--dry-run"])
    assert code == 2 and "does not exist" in err


def test_smoke_dry_run_prints_the_cpu_pipeline_and_creates_nothing(tmp_path):
    path = next(p for p in CONFIGS if p.stem == "posadv_rand_pos_clip")
    code, out, err = run_table(["--config", str(path), "--dry-run", "--smoke", "--output-dir", str(tmp_path)])
    assert code == 0, err
    assert not any(tmp_path.iterdir())
    cmds = train_commands(out)
    assert len(cmds) == 2 and all("--rollout.max_new_tokens" in c and c[c.index("--rollout.max_new_tokens") + 1] == "16" for c in cmds)
    assert "--backend hf" in out and "--limit 2" in out and "livecodebench" not in out.split("[eval]")[-1]
