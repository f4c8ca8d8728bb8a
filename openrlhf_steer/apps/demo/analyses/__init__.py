"""Small-scale reproductions of the STEER paper's validation figures (``python -m openrlhf_steer.apps.demo analyze``).

Each analysis is a module with ``preset_settings(quick, config)`` (its settings for the demo preset),
``run(ws, settings, progress) -> dict`` (writes ``<name>.json`` and ``<name>.png`` into
``<output-dir>/analyses/``) and ``summary(result) -> str`` (one line for the console). ``ANALYSES`` maps
the CLI name to the module: the one place the names are listed.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# CLI name -> module of this package (imported when the analysis runs)
ANALYSES = {"estimator": "estimator", "quadrants": "quadrants", "clip-bands": "clip_bands"}
ANALYSIS_NAMES = tuple(ANALYSES)


def get_analysis(name: str) -> ModuleType:
    if name not in ANALYSES:
        raise ValueError(f"unknown analysis {name!r}; choose one of {list(ANALYSIS_NAMES)}")
    return importlib.import_module(f".{ANALYSES[name]}", __name__)
