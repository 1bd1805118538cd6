"""``--profile auto``: the shipped profile a card follows, told from what the card answers
(docs/chip-application.md "Profile detection"). The cards are built from literal record
bytes (tests/unit/test_card_reader.py), one per layout public code shows."""

from __future__ import annotations

import pytest

from apdu.inprocess import InProcessTransport
from simulator.sscard_card import SocialSecurityCardOS
from sscard.card import SocialSecurityCard
from sscard.detect import CardTraits, choose, detect_profile, shipped_profiles
from sscard.public import read_public
from tests.unit.test_card_reader import NO_4E_EF06, ZHEJIANG_EF06, card_with

# JSCardKiosks CardWriteRead.cs: EF0D record 1 = EA, 12 bytes (人员识别号), record 2 = EB,
# 3 bytes (初次申请地代码).
EF0D_RECORDS = ["EA0C" + "313233343536373839303132", "EB03320500"]


def detected(card_os: SocialSecurityCardOS) -> tuple[str, CardTraits]:
    transport = InProcessTransport(card_os)
    transport.connect()
    profile, traits = detect_profile(transport)
    return profile.name, traits


def test_zhejiang_layout_is_default() -> None:
    name, traits = detected(card_with(ZHEJIANG_EF06))
    assert name == "default"
    assert traits.as_dict() == {
        "spec_version": "2.00",
        "ef0d": False,
        "ef06_after_verify": False,
        "ef06_record3_tag": "4E",
        "name_ext": True,
    }


def test_records_1_to_6_without_4e_are_hunan() -> None:
    name, traits = detected(card_with(NO_4E_EF06))
    assert name == "hunan" and traits.ef06_record3_tag == 0x0A and traits.name_ext is False


def test_ef06_locked_is_pin_read() -> None:
    name, traits = detected(card_with(ZHEJIANG_EF06, read_pin_fids=(0xEF06, 0xEF08)))
    assert name == "pin-read" and traits.ef06_after_verify and traits.ef06_record3_tag is None


def test_ef0d_is_jiangsu_and_its_records_are_read() -> None:
    card_os = card_with(ZHEJIANG_EF06, ef0d=EF0D_RECORDS)
    name, _ = detected(card_os)
    assert name == "jiangsu"
    transport = InProcessTransport(card_os)
    transport.connect()
    profile = next(p for p in shipped_profiles() if p.name == name)
    data = read_public(SocialSecurityCard(transport, profile))
    assert (data["person_id"], data["first_region"]) == ("123456789012", "320500")
    assert data["insured_region"] is None and data["name"] == "张三"


@pytest.mark.parametrize("forms", [("tag",), ("sfi",)])
def test_without_number_forms_4e_decides(forms: tuple[str, ...]) -> None:
    assert detected(card_with(NO_4E_EF06, forms=forms))[0] == "hunan"
    assert detected(card_with(ZHEJIANG_EF06, forms=forms))[0] == "default"


def test_a_card_no_profile_fits_falls_back_to_default() -> None:
    profiles = shipped_profiles()
    assert profiles[0].name == "default"
    odd = CardTraits(
        "3.00", ef0d=True, ef06_after_verify=True, ef06_record3_tag=None, name_ext=None
    )
    assert choose(profiles, odd).name == "default"
