"""Files holding personal data are private: after ``sscard demo`` (registry, 领卡证明, card
face PDF and PNG, printed PNGs, the photo, card files, job directories) and after a
registry command, every file is 0600 and every directory 0700 — even when the operator's
shell umask is the usual 022 (personalize/outfiles.py ``PRIVATE_UMASK``)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clock import FAKETIME

pytestmark = pytest.mark.pcsc


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FAKETIME, sys.executable, "-m", "personalize.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        preexec_fn=lambda: os.umask(0o022),  # the shell's usual umask
    )


def loose(root: Path) -> list[str]:
    """Every path under ``root`` readable or writable by group or others."""
    found = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if not path.is_symlink() and mode & 0o077:
            found.append(f"{path.relative_to(root)} {mode:o}")
    return found


def test_demo_outputs_are_private(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run("demo", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    names = {p.name for p in out.rglob("*")}
    for expected in ("registry.db", "printed-card.png", "卡面校样.pdf", "photo.jpg"):
        assert expected in names, names
    prints = names - {"printed-card.png"}
    assert any(n.startswith("printed-") and n.endswith(".png") for n in prints)
    assert loose(out) == []


def test_registry_command_creates_a_private_database(tmp_path: Path) -> None:
    done = run("registry", "init", "--db", "r.db", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    databases = sorted(tmp_path.glob("r.db*"))
    assert tmp_path / "r.db" in databases
    for path in databases:  # r.db and, while open, its -wal and -shm
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
