"""Identifiers and check characters (docs/chip-application.md §3).

* 卡号 (card number): 8 characters + a check character, GB 11714 scheme: '0'-'9' → 0-9,
  'A'-'Z' → 10-35, weights 3,7,9,10,5,8,4,2, r = 11 − (s mod 11), 'X' for 10, '0' for 11.
* 社会保障号码: the 18-character citizen ID of GB 11643: weights 7,9,10,5,8,4,2,1,6,3,7,9,10,
  5,8,4,2, s mod 11 indexes "10X98765432". First-generation cards (上海 from 2001) may carry
  the 15-digit form of GB 11643-1989 — 6-digit region, YYMMDD (the 1900s), 3-digit sequence,
  no check character — which GB 11643-1999 upgrades by inserting ``19`` after the region code
  and appending the check character (docs/business-rules.md "15-digit ID numbers").
* 卡识别码 (16 bytes): region (3 bytes BCD) ‖ D156000005 ‖ last 4 bytes of the SN ‖ 4-byte
  MAC over those 12 bytes from the security module (IRK diversified by the SN).
* The card's serial number: the last 8 historical bytes of the ATR (for the T=0 ATRs of real
  cards, the last 8 bytes of the ATR).
"""

from __future__ import annotations

import hmac
import re
from datetime import date

from apdu.atr import Atr
from hsm_stub.module import SecurityModule
from sscard.errors import InvalidData
from sscard.regions import region_name

RID = bytes.fromhex("D156000005")
CARD_NUMBER_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
SSN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
SSN_CHECK = "10X98765432"


def _char_value(ch: str) -> int:
    if ch.isdigit():
        return int(ch)
    if "A" <= ch <= "Z":
        return ord(ch) - ord("A") + 10
    raise InvalidData(f"卡号字符 {ch!r} 无效 (card numbers use 0-9 and A-Z)")


def card_number_check(first8: str) -> str:
    if len(first8) != 8:
        raise InvalidData("a card number has 8 characters before its check character")
    s = sum(_char_value(c) * w for c, w in zip(first8, CARD_NUMBER_WEIGHTS, strict=True))
    r = 11 - s % 11
    return "X" if r == 10 else "0" if r == 11 else str(r)


def card_number_valid(number: str) -> bool:
    try:
        return len(number) == 9 and card_number_check(number[:8]) == number[8]
    except InvalidData:
        return False


def ssn_check(first17: str) -> str:
    if not re.fullmatch(r"[0-9]{17}", first17):  # ASCII digits: \d is any Unicode digit
        raise InvalidData("社会保障号码的前 17 位必须是数字 (the first 17 characters are digits)")
    return SSN_CHECK[sum(int(c) * w for c, w in zip(first17, SSN_WEIGHTS, strict=True)) % 11]


def ssn_valid(ssn: str, *, first_generation: bool = False) -> bool:
    """The check character right; with ``first_generation`` a 15-digit number (which has
    none) counts when it is valid by its own rule (:func:`validate_ssn15`)."""
    try:
        if first_generation and len(ssn) == 15:
            validate_ssn15(ssn)
            return True
        return len(ssn) == 18 and ssn_check(ssn[:17]) == ssn[17]
    except InvalidData:
        return False


def validate_ssn(ssn: str, *, first_generation: bool = False) -> None:
    """InvalidData with a message an operator can act on: length, check character, the birth
    date of positions 7-14 a real date, the address code of positions 1-6 a GB/T 2260 code of
    some edition (GB 11643-1999 §4; :mod:`sscard.regions`). With ``first_generation`` (what a
    chip or a terminal reading one holds) a 15-digit number is checked by its own rule
    instead (:func:`validate_ssn15`)."""
    if first_generation and len(ssn) == 15:
        validate_ssn15(ssn)
        return
    if len(ssn) == 15:
        raise InvalidData(
            "社会保障号码应为 18 位，实为 15 位：第一代号码须按 GB 11643-1999 升位后使用 "
            "(must be 18 characters: a 15-digit number is upgraded first)"
        )
    if len(ssn) != 18:
        raise InvalidData(f"社会保障号码应为 18 位，实为 {len(ssn)} 位 (must be 18 characters)")
    expected = ssn_check(ssn[:17])
    if ssn[17] != expected:
        raise InvalidData(
            f"社会保障号码校验位错误：应为 {expected}，实为 {ssn[17]} "
            f"(check character should be {expected})"
        )
    _birth_and_region(ssn)


def _birth_and_region(ssn: str) -> None:
    """The checks both forms share: the birth date a real date, the address code of
    positions 1-6 a GB/T 2260 code of some edition."""
    ssn_birth_date(ssn)
    if region_name(ssn[:6]) is None:
        raise InvalidData(
            f"社会保障号码的地址码 {ssn[:6]} 不在 GB/T 2260 行政区划代码表中 "
            "(the ID number's region code is not a GB/T 2260 code)"
        )


def validate_ssn15(number: str) -> None:
    """A first-generation 15-digit number by its own rule (GB 11643-1989, superseded by GB
    11643-1999): 15 ASCII digits — 6-digit address code, birth date YYMMDD of the 1900s,
    3-digit sequence code — and no check character. InvalidData says what is wrong."""
    if not re.fullmatch(r"[0-9]{15}", number):  # ASCII digits: \d is any Unicode digit
        raise InvalidData(
            f"15 位社会保障号码应为 15 位数字，实为 {len(number)} 位或含非数字字符 "
            "(a 15-digit ID number is 15 ASCII digits, no check character)"
        )
    _birth_and_region(number)


def upgrade_ssn(fifteen: str) -> str:
    """The 18-digit number of a 15-digit one (the upgrade of GB 11643-1989 numbers to the
    GB 11643-1999 form): ``19`` inserted after the address code, the check character appended.
    InvalidData when ``fifteen`` is not a valid 15-digit number (:func:`validate_ssn15`)."""
    validate_ssn15(fifteen)
    first17 = fifteen[:6] + "19" + fifteen[6:]
    return first17 + ssn_check(first17)


def first_generation_ssn(ssn: str) -> str | None:
    """The 15-digit first-generation number (GB 11643-1989) that upgrades to the 18-character
    ``ssn`` — ``19`` taken out after the address code, no check character — or None when no
    number does (born outside the 1900s, a malformed ``ssn``). The inverse of
    :func:`upgrade_ssn`, checked by it."""
    if len(ssn) != 18 or ssn[6:8] != "19":
        return None
    fifteen = ssn[:6] + ssn[8:17]
    try:
        return fifteen if upgrade_ssn(fifteen) == ssn else None
    except InvalidData:
        return None


def canonical_ssn(ssn: str) -> str:
    """The number a person is recorded under: an 18-character number as it is, a 15-digit
    one upgraded (:func:`upgrade_ssn`). The registry stores only this form."""
    return upgrade_ssn(ssn) if len(ssn) == 15 else ssn


def same_person_ssn(a: str, b: str) -> bool:
    """Whether two ID numbers, each 18 characters or a 15-digit first-generation number, are
    the same person's: equal once upgraded. A malformed 15-digit number matches nobody."""
    try:
        return canonical_ssn(a) == canonical_ssn(b)
    except InvalidData:
        return False


def ssn_birth_date(ssn: str) -> date:
    """The birth date of positions 7-14 (出生日期码, GB 11643-1999 §4.3); of a 15-digit number,
    positions 7-12 YYMMDD in the 1900s (GB 11643-1989)."""
    digits = "19" + ssn[6:12] if len(ssn) == 15 else ssn[6:14]
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        shown = ssn[6:12] if len(ssn) == 15 else digits
        raise InvalidData(
            f"社会保障号码中的出生日期 {shown} 无效 (birth date in the number is invalid)"
        ) from None


def ssn_gender(ssn: str) -> str:
    """The gender code the sequence code's last digit implies — position 17, of a 15-digit
    number position 15: odd for men ('1'), even for women ('2') (GB 11643-1999 §4.4; codes of
    GB/T 2261.1)."""
    return "1" if int(ssn[14 if len(ssn) == 15 else 16]) % 2 else "2"


def validate_card_number(number: str) -> None:
    """Format (8 characters 0-9/A-Z, then the check character 0-9 or X) and check character
    (GB 11714 scheme, docs/chip-application.md §3); the message names the right number."""
    if not re.fullmatch(r"[0-9A-Z]{8}[0-9X]", number):
        raise InvalidData(
            f"卡号 {number!r} 格式错误：应为 9 位，即 8 位数字或大写字母加 1 位校验位 "
            "(a card number is 8 characters 0-9/A-Z and a check character 0-9/X)"
        )
    expected = card_number_check(number[:8])
    if number[8] != expected:
        raise InvalidData(
            f"卡号 {number} 校验位错误，应为 {number[:8]}{expected} "
            f"(check character should be {expected})"
        )


def serial_number(atr: bytes) -> bytes:
    """The card SN: the last 8 historical bytes of the ATR."""
    historical = Atr.parse(atr).historical
    if len(historical) < 8:
        raise InvalidData("the ATR has fewer than 8 historical bytes: no card serial number")
    return historical[-8:]


def region_bcd(region_code: str) -> bytes:
    if not re.fullmatch(r"\d{6}", region_code):
        raise InvalidData("a region code is 6 digits")
    return bytes.fromhex(region_code)


def card_id_body(region_code: str, sn: bytes) -> bytes:
    """The 12 bytes the 卡识别码 MAC covers."""
    return region_bcd(region_code) + RID + sn[4:]


def build_card_id(hsm: SecurityModule, label: str, region_code: str, sn: bytes) -> bytes:
    body = card_id_body(region_code, sn)
    return body + hsm.card_id_mac(label, sn, body)


def card_id_matches_sn(card_id: bytes, sn: bytes) -> bool:
    """Structure check needing no key: RID in place and the SN's last 4 bytes."""
    return len(card_id) == 16 and card_id[3:8] == RID and card_id[8:12] == sn[4:]


def verify_card_id(hsm: SecurityModule, label: str, card_id: bytes, sn: bytes) -> bool:
    """Structure and MAC (constant-time compare)."""
    if not card_id_matches_sn(card_id, sn):
        return False
    return hmac.compare_digest(hsm.card_id_mac(label, sn, card_id[:12]), card_id[12:])
