"""Patches reach the right processes: a real local Ray cluster on CPU (one logical GPU)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("openrlhf")
ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow

STUBS = Path(__file__).resolve().parent / "support" / "stubs"


@pytest.fixture(scope="module")
def ray_cluster():
    env = {"TORCHDYNAMO_DISABLE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if importlib.util.find_spec("flash_attn") is None or str(STUBS) in sys.path:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(STUBS), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    try:
        yield ray
    finally:
        ray.shutdown()


def test_policy_actor_process_runs_our_loss(ray_cluster):
    import openrlhf.trainer.ppo_trainer as ppo_trainer
    import openrlhf.trainer.ray.ppo_actor as ppo_actor
    from openrlhf.trainer.ray.launcher import RayActorGroup

    from openrlhf_steer.integration import experience_maker, ray_actors

    saved = (ppo_actor.PolicyModelActor, ppo_trainer.PPOTrainer)
    ray_actors.install_driver_swaps()
    try:
        # What OpenRLHF's train() does: RayActorGroup(..., PolicyModelActor, ...) on the swapped name.
        assert ppo_actor.PolicyModelActor is ray_actors.EntropyControlPolicyModelActorRemote
        assert ppo_trainer.PPOTrainer is experience_maker.EntropyControlPPOTrainerRemote
        group = RayActorGroup(1, 1, ppo_actor.PolicyModelActor, pg=None, num_gpus_per_actor=1)
        probe = ray.get(group.async_run_method("entropy_control_probe"))[0]
    finally:
        ppo_actor.PolicyModelActor, ppo_trainer.PPOTrainer = saved
    assert probe["pid"] != os.getpid()
    assert probe["policy_loss_is_ours"] and probe["policy_loss"] == "EntropyControlPolicyLoss"
    assert probe["window_iterator"] == "openrlhf_steer.integration.actor_trainer"
    assert probe["compute_entropy"] == "openrlhf_steer.integration.entropy_patch"
    assert probe["deepspeed_imported"]  # the policy actor is the DeepSpeed process


@ray.remote
class _EngineSideProbe:
    """Stands in for a vLLM engine process: it imports the launcher pieces and loads the reward file."""

    def check(self, reward_path):
        import importlib.util as iu
        import sys as _sys

        import openrlhf_steer.integration  # noqa: F401
        import openrlhf_steer.integration.flags  # noqa: F401
        import openrlhf_steer.integration.launch  # noqa: F401

        spec = iu.spec_from_file_location("reward_func", reward_path)
        module = iu.module_from_spec(spec)
        spec.loader.exec_module(module)
        return {
            "pid": __import__("os").getpid(),
            "deepspeed": "deepspeed" in _sys.modules,
            "openrlhf_models": "openrlhf.models" in _sys.modules,
        }


def test_engine_side_process_never_imports_deepspeed(ray_cluster):
    from openrlhf_steer.integration.rewards import math_reward_path

    result = ray.get(_EngineSideProbe.remote().check.remote(math_reward_path()))
    assert result["pid"] != os.getpid()
    assert result == {"pid": result["pid"], "deepspeed": False, "openrlhf_models": False}
