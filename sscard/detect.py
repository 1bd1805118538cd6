"""Which shipped profile a card follows, from what the card answers — ``sscard card read
--profile auto`` (docs/chip-application.md "Profile detection").

The card is probed with reads any reader may send, none of which needs a key or a PIN:
规范版本 (EF05 tag 03), whether EF0D exists, whether EF06 refuses reading before VERIFY, the
tag of EF06's record 3 read by number, and whether 4E exists. The shipped profiles are then
matched against these traits on their own data (EF0D, EF06's read access, ``ef06_records``),
so a new profile TOML takes part without a code change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apdu.command import Command
from apdu.status import SecurityStatusNotSatisfied, StatusError
from apdu.transport import Transport
from sscard.card import SocialSecurityCard
from sscard.errors import InvalidData
from sscard.profile import PROFILE_DIR, CardProfile, FileRef, load_profile
from sscard.records import DEFAULT_EF06_RECORDS, EF0D, EF05, Element, ef06_elements

DEFAULT = "default"
SPEC_VERSION = next(e for e in EF05 if e.name == "spec_version")
NAME_EXT = next(e for e in ef06_elements(0x00, DEFAULT_EF06_RECORDS) if e.tag == 0x4E)


@dataclass(frozen=True)
class CardTraits:
    """What the probe saw; None where the card did not say."""

    spec_version: str | None
    ef0d: bool
    ef06_after_verify: bool
    ef06_record3_tag: int | None
    name_ext: bool | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "spec_version": self.spec_version,
            "ef0d": self.ef0d,
            "ef06_after_verify": self.ef06_after_verify,
            "ef06_record3_tag": (
                None if self.ef06_record3_tag is None else f"{self.ef06_record3_tag:02X}"
            ),
            "name_ext": self.name_ext,
        }


def shipped_profiles() -> list[CardProfile]:
    """Every profile of ``sscard/profiles``, ``default`` first."""
    names = sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))
    return [load_profile(n) for n in sorted(names, key=lambda n: n != DEFAULT)]


def _reads(card: SocialSecurityCard, ef: FileRef, element: Element) -> bytes | None:
    try:
        return card.read_record(ef, element)
    except (StatusError, InvalidData):
        return None


def _has_ef0d(card: SocialSecurityCard, profiles: list[CardProfile]) -> bool:
    """EF0D answers a read through its SFI, or a SELECT by its FID (also when the read
    itself is refused: ``6982`` means the file is there)."""
    ef = next((p.ef0d for p in profiles if p.ef0d is not None), None)
    if ef is None:
        return False
    try:
        card.read_record(ef, EF0D[0])
        return True
    except SecurityStatusNotSatisfied:
        return True
    except (StatusError, InvalidData):
        pass
    try:
        card.send(Command(0x00, 0xA4, 0x00, 0x00, ef.fid.to_bytes(2, "big")))
    except StatusError:
        return False
    return True


def _record3_tag(card: SocialSecurityCard, ef: FileRef) -> int | None:
    """The tag of EF06's record 3 read by number: through the SFI, else after SELECT."""
    if ef.sfi is not None:
        try:
            return _first_byte(card.send(Command(0x00, 0xB2, 3, ef.sfi << 3 | 4, le=256)).data)
        except StatusError:
            pass
    try:
        card.send(Command(0x00, 0xA4, 0x00, 0x00, ef.fid.to_bytes(2, "big")))
        return _first_byte(card.send(Command(0x00, 0xB2, 3, 0x04, le=256)).data)
    except StatusError:
        return None


def _spec_version(raw: bytes | None) -> str | None:
    """规范版本 from its record, None when the record is not the 4 ASCII bytes it should be."""
    if raw is None or len(raw) != 2 + SPEC_VERSION.length:
        return None
    try:
        return str(SPEC_VERSION.codec.decode(raw[2:]))
    except InvalidData:
        return None


def _first_byte(data: bytes) -> int | None:
    return data[0] if data else None


def probe(card: SocialSecurityCard, profiles: list[CardProfile]) -> CardTraits:
    """The card's traits (SSSE selected first). ``card`` may carry any profile: only its
    file map of EF05/EF06 and its read forms are used."""
    card.identify()
    raw = _reads(card, card.profile.ef05, SPEC_VERSION)
    spec = _spec_version(raw)
    ef0d = _has_ef0d(card, profiles)
    ef06 = card.profile.ef06
    ssn = card.profile.ef06_layout[0]
    try:
        card.read_record(ef06, ssn)
        locked = False
    except SecurityStatusNotSatisfied:
        locked = True
    except (StatusError, InvalidData):
        locked = False
    record3 = None if locked else _record3_tag(card, ef06)
    name_ext = None if locked else _reads(card, ef06, NAME_EXT) is not None
    return CardTraits(spec, ef0d, locked, record3, name_ext)


def fits(profile: CardProfile, traits: CardTraits) -> bool:
    """True when ``profile``'s data agrees with every trait the card showed."""
    if (profile.ef0d is not None) != traits.ef0d:
        return False
    if (profile.ef06.read == "pin") != traits.ef06_after_verify:
        return False
    if traits.ef06_record3_tag is not None:
        return profile.ef06_records[2] == traits.ef06_record3_tag
    if traits.name_ext is not None:
        return profile.has_name_ext == traits.name_ext
    return True


def choose(profiles: list[CardProfile], traits: CardTraits) -> CardProfile:
    """The first profile that fits, preferring one of the card's 规范版本; ``default`` when
    none fits."""
    fitting = [p for p in profiles if fits(p, traits)]
    same_spec = [p for p in fitting if p.spec_version == traits.spec_version]
    chosen = same_spec or fitting
    return chosen[0] if chosen else next(p for p in profiles if p.name == DEFAULT)


def detect_profile(transport: Transport) -> tuple[CardProfile, CardTraits]:
    """Probe the card on ``transport`` and choose among the shipped profiles."""
    profiles = shipped_profiles()
    default = next(p for p in profiles if p.name == DEFAULT)
    traits = probe(SocialSecurityCard(transport, default), profiles)
    return choose(profiles, traits), traits
