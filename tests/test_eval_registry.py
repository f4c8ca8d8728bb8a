"""Registry contract: lazy plug-ins, clear "not installed" errors, prompt templates, standalone imports."""

import json
import subprocess
import sys
import textwrap

import pytest

from openrlhf_steer_eval import benchmarks as registry
from openrlhf_steer_eval.graders import base
from openrlhf_steer_eval.graders.base import (
    Benchmark,
    GraderConfig,
    PromptOptions,
    SamplingDefaults,
    Verdict,
    register_benchmark,
    register_grader,
)
from openrlhf_steer_eval.prompts import BOXED_INSTRUCTION, math_prompt


def test_missing_plugin_module_gives_not_installed_error(monkeypatch):
    monkeypatch.setattr(registry, "PLUGIN_MODULES", ("openrlhf_steer_eval.no_such_plugin",))
    monkeypatch.setattr(registry, "PLUGIN_BENCHMARKS", {"fancy_code": "openrlhf_steer_eval.no_such_plugin"})
    with pytest.raises(
        registry.NotInstalledError,
        match="'fancy_code' is provided by openrlhf_steer_eval.no_such_plugin.*module not installed",
    ):
        registry.get_benchmark("fancy_code")
    with pytest.raises(registry.NotInstalledError, match="grader 'fancy_exec' is not registered"):
        registry.make_grader("fancy_exec", GraderConfig())
    with pytest.raises(KeyError, match="unknown benchmark 'nope'"):
        registry.get_benchmark("nope")


def test_broken_plugin_does_not_break_math(monkeypatch, tmp_path):
    (tmp_path / "steertest_broken_plugin.py").write_text("raise RuntimeError('plugin exploded')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "PLUGIN_MODULES", ("steertest_broken_plugin",))
    errors = registry._import_plugins()
    assert errors == {"steertest_broken_plugin": "RuntimeError: plugin exploded"}
    assert registry.get_benchmark("aime24").name == "aime24"


def test_plugin_registration_round_trip():
    class EchoGrader:
        name = "steertest_echo"

        def __init__(self, config):
            self.config = config

        def grade(self, problems, responses):
            return [[Verdict(r == p["want"], r) for r in rs] for p, rs in zip(problems, responses)]

    register_grader("steertest_echo", EchoGrader)
    bench = register_benchmark(
        Benchmark(
            name="steertest_echo_bench",
            load=lambda source=None, **kw: [{"want": "a"}, {"want": "b"}],
            prompt=lambda row, opts: row["want"],
            graders=["steertest_echo"],
            sampling=SamplingDefaults(n=2),
            options={"flavour": "test option"},
        )
    )
    assert registry.get_benchmark("steertest_echo_bench") is bench
    grader = registry.make_grader("steertest_echo", GraderConfig(timeout=3.0))
    assert grader.config.timeout == 3.0 and isinstance(grader, base.Grader)
    assert [[v.correct for v in row] for row in grader.grade(bench.load(), [["a", "x"], ["b", "b"]])] == [
        [True, False],
        [True, True],
    ]
    with pytest.raises(ValueError, match="already registered"):
        register_benchmark(
            Benchmark(
                name="steertest_echo_bench",
                load=bench.load,
                prompt=bench.prompt,
                graders=["x"],
                sampling=SamplingDefaults(),
            )
        )
    with pytest.raises(ValueError, match="contain no '/'"):
        register_grader("a/b", EchoGrader)
    with pytest.raises(ValueError, match="needs at least one grader"):
        Benchmark(name="empty", load=bench.load, prompt=bench.prompt, graders=[], sampling=SamplingDefaults())


def test_math_prompt_templates():
    q = "What is $1+1$?"
    assert math_prompt(q, PromptOptions()) == [{"role": "user", "content": f"{q}\n{BOXED_INSTRUCTION}"}]
    assert math_prompt(q, PromptOptions(system="Be brief.")) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": f"{q}\n{BOXED_INSTRUCTION}"},
    ]
    assert math_prompt(q, PromptOptions(chat=False)) == f"Question: {q}\n{BOXED_INSTRUCTION}\nAnswer: "
    assert math_prompt(q, PromptOptions(template="qwen25-math-cot")) == [
        {"role": "system", "content": BOXED_INSTRUCTION},
        {"role": "user", "content": q},
    ]
    with pytest.raises(ValueError, match="unknown prompt template 'x'.*--prompt-template"):
        math_prompt(q, PromptOptions(template="x"))
    assert BOXED_INSTRUCTION == "Please reason step by step, and put your final answer within \\boxed{}."


def test_package_is_never_a_top_level_eval_module():
    import openrlhf_steer_eval

    assert openrlhf_steer_eval.__name__ == "openrlhf_steer_eval"
    assert "eval" not in sys.modules or not hasattr(sys.modules["eval"], "benchmarks")


def test_score_mode_runs_without_openrlhf_ray_deepspeed_or_torch(data_dir, tmp_path):
    responses = tmp_path / "r.jsonl"
    responses.write_text(json.dumps({"id": 0, "responses": ["\\boxed{27}", "\\boxed{3}"]}) + "\n")
    script = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("openrlhf", "ray", "deepspeed", "torch", "vllm", "transformers"):
                    raise ImportError("blocked for this test: " + name)
        sys.meta_path.insert(0, Block())
        from openrlhf_steer_eval.cli import main
        code = main(["--benchmarks", "amc23", "--data-dir", {str(data_dir)!r}, "--score-only", {str(responses)!r},
                     "--output-dir", {str(tmp_path / "out")!r}, "--grader-workers", "1", "-q"])
        assert code == 0, code
        bad = [m for m in sys.modules if m.split(".")[0] in ("openrlhf", "ray", "deepspeed", "torch")]
        assert not bad, bad
        print("OK")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("OK")
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["metrics"]["amc23/math_verify/avg@2"] == 0.5
