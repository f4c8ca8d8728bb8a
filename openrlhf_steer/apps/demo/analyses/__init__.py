"""Small-scale reproductions of the STEER paper's validation figures.

Each analysis is a module with ``run(ws, settings, progress) -> dict`` that writes ``<name>.json`` and
``<name>.png`` into ``<output-dir>/analyses/``; ``ANALYSES`` maps the CLI name to it.
"""

from __future__ import annotations

from typing import Callable, Dict


def _registry() -> Dict[str, Callable]:
    from . import clip_bands, estimator, quadrants

    return {"estimator": estimator.run, "quadrants": quadrants.run, "clip-bands": clip_bands.run}


ANALYSIS_NAMES = ("estimator", "quadrants", "clip-bands")


def get_analysis(name: str) -> Callable:
    registry = _registry()
    if name not in registry:
        raise ValueError(f"unknown analysis {name!r}; choose one of {list(ANALYSIS_NAMES)}")
    return registry[name]
