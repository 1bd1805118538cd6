"""``sscard hsm serve`` as its own process on loopback, started and waited for until it says
it is listening — for the security-module server tests and ``bench/hsm_throughput.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def serve_hsm(
    keystore: Path,
    port: int,
    audit: Path,
    *,
    workers: int | None = None,
    capture_stderr: bool = True,
) -> subprocess.Popen[str]:
    """The server on ``127.0.0.1:port`` with its audit log at ``audit``; ``workers``:
    ``--workers`` (the command's default when None). ``capture_stderr``: keep its standard
    error to explain a failed start (a long benchmark lets it go to the terminal instead,
    so that a full pipe never blocks the server)."""
    argv = [
        sys.executable,
        "-m",
        "personalize.cli",
        "hsm",
        "serve",
        "--keystore",
        str(keystore),
        "--listen",
        f"127.0.0.1:{port}",
        "--audit-log",
        str(audit),
    ]
    if workers is not None:
        argv += ["--workers", str(workers)]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if capture_stderr else None,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on 127.0.0.1" not in line:
        proc.kill()
        error = proc.stderr.read() if proc.stderr else ""
        raise AssertionError(f"sscard hsm serve did not start: {line}{error}")
    return proc
