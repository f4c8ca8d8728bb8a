"""Command building, layout mapping, eval-result reading, checkpoint selection, table assembly, resume."""

import json
from pathlib import Path

import pytest

from steertest_reproduce import REPRODUCE

import repro_pipeline as P  # noqa: E402
from assemble_table import assemble, build_table, mean_of, render_markdown  # noqa: E402
from repro_config import load_config  # noqa: E402
from repro_selection import candidates, list_checkpoints, pick_best, pick_last, validate_policy  # noqa: E402


def flag_values(flags, name):
    i = flags.index(name)
    out = []
    for tok in flags[i + 1 :]:
        if tok.startswith("--"):
            break
        out.append(tok)
    return out


BASE = {
    "prompts_per_rollout": 512,
    "samples_per_prompt": 8,
    "mini_batch_prompts": 32,
    "max_prompt_len": 1024,
    "max_response_len": 3072,
    "eps_clip_low": 0.2,
    "eps_clip_high": 0.28,
    "dual_clip": 10.0,
    "lr": 1e-6,
    "lr_scheduler": "constant",
    "lr_warmup_ratio": 0.0,
    "gradient_checkpointing": True,
    "packing_samples": False,
}


def test_recipe_flags_map_paper_units_to_openrlhf():
    f = P.recipe_flags(BASE)
    assert flag_values(f, "--train.batch_size") == ["256"]  # 32 prompts x 8 responses
    assert flag_values(f, "--rollout.batch_size") == ["512"]
    assert flag_values(f, "--data.max_len") == ["4096"]  # 1024 + 3072
    assert flag_values(f, "--rollout.max_new_tokens") == ["3072"]
    assert flag_values(f, "--actor.eps_clip_low_high") == ["0.2", "0.28"]
    assert flag_values(f, "--actor.dual_clip") == ["10.0"]
    assert flag_values(f, "--actor.lr_scheduler") == ["constant"] and flag_values(f, "--actor.lr_warmup_ratio") == [
        "0.0"
    ]
    assert "--actor.gradient_checkpointing_enable" in f and "--ds.packing_samples" not in f


def test_updates_per_rollout_sets_the_mini_batch():
    recipe = {k: v for k, v in BASE.items() if k != "mini_batch_prompts"}
    for n_update, expected in ((1, 4096), (2, 2048), (4, 1024)):
        f = P.recipe_flags(dict(recipe, updates_per_rollout=n_update))
        assert flag_values(f, "--train.batch_size") == [str(expected)]  # 512/N prompts x 8
    with pytest.raises(ValueError, match="must divide"):
        P.recipe_flags(dict(recipe, updates_per_rollout=3))
    with pytest.raises(ValueError, match="not both"):
        P.recipe_flags(dict(BASE, updates_per_rollout=2))
    with pytest.raises(ValueError, match="no OpenRLHF mapping"):
        P.recipe_flags(dict(BASE, learning_rate=1))


def test_layout_flags():
    lay = P.Layout(nodes=2, gpus_per_node=8, vllm_tp=4, colocate=True)
    f = lay.flags()
    assert flag_values(f, "--actor.num_nodes") == ["2"] and flag_values(f, "--actor.num_gpus_per_node") == ["8"]
    assert flag_values(f, "--vllm.num_engines") == ["4"] and flag_values(f, "--vllm.tensor_parallel_size") == ["4"]
    assert "--train.colocate_all" in f and "--vllm.enable_sleep" in f
    assert "--train.colocate_all" not in P.Layout(colocate=False).flags()
    with pytest.raises(ValueError, match="--vllm-tp=3"):
        P.Layout(gpus_per_node=8, vllm_tp=3).validate()
    with pytest.raises(ValueError, match="--gpus=0"):
        P.Layout(gpus_per_node=0).validate()


def test_method_flags():
    assert P.method_flags("steer", {"mapping": "linear", "lambda_min": 0.8}) == [
        "--entropy.method",
        "steer",
        "--entropy.steer.mapping",
        "linear",
        "--entropy.steer.lambda_min",
        "0.8",
    ]


def test_eval_command():
    cmd = P.eval_command(
        Path("/m"),
        ["aime24", "amc23"],
        {"n": 32, "k": [1, 32], "temperature": 1.0, "top_p": 0.7, "max_tokens": 3072, "prompt_template": "boxed"},
        Path("/o"),
        "vllm",
        {"limit": 2, "trust_remote_code": True},
    )
    assert cmd[1:3] == ["-m", "openrlhf_steer_eval.cli"]
    assert flag_values(cmd, "--benchmarks") == ["aime24,amc23"] and flag_values(cmd, "--k") == ["1,32"]
    assert flag_values(cmd, "--top-p") == ["0.7"] and flag_values(cmd, "--limit") == ["2"]
    assert "--trust-remote-code" in cmd and cmd[-2:] == ["--output-dir", "/o"]


def write_results(out: Path, metrics):
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"metrics": metrics}))


def test_read_eval_scores_takes_the_configs_grader_and_converts_to_percent(tmp_path):
    write_results(
        tmp_path,
        {
            "aime24/math_verify/avg@32": 0.25,
            "aime24/steer_both/avg@32": 0.3,
            "aime24/math_verify/pass@k:k=32&n=32": 0.5,
            "aime24/steer_both/pass@k:k=32&n=32": 0.625,
            "amc23/qwen/avg@32": 0.625,
            "ifeval/strict_prompt/avg@4": 0.5,
        },
    )
    got = P.read_eval_scores(tmp_path, ["avg@n", "pass@n"], 32, ["aime24", "amc23"], graders=["steer_both"])
    assert (
        got["aime24"]["grader"] == "steer_both" and got["aime24"]["avg@n"] == 30.0 and got["aime24"]["pass@n"] == 62.5
    )
    assert got["aime24"]["by_grader"]["math_verify"] == {"avg@n": 25.0, "pass@n": 50.0}
    assert got["amc23"]["avg@n"] == 62.5 and "pass@n" not in got["amc23"]  # only the grader that scored it
    # without a configured grader Math-Verify is preferred
    assert P.read_eval_scores(tmp_path, ["avg@n"], 32, ["aime24"])["aime24"]["avg@n"] == 25.0
    assert P.metric_key("pass@n", 64) == "pass@k:k=64&n=64" and P.metric_key("avg@n", 1) == "avg@1"
    with pytest.raises(FileNotFoundError, match="results.json"):
        P.read_eval_scores(tmp_path / "nope", ["avg@n"], 32)


def test_selection_rules(tmp_path):
    for step in (10, 20, 80, 90, 100):
        (tmp_path / f"global_step{step}_hf").mkdir()
    (tmp_path / "global_step5").mkdir()  # a DeepSpeed checkpoint, not an HF one
    assert [s for s, _ in list_checkpoints(tmp_path)] == [10, 20, 80, 90, 100]
    assert [s for s, _ in candidates(tmp_path, min_step=80, every=10)] == [80, 90, 100]
    assert [s for s, _ in candidates(tmp_path, min_step=0, every=20)] == [20, 80, 100]
    assert pick_last(tmp_path)[0] == 100
    assert pick_best({80: 30.0, 90: 35.0, 100: 35.0}) == 90  # tie: the earlier step (strict improvement only)
    with pytest.raises(ValueError, match="no candidate"):
        pick_best({})
    with pytest.raises(FileNotFoundError):
        pick_last(tmp_path / "empty")
    with pytest.raises(ValueError, match="unknown"):
        validate_policy({"policy": "median"})


def _both(avg, pas):
    return {"avg@n": avg, "pass@n": pas}


def test_table_assembly_ours_paper_diff_with_the_papers_averages(tmp_path):
    cfg = load_config(REPRODUCE / "configs" / "posadv_table2.yaml")
    scores = {
        "aime24": _both(30.0, 60.0),
        "aime25": _both(20.0, 50.0),
        "math500": _both(80.0, 90.0),
        "amc23": _both(60.0, 95.0),
        "minerva_math": _both(40.0, 60.0),
        "livecodebench": _both(5.0, 30.0),
        "ifeval": _both(25.0, 70.0),
    }
    row_dir = tmp_path / "rows" / "grpo_n1"
    row_dir.mkdir(parents=True)
    (row_dir / "result.json").write_text(json.dumps({"scores": scores, "checkpoint": "/c", "training_entropy": 0.1}))
    table = build_table(cfg, {"grpo_n1": {"scores": scores, "training_entropy": 0.1}})
    grpo = next(r for r in table["rows"] if r["name"] == "grpo_n1")
    # paper GRPO (N=1) AIME 2024 is 28.75 / 63.33
    assert grpo["status"] == "done"
    assert grpo["cells"]["aime24"]["avg@n"] == {"ours": 30.0, "paper": 28.75, "diff": pytest.approx(1.25)}
    assert grpo["cells"]["aime24"]["pass@n"]["diff"] == pytest.approx(60.0 - 63.33)
    # Average (ID) = mean of the five math sets: (30+20+80+60+40)/5 = 46.0 (paper 44.12);
    # Pass@64: (60+50+90+95+60)/5 = 71.0 (paper 74.39); Average (OOD): (5+25)/2 = 15.0 and (30+70)/2 = 50.0
    assert grpo["cells"]["average_id"]["avg@n"]["ours"] == pytest.approx(46.0)
    assert grpo["cells"]["average_id"]["pass@n"]["ours"] == pytest.approx(71.0)
    assert grpo["cells"]["average_id"]["pass@n"]["paper"] == 74.39
    assert grpo["cells"]["average_ood"]["avg@n"]["ours"] == pytest.approx(15.0)
    assert grpo["cells"]["average_ood"]["pass@n"]["ours"] == pytest.approx(50.0)
    assert grpo["cells"]["entropy"]["entropy"] == {"ours": 0.1, "paper": 0.11838, "diff": pytest.approx(0.1 - 0.11838)}
    assert next(r for r in table["rows"] if r["name"] == "clip_lower")["status"] == "not run"
    paths = assemble(cfg, tmp_path)
    md = paths["markdown"].read_text()
    # two decimals, the paper's precision; the avg@64 and pass@64 tables each carry every row
    assert "| + GRPO (N=1) † | 30.00 / 28.75 (+1.25) | 20.00 / 14.69 (+5.31) |" in md
    assert "46.00 / 44.12 (+1.88) | 15.00 / 19.01 (-4.01) |" in md
    assert "| + Clip-Lower | not run / 27.76 |" in md
    assert (
        "## pass@n" in md and "AIME 2024 (pass@64)" in md and "| + GRPO (N=1) † | 0.10000 / 0.11838 (-0.01838) |" in md
    )
    assert "label inferred" in md and "printed as '+ GRPO ()'" in md
    assert json.loads(paths["json"].read_text())["rows"][1]["cells"]["average_id"]["avg@n"]["ours"] == pytest.approx(
        46.0
    )
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # ours vs paper bar chart
    assert mean_of([1.0, None]) is None and mean_of([1.0, 3.0]) == 2.0


def test_printed_average_kept_and_its_inconsistency_noted(tmp_path):
    """STEER Table 1 prints Avg. 49.1 for STEER, whose six cells average 48.78: keep 49.1, say so."""
    cfg = load_config(REPRODUCE / "configs" / "steer_table1.yaml")
    ours = {b: {"avg@n": v} for b, v in zip(cfg.benchmarks, [36.9, 16.2, 72.2, 82.4, 41.7, 43.3])}
    table = build_table(cfg, {"steer": {"scores": ours}})
    steer = next(r for r in table["rows"] if r["name"] == "steer")
    assert steer["cells"]["avg"]["avg@n"]["paper"] == 49.1
    # ours = the unrounded mean of our six cells: 292.7 / 6 = 48.7833...
    assert steer["cells"]["avg"]["avg@n"]["ours"] == pytest.approx(292.7 / 6)
    check = steer["paper_average_checks"]["avg"]["avg@n"]
    assert check["consistent"] is False and check["mean_of_printed_cells"] == pytest.approx(292.7 / 6)
    grpo = next(r for r in table["rows"] if r["name"] == "grpo")
    assert grpo["paper_average_checks"]["avg"]["avg@n"]["consistent"] is True  # 44.22 prints as 44.2
    md = render_markdown(table)
    assert "| STEER | 36.9 / 36.9 (+0.0) |" in md and "48.8 / 49.1 (-0.3) |" in md
    assert "STEER, Avg. (avg@n): the paper prints 49.1, the mean of its printed cells is 48.78." in md
    assert "AIME24 (avg@32)" in md and "MATH500 (avg@1)" in md
    inconsistent = [
        (r["name"], k)
        for r in table["rows"]
        for k, c in r["paper_average_checks"].items()
        if c and c["avg@n"]["consistent"] is False
    ]
    assert inconsistent == [("steer", "avg")]  # the only row of Table 1 whose Avg. is not its cells' mean


class RecordingExecutor:
    """Executes nothing; writes what each stage would produce so the pipeline can proceed (resume test)."""

    dry = False

    def __init__(self):
        self.calls = []
        self.echo = lambda msg: None

    def run(self, stage, cmd, log_path):
        self.calls.append((stage, cmd))
        if stage == "data":
            Path(cmd[cmd.index("--output") + 1]).parent.mkdir(parents=True, exist_ok=True)
            Path(cmd[cmd.index("--output") + 1]).write_text("{}\n")
        if stage in ("select", "eval"):
            out = Path(cmd[cmd.index("--output-dir") + 1])
            step = int(out.name[4:]) if out.name.startswith("step") else 0
            benches = cmd[cmd.index("--benchmarks") + 1].split(",")
            n = cmd[cmd.index("--n") + 1]
            write_results(
                out, {f"{b}/math_verify/avg@{n}": (0.1 + step / 1000.0 if b == "aime24" else 0.5) for b in benches}
            )

    def row_run(self, out, args):
        import run_table

        return run_table.PaperRun()

    def train(self, cmd, row_dir):
        self.calls.append(("train", cmd))
        ckpt = Path(cmd[cmd.index("--ckpt.path") + 1])
        for step in (140, 150, 160, 170):  # AIME24 score grows with the step; 160 and 170 lie past the 150-step cap
            (ckpt / f"global_step{step}_hf").mkdir(parents=True, exist_ok=True)


def test_pipeline_selects_evaluates_and_resumes(tmp_path):
    import run_table

    cfg = load_config(REPRODUCE / "configs" / "steer_table4.yaml")
    args = run_table.build_parser().parse_args(["--config", str(cfg.path), "--output-dir", str(tmp_path)])
    ex = RecordingExecutor()
    runner = run_table.TableRunner(cfg, args, ex)
    runner.run([cfg.row("steer")])
    stages = [s for s, _ in ex.calls]
    # selection evaluates steps 140 and 150 only (App. E.2: at most 150 rollout steps), then the final eval in two
    # sampling groups (avg@32 on AIME24/AIME25/AMC23, avg@1 on the others)
    assert stages == ["data", "train", "select", "select", "eval", "eval"]
    train = ex.calls[1][1]
    assert train[train.index("--train.num_episodes") + 1] == "5"  # 33 rollout steps per pass: 5 passes reach 150
    sel = json.loads((tmp_path / "rows" / "steer" / "selection.json").read_text())
    assert sel["step"] == 150 and sel["checkpoint"].endswith("global_step150_hf")
    final_eval = ex.calls[-1][1]
    assert final_eval[final_eval.index("--model") + 1].endswith("global_step150_hf")
    result = json.loads((tmp_path / "rows" / "steer" / "result.json").read_text())
    assert result["scores"]["amc23"]["avg@n"] == pytest.approx(50.0)
    assert (tmp_path / "steer_table4.md").is_file()
    # resume: the done row is skipped entirely
    ex2 = RecordingExecutor()
    run_table.TableRunner(cfg, args, ex2).run([cfg.row("steer")])
    assert ex2.calls == []
    # interrupted after training: only selection/eval/result are redone, training is not
    (tmp_path / "rows" / "steer" / "result.json").unlink()
    (tmp_path / "rows" / "steer" / "selection.json").unlink()
    ex3 = RecordingExecutor()
    run_table.TableRunner(cfg, args, ex3).run([cfg.row("steer")])
    assert [s for s, _ in ex3.calls] == []  # selection evals and final eval results are on disk: nothing reruns
    assert json.loads((tmp_path / "rows" / "steer" / "selection.json").read_text())["step"] == 150


def test_training_entropy_is_the_ema_of_the_logged_entropy(tmp_path):
    from repro_entropy import ema, entropy_series, final_training_entropy

    log = tmp_path / "train.log"
    log.write_text(
        "noise\n"
        "INFO ✨ Global step 1: {'policy_loss': 0.1, 'entropy/old_mean': 0.5, 'reward': 0.2}\n"
        "INFO ✨ Global step 2: {'entropy/old_mean': 0.3}\n"
        "INFO ✨ Global step 3: {'entropy/old_mean': 1e-1, 'x': 2}\n"
    )
    assert entropy_series(log.read_text(), "entropy/old_mean") == [(1, 0.5), (2, 0.3), (3, 0.1)]
    # s1 = 0.5; s2 = 0.6*0.5 + 0.4*0.3 = 0.42; s3 = 0.6*0.42 + 0.4*0.1 = 0.292
    assert final_training_entropy(log, "entropy/old_mean", 0.6) == pytest.approx(0.292)
    assert final_training_entropy(log, "entropy/old_mean", 0.6, max_step=2) == pytest.approx(0.42)
    assert ema([], 0.6) is None and final_training_entropy(tmp_path / "none.log", "e", 0.6) is None
    with pytest.raises(ValueError, match="coefficient"):
        ema([1.0], 1.0)


def test_eval_groups_split_by_sample_count():
    groups = P.eval_groups(
        ["aime24", "math500", "amc23", "minerva_math"],
        {"n": {"aime24": 32, "amc23": 32, "default": 1}, "k": [1, 32], "temperature": 1.0},
    )
    assert groups == [
        (["aime24", "amc23"], {"n": 32, "k": [1, 32], "temperature": 1.0}),
        (["math500", "minerva_math"], {"n": 1, "k": [1], "temperature": 1.0}),
    ]
    assert P.eval_groups(["a"], {"n": 4}) == [(["a"], {"n": 4})]
    # graders per benchmark: math sets get the configured grader, IF-Eval keeps its own (no --graders flag)
    mixed = P.eval_groups(["aime24", "ifeval"], {"n": 2, "graders": {"default": ["math_verify"], "ifeval": None}})
    assert mixed == [(["aime24"], {"n": 2, "graders": ["math_verify"]}), (["ifeval"], {"n": 2, "graders": None})]
    assert "--graders" not in P.eval_command(Path("m"), ["ifeval"], mixed[1][1], Path("o"))
    cmd = P.eval_command(Path("m"), ["aime24"], mixed[0][1], Path("o"))
    assert cmd[cmd.index("--graders") + 1] == "math_verify"
    with pytest.raises(ValueError, match="no entry for 'b'"):
        P.eval_groups(["b"], {"n": {"a": 1}})
    assert P.group_dir(Path("/e"), 0, {"n": 4}, 1) == Path("/e")
    assert P.group_dir(Path("/e"), 1, {"n": 1}, 2) == Path("/e/g1_n1")


def test_executor_logs_streams_and_reports_failures(tmp_path, capsys):
    import sys

    import run_table

    ex = run_table.Executor(echo=lambda m: None)
    ex.run("eval", [sys.executable, "-c", "print('line one'); print('line two')"], tmp_path / "a.log")
    assert "line one\nline two\n" in capsys.readouterr().out  # echoed while it runs
    assert "line two" in (tmp_path / "a.log").read_text()
    quiet = run_table.Executor(echo=lambda m: None, quiet=True)
    with pytest.raises(RuntimeError, match=r"exit code 3; log: .*b\.log[\s\S]*boom"):
        quiet.run("train", [sys.executable, "-c", "print('boom'); raise SystemExit(3)"], tmp_path / "b.log")
    assert capsys.readouterr().out == ""


def test_eval_data_args(tmp_path):
    (tmp_path / "aime24").mkdir()
    (tmp_path / "ifeval").mkdir()
    (tmp_path / "ifeval" / "input_data.jsonl").write_text("{}\n")
    (tmp_path / "livecodebench").mkdir()  # a sample only: no release files
    args = P.eval_data_args(tmp_path, ["aime24", "ifeval", "livecodebench"])
    assert args == {
        "data_dir": str(tmp_path),
        "data": [
            f"ifeval={tmp_path / 'ifeval' / 'input_data.jsonl'}",
            "livecodebench=livecodebench/code_generation_lite",
        ],
    }
    assert P.eval_data_args(tmp_path, ["aime24"]) == {"data_dir": str(tmp_path)}
    assert P.eval_data_args(None, ["aime24"]) == {}
    cmd = P.eval_command(Path("/m"), ["ifeval", "livecodebench"], {"n": 1}, Path("/o"), "vllm", args)
    assert cmd.count("--data") == 2  # a repeatable flag is repeated
    with pytest.raises(FileNotFoundError, match="--eval-data-dir"):
        P.eval_data_args(tmp_path / "missing", ["aime24"])
