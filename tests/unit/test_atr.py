"""ATR parsing and building (ISO/IEC 7816-3 §8.2)."""

from __future__ import annotations

import pytest

from apdu.atr import Atr, MalformedAtr, build_atr

SN = bytes.fromhex("0102030405060708")


def test_t0_atr_like_a_social_security_card() -> None:
    raw = build_atr(0, b"\x80\x53\x53" + SN)
    assert raw.hex().upper() == "3B6B000080535301020304050607 08".replace(" ", "")
    atr = Atr.parse(raw)
    assert atr.protocols == (0,)
    assert atr.historical[-8:] == SN
    assert atr.tck is None


def test_t1_atr_has_a_valid_tck() -> None:
    raw = build_atr(1, SN)
    atr = Atr.parse(raw)
    assert atr.protocols == (1,)
    assert atr.historical == SN
    assert atr.tck == raw[-1]


def test_a_published_atr() -> None:
    # NXP JCOP 2.4.1 ATR as listed in pcsc-tools' smartcard_list.txt: TA1..TD1, TD2 = T=1
    # with TA3/TB3, historical bytes "JCOPv241", TCK B7.
    atr = Atr.parse(bytes.fromhex("3BF81300008131FE454A434F5076323431B7"))
    assert atr.protocols == (1,)
    assert atr.historical == b"JCOPv241"
    assert atr.tck == 0xB7


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("3B", "too short"),
        ("3A6000", "neither 3B"),
        ("3B6B0000805353", "historical"),
        ("3B880100", "historical"),
        ("3B8101010F", "TCK is wrong"),
        ("3B810101", "lacks the TCK"),
        ("3B600000FF", "trailing"),
    ],
)
def test_malformed_atrs(raw: str, reason: str) -> None:
    with pytest.raises(MalformedAtr, match=reason):
        Atr.parse(bytes.fromhex(raw))
