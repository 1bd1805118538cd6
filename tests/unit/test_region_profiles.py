"""Each region profile personalizes and reads its own layout (docs/chip-application.md
"Profiles"): what is written is compared with literal record bytes from the tables of §1,
not with bytes the host computes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from apdu.inprocess import InProcessTransport
from hsm_stub.keystore import Keystore
from hsm_stub.local import LocalSecurityModule
from simulator.cardos.filesystem import DedicatedFile, RecordEF
from simulator.factory import (
    SAMPLE_HOLDER,
    TEST_ROOTS,
    issue_blank_card,
    sample_issuer,
)
from simulator.sscard_card import SocialSecurityCardOS
from sscard.card import SocialSecurityCard
from sscard.errors import InvalidData
from sscard.profile import CardProfile, load_profile
from sscard.public import read_public
from tests.unit.test_card_reader import ZHEJIANG_EF06, card_with

REGION = "430100"
# SAMPLE_HOLDER (GB 11643's example, 张三) as EF06 records, from the §1 table.
SAMPLE_RECORDS = {
    0x08: "0812313130313035313934393132333130303258",
    0x09: "091E" + "D5C5C8FD" + "00" * 26,
    0x0A: "0A0132",
    0x0B: "0B0101",
    0x0C: "0C03110105",
    0x0D: "0D0419491231",
}


@pytest.fixture
def hsm(tmp_path: Path) -> LocalSecurityModule:
    return LocalSecurityModule(Keystore.create_test(tmp_path / "ks.json"))


def personalized(
    profile: CardProfile, hsm: LocalSecurityModule
) -> tuple[SocialSecurityCardOS, SocialSecurityCard]:
    card_os = issue_blank_card(profile.name, REGION)
    transport = InProcessTransport(card_os)
    transport.connect()
    card = SocialSecurityCard(transport, profile, hsm, region_code=REGION)
    card.identify()
    card.external_authenticate(profile.update_key)
    card.write_issuer(sample_issuer(profile.name, REGION, card.sn, TEST_ROOTS))
    card.write_holder(SAMPLE_HOLDER)
    return card_os, card


def ef06_records(card_os: SocialSecurityCardOS) -> list[str]:
    ssse = card_os.mf.children[0]
    assert isinstance(ssse, DedicatedFile)
    ef06 = next(f for f in ssse.children if f.fid == 0xEF06)
    assert isinstance(ef06, RecordEF)
    return [r.hex().upper() for r in ef06.records]


def test_hunan_writes_records_1_to_6_without_4e(hsm: LocalSecurityModule) -> None:
    card_os, card = personalized(load_profile("hunan"), hsm)
    # HDOS_VC6 WAPP.CPP reads 08, 09, 0A, 0B, 0C, 0D as records 1-6
    assert ef06_records(card_os) == [SAMPLE_RECORDS[t] for t in (8, 9, 10, 11, 12, 13)]
    assert card.read_holder() == SAMPLE_HOLDER


def test_default_writes_4e_as_record_3(hsm: LocalSecurityModule) -> None:
    card_os, _ = personalized(load_profile("default"), hsm)
    records = ef06_records(card_os)
    assert records[2] == "4E14" + "00" * 20 and records[3] == SAMPLE_RECORDS[0x0A]
    assert records[6] == SAMPLE_RECORDS[0x0D]


def test_a_name_needing_4e_is_refused_on_hunan(hsm: LocalSecurityModule) -> None:
    card_os, card = personalized(load_profile("hunan"), hsm)
    before = ef06_records(card_os)
    long_name = replace(SAMPLE_HOLDER, name="欧阳" * 8)  # 32 GBK bytes
    with pytest.raises(InvalidData, match="4E"):
        card.write_holder(long_name)
    assert ef06_records(card_os) == before  # nothing written


def test_jiangsu_two_levels_and_key_0d(hsm: LocalSecurityModule) -> None:
    profile = load_profile("jiangsu")
    _, card = personalized(profile, hsm)
    assert card.factors.province is None  # card ‖ city only (JSCardKiosks BFDE 48)
    issuer = card.read_issuer()
    checks = card.verify(issuer, SAMPLE_HOLDER)
    assert "key 0D (update): authenticated" in checks


def test_hunan_insured_region_after_verify() -> None:
    """DF03/EF19 as HDOS_VC6 ICCInter.cpp reads it: tag 79, Le 29, the code at value bytes
    7-9 (here 430100, 长沙)."""
    card_os = card_with(ZHEJIANG_EF06[:2] + ZHEJIANG_EF06[3:], read_pin_fids=(0xEF19,))
    ssse = card_os.mf.children[0]
    assert isinstance(ssse, DedicatedFile)
    df03 = DedicatedFile(0xDF03, "DF03")
    record = "7927" + "00" * 7 + "430100" + "00" * 29
    df03.add(RecordEF(0xEF19, "EF19", records=[bytearray.fromhex(record)], record_size=41))
    ssse.add(df03)
    transport = InProcessTransport(card_os)
    transport.connect()
    hunan = load_profile("hunan")
    data = read_public(SocialSecurityCard(transport, hunan))
    assert data["insured_region"] is None  # no PIN given: EF19 not read
    data = read_public(SocialSecurityCard(transport, hunan), pin="888888")
    assert data["insured_region"] == "430100" and data["name"] == "张三"
