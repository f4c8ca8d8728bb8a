"""The data resolver (openrlhf_steer.shared_data): lookup order, the committed copy against its manifest, and the
manifest of docker/prepare_context.sh against the same hashes."""

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from openrlhf_steer import shared_data as sd

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def places(tmp_path, monkeypatch):
    """A fake neighbour ../shared and committed copy, each with a data and a papers folder."""
    neighbour, committed = tmp_path / "shared", tmp_path / "committed"
    for root in (neighbour, committed):
        (root / "data").mkdir(parents=True)
        (root / "papers").mkdir()
        (root / "papers" / sd.PAPER_TABLES).write_text("{}")
    monkeypatch.setattr(sd, "NEIGHBOUR", neighbour)
    monkeypatch.setattr(sd, "COMMITTED", committed)
    monkeypatch.delenv(sd.DATA_ENV, raising=False)
    monkeypatch.delenv(sd.PAPERS_ENV, raising=False)
    return neighbour, committed


def test_lookup_order_env_then_neighbour_then_committed(places, tmp_path, monkeypatch):
    neighbour, committed = places
    assert sd.locate_data_dir() == neighbour / "data"
    assert sd.locate_paper_tables() == neighbour / "papers" / sd.PAPER_TABLES
    shutil.rmtree(neighbour)
    assert sd.locate_data_dir() == committed / "data"
    assert sd.locate_paper_tables() == committed / "papers" / sd.PAPER_TABLES
    mine = tmp_path / "mine"
    mine.mkdir()
    monkeypatch.setenv(sd.DATA_ENV, str(mine))
    assert sd.locate_data_dir() == mine


def test_a_set_variable_is_the_only_answer(places, tmp_path, monkeypatch):
    """A mistyped $OPENRLHF_STEER_DATA is an error that names it, not a silent fall-back to another copy."""
    monkeypatch.setenv(sd.DATA_ENV, str(tmp_path / "typo"))
    with pytest.raises(sd.SharedDataNotFound, match=r"typo.*\$OPENRLHF_STEER_DATA is set"):
        sd.locate_data_dir()


def test_nothing_found_names_every_place_tried(places):
    neighbour, committed = places
    shutil.rmtree(neighbour)
    shutil.rmtree(committed)
    with pytest.raises(sd.SharedDataNotFound) as err:
        sd.locate_data_dir()
    assert str(neighbour / "data") in str(err.value) and str(committed / "data") in str(err.value)
    assert "set $OPENRLHF_STEER_DATA" in str(err.value)


def test_committed_copy_matches_its_manifest():
    assert sd.check_copy(REPO / "tests" / "data" / "shared" / "data") == []
    assert sd.check_copy(REPO / "tests" / "data" / "shared" / "papers", section="papers") == []
    # the published sizes of the test sets (Qwen2.5-Math's evaluation data; IF-Eval's 541 prompts)
    assert {b: sd.expected_rows(b) for b in ("aime24", "aime25", "amc23", "math500", "ifeval")} == {
        "aime24": 30,
        "aime25": 30,
        "amc23": 40,
        "math500": 500,
        "ifeval": 541,
    }


def test_check_copy_reports_missing_rows_and_bytes(tmp_path):
    src = REPO / "tests" / "data" / "shared" / "data"
    copy = tmp_path / "data"
    shutil.copytree(src, copy)
    aime = copy / "aime24" / "test.jsonl"
    lines = aime.read_text().splitlines(keepends=True)
    aime.write_text("".join(lines[:-1]))  # one row short
    amc = copy / "amc23" / "test.jsonl"
    amc.write_bytes(amc.read_bytes().replace(b'"answer"', b'"Answer"', 1))  # same rows, other bytes
    (copy / "math500" / "test.jsonl").unlink()
    problems = sd.check_copy(copy)
    assert any(p.endswith("aime24/test.jsonl: 29 rows, expected 30") for p in problems)
    assert any("amc23/test.jsonl: sha256" in p for p in problems) and not any(
        "amc23/test.jsonl: 40" in p for p in problems
    )
    assert any(p.endswith("math500/test.jsonl: missing") for p in problems)
    assert len(problems) == 4  # aime24: rows and sha256; amc23: sha256; math500: missing
    assert len(sd.check_copy(copy, hashes=False)) == 2


def test_count_rows_counts_non_empty_lines(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a": 1}\n\n{"a": 2}\n   \n{"a": 3}')  # 3 rows, a blank and a whitespace line, no final newline
    assert sd.count_rows(path) == 3
    assert sd.sha256_of(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_docker_manifest_and_row_counts_agree_with_the_resolver():
    """docker/prepare_context.sh checks the same bytes and rows as the committed copy."""
    lines = (REPO / "docker" / "eval-data.sha256").read_text().splitlines()
    docker = dict(reversed(line.split("  ", 1)) for line in lines if line and not line.startswith("#"))
    expected = {rel[len("data/") :]: e.sha256 for rel, e in sd.MANIFEST.items() if rel.startswith("data/")}
    expected.pop("livecodebench/deepcoder_public_tests_sample20.jsonl")  # the image fetches LiveCodeBench from the hub
    assert docker == expected
    script = (REPO / "docker" / "prepare_context.sh").read_text()
    rows = dict(re.findall(r"\[(\w+)\]=(\d+)", script.split("declare -A ROWS=", 1)[1].split("\n", 1)[0]))
    assert {name: int(n) for name, n in rows.items()} == {name: sd.expected_rows(name) for name in rows} and set(
        rows
    ) == {"aime24", "aime25", "amc23", "math500", "minerva_math", "olympiadbench", "ifeval"}
