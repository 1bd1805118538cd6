"""Card quirks: documented departures from the virtual 社保卡's default behaviour, chosen per
card with ``sscard sim new-card --quirk NAME`` so that testers can check how reader software
copes with the variants real cards show (docs/testing-with-virtual-cards.md).

By default the card answers as the real card of the public Z390Kylin log does
(docs/chip-application.md §1): a bare ``9000`` on SELECT of an EF, the record and ``9000`` on
READ RECORD with a too-large Le, ``61xx`` on the SSSE select under T=0. Each quirk changes
one thing. *Answer* quirks change how the card OS answers; *image* quirks change what the
card factory writes into the card.
"""

from __future__ import annotations

from typing import Final

# How the card OS answers (simulator/cardos, simulator/sscard_card.py).
ANSWER_QUIRKS: Final[dict[str, str]] = {
    "fci-on-select-ef": "SELECT EF by FID answers the EF's FCI (61xx under T=0), not a bare 9000",
    "strict-le": "an Le that differs from the data's length answers 6Cxx (ISO/IEC 7816-3 §12.2.2)",
    "always-61xx": "every command with response data answers 61xx and waits for GET RESPONSE",
    "sfi-only": "EFs cannot be selected by FID (6A82): records are read by SFI only",
}
# Each answer quirk in detail (simulator/cardos/card.py implements them):
# * fci-on-select-ef — SELECT of an EF by FID (P1 00 or 02, P2 not 0C) answers the FCI
#   template 6F (82 descriptor, 83 FID, 80 size, 88 SFI), 61xx + GET RESPONSE under T=0; by
#   default such a SELECT answers a bare 9000 as the card of the Z390Kylin log does.
# * strict-le — READ RECORD answers 6Cxx (xx = the record's length) on any Le other than the
#   record's length or 00; by default a larger Le gets the record and 9000.
# * always-61xx — every command that returns data answers 61xx and hands the data out by GET
#   RESPONSE, under T=0 and T=1, even a case-2 command whose Le is exactly right.
# * sfi-only — SELECT of an EF by FID answers 6A82; DFs are still selected by FID or AID, and
#   records and binaries are read by SFI.
# * max-le=N — see PARAMETER_QUIRKS; READ BINARY's own ISO behaviour (6282 and the bytes
#   up to the end of the file) is unchanged below N.
# What the card factory writes (simulator/factory.py).
IMAGE_QUIRKS: Final[dict[str, str]] = {
    "pad-20": "names padded with 0x20 (spaces), as a real card was seen",
    "pad-ff": "names and 姓名扩展 padded with 0xFF, 出生地 holding 4 digits padded with FF",
    "no-4e": "EF06 without the 姓名扩展 record (tag 4E): 6A83 when it is read",
    "id-15": (
        "a first-generation card (上海 from 2001): the 社会保障号码 in its 15-digit form of "
        "GB 11643-1989, padded with 0x00 to the 18 bytes of tag 08"
    ),
}
# Parameterised quirks: NAME=VALUE.
PARAMETER_QUIRKS: Final[dict[str, str]] = {
    "max-le": (
        "max-le=N: READ BINARY / READ RECORD asking more than N bytes (N < 256; Le 00 asks "
        "for 256) answer 6700, and extended APDUs are refused (6700)"
    ),
}
QUIRKS: Final[dict[str, str]] = {**ANSWER_QUIRKS, **IMAGE_QUIRKS, **PARAMETER_QUIRKS}


def parse_quirks(quirks: tuple[str, ...]) -> dict[str, int | None]:
    """Each quirk of a card → its value (None for a plain quirk); ValueError on an unknown
    one (:func:`parse_quirk`)."""
    return dict(parse_quirk(q) for q in quirks)


def parse_quirk(text: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME=N`` → (name, N); ValueError naming the known quirks otherwise."""
    name, sep, value = text.partition("=")
    if name not in QUIRKS or (name in PARAMETER_QUIRKS) != bool(sep):
        known = ", ".join(sorted(n + ("=N" if n in PARAMETER_QUIRKS else "") for n in QUIRKS))
        raise ValueError(f"未知的卡片特性 {text!r}（可选：{known}）(unknown quirk)")
    if not sep:
        return name, None
    if not value.isdigit() or not 1 <= int(value) <= 255:
        raise ValueError(f"{name} 需要 1-255 之间的整数 ({name} takes a number 1-255)")
    return name, int(value)
