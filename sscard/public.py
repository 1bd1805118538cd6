"""The card's public data as ``sscard card read`` shows it, with the checks that need no key:
卡号 check character, 社会保障号码 check character, 卡识别码 against the SN."""

from __future__ import annotations

from datetime import date
from typing import Any

from sscard.card import SocialSecurityCard
from sscard.errors import InvalidData
from sscard.identifiers import card_id_matches_sn, card_number_valid, ssn_valid

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


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex().upper()
    if isinstance(value, date):
        return value.isoformat()
    return value


def read_public(card: SocialSecurityCard, *, pin: str | None = None) -> dict[str, Any]:
    """Identify the card and read EF05 and EF06 (VERIFY first when the profile needs it)."""
    identity = card.identify()
    if card.profile.read_access == "pin":
        if pin is None:
            raise InvalidData(
                "本地区卡片读取前须验证 PIN (this region's cards need the PIN to read)"
            )
        card.verify_pin(pin)
    issuer = card.read_issuer()
    holder = card.read_holder()
    out: dict[str, Any] = {"atr": identity.atr, "sn": identity.sn}
    out |= {k: v for k, v in issuer.values().items()}
    out |= {
        k: getattr(holder, k)
        for k in ("ssn", "name", "gender", "ethnicity", "birthplace", "birth_date")
    }
    result = {k: _plain(out[k]) for k in FIELDS}
    result["checks"] = {
        "card_number_check": card_number_valid(issuer.card_number),
        "ssn_check": ssn_valid(holder.ssn),
        "card_id_matches_sn": card_id_matches_sn(issuer.card_id, identity.sn),
    }
    return result
