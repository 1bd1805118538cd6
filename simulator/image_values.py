"""How a card image's record slots turn values into bytes — the card factory's own encoder,
written from the tables of docs/chip-application.md §1 and independent of the host's codecs
(sscard/codecs.py), so that a wrong encoding on either side shows up as a mismatch.

Encodings: ``ascii`` (exactly the slot's length), ``bcd`` (packed decimal digits; a slot may
keep fewer digits than it has room for and fill the rest with its padding byte), ``bcd-date``
(YYYYMMDD, 4 bytes), ``gbk`` (GBK text padded with the slot's padding byte), ``binary`` and
``id15``: the 社会保障号码 as a first-generation card holds it — the 15-digit form of GB
11643-1989, padded with the slot's padding byte (0x00, as the C readers that stop at the first
NUL expect; docs/chip-application.md §1). An 18-character number is written in that form by
dropping its century digits ``19`` (positions 7-8) and its check character: the way down,
where the host computes the way up (sscard.identifiers.upgrade_ssn).
"""

from __future__ import annotations

from datetime import date
from typing import Final

ENCODINGS: Final = ("ascii", "bcd", "bcd-date", "gbk", "binary", "id15")


class ValueEncodingError(ValueError):
    """A value does not fit its slot."""


def bcd(digits: str) -> bytes:
    """Packed BCD of an even number of decimal digits (``"110105"`` → ``11 01 05``)."""
    if len(digits) % 2 or not digits.isascii() or not digits.isdigit():
        raise ValueEncodingError(
            f"BCD 需要偶数个数字 (BCD needs an even count of digits): {digits!r}"
        )
    return bytes(int(digits[i]) << 4 | int(digits[i + 1]) for i in range(0, len(digits), 2))


def encode_value(
    encoding: str, length: int, value: object, *, pad: int = 0x00, digits: int | None = None
) -> bytes:
    """The ``length`` value bytes of one slot."""
    if encoding == "ascii":
        raw = _text(value).encode("ascii")
        if len(raw) != length:
            raise ValueEncodingError(f"ASCII 值应为 {length} 字节 (ASCII value of {length} bytes)")
        return raw
    if encoding == "bcd":
        text = _text(value)
        kept = text[: digits if digits is not None else 2 * length]
        return _padded(bcd(kept), length, pad)
    if encoding == "bcd-date":
        if not isinstance(value, date):
            raise ValueEncodingError("日期值须为 date (a date is needed)")
        return bcd(f"{value.year:04d}{value.month:02d}{value.day:02d}")
    if encoding == "gbk":
        try:
            raw = _text(value).encode("gbk")
        except UnicodeEncodeError:
            raise ValueEncodingError(
                "GBK 无法编码该文字 (the text has a character GBK cannot encode)"
            ) from None
        return _padded(raw, length, pad)
    if encoding == "id15":
        return _padded(first_generation_id(_text(value)).encode("ascii"), length, pad)
    if encoding == "binary":
        if not isinstance(value, bytes) or len(value) != length:
            raise ValueEncodingError(f"二进制值应为 {length} 字节 (binary value of {length} bytes)")
        return value
    raise ValueEncodingError(
        f"未知编码 {encoding!r} (unknown encoding; known: {', '.join(ENCODINGS)})"
    )


def first_generation_id(number: str) -> str:
    """The 15-digit form of an ID number: a 15-digit number as it is; an 18-character one
    born in the 1900s without positions 7-8 (``19``) and 18 (the check character)."""
    if len(number) == 15 and number.isascii() and number.isdigit():
        return number
    if (
        len(number) == 18
        and number[6:8] == "19"
        and number[:17].isascii()
        and number[:17].isdigit()
    ):
        return number[:6] + number[8:17]
    raise ValueEncodingError(
        "只有 15 位号码或 1900-1999 年出生者的 18 位号码有 15 位形式 "
        "(only a 15-digit number or an 18-character one of the 1900s has a 15-digit form)"
    )


def split_gbk(text: str, head: int) -> tuple[str, str]:
    """``text`` cut into the part that fits ``head`` GBK bytes and the rest, never inside a
    two-byte character (姓名 and its continuation 姓名扩展, docs/chip-application.md §1)."""
    cut = 0
    size = 0
    for i, ch in enumerate(text):
        width = len(ch.encode("gbk", errors="replace"))
        if size + width > head:
            break
        size += width
        cut = i + 1
    return text[:cut], text[cut:]


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueEncodingError(
            f"文本值须为字符串 (a text value is needed), not {type(value).__name__}"
        )
    return value


def _padded(raw: bytes, length: int, pad: int) -> bytes:
    if len(raw) > length:
        raise ValueEncodingError(
            f"值长 {len(raw)} 字节，超过 {length} (value longer than {length} bytes)"
        )
    return raw + bytes((pad,)) * (length - len(raw))
