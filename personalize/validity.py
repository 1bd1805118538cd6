"""A card's printed validity (有效期) and what it means for its use (docs/business-rules.md
"Validity"): the validity is the card's issue date plus the policy's ``card_validity_years``
(``RegionPolicy.card_expiry``, the same date the job writes to EF05); a card past it stays
usable if undamaged where the policy says so (上海: "过了有效期限的社保卡若无损坏仍可继续使用"),
otherwise it must be replaced (换卡) and terminals refuse it.

Today is always given by the caller — the registry's injected clock, in the region's zone —
never read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from personalize.policy import RegionPolicy
from sscard.errors import InvalidData

WITHIN = "有效期内"
PAST_USABLE = "过有效期 (仍可使用)"
PAST_REPLACE = "过有效期，须换卡 (past its validity: to be replaced)"


# No 社会保障卡 was issued before the national card began in 1999 (上海's from 2001, seed
# article): an earlier 发卡日期 is a typing or migration error.
FIRST_ISSUE_YEAR = 1999


def check_issue_date(issued_on: date, today: date) -> None:
    """A card's 发卡日期 as an earlier system gives it at enrolment: not after ``today`` (the
    region's), not before :data:`FIRST_ISSUE_YEAR`; InvalidData otherwise."""
    if issued_on > today:
        raise InvalidData(
            f"发卡日期 {issued_on.isoformat()} 晚于今天 {today.isoformat()} "
            "(the issue date is in the future)"
        )
    if issued_on.year < FIRST_ISSUE_YEAR:
        raise InvalidData(
            f"发卡日期 {issued_on.isoformat()} 早于 {FIRST_ISSUE_YEAR} 年，其时尚无社会保障卡 "
            f"(the issue date is before {FIRST_ISSUE_YEAR}, when no card was issued yet)"
        )


@dataclass(frozen=True)
class CardValidity:
    """The card's 有效期 and its standing on ``today``."""

    valid_until: date
    past: bool  # today is after the last day of validity
    usable: bool  # a terminal may accept it as far as validity goes
    label: str  # what an operator or a terminal reads


def card_validity(policy: RegionPolicy, issued_on: str | None, today: date) -> CardValidity | None:
    """The validity of a card issued on ``issued_on`` (ISO date) as of ``today``, or None when
    the registry does not know the issue date. The validity date itself is the last day the
    card is within it."""
    if not issued_on:
        return None
    valid_until = policy.card_expiry(date.fromisoformat(issued_on))
    past = today > valid_until
    usable = not past or policy.usable_past_validity
    label = WITHIN if not past else PAST_USABLE if usable else PAST_REPLACE
    return CardValidity(valid_until, past, usable, label)
