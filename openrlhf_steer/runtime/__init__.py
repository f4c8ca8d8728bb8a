"""The training-step runtime every adapter calls (OpenRLHF's actor, the CPU demo): seeds per (rank, step),
optimizer-step windows of loss metrics reduced once, the controller boundaries, and the typed channel
that carries entropies from a model forward to the loss. Layers: ``core`` (pure math) -> ``methods``
(hooks) -> ``runtime`` -> adapters (``integration``, ``apps``)."""

from openrlhf_steer.runtime.step import EntropyChannel, StepRuntime, rollout_means, step_seed  # noqa: F401
