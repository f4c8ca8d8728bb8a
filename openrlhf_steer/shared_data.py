"""Where the evaluation test sets and the papers' table transcription live, and how to check a copy of them.

One resolver for the tests and for any preflight check. Each lookup tries, in order:

1. ``$OPENRLHF_STEER_DATA`` (a data folder) or ``$OPENRLHF_STEER_PAPERS`` (a papers folder): when set, it is
   the only answer, so a mistyped path fails loudly instead of silently using another copy;
2. ``../shared/data`` or ``../shared/papers`` next to the checkout;
3. the copy committed in ``tests/data/shared/`` (about 3 MB; its files are checked against ``MANIFEST``).

``MANIFEST`` records, per file, the row count (non-empty lines of a ``.jsonl``) and the sha256 of the bytes
that ``tests/data/shared/data/README.md`` traces to their public source at a pinned commit;
``docker/eval-data.sha256`` lists the same hashes for ``docker/prepare_context.sh``.
"""

import hashlib
import os
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

DATA_ENV = "OPENRLHF_STEER_DATA"
PAPERS_ENV = "OPENRLHF_STEER_PAPERS"
PAPER_TABLES = "paper_tables.json"

REPO_ROOT = Path(__file__).resolve().parents[1]
NEIGHBOUR = REPO_ROOT.parent / "shared"
COMMITTED = REPO_ROOT / "tests" / "data" / "shared"


class Expected(NamedTuple):
    rows: Optional[int]  # non-empty lines of a .jsonl; None for other files
    sha256: str


# Paths relative to a shared/ folder (data/... inside a data folder, papers/... inside a papers folder).
MANIFEST: Dict[str, Expected] = {
    "data/aime24/test.jsonl": Expected(30, "af2b8bd2aa911b6333ad0df32f3ca05c7ae8ed10f1731f4372c8ae26990bf7ac"),
    "data/aime25/test.jsonl": Expected(30, "19a9f25a12e89abaeea9f7e214f8b6f6eae43285e9d8df7a3818ca0408df4b07"),
    "data/amc23/test.jsonl": Expected(40, "43707e1ca784602d8479de24ee8ce36609dbebc46dd152b0b12a46611aa898a4"),
    "data/math500/test.jsonl": Expected(500, "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132"),
    "data/minerva_math/test.jsonl": Expected(272, "0e656b430d3a0a1dab6aa853f453ba3805e28e2cabe4fc72486a897cc09d8ba2"),
    "data/olympiadbench/test.jsonl": Expected(675, "bb8c1e38a16ea9eacb77530315a674d883f267fbff79183effc53681b4fcc416"),
    "data/ifeval/input_data.jsonl": Expected(541, "67ffeee0fcb87c317c5b08a2de85557b4a7e96ada6178aa645b4954fe4b53d49"),
    "data/ifeval/nltk_data/tokenizers/punkt_tab/english/abbrev_types.txt": Expected(
        None, "92a3e070f43d9b4c5534758ca40ad7343b04e7e29bfe0c2eb658a39445a4f779"
    ),
    "data/ifeval/nltk_data/tokenizers/punkt_tab/english/collocations.tab": Expected(
        None, "8e2da1225e4dd2cc9dba261ee231ccb134859e21b46006e7f472c5ee269af0cf"
    ),
    "data/ifeval/nltk_data/tokenizers/punkt_tab/english/ortho_context.tab": Expected(
        None, "4bbcca25ed3d3f06c02402abf8419b9f033b8adc06e7b482eca4e45f81a5dc4c"
    ),
    "data/ifeval/nltk_data/tokenizers/punkt_tab/english/sent_starters.txt": Expected(
        None, "f3f8535483e1dba487241b764945168123bca3209a9645e59acd1225dc76edac"
    ),
    "data/livecodebench/deepcoder_public_tests_sample20.jsonl": Expected(
        20, "e5ecdac8bb9031a1a94f214215e40c2a07e3cebc7a24f3adbbfb2829192e204f"
    ),
    "papers/paper_tables.json": Expected(None, "029e1376b19e7a87d2f1ea508be43b6275144a599d0e78b9705563acf2b8445d"),
}


class SharedDataNotFound(FileNotFoundError):
    """No copy of the data was found; the message names every place tried and how to provide one."""


def _candidates(env: str, sub: str) -> List[Path]:
    override = os.environ.get(env)
    if override:
        return [Path(override)]
    return [NEIGHBOUR / sub, COMMITTED / sub]


def _first_dir(env: str, sub: str) -> Path:
    tried = _candidates(env, sub)
    for path in tried:
        if path.is_dir():
            return path
    how = f"${env} is set, so only it is used" if os.environ.get(env) else f"set ${env} to a {sub} folder"
    raise SharedDataNotFound(f"no {sub} folder at {', '.join(map(str, tried))} ({how})")


def locate_data_dir() -> Path:
    """The evaluation data folder (one sub-folder per benchmark, e.g. ``aime24/test.jsonl``)."""
    return _first_dir(DATA_ENV, "data")


def locate_paper_tables() -> Path:
    """``paper_tables.json``, the cell-by-cell transcription of the papers' tables."""
    folder = _first_dir(PAPERS_ENV, "papers")
    path = folder / PAPER_TABLES
    if not path.is_file():
        raise SharedDataNotFound(f"{path} does not exist (set ${PAPERS_ENV} to a folder holding {PAPER_TABLES})")
    return path


def count_rows(path: Path) -> int:
    """Non-empty lines of a file (the JSONL row count, as ``grep -c .`` counts it)."""
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_copy(folder: Path, section: str = "data", hashes: bool = True) -> List[str]:
    """Problems of a data (``section="data"``) or papers folder against ``MANIFEST``: a missing file, a wrong
    row count, a wrong sha256 (``hashes=False`` checks presence and rows only). Empty when it matches."""
    problems = []
    prefix = section.rstrip("/") + "/"
    for rel, expected in MANIFEST.items():
        if not rel.startswith(prefix):
            continue
        path = Path(folder) / rel[len(prefix) :]
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        if expected.rows is not None and count_rows(path) != expected.rows:
            problems.append(f"{path}: {count_rows(path)} rows, expected {expected.rows}")
        if hashes and sha256_of(path) != expected.sha256:
            problems.append(f"{path}: sha256 {sha256_of(path)}, expected {expected.sha256}")
    return problems


def expected_rows(benchmark: str) -> Optional[int]:
    """Row count of a benchmark's test file in ``MANIFEST`` (``aime24`` -> 30), or None if not listed."""
    for rel, expected in MANIFEST.items():
        parts = rel.split("/")
        if parts[0] == "data" and parts[1] == benchmark and parts[-1].endswith(".jsonl"):
            return expected.rows
    return None
