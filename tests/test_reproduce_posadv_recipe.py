"""Pos-Adv recipe (Jin et al., arXiv 2511.05993): the context window of the Qwen2.5-Math-7B runs, the extended-context
model copy, Table 3's training length and features, and the settings the configs used to leave unsaid."""

import json
import shlex

import pytest

from steertest_reproduce import REPRODUCE, run_table

from repro_config import load_config  # noqa: E402
from repro_pipeline import (  # noqa: E402
    context_model_dir,
    context_model_ready,
    context_of_model_dir,
    context_override,
    eval_command,
)

POSADV_RESULTS = ["posadv_table2", "posadv_table3", "posadv_table5"]
# The released configs' max_position_embeddings (config.json of each model on the hub), written out here
# independently of reproduce/configs/facts/model_facts.yaml.
NATIVE_CONTEXT = {
    "Qwen/Qwen2.5-Math-7B": 4096,  # huggingface.co/Qwen/Qwen2.5-Math-7B config.json
    "meta-llama/Llama-3.1-8B-Instruct": 131072,  # huggingface.co/meta-llama/Llama-3.1-8B-Instruct config.json
}


def cfg(name):
    return load_config(REPRODUCE / "configs" / f"{name}.yaml")


def dry_run_commands(name, tmp_path, monkeypatch, config_path=None):
    """(exit code, {stage: [argv, ...]}, stderr) of ``run_table --dry-run`` on a Pos-Adv table, offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = config_path or REPRODUCE / "configs" / f"{name}.yaml"
    code, out, err = run_table(["--config", str(path), "--dry-run", "--output-dir", str(tmp_path / "out")])
    stages = {}
    for line in out.splitlines():
        stage, sep, rest = line.partition("] ")
        if line.startswith("[") and sep and "python" in rest.split(" ", 1)[0]:  # a command, not a description
            stages.setdefault(stage[1:], []).append(shlex.split(rest))
    return code, stages, out + err


def flag(argv, name):
    return argv[argv.index(name) + 1]


# --------------------------------------------------------------------------------------------------
# Item 3: prompt + response fits the context every command configures
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", POSADV_RESULTS)
def test_every_posadv_command_fits_the_context_it_configures(name, tmp_path, monkeypatch):
    config = cfg(name)
    code, stages, text = dry_run_commands(name, tmp_path, monkeypatch)
    assert code == 0, text
    copies = {
        flag(cmd, "--output"): (flag(cmd, "--model"), int(flag(cmd, "--max-position-embeddings")))
        for cmd in stages.get("model", [])
    }
    trains = stages["train"]
    runs = [r for r in config.rows if r.trains]
    assert len(trains) == len(runs)
    for row, cmd in zip(runs, trains):
        recipe = config.recipe_for(row)
        max_len = int(flag(cmd, "--data.max_len"))
        assert max_len == recipe["max_prompt_len"] + recipe["max_response_len"] == 1024 + 4096  # App. B
        model_path = flag(cmd, "--actor.model_name_or_path")
        if model_path in copies:
            base, window = copies[model_path]
            assert base == recipe["model"]
        else:
            window = NATIVE_CONTEXT[model_path]
        assert max_len <= window, (row.name, max_len, window)
        if NATIVE_CONTEXT[recipe["model"]] < max_len:  # Qwen2.5-Math-7B: only through the copy
            assert model_path in copies, row.name
    for cmd in stages["eval"] + stages.get("select", []):
        # vLLM's context for scoring: the prompt budget plus max_tokens fits, and the model holds that window
        assert int(flag(cmd, "--max-model-len")) >= 1024 + int(flag(cmd, "--max-tokens"))
        model = flag(cmd, "--model")
        if "/ckpt/" not in model:  # released models: Qwen through its copy, Llama as is
            assert model in copies or NATIVE_CONTEXT[model] >= int(flag(cmd, "--max-model-len"))


def test_without_the_override_the_qwen_rows_cannot_start(tmp_path, monkeypatch):
    """The reported error: --data.max_len 5120 on Qwen2.5-Math-7B's 4096 window. With the recipe's override removed,
    the preflight stops the table and names the row, the numbers and the fix."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    recipe = (REPRODUCE / "configs" / "recipes" / "posadv.yaml").read_text()
    assert "  max_position_embeddings:\n    value: 32768\n" in recipe
    (recipes / "posadv.yaml").write_text(
        recipe.replace(
            "  max_position_embeddings:\n    value: 32768\n", "  max_position_embeddings:\n    value: null\n"
        )
    )
    table = tmp_path / "posadv_table2.yaml"
    table.write_text((REPRODUCE / "configs" / "posadv_table2.yaml").read_text())
    code, stages, text = dry_run_commands("posadv_table2", tmp_path, monkeypatch, config_path=table)
    assert code != 0 and "train" not in stages
    training = [line for line in text.splitlines() if "FAIL context" in line and "training needs" in line]
    assert training and "grpo_n1" in training[0] and "5120 tokens (--data.max_len)" in training[0]
    assert "5120 > 4096" in training[0] and "context override" in training[0]


def test_the_override_must_cover_prompt_and_response():
    assert context_override({"max_prompt_len": 1024, "max_response_len": 4096}) is None
    assert context_override({"max_position_embeddings": None, "max_prompt_len": 1, "max_response_len": 1}) is None
    assert context_override({"max_position_embeddings": 5120, "max_prompt_len": 1024, "max_response_len": 4096}) == 5120
    with pytest.raises(ValueError, match="max_position_embeddings=5000 is below max_prompt_len \\+ max_response_len"):
        context_override({"max_position_embeddings": 5000, "max_prompt_len": 1024, "max_response_len": 4096})


def test_copy_names_carry_their_window_for_the_preflight(tmp_path):
    hub = context_model_dir("Qwen/Qwen2.5-Math-7B", 32768, tmp_path)
    assert hub == tmp_path / "Qwen--Qwen2.5-Math-7B-ctx32768"
    assert context_model_dir(str(tmp_path / "my_model"), 8192, tmp_path / "m").name == "my_model-ctx8192"
    assert context_of_model_dir(str(hub))[0] == 32768
    assert context_of_model_dir("Qwen/Qwen2.5-Math-7B") is None and context_of_model_dir("") is None
    hub.mkdir()
    (hub / "config.json").write_text(json.dumps({"max_position_embeddings": 16384}))
    assert context_of_model_dir(str(hub))[0] == 16384  # a built copy's own config wins over its name

    import preflight

    argv = ["--actor.model_name_or_path", str(hub), "--data.max_len", "5120"]
    assert preflight.context_override_of(argv)[0] == 16384  # registered with the preflight's readers


# --------------------------------------------------------------------------------------------------
# reproduce/prepare_model.py: the copy that carries the override to vLLM and DeepSpeed
# --------------------------------------------------------------------------------------------------
@pytest.fixture()
def released_model(tmp_path):
    """A model folder like the hub's: config.json (Qwen2.5-Math-7B's context fields), weights, tokenizer files."""
    folder = tmp_path / "released"
    folder.mkdir()
    config = {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "vocab_size": 64,
        "max_position_embeddings": 4096,
        "rope_theta": 10000.0,
        "sliding_window": 4096,
        "use_sliding_window": False,
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "tokenizer.json").write_text("{}")
    return folder


def test_prepare_model_links_the_weights_and_raises_only_the_window(released_model, tmp_path, capsys):
    import prepare_model

    out = tmp_path / "models" / "released-ctx32768"
    assert (
        prepare_model.main(["--model", str(released_model), "--max-position-embeddings", "32768", "--output", str(out)])
        == 0
    )
    original = json.loads((released_model / "config.json").read_text())
    copied = json.loads((out / "config.json").read_text())
    assert copied["max_position_embeddings"] == 32768
    assert {k: v for k, v in copied.items() if k != "max_position_embeddings"} == {
        k: v for k, v in original.items() if k != "max_position_embeddings"
    }  # rope_theta, sliding window and the rest unchanged
    for name in ("model.safetensors", "tokenizer.json"):
        assert (out / name).is_symlink() and (out / name).resolve() == (released_model / name).resolve()
    assert not (out / "config.json").is_symlink()
    assert json.loads((released_model / "config.json").read_text())["max_position_embeddings"] == 4096  # untouched
    assert context_model_ready(out, str(released_model), 32768)
    assert not context_model_ready(out, str(released_model), 8192)
    assert [p.name for p in out.parent.iterdir()] == [out.name], "no temporary folder is left behind"

    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(out).max_position_embeddings == 32768

    capsys.readouterr()
    assert (
        prepare_model.main(["--model", str(released_model), "--max-position-embeddings", "32768", "--output", str(out)])
        == 0
    )
    assert "is up to date" in capsys.readouterr().out  # resume
    with pytest.raises(FileExistsError, match="--force replaces it"):
        prepare_model.main(["--model", str(released_model), "--max-position-embeddings", "8192", "--output", str(out)])
    with pytest.raises(ValueError, match="below .* own 4096"):
        prepare_model.main(
            ["--model", str(released_model), "--max-position-embeddings", "2048", "--output", str(tmp_path / "x")]
        )


# --------------------------------------------------------------------------------------------------
# Item 4: Table 3's subsets (features and training length)
# --------------------------------------------------------------------------------------------------
def test_table3_subsets_train_as_many_steps_as_the_full_data_run():
    config = cfg("posadv_table3")
    full = config.recipe_for(config.row("full_data"))
    prompts = config.values("data")["expected_prompts"]
    per_rollout = full["prompts_per_rollout"]
    # the episode's last, short rollout batch is dropped (veRL's drop_last, integration.rollout_batches):
    # floor(prompts / 256) steps per episode; 17,398 = 67 x 256 + 246
    full_steps = full["epochs"] * (prompts // per_rollout)
    assert full_steps == 10 * 67 == 670
    subsets = [r for r in config.rows if r.trains and "subset" in r.overrides]
    assert len(subsets) == 10
    by_size = {}
    for row in subsets:
        recipe = config.recipe_for(row)
        per_episode = recipe["subset_size"] // per_rollout
        steps = recipe["epochs"] * per_episode
        assert full_steps <= steps < full_steps + per_episode, (row.name, steps)  # the fewest episodes that reach 670
        by_size[recipe["subset_size"]] = steps
        assert "equal steps" in row.overrides["epochs"].source and "[assumed]" in row.overrides["epochs"].source
    # hand: 18 x 39, 36 x 19, 75 x 9, 168 x 4, 335 x 2
    assert by_size == {10001: 702, 5031: 684, 2538: 675, 1246: 672, 616: 670}
    # the paired K-means / random rows of a size train the same steps
    assert (
        config.recipe_for(config.row("kmeans_616"))["epochs"] == config.recipe_for(config.row("random_616"))["epochs"]
    )


def test_table3_kmeans_rows_embed_with_the_papers_model(tmp_path, monkeypatch):
    config = cfg("posadv_table3")
    assert config.values("data")["subset_featurizer"] == "mean_pooled_final_layer"
    assert config.values("data")["subset_embed_model"] == "Qwen/Qwen2.5-Math-7B"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out, err = run_table(
        ["--config", str(REPRODUCE / "configs" / "posadv_table3.yaml"), "--dry-run", "--output-dir", str(tmp_path)]
    )
    assert code == 0, err
    data = [shlex.split(line[len("[data] ") :]) for line in out.splitlines() if line.startswith("[data] ")]
    kmeans = [cmd for cmd in data if "kmeans_top_clusters" in cmd]
    randoms = [cmd for cmd in data if "random" in cmd]
    assert len(kmeans) == 5 and len(randoms) == 5
    for cmd in kmeans:
        assert flag(cmd, "--featurizer") == "mean_pooled_final_layer"
        assert flag(cmd, "--embed-model") == "Qwen/Qwen2.5-Math-7B"
    assert not any("--featurizer" in cmd for cmd in randoms)


# --------------------------------------------------------------------------------------------------
# Settings the configs used to leave unsaid
# --------------------------------------------------------------------------------------------------
def test_ada_ent_reg_rows_state_every_controller_constant():
    from openrlhf_steer.methods.entropy_regularization import AdaptiveEntropyConfig
    import dataclasses

    fields = {f.name for f in dataclasses.fields(AdaptiveEntropyConfig)}
    config = cfg("posadv_table2")
    for name, target in (("ada_ent_reg_0_2", 0.2), ("ada_ent_reg_0_3657", 0.3657)):
        row = config.row(name)
        assert set(row.options) == fields, sorted(fields - set(row.options))
        assert row.option_values()["target_entropy"] == target
        # the text's H (Sec. 3.1: token-level average entropy) is the quantity the Entropy column reports
        assert row.option_values()["entropy_metric"] == config.values("training_entropy")["metric"]
        for key in ("coef_init", "coef_delta", "coef_min", "coef_max"):
            assert "[assumed]" in row.options[key].source, key


def test_posadv_eval_settings_are_explicit_and_reach_the_cli():
    ev = cfg("posadv_table2").eval
    for key in (
        "max_tokens",
        "max_model_len",
        "lcb_release",
        "lcb_start_date",
        "lcb_end_date",
        "graders",
        "ifeval_level",
    ):
        assert key in ev and ev[key].source, key
    assert "272" in ev["lcb_release"].source
    sampling = cfg("posadv_table2").values("eval")
    lcb = eval_command("m", ["livecodebench", "ifeval"], sampling, REPRODUCE)
    math_only = eval_command("m", ["aime24"], sampling, REPRODUCE)
    assert flag(lcb, "--lcb-release") == "release_v5" and flag(lcb, "--lcb-start-date") == "2024-08-01"
    assert flag(lcb, "--lcb-end-date") == "2025-02-01"
    assert "--lcb-release" not in math_only  # the eval CLI refuses LiveCodeBench options without LiveCodeBench
    assert flag(math_only, "--max-model-len") == "8192" and flag(math_only, "--max-tokens") == "4096"


def test_printed_ood_cells_are_counts_of_272_problems_and_834_instructions():
    """The evidence behind the LiveCodeBench and IF-Eval entries: every Pass@64 cell is a whole number of
    problems (LiveCodeBench: 272) or of IF-Eval instructions (834), and not of IF-Eval's 541 prompts."""

    def fits(value, count):
        return abs(round(round(value * count / 100) * 100 / count, 2) - value) < 1e-9

    cells = {"livecodebench": [], "ifeval": []}
    for name in POSADV_RESULTS:
        for row in cfg(name).rows:
            for bench in cells:
                value = row.paper[bench]["pass@n"]
                if value is not None:
                    cells[bench].append(value)
    assert len(cells["livecodebench"]) == len(cells["ifeval"]) == 39
    assert all(fits(v, 272) for v in cells["livecodebench"])
    assert all(fits(v, 834) for v in cells["ifeval"])
    assert sum(fits(v, 541) for v in cells["ifeval"]) <= 2  # chance agreements only


# --------------------------------------------------------------------------------------------------
# assemble_table.py: a printed average is checked against its printed cells up to the rounding of both
# --------------------------------------------------------------------------------------------------
# (table, row, column, metric): Pos-Adv averages whose printed value is off the mean of the printed cells by more
# than half a unit of the average alone (0.005) but by no more than the cells' rounding adds (another 0.005).
ROUNDING_ONLY = [
    ("posadv_table2", "base", "average_id", "pass@n"),  # 68.35 vs 68.344
    ("posadv_table2", "dapo_n2", "average_id", "pass@n"),  # 73.24 vs 73.246
    ("posadv_table2", "pos_adv_epoch", "average_id", "avg@n"),  # 45.05 vs 45.044
    ("posadv_table3", "base", "average_id", "pass@n"),  # Table 2's base row again
    ("posadv_table5", "base", "average_id", "pass@n"),  # 54.42 vs 54.414
    ("posadv_table5", "grpo_n4", "average_id", "avg@n"),  # 21.35 vs 21.356
    ("posadv_table5", "adv_nonpositive_only", "average_id", "avg@n"),  # 17.10 vs 17.106
    ("posadv_table5", "adv_nonpositive_only", "average_id", "pass@n"),  # 56.98 vs 56.986
]


def test_rounding_tolerance_by_hand():
    from assemble_table import rounding_tolerance

    assert rounding_tolerance(2, [2] * 5) == pytest.approx(0.005 + 0.005)
    assert rounding_tolerance(1, [1] * 6) == pytest.approx(0.05 + 0.05)
    assert rounding_tolerance(1, [2, 0]) == pytest.approx(0.05 + (0.005 + 0.5) / 2)
    with pytest.raises(ValueError, match="at least one member"):
        rounding_tolerance(2, [])


@pytest.mark.parametrize("table, row, column, metric", ROUNDING_ONLY)
def test_averages_off_by_rounding_only_are_consistent(table, row, column, metric):
    from assemble_table import paper_average_check

    config = cfg(table)
    r, col = config.row(row), config.column(column)
    check = paper_average_check(config, r, col)[metric]
    gap = abs(check["printed"] - sum(r.paper[k][metric] for k in col.mean_of) / len(col.mean_of))
    assert 0.005 < gap <= 0.01 + 1e-9  # beyond the average's own half unit; within the cells' rounding added
    assert check["consistent"] is True


def test_every_posadv_average_is_consistent_and_a_real_gap_is_still_flagged(tmp_path):
    from assemble_table import paper_average_check

    flagged = []
    for name in POSADV_RESULTS:
        config = cfg(name)
        for r in config.rows:
            for col in config.columns:
                for metric, check in (paper_average_check(config, r, col) or {}).items():
                    if check["consistent"] is False:
                        flagged.append((name, r.name, col.key, metric))
    assert flagged == []
    # STEER Table 1's Avg. of the STEER row (49.1 against 48.78) stays flagged
    steer = load_config(REPRODUCE / "configs" / "steer_table1.yaml")
    assert paper_average_check(steer, steer.row("steer"), steer.column("avg"))["avg@n"]["consistent"] is False
    # a constructed table: cells 10.01 and 10.02 (mean 10.015); 10.03 is 0.015 off, beyond 0.005 + 0.005
    bad = tmp_path / "t.yaml"
    bad.write_text(
        "table: t\ntitle: t\npaper: {}\nmetrics: [avg@n]\nprecision: 2\neval: {}\nselection: {}\nrecipe: {}\n"
        "columns: [{key: a, label: A, benchmark: aime24}, {key: b, label: B, benchmark: aime25},\n"
        "  {key: m, label: M, mean_of: [a, b]}]\n"
        "rows: [{name: gap, label: Gap, method: grpo, paper: {a: 10.01, b: 10.02, m: 10.03}},\n"
        "  {name: rounded, label: Rounded, method: grpo, paper: {a: 10.01, b: 10.02, m: 10.02}}]\n"
    )
    config = load_config(bad)
    off = paper_average_check(config, config.row("gap"), config.column("m"))["avg@n"]
    fine = paper_average_check(config, config.row("rounded"), config.column("m"))["avg@n"]
    assert off["consistent"] is False and fine["consistent"] is True


# --------------------------------------------------------------------------------------------------
# IF-Eval per instruction (eval.ifeval_level: instruction)
# --------------------------------------------------------------------------------------------------
# follows[prompt][response][instruction]: prompt 0 has two instructions, prompt 1 one; three responses each
FOLLOWS = [[[True, False], [True, True], [False, False]], [[False], [False], [False]]]


def test_instruction_level_by_hand():
    from repro_ifeval_level import instruction_level

    got = instruction_level(FOLLOWS, [1, 2, 3])
    # instructions: c = 2, 1, 0 of n = 3
    assert got["avg"] == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert got["pass@1"] == pytest.approx(got["avg"])
    assert got["pass@2"] == pytest.approx((1 + (1 - 1 / 3) + 0) / 3)  # 1 - C(n-c, 2) / C(3, 2)
    assert got["pass@3"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="expected one count"):
        instruction_level([[[True], [True, False]]], [1])


def write_ifeval_run(folder, follows, loose_follows=None):
    """results.json (prompt-level metrics, as the eval CLI writes them) and samples_ifeval.jsonl for ``follows``."""
    n = len(follows[0])
    rows = []
    for i, responses in enumerate(follows):
        for j, follow in enumerate(responses):
            verdicts = {"ifeval_strict": {"correct": all(follow), "detail": {"follow_instruction_list": follow}}}
            loose = (loose_follows or follows)[i][j]
            verdicts["ifeval_loose"] = {"correct": all(loose), "detail": {"follow_instruction_list": loose}}
            rows.append({"benchmark": "ifeval", "id": str(i), "index": i, "sample": j, "verdicts": verdicts})
    (folder / "samples_ifeval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    metrics = {}
    for grader, data in (("ifeval_strict", follows), ("ifeval_loose", loose_follows or follows)):
        per_prompt = [sum(all(f) for f in responses) for responses in data]
        metrics[f"ifeval/{grader}/avg@{n}"] = sum(c / n for c in per_prompt) / len(per_prompt)
        metrics[f"ifeval/{grader}/pass@k:k={n}&n={n}"] = sum(c > 0 for c in per_prompt) / len(per_prompt)
    (folder / "results.json").write_text(json.dumps({"metrics": metrics}))


def test_apply_ifeval_level_reads_the_graders_instruction_verdicts(tmp_path):
    from repro_pipeline import apply_ifeval_level, read_eval_scores

    loose = [[[True, True], [True, True], [False, False]], [[True], [False], [False]]]
    write_ifeval_run(tmp_path, FOLLOWS, loose)
    prompt = read_eval_scores(tmp_path, ["avg@n", "pass@n"], 3, ["ifeval"])
    assert prompt["ifeval"]["grader"] == "ifeval_strict"
    assert prompt["ifeval"]["avg@n"] == pytest.approx(100 / 6)  # prompt 0: one of three responses follows both
    got = apply_ifeval_level(prompt, tmp_path, {"n": 3, "ifeval_level": "instruction"})["ifeval"]
    assert got["avg@n"] == pytest.approx(100 / 3) and got["pass@n"] == pytest.approx(200 / 3)
    assert got["prompt_level"] == {"avg@n": pytest.approx(100 / 6), "pass@n": pytest.approx(50.0)}
    assert got["level"] == "instruction"
    # the loose grader's verdicts when the table reads loose: c = 2, 2, 1 -> avg 5/9, pass@3 1
    loose_scores = read_eval_scores(tmp_path, ["avg@n", "pass@n"], 3, ["ifeval"], graders=["ifeval_loose"])
    got = apply_ifeval_level(loose_scores, tmp_path, {"n": 3, "ifeval_level": "instruction"})["ifeval"]
    assert got["avg@n"] == pytest.approx(500 / 9) and got["pass@n"] == pytest.approx(100.0)
    assert apply_ifeval_level(prompt, tmp_path, {"n": 3}) == prompt  # prompt level: as the eval CLI scored it
    with pytest.raises(ValueError, match="ifeval_level='response'"):
        apply_ifeval_level(prompt, tmp_path, {"n": 3, "ifeval_level": "response"})
    with pytest.raises(ValueError, match="have not 4 responses"):
        apply_ifeval_level(prompt, tmp_path, {"n": 4, "ifeval_level": "instruction"})


def test_instruction_level_from_the_real_graders_samples_file(tmp_path, data_dir):
    """The eval CLI's own samples writer and IF-Eval grader: the per-instruction counts come out as the checkers
    say, response by response."""
    from openrlhf_steer_eval.graders import ifeval
    from openrlhf_steer_eval.outputs import write_samples
    from repro_ifeval_level import instruction_level_scores

    rows = ifeval.load_ifeval(str(data_dir / "ifeval" / "input_data.jsonl"))
    assert sum(len(r["instruction_id_list"]) for r in rows) == 834  # the denominator of the printed cells
    grader = ifeval.IfevalGrader("strict", seed=0, nltk_data=str(data_dir / "ifeval" / "nltk_data"))
    picked = [r for r in rows if len(r["instruction_id_list"]) >= 2][:2]
    responses = [["a short reply.", "A SHORT REPLY, ALL IN CAPITALS."] for _ in picked]
    verdicts = grader.grade(picked, responses)
    write_samples(
        tmp_path / "samples_ifeval.jsonl",
        "ifeval",
        [str(r["key"]) for r in picked],
        picked,
        [r["prompt"] for r in picked],
        responses,
        {"ifeval_strict": verdicts},
    )
    follows = [[ifeval.check_response(grader.checkers, r, x, "strict") for x in rs] for r, rs in zip(picked, responses)]
    counts = [sum(f[m] for f in fs) for fs in follows for m in range(len(fs[0]))]
    got = instruction_level_scores(tmp_path, "ifeval_strict", 2)
    assert got["avg@n"] == pytest.approx(100 * sum(c / 2 for c in counts) / len(counts))
    assert got["pass@n"] == pytest.approx(100 * sum(c > 0 for c in counts) / len(counts))
    assert got["pass@n"] > 0 and not any(all(f) for fs in follows for f in fs)  # per prompt it would score 0


def test_posadv_tables_score_ifeval_per_instruction():
    for name in POSADV_RESULTS:
        ev = cfg(name).eval
        assert ev["ifeval_level"].value == "instruction" and "834" in ev["ifeval_level"].source
