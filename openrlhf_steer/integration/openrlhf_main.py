"""The driver's bootstrap: execute OpenRLHF 0.11.2's ``train_ppo_ray`` ``__main__`` block with ``runpy``.

OpenRLHF declares its flags inside ``if __name__ == "__main__":`` of ``openrlhf.cli.train_ppo_ray``; we
execute that block (never re-declaring a flag). Its last statement is ``train(args)``, whose first calls
are ``ray.is_initialized()`` and ``get_strategy(args)``: :func:`run_openrlhf_main` hooks ``get_strategy``
(imported by name into the fresh module namespace) to see the validated args, let the caller adjust them
and either continue into training or stop with the args. Only the driver imports this module.
"""

from __future__ import annotations

import contextlib
import runpy
import sys
from types import SimpleNamespace
from typing import Callable, Iterator, Optional, Sequence

OPENRLHF_MAIN = "openrlhf.cli.train_ppo_ray"


class _StopBeforeTraining(Exception):
    def __init__(self, args):
        super().__init__("stopped before training")
        self.parsed = args


@contextlib.contextmanager
def _patched(obj, name: str, value) -> Iterator[None]:
    original = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, original)


def run_openrlhf_main(
    openrlhf_argv: Sequence[str], on_args: Callable[[SimpleNamespace], None], stop: bool = False
) -> Optional[SimpleNamespace]:
    """Execute OpenRLHF's ``train_ppo_ray`` ``__main__`` on ``openrlhf_argv``.

    ``on_args(args)`` sees the args after OpenRLHF's validation, just before ``train`` uses them. With
    ``stop=True`` nothing is started (no Ray) and the args are returned.
    """
    import ray

    import openrlhf.utils

    original_get_strategy = openrlhf.utils.get_strategy

    def get_strategy_hook(args):
        on_args(args)
        if stop:
            raise _StopBeforeTraining(args)
        return original_get_strategy(args)

    saved_argv = sys.argv
    sys.argv = ["openrlhf-steer train"] + list(openrlhf_argv)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(_patched(openrlhf.utils, "get_strategy", get_strategy_hook))
            if stop:  # train() calls ray.init unless Ray is up; pretend it is, we stop right after
                stack.enter_context(_patched(ray, "is_initialized", lambda: True))
            try:
                runpy.run_module(OPENRLHF_MAIN, run_name="__main__", alter_sys=False)
            except _StopBeforeTraining as captured:
                return captured.parsed
    finally:
        sys.argv = saved_argv
    return None
