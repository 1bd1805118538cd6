"""How the virtual 社保卡 answers through the real PC/SC stack (pyscard → pcscd → vpcd):
the public Z390Kylin log replayed byte for byte, the Henan INTERNAL AUTHENTICATE flow, the
host's genuineness check (sscard/authenticity.py), and the host reading cards with each
answer quirk (docs/chip-application.md §1, simulator/quirks.py).

Expected answers are literals from the public log (tests/z390_log.py) or computed by the
security module, never by the card under test."""

from __future__ import annotations

from pathlib import Path

import pytest

from apdu.pcsc import PcscTransport
from hsm_stub import cryptograms
from hsm_stub.cryptograms import CardFactors
from hsm_stub.keystore import Keystore
from hsm_stub.local import LocalSecurityModule
from hsm_stub.suites import TDES
from simulator.factory import (
    SAMPLE_HOLDER,
    TEST_ROOTS,
    issue_blank_card,
    personalize_directly,
    sample_issuer,
)
from simulator.sscard_card import CardKey, SocialSecurityCardOS
from sscard.authenticity import InternalAuthenticationNotSupported, check_internal_authentication
from sscard.card import SocialSecurityCard
from sscard.errors import CardNotGenuine
from sscard.identifiers import serial_number
from sscard.profile import load_profile
from tests.integration.conftest import ServeCard
from tests.z390_log import EXCHANGES, log_card

pytestmark = pytest.mark.pcsc
H = bytes.fromhex
REGION = "371700"
PROFILE = load_profile("default")
SELECT_SSSE = H("00A404000F7378312E73682EC9E7BBE1B1A3D5CF")


def personalized(
    protocol: str = "T0", *, internal_root: bytes | None = None, quirks: tuple[str, ...] = ()
) -> SocialSecurityCardOS:
    """A personalized default-profile card; with ``internal_root``, a spec-3.00 card whose
    internal-authentication key is that root diversified by the card's factors."""
    card = issue_blank_card(PROFILE, REGION, protocol=protocol)  # type: ignore[arg-type]
    sn = serial_number(card.atr)
    personalize_directly(
        card, PROFILE, sample_issuer(PROFILE, REGION, sn, TEST_ROOTS), SAMPLE_HOLDER
    )
    if internal_root is not None:
        factors = CardFactors.for_card(sn, REGION, PROFILE.diversification_levels)
        key = cryptograms.derive_card_key(TDES, internal_root, factors)
        card.internal_key = CardKey("3DES", key, 3, 3)
    card.quirks = quirks
    return card


@pytest.fixture
def hsm(tmp_path: Path) -> LocalSecurityModule:
    return LocalSecurityModule(Keystore.create_test(tmp_path / "ks.json"))


def test_the_public_log_replays_byte_for_byte(serve_card: ServeCard) -> None:
    served = serve_card(log_card("T0"))
    with PcscTransport(served.reader, t0_handling=False) as transport:
        for command, expected in EXCHANGES:
            assert transport.transmit_raw(H(command)).hex().upper() == expected, command


def test_internal_authenticate_is_not_supported_on_a_card_without_the_key(
    serve_card: ServeCard, hsm: LocalSecurityModule
) -> None:
    served = serve_card(personalized())  # the factory's card: no internal key today
    with PcscTransport(served.reader, t0_handling=False) as transport:
        transport.transmit_raw(SELECT_SSSE)
        assert transport.transmit_raw(H("0088000008A1B2C3D4E5F60718")).hex() == "6d00"
    with PcscTransport(served.reader) as transport:
        card = SocialSecurityCard(transport, PROFILE, hsm)
        card.identify()
        with pytest.raises(InternalAuthenticationNotSupported, match="不支持内部认证"):
            check_internal_authentication(card, hsm)


def test_henan_internal_authenticate_flow(serve_card: ServeCard, hsm: LocalSecurityModule) -> None:
    """SI_3rdCard ``SSCARDCtrl.cpp`` (iReadCardBas_HSM_Step1) as sent by its
    ``GWI_SSSE_SC.cpp``: SELECT SSSE, SELECT EF05 with P1 02, GET CHALLENGE twice, then
    ``00 88 00 00 10`` + second challenge ‖ first, no Le; it keeps the answer's first 8
    bytes and compares them with its security module's."""
    served = serve_card(personalized(internal_root=TEST_ROOTS["internal"][1]))
    with PcscTransport(served.reader, t0_handling=False) as transport:
        assert transport.transmit_raw(SELECT_SSSE) == H("6118")
        assert transport.transmit_raw(H("00C0000018"))[-2:] == H("9000")
        assert transport.transmit_raw(H("00A4020002EF05")) == H("9000")
        first = transport.transmit_raw(H("0084000008"))
        second = transport.transmit_raw(H("0084000008"))
        assert first[-2:] == second[-2:] == H("9000")
        data = second[:8] + first[:8]
        assert transport.transmit_raw(H("0088000010") + data) == H("6110")
        answer = transport.transmit_raw(H("00C0000010"))
        assert answer[-2:] == H("9000") and len(answer) == 18
        factors = CardFactors.for_card(serial_number(transport.atr), REGION)
        assert answer[:8] == hsm.internal_auth("internal", factors, data)[:8]


@pytest.mark.parametrize("protocol", ["T0", "T1"])
def test_genuine_card_passes_the_host_check(
    serve_card: ServeCard, hsm: LocalSecurityModule, protocol: str
) -> None:
    served = serve_card(personalized(protocol, internal_root=TEST_ROOTS["internal"][1]))
    with PcscTransport(served.reader) as transport:
        card = SocialSecurityCard(transport, PROFILE, hsm)
        card.identify()
        check_internal_authentication(card, hsm)


def test_card_with_another_internal_key_is_refused(
    serve_card: ServeCard, hsm: LocalSecurityModule
) -> None:
    served = serve_card(personalized(internal_root=b"A COUNTERFEIT K!"))
    with PcscTransport(served.reader) as transport:
        card = SocialSecurityCard(transport, PROFILE, hsm)
        card.identify()
        with pytest.raises(CardNotGenuine, match="不是本发卡机构的真卡"):
            check_internal_authentication(card, hsm)


# The host reader (sscard/card.py) against each answer quirk; max-le is left out: a card
# that answers at most N bytes per read needs a reader that adapts its Le (not this part).
@pytest.mark.parametrize(
    "quirks",
    [(), ("fci-on-select-ef",), ("strict-le",), ("always-61xx",), ("sfi-only",)],
    ids=lambda q: "+".join(q) or "default",
)
def test_host_reads_every_answer_variant(
    serve_card: ServeCard, hsm: LocalSecurityModule, quirks: tuple[str, ...]
) -> None:
    served = serve_card(personalized(quirks=quirks, internal_root=TEST_ROOTS["internal"][1]))
    with PcscTransport(served.reader) as transport:
        card = SocialSecurityCard(transport, PROFILE, hsm)
        card.identify()
        assert card.read_holder() == SAMPLE_HOLDER
        assert card.read_issuer().card_id[:3] == H(REGION)
        check_internal_authentication(card, hsm)
