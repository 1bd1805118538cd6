"""``sscard serve`` as its own process on a free loopback port, with the clock pinned
(faketime) and the tests' audit key — for the API tests (tests/integration/test_api_*.py)
and ``bench/api_load.py``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.audit_key import HSM_ENV
from tests.clock import FAKETIME_ENV

# What each server printed (stdout, then stderr), by base URL, once it has stopped: the
# tests that no token or 查询密码 reaches the server's output read it.
SERVER_OUTPUT: dict[str, str] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve_api(
    db: str | Path,
    *,
    track_key: Path | None = None,
    extra: tuple[str, ...] = (),
    pinned: bool = True,
) -> Iterator[str]:
    """The API on ``db`` until the ``with`` ends; yields its base URL once /v1/health
    answers. ``pinned``: the server's clock starts at the tests' pinned instant."""
    port = free_port()
    argv = [sys.executable, "-m", "personalize.cli", "serve", "--listen", f"127.0.0.1:{port}",
            "--db", str(db), *extra]  # fmt: skip
    if track_key is not None:
        argv += ["--track-key", str(track_key)]
    env = {**os.environ, **HSM_ENV, **(FAKETIME_ENV if pinned else {})}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"sscard serve ended: {proc.stderr.read() if proc.stderr else ''}"
                )
            try:
                if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("sscard serve did not answer /v1/health within 30 s")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        SERVER_OUTPUT[base] = out + err
