"""DAPO-Math-17k loader: by Hugging Face dataset id (lazily, through ``datasets``) or by local path
(.jsonl / .json / .parquet), deduplicated, written as an OpenRLHF prompt dataset.

Format of the published dataset (``BytedTsinghua-SIA/DAPO-Math-17k``, verl RL parquet): ``prompt``
is a chat list whose user message already carries the DAPO template below, ``reward_model`` is
``{"ground_truth": str, "style": "rule-lighteval/MATH_v2"}``, ``extra_info`` is ``{"index": str}``.
The HF file repeats ~17.4k unique prompts about 100 times (1.79M rows), hence the deduplication.

Both papers train on this data with this template: STEER ships ``datasets/DAPO-Math-17k.parquet``
(zz-haooo/STEER run/run_exp.sh) and Jin et al. train on DAPO-Math-17K with veRL. The OpenRLHF
prompt dataset written here keeps the chat list, so ``--data.apply_chat_template`` reproduces
verl's behaviour (the tokenizer's chat template is applied to the same user message).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from openrlhf_steer_eval.atomic_io import atomic_write_text

DAPO_HF_ID = "BytedTsinghua-SIA/DAPO-Math-17k"

# The DAPO prompt format (the text DAPO-Math-17k's user messages carry around each problem).
DAPO_PREFIX = (
    "Solve the following math problem step by step. The last line of your response should be of the "
    "form Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n"
)
DAPO_SUFFIX = '\n\nRemember to put your answer on its own line after "Answer:".'

# Field names accepted for local files, in order of preference.
_PROBLEM_FIELDS = ("prompt", "problem", "question", "input")
_ANSWER_FIELDS = ("answer", "label", "ground_truth", "final_answer")


@dataclass(frozen=True)
class MathPrompt:
    """One training problem: the bare problem text, its gold answer and where it came from."""

    problem: str
    answer: str
    source_index: str = ""
    meta: Dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def prompt(self) -> str:
        return format_dapo_prompt(self.problem)


def format_dapo_prompt(problem: str) -> str:
    """Wrap a bare problem in the DAPO template (idempotent on already-templated text)."""
    return DAPO_PREFIX + strip_dapo_template(problem) + DAPO_SUFFIX


def strip_dapo_template(text: str) -> str:
    """Return the bare problem of a (possibly) DAPO-templated user message."""
    body = text.strip()
    prefix = DAPO_PREFIX.strip()
    if body.startswith(prefix):
        body = body[len(prefix) :]
    suffix = DAPO_SUFFIX.strip()
    if body.rstrip().endswith(suffix):
        body = body.rstrip()[: -len(suffix)]
    return body.strip()


# --------------------------------------------------------------------------------------------------
# Reading rows
# --------------------------------------------------------------------------------------------------
def _read_local_rows(path: Path) -> Iterator[Dict[str, Any]]:
    suffixes = "".join(path.suffixes[-2:]).lower()
    if path.suffix.lower() == ".jsonl" or suffixes.endswith(".jsonl"):
        with open(path, encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(
                        f"{path}:{line_no}: not valid JSON ({err.msg}); each line must be one JSON object"
                    ) from None
    elif path.suffix.lower() == ".json":
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, list):
            raise ValueError(
                f"{path}: a .json training file must hold a JSON array of objects (use .jsonl for one object per line)"
            )
        yield from data
    elif path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq  # lazily: only parquet inputs need it

        table = pq.read_table(path)
        for batch in table.to_batches(max_chunksize=4096):
            yield from batch.to_pylist()
    else:
        raise ValueError(f"{path}: unsupported training-data file type {path.suffix!r}; use .jsonl, .json or .parquet")


def _read_hub_rows(dataset_id: str, split: str) -> Iterator[Dict[str, Any]]:
    try:
        import datasets  # lazily: heavy import, and only needed for hub ids
    except ImportError as err:  # pragma: no cover - datasets is in requirements
        raise RuntimeError("loading a dataset by id needs the `datasets` package: pip install datasets") from err
    try:
        ds = datasets.load_dataset(dataset_id, split=split)
    except Exception as err:
        raise RuntimeError(
            f"could not load dataset {dataset_id!r} (split {split!r}) from the Hugging Face hub: {err}. "
            "Pass a local .parquet/.jsonl path instead (e.g. a downloaded dapo-math-17k.parquet), "
            "or unset HF_HUB_OFFLINE if you are online."
        ) from err
    yield from ds


def _problem_of(row: Mapping[str, Any], where: str) -> str:
    for key in _PROBLEM_FIELDS:
        if key not in row or row[key] is None:
            continue
        value = row[key]
        if isinstance(value, str):
            return strip_dapo_template(value)
        if isinstance(value, (list, tuple)):
            users = [m.get("content", "") for m in value if isinstance(m, Mapping) and m.get("role", "user") == "user"]
            if users and isinstance(users[-1], str):
                return strip_dapo_template(users[-1])
        raise ValueError(
            f"{where}: field {key!r} must be a string or a chat list of {{role, content}} messages, got "
            f"{type(value).__name__}"
        )
    raise ValueError(
        f"{where}: no problem text; add one of the fields {list(_PROBLEM_FIELDS)} (DAPO-Math-17k uses 'prompt')"
    )


def _answer_of(row: Mapping[str, Any], where: str) -> str:
    reward_model = row.get("reward_model")
    if isinstance(reward_model, Mapping) and reward_model.get("ground_truth") is not None:
        return str(reward_model["ground_truth"]).strip()
    for key in _ANSWER_FIELDS:
        value = row.get(key)
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            value = value[0] if value else ""
        return str(value).strip()
    raise ValueError(
        f"{where}: no gold answer; add reward_model.ground_truth (DAPO-Math-17k) or one of the fields "
        f"{list(_ANSWER_FIELDS)}"
    )


def _index_of(row: Mapping[str, Any], fallback: int) -> str:
    extra = row.get("extra_info")
    if isinstance(extra, Mapping) and extra.get("index") is not None:
        return str(extra["index"])
    for key in ("index", "id", "idx"):
        if row.get(key) is not None:
            return str(row[key])
    return str(fallback)


def iter_dapo_math(source: str, split: str = "train") -> Iterator[MathPrompt]:
    """Yield every row of ``source`` (a local file or a hub dataset id) as a :class:`MathPrompt`."""
    path = Path(source).expanduser()
    if path.exists():
        rows: Iterable[Dict[str, Any]] = _read_local_rows(path)
        label = str(path)
    elif (
        path.suffix.lower() not in (".jsonl", ".json", ".parquet")
        and source.count("/") == 1
        and not source.startswith((".", "/", "~"))
    ):
        rows = _read_hub_rows(source, split)
        label = source
    else:
        raise FileNotFoundError(
            f"training data {source!r} is neither an existing file nor a hub id of the form owner/name "
            f"(e.g. {DAPO_HF_ID})"
        )
    for i, row in enumerate(rows):
        where = f"{label} row {i}"
        if not isinstance(row, Mapping):
            raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
        answer = _answer_of(row, where)
        if not answer:
            raise ValueError(f"{where}: empty gold answer; every training row needs a non-empty answer")
        yield MathPrompt(problem=_problem_of(row, where), answer=answer, source_index=_index_of(row, i))


def _dedup_key(problem: str) -> str:
    return re.sub(r"\s+", " ", problem).strip()


def deduplicate(records: Iterable[MathPrompt]) -> Tuple[List[MathPrompt], Dict[str, int]]:
    """Keep the first occurrence of each problem (whitespace-normalised); count what was dropped.

    ``conflicts`` counts repeated problems whose gold answer differs from the kept one.
    """
    kept: Dict[str, MathPrompt] = {}
    total = conflicts = 0
    for rec in records:
        total += 1
        key = _dedup_key(rec.problem)
        first = kept.get(key)
        if first is None:
            kept[key] = rec
        elif first.answer != rec.answer:
            conflicts += 1
    stats = {
        "rows_read": total,
        "unique": len(kept),
        "duplicates_dropped": total - len(kept),
        "answer_conflicts": conflicts,
    }
    return list(kept.values()), stats


def load_dapo_math(
    source: str = DAPO_HF_ID, split: str = "train", dedup: bool = True
) -> Tuple[List[MathPrompt], Dict[str, int]]:
    """Load DAPO-Math-17k (or a file in its format) and deduplicate it."""
    records = iter_dapo_math(source, split)
    if dedup:
        return deduplicate(records)
    rows = list(records)
    return rows, {"rows_read": len(rows), "unique": len(rows), "duplicates_dropped": 0, "answer_conflicts": 0}


# --------------------------------------------------------------------------------------------------
# Writing the OpenRLHF prompt dataset
# --------------------------------------------------------------------------------------------------
def openrlhf_row(
    rec: MathPrompt, input_key: str = "prompt", label_key: str = "label", chat: bool = True
) -> Dict[str, Any]:
    """One OpenRLHF prompt-dataset row. ``chat=True`` stores a one-message chat list (use it with
    ``--data.apply_chat_template``); ``chat=False`` stores the templated string."""
    text = rec.prompt
    return {
        input_key: [{"role": "user", "content": text}] if chat else text,
        label_key: rec.answer,
        "source_index": rec.source_index,
    }


def write_openrlhf_jsonl(
    records: Sequence[MathPrompt],
    out_path: os.PathLike,
    input_key: str = "prompt",
    label_key: str = "label",
    chat: bool = True,
    manifest: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """Write ``records`` as OpenRLHF jsonl (atomically) plus ``<out>.manifest.json``; return the manifest."""
    if not records:
        raise ValueError("no training records to write; check the source and the subset options")
    out = Path(out_path)
    lines = [json.dumps(openrlhf_row(r, input_key, label_key, chat), ensure_ascii=False) for r in records]
    text = "\n".join(lines) + "\n"
    atomic_write_text(out, text)
    info = dict(manifest or {})
    info.update(
        {
            "path": str(out),
            "rows": len(records),
            "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "input_key": input_key,
            "label_key": label_key,
            "chat_format": chat,
            "template": {"prefix": DAPO_PREFIX, "suffix": DAPO_SUFFIX},
        }
    )
    atomic_write_text(Path(str(out) + ".manifest.json"), json.dumps(info, indent=2) + "\n")
    return info


def record_dict(rec: MathPrompt) -> Dict[str, Any]:
    return asdict(rec)
