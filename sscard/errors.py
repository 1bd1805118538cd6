"""Exceptions of the 社保卡 application layer. Messages never contain PINs or keys."""

from __future__ import annotations


class SocialSecurityCardError(Exception):
    """Base of every error raised by :mod:`sscard`."""


class ProfileError(SocialSecurityCardError):
    """A card profile file is missing or inconsistent."""


class InvalidData(SocialSecurityCardError, ValueError):
    """Holder or issuer data that cannot be written as it is (bad check character, a name
    GBK cannot encode, a field too long …)."""


class NotASocialSecurityCard(SocialSecurityCardError):
    """The card has no SSSE application: not a social security card."""


class CardAuthenticationFailed(SocialSecurityCardError):
    """EXTERNAL AUTHENTICATE was refused. Never retried: ``tries_left`` is what the card said
    remains for that key (None when it did not say)."""

    def __init__(self, message: str, *, key_id: int, label: str, tries_left: int | None) -> None:
        super().__init__(message)
        self.key_id = key_id
        self.label = label
        self.tries_left = tries_left


class VerificationFailed(SocialSecurityCardError):
    """Read-back after writing differs from what was written (a torn or failed write)."""

    def __init__(self, message: str, *, mismatches: list[str]) -> None:
        super().__init__(message)
        self.mismatches = mismatches


class CardNotGenuine(SocialSecurityCardError):
    """The card's answer to INTERNAL AUTHENTICATE differs from the security module's: the
    card does not hold the issuer's internal-authentication key (sscard/authenticity.py)."""
