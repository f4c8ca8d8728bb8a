"""The shared atomic writer: complete files only, no leftovers, open()-like permissions."""

import os

import pytest

from openrlhf_steer_eval.atomic_io import atomic_path, atomic_write_text


def test_write_creates_parents_and_replaces_content(tmp_path):
    target = tmp_path / "a" / "b" / "out.json"
    atomic_write_text(target, "first\n")
    atomic_write_text(target, "second ✓\n")
    assert target.read_bytes() == "second ✓\n".encode("utf-8")
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]


def test_permissions_follow_umask_not_mkstemp(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    # 0o666 & ~0o027 = 0o640; mkstemp alone would leave 0o600
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o640


def test_failed_writer_leaves_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "plot.png"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="writer failed"):
        with atomic_path(target, suffix=".png") as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".png"
            tmp.write_text("half")
            raise RuntimeError("writer failed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["plot.png"]
