"""The 社保卡 through the real PC/SC stack: a blank card from the factory personalized with
the card operations through pcscd + vpcd, read back by ``sscard card read --json``; the
matrix of protocols, addressing forms, paddings and spec versions; failures."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from apdu.errors import CardMute, CardRemoved
from apdu.pcsc import PcscTransport
from hsm_stub.keystore import Keystore
from hsm_stub.local import LocalSecurityModule
from simulator.cardfile import load_card
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
from simulator.sscard_card import Tearing
from sscard.card import SocialSecurityCard
from sscard.errors import CardAuthenticationFailed, NotASocialSecurityCard, VerificationFailed
from sscard.identifiers import serial_number
from sscard.profile import load_profile
from sscard.public import read_public
from tests.card_read import card_read_json
from tests.cli import run_sscard
from tests.integration.conftest import ServeCard

pytestmark = pytest.mark.pcsc
REGION = "440300"
HOLDER = replace(SAMPLE_HOLDER, name="李小龙")


def test_blank_card_personalized_through_pcscd(serve_card: ServeCard, tmp_path: Path) -> None:
    profile = load_profile("default")
    served = serve_card(issue_blank_card(profile.name, REGION))
    hsm = LocalSecurityModule(Keystore.create_test(tmp_path / "ks.json"))
    photo = sample_photo(size=4096)
    with PcscTransport(served.reader) as transport:
        card = SocialSecurityCard(transport, profile, hsm, region_code=REGION)
        card.identify()
        issuer = sample_issuer(profile.name, REGION, card.sn, TEST_ROOTS)
        card.external_authenticate(profile.update_key)
        card.write_issuer(issuer)
        card.write_holder(HOLDER)
        card.write_photo(photo)
        card.reset_pin("802468")
        checks = card.verify(issuer, HOLDER, photo, pin="802468")
    assert sum(c.endswith("authenticated") for c in checks) == 3  # every key of the profile
    assert checks[-1] == "internal authentication (internal): ok"  # a genuine spec-3.00 card
    data = card_read_json(served.reader)
    assert data["name"] == "李小龙"
    assert data["ssn"] == HOLDER.ssn and data["birth_date"] == "1949-12-31"
    assert data["gender"] == "2" and data["ethnicity"] == "01" and data["birthplace"] == "110105"
    assert data["card_number"] == issuer.card_number
    assert data["card_id"] == issuer.card_id.hex().upper()
    assert data["sn"] == card.sn.hex().upper() and data["atr"] == served.atr.hex().upper()
    assert data["issue_date"] == "2026-11-25" and data["expiry_date"] == "2036-11-25"
    assert data["spec_version"] == "3.00" and data["card_type"] == "3"
    assert data["checks"] == {
        "card_number_check": True,
        "ssn_check": True,
        "card_id_matches_sn": True,
    }


@pytest.mark.parametrize("protocol", ["T0", "T1"])
@pytest.mark.parametrize("form", ["sfi", "tag", "number"])
def test_reads_in_every_form_and_protocol(serve_card: ServeCard, protocol: str, form: str) -> None:
    profile = load_profile("default")
    card = issue_blank_card(profile.name, REGION, protocol=protocol, forms=(form,))  # type: ignore[arg-type]
    issuer = sample_issuer(profile.name, REGION, serial_number(card.atr), TEST_ROOTS)
    personalize_directly(card, profile.name, issuer, HOLDER)
    served = serve_card(card)
    with PcscTransport(served.reader) as transport:
        assert transport.active_protocol == protocol
        ours = SocialSecurityCard(transport, profile)
        data = read_public(ours)
        assert ours._form[profile.ef06.fid] == form
    assert data["name"] == "李小龙" and data["card_number"] == issuer.card_number


@pytest.mark.parametrize("version", ["1.00", "2.00", "3.00"])
@pytest.mark.parametrize("profile_name", ["default", "pin-read"])
def test_paddings_and_spec_versions(serve_card: ServeCard, profile_name: str, version: str) -> None:
    profile = replace(load_profile(profile_name), spec_version=version)
    card = issue_blank_card(profile.name, REGION)
    issuer = sample_issuer(profile.name, REGION, serial_number(card.atr), TEST_ROOTS)
    issuer = replace(issuer, spec_version=version)
    personalize_directly(card, profile.name, issuer, HOLDER)
    served = serve_card(card)
    pin = "888888" if profile_name == "pin-read" else None
    extra = ("--profile", profile_name)
    data = card_read_json(served.reader, *extra, pin=pin)
    assert data["name"] == "李小龙" and data["spec_version"] == version


def test_wrong_key_and_pin_through_pcscd(serve_card: ServeCard, tmp_path: Path) -> None:
    profile = load_profile("default")
    other = {k: (alg, bytes(b ^ 0x0F for b in v)) for k, (alg, v) in TEST_ROOTS.items()}
    card_os = issue_blank_card(profile.name, REGION, roots=other)
    served = serve_card(card_os)
    hsm = LocalSecurityModule(Keystore.create_test(tmp_path / "ks.json"))
    with PcscTransport(served.reader) as transport:
        card = SocialSecurityCard(transport, profile, hsm, region_code=REGION)
        card.identify()
        with pytest.raises(CardAuthenticationFailed) as info:
            card.external_authenticate(profile.update_key)
    assert info.value.tries_left == 2 and card_os.keys[0x04].tries == 2


def test_non_social_security_card_through_pcscd(serve_card: ServeCard) -> None:
    served = serve_card(sample_card("T0"))
    with PcscTransport(served.reader) as transport, pytest.raises(NotASocialSecurityCard):
        SocialSecurityCard(transport, load_profile("default")).identify()
    result = subprocess.run(
        [sys.executable, "-m", "personalize.cli", "card", "read", "--reader", served.reader],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "NotASocialSecurityCard" in result.stderr and "不是社会保障卡" in result.stderr


def test_torn_write_through_pcscd_is_detected(serve_card: ServeCard, tmp_path: Path) -> None:
    profile = load_profile("default")
    card_os = issue_blank_card(profile.name, REGION)
    served = serve_card(card_os)
    hsm = LocalSecurityModule(Keystore.create_test(tmp_path / "ks.json"))
    holder = replace(HOLDER, name="欧阳" * 7 + "娜")
    with PcscTransport(served.reader) as transport:
        card = SocialSecurityCard(transport, profile, hsm, region_code=REGION)
        card.identify()
        issuer = sample_issuer(profile.name, REGION, card.sn, TEST_ROOTS)
        card.external_authenticate(profile.update_key)
        card.write_issuer(issuer)
        card_os.tearing = Tearing("partial", after_writes=1)
        with pytest.raises(CardRemoved):
            card.write_holder(holder)
        again = serve_card(card_os)  # the operator puts the card back
        transport.reconnect()
        assert transport.atr == again.atr
        with pytest.raises(VerificationFailed) as info:
            card.verify(issuer, holder)
    assert "name: differs" in info.value.mismatches


def sscard(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run_sscard(*args, stdin=stdin, timeout=60)


def test_factory_cli_holder_file_and_pin_prompts(serve_card: ServeCard, tmp_path: Path) -> None:
    holder = tmp_path / "holder.json"
    holder.write_text(
        json.dumps(
            {
                "ssn": "11010519491231002X",
                "name": "王小二",
                "gender": "2",
                "ethnicity": "01",
                "birthplace": "110105",
                "birth_date": "1949-12-31",
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    out = tmp_path / "card.json"
    made = sscard(
        "sim",
        "new-card",
        "--profile",
        "default",
        "--region",
        REGION,
        "--personalized",
        "--holder",
        str(holder),
        "--protocol",
        "T1",
        "--out",
        str(out),
    )
    assert made.returncode == 0, made.stderr
    served = serve_card(load_card(out))
    assert card_read_json(served.reader)["name"] == "王小二"
    wrong = sscard("card", "verify-pin", "--reader", served.reader, stdin="000000\n")
    assert wrong.returncode == 1 and "剩余 2 次" in wrong.stderr
    right = sscard("card", "verify-pin", "--reader", served.reader, "--json", stdin="123456\n")
    assert right.returncode == 0 and "PIN verified" in right.stderr
    assert json.loads(right.stdout) == {"verified": True}
    changed = sscard(
        "card", "change-pin", "--reader", served.reader, stdin="123456\n591357\n591357\n"
    )
    assert changed.returncode == 0, changed.stderr
    mismatch = sscard(
        "card", "change-pin", "--reader", served.reader, stdin="591357\n111111\n222222\n"
    )
    assert mismatch.returncode == 1 and "nothing was changed" in mismatch.stderr
    for result in (wrong, right, changed, mismatch):
        for pin in ("000000", "123456", "591357", "111111", "222222"):
            assert pin not in result.stdout + result.stderr


def test_factory_cli_refuses_bad_holder_and_damages(tmp_path: Path) -> None:
    holder = tmp_path / "holder.json"
    holder.write_text(
        json.dumps(
            {
                "ssn": "110105194912310021",
                "name": "王小二",
                "gender": "1",
                "ethnicity": "01",
                "birthplace": "110105",
                "birth_date": "1949-12-31",
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    bad = sscard(
        "sim",
        "new-card",
        "--personalized",
        "--holder",
        str(holder),
        "--out",
        str(tmp_path / "x.json"),
    )
    assert bad.returncode == 1 and "校验位" in bad.stderr
    assert not (tmp_path / "x.json").exists()
    for damage in ("mute", "no-ssse", "corrupt-ef05"):
        made = sscard(
            "sim",
            "new-card",
            "--personalized",
            "--damage",
            damage,
            "--out",
            str(tmp_path / f"{damage}.json"),
        )
        assert made.returncode == 0, made.stderr


def test_mute_card_through_pcscd(serve_card: ServeCard) -> None:
    profile = load_profile("default")
    card = issue_blank_card(profile.name, REGION)
    damage_card(card, "mute")
    served = serve_card(card)
    transport = PcscTransport(served.reader)
    try:
        with pytest.raises(CardMute):
            transport.connect()
    finally:
        transport.disconnect()
