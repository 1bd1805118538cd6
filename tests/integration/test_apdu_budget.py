"""The APDU budget of personalization + verification through pcscd + vpcd (issue 14): the
default profile on T=0 with extended APDUs sends at most 40 APDUs, counted by the virtual
reader, plus the two of INTERNAL AUTHENTICATE (issue 12: a case-4 command and its GET
RESPONSE on T=0) which spec-3.00 profiles add. Verification keeps its strength: a card with
one wrong key or one wrong byte still fails it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from apdu.pcsc import PcscTransport
from apdu.trace import TraceEvent
from hsm_stub.keystore import Keystore
from hsm_stub.local import LocalSecurityModule
from simulator.cardos.filesystem import RecordEF, TransparentEF
from simulator.factory import SAMPLE_HOLDER, TEST_ROOTS, issue_blank_card, sample_photo
from sscard.card import SocialSecurityCard
from sscard.errors import CardAuthenticationFailed, VerificationFailed
from sscard.profile import load_profile
from tests.chip_steps import PIN, personalize, personalize_and_verify
from tests.integration.conftest import ServeCard

pytestmark = pytest.mark.pcsc
REGION = "371700"
INTERNAL_AUTH_APDUS = 2  # 00 88 … and its GET RESPONSE (T=0)


@pytest.fixture
def hsm(tmp_path: Path) -> LocalSecurityModule:
    return LocalSecurityModule(Keystore.create_test(tmp_path / "ks.json"))


def test_default_profile_within_40_apdus(serve_card: ServeCard, hsm: LocalSecurityModule) -> None:
    profile = load_profile("default")
    served = serve_card(issue_blank_card(profile.name, REGION, protocol="T0"))
    with PcscTransport(served.reader) as transport:
        card = SocialSecurityCard(transport, profile, hsm, region_code=REGION)
        steps = personalize_and_verify(
            card, REGION, sample_photo(size=4096), lambda: served.bridge.apdu_count
        )
    assert steps == {
        "identify": 1,  # SELECT SSSE, P2 = 0C: no FCI
        "update key": 2,  # GET CHALLENGE, EXTERNAL AUTHENTICATE
        "EF05": 7,  # UPDATE RECORD through the SFI, no SELECT
        "EF06": 7,
        "photo": 1,  # one extended UPDATE BINARY through the SFI
        "PIN reset": 2,
        # VERIFY, 7 + 7 READ RECORD, 1 READ BINARY, read and master keys (2 each), INTERNAL
        # AUTHENTICATE (2); SSSE stays selected, the update key was proven by the writes
        "verify": 1 + 14 + 1 + 4 + INTERNAL_AUTH_APDUS,
    }
    assert profile.internal_key is not None
    assert sum(steps.values()) - INTERNAL_AUTH_APDUS <= 40


@pytest.mark.parametrize("declared", [True, False])
def test_short_mode_decided_once(
    serve_card: ServeCard, hsm: LocalSecurityModule, declared: bool
) -> None:
    """A card that takes no extended APDU: none is tried when the profile says so, and one
    only — refused with 6700, then remembered for the verification — when it does not."""
    profile = replace(load_profile("default"), extended_apdus=not declared)
    card_os = issue_blank_card(profile.name, REGION, protocol="T0", extended_apdus=False)
    served = serve_card(card_os)
    with PcscTransport(served.reader) as transport:
        card = SocialSecurityCard(transport, profile, hsm, region_code=REGION)
        refused: list[TraceEvent] = []
        transport.add_observer(lambda e: refused.append(e) if e.sw == 0x6700 else None)
        steps = personalize_and_verify(
            card, REGION, sample_photo(size=4096), lambda: served.bridge.apdu_count
        )
    assert len(refused) == (0 if declared else 1)
    chunks = -(-4096 // profile.photo_chunk)  # 255-byte UPDATE BINARY, the first through the SFI
    assert steps["photo"] == chunks + (0 if declared else 1)


@pytest.mark.parametrize("where", ["photo", "name"])
def test_one_wrong_byte_still_fails_verification(
    serve_card: ServeCard, hsm: LocalSecurityModule, where: str
) -> None:
    """A byte changed on the card after its write, in the photo or in a record of EF06."""
    profile = load_profile("default")
    card_os = issue_blank_card(profile.name, REGION)
    served = serve_card(card_os)
    photo = sample_photo(size=4096)
    files = {f.fid: f for f in card_os.mf.walk()}
    with PcscTransport(served.reader) as transport:
        card = SocialSecurityCard(transport, profile, hsm, region_code=REGION)
        issuer = personalize(card, REGION, photo, lambda step: None)
        ef08, ef06 = files[profile.ef08.fid], files[profile.ef06.fid]
        assert isinstance(ef08, TransparentEF) and isinstance(ef06, RecordEF)
        if where == "photo":
            ef08.data[100] ^= 0x01
        else:
            ef06.records[1][2] ^= 0x01  # 姓名, record 2 of the default layout
        with pytest.raises(VerificationFailed) as info:
            card.verify(issuer, SAMPLE_HOLDER, photo, pin=PIN)
    assert info.value.mismatches == [f"{where}: differs"]


def test_one_wrong_key_still_fails_verification(
    serve_card: ServeCard, hsm: LocalSecurityModule
) -> None:
    """Every key is still authenticated: a card whose master key alone is wrong fails."""
    profile = load_profile("default")
    roots = dict(TEST_ROOTS)
    alg, value = roots[profile.master_key.label]
    roots[profile.master_key.label] = (alg, bytes(b ^ 0x55 for b in value))
    served = serve_card(issue_blank_card(profile.name, REGION, roots=roots))
    photo = sample_photo(size=4096)
    with PcscTransport(served.reader) as transport:
        card = SocialSecurityCard(transport, profile, hsm, region_code=REGION)
        issuer = personalize(card, REGION, photo, lambda step: None)
        with pytest.raises(CardAuthenticationFailed) as info:
            card.verify(issuer, SAMPLE_HOLDER, photo, pin=PIN)
    assert info.value.key_id == profile.master_key.id
