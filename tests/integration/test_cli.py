"""The ``sscard`` commands of the foundation, run as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from apdu.inprocess import InProcessTransport
from apdu.pcsc import wait_for_card, wait_for_removal
from personalize.trackvault import TrackVault
from simulator.cardfile import load_card
from simulator.pcscd import Pcscd
from simulator.samples import SAMPLE_AID, sample_card
from sscard.card import SocialSecurityCard
from sscard.identifiers import card_number_valid
from sscard.profile import load_profile
from tests.cli import SSCARD, run_sscard
from tests.integration.conftest import ServeCard

pytestmark = pytest.mark.pcsc

READER = "Virtual PCD 00 01"


def sscard(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_sscard(*args, timeout=60, check=check)


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
    assert result.stderr.startswith("错误：")
    assert "NoCard" in result.stderr and "no smart card inserted" in result.stderr.lower()
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
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


def _issued(path: Path) -> tuple[bytes, str]:
    """The SN and the 卡号 of a personalized card file, read through its own commands."""
    card = load_card(path, persist=False)
    transport = InProcessTransport(card)
    transport.connect()
    chip = SocialSecurityCard(transport, load_profile("default"), region_code="371700")
    chip.identify()
    return chip.sn, chip.read_issuer().card_number


def test_new_card_is_fresh_each_time_unless_told(tmp_path: Path) -> None:
    made = []
    for name in ("a", "b"):
        result = sscard(
            "sim", "new-card", "--personalized", "--out", str(tmp_path / f"{name}.json")
        )
        made.append(_issued(tmp_path / f"{name}.json"))
        assert made[-1][1] in result.stdout
    (sn_a, number_a), (sn_b, number_b) = made
    assert sn_a != sn_b and number_a != number_b
    for number in (number_a, number_b):
        assert card_number_valid(number)
    pinned = ["--serial", "0102030405060708", "--card-number", "H00000012"]
    for name in ("c", "d"):
        sscard(
            "sim", "new-card", "--personalized", *pinned, "--out", str(tmp_path / f"{name}.json")
        )
    pinned_card = (bytes.fromhex("0102030405060708"), "H00000012")
    assert _issued(tmp_path / "c.json") == _issued(tmp_path / "d.json") == pinned_card
    for name in ("e", "f"):
        sscard("sim", "new-card", "--personalized", "--serial", "0102030405060708", "--out",
               str(tmp_path / f"{name}.json"))  # fmt: skip
    assert _issued(tmp_path / "e.json") == _issued(tmp_path / "f.json")  # the SN decides


def test_sim_output_files_are_not_overwritten_without_force(tmp_path: Path) -> None:
    out = tmp_path / "a.json"
    sscard("sim", "new-card", "--personalized", "--out", str(out))
    before = out.read_bytes()
    again = sscard("sim", "new-card", "--personalized", "--out", str(out), check=False)
    assert again.returncode == 1 and "--force" in again.stderr and "Traceback" not in again.stderr
    assert out.read_bytes() == before
    forced = sscard("sim", "new-card", "--personalized", "--out", str(out), "--force")
    assert "a.json" in forced.stdout and out.read_bytes() != before
    keystore = tmp_path / "ks.json"
    subprocess.run([*SSCARD, "hsm", "init", "--test-keys", "--keystore", str(keystore)],
                   capture_output=True, check=True)  # fmt: skip
    sscard("sim", "new-psam", "--keystore", str(keystore), "--out", str(tmp_path / "psam.json"))
    psam = (tmp_path / "psam.json").read_bytes()
    refused = sscard(
        "sim", "new-psam", "--keystore", str(keystore), "--out", str(tmp_path / "psam.json"),
        check=False,
    )  # fmt: skip
    assert refused.returncode == 1 and (tmp_path / "psam.json").read_bytes() == psam
    printed = tmp_path / "printed"
    printed.mkdir()
    (printed / "printed-001.png").write_bytes(b"an earlier print")
    busy = sscard("sim", "printer", "--cards", "1", "--out-dir", str(printed), check=False)
    assert busy.returncode == 1 and "--force" in busy.stderr and len(busy.stderr.splitlines()) == 1
    assert (printed / "printed-001.png").read_bytes() == b"an earlier print"


def test_sim_encoder_takes_its_own_help_example(tmp_path: Path) -> None:
    example = '{"2": "123=4567"}'
    assert example in " ".join(sscard("sim", "encoder", "--help").stdout.split())
    proc = subprocess.Popen(
        [*SSCARD, "sim", "encoder", "--tracks", example],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert " on /dev/pts/" in line, proc.stderr.read() if proc.stderr else line
        path = line.split(" on ")[1].split()[0]
        data = json.loads(sscard("mag", "read", "--json", "--port", path).stdout)
        assert data["track2"] == {"state": "ok", "data": "123=4567"}
        assert data["track1"]["state"] == "blank"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0


def test_new_track_key_writes_a_private_key_once_and_shows_only_its_check_value(
    tmp_path: Path,
) -> None:
    out = tmp_path / "tracks.key"
    made = sscard("hsm", "new-track-key", "--out", str(out))
    key = bytes.fromhex(out.read_text(encoding="ascii"))
    assert len(key) == 32 and out.stat().st_mode & 0o777 == 0o600
    kcv = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(bytes(16))[:3].hex().upper()
    assert str(out) in made.stdout and kcv in made.stdout
    assert key.hex() not in (made.stdout + made.stderr).lower()
    assert TrackVault.from_file(out).kcv == kcv
    again = sscard("hsm", "new-track-key", "--out", str(out), "--json", check=False)
    assert again.returncode == 1 and json.loads(again.stdout)["error"]["type"] == "VaultError"
    assert bytes.fromhex(out.read_text(encoding="ascii")) == key
    shown = json.loads(
        sscard("hsm", "new-track-key", "--out", str(tmp_path / "b.key"), "--json").stdout
    )
    assert shown == {
        "track_key": str(tmp_path / "b.key"),
        "kcv": TrackVault.from_file(tmp_path / "b.key").kcv,
    }
