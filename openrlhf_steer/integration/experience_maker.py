"""PPOTrainer-process side (OpenRLHF's single-controller process): the experience maker that collects the
rollout entropy and runs the methods' advantage hooks.

``train()`` imports ``PPOTrainer`` from ``openrlhf.trainer.ppo_trainer`` when it is called, so the
driver re-points that module attribute at :data:`EntropyControlPPOTrainerRemote`. Its ``__init__`` runs
OpenRLHF's, then switches ``self.experience_maker`` to :class:`EntropyControlExperienceMaker`, which calls
OpenRLHF's ``make_experience`` / ``compute_advantages_and_returns`` and adds to their results. Both serve
every method (not only STEER). The trainer also drops the episode's short last rollout batch and sets
``max_steps`` (the scheduler's length) to the optimizer steps that run (:mod:`.rollout_batches`).
"""

from __future__ import annotations

import itertools
from typing import List

import ray
import torch
from openrlhf.trainer import ppo_trainer as _ppo_trainer
from openrlhf.trainer.ppo_utils.experience_maker import RemoteExperienceMaker

from .args import spec_from_args
from .patches import OPENRLHF_PATCHES
from .rollout_batches import DROP_PARTIAL_ROLLOUT_BATCH, full_batches_only, plan_from_args
from .side_channel import OLD_ENTROPY_KEY, pad_cat


def rollout_group_inputs(experiences, n_samples_per_prompt: int, with_entropy: bool):
    """``GroupInputs`` over a whole rollout, rows in the experiences' concatenation order.

    Group ids come from ``experience.index`` (the sample's position in the rollout, prompts in
    blocks of ``n_samples_per_prompt``); rewards are OpenRLHF's ``experience.rewards`` after its
    length penalties (not yet centred).
    """
    from openrlhf_steer.core.types import GroupInputs

    index = torch.tensor(list(itertools.chain.from_iterable(exp.index for exp in experiences)), dtype=torch.long)
    rewards = torch.cat([exp.rewards.float().reshape(-1) for exp in experiences])
    masks = pad_cat([exp.action_mask.float() for exp in experiences])
    old_log_probs = pad_cat([exp.action_log_probs.float() for exp in experiences])
    entropy = None
    if with_entropy:
        missing = [i for i, exp in enumerate(experiences) if OLD_ENTROPY_KEY not in exp.info]
        if missing:
            raise RuntimeError("rollout entropy missing from experiences; the policy actors must be openrlhf_steer's")
        entropy = pad_cat([exp.info[OLD_ENTROPY_KEY].float() for exp in experiences])
    return GroupInputs(
        rewards=rewards,
        group_ids=index // int(n_samples_per_prompt),
        response_mask=masks,
        old_log_probs=old_log_probs,
        entropy=entropy,
    )


def scatter_advantages(experiences, advantages: torch.Tensor) -> None:
    """Write [N, T] advantages back into the experiences (returns = advantages for gamma=1 estimators)."""
    start = 0
    for exp in experiences:
        rows, width = exp.action_mask.shape
        block = advantages[start : start + rows, :width].to(exp.action_mask.device) * exp.action_mask.float()
        exp.advantages = block.clone()
        exp.returns = block.clone()
        start += rows


def missing_rewards_message(samples_list, has_reward_model: bool, reward_sources) -> str:
    """Why a rollout has samples without a reward, or "" when every sample has one (or a reward model scores them).

    OpenRLHF's rollout engines catch a failing reward function, log it and return the sample without a reward;
    its experience maker then stops with "reward_model_group is required", which names neither the cause nor
    the fix.
    """
    missing = sum(1 for samples in samples_list if getattr(samples, "rewards", None) is None)
    if not missing or has_reward_model:
        return ""
    sources = ", ".join(reward_sources or []) or "(none set)"
    return (
        f"{missing} of {len(samples_list)} rollout batches came back without rewards: the reward source "
        f"--reward.remote_url {sources} failed in the rollout engines (their log above shows the exception, "
        "after '[SingleTurnExecutor] Failed to fetch reward'). Fix the reward function or server so that it "
        "returns {'rewards': ...} for every query, then resume with --ckpt.load_enable."
    )


class EntropyControlExperienceMaker(RemoteExperienceMaker):
    """OpenRLHF's experience maker plus the rollout entropy and the method's advantage hooks."""

    def entropy_control_setup(self, spec) -> None:
        self._entropy_control_spec = spec
        self._entropy_control_method = spec.method
        self._entropy_control_needs = spec.needs

    def make_experience(self, samples_list):
        remote_url = self.strategy.args.reward.remote_url
        missing = missing_rewards_message(
            samples_list,
            self.reward_model_group is not None,
            [remote_url] if isinstance(remote_url, str) else remote_url,
        )
        if missing:
            raise RuntimeError(missing)
        experiences = super().make_experience(samples_list)
        if self._entropy_control_needs.old_entropy:  # the policy actors cached it in their forward
            self._attach_old_entropy(experiences)
        return experiences

    def _attach_old_entropy(self, experiences) -> None:
        group = self.actor_model_group
        duplicate = max(int(getattr(group, "duplicate_actors", 1)), 1)
        per_actor = ray.get(group.async_run_method(method_name="pop_old_entropy"))
        # Same bookkeeping as OpenRLHF's _flatten_results: one chunk per effective actor, in order.
        flat = list(itertools.chain.from_iterable(per_actor[::duplicate]))
        if len(flat) != len(experiences):
            raise RuntimeError(f"got {len(flat)} rollout-entropy batches for {len(experiences)} experiences")
        for exp, entropy in zip(experiences, flat):
            if tuple(entropy.shape) != tuple(exp.action_mask.shape):
                raise RuntimeError(
                    f"rollout entropy {tuple(entropy.shape)} does not match action_mask {tuple(exp.action_mask.shape)}"
                )
            exp.info[OLD_ENTROPY_KEY] = entropy

    @torch.no_grad()
    def compute_advantages_and_returns(self, experiences: List):
        experiences = super().compute_advantages_and_returns(experiences)
        if not self._entropy_control_needs.advantage_hooks:
            return experiences
        from openrlhf_steer.core.advantages import compute_advantages

        args = self.strategy.args
        group = rollout_group_inputs(
            experiences, args.rollout.n_samples_per_prompt, with_entropy=OLD_ENTROPY_KEY in experiences[0].info
        )
        norm_by_std = args.algo.advantage.estimator == "group_norm"
        advantages = compute_advantages(group, self._entropy_control_method, norm_by_std=norm_by_std)
        scatter_advantages(experiences, advantages)
        return experiences


def _make_trainer_class(base_remote):
    base = base_remote.__ray_metadata__.modified_class.__ray_actor_class__

    class EntropyControlPPOTrainer(base):
        """OpenRLHF's PPOTrainer; with ``drop_partial_rollout_batch`` (default on) it trains full rollout
        batches only and sizes the LR schedule for them (:mod:`.rollout_batches`, veRL's drop_last)."""

        def __init__(self, *args, drop_partial_rollout_batch: bool = DROP_PARTIAL_ROLLOUT_BATCH, **kwargs):
            super().__init__(*args, **kwargs)
            self.setup_rollout_batches(drop_partial_rollout_batch)
            spec = spec_from_args(self.args)
            if spec is not None and spec.enabled:
                self.experience_maker.__class__ = EntropyControlExperienceMaker
                self.experience_maker.entropy_control_setup(spec)

        def setup_rollout_batches(self, drop_partial: bool) -> None:
            self.drop_partial_rollout_batch = bool(drop_partial)
            if not self.drop_partial_rollout_batch:
                return  # OpenRLHF's generator and its max_steps, untouched
            plan = plan_from_args(self.args, len(self.prompts_dataloader.dataset))
            generator = self.samples_generator
            generator.generate_samples = full_batches_only(generator.generate_samples, plan.samples_per_rollout)
            self.max_steps = plan.optimizer_steps  # what OpenRLHF's get_max_steps hands the actors' scheduler

    EntropyControlPPOTrainer.__module__ = __name__
    EntropyControlPPOTrainer.__qualname__ = "EntropyControlPPOTrainer"
    return EntropyControlPPOTrainer


EntropyControlPPOTrainer = _make_trainer_class(OPENRLHF_PATCHES.original(_ppo_trainer, "PPOTrainer"))
EntropyControlPPOTrainerRemote = ray.remote(EntropyControlPPOTrainer)


def install_ppo_trainer() -> None:
    """In the driver: make OpenRLHF's ``train()`` create :class:`EntropyControlPPOTrainer`."""
    OPENRLHF_PATCHES.replace(_ppo_trainer, "PPOTrainer", EntropyControlPPOTrainerRemote)
