"""The 社保卡 cryptograms, as pure functions of clear keys — the one implementation that the
security-module backends, the PSAM and the simulated card all call (docs/chip-application.md §3-§5).

* Card factors (§4): card = SN (last 8 ATR bytes); city = ASCII(6-digit region code) ‖ "sx";
  province = ASCII(2-digit province code) ‖ "0000" ‖ "sh". Per-card key =
  ``Div(Div(Div(K_root, province), city), card)``; regions that diversify two levels only
  (card ‖ city, JSCardKiosks' ``BFDE 48``) have no province factor:
  ``Div(Div(K_root, city), card)``.
* External authentication (§4): SK = session_key(K_card, R); E = encrypt(SK, A); the command
  data is ``E ‖ A``.
* 84-class command MAC (§4, HDOS_VC6): MAC under SK of ``header with Lc counting the MAC ‖
  data``, padding method 2, IV 0, first 4 bytes. The caller passes that MAC input.
* PIN reset block (§2): ``encrypt(K_card, 03 ‖ PIN BCD ‖ 80 00…)`` ‖ MAC of
  ``84 24 00 01 Lc ‖ that`` under SK.
* INTERNAL AUTHENTICATE (§4, spec-3.00 cards, [ours]): the card answers
  ``encrypt(K_card_internal, data)`` (ECB over the terminal's random blocks) for
  ``00 88 00 00 Lc data``; a terminal checks it with the security module.
* 卡识别码 MAC (§3): MAC algorithm 3 (3DES suite) over the first 12 bytes, IV 0, under IRK
  diversified once by the SN, first 4 bytes.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from hsm_stub.errors import BadInput
from hsm_stub.suites import CipherSuite

MAC_LENGTH = 4
PIN_RESET_HEADER = bytes.fromhex("84240001")


DIVERSIFICATION_LEVELS = (2, 3)


@dataclass(frozen=True)
class CardFactors:
    """The 8-byte diversification factors of one card: card, city and — for three-level
    regions — province (None where a region diversifies two levels only)."""

    card: bytes
    city: bytes
    province: bytes | None

    def __post_init__(self) -> None:
        for name, value in (("card", self.card), ("city", self.city), ("province", self.province)):
            if value is not None and len(value) != 8:
                raise BadInput(f"the {name} factor must be 8 bytes")

    @classmethod
    def for_card(cls, sn: bytes, region_code: str, levels: int = 3) -> CardFactors:
        """Factors from the card SN and the 6-digit administrative region code, for a
        derivation of ``levels`` (3: card, city, province; 2: card, city) levels."""
        if len(sn) != 8:
            raise BadInput(f"a card serial number is 8 bytes, got {len(sn)}")
        if not re.fullmatch(r"\d{6}", region_code):
            raise BadInput("a region code is 6 digits")
        if levels not in DIVERSIFICATION_LEVELS:
            raise BadInput(f"diversification has 2 or 3 levels, not {levels}")
        return cls(
            card=sn,
            city=region_code.encode("ascii") + b"sx",
            province=region_code[:2].encode("ascii") + b"0000sh" if levels == 3 else None,
        )

    @property
    def levels(self) -> int:
        return len(self.chain())

    def chain(self) -> tuple[bytes, ...]:
        """Card-first order, as a PSAM takes them (docs/chip-application.md §4)."""
        if self.province is None:
            return self.card, self.city
        return self.card, self.city, self.province

    def to_bytes(self) -> bytes:
        return b"".join(self.chain())

    @classmethod
    def from_bytes(cls, raw: bytes) -> CardFactors:
        if len(raw) not in (16, 24):
            raise BadInput("card factors are 16 or 24 bytes (card ‖ city [‖ province])")
        return cls(raw[:8], raw[8:16], raw[16:] or None)


def derive_card_key(suite: CipherSuite, root: bytes, factors: CardFactors) -> bytes:
    """Derivation from the root down: root → province → city → card (three levels), or
    root → city → card (two). The levels above the card are the same for every card of a
    region, so they are derived once per root and region (:func:`_region_key`)."""
    return suite.diversify(_region_key(suite, root, factors.chain()[1:]), factors.card)


@functools.lru_cache(maxsize=64)
def _region_key(suite: CipherSuite, root: bytes, region: tuple[bytes, ...]) -> bytes:
    """The city key of a region (``region`` card-first without the card: city [, province]),
    kept in memory beside the root keys it comes from: never written, never logged."""
    key = root
    for factor in reversed(region):
        key = suite.diversify(key, factor)
    return key


def _check_block(suite: CipherSuite, what: str, value: bytes) -> None:
    if len(value) != suite.block:
        raise BadInput(f"{what} must be {suite.block} bytes for {suite.name}, got {len(value)}")


def external_auth_data(
    suite: CipherSuite, card_key: bytes, challenge: bytes, auth_factor: bytes
) -> bytes:
    """``E ‖ A`` for EXTERNAL AUTHENTICATE (``00 82 00 KID Lc E ‖ A``)."""
    _check_block(suite, "the authentication factor", auth_factor)
    session = suite.session_key(card_key, challenge)
    return suite.encrypt(session, auth_factor) + auth_factor


def command_mac(suite: CipherSuite, card_key: bytes, challenge: bytes, mac_input: bytes) -> bytes:
    """The 4-byte MAC of an 84-class command."""
    session = suite.session_key(card_key, challenge)
    return suite.mac(session, mac_input)[:MAC_LENGTH]


def pin_block(suite: CipherSuite, pin: str) -> bytes:
    """``03 ‖ PIN BCD ‖ 80 00…`` for a 6-digit PIN (docs/chip-application.md §2)."""
    if not re.fullmatch(r"\d{6}", pin):
        raise BadInput("a PIN is 6 digits")
    block = bytes((3,)) + bytes.fromhex(pin) + b"\x80"
    return block + bytes(suite.block - len(block))


def pin_reset_data(suite: CipherSuite, card_key: bytes, challenge: bytes, pin: str) -> bytes:
    """The data field of PIN RESET ``84 24 00 01 Lc <enc> <MAC>``."""
    enc = suite.encrypt(card_key, pin_block(suite, pin))
    lc = len(enc) + MAC_LENGTH
    mac = command_mac(suite, card_key, challenge, PIN_RESET_HEADER + bytes((lc,)) + enc)
    return enc + mac


def check_internal_auth_data(suite: CipherSuite, data: bytes) -> None:
    """INTERNAL AUTHENTICATE takes one or two cipher blocks of the terminal's random."""
    if len(data) not in (suite.block, 2 * suite.block):
        raise BadInput(f"internal authentication takes 1 or 2 blocks of {suite.block} bytes")


def internal_auth_response(suite: CipherSuite, card_key: bytes, data: bytes) -> bytes:
    """The card's answer to INTERNAL AUTHENTICATE: ``data`` (one or two blocks of the
    terminal's random) enciphered ECB under the card's internal-authentication key."""
    check_internal_auth_data(suite, data)
    return suite.encrypt(card_key, data)


def card_id_mac(suite: CipherSuite, irk_root: bytes, sn: bytes, data12: bytes) -> bytes:
    """The 4-byte MAC that ends the 16-byte 卡识别码."""
    if len(data12) != 12:
        raise BadInput(f"the 卡识别码 MAC covers 12 bytes, got {len(data12)}")
    if len(sn) != 8:
        raise BadInput(f"a card serial number is 8 bytes, got {len(sn)}")
    card_irk = suite.diversify(irk_root, sn)
    return suite.mac(card_irk, data12)[:MAC_LENGTH]
