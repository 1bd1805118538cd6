"""``sscard`` as its own process, as an operator's shell starts it — the one way the tests run
the command line (tests/integration/test_*_cli.py and the others that go through it)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

# the command an installed ``sscard`` runs (pyproject.toml [project.scripts])
SSCARD = (sys.executable, "-m", "personalize.cli")


def run_sscard(
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: str = "",
    timeout: float = 120,
    cwd: Path | None = None,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``sscard ARGS`` run to its end, its output captured as text. ``env`` is its whole
    environment (None: this process's); a pinned clock is part of it (tests/clock.py
    ``faketime_env``)."""
    return subprocess.run(
        [*SSCARD, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ) if env is None else dict(env),
        cwd=cwd,
        check=check,
    )
