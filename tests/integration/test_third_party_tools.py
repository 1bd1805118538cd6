"""Third-party PC/SC tools against a served virtual 社保卡, as a tester drives it
(docs/testing-with-virtual-cards.md): ``sscard sim new-card`` issues the card, ``sscard sim
serve`` inserts it in ``Virtual PCD 00 00``, then OpenSC's ``opensc-tool`` and pcsc-tools'
``pcsc_scan`` and ``scriptor`` (Debian packages opensc, pcsc-tools) talk to it through pcscd.
Stopping the server pulls the card. Expected answers are the sample holder's literals and the
real card's answers of the Z390Kylin log (docs/chip-application.md §1)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from apdu.pcsc import wait_for_card, wait_for_removal
from simulator.pcscd import Pcscd

pytestmark = pytest.mark.pcsc

READER = "Virtual PCD 00 00"
SERIAL = "0102030405060708"
SSSE = "00A404000F7378312E73682EC9E7BBE1B1A3D5CF"
FCI = "6F16840F7378312E73682EC9E7BBE1B1A3D5CFA50388010B"  # the real card's, Z390Kylin log


def run(*cmd: str, stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def served(pcscd: Pcscd, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A personalized default-profile card served by ``sscard sim serve`` on slot 0."""
    card = tmp_path / "card.json"
    issued = run(
        sys.executable,
        "-m",
        "personalize.cli",
        "sim",
        "new-card",
        "--personalized",
        "--serial",
        SERIAL,
        "--region",
        "330100",
        "--out",
        str(card),
    )
    assert issued.returncode == 0, issued.stderr
    server = subprocess.Popen(
        [sys.executable, "-m", "personalize.cli", "sim", "serve", str(card)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_card(READER, timeout=15)
    yield server
    if server.poll() is None:
        pull(server)


def pull(server: subprocess.Popen[str]) -> None:
    """Stop the server: the card leaves the reader as if pulled out
    (docs/testing-with-virtual-cards.md)."""
    server.send_signal(signal.SIGINT)
    server.communicate(timeout=15)
    wait_for_removal(READER, timeout=15)


def opensc_line_hex(line: str) -> str:
    """The hex of one data line of ``opensc-tool -s``: k bytes as ``XX `` then their k ASCII
    characters, the hex column padded to 48 characters when the answer spans lines."""
    for k in range(16, 0, -1):
        if not re.fullmatch(f"(?:[0-9A-F]{{2}} ){{{k}}}", line[: 3 * k]):
            continue
        rest = line[3 * k :]
        if len(rest) == k or (len(line) == 48 + k and not rest[: 48 - 3 * k].strip()):
            return line[: 3 * k].replace(" ", "")
    raise AssertionError(f"not an opensc-tool data line: {line!r}")


def opensc_answers(output: str) -> list[tuple[str, str]]:
    """(SW, data hex) per ``Received`` block of ``opensc-tool -s``."""
    answers: list[tuple[str, list[str]]] = []
    for line in output.splitlines():
        if line.startswith("Received (SW1=0x"):
            sw = line[len("Received (SW1=0x") :][:2] + line.split("SW2=0x")[1][:2]
            answers.append((sw.upper(), []))
        elif answers and line and not line.startswith("Sending:"):
            answers[-1][1].append(opensc_line_hex(line))
    return [(sw, "".join(parts)) for sw, parts in answers]


def test_opensc_tool_reads_the_atr_and_the_holder(served: subprocess.Popen[str]) -> None:
    atr = run("opensc-tool", "-r", READER, "-a")
    assert atr.returncode == 0, atr.stderr
    assert atr.stdout.strip().startswith("3b:")  # direct convention (ISO/IEC 7816-3)
    assert atr.stdout.strip().endswith(":01:02:03:04:05:06:07:08")  # SN = last 8 ATR bytes

    # SELECT SSSE with Le (case 4, so that opensc-tool shows the FCI it fetched with
    # GET RESPONSE), the DIR file the FCI names (SFI 0B, record 1), and EF06's records by SFI.
    sent = run(
        "opensc-tool",
        "-r",
        READER,
        "-c",
        "default",
        "-s",
        SSSE + "00",
        "-s",
        "00B2015C00",
        "-s",
        "00A4000002EF05",
        "-s",
        "00B207280E",
        "-s",
        "00B2083014",
        "-s",
        "00B2093020",
        "-s",
        "00B20A3003",
    )
    assert sent.returncode == 0, sent.stderr
    (fci, dir_record, select_ef05, card_number, ssn, name, sex) = opensc_answers(sent.stdout)
    assert fci[0] == "9000" and fci[1].startswith(FCI[:4]) and "88010B" in fci[1]
    assert dir_record[0] == "9000" and dir_record[1], "the DIR file at SFI 0B answers a record"
    assert select_ef05 == ("9000", "")  # a bare 9000, as the real card of the log
    assert card_number[0] == "9000" and card_number[1].startswith("0709")
    assert ssn == ("9000", "0812" + b"11010519491231002X".hex().upper())
    assert name[0] == "9000" and name[1].startswith("091E" + "张三".encode("gbk").hex().upper())
    assert sex == ("9000", "0A01" + b"2".hex().upper())


def scriptor_answers(output: str) -> list[str]:
    """The hex of each answer ``scriptor`` prints: from ``< `` up to the `` : `` meaning."""
    answers: list[str] = []
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith("< "):
            current = []
            line = line[2:]
        if current is None:
            continue
        current.append(line.split(" : ")[0])
        if " : " in line:
            answers.append("".join(current).replace(" ", "").upper())
            current = None
    return answers


def test_scriptor_shows_the_raw_t0_answers(served: subprocess.Popen[str]) -> None:
    """scriptor sends each line as it is: the T=0 card's own 61 18 and the FCI behind it."""
    out = run("scriptor", "-r", READER, stdin=f"{SSSE}\n00C0000018\n00A4000002EF06\n", timeout=30)
    assert out.returncode == 0, out.stderr
    assert scriptor_answers(out.stdout) == ["6118", FCI + "9000", "9000"]


def test_pcsc_scan_sees_the_card_come_and_go(served: subprocess.Popen[str]) -> None:
    scan = run("pcsc_scan", "-n", "-t", "2", timeout=30)
    assert scan.returncode == 0, scan.stderr
    assert f"Reader 0: {READER}" in scan.stdout
    assert "Card state: Card inserted" in scan.stdout
    assert "ATR: 3B " in scan.stdout and "01 02 03 04 05 06 07 08" in scan.stdout

    pull(served)
    scan = run("pcsc_scan", "-n", "-t", "2", timeout=30)
    reader0 = scan.stdout.split(f"Reader 0: {READER}")[1].split("Reader 1:")[0]
    assert "Card state: Card removed" in reader0
    gone = run("opensc-tool", "-r", READER, "-a")
    assert gone.returncode != 0 and "Card not present" in gone.stdout + gone.stderr
