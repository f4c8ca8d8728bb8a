"""`openrlhf-steer train` as a user runs it.

Fast: ``--help`` lists our flags then OpenRLHF's on a CPU install without vLLM / flash-attn, and a
real run there stops before Ray with the fix.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("openrlhf")

REPO = Path(__file__).resolve().parents[1]
STUBS = REPO / "tests" / "support" / "stubs"


def _plain_env():
    """The environment of a CPU install: no test stubs on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                                        if p and Path(p).resolve() != STUBS.resolve())
    return env


def _gpu_packages_absent() -> bool:
    code = "import importlib.util as u; print(u.find_spec('vllm') is None and u.find_spec('flash_attn') is None)"
    out = subprocess.run([sys.executable, "-c", code], env=_plain_env(), capture_output=True, text=True, cwd="/")
    return out.stdout.strip() == "True"


@pytest.fixture(scope="module")
def cpu_install():
    if not _gpu_packages_absent():
        pytest.skip("vllm or flash_attn is installed here: not a CPU install")
    return _plain_env()


def test_help_lists_ours_then_openrlhf_without_vllm(cpu_install):
    run = subprocess.run([sys.executable, "-m", "openrlhf_steer.cli", "train", "--help"], env=cpu_install,
                         capture_output=True, text=True, cwd="/", timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout
    assert "No module named" not in out + run.stderr
    ours = out.index("--entropy.steer.lambda_min")
    for flag in ("--actor.model_name_or_path", "--vllm.num_engines", "--algo.advantage.is_correction_level",
                 "--actor.policy_loss_type"):
        assert out.index(flag) > ours, flag
    assert "Listed without vllm, flash_attn" in out


def test_run_without_vllm_stops_before_ray_with_the_fix(cpu_install):
    run = subprocess.run([sys.executable, "-m", "openrlhf_steer.cli", "train", "--entropy.method", "steer",
                          "--actor.model_name_or_path", "x"], env=cpu_install, capture_output=True, text=True,
                         cwd="/", timeout=300)
    assert run.returncode == 2
    assert "needs vllm and flash_attn" in run.stderr and "openrlhf-steer[train]" in run.stderr
    assert "ray" not in run.stdout.lower()
