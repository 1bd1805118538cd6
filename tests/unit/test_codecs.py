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
