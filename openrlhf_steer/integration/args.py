"""What the Ray workers read back from OpenRLHF's parsed args (import-light: no parser run, no runpy).

The driver stores the entropy-control spec as JSON in ``args.entropy_spec`` (``flags.ARGS_ATTR``); the
args travel to every worker inside OpenRLHF's pickled strategy. Workers call :func:`spec_from_args` and
:func:`effective_loss_config`.
"""

from __future__ import annotations

from typing import Optional

from .flags import ARGS_ATTR, EntropyControlSpec


def spec_from_args(args) -> Optional[EntropyControlSpec]:
    """The spec the driver stored in OpenRLHF's args, or None when entropy control is off."""
    text = getattr(args, ARGS_ATTR, None)
    return EntropyControlSpec.from_json(text) if text else None


def effective_loss_config(args, method):
    """The LossConfig our loss will use: OpenRLHF's clip flags, then the method's override.

    GSPO aggregates seq-mean-token-mean whatever ``--actor.loss_agg_mode`` says (as OpenRLHF does).
    """
    from openrlhf_steer.core.types import LossConfig

    low, high = args.actor.eps_clip_low_high
    token_mean = args.actor.loss_agg_mode == "token-mean" and args.actor.policy_loss_type != "gspo"
    base = LossConfig(
        eps_low=float(low),
        eps_high=float(high),
        dual_clip=args.actor.dual_clip,
        loss_agg_mode="token-mean" if token_mean else "seq-mean-token-mean",
    )
    return method.loss_config(base) if method is not None else base
