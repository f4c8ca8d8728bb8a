"""Every per-table config: one per paper table, every printed row and number, recipe values from the text."""

import json
import os
from pathlib import Path

import pytest

from steertest_reproduce import CONFIGS, REPRODUCE

from repro_config import ConfigError, load_config, select_rows  # noqa: E402
from repro_pipeline import NON_FLAG_KEYS, RECIPE_FLAGS  # noqa: E402


# paper table -> our config (one config per results table of each paper)
TABLE_CONFIGS = {
    ("STEER", "Figure 2 (table inside the figure)"): "steer_figure2",
    ("STEER", "Table 1"): "steer_table1",
    ("STEER", "Table 2"): "steer_table2",
    ("STEER", "Table 4"): "steer_table4",
    ("STEER", "Table 5"): "steer_table5",
    ("Pos-Adv", "Table 1"): "posadv_table1",
    ("Pos-Adv", "Table 2"): "posadv_table2",
    ("Pos-Adv", "Table 3"): "posadv_table3",
    ("Pos-Adv", "Table 4"): "posadv_table4",
    ("Pos-Adv", "Table 5"): "posadv_table5",
}
RESULTS = [p for p in CONFIGS if load_config(p).kind == "results"]


def cfg(name):
    return load_config(REPRODUCE / "configs" / f"{name}.yaml")


def test_one_config_and_one_script_per_table():
    assert {p.stem for p in CONFIGS} == set(TABLE_CONFIGS.values())
    for table in TABLE_CONFIGS.values():
        script = REPRODUCE / f"{table}.sh"
        assert script.is_file() and os.access(script, os.X_OK), script
        assert f"run.sh\" {table} " in script.read_text()


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_is_complete(path):
    c = load_config(path)
    assert c.table == path.stem
    for section in ("recipe", "eval", "selection", "data", "training_entropy", "estimator"):
        for key, entry in getattr(c, section).items():
            assert entry.source.strip(), f"{section}.{key} has no source"
    for row in c.rows:
        for key, entry in list(row.options.items()) + list(row.overrides.items()):
            assert entry.source.strip(), f"{row.name}.{key} has no source"
        recipe = c.recipe_for(row)
        assert set(recipe) <= set(RECIPE_FLAGS) | NON_FLAG_KEYS, sorted(set(recipe) - set(RECIPE_FLAGS) - NON_FLAG_KEYS)


def test_no_config_cites_third_party_or_unreadable_sources():
    """The paper text is the authority. The one exception the text forces: the entropy-guided step size and initial
    lambda are lost in the extraction, and the value used must say where it comes from."""
    for path in list(CONFIGS) + sorted((REPRODUCE / "configs" / "recipes").glob("*.yaml")):
        for i, line in enumerate(path.read_text().splitlines()):
            low = line.lower()
            assert "not readable" not in low and "pdf" not in low and "methods.md" not in low, (path.name, i, line)
            assert "code index" not in low and "paper-parity" not in low and "v4" not in low, (path.name, i, line)
            if "third-party" in low:
                assert "lost in the text" in low, (path.name, i, line)


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.stem)
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

    c = load_config(path)
    assert set(c.benchmarks) <= set(list_benchmarks())
    if c.kind == "results":
        assert set(c.values("selection").get("benchmarks", [])) <= set(c.benchmarks)


# --------------------------------------------------------------------------------------------------
# The paper's printed numbers, cell by cell (paper_tables.json: $OPENRLHF_STEER_PAPERS, ../shared/papers or the
# committed copy in tests/data/shared/papers, see openrlhf_steer.shared_data)
# --------------------------------------------------------------------------------------------------
def _paper_tables():
    from openrlhf_steer.shared_data import SharedDataNotFound, locate_paper_tables

    try:
        return json.loads(locate_paper_tables().read_text())["tables"]
    except SharedDataNotFound as err:
        pytest.skip(f"the papers' table transcription not found: {err}")


def _config_for(table):
    for (paper, name), config in TABLE_CONFIGS.items():
        if paper in table["paper"] and table["table"] == name:
            return config
    return None


def _printed_cells(table):
    """Every printed results cell of a paper table, in row order: [(row index, column, metric, value)]."""
    cells = []
    for i, row in enumerate(table["rows"]):
        for col, value in row["values"].items():
            if isinstance(value, dict):
                cells += [(i, col, m.lower(), v) for m, v in value.items()]
            elif value is not None:
                cells.append((i, col, "", value))
    return cells


def _our_cells(table, config):
    """Our config's paper numbers in the same form as _printed_cells."""
    c = load_config(REPRODUCE / "configs" / f"{config}.yaml")
    cells = []
    if c.kind == "estimator":
        for i, row in enumerate(c.analysis_rows):
            cells += [(i, col, "", row["paper"][col]) for col in c.analysis_rows[0]["paper"]]
        return cells
    if c.kind == "entropy_correlation":
        for i, row in enumerate(c.analysis_rows):
            cells += [(i, "Avg@64", "", row["paper"][0]), (i, "Pass@64", "", row["paper"][1])]
        return cells
    labels = [col.label for col in c.columns]
    for i, row in enumerate(c.rows):
        for col, label in zip(c.columns, labels):
            for metric, value in row.paper[col.key].items():
                if value is None:
                    continue
                if col.training_entropy:
                    cells.append((i, label, "", value))
                elif len(c.metrics) == 1:
                    cells.append((i, label, "", value))
                else:
                    cells.append((i, label, {"avg@n": "avg@64", "pass@n": "pass@64"}[metric], value))
    return cells


def test_every_printed_results_cell_is_in_the_configs_and_nothing_else():
    tables = [t for t in _paper_tables() if t["table"] != "Table 6"]  # STEER Table 6 is dataset statistics
    total = 0
    for table in tables:
        config = _config_for(table)
        assert config, f"no config for {table['paper']} {table['table']}"
        printed = _printed_cells(table)
        ours = _our_cells(table, config)
        # same rows in the same order, same columns, the same numbers; no extra number in the config
        assert sorted(ours, key=repr) == sorted(printed, key=repr), (
            config,
            set(map(repr, ours)) ^ set(map(repr, printed)),
        )
        total += len(printed)
    assert total == 1015  # STEER Tables 1, 2, 4, 5 + Figure 2; Pos-Adv Tables 1-5 with Avg@64 and Pass@64 apart


def test_rows_are_the_papers_rows_in_order_with_inferred_labels_marked():
    for table in _paper_tables():
        config = _config_for(table)
        if config is None:
            continue
        c = load_config(REPRODUCE / "configs" / f"{config}.yaml")
        if c.kind != "results":
            assert len(c.analysis_rows) == len(table["rows"])
            continue
        assert len(c.rows) == len(table["rows"]), config
        for ours, theirs in zip(c.rows, table["rows"]):
            if theirs.get("label_certain", True):
                assert not ours.label_inferred, (config, ours.name)
            else:
                assert ours.label_inferred and ours.printed_label == theirs["printed_label"], (config, ours.name)


# --------------------------------------------------------------------------------------------------
# Recipe values the text settles (each one a discrepancy fixed against the former configs)
# --------------------------------------------------------------------------------------------------
def test_steer_recipe_follows_appendix_e2():
    for name in ("steer_table1", "steer_table2", "steer_table4", "steer_table5"):
        c = cfg(name)
        r = c.values("recipe")
        assert (r["prompts_per_rollout"], r["samples_per_prompt"], r["mini_batch_prompts"]) == (512, 8, 32)
        assert r["prompts_per_rollout"] // r["mini_batch_prompts"] == 16  # "16 mini-batches ... 16 gradient steps"
        assert r["max_rollout_steps"] == 150 and "epochs" not in r and "seeds" not in r
        assert (r["lr"], r["lr_warmup_ratio"], r["max_prompt_len"], r["max_response_len"]) == (1e-6, 0.0, 1024, 3072)
        assert (r["kl_coef"], r["entropy_coef"], r["loss_agg_mode"], r["save_steps"]) == (0.0, 0.0, "token-mean", 10)
        sel = c.values("selection")
        assert sel["benchmarks"] == ["aime24"] and sel["min_step"] == 80 and sel["every"] == 10  # save_after=80
        ev = c.values("eval")
        assert ev["n"] == {"aime24": 32, "aime25": 32, "amc23": 32, "default": 1}
        assert (ev["temperature"], ev["top_p"], ev["max_tokens"]) == (1.0, 0.7, 3072)
        assert ev["graders"][0] == "steer_both" and "math_verify" in ev["graders"]
        for row in c.rows:  # lambda_min = 0.7 "throughout" (Sec. 5.2), never the script's 0.8
            if row.method == "steer":
                assert row.option_values()["lambda_min"] == 0.7, (name, row.name)
    t2 = cfg("steer_table2")
    assert t2.row("linear").option_values()["lambda_max"] == 1.2
    binary = t2.row("binary").option_values()
    assert (binary["mapping"], binary["binary_top_fraction"], binary["binary_rank"]) == ("binary", 0.2, "abs")
    t4 = cfg("steer_table4")
    for row in t4.rows:
        r = t4.recipe_for(row)
        assert (r["eps_clip_low"], r["eps_clip_high"]) == (0.99, 5.0), row.name
    t5 = cfg("steer_table5")
    assert {t5.recipe_for(r)["model"] for r in t5.rows if r.trains} == {"Qwen/Qwen2.5-Math-1.5B", "Qwen/Qwen2.5-14B"}


# --------------------------------------------------------------------------------------------------
# Readings: one switch between the authors' code and the text (issue 20)
# --------------------------------------------------------------------------------------------------
STEER_TRAINED_TABLES = ("steer_table1", "steer_table2", "steer_table4", "steer_table5")
CLIP_METHODS = {"clip_higher", "clip_lower", "clip_tighter", "clip_free"}  # rows that change the clip themselves


def _clip_flags(config, row):
    """The training command's clip set-up of a row: (eps_low, eps_high, dual clip) as OpenRLHF flags."""
    from repro_pipeline import recipe_flags

    flags = recipe_flags(config.recipe_for(row))
    low_high = flags.index("--actor.eps_clip_low_high")
    dual = float(flags[flags.index("--actor.dual_clip") + 1]) if "--actor.dual_clip" in flags else None
    return (float(flags[low_high + 1]), float(flags[low_high + 2]), dual)


def _non_clip_rows(config):
    return [r for r in config.rows if r.trains and r.method not in CLIP_METHODS]


def test_every_non_clip_row_of_a_steer_table_shares_one_clip_setup_and_the_switch_moves_them_all():
    expected = {  # table -> paper_text, authors_scripts
        "steer_table1": ((0.2, 0.2, 10.0), (0.2, 0.28, 10.0)),
        "steer_table2": ((0.2, 0.2, 10.0), (0.2, 0.28, 10.0)),
        "steer_table4": ((0.99, 5.0, 10.0), (0.99, 5.0, 10.0)),  # the table's own range; one dual clip
        "steer_table5": ((0.2, 0.2, 10.0), (0.2, 0.28, 10.0)),
    }
    for name in STEER_TRAINED_TABLES:
        path = REPRODUCE / "configs" / f"{name}.yaml"
        default, scripts = load_config(path), load_config(path, readings={"baseline_clip": "authors_scripts"})
        assert default.readings["baseline_clip"].value == "paper_text"
        for config, want in zip((default, scripts), expected[name]):
            rows = _non_clip_rows(config)
            assert len(rows) >= 3, name
            assert {_clip_flags(config, r) for r in rows} == {want}, (name, config.readings["baseline_clip"].value)
    # Table 1's clip-high row is the only one that changes the clip: 0.28 in both readings
    t1 = cfg("steer_table1")
    assert t1.row("clip_high").option_values() == {"eps_high": 0.28}
    assert [r.name for r in t1.rows if r.method in CLIP_METHODS] == ["clip_high"]
    # Figure 2's standard GRPO run follows the same reading
    f2 = cfg("steer_figure2").values("recipe")
    f2_scripts = load_config(
        REPRODUCE / "configs" / "steer_figure2.yaml", readings={"baseline_clip": "authors_scripts"}
    )
    assert (f2["eps_clip_low"], f2["eps_clip_high"]) == (0.2, 0.2)
    assert f2_scripts.values("recipe")["eps_clip_high"] == 0.28


def test_readings_fill_their_sections_and_name_bad_choices(tmp_path):
    c = cfg("steer_table1")
    assert c.recipe["eps_clip_high"].source.startswith("reading baseline_clip=paper_text: App. D.2")
    assert cfg("steer_table4").recipe["eps_clip_high"].source.startswith("App. D.3")  # the table's entry wins
    paper = load_config(REPRODUCE / "configs" / "steer_table1.yaml", readings={"checkpoint_start": "paper_text"})
    assert (c.values("selection")["min_step"], paper.values("selection")["min_step"]) == (80, 0)
    with pytest.raises(ConfigError, match="not one of its choices"):
        load_config(REPRODUCE / "configs" / "steer_table1.yaml", readings={"baseline_clip": "verl_default"})
    with pytest.raises(ConfigError, match="unknown reading"):
        load_config(REPRODUCE / "configs" / "steer_table1.yaml", readings={"clip": "paper_text"})
    bad = tmp_path / "t.yaml"
    bad.write_text(
        "table: t\ntitle: t\npaper: {}\ncolumns: [{key: a, label: A, benchmark: aime24}]\nmetrics: [avg@n]\n"
        "eval: {}\nselection: {}\nrecipe: {}\nrows: [{name: a, label: A, method: grpo, paper: {a: 1.0}}]\n"
        "readings: {r: {value: x, source: s, choices: {x: {recipe: {lr: 1.0}}}}}\n"
    )
    with pytest.raises(ConfigError, match=r"readings\.r\.choices\.x: no source"):
        load_config(bad)


def test_steer_eval_prompts_are_the_authors_eval_files_with_the_models_default_system_turn():
    """The authors' eval files wrap AIME24/AIME25/AMC23 in DAPO-Math-17k's instruction and leave MATH500, Minerva
    and OlympiadBench bare, one user turn each; the chat template adds the model's default system turn (no
    --system-prompt)."""
    from openrlhf_steer.data.dapo_math import format_dapo_prompt
    from openrlhf_steer_eval.graders.base import PromptOptions
    from openrlhf_steer_eval.prompts import math_prompt
    from repro_pipeline import eval_command, eval_groups

    question = "Find the largest possible real part of $(75+117i)z+\\frac{96+144i}{z}$ where $|z|=4$."
    for name in STEER_TRAINED_TABLES:
        c = cfg(name)
        assert c.readings["eval_prompt"].value == "authors_eval_data"
        groups = eval_groups(c.benchmarks, c.values("eval"))
        templates = {tuple(benches): sampling["prompt_template"] for benches, sampling in groups}
        assert templates == {
            ("aime24", "aime25", "amc23"): "dapo",
            ("math500", "minerva_math", "olympiadbench"): "question",
        }
        for benches, sampling in groups:
            cmd = eval_command(Path("ckpt"), benches, sampling, Path("out"))
            assert "--system-prompt" not in cmd and "--chat-template" in cmd
            template = cmd[cmd.index("--prompt-template") + 1]
            messages = math_prompt(question, PromptOptions(template=template))
            user = format_dapo_prompt(question) if template == "dapo" else question
            assert messages == [{"role": "user", "content": user}]  # no system turn from us
    paper = load_config(REPRODUCE / "configs" / "steer_table1.yaml", readings={"eval_prompt": "paper_text"})
    assert paper.values("eval")["prompt_template"] == "question"


def test_rollout_cap_runs_enough_episodes_and_bounds_selection():
    from repro_pipeline import rollout_cap

    c = cfg("steer_table1")
    recipe = rollout_cap(c.recipe_for(c.row("steer")), 17398)
    # 17,398 // 512 = 33 rollout steps per pass: 5 passes reach 150 (4 reach only 132)
    assert recipe["epochs"] == 5
    with pytest.raises(ValueError, match="fewer than prompts_per_rollout 512"):
        rollout_cap(c.recipe_for(c.row("steer")), 500)  # the short batch is dropped: no step would train


def test_posadv_recipe_follows_appendix_b_and_e2():
    for name in ("posadv_table2", "posadv_table3", "posadv_table5"):
        r = cfg(name).values("recipe")
        assert (r["prompts_per_rollout"], r["samples_per_prompt"], r["max_response_len"]) == (256, 16, 4096)
        assert r["lr_scheduler"] == "cosine_with_min_lr" and "lost in the text" in cfg(name).recipe["lr"].source
        assert "lost in the text" in cfg(name).recipe["top_p"].source
        ev = cfg(name).values("eval")
        assert (ev["n"], ev["k"], ev["temperature"], ev["top_p"]) == (64, [1, 64], 1.0, 1.0)
        assert ev["graders"] == {"default": ["math_verify"], "livecodebench": None, "ifeval": None}
    t2 = cfg("posadv_table2")
    n = {row.name: t2.recipe_for(row)["updates_per_rollout"] for row in t2.rows if row.trains}
    assert (n["grpo_n1"], n["grpo_n2"], n["dapo_n2"], n["grpo_n4"]) == (1, 2, 2, 4)
    # every clipping variant and every Section 7 row updates 4 times per rollout, so the ratio leaves 1
    for name in (
        "clip_higher",
        "clip_lower",
        "clip_tighter",
        "clip_free",
        "ada_ent_reg_0_2",
        "ada_ent_reg_0_3657",
        "clip_cov",
        "kl_cov",
        "entropy_adv",
        "adv_nonpositive_only",
        "adv_nonnegative_only",
        "rand_pos_clip",
        "pos_adv_stage",
        "pos_adv_epoch",
        "pos_adv_entropy",
    ):
        assert n[name] == 4, name
    assert t2.row("clip_lower").option_values() == {"eps_low": 0.28}
    assert t2.row("clip_tighter").option_values() == {"eps_low": 0.12}
    assert [t2.row(r).option_values()["target_entropy"] for r in ("ada_ent_reg_0_2", "ada_ent_reg_0_3657")] == [
        0.2,
        0.3657,
    ]
    ent = t2.row("pos_adv_entropy").option_values()
    assert (ent["schedule"], ent["entropy_target"], ent["step_size"], ent["lambda_init"]) == ("entropy", 0.2, 0.05, 0.0)
    assert "lost in the text" in t2.row("pos_adv_entropy").options["step_size"].source
    assert cfg("posadv_table2").values("selection")["benchmarks"] == ["aime25"]
    assert cfg("posadv_table5").values("selection")["benchmarks"] == ["math500"]
    t3 = cfg("posadv_table3")
    sizes = sorted({t3.recipe_for(r).get("subset_size") for r in t3.rows if r.trains} - {None})
    assert sizes == [616, 1246, 2538, 5031, 10001]
    assert cfg("posadv_table2").values("training_entropy")["ema"] == 0.6


def test_assumed_values_are_marked():
    r = cfg("steer_table1").recipe
    for key in ("weight_decay", "zero_stage", "grad_clip"):
        assert r[key].source.startswith("[assumed]"), key
    assert r["lr"].source.startswith("App. E.2")


def test_bad_configs_name_the_field(tmp_path):
    bad = tmp_path / "t.yaml"
    head = (
        "table: t\ntitle: t\npaper: {}\ncolumns: [{key: a, label: A, benchmark: aime24}]\nmetrics: [avg@n]\n"
        "eval: {}\nselection: {}\n"
    )
    bad.write_text(head + "recipe: {lr: 1e-6}\nrows: [{name: a, label: A, method: grpo, paper: {a: 1.0}}]\n")
    with pytest.raises(ConfigError, match=r"recipe\.lr: write it as \{value"):
        load_config(bad)
    bad.write_text(head + "recipe: {}\nrows: [{name: a, label: A, method: grpo, paper: {aime26: 1.0}}]\n")
    with pytest.raises(ConfigError, match="aime26"):
        load_config(bad)
    bad.write_text(head + "recipe: {}\nrows: [{name: a, label: A, method: grpo, paper: {}}]\n")
    with pytest.raises(ConfigError, match=r"paper\.a: missing"):
        load_config(bad)
    c = load_config(CONFIGS[-1])
    with pytest.raises(ConfigError, match="unknown row"):
        select_rows(c, ["no_such_row"])
    assert [r.name for r in select_rows(c, [c.rows[-1].name, c.rows[0].name])] == [c.rows[0].name, c.rows[-1].name]


def test_run_sh_and_wrapper_reach_the_table(tmp_path):
    """The per-table wrapper and run.sh TABLE reach run_table.py with the right config and pass the flags through."""
    import subprocess
    import sys

    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(
        [
            "bash",
            str(REPRODUCE / "posadv_table2.sh"),
            "--dry-run",
            "--rows",
            "rand_pos_clip",
            "--gpus",
            "4",
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "== posadv_table2 / rand_pos_clip" in proc.stdout and "grpo_n1 (" not in proc.stdout
    # 256 prompts x 16 responses, N = 4 updates -> 1,024 responses per optimizer step
    assert "--actor.num_gpus_per_node 4" in proc.stdout and "--rollout.batch_size 256" in proc.stdout
    assert "--rollout.n_samples_per_prompt 16" in proc.stdout and "--train.batch_size 1024" in proc.stdout
    bad = subprocess.run(["bash", str(REPRODUCE / "run.sh"), "no_such_table"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "no table 'no_such_table'" in bad.stderr
    listed = subprocess.run(["bash", str(REPRODUCE / "run.sh"), "--list"], capture_output=True, text=True, env=env)
    assert all(t in listed.stdout for t in TABLE_CONFIGS.values())
