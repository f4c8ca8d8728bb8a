"""The analysis tables (config ``kind`` other than ``results``): a registry kind -> runner module.

Each runner takes the loaded TableConfig and run_table's parsed arguments (--dry-run, --smoke,
--output-dir, ...), writes ``<output-dir>/<table>.md`` / ``.json`` (and a ``.png``), and returns an
exit code.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Dict

# kind -> module whose ``run(config, args) -> int`` reproduces that kind of table
RUNNERS: Dict[str, str] = {
    "estimator": "repro_estimator_table",  # STEER Figure 2
    "entropy_correlation": "repro_correlation_table",  # Pos-Adv Tables 1 and 4
}


def run_analysis(config, args: argparse.Namespace) -> int:
    if config.kind not in RUNNERS:
        raise ValueError(f"{config.path}: no analysis runner for kind {config.kind!r}; known: {sorted(RUNNERS)}")
    return int(importlib.import_module(RUNNERS[config.kind]).run(config, args))
