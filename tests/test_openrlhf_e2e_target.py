"""`openrlhf-steer train` with an entropy target, through OpenRLHF 0.11.2's own ``train()`` on CPU
(slow; the same driver, stand-ins and tiny model as tests/test_openrlhf_e2e.py, two runs only): a PI
controller on Pos-Adv's lambda following a cosine target, saved with OpenRLHF's checkpoint and resumed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("openrlhf")


def _sibling(name: str):
    """The e2e helpers of tests/test_openrlhf_e2e.py (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"_steertest_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_e2e = _sibling("test_openrlhf_e2e")
PROMPTS, run_plan, _ok = _e2e.PROMPTS, _e2e.run_plan, _e2e._ok
_common, _replace_flag, _short_problems = _e2e._common, _e2e._replace_flag, _e2e._short_problems

# The tiny random model's rollout entropy is about 4.53 nats: a target just around it keeps the lever inside
# (0, 1), so the integral and the resume carry real state (a target of 0.2 would pin lambda at 1 at once).
TARGET = {
    "lever": "pos_adv.lambda",
    "controller": "pi",
    "schedule": "cosine",
    "start": 4.6,
    "end": 4.45,
    "total_steps": 4,
    "initial": 0.5,
    "kp": 1.0,
    "ki": 0.5,
}
OURS = ["--entropy.method", "pos_adv_reweight", "--entropy.pos_adv_reweight.schedule", "target"] + [
    item for key, value in TARGET.items() for item in (f"--entropy.target.{key}", str(value))
]
LOGGED = [f"train/controller/target/{k}" for k in ("target", "measured", "error", "lever")]


@pytest.fixture(scope="module")
def e2e_target(tmp_path_factory, data_dir):
    pytest.importorskip("tensorboard")
    from steertest_evalmodel import build_tiny_model

    root = tmp_path_factory.mktemp("e2e_target")
    model = build_tiny_model(root / "model", seed=0)
    prompts = root / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in _short_problems(data_dir, PROMPTS)))
    first = OURS + _common(root, "target_pi", model, prompts) + ["--ckpt.save_steps", "1"]
    resume = _replace_flag(first, "--train.num_episodes", "2") + ["--ckpt.load_enable"]
    resume = _replace_flag(resume, "--logger.tensorboard_dir", str(root / "tb" / "target_pi_resumed"))
    runs = [{"name": "target_pi", "argv": first}, {"name": "target_pi_resumed", "argv": resume}]
    return run_plan(root, runs)


@pytest.mark.slow
def test_target_run_logs_saves_and_resumes_exactly(e2e_target):
    import torch

    from openrlhf_steer.control import attach_target
    from openrlhf_steer.methods import build_method

    _ok(e2e_target, "target_pi")
    _ok(e2e_target, "target_pi_resumed")
    first, resumed = e2e_target.scalars("target_pi"), e2e_target.scalars("target_pi_resumed")
    for tag in LOGGED:
        assert sorted(dict(first[tag])) == [1, 2] and sorted(dict(resumed[tag])) == [3, 4], tag

    # the controller state in OpenRLHF's checkpoint (from disk) is what the resumed run restored
    step_dir = e2e_target.root / "ckpt" / "target_pi" / "_actor" / "global_step2"
    files = sorted(step_dir.glob("*model_states.pt"))
    assert files, f"no DeepSpeed checkpoint in {step_dir}"
    saved = torch.load(files[0], map_location="cpu", weights_only=False)["entropy_control"]
    assert saved["method"]["target"]["updates"] == 2
    restored = [r["state"] for r in e2e_target.report if r["event"] == "restored"]
    assert restored == [json.loads(json.dumps(saved))]

    # Step k logs the controller after the updates of rollout steps 1..k-1. Replaying the measured
    # entropies it logged through a fresh controller gives every logged lever value of both runs:
    # the resumed run continued exactly where the first one stopped.
    logged = {tag: {**dict(first[tag]), **dict(resumed[tag])} for tag in LOGGED + ["train/entropy/old_mean"]}
    assert logged[LOGGED[3]][1] == pytest.approx(0.5)  # initial lambda, before any update
    for step in (1, 2, 3):  # what the controller measured is the rollout step's entropy/old_mean
        assert logged["train/controller/target/measured"][step + 1] == pytest.approx(
            logged["train/entropy/old_mean"][step], rel=1e-6
        )
    assert all(0.0 < logged[LOGGED[3]][step] < 1.0 for step in (2, 3, 4))  # not pinned at a bound
    assert saved["method"]["target"]["controller"]["integral"] != 0.0
    replay = attach_target(build_method("pos_adv_reweight", {"schedule": "target"}), dict(TARGET))
    for step in (2, 3, 4):
        measured = logged["train/controller/target/measured"][step]
        replay.on_boundary("rollout_step", {"entropy/old_mean": measured})
        values = replay.controller_values()
        assert logged["train/controller/target/target"][step] == pytest.approx(values["target/target"], rel=1e-6)
        assert logged["train/controller/target/lever"][step] == pytest.approx(values["target/lever"], abs=1e-6)
    assert logged["train/controller/target/lever"][3] == pytest.approx(
        saved["method"]["target"]["controller"]["value"], abs=1e-6
    )
