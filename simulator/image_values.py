"""How a card image's record slots turn values into bytes — the card factory's own encoder,
written from the tables of docs/chip-application.md §1 and independent of the host's codecs
(sscard/codecs.py), so that a wrong encoding on either side shows up as a mismatch.

Encodings: ``ascii`` (exactly the slot's length), ``bcd`` (packed decimal digits; a slot may
keep fewer digits than it has room for and fill the rest with its padding byte), ``bcd-date``
(YYYYMMDD, 4 bytes), ``gbk`` (GBK text padded with the slot's padding byte) and ``binary``.
"""

from __future__ import annotations

from datetime import date
from typing import Final

ENCODINGS: Final = ("ascii", "bcd", "bcd-date", "gbk", "binary")


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
    if encoding == "binary":
        if not isinstance(value, bytes) or len(value) != length:
            raise ValueEncodingError(f"二进制值应为 {length} 字节 (binary value of {length} bytes)")
        return value
    raise ValueEncodingError(
        f"未知编码 {encoding!r} (unknown encoding; known: {', '.join(ENCODINGS)})"
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
