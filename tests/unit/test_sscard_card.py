"""Card operations against the virtual 社保卡, in process (the PC/SC path is covered by
tests/integration/test_sscard_pcsc.py)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from apdu.command import Command
from apdu.errors import CardRemoved
from apdu.inprocess import InProcessTransport
from apdu.status import PinBlocked, SecureMessagingError, SecurityStatusNotSatisfied, WrongPin
from apdu.trace import RecordingTrace
from hsm_stub.keystore import Keystore
from hsm_stub.local import LocalSecurityModule
from simulator.factory import (
    SAMPLE_HOLDER,
    TEST_ROOTS,
    damage_card,
    issue_blank_card,
    personalize_directly,
    sample_issuer,
    sample_photo,
)
from simulator.samples import sample_card
from simulator.sscard_card import SocialSecurityCardOS, Tearing
from sscard.card import SocialSecurityCard
from sscard.errors import (
    CardAuthenticationFailed,
    CardNotGenuine,
    InternalAuthenticationNotSupported,
    InvalidData,
    NotASocialSecurityCard,
    VerificationFailed,
)
from sscard.profile import CardProfile, load_profile
from sscard.public import read_public

REGION = "371700"
DEFAULT = load_profile("default")


@pytest.fixture
def hsm(tmp_path: Path) -> LocalSecurityModule:
    return LocalSecurityModule(Keystore.create_test(tmp_path / "ks.json"))


class Station:
    def __init__(self, card: SocialSecurityCardOS, profile: CardProfile, hsm: LocalSecurityModule):
        self.os = card
        self.transport = InProcessTransport(card)
        self.trace = RecordingTrace()
        self.transport.add_observer(self.trace)
        self.transport.connect()
        self.card = SocialSecurityCard(self.transport, profile, hsm, region_code=REGION)
        self.profile = profile

    def personalize(self, photo: bytes | None = None) -> None:
        issuer = replace(  # the host profile says which spec version it writes
            sample_issuer(self.profile.name, REGION, self.card.sn, TEST_ROOTS),
            spec_version=self.profile.spec_version,
        )
        self.card.identify()
        self.card.external_authenticate(self.profile.update_key)
        self.card.write_issuer(issuer)
        self.card.write_holder(SAMPLE_HOLDER)
        if photo is not None:
            self.card.write_photo(photo)
        self.issuer = issuer

    def count(self, ins: int) -> int:
        return sum(1 for e in self.trace.events if e.ins == ins)


def station(hsm: LocalSecurityModule, profile: CardProfile = DEFAULT, **kw: object) -> Station:
    return Station(issue_blank_card(profile.name, REGION, **kw), profile, hsm)  # type: ignore[arg-type]


def test_blank_card_personalized_and_verified(hsm: LocalSecurityModule) -> None:
    s = station(hsm)
    photo = sample_photo()
    s.personalize(photo)
    s.card.reset_pin("654321")
    checks = s.card.verify(s.issuer, SAMPLE_HOLDER, photo, pin="654321")
    assert "photo: ok" in checks
    assert [c for c in checks if c.startswith("key")] == [
        "key 04 (update): authenticated",
        "key 0A (read): authenticated",
        "key 00 (mk): authenticated",
    ]
    assert checks[-1] == "internal authentication (internal): ok"
    public = read_public(s.card)
    assert public["name"] == "张三" and public["ssn"] == SAMPLE_HOLDER.ssn
    assert public["checks"] == {
        "card_number_check": True,
        "ssn_check": True,
        "card_id_matches_sn": True,
    }


@pytest.mark.parametrize("reselect", [False, True])
def test_verification_reselects_and_reauthenticates_only_when_the_profile_says(
    hsm: LocalSecurityModule, reselect: bool
) -> None:
    """In the session of the writes SSSE stays selected and the update key, proven by them,
    is not authenticated again; ``reselect_before_auth`` restores a fresh state per key."""
    s = station(hsm, replace(DEFAULT, reselect_before_auth=reselect))
    s.personalize()
    start = len(s.trace.events)
    checks = s.card.verify(s.issuer, SAMPLE_HOLDER)
    sent = s.trace.events[start:]
    selects = [e.command for e in sent if e.ins == 0xA4]
    authenticated = [e.command[6:8] for e in sent if e.ins == 0x82]
    assert sum(c.endswith("authenticated") for c in checks) == 3
    if reselect:
        assert selects == ["00A4040C0F" + DEFAULT.ssse_aid.hex().upper()] * 3
        assert authenticated == ["04", "0A", "00"]
    else:
        assert selects == [] and authenticated == ["0A", "00"]


def test_verification_in_a_new_session_selects_ssse_and_authenticates_every_key(
    hsm: LocalSecurityModule,
) -> None:
    s = station(hsm)
    s.personalize()
    s.transport.reconnect()  # a reset: SSSE is no longer current
    start = len(s.trace.events)
    s.card.verify(s.issuer, SAMPLE_HOLDER)
    sent = s.trace.events[start:]
    assert [e.ins for e in sent][:1] == [0xA4]
    assert [e.command[6:8] for e in sent if e.ins == 0x82] == ["0A", "00"]  # 04 proven already


def test_writes_need_the_update_key_and_reselect_clears_it(hsm: LocalSecurityModule) -> None:
    s = station(hsm)
    s.card.identify()
    issuer = sample_issuer(DEFAULT.name, REGION, s.card.sn, TEST_ROOTS)
    with pytest.raises(SecurityStatusNotSatisfied):
        s.card.write_issuer(issuer)
    s.card.external_authenticate(DEFAULT.read_key)  # the wrong key for writing
    with pytest.raises(SecurityStatusNotSatisfied):
        s.card.write_issuer(issuer)
    s.card.external_authenticate(DEFAULT.update_key)
    s.card.write_issuer(issuer)
    s.card.select_ssse()
    with pytest.raises(SecurityStatusNotSatisfied):
        s.card.write_holder(SAMPLE_HOLDER)


def test_wrong_key_fails_once_and_stops(hsm: LocalSecurityModule) -> None:
    # a card issued from other root keys: our cryptogram is wrong for it
    other = {k: (alg, bytes(b ^ 0x55 for b in v)) for k, (alg, v) in TEST_ROOTS.items()}
    s = station(hsm, roots=other)
    s.card.identify()
    with pytest.raises(CardAuthenticationFailed) as info:
        s.card.external_authenticate(DEFAULT.update_key)
    assert info.value.tries_left == 2 and info.value.key_id == 0x04
    assert "2" in str(info.value) and "not retried" in str(info.value)
    assert s.count(0x82) == 1  # no blind retry
    assert s.os.keys[0x04].tries == 2  # down by one, not to zero
    for _ in range(2):
        with pytest.raises(CardAuthenticationFailed):
            s.card.external_authenticate(DEFAULT.update_key)
    with pytest.raises(CardAuthenticationFailed, match="locked") as info:
        s.card.external_authenticate(DEFAULT.update_key)
    assert info.value.tries_left == 0


def test_good_authentication_restores_the_counter(hsm: LocalSecurityModule) -> None:
    s = station(hsm)
    s.os.keys[0x04].tries = 1
    s.card.identify()
    s.card.external_authenticate(DEFAULT.update_key)
    assert s.os.keys[0x04].tries == 3


def test_pin_lifecycle(hsm: LocalSecurityModule) -> None:
    s = station(hsm)
    s.card.identify()
    assert s.card.pin_tries_left() == 3
    with pytest.raises(WrongPin) as info:
        s.card.verify_pin("000000")
    assert info.value.tries_left == 2
    assert s.card.pin_tries_left() == 2
    s.card.verify_pin("123456")  # the default PIN; restores the counter
    s.card.change_pin("123456", "246802")
    for left in (2, 1):
        with pytest.raises(WrongPin) as info:
            s.card.verify_pin("123456")
        assert info.value.tries_left == left
    with pytest.raises(PinBlocked):
        s.card.verify_pin("123456")
    with pytest.raises(PinBlocked):
        s.card.verify_pin("246802")  # blocked even for the right PIN
    s.card.unblock_pin()
    s.card.verify_pin("246802")
    s.card.reset_pin("975310")
    with pytest.raises(WrongPin):
        s.card.verify_pin("246802")
    s.card.verify_pin("975310")
    with pytest.raises(InvalidData, match="6 位数字"):
        s.card.verify_pin("12345")


def test_pin_reset_with_a_bad_mac_is_refused(hsm: LocalSecurityModule) -> None:
    s = station(hsm)
    s.card.identify()
    challenge = s.card.get_challenge()
    block = hsm.pin_reset_block("pin", s.card.factors, challenge, "111111")
    forged = block[:-1] + bytes((block[-1] ^ 1,))
    with pytest.raises(SecureMessagingError):
        s.card.send(Command(0x84, 0x24, 0x00, 0x01, forged))
    s.card.verify_pin("123456")  # unchanged


@pytest.mark.parametrize(
    "forms",
    [("sfi",), ("tag",), ("number",), ("tag", "number"), ("number", "sfi")],
)
def test_reads_fall_back_to_the_form_the_card_accepts(
    hsm: LocalSecurityModule, forms: tuple[str, ...]
) -> None:
    card = issue_blank_card(DEFAULT.name, REGION, forms=forms)
    issuer = sample_issuer(DEFAULT.name, REGION, card.atr[-8:], TEST_ROOTS)
    personalize_directly(card, DEFAULT.name, issuer, SAMPLE_HOLDER)
    s = Station(card, DEFAULT, hsm)
    s.card.identify()
    assert s.card.read_holder() == SAMPLE_HOLDER
    assert s.card.read_issuer() == issuer
    assert s.card._form[DEFAULT.ef06.fid] in forms


def test_not_a_social_security_card(hsm: LocalSecurityModule) -> None:
    transport = InProcessTransport(sample_card())
    transport.connect()
    with pytest.raises(NotASocialSecurityCard, match="not a social security card"):
        SocialSecurityCard(transport, DEFAULT).identify()
    blank = issue_blank_card(DEFAULT.name, REGION)
    damage_card(blank, "no-ssse")
    s = Station(blank, DEFAULT, hsm)
    with pytest.raises(NotASocialSecurityCard):
        s.card.identify()


def test_corrupt_ef05_is_an_unreadable_record(hsm: LocalSecurityModule) -> None:
    card = issue_blank_card(DEFAULT.name, REGION)
    personalize_directly(
        card,
        DEFAULT.name,
        sample_issuer(DEFAULT.name, REGION, card.atr[-8:], TEST_ROOTS),
        SAMPLE_HOLDER,
    )
    damage_card(card, "corrupt-ef05")
    s = Station(card, DEFAULT, hsm)
    s.card.identify()
    with pytest.raises(InvalidData, match="card_id"):
        s.card.read_issuer()
    assert s.card.read_holder() == SAMPLE_HOLDER  # EF06 is intact


@pytest.mark.parametrize(("mode", "detected"), [("old", True), ("partial", True), ("new", False)])
def test_torn_write_is_detected_on_verification(
    hsm: LocalSecurityModule, mode: str, detected: bool
) -> None:
    s = station(hsm)
    s.card.identify()
    s.card.external_authenticate(DEFAULT.update_key)
    issuer = sample_issuer(DEFAULT.name, REGION, s.card.sn, TEST_ROOTS)
    s.card.write_issuer(issuer)
    holder = replace(SAMPLE_HOLDER, name="欧阳" * 7 + "娜")  # 30 GBK bytes: fills 姓名
    s.os.tearing = Tearing(mode, after_writes=1)  # type: ignore[arg-type]
    with pytest.raises(CardRemoved):
        s.card.write_holder(holder)  # the second EF06 record (姓名) is torn
    s.transport.reconnect()
    if detected:
        with pytest.raises(VerificationFailed) as info:
            s.card.verify(issuer, holder)
        assert "name: differs" in info.value.mismatches
    else:
        # the torn record landed, but the records after it were never written
        with pytest.raises(VerificationFailed) as info:
            s.card.verify(issuer, holder)
        assert not any(m.startswith("name:") for m in info.value.mismatches)
        assert any(m.startswith("gender") for m in info.value.mismatches)


def test_bad_input_is_refused_before_anything_is_written(hsm: LocalSecurityModule) -> None:
    s = station(hsm)
    s.card.identify()
    s.card.external_authenticate(DEFAULT.update_key)
    before = s.os.to_dict()
    cases = [
        (replace(SAMPLE_HOLDER, name="王𪚥"), "U\\+2A6A5"),
        (replace(SAMPLE_HOLDER, ssn="110105194912310021"), "校验位"),
        (replace(SAMPLE_HOLDER, gender="M"), "性别"),
        (replace(SAMPLE_HOLDER, name="阿" * 26), "超过"),
    ]
    for holder, reason in cases:
        with pytest.raises(InvalidData, match=reason):
            s.card.write_holder(holder)
    with pytest.raises(InvalidData, match="JPEG"):
        s.card.write_photo(b"GIF89a....")
    with pytest.raises(InvalidData, match="上限"):
        s.card.write_photo(b"\xff\xd8" + bytes(5000))
    assert s.os.to_dict() == before
    assert s.count(0xDC) == 0 and s.count(0xD6) == 0


def test_long_names_continue_in_the_extension(hsm: LocalSecurityModule) -> None:
    s = station(hsm)
    s.personalize()
    long_name = "欧阳" + "娜" * 18  # 40 bytes of GBK: 30 in 姓名, 10 in 姓名扩展
    holder = replace(SAMPLE_HOLDER, name=long_name)
    s.card.write_holder(holder)
    assert s.card.read_holder().name == long_name


def test_pin_read_profile_needs_the_pin_and_pads_with_spaces(hsm: LocalSecurityModule) -> None:
    profile = load_profile("pin-read")
    s = station(hsm, profile)
    s.personalize()
    s.card.select_ssse()
    with pytest.raises(SecurityStatusNotSatisfied):
        s.card.read_holder()
    with pytest.raises(InvalidData, match="PIN"):
        read_public(s.card)
    data = read_public(s.card, pin="888888")
    assert data["name"] == "张三" and data["spec_version"] == "2.00"
    ef06 = s.os.mf.children[0].children[1]  # type: ignore[attr-defined]
    assert bytes(ef06.records[1]).endswith(b"\x20" * 26)


def test_photo_in_short_chunks_when_extended_apdus_are_refused(hsm: LocalSecurityModule) -> None:
    s = station(hsm, extended_apdus=False)
    photo = sample_photo(size=4096)
    s.personalize(photo)
    assert s.count(0xD6) == 1 + 17  # one refused extended try, then 4096 / 255 rounded up
    assert s.card.read_photo() == photo


@pytest.mark.parametrize("version", ["1.00", "2.00", "3.00"])
def test_spec_versions(hsm: LocalSecurityModule, version: str) -> None:
    profile = replace(DEFAULT, spec_version=version)
    s = station(hsm, profile)
    s.personalize()
    assert s.card.read_issuer().spec_version == version


def test_sm4_suite_end_to_end(tmp_path: Path) -> None:
    # The same card operations with SM4 keys (16-byte blocks): external authentication,
    # the 84-class MACs, the PIN reset block and the 卡识别码 MAC all follow the key.
    store = Keystore.create(tmp_path / "sm4.json", bytes(range(16)))
    roots = {}
    for label, usage in (
        ("mk", "master"),
        ("update", "external-auth"),
        ("read", "external-auth"),
        ("irk", "card-id-mac"),
        ("pin", "pin"),
        ("internal", "internal-auth"),  # the spec-3.00 card's INTERNAL AUTHENTICATE key
    ):
        value = hashlib.sha256(label.encode()).digest()[:16]
        store.put(label, "SM4", usage, value)
        roots[label] = ("SM4", value)
    profile = replace(DEFAULT, algorithm="SM4")
    s = Station(
        issue_blank_card(profile.name, REGION, roots=roots), profile, LocalSecurityModule(store)
    )
    issuer = sample_issuer(profile.name, REGION, s.card.sn, roots)
    s.card.identify()
    s.card.external_authenticate(profile.update_key)
    s.card.write_issuer(issuer)
    s.card.write_holder(SAMPLE_HOLDER)
    s.card.reset_pin("314159")
    checks = s.card.verify(issuer, SAMPLE_HOLDER, pin="314159")
    assert checks[-2].endswith("authenticated")
    assert checks[-1] == "internal authentication (internal): ok"  # the SM4 internal key
    auth = next(e for e in s.trace.events if e.ins == 0x82)
    assert auth.command_length == 5 + 32  # E ‖ A of two 16-byte blocks
    s.card.unblock_pin()
    assert s.card.pin_tries_left() == 3


OLD_PIN, NEW_PIN = "123456", "975310"


def pin_is(s: Station, pin: str) -> None:
    """The card's PIN is ``pin``, its counter full: never a mix of two PINs."""
    assert s.os.pin.value == bytes.fromhex(pin)
    assert s.os.pin.tries == s.os.pin.max_tries
    s.card.verify_pin(pin)


@pytest.mark.parametrize(
    ("mode", "after"), [("old", OLD_PIN), ("partial", OLD_PIN), ("new", NEW_PIN)]
)
def test_torn_pin_reset_leaves_the_old_or_the_new_pin(
    hsm: LocalSecurityModule, mode: str, after: str
) -> None:
    s = station(hsm)
    s.card.identify()
    s.card.select_ssse()
    s.os.tearing = Tearing(mode)  # type: ignore[arg-type]
    with pytest.raises(CardRemoved):
        s.card.reset_pin(NEW_PIN)
    s.transport.reconnect()
    s.card.select_ssse()
    pin_is(s, after)
    s.card.reset_pin(NEW_PIN)  # redoing the reset completes it
    pin_is(s, NEW_PIN)


@pytest.mark.parametrize(
    ("mode", "after"), [("old", OLD_PIN), ("partial", OLD_PIN), ("new", NEW_PIN)]
)
def test_torn_pin_change_leaves_the_old_or_the_new_pin(
    hsm: LocalSecurityModule, mode: str, after: str
) -> None:
    s = station(hsm)
    s.card.identify()
    s.card.select_ssse()
    s.os.tearing = Tearing(mode, kind="pin")  # type: ignore[arg-type]
    with pytest.raises(CardRemoved):
        s.card.change_pin(OLD_PIN, NEW_PIN)
    s.transport.reconnect()
    s.card.select_ssse()
    pin_is(s, after)


@pytest.mark.parametrize(("mode", "blocked"), [("old", True), ("partial", True), ("new", False)])
def test_torn_pin_unblock_leaves_it_blocked_or_unblocked(
    hsm: LocalSecurityModule, mode: str, blocked: bool
) -> None:
    s = station(hsm)
    s.card.identify()
    s.os.pin.tries = 0
    s.card.select_ssse()
    s.os.tearing = Tearing(mode)  # type: ignore[arg-type]
    with pytest.raises(CardRemoved):
        s.card.unblock_pin()
    s.transport.reconnect()
    s.card.select_ssse()
    assert s.os.pin.value == bytes.fromhex(OLD_PIN)
    assert s.card.pin_tries_left() == (0 if blocked else 3)


@pytest.mark.parametrize("mode", ["old", "partial", "new"])
def test_pulling_the_card_during_a_wrong_pin_never_saves_a_try(
    hsm: LocalSecurityModule, mode: str
) -> None:
    """The counter is counted down before the comparison: a card pulled during VERIFY has
    either spent the try or compared nothing — never compared and kept the try."""
    s = station(hsm)
    s.card.identify()
    s.card.select_ssse()
    s.os.tearing = Tearing(mode, kind="counter")  # type: ignore[arg-type]
    with pytest.raises(CardRemoved):
        s.card.verify_pin("000000")  # no WrongPin: the card left before comparing
    assert s.os.pin.tries == (2 if mode == "new" else 3)
    s.transport.reconnect()
    s.card.select_ssse()
    with pytest.raises(WrongPin) as info:
        s.card.verify_pin("000000")
    assert info.value.tries_left == (1 if mode == "new" else 2)


def test_verification_refuses_a_card_with_a_foreign_internal_key(
    hsm: LocalSecurityModule,
) -> None:
    # Everything else matches: the records read back and every external key authenticates;
    # only the internal-authentication key is not the one the issuer's root gives this card.
    s = station(hsm)
    s.personalize()
    assert s.os.internal_key is not None
    s.os.internal_key.value = bytes(16)
    with pytest.raises(CardNotGenuine, match="不是本发卡机构的真卡"):
        s.card.verify(s.issuer, SAMPLE_HOLDER)


def test_a_spec_200_card_under_a_300_profile_says_not_supported(
    hsm: LocalSecurityModule,
) -> None:
    s = station(hsm)
    s.personalize()
    s.os.internal_key = None  # as a card made before spec 3.00
    with pytest.raises(InternalAuthenticationNotSupported, match="不支持内部认证"):
        s.card.verify(s.issuer, SAMPLE_HOLDER)
