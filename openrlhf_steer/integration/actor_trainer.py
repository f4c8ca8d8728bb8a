"""Policy-actor side of the integration: ``EntropyControlActorPPOTrainer`` and the hooks it relies on.

* The trainer subclass wraps OpenRLHF's own ``training_step`` (never re-implemented): before it, it
  moves the rollout entropy out of ``experience.info`` and fills the loss's context (step, epoch,
  window statistics, seeded generator); after it, it adds our metrics to OpenRLHF's status (so
  they reach wandb/tensorboard through ``ppo_train``). At the end of each optimizer step and of each
  ``ppo_train`` (one rollout step) it offers the method's controller the DP-all-reduced token-weighted
  means of that span (``Method.on_boundary``); the controller updates at its ``update_every``.
* :func:`window_iterator` replaces the module global ``iter_grad_accum_global_norm`` of
  ``openrlhf.trainer.ray.ppo_actor``: it yields the same ``(experience, loss_batch_info)`` pairs and
  marks the window boundaries; for ``stat_scope=mini_batch`` it computes the method's window
  statistics first (one extra no-grad forward per micro-batch), all-reduced over the DP ranks.
* :func:`install_actor_forward_hook` wraps the ``Actor`` instance's ``forward`` to hand the current
  entropy to the loss and to capture the rollout-policy entropy in the old-log-prob pass; the forward
  it wraps is :mod:`.chunked_actor`'s (never the full logits) unless the model is unsupported.
"""

from __future__ import annotations

import inspect
import logging
from contextlib import contextmanager
from typing import Any, Dict, List, Optional, Tuple

import torch
from openrlhf.trainer.ray import ppo_actor as _ppo_actor

from openrlhf_steer.runtime import EntropyChannel, StepRuntime, step_seed  # noqa: F401 (step_seed: re-exported)

from .patches import OPENRLHF_PATCHES
from .policy_loss import LossCallContext
from .side_channel import OLD_ENTROPY_KEY, align_rows
from .window_reduce import data_parallel_group, global_window_stats

logger = logging.getLogger(__name__)

# OpenRLHF calls iter_grad_accum_global_norm(data_iter, strategy, ...) with the trainer's strategy only, so
# the trainer whose ppo_train is running is found through its strategy.
_ACTIVE_TRAINER_ATTR = "_entropy_control_active_trainer"


# --------------------------------------------------------------------------------------------------
# Actor forward hook
# --------------------------------------------------------------------------------------------------
def install_actor_forward_hook(actor, channel: EntropyChannel) -> None:
    """Wrap ``actor.forward`` (instance attribute) to publish entropies into ``channel``.

    * training forward (``return_output=True``): ``channel.entropy = output.entropy[:, -A:]``;
    * ``channel.capture_old_entropy`` set and a plain log-prob call (the rollout pass):
      re-issues the call with ``return_output=True, return_entropy=True`` and stores
      ``channel.old_entropy``; it still returns only the log-probs.
    """
    if getattr(actor, "_entropy_control_hooked", False):
        return
    original = actor.forward
    signature = inspect.signature(original)

    def forward(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        params = dict(bound.arguments)
        extra = params.pop("mm_inputs", {}) or {}
        action_mask = params.get("action_mask")
        capture_old = channel.capture_old_entropy and not params.get("return_output", False)
        if capture_old and action_mask is not None:
            params["return_output"] = True
            params["return_entropy"] = True
            log_probs, output = original(**params, **extra)
            width = action_mask.shape[1]
            channel.old_entropy = output.entropy[:, -width:].detach().float() * action_mask.float()
            return log_probs
        result = original(**params, **extra)
        if params.get("return_output") and params.get("return_entropy") and action_mask is not None:
            output = result[1]
            channel.entropy = output.entropy[:, -action_mask.shape[1] :]
        return result

    actor.forward = forward
    actor._entropy_control_hooked = True


# --------------------------------------------------------------------------------------------------
# Optimizer-step windows
# --------------------------------------------------------------------------------------------------
def window_iterator(data_iter, strategy, accumulated_gradient, mask_fn):
    """Drop-in for ``iter_grad_accum_global_norm`` that also tells the active trainer the windows."""
    original = OPENRLHF_PATCHES.original(_ppo_actor, "iter_grad_accum_global_norm")
    inner = original(data_iter, strategy, accumulated_gradient, mask_fn)
    trainer = getattr(strategy, _ACTIVE_TRAINER_ATTR, None)
    if trainer is None:
        yield from inner
        return
    gas = max(int(accumulated_gradient), 1)
    window: List = []
    for pair in inner:
        window.append(pair)
        if len(window) == gas:
            yield from trainer._entropy_control_window(window)
            window = []
    if window:
        yield from trainer._entropy_control_window(window)


@contextmanager
def active_trainer(trainer):
    """Within the block, the window iterator of ``trainer.strategy`` reports its windows to ``trainer``."""
    setattr(trainer.strategy, _ACTIVE_TRAINER_ATTR, trainer)
    try:
        yield trainer
    finally:
        setattr(trainer.strategy, _ACTIVE_TRAINER_ATTR, None)


def install_window_iterator() -> None:
    OPENRLHF_PATCHES.replace(_ppo_actor, "iter_grad_accum_global_norm", window_iterator)


def _device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")


# --------------------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------------------
class EntropyControlState:
    """Everything the trainer subclass adds; a plain object (never an nn.Module attribute). The step
    bookkeeping (seeds, metric windows, controller boundaries, counters) is the shared
    :class:`~openrlhf_steer.runtime.StepRuntime`."""

    def __init__(self, spec, method, needs, *, seed: int, rank: int, max_steps: Optional[int], num_episodes: int):
        self.spec = spec
        self.needs = needs
        self.max_steps = max_steps
        self.num_episodes = max(int(num_episodes), 1)
        self.runtime = StepRuntime(method, seed=seed, rank=rank, device=_device())
        self.channel = EntropyChannel()
        # this micro-batch's window statistics and whether it ends its optimizer-step window
        self.micro: Dict[str, Any] = {}
        self.metric_keys: Optional[List[str]] = None
        self.warned_dropped_metrics = False

    @property
    def method(self):
        return self.runtime.method

    @property
    def optimizer_step(self) -> int:
        return self.runtime.optimizer_step

    @optimizer_step.setter
    def optimizer_step(self, value: int) -> None:
        self.runtime.optimizer_step = int(value)

    @property
    def rollout_step(self) -> int:
        return self.runtime.rollout_step

    @rollout_step.setter
    def rollout_step(self, value: int) -> None:
        self.runtime.rollout_step = int(value)

    def epoch(self) -> int:
        if not self.max_steps:
            return 1
        per_episode = max(self.max_steps // self.num_episodes, 1)
        return min(self.optimizer_step // per_episode + 1, self.num_episodes)

    def state_dict(self) -> Dict[str, Any]:
        return {**self.runtime.state_dict(), "methods": self.spec.names}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        saved = list(state.get("methods", []))
        if saved and saved != self.spec.names:
            raise ValueError(
                f"checkpoint was trained with --entropy.method {','.join(saved)} but this run selects "
                f"{','.join(self.spec.names)}; resume with the same --entropy.method or start a new --ckpt.path"
            )
        self.runtime.load_state_dict(state)


def enable_entropy_control(trainer, spec, args, *, max_steps: Optional[int], rank: int):
    """Turn an ``ActorPPOTrainer`` into a :class:`EntropyControlActorPPOTrainer` running ``spec``."""
    from . import chunked_actor, entropy_patch
    from .args import effective_loss_config

    method, needs = spec.method, spec.needs
    seed = spec.seed if spec.seed is not None else int(getattr(args.train, "seed", 42))
    state = EntropyControlState(
        spec,
        method,
        needs,
        seed=seed,
        rank=rank,
        max_steps=max_steps,
        num_episodes=getattr(args.train, "num_episodes", 1),
    )
    native_coef = args.actor.entropy_coef
    settings = entropy_patch.configure(
        entropy_grad=needs.entropy_grad or native_coef not in (None, 0, 0.0), chunk_rows=spec.chunk_rows
    )
    loss_fn = trainer.actor_loss_fn
    if not hasattr(loss_fn, "bind"):
        raise RuntimeError(
            "the actor's loss is not EntropyControlPolicyLoss: openrlhf_steer.integration.ray_actors must be imported "
            "before ActorPPOTrainer is built (the policy actor class does this)"
        )
    loss_fn.bind(method, effective_loss_config(args, method))
    trainer.__class__ = EntropyControlActorPPOTrainer
    trainer.entropy_state = state
    # Before the hook: the hook wraps whichever forward the actor has.
    chunked_actor.install(trainer.actor, chunk_rows=spec.chunk_rows, entropy_grad=settings.entropy_grad)
    install_actor_forward_hook(trainer.actor, state.channel)
    return state


class EntropyControlActorPPOTrainer(_ppo_actor.ActorPPOTrainer):
    """``ActorPPOTrainer`` whose steps feed our loss and log our metrics (see module doc)."""

    entropy_state: EntropyControlState

    def ppo_train(self, kl_ctl: float):
        """One rollout step's whole update; then the rollout-step controller boundary.

        Our metrics in the returned status are the runtime's (the same definition the demo logs): each
        optimizer step's window reduction, averaged over the rollout step's optimizer steps. Except
        ``loss/*``: those stay OpenRLHF's reduction of the per-micro-batch losses, the one it applies to its
        own ``policy_loss`` (the token-weighted mean of the losses it optimises, normalised by the window's
        tokens per micro-batch), so that ``loss/total`` and ``policy_loss`` are comparable in one run."""
        with active_trainer(self):
            status = super().ppo_train(kl_ctl)
        logged = self._end_rollout_step()
        keys = self.entropy_state.metric_keys or []
        status.update({k: v for k, v in logged.items() if k in keys and not k.startswith("loss/")})
        return status

    # -- windows -----------------------------------------------------------------------------------
    def _entropy_control_window(self, window):
        state = self.entropy_state
        state.runtime.reseed()
        stats = self._window_stats([exp for exp, _ in window]) if state.needs.window_stats else {}
        for i, pair in enumerate(window):
            state.micro = {"window_stats": stats, "last_in_window": i == len(window) - 1}
            yield pair

    @torch.no_grad()
    def _window_stats(self, experiences) -> Dict[str, Any]:
        """The method's statistic over the whole optimizer-step window, all data-parallel ranks.

        Needs the current policy on every micro-batch before the first update of the window, i.e. one
        no-grad forward each (the cost of ``stat_scope=mini_batch``). Each rank computes the statistic
        of its share; :func:`global_window_stats` all-reduces the method's reducible keys and gathers
        its quantile values over the DP group.
        """
        from openrlhf_steer.core.types import LossInputs

        state = self.entropy_state
        device = _device()
        inputs_list = []
        was_training = self.actor.training
        self.actor.eval()
        try:
            for exp in experiences:
                exp.to_device(device)
                width = exp.action_mask.shape[1]
                log_probs, _ = self.actor(
                    exp.sequences,
                    exp.action_mask,
                    attention_mask=exp.attention_mask,
                    return_output=True,
                    ring_attn_group=self.strategy.ring_attn_group,
                    return_entropy=state.needs.current_entropy,
                )
                entropy = state.channel.take_entropy() if state.needs.current_entropy else None
                inputs_list.append(
                    LossInputs(
                        log_probs=log_probs.float(),
                        old_log_probs=exp.action_log_probs.float(),
                        advantages=exp.advantages.float(),
                        action_mask=exp.action_mask.bool(),
                        entropy=None if entropy is None else entropy.detach().float(),
                        old_entropy=self._peek_old_entropy(exp, width),
                        step=state.optimizer_step,
                        total_steps=state.max_steps,
                        epoch=state.epoch(),
                        total_epochs=state.num_episodes,
                    )
                )
        finally:
            if was_training:
                self.actor.train()
        return global_window_stats(state.method, inputs_list, group=data_parallel_group(self.strategy))

    @staticmethod
    def _peek_old_entropy(experience, width: int) -> Optional[torch.Tensor]:
        rows = experience.info.get(OLD_ENTROPY_KEY)
        if rows is None:
            return None
        return align_rows(rows, width, experience.action_mask).to(experience.action_mask.device)

    # -- one micro-batch ---------------------------------------------------------------------------
    def training_step(self, experience, kl_ctl: float, step: int, loss_batch_info: Optional[Dict] = None):
        state = self.entropy_state
        width = experience.action_mask.shape[1]
        old_entropy = self._peek_old_entropy(experience, width)
        experience.info.pop(OLD_ENTROPY_KEY, None)  # per-token rows cannot go through OpenRLHF's logging
        if state.needs.old_entropy and old_entropy is None:
            raise RuntimeError(
                f"--entropy.method {','.join(state.spec.names)} needs the rollout-policy entropy but the experience "
                f"has none; the PPOTrainer must be openrlhf_steer's (use `openrlhf-steer train`, not train_ppo_ray)"
            )
        generator = state.runtime.generator if state.runtime.generator is not None else state.runtime.reseed()
        state.channel.take_entropy()

        binding = self.actor_loss_fn.binding
        binding.context = LossCallContext(
            old_entropy=old_entropy,
            ref_log_probs=experience.base_action_log_probs if state.needs.ref_log_probs else None,
            step=state.optimizer_step,
            total_steps=state.max_steps,
            epoch=state.epoch(),
            total_epochs=state.num_episodes,
            window_stats=state.micro.get("window_stats", {}),
            generator=generator,
            entropy_channel=state.channel,
        )
        if state.needs.ref_log_probs:
            kl_ctl = 0.0  # the method's KL term replaces OpenRLHF's (which is still computed and logged as `kl`)
        try:
            status = super().training_step(experience, kl_ctl, step, loss_batch_info)
        finally:
            binding.context = LossCallContext()
            state.channel.take_entropy()

        metrics = self._stable_metrics(binding.metrics)
        for key, value in metrics.items():  # device tensors: OpenRLHF's ppo_train reads them as it logs
            status["metrics"][key] = value
            status["weights"][key] = "token"
        valid = binding.metrics.tensors().get("tokens/valid", status["num_action_tokens"])
        units = binding.loss_units if binding.loss_units is not None else valid
        denominator = binding.loss_denominator
        state.runtime.record(metrics, valid, denominator if denominator is not None else units, units)

        if self.args.train.dynamic_batch_enable:
            window_done = bool(self.replay_buffer.dynamic_optimizer_step[step])
        else:
            window_done = bool(state.micro.get("last_in_window", True))
        if window_done:
            self._end_optimizer_step()
        return status

    def _stable_metrics(self, metrics) -> Dict[str, torch.Tensor]:
        """Fix the metric key set at the first call: DP ranks all-reduce the same keys in ppo_train.
        Values stay 0-dim tensors (no host read here); a key missing from this call logs 0."""
        state = self.entropy_state
        values = metrics.tensors()
        if state.metric_keys is None:
            state.metric_keys = sorted(values)
        dropped = set(values) - set(state.metric_keys)
        if dropped and not state.warned_dropped_metrics:
            logger.warning(
                "entropy-control metrics %s appeared after the first step and are not logged", sorted(dropped)
            )
            state.warned_dropped_metrics = True
        zero = torch.zeros((), dtype=torch.float64)
        return {k: _as_tensor(values.get(k, zero)) for k in state.metric_keys}

    def _data_parallel_reduce(
        self, sums: Dict[str, float], maxima: Dict[str, float], minima: Dict[str, float]
    ) -> Tuple[Dict[str, float], Dict[str, float], Dict[str, float]]:
        """The window's per-rank sums (one all-reduce through OpenRLHF's strategy), maxima and minima (one
        stacked MAX all-reduce over the DP group, minima negated) over the data-parallel ranks."""
        sums = {k: float(v) for k, v in self.strategy.all_reduce(dict(sums), op="sum").items()}
        extremes = list(maxima.values()) + [-v for v in minima.values()]
        if extremes and torch.distributed.is_available() and torch.distributed.is_initialized():
            stacked = torch.tensor(extremes, dtype=torch.float64, device=_device())
            torch.distributed.all_reduce(
                stacked, op=torch.distributed.ReduceOp.MAX, group=data_parallel_group(self.strategy)
            )
            extremes = stacked.tolist()
            maxima = dict(zip(maxima, extremes[: len(maxima)]))
            minima = {k: -v for k, v in zip(minima, extremes[len(maxima) :])}
        return sums, maxima, minima

    def _end_optimizer_step(self) -> None:
        """The window's metrics (one host copy, then over the DP ranks) offered to the controller."""
        state = self.entropy_state
        state.runtime.end_optimizer_step(data_parallel=self._data_parallel_reduce)
        state.micro = {}
        if state.runtime.generator is not None:  # dynamic-batch mode has no window iterator to reseed it
            state.runtime.reseed()

    def _end_rollout_step(self) -> Dict[str, float]:
        """The rollout step's token-weighted statistics offered to the controller; returns the logged means."""
        return self.entropy_state.runtime.end_rollout_step()


def _as_tensor(value) -> torch.Tensor:
    return value if torch.is_tensor(value) else torch.tensor(float(value), dtype=torch.float64)
