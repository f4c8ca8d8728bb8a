"""`openrlhf-steer` console script (also `python -m openrlhf_steer`): one entry point, subcommands by name.

    openrlhf-steer train ...             OpenRLHF's train_ppo_ray with an entropy-control method
    openrlhf-steer demo ...              the CPU end-to-end demo and its claims
    openrlhf-steer methods [NAME ...]    the registered methods: paper, file, options (--markdown: the docs table)

Each subcommand imports its stack when it runs, so that `demo` never imports OpenRLHF and `train` never
imports the demo's plotting stack.
"""

from __future__ import annotations

import sys
from typing import Callable, Dict, List, Optional, Tuple


def _train(argv: List[str]) -> int:
    from openrlhf_steer.apps.train import main as train_main

    return train_main(argv) or 0


def _demo(argv: List[str]) -> int:
    from openrlhf_steer.apps.demo.__main__ import main as demo_main

    return demo_main(argv) or 0


def _methods(argv: List[str]) -> int:
    from openrlhf_steer.methods import describe_methods, methods_markdown_table

    from openrlhf_steer.control.describe import describe_target, target_markdown_table

    if "--markdown" in argv:
        print(methods_markdown_table(), end="")
        return 0
    if "--target-markdown" in argv:
        print(target_markdown_table(), end="")
        return 0
    names = [a for a in argv if not a.startswith("-")]
    try:
        if names != ["target"]:
            print(describe_methods([n for n in names if n != "target"] or None))
        if not names or "target" in names:  # the entropy target's options (--entropy.target.*)
            print(describe_target())
    except ValueError as err:  # an unknown name: the message lists the registered ones
        print(f"openrlhf-steer methods: {err}", file=sys.stderr)
        return 2
    return 0


COMMANDS: Dict[str, Tuple[Callable[[List[str]], int], str]] = {
    "train": (_train, "run OpenRLHF 0.11.2 PPO/GRPO (Ray + vLLM + DeepSpeed) with --entropy.method NAME"),
    "demo": (_demo, "CPU end-to-end RLVR demo: the papers' claims at small scale"),
    "methods": (_methods, "list the registered entropy-control methods: paper, file, options (--markdown)"),
}

USAGE = (
    "usage: openrlhf-steer {"
    + ",".join(COMMANDS)
    + "} [args...]\n\n"
    + "\n".join(f"  {name:<8} {help_text}" for name, (_, help_text) in COMMANDS.items())
    + "\n"
)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if argv[0] in ("-V", "--version"):
        from openrlhf_steer import __version__

        print(f"openrlhf-steer {__version__}")
        return 0
    command = COMMANDS.get(argv[0])
    if command is None:
        print(f"openrlhf-steer: unknown command {argv[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return command[0](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
