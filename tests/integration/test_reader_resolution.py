"""One reader rule for every command, through pcscd with its two virtual readers
(``Virtual PCD 00 00`` and ``… 00 01``): ``0`` is index 0 — not a pattern that matches both
names — an exact name is that reader, a pattern must match exactly one, anything else is a
one-line error before a card is touched."""

from __future__ import annotations

import subprocess

import pytest

from apdu.errors import ReaderUnavailable
from apdu.pcsc import PcscTransport, list_readers, wait_for_card
from simulator.samples import SAMPLE_AID, sample_card
from tests.cli import run_sscard
from tests.integration.conftest import ServeCard

pytestmark = pytest.mark.pcsc
SELECT = "00A4040C" + f"{len(SAMPLE_AID):02X}" + SAMPLE_AID.hex().upper()


def sscard(*args: str) -> subprocess.CompletedProcess[str]:
    return run_sscard(*args, timeout=60)


def test_a_decimal_string_is_an_index_everywhere(serve_card: ServeCard) -> None:
    served = serve_card(sample_card("T1"), slot=0)
    assert list_readers()[0] == served.reader
    assert wait_for_card("0", timeout=5) == served.card.atr
    with PcscTransport("0") as transport:
        assert transport.reader == served.reader
    result = sscard("apdu", "--reader", "0", "--json", SELECT)
    assert result.returncode == 0, result.stderr
    assert '"sw": "9000"' in result.stdout


@pytest.mark.parametrize(
    ("reader", "message"),
    [
        ("Virtual PCD", "2 readers match"),
        ("No Such Reader", "no reader matches"),
        ("5", "no reader at index 5"),
        ("", "empty"),
    ],
)
def test_anything_else_stops_the_command(serve_card: ServeCard, reader: str, message: str) -> None:
    served = serve_card(sample_card("T0"), slot=0)
    with pytest.raises(ReaderUnavailable, match=message):
        PcscTransport(reader).connect()
    for command in (["apdu", "--reader", reader, SELECT], ["card", "read", "--reader", reader]):
        result = sscard(*command)
        assert result.returncode == 1, result.stdout
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and "读卡器" in lines[0]
    assert served.bridge.apdu_count == 0  # nothing reached the card
