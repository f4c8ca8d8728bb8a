"""CPU stand-ins for the CUDA-only calls of OpenRLHF 0.11.2's Ray processes (test support).

``setup_worker`` is Ray's ``worker_process_setup_hook`` of the e2e job: it runs at the start of
every worker process and arranges, each applied only when the module involved is imported:

* ``torch.cuda.synchronize`` / ``set_device`` / ``empty_cache``: no-ops (nothing to synchronise
  on CPU); ``torch.cuda.current_device()``: ``"cpu"``, the device OpenRLHF moves tensors to;
* ``init_device_mesh("cuda", ...)`` in ``DeepspeedStrategy.setup_distributed``: a CPU mesh (gloo);
* ``NaiveReplayBuffer.target_device`` (``cuda:<n>``, used only by ``sample()``): the CPU;
* ``flash_attention_2`` (which OpenRLHF forces with ``--ds.packing_samples``): transformers' SDPA,
  which reads packed sequences from the position ids the same way;
* the weight broadcast to the vLLM engines (a NCCL/gloo group through vLLM's
  ``StatelessProcessGroup``): the parameters are sent to the stand-in engines through Ray
  (:func:`steertest_rollout_engine.broadcast_to_standin_engines`).

Everything else runs as OpenRLHF ships it. :func:`report` (observation only) writes what the
policy actors used and restored to the e2e report file.
"""

from __future__ import annotations

import os

from steertest_after_import import after_import


def _patch_torch(torch) -> None:
    torch.cuda.synchronize = lambda *a, **k: None
    torch.cuda.set_device = lambda *a, **k: None
    torch.cuda.empty_cache = lambda *a, **k: None
    torch.cuda.current_device = lambda: "cpu"


def _cpu_mesh(module) -> None:
    original = module.init_device_mesh

    def init_device_mesh(device_type, *args, **kwargs):
        return original("cpu" if device_type == "cuda" else device_type, *args, **kwargs)

    module.init_device_mesh = init_device_mesh


def _cpu_replay_buffer(module) -> None:
    import torch

    original = module.NaiveReplayBuffer.__init__

    def __init__(self, *args, **kwargs):
        current = torch.cuda.current_device
        torch.cuda.current_device = lambda: 0  # only formats the unused "cuda:<n>" target device
        try:
            original(self, *args, **kwargs)
        finally:
            torch.cuda.current_device = current
        self.target_device = torch.device("cpu")

    module.NaiveReplayBuffer.__init__ = __init__


def _sdpa_actor(module) -> None:
    base = module.Actor

    class SdpaActor(base):
        def __init__(self, *args, attn_implementation="sdpa", **kwargs):
            if attn_implementation and attn_implementation.startswith("flash_attention"):
                attn_implementation = "sdpa"
            super().__init__(*args, attn_implementation=attn_implementation, **kwargs)

    SdpaActor.__name__ = SdpaActor.__qualname__ = base.__name__
    module.Actor = SdpaActor


def _standin_broadcast(module) -> None:
    from steertest_rollout_engine import broadcast_to_standin_engines, init_standin_sync

    module.ActorPPOTrainer._init_vllm_sync_group = init_standin_sync
    module.ActorPPOTrainer.broadcast_to_vllm = broadcast_to_standin_engines


def report(line: dict) -> None:
    """Append one JSON line to the e2e report file (``$STEERTEST_E2E_REPORT``), if set."""
    import json

    path = os.environ.get("STEERTEST_E2E_REPORT")
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps(dict(line, pid=os.getpid())) + "\n")


def _record_policy_actor(module) -> None:
    """Observation only: the loss class in use and the controller state restored from a checkpoint."""
    cls = module.EntropyControlPolicyModelActor
    init, restore = cls.init_model_from_pretrained, cls._restore_entropy_control

    def init_model_from_pretrained(self, strategy, *args, **kwargs):
        init(self, strategy, *args, **kwargs)
        report(
            {
                "event": "policy_actor",
                "loss_class": type(self.trainer.actor_loss_fn).__name__,
                "trainer_class": type(self.trainer).__name__,
                "rank": strategy.get_rank(),
                "run": strategy.args.logger.tensorboard_dir,
            }
        )

    def _restore_entropy_control(self, checkpoint_states):
        restored = restore(self, checkpoint_states)
        if restored:
            report(
                {
                    "event": "restored",
                    "state": self._entropy_state.state_dict(),
                    "run": self.strategy.args.logger.tensorboard_dir,
                }
            )
        return restored

    cls.init_model_from_pretrained = init_model_from_pretrained
    cls._restore_entropy_control = _restore_entropy_control


def setup_worker() -> None:
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    after_import("torch", _patch_torch)
    after_import("openrlhf.utils.deepspeed.deepspeed", _cpu_mesh)
    after_import("openrlhf.trainer.ppo_utils.replay_buffer", _cpu_replay_buffer)
    after_import("openrlhf.trainer.ray.ppo_actor", _sdpa_actor)
    after_import("openrlhf.trainer.ray.ppo_actor", _standin_broadcast)
    after_import("openrlhf.trainer.ray.launcher", _sdpa_actor)
    after_import("openrlhf_steer.integration.ray_actors", _record_policy_actor)
