"""GRPO / DAPO token-level baseline: the clipped surrogate with no entropy intervention."""

from dataclasses import dataclass

from openrlhf_steer.methods.registry import register_method
from openrlhf_steer.methods.base import Method, MethodConfig


@dataclass
class GrpoConfig(MethodConfig):
    """No options: the clip range, dual clip and aggregation live in LossConfig."""


@register_method
class Grpo(Method):
    """Plain GRPO (Shao et al., arXiv 2402.03300) with DAPO's token-mean loss: every hook neutral."""

    name = "grpo"
    config_cls = GrpoConfig
    paper = "GRPO, Shao et al., arXiv 2402.03300; DAPO token-mean, Yu et al., arXiv 2503.14476"
