"""kag.files.write_atomically: the one way the package writes a file whole or not at all."""

from __future__ import annotations

import os
import stat

import pytest

from kag.files import write_atomically


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_bytes_or_chunks_in_order_and_leaves_only_the_file(tmp_path):
    write_atomically(tmp_path / "a.bin", b"hello")
    write_atomically(tmp_path / "b.bin", (b"he", b"", bytearray(b"ll"), memoryview(b"o")))
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes() == b"hello"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.bin"]


def test_replaces_an_existing_file_and_sets_the_mode(tmp_path):
    path = tmp_path / "x.json"
    path.write_bytes(b"old")
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new" and _mode(path) == 0o644
    write_atomically(path, b"private", mode=None)  # the temporary's own 0o600
    assert _mode(path) == 0o600


def test_prefix_names_the_temporary(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    write_atomically(tmp_path / "x", b"1", prefix=".tmp-owner@")
    assert seen and seen[0].startswith(".tmp-owner@")


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "report.md"
    path.write_bytes(b"old")

    def chunks():
        yield b"half"
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomically(path, chunks())
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_an_interrupted_rename_leaves_no_temporary(tmp_path, monkeypatch):
    def fail(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(tmp_path / "x", b"data")
    assert list(tmp_path.iterdir()) == []
