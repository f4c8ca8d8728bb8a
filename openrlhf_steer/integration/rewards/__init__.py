"""Reward functions for OpenRLHF's ``--reward.remote_url /path/to/file.py`` hook."""

from __future__ import annotations

import os


def math_reward_path() -> str:
    """Absolute path of the math reward file, for ``--reward.remote_url``."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "math_reward.py")
