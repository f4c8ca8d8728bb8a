"""Ray actor subclasses. Importing this module applies the policy-actor patches in *its* process.

Ray pickles an actor class by reference, so a worker that hosts :class:`EntropyControlPolicyModelActor`
imports this module first; the patches below (OpenRLHF module globals) therefore reach exactly the
policy-actor processes. vLLM engines never import it (they run OpenRLHF's own ``RolloutRayActor``),
so DeepSpeed stays out of them. The driver swaps the classes in with :func:`install_driver_swaps`.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List

import ray
from openrlhf.trainer.ray import ppo_actor as _ppo_actor

from . import entropy_patch
from .actor_trainer import enable_entropy_control, install_window_iterator
from .args import spec_from_args
from .patches import OPENRLHF_PATCHES
from .policy_loss import EntropyControlPolicyLoss
from .version import require_openrlhf

require_openrlhf()


def undecorated(remote_cls):
    """The plain Python class behind a ``@ray.remote`` class (Ray 2.55 layout)."""
    meta = getattr(remote_cls, "__ray_metadata__", None)
    if meta is None:
        return remote_cls
    return meta.modified_class.__ray_actor_class__


def apply_actor_patches() -> None:
    """Module-global swaps in ``openrlhf.trainer.ray.ppo_actor`` / ``openrlhf.models.actor`` (idempotent),
    recorded in :data:`~.patches.OPENRLHF_PATCHES`."""
    OPENRLHF_PATCHES.replace(_ppo_actor, "PolicyLoss", EntropyControlPolicyLoss)
    install_window_iterator()
    entropy_patch.install()


# Ray imports this module in a policy-actor worker when it unpickles the actor class: the patches must be
# in place before OpenRLHF builds anything there.
apply_actor_patches()

_PolicyBase = undecorated(OPENRLHF_PATCHES.original(_ppo_actor, "PolicyModelActor"))

STATE_KEY = "entropy_control"  # key of our controller state in OpenRLHF's checkpoint client_states


class EntropyControlPolicyModelActor(_PolicyBase):
    """OpenRLHF's ``PolicyModelActor`` with the entropy-control trainer, rollout entropy and state."""

    def init_model_from_pretrained(self, strategy, pretrain, max_steps=None, vllm_engines=None):
        apply_actor_patches()
        super().init_model_from_pretrained(strategy, pretrain, max_steps=max_steps, vllm_engines=vllm_engines)
        self._old_entropy_cache: List = []
        self._entropy_state = None
        spec = spec_from_args(strategy.args)
        if spec is None or not spec.enabled:
            return
        rank = strategy.get_rank() if hasattr(strategy, "get_rank") else 0
        self._entropy_state = enable_entropy_control(self.trainer, spec, strategy.args, max_steps=max_steps, rank=rank)
        self._restore_entropy_control(self.checkpoint_states)

    def _restore_entropy_control(self, checkpoint_states) -> bool:
        """Load our controller state from OpenRLHF's resumed checkpoint client states, if present."""
        saved = (checkpoint_states or {}).get(STATE_KEY)
        if not saved or self._entropy_state is None:
            return False
        self._entropy_state.load_state_dict(saved)
        self.strategy.print(
            f"entropy control: restored controller state at optimizer step {saved.get('optimizer_step')}"
        )
        return True

    # -- rollout (old) policy entropy ----------------------------------------------------------------
    def forward(
        self, sequences, action_mask=None, attention_mask=None, packed_seq_lens=None, mm_train_inputs_list=None
    ):
        control = getattr(self, "_entropy_state", None)
        if control is None or not control.needs.old_entropy:
            return super().forward(sequences, action_mask, attention_mask, packed_seq_lens, mm_train_inputs_list)
        control.channel.capture_old_entropy = True
        try:
            log_probs = super().forward(sequences, action_mask, attention_mask, packed_seq_lens, mm_train_inputs_list)
        finally:
            control.channel.capture_old_entropy = False
        self._old_entropy_cache.append(control.channel.take_old_entropy().to("cpu"))
        return log_probs

    def pop_old_entropy(self) -> List:
        """Rollout entropies of the forward calls since the last pop, in call order."""
        cached, self._old_entropy_cache = self._old_entropy_cache, []
        return cached

    # -- checkpoints ---------------------------------------------------------------------------------
    def save_checkpoint(self, tag, client_states=None, metric_value=None, metric_key=None):
        client_states = dict(client_states or {})
        control = getattr(self, "_entropy_state", None)
        if control is not None:
            client_states[STATE_KEY] = control.state_dict()
        return super().save_checkpoint(tag, client_states, metric_value=metric_value, metric_key=metric_key)

    # -- diagnostics (tests, debugging) --------------------------------------------------------------
    def entropy_control_probe(self) -> Dict[str, Any]:
        import sys

        import openrlhf.models.actor as actor_module

        return {
            "pid": os.getpid(),
            "policy_loss": _ppo_actor.PolicyLoss.__name__,
            "policy_loss_is_ours": _ppo_actor.PolicyLoss is EntropyControlPolicyLoss,
            "window_iterator": _ppo_actor.iter_grad_accum_global_norm.__module__,
            "compute_entropy": actor_module.compute_entropy.__module__,
            "deepspeed_imported": "deepspeed" in sys.modules,
        }


EntropyControlPolicyModelActorRemote = ray.remote(num_gpus=1)(EntropyControlPolicyModelActor)


def install_driver_swaps() -> None:
    """In the driver: make OpenRLHF's ``train()`` create our actor and controller classes."""
    from .experience_maker import install_ppo_trainer

    OPENRLHF_PATCHES.replace(_ppo_actor, "PolicyModelActor", EntropyControlPolicyModelActorRemote)
    install_ppo_trainer()
