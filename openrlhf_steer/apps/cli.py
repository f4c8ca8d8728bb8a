"""`openrlhf-steer` console script: one entry point, subcommands dispatched lazily.

    openrlhf-steer train ...     OpenRLHF's train_ppo_ray with an entropy-control method (openrlhf_steer.apps.train)
    openrlhf-steer demo ...      the CPU end-to-end demo and its analyses (openrlhf_steer.demo)
    openrlhf-steer methods       list the registered methods and their options

Imports happen inside each branch so that `demo` never imports OpenRLHF and `train` never imports
the demo's plotting stack.
"""
from __future__ import annotations

import sys
from typing import List, Optional

USAGE = """usage: openrlhf-steer {train,demo,methods} [args...]

  train    run OpenRLHF 0.11.2 PPO/GRPO (Ray + vLLM + DeepSpeed) with --entropy.method NAME
  demo     CPU end-to-end RLVR demo and the STEER validation analyses
  methods  list the registered entropy-control methods and their options
"""


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "train":
        from openrlhf_steer.apps.train import main as train_main

        return train_main(rest) or 0
    if command == "demo":
        from openrlhf_steer.demo.__main__ import main as demo_main

        return demo_main(rest) or 0
    if command == "methods":
        from openrlhf_steer.methods import describe_methods

        print(describe_methods())
        return 0
    print(f"openrlhf-steer: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
