"""Version guard: the integration patches OpenRLHF internals that change between minor releases."""

from __future__ import annotations

from typing import Callable, Optional

SUPPORTED_OPENRLHF = "0.11.2"


class OpenRLHFVersionError(RuntimeError):
    """Raised when the installed OpenRLHF is missing or is not the supported release."""


def installed_openrlhf_version() -> Optional[str]:
    """The installed distribution's version, read from package metadata (no import of openrlhf)."""
    from importlib import metadata

    try:
        return metadata.version("openrlhf")
    except metadata.PackageNotFoundError:
        return None


def require_openrlhf(version_lookup: Callable[[], Optional[str]] = None) -> str:
    """Return the installed OpenRLHF version, or raise naming the supported one.

    The patches subclass ``PolicyLoss``, ``ActorPPOTrainer``, ``PolicyModelActor`` and
    ``RemoteExperienceMaker`` and rely on their 0.11.2 signatures; any other release is refused
    instead of training with silently wrong hooks.
    """
    found = (version_lookup or installed_openrlhf_version)()
    if found is None:
        raise OpenRLHFVersionError(
            f"OpenRLHF is not installed; openrlhf-steer train needs openrlhf=={SUPPORTED_OPENRLHF} "
            f"(GPU: pip install 'openrlhf-steer[train]'; CPU tests: pip install --no-deps "
            f"openrlhf=={SUPPORTED_OPENRLHF})."
        )
    if found != SUPPORTED_OPENRLHF:
        raise OpenRLHFVersionError(
            f"openrlhf {found} is installed but openrlhf-steer supports exactly openrlhf=={SUPPORTED_OPENRLHF} "
            f"(its PolicyLoss, ActorPPOTrainer and RemoteExperienceMaker internals are patched). "
            f"Fix: pip install openrlhf=={SUPPORTED_OPENRLHF}"
        )
    return found
