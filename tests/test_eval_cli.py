"""The CLI in score mode on real data with hand-made responses of known correctness; input errors."""

import json
import math

import pytest

from openrlhf_steer_eval.cli import build_parser, main


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def aime24_golds(data_dir):
    rows = [json.loads(line) for line in (data_dir / "aime24" / "test.jsonl").read_text().splitlines()]
    return [(str(r["id"]), r["answer"]) for r in rows]


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_documents_every_required_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--model",
        "--backend",
        "--benchmarks",
        "--n",
        "--k",
        "--temperature",
        "--top-p",
        "--max-tokens",
        "--output-dir",
        "--score-only",
        "--lcb-release",
        "--lcb-start-date",
        "--lcb-end-date",
        "--benchmark-option",
        "--grader-timeout",
        "--no-chat-template",
        "--preset",
    ):
        assert flag in text, flag


def test_score_mode_metrics_match_hand_computation(data_dir, tmp_path, capsys):
    golds = aime24_golds(data_dir)
    (id0, g0), (id1, g1), (_, g2), (id3, g3) = golds[:4]
    wrong = "\\boxed{99999}"
    rows = [
        {"id": id0, "responses": [f"\\boxed{{{g0}}}"] * 4},  # c = 4
        {"id": int(id1), "responses": [f"\\boxed{{{g1}}}", wrong, f"The answer is $\\boxed{{{g1}}}$.", wrong]},  # 2
        {"id": 2, "responses": [wrong] * 4},  # c = 0 (addressed by 0-based line index)
        # c = 1 for math_verify; Qwen's percentage leniency also accepts g3/100
        {"id": id3, "responses": [wrong, f"\\boxed{{{int(g3) / 100}}}", f"\\boxed{{{g3}}}", wrong]},
    ]
    f = write_jsonl(tmp_path / "responses.jsonl", rows)
    out = tmp_path / "out"
    code, stdout, _ = run(
        [
            "--benchmarks",
            "aime24",
            "--data",
            f"aime24={data_dir / 'aime24'}",
            "--score-only",
            str(f),
            "--output-dir",
            str(out),
            "--k",
            "1,2,8",
            "--grader-workers",
            "0",
        ],
        capsys,
    )
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    m, se = res["metrics"], res["stderr"]
    per = [1.0, 0.5, 0.0, 0.25]
    mean = sum(per) / 4
    assert m["aime24/math_verify/avg@4"] == pytest.approx(mean)
    assert se["aime24/math_verify/avg@4"] == pytest.approx(math.sqrt(sum((p - mean) ** 2 for p in per) / 3 / 4))
    p2 = [1.0, 1 - math.comb(2, 2) / math.comb(4, 2), 0.0, 1 - math.comb(3, 2) / math.comb(4, 2)]
    assert m["aime24/math_verify/pass@k:k=2&n=4"] == pytest.approx(sum(p2) / 4)
    assert m["aime24/qwen/avg@4"] == pytest.approx((1 + 0.5 + 0 + 0.5) / 4)
    assert "aime24/math_verify/pass@k:k=8&n=4" not in m
    assert res["skipped_ks"]["aime24"]["skipped"] == [8]
    d = res["disagreements"]["aime24"]["math_verify vs qwen"]
    assert d["count"] == 1 and d["second_only"] == 1 and d["problem_ids"] == [id3]
    assert res["benchmarks"]["aime24"]["num_problems"] == 4
    assert res["config"]["score_only"] == {"aime24": str(f)}
    assert "math-verify" in res["versions"] and res["harness"]["name"] == "openrlhf_steer_eval"
    # per-sample file: one line per response, both verdicts, extracted answer
    samples = [json.loads(line) for line in (out / "samples_aime24.jsonl").read_text().splitlines()]
    assert len(samples) == 16
    s = samples[13]  # problem 3, sample 1: g3/100
    assert s["id"] == id3 and s["sample"] == 1 and s["gold"] == g3
    assert s["verdicts"]["qwen"]["correct"] is True and s["verdicts"]["math_verify"]["correct"] is False
    assert s["verdicts"]["qwen"]["extracted"] == str(int(g3) / 100)
    from openrlhf_steer_eval.outputs import pass_at_k_series

    assert res["plot"] == "pass_at_k.png" and (out / "pass_at_k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    series = pass_at_k_series(res)["aime24"]["math_verify"]
    assert [(k, v) for k, v, _ in series] == [(1, pytest.approx(mean)), (2, pytest.approx(sum(p2) / 4))]
    md = (out / "results.md").read_text()
    assert "| aime24 | math_verify | 4 | 43.8 ±" in md and "math_verify vs qwen" in md
    assert md in stdout


@pytest.mark.parametrize(
    "lines,message",
    [
        (['{"id": "60", "responses": ["a"]}', "{oops"], r"responses.jsonl:2: not valid JSON"),
        (['{"responses": ["a"]}'], r"responses.jsonl:1: missing field 'id'"),
        (['{"id": "nope", "responses": ["a"]}'], r"responses.jsonl:1: unknown problem id 'nope'"),
        (['{"id": 500, "responses": ["a"]}'], r"responses.jsonl:1: id 500 is neither a problem id nor a line index"),
        (['{"id": "60", "responses": "a"}'], r"responses.jsonl:1: field 'responses' must be a non-empty list"),
        (
            ['{"id": "60", "responses": ["a"]}', '{"id": 0, "responses": ["b"]}'],
            r"responses.jsonl:2: problem '60' already given on line 1",
        ),
        (
            ['{"id": "60", "responses": ["a"]}', '{"id": "61", "responses": ["a", "b"]}'],
            r"responses.jsonl: problem '61' has 2 responses but '60' has 1; every problem needs the same number",
        ),
    ],
)
def test_bad_response_files_name_the_line(lines, message, data_dir, tmp_path, capsys):
    f = tmp_path / "responses.jsonl"
    f.write_text("\n".join(lines) + "\n")
    code, _, err = run(
        [
            "--benchmarks",
            "aime24",
            "--data-dir",
            str(data_dir),
            "--score-only",
            str(f),
            "--output-dir",
            str(tmp_path / "o"),
            "--grader-workers",
            "0",
        ],
        capsys,
    )
    assert code == 2
    assert pytest.importorskip("re").search(message, err), err


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--benchmarks", "nosuch"], "unknown benchmark 'nosuch'"),
        (["--benchmarks", "aime24"], "--backend is required"),
        (["--benchmarks", "aime24,amc23", "--score-only", "x.jsonl"], "needs exactly one --benchmarks entry"),
        (["--benchmarks", "aime24", "--score-only", "missing.jsonl"], "does not exist"),
        (["--benchmarks", "aime24", "--lcb-release", "release_v5", "--backend", "hf"], "applies to livecodebench"),
        (
            ["--benchmarks", "aime24", "--benchmark-option", "aime24:release=v5", "--backend", "hf", "--model", "m"],
            "unknown key(s) release",
        ),
        (["--benchmarks", "aime24", "--backend", "hf", "--model", "m", "--top-p", "0"], "--top-p must be in (0, 1]"),
        (["--benchmarks", "aime24", "--backend", "hf", "--model", "m", "--preset", "hot"], "unknown --preset 'hot'"),
    ],
)
def test_bad_flags_give_clear_errors(argv, message, data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(argv + ["--data-dir", str(data_dir), "--output-dir", str(tmp_path / "o")], capsys)
    assert code == 2
    assert message in err, err


def test_output_dir_required(capsys):
    code, _, err = run(["--benchmarks", "aime24", "--score-only", __file__], capsys)
    assert code == 2 and "--output-dir is required" in err


def test_bad_k_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--k", "1,x"])
    assert "--k expects comma-separated integers" in capsys.readouterr().err


def test_list_benchmarks(capsys):
    assert main(["--list-benchmarks"]) == 0
    out = capsys.readouterr().out
    for name in ("aime24", "aime25", "amc23", "math500", "minerva_math", "olympiadbench", "livecodebench", "ifeval"):
        assert name in out


def test_failed_benchmark_keeps_finished_ones_and_resume_reuses_them(data_dir, tmp_path, capsys):
    golds = aime24_golds(data_dir)
    good = write_jsonl(tmp_path / "aime.jsonl", [{"id": pid, "responses": [f"\\boxed{{{g}}}"]} for pid, g in golds])
    bad = tmp_path / "amc.jsonl"
    bad.write_text('{"id": 0, "responses": ["\\\\boxed{27}"]}\n{"id": 1, "responses": [}\n')
    out = tmp_path / "out"
    argv = [
        "--benchmarks",
        "aime24,amc23",
        "--data-dir",
        str(data_dir),
        "--score-only",
        f"aime24={good}",
        "--score-only",
        f"amc23={bad}",
        "--output-dir",
        str(out),
        "--grader-workers",
        "0",
    ]
    code, _, err = run(argv, capsys)
    assert code == 2 and "amc.jsonl:2: not valid JSON" in err
    assert not (out / "results.json").exists()
    partial = json.loads((out / "results.partial.json").read_text())
    assert partial["complete"] is False and partial["metrics"]["aime24/math_verify/avg@1"] == 1.0
    bad.write_text('{"id": 0, "responses": ["\\\\boxed{27}"]}\n{"id": 1, "responses": ["\\\\boxed{0}"]}\n')
    code, _, _ = run(argv, capsys)
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] is True and not (out / "results.partial.json").exists()
    assert res["benchmarks"]["aime24"]["reused_from_previous_run"] is True
    assert res["metrics"]["aime24/math_verify/avg@1"] == 1.0
    assert res["metrics"]["amc23/math_verify/avg@1"] == 0.5  # 27 right, 0 wrong (gold 36)


def test_interrupted_grading_resumes_with_ungraded_problems(data_dir, tmp_path, capsys, monkeypatch):
    from openrlhf_steer_eval import runner
    from openrlhf_steer_eval.graders.base import Verdict, register_grader

    calls, crash_on = [], {"call": 2}

    class CountingGrader:
        name = "steertest_count"

        def __init__(self, config):
            pass

        def grade(self, problems, responses):
            calls.append([p["gold_answer"] for p in problems])
            if len(calls) == crash_on["call"]:
                raise KeyboardInterrupt
            return [[Verdict(r == f"\\boxed{{{p['gold_answer']}}}") for r in rs] for p, rs in zip(problems, responses)]

    register_grader("steertest_count", CountingGrader, replace=True)
    monkeypatch.setattr(runner, "GRADE_CHUNK_RESPONSES", 2)  # n = 1 -> two problems per grade() call
    golds = aime24_golds(data_dir)[:5]
    f = write_jsonl(
        tmp_path / "r.jsonl",
        [{"id": pid, "responses": [f"\\boxed{{{g if i % 2 == 0 else 0}}}"]} for i, (pid, g) in enumerate(golds)],
    )
    argv = [
        "--benchmarks",
        "aime24",
        "--data-dir",
        str(data_dir),
        "--score-only",
        str(f),
        "--graders",
        "steertest_count",
        "--output-dir",
        str(tmp_path / "out"),
    ]
    assert main(argv) == 130
    assert calls == [[golds[0][1], golds[1][1]], [golds[2][1], golds[3][1]]]
    calls.clear()
    crash_on["call"] = -1
    assert main(argv) == 0
    assert calls == [[golds[2][1], golds[3][1]], [golds[4][1]]]  # the first chunk came from the cache
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["metrics"]["aime24/steertest_count/avg@1"] == pytest.approx(3 / 5)
    capsys.readouterr()


def test_benchmark_options_reach_the_loader(data_dir, tmp_path, capsys, monkeypatch):
    from openrlhf_steer_eval.benchmarks import get_benchmark

    seen = {}
    bench = get_benchmark("aime24")
    real = bench.load

    def spy(source=None, **options):
        seen.update(options, source=source)
        return real(source)

    monkeypatch.setattr(bench, "load", spy)
    monkeypatch.setitem(bench.options, "note", "test-only option")
    f = write_jsonl(tmp_path / "r.jsonl", [{"id": 0, "responses": ["\\boxed{204}"]}])
    code, _, err = run(
        [
            "--benchmarks",
            "aime24",
            "--data-dir",
            str(data_dir),
            "--score-only",
            str(f),
            "--benchmark-option",
            "aime24:config=a:b",
            "--benchmark-option",
            "note=x=1",
            "--output-dir",
            str(tmp_path / "o"),
            "--grader-workers",
            "0",
        ],
        capsys,
    )
    assert code == 0, err
    assert seen == {"config": "a:b", "note": "x=1", "source": str(data_dir / "aime24" / "test.jsonl")}


def test_lcb_flags_reach_the_livecodebench_loader(tmp_path, capsys, monkeypatch):
    from openrlhf_steer_eval.benchmarks import NotInstalledError, get_benchmark

    try:
        bench = get_benchmark("livecodebench")
    except NotInstalledError:
        pytest.skip("the LiveCodeBench plug-in is not installed")
    seen = {}

    def spy(source=None, **options):
        seen.update(options)
        raise ValueError("stop after the loader call")

    monkeypatch.setattr(bench, "load", spy)
    code, _, err = run(
        [
            "--benchmarks",
            "livecodebench",
            "--lcb-release",
            "release_v5",
            "--lcb-start-date",
            "2024-08-01",
            "--lcb-end-date",
            "2025-02-01",
            "--backend",
            "openai",
            "--model",
            "m",
            "--output-dir",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert code == 2 and "stop after the loader call" in err
    assert seen == {"release": "release_v5", "start_date": "2024-08-01", "end_date": "2025-02-01"}


def test_grader_options_reach_the_graders(data_dir, tmp_path, capsys):
    from openrlhf_steer_eval.graders.base import Verdict, register_grader

    seen = {}

    class OptionGrader:
        name = "steertest_options"

        def __init__(self, config):
            seen.update(config.options, workers=config.workers, timeout=config.timeout)

        def grade(self, problems, responses):
            return [[Verdict(False) for _ in rs] for rs in responses]

    register_grader("steertest_options", OptionGrader, replace=True)
    f = write_jsonl(tmp_path / "r.jsonl", [{"id": 0, "responses": ["x"]}])
    code, _, err = run(
        [
            "--benchmarks",
            "aime24",
            "--data-dir",
            str(data_dir),
            "--score-only",
            str(f),
            "--graders",
            "steertest_options",
            "--grader-option",
            "test_timeout=3",
            "--grader-option",
            "nltk_data=/a=b",
            "--grader-workers",
            "3",
            "--grader-timeout",
            "4.5",
            "--output-dir",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert code == 0, err
    assert seen == {"test_timeout": "3", "nltk_data": "/a=b", "workers": 3, "timeout": 4.5}
    code, _, err = run(
        [
            "--benchmarks",
            "aime24",
            "--data-dir",
            str(data_dir),
            "--score-only",
            str(f),
            "--grader-option",
            "novalue",
            "--output-dir",
            str(tmp_path / "o2"),
        ],
        capsys,
    )
    assert code == 2 and "--grader-option expects NAME=VALUE" in err


def test_data_dir_serves_ifeval_offline(data_dir, tmp_path, capsys, monkeypatch):
    """--data-dir alone is enough for IF-Eval: the folder's only JSONL is the input file and its
    nltk_data sub-folder is passed to the graders (skipped when the IF-Eval plug-in is absent)."""
    from openrlhf_steer_eval.benchmarks import NotInstalledError, get_benchmark

    try:
        get_benchmark("ifeval")
    except NotInstalledError:
        pytest.skip("the IF-Eval plug-in is not installed")
    monkeypatch.delenv("NLTK_DATA", raising=False)
    rows = [json.loads(line) for line in (data_dir / "ifeval" / "input_data.jsonl").read_text().splitlines()[:2]]
    f = write_jsonl(tmp_path / "r.jsonl", [{"id": r["key"], "responses": ["hello"]} for r in rows])
    out = tmp_path / "o"
    code, _, err = run(
        ["--benchmarks", "ifeval", "--data-dir", str(data_dir), "--score-only", str(f), "--output-dir", str(out)],
        capsys,
    )
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    assert res["benchmarks"]["ifeval"]["source"] == str(data_dir / "ifeval" / "input_data.jsonl")
    assert res["config"]["grader_config"]["options"]["nltk_data"] == str(data_dir / "ifeval" / "nltk_data")
    assert "ifeval/ifeval_strict/avg@1" in res["metrics"]


@pytest.mark.slow
def test_reference_solutions_score_100_through_the_cli(data_dir, tmp_path, capsys):
    """MATH-500 (ids = unique_id) and Minerva (ids = idx) reference solutions as responses: Math-Verify
    gives avg@1 = 1 through the whole CLI path, with the worker pool, and qwen all but the toolkit's one per set."""
    argv = [
        "--benchmarks",
        "math500,minerva_math",
        "--data-dir",
        str(data_dir),
        "--output-dir",
        str(tmp_path / "out"),
        "--grader-workers",
        "2",
        "-q",
    ]
    for name, key in (("math500", "unique_id"), ("minerva_math", "idx")):
        rows = [json.loads(line) for line in (data_dir / name / "test.jsonl").read_text().splitlines()]
        f = write_jsonl(tmp_path / f"{name}.jsonl", [{"id": r[key], "responses": [r["solution"]]} for r in rows])
        argv += ["--score-only", f"{name}={f}"]
    code, _, err = run(argv, capsys)
    assert code == 0, err
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    for name, count in (("math500", 500), ("minerva_math", 272)):
        assert res["benchmarks"][name]["num_problems"] == count
        assert res["metrics"][f"{name}/math_verify/avg@1"] == 1.0
        # Qwen2.5-Math's toolkit rejects one reference solution per set (tests/test_eval_math_graders.py)
        assert res["metrics"][f"{name}/qwen/avg@1"] == pytest.approx(1 - 1 / count)
        assert res["disagreements"][name]["math_verify vs qwen"]["count"] == 1
