"""Fuzzing the simulated card OS: whatever bytes arrive — random bytes, or APDUs that are
nearly right (short and extended, every CLA the card knows and a few it does not, every INS
of its table, random P1-P2, data and Le) — the generic CardOS and the 社保卡 personality
answer with a status word and never raise (ISO/IEC 7816-4 §5.1.3: a card answers every
command it receives; an exception here is a card that leaves the reader)."""

from __future__ import annotations

import copy
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.cardos.card import CardOS
from simulator.factory import (
    SAMPLE_HOLDER,
    TEST_ROOTS,
    issue_blank_card,
    personalize_directly,
    sample_issuer,
)
from simulator.samples import SAMPLE_AID, sample_card
from simulator.sscard_card import CardKey, SocialSecurityCardOS
from sscard.identifiers import serial_number
from sscard.profile import load_profile

REGION = "371700"
PROFILE = load_profile("default")
SW1_ALLOWED = {0x61, *range(0x62, 0x70)}  # 61xx, 62xx…6Fxx (ISO/IEC 7816-4 §5.1.3), or 9000


@cache
def prototypes() -> tuple[CardOS, ...]:
    """The generic OS under T=0 and T=1, blank and personalized 社保卡s, short and extended."""
    made: list[CardOS] = [sample_card("T0"), sample_card("T1")]
    for protocol, extended in (("T0", True), ("T1", True), ("T1", False)):
        card = issue_blank_card(
            PROFILE.name,
            REGION,
            protocol=protocol,  # type: ignore[arg-type]
            extended_apdus=extended,
            serial=bytes.fromhex(f"0F0220000000000{len(made)}"),
        )
        if protocol == "T1":
            issuer = sample_issuer(PROFILE.name, REGION, serial_number(card.atr), TEST_ROOTS)
            personalize_directly(card, PROFILE.name, issuer, SAMPLE_HOLDER)
        made.append(card)
    # Every answer quirk at once, and a spec-3.00 card answering INTERNAL AUTHENTICATE.
    quirky = copy.deepcopy(made[-1])
    quirky.quirks = ("fci-on-select-ef", "strict-le", "always-61xx", "sfi-only", "max-le=64")
    internal = copy.deepcopy(made[2])
    assert isinstance(internal, SocialSecurityCardOS)
    internal.internal_key = CardKey("3DES", bytes(range(16)), 3, 3)
    return (*made, quirky, internal)


def cards() -> tuple[CardOS, ...]:
    """Fresh copies, powered on: every example starts from the same state (reproducible)."""
    fresh = tuple(copy.deepcopy(card) for card in prototypes())
    for card in fresh:
        card.power_on()
    return fresh


INS = sorted(set(SocialSecurityCardOS.INS_TABLE) | set(CardOS.INS_TABLE))
byte = st.integers(0, 255)
GET_CHALLENGE = bytes.fromhex("0084000008")  # commands after it get past the challenge


# The commands the cards know as they are sent (docs/chip-application.md §2-§5): CLA, INS,
# P1, P2. A near-valid APDU starts from one and may change its parameters.
KNOWN = [
    (0x00, 0xA4, 0x04, 0x00),  # SELECT by DF name
    (0x00, 0xA4, 0x00, 0x0C),  # SELECT by FID
    (0x00, 0xA4, 0x02, 0x0C),  # SELECT EF
    (0x00, 0xB0, 0x00, 0x00),  # READ BINARY
    (0x00, 0xB0, 0x88, 0x00),  # READ BINARY, SFI 8
    (0x00, 0xD6, 0x00, 0x00),  # UPDATE BINARY
    (0x00, 0xB2, 0x01, 0x04),  # READ RECORD by number
    (0x00, 0xB2, 0x08, 0x00),  # READ RECORD by identifier
    (0x00, 0xB2, 0x01, 0x2C),  # READ RECORD, SFI 5
    (0x00, 0xDC, 0x01, 0x04),  # UPDATE RECORD
    (0x00, 0xE2, 0x00, 0x00),  # APPEND RECORD
    (0x00, 0x84, 0x00, 0x00),  # GET CHALLENGE
    (0x00, 0xCA, 0x01, 0x01),  # GET DATA
    (0x00, 0xC0, 0x00, 0x00),  # GET RESPONSE
    (0x00, 0x82, 0x00, 0x08),  # EXTERNAL AUTHENTICATE
    (0x00, 0x20, 0x00, 0x00),  # VERIFY
    (0x80, 0x5E, 0x01, 0x00),  # CHANGE PIN
    (0x84, 0x24, 0x00, 0x00),  # PIN UNBLOCK
    (0x84, 0x24, 0x00, 0x01),  # PIN RESET
    (0x00, 0x88, 0x00, 0x00),  # INTERNAL AUTHENTICATE
]


CHANGE = st.integers(0, 3).map(lambda n: n == 0)  # each field changed one time in four


@st.composite
def near_valid_apdu(draw: st.DrawFn) -> bytes:
    cla, ins, p1, p2 = draw(st.sampled_from(KNOWN))
    if draw(CHANGE):
        cla = draw(st.sampled_from([0x00, 0x80, 0x84, 0x0C, 0xA0]) | byte)
    if draw(CHANGE):
        ins = draw(st.sampled_from(INS) | byte)
    if draw(CHANGE):
        p1 = draw(byte)
    if draw(CHANGE):
        p2 = draw(byte)
    header = bytes((cla, ins, p1, p2))
    data = draw(st.binary(max_size=300) | st.binary(min_size=250, max_size=600))
    le = draw(st.none() | st.integers(1, 65_536) | st.sampled_from([1, 8, 255, 256, 257]))
    extended = draw(st.booleans()) or len(data) > 255 or (le is not None and le > 256)
    if not extended:
        body = (bytes((len(data),)) + data if data else b"") + (
            b"" if le is None else bytes((le & 0xFF,))
        )
        return header + body
    body = b"\x00" + (len(data).to_bytes(2, "big") + data if data else b"")
    if le is not None:
        body += (le & 0xFFFF).to_bytes(2, "big")
    return header + body if (data or le is not None) else header


def assert_status_word(answer: bytes) -> None:
    assert len(answer) >= 2
    sw1, sw2 = answer[-2], answer[-1]
    assert sw1 in SW1_ALLOWED or (sw1, sw2) == (0x90, 0x00), answer[-2:].hex()


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        near_valid_apdu() | st.binary(max_size=80) | st.just(GET_CHALLENGE),
        min_size=1,
        max_size=8,
    )
)
def test_every_apdu_gets_a_status_word(apdus: list[bytes]) -> None:
    for card in cards():
        for raw in apdus:
            assert_status_word(card.process(raw))


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=256, max_size=700), st.sampled_from([0x00, 0x01]))
def test_extended_pin_reset_with_256_bytes_or_more_answers_wrong_length(
    data: bytes, p2: int
) -> None:
    card = cards()[3]  # a personalized 社保卡 taking extended APDUs
    assert isinstance(card, SocialSecurityCardOS) and card.extended_apdus
    card.process(GET_CHALLENGE)
    raw = bytes((0x84, 0x24, 0x00, p2, 0x00)) + len(data).to_bytes(2, "big") + data
    assert card.process(raw)[-2:] == b"\x67\x00"


def test_get_response_with_too_large_le_names_what_is_available() -> None:
    """ISO/IEC 7816-3 §12.2.2 (T=0, case 2): Le larger than the data available → ``6Cxx``
    with xx the available length; more than 255 bytes available cannot be said in SW2, so an
    extended Le beyond them is ``6700`` (wrong length, ISO/IEC 7816-4 §5.1.3) — never a
    status word made of the length (``6D00``, ``6FA0``)."""
    card = sample_card("T0")
    card.power_on()
    sw = card.process(bytes.fromhex("00A404000C") + SAMPLE_AID)[-2:]
    assert sw[0] == 0x61
    available = sw[1]
    too_many = bytes((0x00, 0xC0, 0x00, 0x00, available + 1))
    assert card.process(too_many)[-2:] == bytes((0x6C, available))

    big = sample_card("T1")
    big.extended_apdus = True
    big.power_on()
    for held in (256, 300, 0x3A0):
        big.data_objects[0x0101] = bytes(16 + held)
        first = big.process(bytes.fromhex("00CA010110"))  # GET DATA, Le 16: the rest waits
        assert first[-2:] == b"\x61\x00" and len(first) == 18
        answer = big.process(b"\x00\xc0\x00\x00\x00" + (held + 1).to_bytes(2, "big"))
        assert answer[-2:] == b"\x67\x00", answer[-2:].hex()
        rest = big.process(b"\x00\xc0\x00\x00\x00" + held.to_bytes(2, "big"))
        assert rest == bytes(held) + b"\x90\x00"  # the data were not lost
