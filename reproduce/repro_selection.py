"""Checkpoint selection rules (a registry: ``selection.policy`` -> the rule), applied to OpenRLHF's HF checkpoints.

OpenRLHF writes ``<ckpt.path>/global_step<N>_hf`` every ``--ckpt.save_steps`` rollout steps (one
step = one rollout batch, as in verl). A rule picks one of them:

* ``last``: the highest step (fallback: ``<ckpt.path>/final``, OpenRLHF's end-of-training save).
* ``best``: the checkpoint with the best mean score on ``benchmarks`` under the selection sampling,
  among steps >= ``min_step``; ties keep the earlier step (verl's best-checkpoint rule saves only on a
  strict improvement). STEER does this: ``trainer.best_metric_key=val-core/math_dapo/acc/mean@32``
  on AIME24 with ``test_freq=1`` and ``save_after=80`` (zz-haooo/STEER run/run_exp.sh).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

STEP_DIR = re.compile(r"^global_step(\d+)_hf$")


def list_checkpoints(ckpt_dir: Path) -> List[Tuple[int, Path]]:
    """(step, path) of every HF checkpoint under ``ckpt_dir``, sorted by step."""
    found = []
    if Path(ckpt_dir).is_dir():
        for child in Path(ckpt_dir).iterdir():
            m = STEP_DIR.match(child.name)
            if m and child.is_dir():
                found.append((int(m.group(1)), child))
    return sorted(found)


def candidates(ckpt_dir: Path, min_step: int = 0, every: int = 1) -> List[Tuple[int, Path]]:
    return [(s, p) for s, p in list_checkpoints(ckpt_dir) if s >= min_step and s % max(1, every) == 0]


def pick_last(ckpt_dir: Path, **_: object) -> Tuple[Optional[int], Path]:
    ckpts = list_checkpoints(ckpt_dir)
    if ckpts:
        return ckpts[-1]
    final = Path(ckpt_dir) / "final"
    if final.is_dir():
        return None, final
    raise FileNotFoundError(f"no checkpoint under {ckpt_dir} (expected global_step<N>_hf folders or final/)")


def pick_best(scores: Mapping[int, float]) -> int:
    """The step with the highest score; the earliest on ties."""
    if not scores:
        raise ValueError("no candidate checkpoint was scored; check min_step/every against --ckpt.save_steps")
    best_step, best = None, float("-inf")
    for step in sorted(scores):
        if scores[step] > best:
            best_step, best = step, scores[step]
    return int(best_step)


# (step, checkpoint) -> the mean score on the selection benchmarks; the runner evaluates (or, in a dry run,
# prints the evaluation of a placeholder step and returns NaN)
Score = Callable[[Union[int, str], Path], float]
Describe = Callable[[str], None]


def select_last(
    ckpt_dir: Path, selection: Mapping[str, Any], score: Score, *, dry: bool = False, describe: Describe = print
) -> Dict[str, Any]:
    """``last``: the highest saved step (or ``final/``); nothing is evaluated."""
    if dry:
        describe(f"last checkpoint under {ckpt_dir} (highest global_step<N>_hf)")
        return {"policy": "last", "step": "<LAST>", "checkpoint": str(Path(ckpt_dir) / "global_step<LAST>_hf")}
    step, path = pick_last(ckpt_dir)
    return {"policy": "last", "step": step, "checkpoint": str(path)}


def select_best(
    ckpt_dir: Path,
    selection: Mapping[str, Any],
    score: Score,
    *,
    dry: bool = False,
    describe: Describe = print,
    progress: Callable[[List[Tuple[int, Path]]], Iterable[Tuple[int, Path]]] = lambda items: items,
) -> Dict[str, Any]:
    """``best``: every saved step in [min_step, max_step] (every ``every``) is scored; the best wins, the
    earliest on ties. ``selection["benchmarks"]`` is recorded with the scores."""
    min_step, every, max_step = (
        int(selection.get("min_step", 0)),
        int(selection.get("every", 1)),
        selection.get("max_step"),
    )
    benches = list(selection["benchmarks"])
    if dry:
        upto = "" if max_step is None else f" and <= {max_step}"
        describe(
            f"for every <STEP> >= {min_step}{upto} with a saved checkpoint (every {every}), then keep the best "
            f"mean avg@n on {benches}:"
        )
        score("<STEP>", Path(ckpt_dir) / "global_step<STEP>_hf")
        return {"policy": "best", "step": "<BEST>", "checkpoint": str(Path(ckpt_dir) / "global_step<BEST>_hf")}
    found = candidates(ckpt_dir, min_step, every)
    if max_step is not None:  # the paper's rollout-step cap (App. E.2 of STEER: at most 150)
        found = [(step, path) for step, path in found if step <= int(max_step)]
    if not found:
        raise FileNotFoundError(f"no checkpoint under {ckpt_dir} with step >= {min_step}")
    scores = {step: score(step, path) for step, path in progress(found)}
    best = pick_best(scores)
    chosen = dict(found)[best]
    return {"policy": "best", "benchmarks": benches, "scores": scores, "step": best, "checkpoint": str(chosen)}


# selection.policy -> the rule (checkpoint folder, selection settings, scorer) -> the selection.json record
SELECTION_POLICIES: Dict[str, Callable[..., Dict[str, Any]]] = {"last": select_last, "best": select_best}


def validate_policy(selection: Mapping[str, object]) -> None:
    policy = selection.get("policy")
    if policy not in SELECTION_POLICIES:
        raise ValueError(f"selection.policy={policy!r} is unknown; choose one of {sorted(SELECTION_POLICIES)}")
    if policy == "best" and not selection.get("benchmarks"):
        raise ValueError("selection.policy=best needs selection.benchmarks (e.g. [aime24])")
