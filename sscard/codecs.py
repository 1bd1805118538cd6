"""Codecs of the 社保卡 data elements (docs/chip-application.md §1), each with its own test vectors
beside its definition — ``tests/unit/test_codecs.py`` collects every ``VECTORS`` list (the
pySim habit). A vector is ``(value, encoded hex)`` for a codec of the given length.

``decode`` is strict: what it returns is exactly what a writer meant, or InvalidData. ``read``
is what a reader of real cards uses (docs/chip-application.md "Reading real cards"): it
tolerates the paddings real cards carry and returns, beside the value, warnings saying what
it found instead of hiding it — never a silently replaced character.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

from sscard.errors import InvalidData

# Bytes writers pad text with: 0x00, 0x20 (a real card), 0xFF (one writer); never a GBK
# trail byte (0x40-0xFE without 0x7F), so trimming them cannot cut a character in two.
TEXT_PADDING = b"\x00 \xff"


class _Strict:
    """``read`` for codecs that tolerate nothing beyond their strict ``decode``."""

    def decode(self, raw: bytes) -> Any:
        raise NotImplementedError

    def read(self, raw: bytes) -> tuple[Any, list[str]]:
        return self.decode(raw), []


@dataclass(frozen=True)
class Ascii(_Strict):
    """Fixed-length ASCII, exact length (卡号, 规范版本, 社会保障号码, 性别, 卡类别)."""

    length: int
    VECTORS: ClassVar[list[tuple[int, str, str]]] = [
        (9, "KD5578904", "4B4435353738393034"),  # docs/chip-application.md §1 sample 卡号
        (4, "2.00", "322E3030"),
        (1, "3", "33"),
    ]

    def encode(self, value: str) -> bytes:
        if len(value) != self.length or not value.isascii() or not value.isprintable():
            raise InvalidData(f"expected {self.length} printable ASCII characters")
        return value.encode("ascii")

    def decode(self, raw: bytes) -> str:
        """The field without its padding; bytes outside printable ASCII are refused (a
        damaged or foreign card), never replaced: what comes out is comparable ASCII."""
        value = raw.rstrip(b"\x00 ")
        if not value.isascii() or not value.decode("ascii").isprintable():
            raise InvalidData(
                "卡内数据含非可打印 ASCII 字节，卡片数据损坏或非本规范 "
                "(the field holds bytes outside printable ASCII)"
            )
        return value.decode("ascii")


@dataclass(frozen=True)
class Gbk:
    """GBK text padded to a fixed length with 0x00, 0x20 or 0xFF; the decoders trim all three
    (docs/chip-application.md §1: writers pad with 0x00 or 0xFF, a real card was seen padded
    with 0x20)."""

    length: int
    pad: int = 0x00
    VECTORS: ClassVar[list[tuple[int, str, str]]] = [
        (6, "张三", "D5C5C8FD0000"),
        (8, "社会保障", "C9E7BBE1B1A3D5CF"),
        (5, "A", "4100000000"),
    ]

    def encode(self, value: str) -> bytes:
        raw = encode_gbk(value)
        if len(raw) > self.length:
            raise InvalidData(
                f"{value!r} is {len(raw)} bytes in GBK, the field holds {self.length}"
            )
        return raw + bytes((self.pad,)) * (self.length - len(raw))

    def decode(self, raw: bytes) -> str:
        text, bad = _gbk_flagged(raw.rstrip(TEXT_PADDING))
        if bad:
            listed = " ".join(bad)
            raise InvalidData(
                f"字段含 GBK 无法解码的字节 {listed} (bytes GBK cannot decode: {listed})"
            )
        return text

    def read(self, raw: bytes) -> tuple[str, list[str]]:
        """The text without its padding; each byte GBK cannot decode (or that decodes to a
        control character) shown as ``\\xNN`` and named in a warning."""
        text, bad = _gbk_flagged(raw.rstrip(TEXT_PADDING))
        if not bad:
            return text, []
        return text, [
            f"含 GBK 无法解码的字节 {' '.join(bad)}，以 \\xNN 标出 "
            f"(bytes GBK cannot decode, shown as \\xNN: {' '.join(bad)})"
        ]


def _gbk_flagged(raw: bytes) -> tuple[str, list[str]]:
    """GBK text with every byte that does not decode to a printable character written as
    ``\\xNN``, and the list of those bytes (hex)."""
    out: list[str] = []
    bad: list[str] = []
    i = 0
    while i < len(raw):
        try:
            chunk = raw[i:].decode("gbk")
            end = len(raw)
        except UnicodeDecodeError as exc:
            chunk = raw[i : i + exc.start].decode("gbk")
            end = i + exc.start
        for ch in chunk:
            if ch.isprintable():
                out.append(ch)
            else:
                out.append(f"\\x{ord(ch):02X}")
                bad.append(f"{ord(ch):02X}")
        if end < len(raw):
            out.append(f"\\x{raw[end]:02X}")
            bad.append(f"{raw[end]:02X}")
            end += 1
        i = end
    return "".join(out), bad


def encode_gbk(value: str) -> bytes:
    """GBK bytes of a name, or InvalidData naming the first character GBK cannot encode."""
    for ch in value:
        try:
            ch.encode("gbk")
        except UnicodeEncodeError:
            raise InvalidData(
                f"姓名中的字符 “{ch}” (U+{ord(ch):04X}) 无法用 GBK 编码，不能写入卡片 "
                f"(the character {ch!r} cannot be encoded in GBK)"
            ) from None
    if not value or not value.isprintable():
        raise InvalidData("a name is non-empty printable text")
    return value.encode("gbk")


@dataclass(frozen=True)
class BcdDate(_Strict):
    """A date as 4 BCD bytes YYYYMMDD."""

    length: int = 4
    VECTORS: ClassVar[list[tuple[int, date, str]]] = [
        (4, date(2015, 7, 11), "20150711"),  # docs/chip-application.md §1 sample 发卡日期
        (4, date(2025, 7, 11), "20250711"),
        (4, date(1949, 12, 31), "19491231"),
    ]

    def encode(self, value: date) -> bytes:
        return bytes.fromhex(value.strftime("%Y%m%d"))

    def decode(self, raw: bytes) -> date:
        text = raw.hex()
        if not re.fullmatch(r"\d{8}", text):
            raise InvalidData(f"BCD date {raw.hex().upper()} is not YYYYMMDD")
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            raise InvalidData(f"BCD date {raw.hex().upper()} is not a calendar date") from None


@dataclass(frozen=True)
class BcdDigits:
    """A string of 2 × length decimal digits as BCD (民族 code, 出生地 region code)."""

    length: int
    VECTORS: ClassVar[list[tuple[int, str, str]]] = [
        (1, "01", "01"),  # 汉族, GB 3304
        (3, "371700", "371700"),
    ]

    def encode(self, value: str) -> bytes:
        if not re.fullmatch(rf"[0-9]{{{2 * self.length}}}", value):
            raise InvalidData(f"expected {2 * self.length} decimal digits")
        return bytes.fromhex(value)

    def decode(self, raw: bytes) -> str:
        text = raw.hex()
        if not text.isdigit():
            raise InvalidData(f"BCD {raw.hex().upper()} holds non-decimal digits")
        return text

    def read(self, raw: bytes) -> tuple[str, list[str]]:
        """The digits, trailing ``F`` nibbles (FF padding, one writer's habit) dropped with a
        warning that says how many digits remain; other non-digits are refused."""
        text = raw.hex().upper()
        digits = text.rstrip("F")
        if not digits.isdigit():
            raise InvalidData(f"BCD {text} holds non-decimal digits")
        if len(digits) == len(text):
            return digits, []
        return digits, [
            f"只有 {len(digits)} 位代码，其后以 F 填充 ({text}: a {len(digits)}-digit code "
            "padded with F)"
        ]


@dataclass(frozen=True)
class Binary(_Strict):
    """Raw bytes of a fixed length (卡识别码, 初始化机构编号)."""

    length: int
    VECTORS: ClassVar[list[tuple[int, bytes, str]]] = [
        (
            16,
            bytes.fromhex("341200D156000005024575A7AEB8AF87"),
            "341200D156000005024575A7AEB8AF87",
        ),  # docs/chip-application.md §1 sample 卡识别码
        (12, bytes.fromhex("915600000234120034010A0C"), "915600000234120034010A0C"),
    ]

    def encode(self, value: bytes) -> bytes:
        if len(value) != self.length:
            raise InvalidData(f"expected {self.length} bytes, got {len(value)}")
        return value

    def decode(self, raw: bytes) -> bytes:
        return raw


Codec = Ascii | Gbk | BcdDate | BcdDigits | Binary
CODECS: tuple[type[Ascii] | type[Gbk] | type[BcdDate] | type[BcdDigits] | type[Binary], ...] = (
    Ascii,
    Gbk,
    BcdDate,
    BcdDigits,
    Binary,
)
