"""IF-Eval scored per instruction, as Pos-Adv's IF-Eval column is (the config's ``eval.ifeval_level``).

The eval CLI's avg@k / pass@k for IF-Eval count a response right when it follows every instruction of its prompt
(prompt level, 541 units). Pos-Adv's printed Pass@64 cells are whole numbers of IF-Eval's 834 instructions
(see the ``ifeval_level`` entry of reproduce/configs/recipes/posadv.yaml), so its unit is the instruction:

* avg@n  = mean over instructions of c / n,
* pass@k = mean over instructions of the unbiased pass@k (Chen et al. 2021) with c of the n responses to the
  instruction's prompt following it,

read from the per-response verdicts the eval CLI writes to ``samples_ifeval.jsonl`` (each verdict's
``detail.follow_instruction_list``), for the grader the table reads (strict by default).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Sequence

from openrlhf_steer_eval.metrics import pass_at_k

SAMPLES_FILE = "samples_ifeval.jsonl"


def instruction_level(follows: Sequence[Sequence[Sequence[bool]]], ks: Sequence[int]) -> Dict[str, float]:
    """``follows[prompt][response][instruction]`` -> fractions ``{"avg": ..., "pass@<k>": ...}`` over all
    instructions. Every response of a prompt must list the same number of instructions."""
    counts: List[tuple] = []  # (n, c) per instruction
    for p, responses in enumerate(follows):
        if not responses:
            raise ValueError(f"ifeval prompt {p}: no responses")
        width = {len(r) for r in responses}
        if len(width) != 1:
            raise ValueError(f"ifeval prompt {p}: responses list {sorted(width)} instructions; expected one count")
        for m in range(width.pop()):
            counts.append((len(responses), sum(bool(r[m]) for r in responses)))
    if not counts:
        raise ValueError("ifeval: no instructions to score")
    out = {"avg": sum(c / n for n, c in counts) / len(counts)}
    for k in ks:
        out[f"pass@{k}"] = sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)
    return out


def read_follows(samples_path: Path, grader: str) -> List[List[List[bool]]]:
    """The per-response instruction verdicts of ``grader`` in a ``samples_ifeval.jsonl``, by prompt index."""
    path = Path(samples_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the instruction-level IF-Eval score needs the eval CLI's samples")
    by_prompt: Dict[int, Dict[int, List[bool]]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("benchmark", "ifeval") != "ifeval":
            continue
        verdict = (row.get("verdicts") or {}).get(grader)
        if verdict is None:
            raise ValueError(f"{path}:{lineno}: no verdict of grader {grader!r}; graders: {sorted(row['verdicts'])}")
        follow = (verdict.get("detail") or {}).get("follow_instruction_list")
        if follow is None:
            raise ValueError(f"{path}:{lineno}: the {grader} verdict has no detail.follow_instruction_list")
        by_prompt.setdefault(int(row["index"]), {})[int(row["sample"])] = [bool(x) for x in follow]
    return [[samples[j] for j in sorted(samples)] for _, samples in sorted(by_prompt.items())]


def instruction_level_scores(output_dir: Path, grader: str, n: int) -> Dict[str, float]:
    """avg@n and pass@n of IF-Eval per instruction, in %, from ``<output_dir>/samples_ifeval.jsonl``."""
    follows = read_follows(Path(output_dir) / SAMPLES_FILE, grader)
    short = [p for p, responses in enumerate(follows) if len(responses) != n]
    if short:
        raise ValueError(f"ifeval prompts {short[:5]} have not {n} responses in {output_dir}/{SAMPLES_FILE}")
    scores = instruction_level(follows, [n])
    return {"avg@n": 100.0 * scores["avg"], "pass@n": 100.0 * scores[f"pass@{n}"]}
