"""Every data-element codec against the vectors defined beside it (sscard/codecs.py), plus
the refusals."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from sscard.codecs import CODECS, Ascii, BcdDate, BcdDigits, Gbk, encode_gbk
from sscard.errors import InvalidData

ALL_VECTORS = [
    pytest.param(cls, length, value, encoded, id=f"{cls.__name__}-{encoded[:12]}")
    for cls in CODECS
    for length, value, encoded in cls.VECTORS
]


@pytest.mark.parametrize(("cls", "length", "value", "encoded"), ALL_VECTORS)
def test_codec_vectors(cls: Any, length: int, value: Any, encoded: str) -> None:
    codec = cls(length) if cls is not BcdDate else cls()
    raw = bytes.fromhex(encoded)
    assert codec.encode(value) == raw
    assert codec.decode(raw) == value


def test_every_codec_has_vectors() -> None:
    assert all(len(cls.VECTORS) >= 2 for cls in CODECS)


def test_names_trim_both_paddings() -> None:
    assert Gbk(8, 0x20).encode("张三") == bytes.fromhex("D5C5C8FD20202020")
    assert Gbk(8).decode(bytes.fromhex("D5C5C8FD20202020")) == "张三"
    assert Gbk(8).decode(bytes.fromhex("D5C5C8FD00000000")) == "张三"


def test_gbk_refusal_names_the_character() -> None:
    with pytest.raises(InvalidData, match="𪚥") as info:
        encode_gbk("李𪚥")
    assert "U+2A6A5" in str(info.value)
    with pytest.raises(InvalidData, match="GBK"):
        Gbk(4).encode("社会保障卡")  # 10 bytes do not fit 4
    with pytest.raises(InvalidData):
        encode_gbk("")


@pytest.mark.parametrize(
    ("codec", "value"),
    [
        (Ascii(9), "KD557890"),
        (Ascii(1), "男"),
        (BcdDigits(1), "1"),
        (BcdDigits(3), "37170A"),
    ],
)
def test_encode_refuses(codec: Any, value: Any) -> None:
    with pytest.raises(InvalidData):
        codec.encode(value)


@pytest.mark.parametrize("raw", ["2015071A", "20151301", "00000000"])
def test_bcd_date_refuses_non_dates(raw: str) -> None:
    with pytest.raises(InvalidData):
        BcdDate().decode(bytes.fromhex(raw))


def test_bcd_date_round_trip() -> None:
    assert BcdDate().decode(BcdDate().encode(date(2000, 2, 29))) == date(2000, 2, 29)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("D5C5C8FD00000000", "张三"),
        ("D5C5C8FD20202020", "张三"),
        ("D5C5C8FDFFFFFFFF", "张三"),  # one writer pads with 0xFF (docs/chip-application.md §1)
        ("41FF000000000000", "A"),
    ],
)
def test_every_padding_is_trimmed_by_decode_and_read(raw: str, text: str) -> None:
    assert Gbk(8).decode(bytes.fromhex(raw)) == text
    assert Gbk(8).read(bytes.fromhex(raw)) == (text, [])


@pytest.mark.parametrize(
    ("raw", "shown", "flagged"),
    [
        ("D5C580C8FD000000", "张\\x80三", "80"),  # 0x80 is no GBK character
        ("D5C5C8FD81000000", "张三\\x81", "81"),  # a lead byte with no trail byte
        ("D5C501C8FD000000", "张\\x01三", "01"),  # a control character
    ],
)
def test_a_byte_gbk_cannot_decode_is_flagged(raw: str, shown: str, flagged: str) -> None:
    text, warnings = Gbk(8).read(bytes.fromhex(raw))
    assert text == shown and "\ufffd" not in text
    assert len(warnings) == 1 and flagged in warnings[0]
    with pytest.raises(InvalidData, match=flagged):
        Gbk(8).decode(bytes.fromhex(raw))


def test_bcd_ff_padding_is_read_with_a_warning() -> None:
    assert BcdDigits(3).read(bytes.fromhex("330100")) == ("330100", [])
    digits, warnings = BcdDigits(3).read(bytes.fromhex("3301FF"))
    assert digits == "3301" and len(warnings) == 1 and "4" in warnings[0]
    with pytest.raises(InvalidData):
        BcdDigits(3).decode(bytes.fromhex("3301FF"))  # strict: not 6 digits
    with pytest.raises(InvalidData):
        BcdDigits(3).read(bytes.fromhex("33A1FF"))  # a non-digit before the padding


def test_ff_padding_can_be_written() -> None:
    assert Gbk(8, 0xFF).encode("张三") == bytes.fromhex("D5C5C8FDFFFFFFFF")
