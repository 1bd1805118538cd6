"""First-generation cards carrying a 15-digit ID number (珠海: "如果是属于身份证号从15位升位到
18位的可不用办理换卡手续"; docs/business-rules.md "15-digit ID numbers"): issued by ``sscard sim
new-card --quirk id-15``, read through pyscard → pcscd → vpcd by ``sscard card read`` and
``sscard diagnose`` at a street office whose registry knows the holder by the upgraded
18-digit number — kept without a replacement; a chip number that is not the holder's is
refused with nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from simulator.cardfile import load_card
from simulator.cardos.filesystem import DedicatedFile, RecordEF
from simulator.factory import SAMPLE_HOLDER
from simulator.sscard_card import SocialSecurityCardOS
from sscard.identifiers import serial_number
from tests.card_read import card_read_json
from tests.integration import test_street_office as street
from tests.integration.conftest import ServeCard
from tests.integration.test_street_office import (
    POLICY,
    Office,
    audit_actions,
    diagnose,
    pdfs,
    reinsert,
    sscard,
)

pytestmark = pytest.mark.pcsc
office = street.office  # the street office's fixture, with the backend below
FIFTEEN = "110105491231002"  # the sample holder's 11010519491231002X in its 15-digit form


@pytest.fixture
def backend() -> str:
    """The security module does not matter here: the one in process."""
    return "keystore"


def new_card(o: Office, *extra: str) -> subprocess.CompletedProcess[str]:
    """``sscard sim new-card --personalized --quirk id-15`` for the office's card: its SN and
    卡号, so that the registry knows it."""
    return subprocess.run(
        [sys.executable, "-m", "personalize.cli", "sim", "new-card", "--personalized",
         "--quirk", "id-15", "--region", POLICY.region_code,
         "--serial", serial_number(o.card.atr).hex(), "--card-number", o.number,
         "--out", str(o.root / "first-generation.json"), *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip


def insert_first_generation(o: Office, serve_card: ServeCard, *extra: str) -> None:
    """Issue the first-generation card and put it in the reader instead of the office's."""
    issued = new_card(o, *extra)
    assert issued.returncode == 0, issued.stderr
    card = load_card(o.root / "first-generation.json", persist=False)
    assert isinstance(card, SocialSecurityCardOS)
    o.card = card
    reinsert(o, serve_card)


def check(data: dict[str, Any], code: str) -> dict[str, Any]:
    return dict(next(c for c in data["checks"] if c["code"] == code))


def nothing_written(o: Office, actions: list[str]) -> None:
    assert audit_actions(o) == actions and pdfs(o) == []
    assert o.registry.card(o.number).status == "active"
    assert o.registry.db.execute("SELECT COUNT(*) AS n FROM office_reports").fetchone()["n"] == 0


def test_a_first_generation_card_is_read_and_kept(office: Office, serve_card: ServeCard) -> None:
    insert_first_generation(office, serve_card)
    read = card_read_json(office.reader)
    assert read["ssn"] == FIFTEEN and read["checks"]["ssn_check"] is True
    assert (read["birth_date"], read["gender"]) == ("1949-12-31", "2")
    assert [w["field"] for w in read["warnings"]] == ["ssn"]
    assert "15 位" in read["warnings"][0]["message"]
    # the registry knows the holder by the upgraded number, stored once
    person = office.registry.person_by_ssn(FIFTEEN)
    assert person is not None and person.ssn == SAMPLE_HOLDER.ssn
    data, text = diagnose(office)
    assert (data["verdict"], data["fee"], data["replacement_request"]) == ("card_ok", 0, None)
    assert check(data, "ssn")["ok"] is True and "15 位" in check(data, "ssn")["detail"]
    assert "卡片正常" in text
    assert office.registry.card(office.number).status == "active"


def test_the_holder_types_the_18_digit_number_for_a_pin_unblock(
    office: Office, serve_card: ServeCard
) -> None:
    insert_first_generation(office, serve_card)
    office.card.pin.tries = 0
    done = sscard(office, "pin", "unblock", stdin=f"y\n{SAMPLE_HOLDER.ssn}\n")
    assert done.returncode == 0, done.stderr
    assert office.card.pin.tries == 3


def test_another_persons_15_digit_number_is_refused(office: Office, serve_card: ServeCard) -> None:
    # a card of the office's number whose chip carries another person's first-generation
    # number (the 370802… example of the public ID utilities, a woman born 1994-02-21)
    holder = office.root / "other.json"
    holder.write_text(
        json.dumps({"ssn": "370802940221002", "name": "李四", "gender": "2", "ethnicity": "01",
                    "birthplace": "370802", "birth_date": "1994-02-21"}),
        encoding="utf-8",
    )  # fmt: skip
    insert_first_generation(office, serve_card, "--holder", str(holder))
    before = audit_actions(office)
    refused = sscard(office, "diagnose", "--encoder", office.encoder.path, "--json")
    assert refused.returncode == 1
    assert "登记的持卡人不符" in refused.stderr and "升位后亦不符" in refused.stderr
    assert "370802940221002" not in refused.stderr + refused.stdout
    nothing_written(office, before)


def ef06_first_record(card: SocialSecurityCardOS) -> bytearray:
    ssse = card.mf.children[0]
    assert isinstance(ssse, DedicatedFile)
    ef06 = next(f for f in ssse.children if f.name == "EF06")
    assert isinstance(ef06, RecordEF)
    return ef06.records[0]


def test_a_15_digit_number_with_an_invalid_date_is_refused(
    office: Office, serve_card: ServeCard, tmp_path: Path
) -> None:
    # the card factory refuses to issue it …
    holder = tmp_path / "bad.json"
    holder.write_text(
        json.dumps({"ssn": "110105491331002", "name": "张三", "gender": "2", "ethnicity": "01",
                    "birthplace": "110105", "birth_date": "1949-12-31"}),
        encoding="utf-8",
    )  # fmt: skip
    issued = new_card(office, "--holder", str(holder))
    assert issued.returncode != 0 and "出生日期" in issued.stderr
    assert not (office.root / "first-generation.json").exists()
    # … and a chip holding one (month 13) gets no verdict at the office
    insert_first_generation(office, serve_card)
    ef06_first_record(office.card)[2:] = b"110105491331002\x00\x00\x00"
    before = audit_actions(office)
    refused = sscard(office, "diagnose", "--encoder", office.encoder.path, "--json")
    assert refused.returncode == 1 and "登记的持卡人不符" in refused.stderr
    nothing_written(office, before)
