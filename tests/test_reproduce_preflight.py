"""reproduce/preflight.py: each check on a good and a deliberately broken row (values worked out by hand from
the published configs and OpenRLHF 0.11.2's own rules), and `run_table --dry-run` of every table running it."""

import json
from pathlib import Path

import pytest
import yaml

from steertest_reproduce import CONFIGS, REPRODUCE, run_table, train_commands

import preflight as pf  # noqa: E402  (reproduce/ is on sys.path through steertest_reproduce)
from repro_config import load_config  # noqa: E402

REWARDS = REPRODUCE / "rewards"
QWEN_MATH = "Qwen/Qwen2.5-Math-7B"


def qwen_math_facts(**changes):
    """Qwen2.5-Math-7B as its config.json gives it (max_position_embeddings 4096, 152064 embedding rows) and the
    Qwen2.5 tokenizer (151643 BPE tokens + 22 added = 151665)."""
    values = {
        "max_position_embeddings": 4096,
        "rope_scaling": None,
        "vocab_size": 152064,
        "tokenizer_vocab": 151665,
        "chat_template": True,
        "default_system_prompt": "Please reason step by step, and put your final answer within \\boxed{}.",
    }
    values.update(changes)
    return pf.ModelFacts(QWEN_MATH, values, {k: "test table" for k in values})


def ctx_with(facts=None):
    facts = facts or qwen_math_facts()
    return pf.Context(fact_table={facts.model: facts}, use_hub=False)


def train_argv(**flags):
    """A launcher command with STEER's recipe on 8 GPUs (as repro_pipeline builds it), flags overridden."""
    base = {
        "--actor.num_nodes": "1",
        "--actor.num_gpus_per_node": "8",
        "--vllm.num_engines": "8",
        "--vllm.tensor_parallel_size": "1",
        "--rollout.batch_size": "512",
        "--rollout.n_samples_per_prompt": "8",
        "--train.batch_size": "256",  # 32 prompts x 8 samples
        "--train.micro_batch_size": "8",
        "--rollout.micro_batch_size": "8",
        "--rollout.max_new_tokens": "3072",
        "--data.max_len": "4096",  # 1024 + 3072
        "--reward.remote_url": str(REWARDS / "dapo_math_reward_strict_box.py"),
    }
    base.update(flags)
    argv = ["python", "-m", "openrlhf_steer.apps.train"]
    for flag, value in base.items():
        argv += [flag, value]
    return argv + ["--train.colocate_all", "--data.apply_chat_template"]


def eval_argv(*extra, benchmarks="aime24", max_tokens="3072"):
    head = ["python", "-m", "openrlhf_steer_eval.cli", "--model", "ckpt", "--benchmarks", benchmarks]
    return head + ["--max-tokens", max_tokens, *extra]


def plan(train=None, evals=(), prompt_budget=1024, row="row"):
    return pf.RowPlan(
        "tbl",
        row,
        QWEN_MATH,
        train=pf.train_plan_from_argv(train) if train is not None else None,
        evals=tuple(pf.eval_plan_from_argv(e) for e in evals),
        prompt_budget=prompt_budget,
    )


def only(results, status=None):
    assert len(results) == 1, results
    if status:
        assert results[0].status == status, results[0]
    return results[0]


# ---------------------------------------------------------------------------------------------- context
def test_context_fits_steer_and_fails_posadv_on_qwen_math():
    ok = only(pf.check_context(plan(train_argv()), ctx_with()), pf.OK)
    assert ok.value.startswith("training prompt 1024 + response 3072 = 4096 tokens (--data.max_len)")
    bad = only(
        pf.check_context(
            plan(train_argv(**{"--data.max_len": "5120", "--rollout.max_new_tokens": "4096"})), ctx_with()
        ),
        pf.FAIL,
    )
    assert (bad.check, bad.row) == ("context", "tbl/row")
    assert "prompt 1024 + response 4096 = 5120 tokens" in bad.value and bad.value.endswith(": 5120 > 4096")
    assert "Qwen/Qwen2.5-Math-7B max_position_embeddings 4096 (test table)" in bad.value
    assert "context override" in bad.fix and "max_prompt_len/max_response_len" in bad.fix


def test_context_override_on_the_command_is_honoured():
    overridden = pf.TrainPlan(**{**pf.train_plan_from_argv(train_argv()).__dict__, "max_len": 5120})
    assert only(pf.check_context(pf.RowPlan("tbl", "row", QWEN_MATH, train=overridden), ctx_with()), pf.FAIL)
    extended = pf.TrainPlan(**{**overridden.__dict__, "context_override": (8192, "test override")})
    ok = only(pf.check_context(pf.RowPlan("tbl", "row", QWEN_MATH, train=extended), ctx_with()), pf.OK)
    assert "context override 8192 (test override)" in ok.value


def test_eval_context_counts_the_prompt_budget():
    fits = plan(evals=[eval_argv(max_tokens="3072")])
    assert only(pf.check_context(fits, ctx_with()), pf.OK).value.startswith(
        "eval (aime24): prompt budget 1024 + --max-tokens 3072 = 4096; "
        "Qwen/Qwen2.5-Math-7B max_position_embeddings 4096"
    )
    long = plan(evals=[eval_argv(max_tokens="4096"), eval_argv(benchmarks="math500", max_tokens="3072")])
    bad = only(pf.check_context(long, ctx_with()), pf.FAIL)
    assert bad.value.startswith("eval (aime24): prompt budget 1024 + --max-tokens 4096 = 5120; Qwen/Qwen2.5-Math-7B")
    assert bad.value.endswith(": 5120 > 4096 (vLLM would cut responses short of max_tokens)")
    assert "eval.max_model_len" in bad.fix


def test_eval_max_model_len_needs_a_model_with_that_context(monkeypatch):
    # --max-model-len above the model's own 4096: vLLM refuses it
    refused = plan(evals=[eval_argv("--max-model-len", "8192", max_tokens="4096")])
    bad = only(pf.check_context(refused, ctx_with()), pf.FAIL)
    assert "--max-model-len 8192 > Qwen/Qwen2.5-Math-7B max_position_embeddings 4096" in bad.value
    assert "vLLM refuses a max_model_len above the model's context" in bad.value
    # an extended-context copy named on the eval command (a registered reader recognises it)
    monkeypatch.setattr(
        pf, "CONTEXT_OVERRIDES", [lambda argv: (32768, "test copy") if argv[-1].endswith("-ctx32768") else None]
    )
    copy = ["python", "-m", "openrlhf_steer_eval.cli", "--model", "models/Qwen2.5-Math-7B-ctx32768"]
    extended = plan(evals=[copy + ["--benchmarks", "aime24", "--max-tokens", "4096", "--max-model-len", "8192"]])
    ok = only(pf.check_context(extended, ctx_with()), pf.OK)
    assert ok.value == (
        "eval (aime24): prompt budget 1024 + --max-tokens 4096 = 5120; --max-model-len 8192 "
        "(context override 32768 (test copy))"
    )
    # a checkpoint trained with an override keeps that context
    trained = pf.TrainPlan(**{**pf.train_plan_from_argv(train_argv()).__dict__, "context_override": (32768, "t")})
    row = pf.RowPlan(
        "tbl",
        "row",
        QWEN_MATH,
        train=trained,
        prompt_budget=1024,
        evals=(pf.eval_plan_from_argv(eval_argv("--max-model-len", "8192", max_tokens="4096")),),
    )
    assert [r.status for r in pf.check_context(row, ctx_with())] == [pf.OK, pf.OK]


@pytest.mark.parametrize(
    "rope, expected",
    [
        (None, 4096),
        ({"rope_type": "linear", "factor": 2.0}, 8192),  # vLLM multiplies max_position_embeddings by the factor
        ({"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}, 131072),  # Qwen2.5 long context
        ({"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 8192}, 4096),  # already counted
    ],
)
def test_vllm_derived_context(rope, expected):
    assert pf.vllm_derived_context(qwen_math_facts(rope_scaling=rope)) == expected


def test_unknown_model_names_the_facts_file():
    ctx = pf.Context(fact_table={}, use_hub=False)
    bad = only(pf.check_context(plan(train_argv()), ctx), pf.FAIL)
    assert bad.value == (
        "Qwen/Qwen2.5-Math-7B: max_position_embeddings unknown, add it to reproduce/configs/facts/model_facts.yaml"
    )
    assert "reproduce/configs/facts/model_facts.yaml" in bad.fix


# ---------------------------------------------------------------------------------------------- chat template
def test_chat_template_present_missing_and_default_system_turn():
    assert only(pf.check_chat_template(plan(train_argv()), ctx_with()), pf.OK)
    bad = only(pf.check_chat_template(plan(train_argv()), ctx_with(qwen_math_facts(chat_template=False))), pf.FAIL)
    assert bad.value.startswith("Qwen/Qwen2.5-Math-7B has no chat template (test table)")
    assert "training (--data.apply_chat_template)" in bad.value and "apply_chat_template false" in bad.fix
    # the eval CLI's implicit chat mode on a "bare question" prompt gets the template's default system turn
    implicit = plan(evals=[eval_argv("--prompt-template", "question")])
    warn = only(pf.check_chat_template(implicit, ctx_with()), pf.WARN)
    assert "inserts the system turn 'Please reason step by step" in warn.value
    # stated in the config (explicit --chat-template, or a system prompt): on purpose, no finding
    explicit = plan(evals=[eval_argv("--prompt-template", "question", "--chat-template")])
    assert only(pf.check_chat_template(explicit, ctx_with()), pf.OK)


def write_model(folder: Path, vocab_size: int, n_tokens: int, template: str = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"max_position_embeddings": 64, "vocab_size": vocab_size}))
    vocab = {f"t{i}": i for i in range(n_tokens - 2)}
    added = [{"id": n_tokens - 2, "content": "<s>"}, {"id": n_tokens - 1, "content": "</s>"}]
    (folder / "tokenizer.json").write_text(json.dumps({"model": {"vocab": vocab}, "added_tokens": added}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": template} if template else {}))
    return folder


def test_live_template_that_is_not_the_recorded_one_fails(tmp_path):
    folder = write_model(tmp_path / "m", 100, 100, template="{{ messages[0]['content'] }}")
    recorded = qwen_math_facts()
    ctx = pf.Context(fact_table={str(folder): pf.ModelFacts(str(folder), recorded.values, recorded.sources)})
    row = pf.RowPlan("tbl", "row", str(folder), train=pf.train_plan_from_argv(train_argv()))
    bad = only(pf.check_chat_template(row, ctx), pf.FAIL)
    assert "lacks the default system turn 'Please reason step by step" in bad.value
    assert f"{folder}/tokenizer_config.json" in bad.value


# The system branch of Qwen2.5-Math's template as tokenizer_config.json holds it once JSON-decoded: a Jinja
# string literal, so the backslash of \boxed is written twice.
QWEN_MATH_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + "
    "'<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nPlease reason step by step, and put your final "
    "answer within \\\\boxed{}.<|im_end|>\\n' }}{%- endif %}{%- for message in messages %}{{- '<|im_start|>' + "
    "message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def test_live_template_is_compared_as_rendered(tmp_path):
    assert "within \\\\boxed{}" in QWEN_MATH_TEMPLATE  # two backslash characters in the text
    assert pf.rendered(QWEN_MATH_TEMPLATE) == (
        "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
        "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
    )
    folder = write_model(tmp_path / "m", 100, 100, template=QWEN_MATH_TEMPLATE)
    recorded = qwen_math_facts()
    ctx = pf.Context(fact_table={str(folder): pf.ModelFacts(str(folder), recorded.values, recorded.sources)})
    row = pf.RowPlan("tbl", "row", str(folder), train=pf.train_plan_from_argv(train_argv()))
    assert only(pf.check_chat_template(row, ctx), pf.OK)
    # a template the table only assumed: a mismatch is the table's error, reported without stopping the run
    other = write_model(tmp_path / "o", 100, 100, template="{{ messages[0]['content'] }}")
    guessed = pf.ModelFacts(str(other), recorded.values, recorded.sources, assumed=frozenset({"default_system_prompt"}))
    row = pf.RowPlan("tbl", "row", str(other), train=pf.train_plan_from_argv(train_argv()))
    assert only(pf.check_chat_template(row, pf.Context(fact_table={str(other): guessed})), pf.WARN)


# ---------------------------------------------------------------------------------------------- vocab
def test_vocab_padded_embedding_is_fine_and_a_larger_tokenizer_fails():
    ok = only(pf.check_vocab(plan(train_argv()), ctx_with()), pf.OK)
    assert "tokenizer 151665 tokens (test table), embedding 152064 rows (test table) (padded embedding)" in ok.value
    bad = only(pf.check_vocab(plan(train_argv()), ctx_with(qwen_math_facts(tokenizer_vocab=152100))), pf.FAIL)
    assert bad.value.endswith(": 152100 > 152064, token ids past 152063 have no embedding")
    assert "len(tokenizer) <= vocab_size" in bad.fix


def test_vocab_read_from_a_local_model_folder(tmp_path):
    folder = write_model(tmp_path / "tiny", vocab_size=50, n_tokens=60)  # 58 BPE + 2 added = 60 ids
    row = pf.RowPlan("tbl", "row", str(folder))
    bad = only(pf.check_vocab(row, pf.Context(fact_table={}, use_hub=False)), pf.FAIL)
    assert bad.value == (
        f"{folder}: tokenizer 60 tokens ({folder}/tokenizer.json), embedding 50 rows ({folder}/config.json): "
        "60 > 50, token ids past 49 have no embedding"
    )
    write_model(folder, vocab_size=64, n_tokens=60)
    assert only(pf.check_vocab(row, pf.Context(fact_table={}, use_hub=False)), pf.OK)


# ---------------------------------------------------------------------------------------------- batch
def test_batch_steer_recipe_divides():
    ok = only(pf.check_batch(plan(train_argv()), ctx_with()), pf.OK)
    assert ok.value == ("rollout 512x8, train batch 256 (micro 8), rollout micro 8, 8 GPUs, 8 vLLM engines x TP 1")


# Each broken command breaks exactly one of OpenRLHF's rules (worked out by hand).
BROKEN_BATCHES = [
    ({"--vllm.num_engines": "4"}, "colocated engines fill the actor GPUs", "vLLM engines 4 x TP 1 vs actor GPUs 8"),
    (
        {"--rollout.micro_batch_size": "9"},  # 456 slices, the last of 1 sample; 456 = 57 x 8 ranks
        "rollout micro-batch divides the rollout",
        "rollout 512 x 8 samples = 4096 vs rollout micro-batch 9",
    ),
    (
        {
            "--rollout.batch_size": "4",
            "--rollout.n_samples_per_prompt": "2",
            "--train.batch_size": "8",
            "--train.micro_batch_size": "1",
            "--rollout.micro_batch_size": "2",
        },
        "enough rollout micro-batches for every DP rank",
        "4 rollout micro-batches vs 8 DP ranks",
    ),
    (
        {"--rollout.micro_batch_size": "32", "--rollout.batch_size": "48", "--train.batch_size": "128"},
        "rollout micro-batches split evenly over DP ranks",
        "12 rollout micro-batches over 8 DP ranks",
    ),
    (
        {"--train.micro_batch_size": "24"},
        "train batch = micro-batch x grad-accumulation x DP ranks",
        "train batch 256 vs micro-batch 24 x 8 DP ranks = 192",
    ),
    (
        {"--train.batch_size": "384"},  # mini_batch_prompts 48 does not divide 512 prompts
        "whole optimizer steps per rollout",
        "rollout 512 x 8 = 4096 samples vs train batch 384",
    ),
]


# Fewer micro-batches than ranks can never be split evenly either: that case breaks two rules.
ALSO_BROKEN = {"enough rollout micro-batches for every DP rank": ["rollout micro-batches split evenly over DP ranks"]}


@pytest.mark.parametrize("flags, rule, value", BROKEN_BATCHES, ids=[b[1] for b in BROKEN_BATCHES])
def test_batch_rule_breaks(flags, rule, value):
    results = pf.check_batch(plan(train_argv(**flags)), ctx_with())
    assert [r.status for r in results] == [pf.FAIL] * len(results)
    assert [r.value.split(" fails: ")[0] for r in results] == [rule] + ALSO_BROKEN.get(rule, [])
    assert results[0].value.startswith(f"{rule} fails: {value} (")
    assert results[0].fix == next(r.fix for r in pf.BATCH_RULES if r.name == rule)


def test_batch_rules_are_not_applied_to_the_estimator():
    estimator = pf.TrainPlan(**{**pf.train_plan_from_argv(train_argv()).__dict__, "runner": "estimator"})
    assert pf.check_batch(pf.RowPlan("tbl", "row", QWEN_MATH, train=estimator), ctx_with()) == []


# ---------------------------------------------------------------------------------------------- reward
@pytest.mark.parametrize("name", ["dapo_math_reward.py", "dapo_math_reward_strict_box.py"])
def test_reward_files_score_the_known_answer(name):
    row = plan(train_argv(**{"--reward.remote_url": str(REWARDS / name)}))
    ok = only(pf.check_reward(row, ctx_with()), pf.OK)
    assert ok.value == f"{name}: right answer +1, wrong answer -1 (label 42)"  # DAPO: +1 correct, -1 otherwise


def test_reward_that_scores_wrong_or_does_not_load_fails(tmp_path):
    always = tmp_path / "always_right.py"
    always.write_text("def reward_func(queries, prompts, labels):\n    return {'rewards': [1.0 for _ in queries]}\n")
    bad = only(pf.check_reward(plan(train_argv(**{"--reward.remote_url": str(always)})), ctx_with()), pf.FAIL)
    assert (
        bad.value == "always_right.py: right answer +1, wrong answer +1 (label 42): expected right > 0 and wrong <= 0"
    )
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_module_here\n")
    bad = only(pf.check_reward(plan(train_argv(**{"--reward.remote_url": str(broken)})), ctx_with()), pf.FAIL)
    assert bad.value.startswith(f"{broken} does not load or score: ModuleNotFoundError")


# ---------------------------------------------------------------------------------------------- eval data
def test_eval_data_counts_on_the_shared_data(data_dir):
    benches = "aime24,aime25,amc23,math500,minerva_math,olympiadbench,ifeval"
    row = plan(evals=[eval_argv("--data-dir", str(data_dir), benchmarks=benches)])
    results = pf.check_eval_data(row, ctx_with())
    assert [r.status for r in results] == [pf.OK] * 7
    counts = {r.value.split(":")[0]: int(r.value.split(": ")[1].split()[0]) for r in results}
    assert counts == {
        "aime24": 30,
        "aime25": 30,
        "amc23": 40,
        "math500": 500,
        "minerva_math": 272,
        "olympiadbench": 675,
        "ifeval": 541,
    }


def test_eval_data_missing_short_and_hub(tmp_path):
    (tmp_path / "aime24").mkdir()
    (tmp_path / "aime24" / "test.jsonl").write_text("".join(json.dumps({"id": i}) + "\n" for i in range(29)))
    row = plan(evals=[eval_argv("--data-dir", str(tmp_path), benchmarks="aime24,amc23")])
    short, missing = pf.check_eval_data(row, ctx_with())
    assert (short.status, short.value) == (
        pf.FAIL,
        f"aime24: 29 rows in {tmp_path}/aime24/test.jsonl, expected 30",
    )
    assert (missing.status, missing.value) == (
        pf.FAIL,
        f"amc23: {tmp_path}/amc23 is missing (the eval CLI would silently fall back to the hub)",
    )
    assert "--eval-data-dir" in missing.fix
    hub = only(pf.check_eval_data(plan(evals=[eval_argv(benchmarks="aime24")]), ctx_with()), pf.WARN)
    assert hub.value.startswith("no --eval-data-dir (nor $OPENRLHF_STEER_DATA): the eval CLI loads every test set")
    named = plan(evals=[eval_argv("--data-dir", str(tmp_path), "--data", "amc23=org/amc", benchmarks="amc23")])
    assert only(pf.check_eval_data(named, ctx_with()), pf.WARN).value == (
        "amc23: loaded from the hub (org/amc) at eval time, not checked here"
    )


def test_eval_data_livecodebench_release_files(tmp_path):
    lcb = tmp_path / "livecodebench"
    lcb.mkdir()
    # release_v5 = test.jsonl .. test5.jsonl: 400 + 111 + 101 + 101 + 167 = 880 problems (LCB README)
    for name, n in [("test.jsonl", 400), ("test2.jsonl", 111), ("test3.jsonl", 101), ("test4.jsonl", 101)]:
        (lcb / name).write_text("{}\n" * n)
    row = plan(evals=[eval_argv("--data-dir", str(tmp_path), benchmarks="livecodebench")])
    assert "lacks ['test5.jsonl']" in only(pf.check_eval_data(row, ctx_with()), pf.FAIL).value
    (lcb / "test5.jsonl").write_text("{}\n" * 167)
    assert only(pf.check_eval_data(row, pf.Context(fact_table={}, use_hub=False)), pf.OK).value.startswith(
        "livecodebench: 880 rows in"
    )


# ---------------------------------------------------------------------------------------------- facts table
def config_models():
    models = set()
    for path in CONFIGS:
        cfg = load_config(path)
        models |= {str(v) for v in (cfg.values("recipe").get("model"),) if v}
        for row in cfg.rows:
            models.add(str(row.released_model.value) if row.released_model else str(cfg.recipe_for(row)["model"]))
        models |= {str(r["model"]) for r in cfg.analysis_rows if "model" in r}
    return models


def test_every_model_the_configs_name_has_every_fact_with_a_source():
    table = pf.load_fact_table()
    raw = yaml.safe_load(pf.FACTS_FILE.read_text())["models"]
    for model in sorted(config_models()):
        assert model in table, f"{model} is missing from {pf.FACTS_FILE}"
        assert set(table[model].values) == set(pf.FACT_FIELDS), model
        assert all(str(raw[model][f]["source"]).strip() for f in pf.FACT_FIELDS), model


# ---------------------------------------------------------------------------------------------- run_table
def broken_config(tmp_path, **recipe):
    """steer_table2 with recipe entries overridden, its shared recipe named by absolute path."""
    raw = yaml.safe_load((REPRODUCE / "configs" / "steer_table2.yaml").read_text())
    raw["extends"] = str(REPRODUCE / "configs" / raw["extends"])
    raw.setdefault("recipe", {}).update(
        {k: {"value": v, "source": "test: broken on purpose"} for k, v in recipe.items()}
    )
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_dry_run_of_a_broken_config_stops_before_anything(tmp_path):
    path = broken_config(tmp_path, max_response_len=4096, micro_batch_per_gpu=24)
    out_dir = tmp_path / "out"
    code, out, err = run_table(["--config", str(path), "--dry-run", "--rows", "linear", "--output-dir", str(out_dir)])
    assert code == 2 and "[train]" not in out and "[data]" not in out and not out_dir.exists()
    assert "preflight failed" in err and "nothing was started" in err
    assert (
        "[preflight] FAIL context steer_table2: linear: training needs prompt 1024 + response 4096 = 5120 tokens "
        "(--data.max_len); Qwen/Qwen2.5-Math-7B max_position_embeddings 4096" in err
    )
    assert (
        "[preflight] FAIL batch steer_table2: linear: train batch = micro-batch x grad-accumulation x DP ranks fails: "
        "train batch 256 vs micro-batch 24 x 8 DP ranks = 192" in err
    )
    # --skip-preflight runs it anyway, with a warning
    code, out, err = run_table(
        ["--config", str(path), "--dry-run", "--rows", "linear", "--skip-preflight", "--output-dir", str(out_dir)]
    )
    assert code == 0 and "--skip-preflight: the rows are not checked" in err and len(train_commands(out)) == 1


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_dry_run_of_every_table_passes_the_preflight(path, tmp_path, data_dir):
    code, out, err = run_table(
        ["--config", str(path), "--dry-run", "--eval-data-dir", str(data_dir), "--output-dir", str(tmp_path)]
    )
    summary = [line for line in out.splitlines() if line.startswith("[preflight] ") and " row(s), checks " in line]
    assert len(summary) == 1, out
    assert code == 0, err
    assert summary[0].endswith(" 0 failed")


# ---------------------------------------------------------------------------------------------- hub facts
def test_hub_facts_win_over_the_table_and_a_dead_hub_falls_back(tmp_path, monkeypatch):
    import huggingface_hub

    served = write_model(tmp_path / "hub", vocab_size=152064, n_tokens=151665)
    calls = []

    def download(repo, name, local_files_only=False, etag_timeout=None):
        calls.append((repo, name, local_files_only, etag_timeout))
        if not (served / name).is_file():
            raise FileNotFoundError(name)
        return str(served / name)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # offline: the local cache only
    table = {QWEN_MATH: qwen_math_facts(max_position_embeddings=1)}
    facts = pf.Context(fact_table=table).facts(QWEN_MATH)
    assert {c[1] for c in calls} == set(pf.MODEL_FILES) and all(c[2] is True and c[3] == 5 for c in calls)
    assert facts.get("max_position_embeddings") == 64 and facts.get("tokenizer_vocab") == 151665
    assert facts.cite("max_position_embeddings") == f"https://huggingface.co/{QWEN_MATH}/blob/main/config.json"
    assert facts.get("default_system_prompt") == table[QWEN_MATH].get("default_system_prompt")  # table fills gaps

    def dead(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", dead)
    facts = pf.Context(fact_table=table).facts(QWEN_MATH)
    assert facts.get("max_position_embeddings") == 1 and facts.cite("max_position_embeddings") == "test table"


def test_a_failed_preflight_starts_nothing_without_dry_run_either(tmp_path):
    path = broken_config(tmp_path, micro_batch_per_gpu=24)
    out_dir = tmp_path / "out"
    code, out, err = run_table(["--config", str(path), "--rows", "linear", "--output-dir", str(out_dir)])
    assert code == 2 and "FAIL batch steer_table2: linear" in err and not out_dir.exists()
