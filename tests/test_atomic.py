"""Atomic writes: whole files with ordinary permissions, nothing left behind on failure."""

import os
import stat

import pytest

from kerasnn.atomic import atomic_path, default_mode, write_bytes_atomic, write_text_atomic
from kerasnn.errors import OutputError


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_files_get_the_mode_open_would_give(tmp_path):
    write_text_atomic(tmp_path / "a.txt", "héllo\n")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    with open(tmp_path / "b.txt", "w") as f:
        f.write("x")
    assert mode(tmp_path / "a.txt") == mode(tmp_path / "b.txt") == default_mode()
    assert default_mode() & 0o044, "a umask that hides files from group and others is not this test's case"


def test_replaces_an_existing_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "m.bin"
    target.write_bytes(b"old")
    write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "report.md"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


def test_an_unwritable_place_is_an_output_error_naming_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match=r"file: cannot write x\.txt here"):
        write_text_atomic(blocker / "x.txt", "x")
