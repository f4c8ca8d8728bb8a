"""Every per-table config: loads, documents every value's source, uses real methods/benchmarks, has a script."""
import os
import re

import pytest

from steertest_reproduce import CONFIGS, REPRODUCE

from repro_config import ConfigError, load_config, select_rows  # noqa: E402
from repro_pipeline import NON_FLAG_KEYS, RECIPE_FLAGS  # noqa: E402

# The list of tables: 5 from STEER, 9 from Jin et al.
EXPECTED_TABLES = {
    "steer_main_qwen25_math_7b", "steer_mapping_ablation", "steer_extreme_clipping", "steer_qwen25_math_1_5b",
    "steer_qwen25_14b", "posadv_main_qwen25_math_7b", "posadv_offpolicy_updates", "posadv_adaptive_entropy",
    "posadv_cov_methods", "posadv_rand_pos_clip", "posadv_pos_neg_only", "posadv_reweighting_variants",
    "posadv_data_diversity", "posadv_llama31_8b_instruct",
}


def test_one_config_and_one_script_per_table():
    assert {p.stem for p in CONFIGS} == EXPECTED_TABLES
    for table in EXPECTED_TABLES:
        script = REPRODUCE / f"{table}.sh"
        assert script.is_file() and os.access(script, os.X_OK), script
        text = script.read_text()
        assert f"configs/{table}.yaml" in text and "run_table.py" in text


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_is_complete(path):
    cfg = load_config(path)
    assert cfg.table == path.stem
    for section in ("recipe", "eval", "selection", "data"):
        for key, entry in getattr(cfg, section).items():
            assert entry.source.strip(), f"{section}.{key} has no source"
    for row in cfg.rows:
        for key, entry in list(row.options.items()) + list(row.overrides.items()):
            assert entry.source.strip(), f"{row.name}.{key} has no source"
        recipe = cfg.recipe_for(row)
        assert set(recipe) <= set(RECIPE_FLAGS) | NON_FLAG_KEYS, sorted(set(recipe) - set(RECIPE_FLAGS) - NON_FLAG_KEYS)
        # paper column: a number or null (n/a), never a string
        assert all(v is None or isinstance(v, float) for v in row.paper.values())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_rows_build_with_the_methods_registry(path):
    from openrlhf_steer.methods import build_method

    for row in load_config(path).rows:
        if not row.trains:  # a released checkpoint: evaluated as published
            assert "/" in str(row.released_model.value) and not row.options
            continue
        method = build_method(row.method, row.option_values())  # unknown options raise
        for key, value in row.option_values().items():
            assert getattr(method.config, key) == value


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_benchmarks_exist_in_the_eval_cli(path):
    from openrlhf_steer_eval.benchmarks import list_benchmarks

    cfg = load_config(path)
    assert set(cfg.benchmarks) <= set(list_benchmarks())
    assert set(cfg.values("selection").get("benchmarks", [])) <= set(cfg.benchmarks)
    assert set(cfg.average_benchmarks) <= set(cfg.benchmarks)


def test_recipe_values_are_the_papers_scripts():
    """Spot-check against zz-haooo/STEER run/run_exp.sh and run_exp_extreme.sh (values read from the scripts)."""
    main = load_config(REPRODUCE / "configs" / "steer_main_qwen25_math_7b.yaml")
    r = main.values("recipe")
    assert (r["prompts_per_rollout"], r["samples_per_prompt"], r["mini_batch_prompts"], r["micro_batch_per_gpu"]) == (512, 8, 32, 8)
    assert (r["lr"], r["eps_clip_low"], r["eps_clip_high"], r["dual_clip"], r["max_response_len"]) == (1e-6, 0.2, 0.28, 10.0, 3072)
    # paper v4: <= 200 rollout steps of 512 prompts (~6 passes over 17,398 prompts), mean of seeds 1 and 2
    assert r["epochs"] == 6 and r["seeds"] == [1, 2]
    assert main.row("steer").option_values() == {"mapping": "exp", "lambda_min": 0.7, "lambda_max": 1.0, "prob_power": 2}
    assert main.row("steer_script").option_values()["lambda_min"] == 0.8  # run_exp.sh
    lin = load_config(REPRODUCE / "configs" / "steer_mapping_ablation.yaml").row("linear")
    assert lin.option_values() == {"mapping": "linear", "lambda_min": 0.8, "lambda_max": 1.2, "prob_power": 2}  # run_linear.sh
    # STEER's evaluation: avg@32 on AIME24/AIME25/AMC23, avg@1 elsewhere, T=1.0, top-p 0.7 (run/eval.sh)
    ev = main.values("eval")
    assert ev["n"] == {"aime24": 32, "aime25": 32, "amc23": 32, "default": 1} and (ev["temperature"], ev["top_p"]) == (1.0, 0.7)
    ext = load_config(REPRODUCE / "configs" / "steer_extreme_clipping.yaml").values("recipe")
    assert (ext["eps_clip_low"], ext["eps_clip_high"], ext["epochs"]) == (0.99, 5.0, 10)
    sel = main.values("selection")
    assert sel == {"policy": "best", "benchmarks": ["aime24"], "n": 32, "min_step": 80, "every": 10}
    jin = load_config(REPRODUCE / "configs" / "posadv_main_qwen25_math_7b.yaml")
    assert jin.row("clip_lower").option_values() == {"eps_low": 0.28}
    assert jin.row("clip_tighter").option_values() == {"eps_low": 0.12}
    ada = load_config(REPRODUCE / "configs" / "posadv_adaptive_entropy.yaml")
    assert [ada.row(n).option_values()["target_entropy"] for n in ("ada_ent_reg_0_2", "ada_ent_reg_0_3657")] == [0.2, 0.3657]
    upd = load_config(REPRODUCE / "configs" / "posadv_offpolicy_updates.yaml")
    assert [upd.recipe_for(r)["updates_per_rollout"] for r in upd.rows] == [1, 2, 4]


def test_paper_numbers_recorded_with_their_source():
    """The five rows of the STEER v4 main table found in third-party notes, and the Jin et al. averages."""
    main = load_config(REPRODUCE / "configs" / "steer_main_qwen25_math_7b.yaml")
    steer = main.row("steer")
    assert [steer.paper[b] for b in main.benchmarks] == [36.2, 16.1, 72.1, 82.2, 41.7, 43.0] and steer.paper["avg"] == 48.6
    assert main.row("grpo").paper["avg"] == 44.2 and "67425593991" in steer.paper_source
    # every paper avg equals the mean of its six benchmark numbers (transcription check), to the table's 0.1
    for name in ("grpo", "opo", "entropy_advantage", "clip_cov", "steer"):
        row = main.row(name)
        assert abs(sum(row.paper[b] for b in main.benchmarks) / 6 - row.paper["avg"]) < 0.06, name
    assert main.row("kl_cov").paper["aime24"] is None  # not found: stays empty, never invented
    jin = load_config(REPRODUCE / "configs" / "posadv_main_qwen25_math_7b.yaml")
    for name, avg in (("base", 20.40), ("grpo", 44.12), ("pos_adv_entropy_guided", 45.66), ("ada_ent_reg_0_3657", 45.35), ("clip_higher", 43.96)):
        row = jin.row(name)
        assert row.paper["avg"] == avg
        # the paper's average is the in-domain mean (5 benchmarks), checked against the transcribed cells
        assert abs(sum(row.paper[b] for b in jin.average_benchmarks) / 5 - avg) < 0.006, name
    assert jin.average_benchmarks == ["aime24", "aime25", "math500", "amc23", "minerva_math"]
    big = load_config(REPRODUCE / "configs" / "steer_qwen25_14b.yaml")
    assert {r.name: r.paper.get("avg") for r in big.rows if r.paper.get("avg")} == {"grpo": 42.9, "opo": 42.9, "clip_cov": 41.2, "steer": 45.2}


def test_assumed_values_are_marked():
    """Values the scripts do not set are labelled [assumed] (spot check of known ones)."""
    r = load_config(REPRODUCE / "configs" / "steer_main_qwen25_math_7b.yaml").recipe
    for key in ("lr_scheduler", "weight_decay", "zero_stage"):
        assert r[key].source.startswith("[assumed]"), key
    assert re.search(r"run_exp\.sh", r["lr"].source)


def test_bad_configs_name_the_field(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("table: t\ntitle: t\npaper: {}\nbenchmarks: [aime24]\neval: {}\nselection: {}\n"
                   "recipe: {lr: 1e-6}\nrows: [{name: a, label: A, method: grpo}]\n")
    with pytest.raises(ConfigError, match=r"recipe\.lr: write it as \{value"):
        load_config(bad)
    bad.write_text("table: t\ntitle: t\npaper: {}\nbenchmarks: [aime24]\neval: {}\nselection: {}\nrecipe: {}\n"
                   "rows: [{name: a, label: A, method: grpo, paper: {aime26: 1.0}}]\n")
    with pytest.raises(ConfigError, match="aime26"):
        load_config(bad)
    cfg = load_config(CONFIGS[0])
    with pytest.raises(ConfigError, match="unknown row"):
        select_rows(cfg, ["no_such_row"])
    assert [r.name for r in select_rows(cfg, [cfg.rows[-1].name, cfg.rows[0].name])] == [cfg.rows[0].name, cfg.rows[-1].name]


def test_wrapper_script_runs_the_table(tmp_path):
    """The bash wrapper reaches run_table.py with the right config and passes the flags through."""
    import subprocess
    import sys

    script = REPRODUCE / "posadv_rand_pos_clip.sh"
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(script), "--dry-run", "--rows", "rand_pos_clip", "--gpus", "4",
                           "--output-dir", str(tmp_path)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "== posadv_rand_pos_clip / rand_pos_clip" in proc.stdout and "grpo (" not in proc.stdout
    assert "--actor.num_gpus_per_node 4" in proc.stdout and "--entropy.rand_pos_clip.clip_fraction 0.1" in proc.stdout
