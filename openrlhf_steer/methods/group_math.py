"""Moved to :mod:`openrlhf_steer.core.group_math` (pure math belongs to core); re-exported for the methods."""

from openrlhf_steer.core.group_math import broadcast_to_tokens, group_stats, grpo_advantages  # noqa: F401
