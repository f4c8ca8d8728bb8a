"""One demo output directory: its paths, the start model and the probe batch, shared by the runs and analyses."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from .config import DemoConfig
from .io import save_torch
from .task import AdditionTask, get_task

START_MODEL = "start_model"
PROBE = "probe.pt"


@dataclasses.dataclass
class Workspace:
    """Paths and shared objects of one output directory."""

    output_dir: Path
    config: DemoConfig
    task: AdditionTask
    pool: list
    heldout: list

    @property
    def start_dir(self) -> Path:
        return self.output_dir / START_MODEL

    def run_dir(self, run_name: str, seed: int) -> Path:
        return self.output_dir / "runs" / run_name / f"seed{seed}"


def open_workspace(output_dir: Path, config: DemoConfig) -> Workspace:
    task = get_task(config.task)
    if config.model == "smollm2" and not task.chat:
        raise ValueError("--model smollm2 needs a chat task: use --task add1-chat")
    if config.model == "tiny" and task.chat:
        raise ValueError("the tiny char-level model cannot read chat prompts: use --task add2")
    pool, heldout = task.split(config.seed, config.eval.num_problems)
    return Workspace(Path(output_dir), config, task, pool, heldout)


def prepare_start_model(ws: Workspace, progress: bool = True) -> Path:
    """SFT warm start of the tiny model, or the dequantised SmolLM2 checkpoint; cached in the output dir."""
    cfg = ws.config
    if cfg.model == "tiny":
        from .sft import ensure_sft_checkpoint

        sft = dataclasses.replace(cfg.sft, seed=cfg.seed)
        return ensure_sft_checkpoint(
            ws.start_dir, model_size=cfg.model_size, task=ws.task, pool=ws.pool, config=sft, progress=progress
        )
    if cfg.model == "smollm2":
        from .models import convert_smollm2

        if not (ws.start_dir / "config.json").exists():
            convert_smollm2(ws.start_dir)
        return ws.start_dir
    raise ValueError(f"--model {cfg.model!r} is unknown: choose tiny or smollm2")


def prepare_probe(ws: Workspace) -> None:
    from .models import load_policy
    from .train import make_probe

    path = ws.output_dir / PROBE
    if path.exists():
        return
    model, tokenizer = load_policy(ws.start_dir)
    probe_problems = ws.heldout[: ws.config.rl.probe_prompts]
    probe = make_probe(model, tokenizer, ws.task, probe_problems, ws.config.rl)
    save_torch(path, probe.state())


def load_probe(ws: Workspace):
    from .train import ProbeBatch

    return ProbeBatch.from_state(torch.load(ws.output_dir / PROBE, weights_only=False))
