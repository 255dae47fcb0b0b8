"""atomic_output: a file appears complete at its path, or not at all."""

import os

import pytest

from arraybragg.atomic import atomic_output


def test_writes_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_output(target) as handle:
        handle.write(b"abc")
    assert target.read_bytes() == b"abc"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_replaces_existing_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_output(target, "w") as handle:
        handle.write("new\n")
    assert target.read_text() == "new\n"


def test_no_file_when_body_raises(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_output(target) as handle:
            handle.write(b"partial")
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == []


def test_existing_file_untouched_when_body_raises(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"complete")
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(target) as handle:
            handle.write(b"partial")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"complete"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_permissions_follow_umask(tmp_path):
    target = tmp_path / "out.bin"
    old = os.umask(0o027)
    try:
        with atomic_output(target) as handle:
            handle.write(b"x")
    finally:
        os.umask(old)
    assert (target.stat().st_mode & 0o777) == 0o640


def test_bad_mode_and_missing_directory(tmp_path):
    with pytest.raises(ValueError, match="mode='a'"):
        with atomic_output(tmp_path / "x", "a"):
            pass
    with pytest.raises(FileNotFoundError):
        with atomic_output(tmp_path / "missing" / "x"):
            pass
