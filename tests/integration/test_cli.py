"""The ``sscard`` commands of the foundation, run as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from apdu.pcsc import wait_for_card, wait_for_removal
from simulator.pcscd import Pcscd
from simulator.samples import SAMPLE_AID, sample_card
from tests.integration.conftest import ServeCard

pytestmark = pytest.mark.pcsc

SSCARD = [sys.executable, "-m", "personalize.cli"]
READER = "Virtual PCD 00 01"


def sscard(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SSCARD, *args], capture_output=True, text=True, timeout=60, check=check)


@pytest.fixture
def served_file(pcscd: Pcscd, tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    path = tmp_path / "card.json"
    sscard("sim", "new-card", "--kind", "iso-sample", "--protocol", "T1", "--out", str(path))
    proc = subprocess.Popen(
        [*SSCARD, "sim", "serve", "--slot", "1", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_card(READER)
    yield path, proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    wait_for_removal(READER)


def test_readers_json_shows_the_served_card(serve_card: ServeCard) -> None:
    served = serve_card(sample_card("T0"))
    listing = json.loads(sscard("readers", "--json").stdout)
    entry = next(r for r in listing if r["reader"] == served.reader)
    assert entry["card_present"] is True
    assert entry["atr"] == served.card.atr.hex().upper()
    text = sscard("readers").stdout
    assert f"{served.reader}: 卡片 ATR {served.card.atr.hex().upper()}" in text


def test_serve_apdu_and_persistence_across_restart(
    served_file: tuple[Path, subprocess.Popen[str]],
) -> None:
    path, proc = served_file
    select = "00A404000C" + SAMPLE_AID.hex() + "00"
    out = sscard("apdu", "--reader", READER, "--json", select, "00D6810003C0FFEE", "00B0810003")
    results = json.loads(out.stdout)
    assert [r["sw"] for r in results] == ["9000", "9000", "9000"]
    assert results[2]["data"] == "C0FFEE"
    traced = sscard("apdu", "--reader", READER, "--trace", select, "0020000003123456")
    assert "> 00A404000C" in traced.stderr  # the redacted trace is shown
    assert "0020000003 <3 bytes redacted>" in traced.stderr and "123456" not in traced.stderr
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert "card removed" in proc.stdout.read()  # type: ignore[union-attr]
    wait_for_removal(READER)
    # a new server process on the same file: the write survived
    again = subprocess.Popen(
        [*SSCARD, "sim", "serve", "--slot", "1", str(path)], text=True, stdout=subprocess.DEVNULL
    )
    try:
        wait_for_card(READER)
        out = sscard("apdu", "--reader", READER, "--json", select, "00B0810003")
        assert json.loads(out.stdout)[1]["data"] == "C0FFEE"
    finally:
        again.send_signal(signal.SIGTERM)
        again.wait(timeout=10)


def test_errors_are_one_clear_line(pcscd: Pcscd, tmp_path: Path) -> None:
    wait_for_removal(READER)
    result = sscard("apdu", "--reader", READER, "00A4040000", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("错误 error (NoCard):")
    assert "no smart card inserted" in result.stderr.lower()
    assert "Traceback" not in result.stderr
    result = sscard("apdu", "--reader", READER, "00A404", check=False)
    assert result.returncode == 1 and "shorter than its 4-byte header" in result.stderr
    result = sscard("sim", "serve", "--slot", "1", str(tmp_path / "none.json"), check=False)
    assert result.returncode == 1 and "does not exist" in result.stderr


def test_no_pcscd_is_a_clear_error() -> None:
    env = dict(os.environ, PCSCLITE_CSOCK_NAME="/nonexistent/pcscd.comm")
    result = subprocess.run(
        [*SSCARD, "readers"], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 1
    assert "is pcscd running" in result.stderr


@pytest.mark.parametrize("device", ["encoder", "printer"])
def test_sim_device_commands_print_their_pty_and_stop(
    pcscd: Pcscd, tmp_path: Path, device: str
) -> None:
    args = [*SSCARD, "sim", device]
    if device == "printer":
        args += ["--cards", "1", "--slot", "1", "--out-dir", str(tmp_path)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        path = line.split(" on ")[1].split(":")[0].split()[0]
        assert path.startswith("/dev/pts/"), line
        command = (
            ["mag", "read", "--json"] if device == "encoder" else ["printer", "status", "--json"]
        )
        result = sscard(*command, "--port", path)
        data = json.loads(result.stdout)
        if device == "encoder":
            assert data["track2"]["state"] == "blank"
        else:
            assert data["feeder"] == "ok" and data["card_position"] == "none"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
