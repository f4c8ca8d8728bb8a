"""Pieces shared by the analyses: settings resolution, output paths, plotting helpers."""

from __future__ import annotations

from pathlib import Path

from ..report import pyplot, save_figure  # noqa: F401  (re-exported for the analyses)


def analysis_dir(ws) -> Path:
    path = Path(ws.output_dir) / "analyses"
    path.mkdir(parents=True, exist_ok=True)
    return path
