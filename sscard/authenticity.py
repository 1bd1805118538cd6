"""Is the card genuine? INTERNAL AUTHENTICATE against the security module
(docs/chip-application.md §4; the algorithm is [ours]: no public source gives it).

The terminal sends a fresh random block, ``00 88 00 00 Lc <random> 00``; a genuine spec-3.00
card answers it enciphered under its internal-authentication key, which only the issuer's
security module can compute as well (:meth:`SecurityModule.internal_auth`, root key
``internal`` diversified by the card's factors). The two answers are compared in constant
time. A card whose spec has no INTERNAL AUTHENTICATE (2.00 and earlier) answers ``6D00``:
that is "not supported", not "not genuine".
"""

from __future__ import annotations

import hmac
import os

from apdu.command import Command
from apdu.status import InsNotSupported
from hsm_stub.module import SecurityModule
from hsm_stub.suites import suite_for
from sscard.card import SocialSecurityCard
from sscard.errors import CardNotGenuine, SocialSecurityCardError

INTERNAL_KEY_LABEL = "internal"


class InternalAuthenticationNotSupported(SocialSecurityCardError):
    """The card answered INTERNAL AUTHENTICATE with ``6D00`` (instruction not supported)."""


def check_internal_authentication(
    card: SocialSecurityCard, hsm: SecurityModule, label: str = INTERNAL_KEY_LABEL
) -> None:
    """Return if the card answers a fresh random as the security module expects; raise
    :class:`CardNotGenuine` if it answers otherwise, :class:`InternalAuthenticationNotSupported`
    if it does not know the command."""
    factors = card.factors  # may read EF05 (the region in the 卡识别码): before the command
    challenge = os.urandom(suite_for(card.profile.algorithm).block)
    try:
        answer = card.send(Command(0x00, 0x88, 0x00, 0x00, challenge, le=256)).data
    except InsNotSupported:
        raise InternalAuthenticationNotSupported(
            "此卡不支持内部认证（6D00，规范版本 3.00 以前的卡） "
            "(the card does not support INTERNAL AUTHENTICATE: 6D00, a card before spec 3.00)"
        ) from None
    expected = hsm.internal_auth(label, factors, challenge)
    if not hmac.compare_digest(answer, expected):
        raise CardNotGenuine(
            "内部认证失败：卡片的应答与加密机不一致，卡片不是本发卡机构的真卡 "
            "(INTERNAL AUTHENTICATE: the card's answer differs from the security module's; "
            "the card is not genuine)"
        )
