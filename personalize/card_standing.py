"""What a card's status answer says beside its lifecycle status — ``sscard registry show`` and
the API's ``GET /v1/cards/{card_number}/status`` alike (docs/business-rules.md "PINs" and
"Validity", docs/api.md): its printed validity (有效期) and where it stands against it, and
whether it still holds the initial PIN (初始密码), with which 珠海 says the medical account
cannot pay ("医保账户初始密码不能消费")."""

from __future__ import annotations

from typing import Any

from personalize.validity import CardValidity

INITIAL_PIN_NAMES: dict[bool | None, str] = {
    True: "初始密码未修改，医保账户不能消费 (initial PIN still set: no medical payment)",
    False: "已修改初始密码 (initial PIN changed)",
    None: "未知：登记前发的卡 (not known: a card from before the mark was kept)",
}


def standing(validity: CardValidity | None, initial_pin: bool | None) -> dict[str, Any]:
    """The fields of a card's standing: ``valid_until`` (ISO date), ``validity`` (its label),
    ``past_validity``, ``initial_pin`` (None: not known) and ``initial_pin_name``; the
    validity fields are None when the registry has no issue date for the card."""
    return {
        "valid_until": None if validity is None else validity.valid_until.isoformat(),
        "validity": None if validity is None else validity.label,
        "past_validity": None if validity is None else validity.past,
        "initial_pin": initial_pin,
        "initial_pin_name": INITIAL_PIN_NAMES[initial_pin],
    }
