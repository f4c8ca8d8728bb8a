"""OpenRLHF 0.11.2 integration (launcher, Ray actor subclasses, patches, flag generation).

Light entry points only; the modules that import OpenRLHF/DeepSpeed (``ray_actors``,
``actor_trainer``, ``policy_loss``, ``experience_maker``) are imported where they run.

    check_args(argv) -> SimpleNamespace     parse + validate a full `openrlhf-steer train` command line
    require_openrlhf() -> str               version guard (exactly openrlhf==0.11.2)
"""

from __future__ import annotations

from .version import SUPPORTED_OPENRLHF, OpenRLHFVersionError, require_openrlhf  # noqa: F401


def check_args(argv):
    """See :func:`openrlhf_steer.integration.flags.check_args`."""
    from .flags import check_args as _check_args

    return _check_args(argv)


def __getattr__(name):
    if name in ("EntropyArgsError", "apply_method_args", "build_parser", "split_argv", "EntropyControlSpec"):
        from . import flags

        return getattr(flags, name)
    raise AttributeError(name)
