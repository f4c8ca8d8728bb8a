"""Math test sets: loading (local file/folder or Hugging Face id) and gold-answer extraction.

Gold answers follow Qwen2.5-Math's ``parse_ground_truth`` (research notes eval.md §1):
  * AIME 2024/2025, MATH-500: the ``answer`` field;
  * AMC 2023: ``answer`` is a float (27.0) -> canonical string ("27");
  * Minerva Math: no answer field; the last ``\\boxed{...}`` of ``solution`` (brace-matched);
  * OlympiadBench: ``final_answer[0]`` with surrounding ``$`` stripped.
Every problem dict keeps its original fields and gains ``gold_answer`` and ``question_text``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable, Dict, List, Optional

from .io_utils import iter_jsonl
from .graders.math_text import last_boxed_content

GOLD_KEY = "gold_answer"
QUESTION_KEY = "question_text"


class GoldError(ValueError):
    """A dataset row lacks what its benchmark needs to get the gold answer."""


# ----------------------------------------------------------------------------- gold extractors
def _field(row: dict, *names: str):
    for name in names:
        if name in row and row[name] is not None:
            return row[name]
    raise GoldError(f"missing field {' or '.join(repr(n) for n in names)}")


def gold_plain(row: dict) -> str:
    value = _field(row, "answer", "Answer")
    if isinstance(value, float):
        return float_to_canonical(value)
    text = str(value).strip()
    if not text:
        raise GoldError("field 'answer' is empty")
    return text


def float_to_canonical(value: float) -> str:
    """27.0 -> "27", 1.5 -> "1.5" (AMC stores integers as floats)."""
    if not math.isfinite(value):
        raise GoldError(f"answer {value!r} is not a finite number")
    if value == int(value):
        return str(int(value))
    return repr(value)


def gold_amc(row: dict) -> str:
    value = _field(row, "answer", "Answer")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float_to_canonical(float(value))
    text = str(value).strip()
    try:
        return float_to_canonical(float(text))
    except ValueError:
        if not text:
            raise GoldError("field 'answer' is empty") from None
        return text


def gold_minerva(row: dict) -> str:
    if "solution" not in row and "answer" in row:  # HF re-uploads with a plain answer column
        return gold_plain(row)
    solution = _field(row, "solution")
    boxed = last_boxed_content(str(solution))
    if boxed is None:
        raise GoldError("field 'solution' has no \\boxed{...} answer")
    return boxed.strip()


def gold_olympiad(row: dict) -> str:
    final = _field(row, "final_answer", "answer")
    if isinstance(final, list):
        if not final:
            raise GoldError("field 'final_answer' is an empty list")
        final = final[0]
    text = str(final).strip().strip("$").strip()
    if not text:
        raise GoldError("field 'final_answer' is empty")
    return text


def question_text(row: dict) -> str:
    q = _field(row, "problem", "question", "Problem", "Question")
    if not isinstance(q, str) or not q.strip():
        raise GoldError("the problem text ('problem' or 'question') is empty")
    return q


# ----------------------------------------------------------------------------- loading
def _resolve_local(source: str, bench_name: str) -> Optional[Path]:
    p = Path(os.path.expanduser(source))
    if p.is_file():
        return p
    if p.is_dir():
        for candidate in (p / "test.jsonl", p / bench_name / "test.jsonl"):
            if candidate.is_file():
                return candidate
        jsonls = sorted(p.glob("*.jsonl"))
        if len(jsonls) == 1:
            return jsonls[0]
        raise FileNotFoundError(
            f"{p}: expected test.jsonl (or {bench_name}/test.jsonl, or exactly one *.jsonl) in this folder"
        )
    return None


def _load_hf(dataset_id: str, split: str, config: Optional[str]) -> List[tuple]:
    try:
        import datasets  # lazy: only needed for hub ids
    except ImportError:  # pragma: no cover - datasets is a requirement
        raise RuntimeError(
            f"loading {dataset_id!r} from the Hugging Face hub needs the 'datasets' package; or pass a local JSONL path"
        ) from None
    try:
        ds = datasets.load_dataset(dataset_id, config, split=split)
    except Exception as exc:
        raise RuntimeError(
            f"could not load Hugging Face dataset {dataset_id!r} (split {split!r}): {exc}. "
            "Offline? Pass a local JSONL with --data NAME=PATH or --data-dir DIR."
        ) from exc
    return [(i + 1, dict(r)) for i, r in enumerate(ds)]


def make_math_loader(
    bench_name: str,
    gold_fn: Callable[[dict], str],
    default_source: str,
    default_split: str = "test",
    default_config: Optional[str] = None,
) -> Callable[..., List[dict]]:
    """Build ``load(source=None, split=..., config=...)`` for one math benchmark."""

    def load(source: Optional[str] = None, split: Optional[str] = None, config: Optional[str] = None) -> List[dict]:
        source = source or default_source
        local = _resolve_local(source, bench_name)
        if local is not None:
            suffix = local.suffix.lower()
            if suffix == ".parquet":
                import datasets

                ds = datasets.load_dataset("parquet", data_files=str(local), split="train")
                numbered = [(i + 1, dict(r)) for i, r in enumerate(ds)]
                where = f"{local} row"
            else:
                numbered = list(iter_jsonl(local))
                where = f"{local}:"
        else:
            numbered = _load_hf(source, split or default_split, config or default_config)
            where = f"{source} row "
        problems: List[dict] = []
        for lineno, row in numbered:
            try:
                gold = gold_fn(row)
                question = question_text(row)
            except GoldError as exc:
                raise ValueError(f"{where}{lineno}: {bench_name}: {exc}") from None
            problems.append({**row, GOLD_KEY: gold, QUESTION_KEY: question})
        if not problems:
            raise ValueError(f"{source}: {bench_name} has no problems")
        return problems

    return load


def id_from_fields(*names: str) -> Callable[[dict, int], str]:
    """problem_id(row, index): the first present id field, else the 0-based index."""

    def problem_id(row: dict, index: int) -> str:
        for name in names:
            if row.get(name) is not None:
                return str(row[name])
        return str(index)

    return problem_id


GOLD_EXTRACTORS: Dict[str, Callable[[dict], str]] = {
    "aime24": gold_plain,
    "aime25": gold_plain,
    "amc23": gold_amc,
    "math500": gold_plain,
    "minerva_math": gold_minerva,
    "olympiadbench": gold_olympiad,
}
