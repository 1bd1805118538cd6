"""The records of EF05 (发卡机构数据) and EF06 (持卡人基本信息): tag, record number, length and
codec of each data element (docs/chip-application.md §1 tables), and the two data classes they fill.

Each record is one simple-TLV object ``tag len value``. Names longer than the 30 bytes of
姓名 continue in 姓名扩展 (tag 4E, 20 bytes) [ours].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from apdu.tlv import encode_simple
from sscard.codecs import Ascii, BcdDate, BcdDigits, Binary, Codec, Gbk, encode_gbk
from sscard.errors import InvalidData
from sscard.identifiers import validate_card_number, validate_ssn
from sscard.profile import SPEC_VERSIONS

NAME_LENGTH = 30
NAME_EXT_LENGTH = 20


@dataclass(frozen=True)
class Element:
    tag: int
    record: int
    name: str
    codec: Codec

    @property
    def length(self) -> int:
        return self.codec.length

    def blank(self) -> bytes:
        """The record as the card factory creates it: the tag, the length, zeros."""
        return encode_simple(self.tag, bytes(self.length))


EF05 = (
    Element(0x01, 1, "card_id", Binary(16)),
    Element(0x02, 2, "card_type", Ascii(1)),
    Element(0x03, 3, "spec_version", Ascii(4)),
    Element(0x04, 4, "issuer_org", Binary(12)),
    Element(0x05, 5, "issue_date", BcdDate()),
    Element(0x06, 6, "expiry_date", BcdDate()),
    Element(0x07, 7, "card_number", Ascii(9)),
)

EF06_TEMPLATE = (
    Element(0x08, 1, "ssn", Ascii(18)),
    Element(0x09, 2, "name", Gbk(NAME_LENGTH)),
    Element(0x4E, 3, "name_ext", Gbk(NAME_EXT_LENGTH)),
    Element(0x0A, 4, "gender", Ascii(1)),
    Element(0x0B, 5, "ethnicity", BcdDigits(1)),
    Element(0x0C, 6, "birthplace", BcdDigits(3)),
    Element(0x0D, 7, "birth_date", BcdDate()),
)


def ef06_elements(name_padding: int) -> tuple[Element, ...]:
    """EF06 with the profile's name padding."""
    return tuple(
        Element(e.tag, e.record, e.name, Gbk(e.length, name_padding))
        if isinstance(e.codec, Gbk)
        else e
        for e in EF06_TEMPLATE
    )


@dataclass(frozen=True)
class IssuerData:
    """EF05, 发卡机构数据."""

    card_id: bytes
    card_type: str
    spec_version: str
    issuer_org: bytes
    issue_date: date
    expiry_date: date
    card_number: str

    def validate(self) -> None:
        validate_card_number(self.card_number)
        if self.spec_version not in SPEC_VERSIONS:
            raise InvalidData(f"规范版本 {self.spec_version!r} 不是 {'/'.join(SPEC_VERSIONS)}")
        if self.expiry_date <= self.issue_date:
            raise InvalidData("卡有效期必须晚于发卡日期 (expiry must follow the issue date)")

    def values(self) -> dict[str, Any]:
        return {e.name: getattr(self, e.name) for e in EF05}


@dataclass(frozen=True)
class HolderData:
    """EF06, 持卡人基本信息. ``gender`` is '1' male / '2' female, ``ethnicity`` the 2-digit
    GB 3304 code, ``birthplace`` a 6-digit region code."""

    ssn: str
    name: str
    gender: str
    ethnicity: str
    birthplace: str
    birth_date: date
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def validate(self) -> None:
        validate_ssn(self.ssn)
        raw = encode_gbk(self.name)
        if len(raw) > NAME_LENGTH + NAME_EXT_LENGTH:
            raise InvalidData(
                f"姓名 GBK 编码 {len(raw)} 字节，超过 {NAME_LENGTH + NAME_EXT_LENGTH} 字节 "
                "(name too long for 姓名 + 姓名扩展)"
            )
        if self.gender not in ("1", "2"):
            raise InvalidData("性别为 '1'(男) 或 '2'(女) (gender is '1' or '2')")
        if self.ssn[6:14] != self.birth_date.strftime("%Y%m%d"):
            raise InvalidData("出生日期与社会保障号码不一致 (birth date differs from the number)")

    def values(self) -> dict[str, Any]:
        raw = encode_gbk(self.name)
        head, tail = raw[:NAME_LENGTH], raw[NAME_LENGTH:]
        if head and len(head) == NAME_LENGTH and _splits_character(raw, NAME_LENGTH):
            head, tail = raw[: NAME_LENGTH - 1], raw[NAME_LENGTH - 1 :]
        return {
            "ssn": self.ssn,
            "name": head.decode("gbk"),
            "name_ext": tail.decode("gbk") if tail else "",
            "gender": self.gender,
            "ethnicity": self.ethnicity,
            "birthplace": self.birthplace,
            "birth_date": self.birth_date,
        }


def _splits_character(raw: bytes, at: int) -> bool:
    """True when cutting GBK bytes at ``at`` would split a two-byte character."""
    try:
        raw[:at].decode("gbk")
    except UnicodeDecodeError:
        return True
    return False


def encode_record(element: Element, value: Any) -> bytes:
    """The TLV record of one element; the empty 姓名扩展 is written as all padding."""
    if element.name == "name_ext" and value == "":
        assert isinstance(element.codec, Gbk)
        return encode_simple(element.tag, bytes((element.codec.pad,)) * element.length)
    return encode_simple(element.tag, element.codec.encode(value))
