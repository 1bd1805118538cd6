"""The records of EF05 (发卡机构数据), EF06 (持卡人基本信息) and the regional files EF0D and
EF19: tag, length and codec of each data element (docs/chip-application.md §1 tables) — the one
place that says them — and the two data classes EF05 and EF06 fill.

Each record is one simple-TLV object ``tag len value``. Names longer than the 30 bytes of
姓名 continue in 姓名扩展 (tag 4E, 20 bytes) [ours]. EF05's record numbers are the same on
every card; EF06's differ by region, so the card profile gives them
(:func:`ef06_elements`, docs/chip-application.md "Profiles").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from apdu.tlv import encode_simple
from sscard.codecs import Ascii, BcdDate, BcdDigits, Binary, Codec, Gbk, encode_gbk
from sscard.errors import InvalidData
from sscard.identifiers import ssn_birth_date, ssn_gender, validate_card_number, validate_ssn
from sscard.regions import region_name

SPEC_VERSIONS = ("1.00", "2.00", "3.00")

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

# EF06 in the Zhejiang/Shandong layout (Z390Kylin); a profile may number the records
# otherwise and leave 4E out (``ef06_records``).
EF06_TEMPLATE = (
    Element(0x08, 1, "ssn", Ascii(18)),
    Element(0x09, 2, "name", Gbk(NAME_LENGTH)),
    Element(0x4E, 3, "name_ext", Gbk(NAME_EXT_LENGTH)),
    Element(0x0A, 4, "gender", Ascii(1)),
    Element(0x0B, 5, "ethnicity", BcdDigits(1)),
    Element(0x0C, 6, "birthplace", BcdDigits(3)),
    Element(0x0D, 7, "birth_date", BcdDate()),
)
DEFAULT_EF06_RECORDS: tuple[int, ...] = tuple(e.tag for e in EF06_TEMPLATE)
OPTIONAL_EF06_TAGS = frozenset({0x4E})  # 姓名扩展: second-generation cards may lack it

# EF0D under SSSE (JSCardKiosks ``CardWriteRead.cs``: read as records 1 and 2 of EF0D).
EF0D = (
    Element(0xEA, 1, "person_id", Gbk(12)),  # 人员识别号
    Element(0xEB, 2, "first_region", BcdDigits(3)),  # 初次申请地代码
)
# EF19 under DF03, read after VERIFY by tag 79 (HDOS_VC6 ``ICCInter.cpp``: ``00B2790029``);
# the 参保地 region code is bytes 7-9 of the value, the rest is not public [ours: opaque].
EF19_RECORD = Element(0x79, 1, "ef19", Binary(39))
EF19_REGION = slice(7, 10)
EF19_REGION_CODEC = BcdDigits(3)


@dataclass(frozen=True)
class FieldWarning:
    """Something a reader tolerated in one field of a real card (padding it trimmed, bytes
    it could not decode): ``field`` is the data element's name (``name``, ``birthplace`` …)."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def ef06_elements(
    name_padding: int, records: Sequence[int] = DEFAULT_EF06_RECORDS
) -> tuple[Element, ...]:
    """EF06 as a profile lays it out: the elements whose tags ``records`` lists, numbered by
    their place in it (the first is record 1), names padded with ``name_padding``."""
    by_tag = {e.tag: e for e in EF06_TEMPLATE}
    return tuple(
        Element(
            tag,
            number,
            by_tag[tag].name,
            Gbk(by_tag[tag].length, name_padding)
            if isinstance(by_tag[tag].codec, Gbk)
            else by_tag[tag].codec,
        )
        for number, tag in enumerate(records, start=1)
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


GENDERS = {"1": "男", "2": "女"}  # GB/T 2261.1 codes, as EF06 stores them
# GB 3304-91 民族代码: 01-56 the 56 nationalities, 97 其他, 98 外国血统中国籍人士.
ETHNICITIES = frozenset({f"{n:02d}" for n in range(1, 57)} | {"97", "98"})
# Operator-facing names of the holder fields (enroll and job files use the English keys).
HOLDER_FIELDS = {
    "ssn": "社会保障号码",
    "name": "姓名",
    "gender": "性别",
    "ethnicity": "民族",
    "birthplace": "出生地",
    "birth_date": "出生日期",
}


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

    @classmethod
    def from_mapping(cls, d: Mapping[str, object]) -> HolderData:
        """A holder from a JSON object: every field of :data:`HOLDER_FIELDS` a string,
        ``birth_date`` as YYYY-MM-DD. Not yet validated (see :meth:`validate`)."""
        values = {key: string_field(d, key, label) for key, label in HOLDER_FIELDS.items()}
        birth_date = date_field(d, "birth_date", HOLDER_FIELDS["birth_date"])
        return cls(
            ssn=values["ssn"],
            name=values["name"],
            gender=values["gender"],
            ethnicity=values["ethnicity"],
            birthplace=values["birthplace"],
            birth_date=birth_date,
        )

    def validate(self, *, today: date | None = None, first_generation: bool = False) -> None:
        """Each field on its own, then against the ID number (GB 11643-1999 §4): the birth
        date of positions 7-14, the gender of position 17; ``birthplace`` a GB/T 2260 code
        (:mod:`sscard.regions`), ``ethnicity`` a GB 3304 code. With ``today`` (the caller's
        injected date) a birth date after it is refused. With ``first_generation`` (the record
        of a first-generation card) the 社会保障号码 may be a 15-digit number of GB 11643-1989,
        its birth date YYMMDD and gender of position 15 checked alike; new cards and the
        registry take 18 characters only (docs/business-rules.md "15-digit ID numbers")."""
        validate_ssn(self.ssn, first_generation=first_generation)
        raw = encode_gbk(self.name)
        if len(raw) > NAME_LENGTH + NAME_EXT_LENGTH:
            raise InvalidData(
                f"姓名 GBK 编码 {len(raw)} 字节，超过 {NAME_LENGTH + NAME_EXT_LENGTH} 字节 "
                "(name too long for 姓名 + 姓名扩展)"
            )
        if self.gender not in GENDERS:
            raise InvalidData(
                f"性别 {self.gender!r} 无效，应为 '1'(男) 或 '2'(女) (gender is '1' or '2')"
            )
        implied = ssn_gender(self.ssn)
        if self.gender != implied:
            position = 15 if len(self.ssn) == 15 else 17
            raise InvalidData(
                f"性别 {self.gender}({GENDERS[self.gender]}) 与社会保障号码第 {position} 位 "
                f"{self.ssn[position - 1]} 不符，应为 {implied}({GENDERS[implied]}) "
                f"(gender contradicts the ID number's digit {position}: should be {implied})"
            )
        if self.birth_date != ssn_birth_date(self.ssn):
            raise InvalidData(
                f"出生日期 {self.birth_date.isoformat()} 与社会保障号码中的 "
                f"{ssn_birth_date(self.ssn).isoformat()} 不一致 "
                "(birth date differs from the number)"
            )
        if today is not None and self.birth_date > today:
            raise InvalidData(
                f"出生日期 {self.birth_date.isoformat()} 晚于今天 {today.isoformat()} "
                "(birth date is in the future)"
            )
        if region_name(self.birthplace) is None:
            raise InvalidData(
                f"出生地 {self.birthplace!r} 不在 GB/T 2260 行政区划代码表中 "
                "(birthplace is not a 6-digit GB/T 2260 region code)"
            )
        if self.ethnicity not in ETHNICITIES:
            raise InvalidData(
                f"民族代码 {self.ethnicity!r} 不在 GB 3304 中 (ethnicity: 01-56, 97 or 98)"
            )

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


def string_field(d: Mapping[str, object], key: str, label: str) -> str:
    """``d[key]``, which must be present and a string; InvalidData naming the field."""
    if key not in d:
        raise InvalidData(f"缺少字段 {key}（{label}）(field {key} is missing)")
    value = d[key]
    if not isinstance(value, str):
        raise InvalidData(
            f"字段 {key}（{label}）应为字符串，实为 {json_type(value)} "
            f"(field {key} must be a string)"
        )
    return value


def date_field(d: Mapping[str, object], key: str, label: str) -> date:
    """``d[key]``, which must be a string holding a date as YYYY-MM-DD (ISO 8601's extended
    calendar date, nothing else); InvalidData naming the field."""
    text = string_field(d, key, label)
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidData(
            f"字段 {key}（{label}）{text!r} 应为 YYYY-MM-DD 格式的日期 "
            f"(field {key} must be a date YYYY-MM-DD)"
        ) from None


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"
