"""``python -m openrlhf_steer.apps.train`` / ``openrlhf-steer train``: OpenRLHF 0.11.2 PPO/GRPO with entropy control.

Every ``openrlhf.cli.train_ppo_ray`` flag is accepted unchanged (OpenRLHF's own parser and
validation run on it) plus ``--entropy.method NAME`` and ``--entropy.<method>.<option>``; see
``--help`` and docs/openrlhf.md.
"""

from __future__ import annotations

import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    from openrlhf_steer.integration.launch import launch

    return launch(sys.argv[1:] if argv is None else list(argv))


if __name__ == "__main__":
    sys.exit(main())
