"""The enroll file of ``sscard registry enroll``: one JSON object (UTF-8) describing a person
and the card they already hold, as migrated from an earlier system::

    {"ssn": "11010519491231002X", "name": "张三", "gender": "2", "ethnicity": "01",
     "birthplace": "110105", "birth_date": "1949-12-31", "card_number": "H00000012",
     "sn": "0000000000000001", "issued_on": "2001-06-01"}

Every field is a string; ``sn`` (the card's serial number, 16 hex digits) and ``issued_on``
(the card's 发卡日期, YYYY-MM-DD: the start of its validity; not known unless given) are
optional. Reading checks the file's shape and each field's type and format;
:meth:`Registry.enroll` checks the data against the standards (check characters, the ID
number, GB/T 2260) and the issue date against today before writing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sscard.errors import InvalidData
from sscard.records import HOLDER_FIELDS, HolderData, date_field, json_type, string_field

FIELDS = {**HOLDER_FIELDS, "card_number": "卡号", "sn": "卡序列号", "issued_on": "发卡日期"}


@dataclass(frozen=True)
class Enrollment:
    holder: HolderData
    card_number: str
    sn: str | None
    issued_on: date | None = None  # 发卡日期, when the earlier system knew it


def read_enrollment(path: Path) -> Enrollment:
    """The enroll file at ``path``, or InvalidData naming the file's or the field's fault."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InvalidData(
            f"无法读取登记文件 {path}：{exc.strerror} (cannot read the enroll file)"
        ) from None
    except UnicodeDecodeError:
        raise InvalidData(
            f"登记文件 {path} 不是 UTF-8 文本 (the enroll file is not UTF-8)"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidData(
            f"登记文件 {path} 不是有效的 JSON（第 {exc.lineno} 行第 {exc.colno} 列）"
            f"(not JSON: {exc.msg})"
        ) from None
    if not isinstance(data, dict):
        raise InvalidData(
            f"登记文件应为一个 JSON 对象，实为 {json_type(data)} "
            "(the enroll file is one JSON object)"
        )
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidData(
            f"登记文件有未知字段 {', '.join(unknown)} (unknown fields; known: {', '.join(FIELDS)})"
        )
    holder = HolderData.from_mapping(data)
    card_number = string_field(data, "card_number", FIELDS["card_number"])
    sn = data.get("sn")
    if sn is not None and not (isinstance(sn, str) and re.fullmatch(r"[0-9A-Fa-f]{16}", sn)):
        raise InvalidData(
            f"字段 sn（卡序列号）应为 16 位十六进制数字，实为 {sn!r} "
            "(field sn must be 16 hex digits)"
        )
    issued_on = date_field(data, "issued_on", FIELDS["issued_on"]) if "issued_on" in data else None
    return Enrollment(holder, card_number, sn.upper() if sn is not None else None, issued_on)
