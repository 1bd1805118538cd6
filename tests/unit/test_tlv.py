"""Simple TLV (社保卡 records) and BER-TLV (FCI) codecs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.errors import TlvError
from apdu.tlv import (
    BerTlv,
    encode_ber,
    encode_ber_constructed,
    encode_simple,
    parse_ber,
    parse_simple,
)

SSSE_AID = bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")
# The FCI a T=0 社保卡 returns for SELECT SSSE (docs/chip-application.md §1, Z390Kylin APDU log).
SSSE_FCI = bytes.fromhex("6F16840F7378312E73682EC9E7BBE1B1A3D5CFA503880108".replace("0108", "010B"))


def test_simple_tlv_record_of_ef05() -> None:
    # docs/chip-application.md §1: EF05 tag 03 spec version "2.00", tag 07 card number "KD5578904".
    raw = encode_simple(0x03, b"2.00") + encode_simple(0x07, b"KD5578904")
    assert raw.hex().upper() == "0304322E3030" + "07094B4435353738393034"
    assert parse_simple(raw) == [(0x03, b"2.00"), (0x07, b"KD5578904")]


@given(st.lists(st.tuples(st.integers(1, 0xFE), st.binary(max_size=254)), max_size=8))
def test_simple_tlv_round_trip(items: list[tuple[int, bytes]]) -> None:
    raw = b"".join(encode_simple(t, v) for t, v in items)
    assert parse_simple(raw) == items


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("03", "no length"),
        ("0304322E30", "declares 4 bytes, 3 present"),
        ("000100", "invalid simple-TLV tag 00"),
        ("03FF000000", "three-byte"),
    ],
)
def test_simple_tlv_truncation_is_an_error(raw: str, reason: str) -> None:
    with pytest.raises(TlvError, match=reason):
        parse_simple(bytes.fromhex(raw))


def test_simple_tlv_refuses_unencodable() -> None:
    with pytest.raises(TlvError):
        encode_simple(0x00, b"x")
    with pytest.raises(TlvError):
        encode_simple(0x01, bytes(255))


def test_ber_fci_of_ssse() -> None:
    (fci,) = parse_ber(SSSE_FCI)
    assert fci.tag == 0x6F and fci.constructed
    name = fci.find(0x84)
    assert name is not None and name.value == SSSE_AID
    prop = fci.find(0xA5)
    assert prop is not None and prop.children == [BerTlv(0x88, b"\x0b")]
    rebuilt = encode_ber_constructed(0x6F, fci.children)
    assert rebuilt == SSSE_FCI


@pytest.mark.parametrize(
    ("tag", "value", "encoded"),
    [
        (0x84, b"\x01", "840101"),
        (0x9F38, b"\x01\x02", "9F38020102"),
        (0x5F2D, b"zh", "5F2D027A68"),
        (0xDF8101, b"", "DF810100"),
        (0x53, bytes(0x80), "538180" + "00" * 0x80),
        (0x53, bytes(0x100), "53820100" + "00" * 0x100),
    ],
)
def test_ber_tags_and_lengths(tag: int, value: bytes, encoded: str) -> None:
    assert encode_ber(tag, value).hex().upper() == encoded.upper()
    assert parse_ber(bytes.fromhex(encoded)) == [BerTlv(tag, value)]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("9F", "truncated in the tag"),
        ("84", "has no length"),
        ("840301", "declares 3 bytes"),
        ("5382", "truncated in the length"),
        ("5384000000010", "not supported"),
    ],
)
def test_ber_truncation_is_an_error(raw: str, reason: str) -> None:
    with pytest.raises(TlvError, match=reason):
        parse_ber(bytes.fromhex(raw.ljust(len(raw) + len(raw) % 2, "0")))


def test_ber_skips_padding_and_primitive_has_no_children() -> None:
    assert parse_ber(bytes.fromhex("00FF8401AA00")) == [BerTlv(0x84, b"\xaa")]
    with pytest.raises(TlvError, match="primitive"):
        _ = BerTlv(0x84, b"\xaa").children


@given(
    st.lists(
        st.tuples(st.sampled_from([0x84, 0x9F38, 0x5F2D, 0xC1, 0x88]), st.binary(max_size=300)),
        max_size=5,
    )
)
def test_ber_round_trip(items: list[tuple[int, bytes]]) -> None:
    raw = b"".join(encode_ber(t, v) for t, v in items)
    assert [(o.tag, o.value) for o in parse_ber(raw)] == items
