"""Jobs in worker processes (spawned, 1 torch thread each): the demo's method runs and the analyses' short runs."""

from __future__ import annotations

import dataclasses
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, List

import torch


def run_jobs(
    worker: Callable[[Dict[str, Any]], Dict[str, Any]], jobs: List[Dict[str, Any]], workers: int
) -> List[Dict[str, Any]]:
    if workers <= 1 or len(jobs) <= 1:
        return [worker(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(worker, jobs))


def make_run(job: Dict[str, Any]):
    """A MethodRun from a job dict {config, output_dir, spec, run_dir, rl_overrides}."""
    torch.set_num_threads(1)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    from ..workspace import load_probe, open_workspace
    from ..train import MethodRun

    ws = open_workspace(Path(job["output_dir"]), job["config"])
    rl = dataclasses.replace(ws.config.rl, **job.get("rl_overrides", {}))
    return MethodRun(job["spec"], ws.start_dir, Path(job["run_dir"]), ws.task, ws.pool, rl, probe=load_probe(ws))
