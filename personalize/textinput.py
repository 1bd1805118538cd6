"""Text typed by a person (keyboard, IME) made comparable: one normaliser used before every
comparison of typed text with what a card or a device holds.

* Unicode NFKC (UAX #15) folds the compatibility forms an IME produces — full-width digits
  ``１２３`` and letters ``Ｘ``/``ｘ`` — to their ASCII forms; surrounding white space (an
  ideographic space U+3000 included, NFKC turns it into U+0020) is stripped.
* The result is validated against the field's alphabet with ASCII-only patterns (``re.ASCII``:
  Python's ``\\d`` alone would accept every Unicode digit), so what comes out is ASCII ``str``
  or a :class:`TypedTextError` — Chinese first, English beside, and never the typed value
  (an ID number is personal data, a PIN a secret).
* :func:`same` compares two such values in constant time; ``hmac.compare_digest`` only ever
  receives ASCII bytes, so it never raises ``TypeError`` (it does for a non-ASCII ``str``).

Text read from a card or an encoder is validated where it is decoded: ``sscard.codecs.Ascii``
refuses bytes outside printable ASCII, ``printer.msr206`` bytes outside a track's character
set (ISO/IEC 7811-2/6). Both layers sit below this one and never see a keyboard.
"""

from __future__ import annotations

import hmac
import re
import unicodedata

from sscard.errors import InvalidData

ID_NUMBER = re.compile(r"[0-9]{17}[0-9X]", re.ASCII)  # GB 11643-1999: 17 digits + check


class TypedTextError(InvalidData):
    """Typed text that is not of the expected form (the value itself is never included)."""


def normalize(text: str) -> str:
    """NFKC, then leading and trailing white space removed."""
    return unicodedata.normalize("NFKC", text).strip()


def id_number(text: str) -> str:
    """A 公民身份号码 / 社会保障号码 as typed: 18 characters, 17 ASCII digits and a digit or
    ``X`` (lower case and full-width forms accepted)."""
    value = normalize(text).upper()
    if not ID_NUMBER.fullmatch(value):
        raise TypedTextError(
            "身份证号码格式不正确：应为 17 位数字加 1 位数字或 X "
            "(an ID number is 17 digits followed by a digit or X)"
        )
    return value


def pin(text: str, length: int) -> str:
    """A PIN as typed: exactly ``length`` ASCII digits (full-width digits accepted)."""
    value = normalize(text)
    if not re.fullmatch(rf"[0-9]{{{length}}}", value, re.ASCII):
        raise TypedTextError(f"PIN 应为 {length} 位数字 (a PIN is {length} digits)")
    return value


def same(typed: str, held: str) -> bool:
    """Constant-time equality of a normalised typed value and one read from a card or a
    device; a value that is not ASCII is refused (it cannot be a valid field)."""
    if not typed.isascii() or not held.isascii():
        raise TypedTextError("比对的文本含非 ASCII 字符，无法比对 (text to compare is not ASCII)")
    return hmac.compare_digest(typed.encode("ascii"), held.encode("ascii"))
