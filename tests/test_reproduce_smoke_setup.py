"""`--smoke` set-up without running it: the scaled-down recipe, the driver plan and how a failed run is reported."""

import json
import os

import pytest

from steertest_reproduce import REPO

import repro_smoke


@pytest.mark.parametrize(
    "steps, subset, episodes",
    [
        (2, None, 1),  # 8 prompts / 4 per rollout step = 2 steps per episode
        (3, None, 2),  # not a multiple: the next one up (4 steps)
        (4, None, 2),
        (2, 50, 2),  # a data-diversity subset is cut to 4 prompts: 1 step per episode
    ],
)
def test_episodes_give_the_asked_rollout_steps(tmp_path, steps, subset, episodes):
    setup = repro_smoke.SmokeSetup(tmp_path, tmp_path, steps=steps)
    recipe = {"prompts_per_rollout": 256, "epochs": 10, "model": "Qwen/Qwen2.5-Math-7B"}
    if subset:
        recipe.update(subset="kmeans", subset_size=subset)
    out = setup.recipe(recipe)
    assert out["epochs"] == episodes and out["prompts_per_rollout"] == 4 and out["save_steps"] == 1
    assert out["model"] == str(tmp_path / "tiny-llama")


def test_smoke_steps_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="--smoke-steps=0"):
        repro_smoke.SmokeSetup(tmp_path, tmp_path, steps=0)


def test_the_driver_gets_the_table_command_plus_gloo_sync(tmp_path):
    cmd = ["/py", "-m", "openrlhf_steer.apps.train", "--ds.zero_stage", "3", "--entropy.method", "steer"]
    run = repro_smoke.OpenRLHFSmokeRun(cmd, tmp_path / "rows" / "steer", python="/py")
    run.write_plan()
    plan = json.loads(run.plan_path.read_text())
    assert plan["runs"] == [
        {
            "name": "steer",
            "argv": ["--ds.zero_stage", "3", "--entropy.method", "steer", "--vllm.sync_backend", "gloo"],
        }
    ]
    assert plan["num_gpus"] == 1 and plan["results"] == str(run.results_path)
    assert run.command() == ["/py", str(REPO / "tests" / "support" / "steertest_e2e_driver.py"), str(run.plan_path)]
    env = run.env()
    paths = env["PYTHONPATH"].split(os.pathsep)
    assert paths[0] == str(REPO / "tests" / "support")
    # the import stubs go on the path only where vllm or flash_attn is not installed (a GPU install keeps its own)
    absent = repro_smoke._absent("vllm") or repro_smoke._absent("flash_attn")
    assert (str(REPO / "tests" / "support" / "stubs") in paths) == absent
    assert "RAY_ADDRESS" not in env and env["STEERTEST_E2E_REPORT"] == str(run.report_path)


def test_a_failed_or_missing_run_raises_with_its_error(tmp_path):
    run = repro_smoke.OpenRLHFSmokeRun(["/py", "-m", "m", "--x"], tmp_path)
    log = tmp_path / "train.log"
    log.write_text("... the last lines of OpenRLHF's console ...\n")
    with pytest.raises(RuntimeError, match="(?s)no result .the driver stopped early.*the last lines"):
        run.check(log)
    run.results_path.write_text(json.dumps({"name": "r", "rc": None, "error": "RayTaskError: boom", "seconds": 1}))
    with pytest.raises(RuntimeError, match="rc=None RayTaskError: boom"):
        run.check(log)
    run.results_path.write_text(json.dumps({"name": "r", "rc": 0, "error": None, "seconds": 1}) + "\n")
    assert run.check(log)["rc"] == 0


def test_a_test_support_stub_does_not_count_as_installed():
    import importlib.util

    spec = importlib.util.find_spec("vllm")
    if spec is None or "stubs" not in (spec.origin or ""):
        pytest.skip("the vllm import stub is not what this interpreter finds")
    assert repro_smoke._absent("vllm")  # the tests' conftest puts the stub first; the driver still needs it
