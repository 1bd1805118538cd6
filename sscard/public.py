"""The card's public data as ``sscard card read`` shows it, with the checks that need no key:
卡号 check character, 社会保障号码 check character (of a first-generation card's 15-digit
number, its own rule), 卡识别码 against the SN; what the reader tolerated on the way is listed
under ``warnings`` (docs/chip-application.md "Reading real cards", "card read --json")."""

from __future__ import annotations

from datetime import date
from typing import Any

from sscard.card import SocialSecurityCard
from sscard.errors import InvalidData
from sscard.identifiers import card_id_matches_sn, card_number_valid, ssn_valid
from sscard.records import FieldWarning, HolderData

FIELDS = (
    "atr",
    "sn",
    "card_id",
    "card_type",
    "spec_version",
    "issuer_org",
    "issue_date",
    "expiry_date",
    "card_number",
    "ssn",
    "name",
    "gender",
    "ethnicity",
    "birthplace",
    "birth_date",
)
# Regional fields: null where the card's profile has no such file (EF0D: Jiangsu; EF19:
# Hunan, read only when a PIN was given).
REGIONAL_FIELDS = ("person_id", "first_region", "insured_region")


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex().upper()
    if isinstance(value, date):
        return value.isoformat()
    return value


def read_public(card: SocialSecurityCard, *, pin: str | None = None) -> dict[str, Any]:
    """Identify the card, read EF05, VERIFY when a PIN is given (refused without one when the
    profile guards EF05 or EF06; before EF05 only when the profile guards EF05), read EF06,
    EF0D where the profile has it, and EF19 where the profile has it and a PIN was given."""
    if pin is None and card.profile.needs_pin:
        raise InvalidData("本地区卡片读取前须验证 PIN (this region's cards need the PIN to read)")
    identity = card.identify()
    warnings: list[FieldWarning] = []
    # VERIFY after EF05 as public readers do, unless the profile guards EF05 itself
    if pin is not None and card.profile.ef05.read == "pin":
        card.verify_pin(pin)
    issuer = card.read_issuer(warnings)
    if pin is not None and card.profile.ef05.read != "pin":
        card.verify_pin(pin)
    holder = card.read_holder(warnings)
    warnings.extend(first_generation_warning(holder))
    regional: dict[str, Any] = dict.fromkeys(REGIONAL_FIELDS)
    regional |= card.read_ef0d(warnings) or {}
    if pin is not None:
        regional["insured_region"] = card.read_insured_region(warnings)
    out: dict[str, Any] = {"atr": identity.atr, "sn": identity.sn}
    out |= issuer.values()
    out |= {
        k: getattr(holder, k)
        for k in ("ssn", "name", "gender", "ethnicity", "birthplace", "birth_date")
    }
    # "detection": what --profile auto saw (sscard.detect), set by the caller; None otherwise
    result: dict[str, Any] = {"profile": card.profile.name, "detection": None}
    result |= {k: _plain(out[k]) for k in FIELDS}
    result |= regional
    result["warnings"] = [w.as_dict() for w in warnings]
    result["checks"] = {
        "card_number_check": card_number_valid(issuer.card_number),
        "ssn_check": ssn_valid(holder.ssn, first_generation=True),
        "card_id_matches_sn": card_id_matches_sn(issuer.card_id, identity.sn),
    }
    return result


def first_generation_warning(holder: HolderData) -> list[FieldWarning]:
    """A first-generation card's 15-digit 社会保障号码 is valid (docs/business-rules.md
    "15-digit ID numbers") but said: the registry knows the holder by the upgraded number."""
    if len(holder.ssn) != 15:
        return []
    return [
        FieldWarning(
            "ssn",
            "第一代卡的 15 位社会保障号码 (GB 11643-1989)，按 GB 11643-1999 升位后与 "
            "18 位号码比对，无须换卡 (a first-generation card's 15-digit number: "
            "matched by its 18-digit upgrade, no replacement needed)",
        )
    ]
