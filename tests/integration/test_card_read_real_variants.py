"""``sscard card read`` as a subprocess through pcscd against cards built from literal record
bytes as real cards hold them (tests/unit/test_card_reader.py): no 4E, 0xFF padding, a byte
GBK cannot decode, a 4-digit 出生地 padded with FF, a SELECT EF answered by a bare 9000 — the
profile detected from the card (docs/chip-application.md "Reading real cards")."""

from __future__ import annotations

import pytest

from simulator.cardos.filesystem import DedicatedFile, RecordEF
from tests.card_read import card_read_json
from tests.integration.conftest import ServeCard
from tests.unit.test_card_reader import (
    BIRTH_DATE,
    ETHNICITY,
    GENDER,
    SSN,
    ZHEJIANG_EF06,
    card_with,
)

pytestmark = pytest.mark.pcsc


def test_no_4e_ff_padding_and_a_non_gbk_byte_through_pcscd(serve_card: ServeCard) -> None:
    ef06 = [
        SSN,
        "091E" + "D5C580C8FD" + "FF" * 25,  # 张 0x80 三, FF padding
        GENDER,
        ETHNICITY,
        "0C033301FF",  # 出生地 3301, FF padding
        BIRTH_DATE,
    ]
    served = serve_card(card_with(ef06))
    data = card_read_json(served.reader)
    assert data["profile"] == "hunan"  # records 1-6, no 4E (HDOS_VC6 WAPP.CPP)
    assert data["detection"] == {
        "spec_version": "2.00",
        "ef0d": False,
        "ef06_after_verify": False,
        "ef06_record3_tag": "0A",
        "name_ext": False,
    }
    assert data["name"] == "张\\x80三" and data["birthplace"] == "3301"
    assert [w["field"] for w in data["warnings"]] == ["name", "birthplace"]
    assert "80" in data["warnings"][0]["message"] and "4" in data["warnings"][1]["message"]
    assert (data["gender"], data["birth_date"], data["card_number"]) == (
        "2",
        "1949-12-31",
        "KD5578904",
    )


def test_a_named_profile_reads_a_card_of_another_numbering(serve_card: ServeCard) -> None:
    """``--profile default`` on a card without 4E: 6A83 tolerated, 姓名 alone."""
    no_4e = [r for r in ZHEJIANG_EF06 if not r.startswith("4E")]
    served = serve_card(card_with(no_4e, forms=("number", "tag")))
    data = card_read_json(served.reader, "--profile", "default")
    assert data["profile"] == "default" and data["detection"] is None
    assert data["name"] == "张三" and data["gender"] == "2" and data["warnings"] == []


def test_hunan_insured_region_with_ask_pin(serve_card: ServeCard) -> None:
    """DF03/EF19 参保地 after VERIFY (HDOS_VC6 ICCInter.cpp), the PIN typed at the prompt."""
    no_4e = [r for r in ZHEJIANG_EF06 if not r.startswith("4E")]
    card_os = card_with(no_4e, read_pin_fids=(0xEF19,))
    df03 = DedicatedFile(0xDF03, "DF03")
    record = "7927" + "00" * 7 + "430100" + "00" * 29
    df03.add(RecordEF(0xEF19, "EF19", records=[bytearray.fromhex(record)], record_size=41))
    ssse = card_os.mf.children[0]
    assert isinstance(ssse, DedicatedFile)
    ssse.add(df03)
    served = serve_card(card_os)
    assert card_read_json(served.reader)["insured_region"] is None
    data = card_read_json(served.reader, "--ask-pin", pin="888888")
    assert data["profile"] == "hunan" and data["insured_region"] == "430100"
