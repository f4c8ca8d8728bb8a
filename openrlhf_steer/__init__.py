"""openrlhf-steer: entropy control for RL with verifiable rewards (STEER, Pos-Adv-Reweight, baselines).

Public entry points (imported lazily so that ``import openrlhf_steer`` stays cheap for the CLI):

- ``openrlhf_steer.steer_weights``  STEER token weights and Omega (see ``openrlhf_steer.methods.steer``)
- ``openrlhf_steer.core.loss.PolicyLoss``, ``openrlhf_steer.core.entropy.token_logprobs_and_entropy``,
  ``openrlhf_steer.core.advantages.compute_advantages``, ``openrlhf_steer.methods.build_method``.
"""

__version__ = "0.1.0"

_LAZY = {
    "steer_weights": ("openrlhf_steer.methods.steer", "steer_weights"),
    "PolicyLoss": ("openrlhf_steer.core.loss", "PolicyLoss"),
    "token_logprobs_and_entropy": ("openrlhf_steer.core.entropy", "token_logprobs_and_entropy"),
    "compute_advantages": ("openrlhf_steer.core.advantages", "compute_advantages"),
    "build_method": ("openrlhf_steer.methods", "build_method"),
    "compose_methods": ("openrlhf_steer.methods", "compose_methods"),
    "available_methods": ("openrlhf_steer.methods", "available_methods"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        value = getattr(importlib.import_module(module_name), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'openrlhf_steer' has no attribute {name!r}")
