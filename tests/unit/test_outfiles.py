"""personalize.outfiles: never overwrite, 0600 files in 0700 directories, clear errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from personalize.outfiles import OutputError, write_new


def test_never_overwrites_and_numbers_the_next_file(tmp_path: Path) -> None:
    first = write_new(tmp_path / "docs" / "验卡单.pdf", b"one")
    second = write_new(tmp_path / "docs" / "验卡单.pdf", b"two")
    third = write_new(tmp_path / "docs" / "验卡单.pdf", b"three")
    assert [p.name for p in (first, second, third)] == [
        "验卡单.pdf",
        "验卡单-2.pdf",
        "验卡单-3.pdf",
    ]
    assert [p.read_bytes() for p in (first, second, third)] == [b"one", b"two", b"three"]
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "docs").stat().st_mode) == 0o700
    assert not [p for p in (tmp_path / "docs").iterdir() if p.name.startswith(".tmp-")]


def test_unwritable_place_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OutputError, match="无法"):
        write_new(tmp_path / "file" / "x.pdf", b"data")
