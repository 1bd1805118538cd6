"""Personalization then verification of one blank 社保卡 in the same session, as the station
does it, with the APDUs of each step counted by ``count`` (the virtual reader's counter,
:attr:`simulator.vpcd.VpcdBridge.apdu_count`). Shared by the APDU-budget test
(tests/integration/test_apdu_budget.py) and ``bench/personalize_chip.py``."""

from __future__ import annotations

from collections.abc import Callable

from simulator.factory import SAMPLE_HOLDER, TEST_ROOTS, sample_issuer
from sscard.card import SocialSecurityCard
from sscard.records import IssuerData

PIN = "135790"
STEPS = ("identify", "update key", "EF05", "EF06", "photo", "PIN reset", "verify")


def personalize(
    card: SocialSecurityCard, region: str, photo: bytes, done: Callable[[str], None]
) -> IssuerData:
    """Identify (no FCI), authenticate with the update key, write EF05, EF06 and the photo,
    reset the PIN to :data:`PIN`; ``done(step)`` after each step. The issuer data written."""
    profile = card.profile
    card.identify(fci=False)
    done("identify")
    issuer = sample_issuer(profile.name, region, card.sn, TEST_ROOTS)
    card.external_authenticate(profile.update_key)
    done("update key")
    card.write_issuer(issuer)
    done("EF05")
    card.write_holder(SAMPLE_HOLDER)
    done("EF06")
    card.write_photo(photo)
    done("photo")
    card.reset_pin(PIN)
    done("PIN reset")
    return issuer


def personalize_and_verify(
    card: SocialSecurityCard, region: str, photo: bytes, count: Callable[[], int]
) -> dict[str, int]:
    """:func:`personalize` then verify everything: the APDUs of each step of :data:`STEPS`."""
    per_step: dict[str, int] = {}
    before = count()

    def done(step: str) -> None:
        nonlocal before
        now = count()
        per_step[step] = now - before
        before = now

    issuer = personalize(card, region, photo, done)
    card.verify(issuer, SAMPLE_HOLDER, photo, pin=PIN)
    done("verify")
    return per_step
