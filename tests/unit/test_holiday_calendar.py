"""The region policy's holiday calendar (statutory holidays and 调休 make-up working days per
year, from the State Council's notice) and dates computed in the region's time zone.

Every expected date below is counted by hand on the 2026 notice (国务院办公厅关于2026年部分
节假日安排的通知, 2025-11-04); the comments show the count."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from hsm_stub.audit import AuditLog
from personalize.policy import POLICY_DIR, PolicyError, load_policy, policy_from_dict
from personalize.registry import Registry
from simulator.factory import SAMPLE_HOLDER
from tests.audit_key import AUDIT_KEY
from tests.conftest import NewDatabase

POLICY = load_policy("default")


def default_dict() -> dict[str, Any]:
    with (POLICY_DIR / "default.toml").open("rb") as fh:
        return tomllib.load(fh)


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 1, 4),  # 元旦调休: Sunday worked
        date(2026, 2, 14),  # 春节调休: Saturday worked
        date(2026, 2, 28),  # 春节调休: Saturday worked
        date(2026, 5, 9),  # 劳动节调休: Saturday worked
        date(2026, 9, 20),  # 国庆调休: Sunday worked
        date(2026, 10, 10),  # 国庆调休: Saturday worked
    ],
)
def test_a_make_up_weekend_day_is_a_working_day(day: date) -> None:
    assert day.weekday() >= 5
    assert POLICY.is_working_day(day)


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 1, 2),  # 元旦, Friday
        date(2026, 2, 16),  # 春节, Monday
        date(2026, 2, 23),  # 春节's last day, Monday
        date(2026, 4, 6),  # 清明, Monday
        date(2026, 5, 5),  # 劳动节, Tuesday
        date(2026, 6, 19),  # 端午, Friday
        date(2026, 9, 25),  # 中秋, Friday
        date(2026, 10, 7),  # 国庆, Wednesday
    ],
)
def test_a_holiday_weekday_is_not_a_working_day(day: date) -> None:
    assert day.weekday() < 5
    assert not POLICY.is_working_day(day)


def test_ordinary_days() -> None:
    assert POLICY.is_working_day(date(2026, 2, 12))  # Thursday
    assert not POLICY.is_working_day(date(2026, 2, 7))  # an ordinary Saturday
    assert not POLICY.is_working_day(date(2026, 3, 1))  # an ordinary Sunday


def test_fifteen_working_days_across_the_spring_festival() -> None:
    # From Tue 2026-02-10: Feb 11 (1), 12 (2), 13 (3), Sat 14 调休 (4), 15–23 春节 off,
    # 24 (5), 25 (6), 26 (7), 27 (8), Sat 28 调休 (9), Mar 2 (10), 3 (11), 4 (12), 5 (13),
    # 6 (14), Mon Mar 9 (15).
    assert POLICY.collection_date(date(2026, 2, 10)) == date(2026, 3, 9)


def test_fifteen_working_days_across_national_day() -> None:
    # From Fri 2026-09-18: Sun 20 调休 (1), 21 (2), 22 (3), 23 (4), 24 (5), 25–27 中秋 off,
    # 28 (6), 29 (7), 30 (8), Oct 1–7 国庆 off, 8 (9), 9 (10), Sat 10 调休 (11), 12 (12),
    # 13 (13), 14 (14), Thu Oct 15 (15).
    assert POLICY.collection_date(date(2026, 9, 18)) == date(2026, 10, 15)


def test_date_math_past_the_covered_years_is_refused_naming_the_year() -> None:
    with pytest.raises(
        PolicyError, match=r"未收录 2027 年的节假日安排.*no holiday calendar for 2027"
    ):
        POLICY.collection_date(date(2026, 12, 20))
    with pytest.raises(PolicyError, match="2025"):
        POLICY.is_working_day(date(2025, 12, 31))
    # the last working day of 2026 needs no 2027 calendar
    assert POLICY.add_working_days(date(2026, 12, 30), 1) == date(2026, 12, 31)


def test_the_valid_until_review_date_still_refuses() -> None:
    from dataclasses import replace

    reviewed = replace(POLICY, valid_until=date(2026, 12, 10))
    with pytest.raises(PolicyError, match="valid until 2026-12-10"):
        reviewed.collection_date(date(2026, 12, 1))


@pytest.mark.parametrize(
    ("calendar", "reason"),
    [
        ({"2026": {"holidays": ["2026-02-30"]}}, "malformed"),
        ({"2026": {"workdays": ["2026-02-16"]}}, "Saturday or Sunday"),  # a Monday
        ({"2026": {"holidays": ["2027-01-01"]}}, "not in 2026"),
        ({"2026": {"holidays": ["2026-02-14"], "workdays": ["2026-02-14"]}}, "both"),
        ({"2026": {"holidays": ["2026-10-01", "2026-10-01"]}}, "twice"),
        ({"2026": {"holiday": ["2026-10-01"]}}, "holidays and workdays only"),
        ({"26": {"holidays": []}}, "keys are years"),
        ({"2026": {"holidays": "2026-10-01"}}, "list of dates"),
        ({}, "no holiday calendar"),
    ],
)
def test_a_bad_calendar_is_refused(calendar: dict[str, Any], reason: str) -> None:
    with pytest.raises(PolicyError, match=reason):
        policy_from_dict({**default_dict(), "calendar": calendar}, "x")


def test_the_old_flat_holiday_list_is_refused_not_ignored() -> None:
    with pytest.raises(PolicyError, match=r"\[calendar.YYYY\]"):
        policy_from_dict({**default_dict(), "holidays": ["2026-10-01"]}, "x")


def test_a_bad_calendar_file_is_refused_on_load(tmp_path: Path) -> None:
    text = (POLICY_DIR / "default.toml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('"2026-10-10",', '"2026-10-09",'), encoding="utf-8")  # a Friday
    with pytest.raises(PolicyError, match="2026-10-09"):
        load_policy(bad)


# ------------------------------------------------------------- dates in the region's zone


def test_an_application_at_4_am_in_shanghai_is_dated_there(new_db: NewDatabase) -> None:
    # 2026-11-26T20:00Z is Friday 2026-11-27 04:00 in Shanghai.
    at = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)
    registry = Registry(new_db("r"), POLICY, clock=lambda: at, audit_key=AUDIT_KEY)
    number = registry.allocate_card_number()
    card = registry.enroll(SAMPLE_HOLDER, number, operator="op")
    assert card.issued_on is None  # not given: unknown, never the enrolment day
    assert card.status_since == "2026-11-26T20:00:00+00:00"  # instants stay UTC
    registry.formalize_loss(number, operator="op", evidence="ID")
    request = registry.request_reissue(number, operator="op")
    assert request.applied_on == "2026-11-27"
    # From Fri 11-27: Nov 30 (1), Dec 1–4 (2–5), 7–11 (6–10), 14–18 (11–15) → Fri 12-18.
    assert request.collect_on == "2026-12-18"


def test_a_provisional_loss_lapses_on_local_working_days(new_db: NewDatabase) -> None:
    at = datetime(2026, 11, 27, 16, 30, tzinfo=UTC)  # Saturday 00:30 in Shanghai
    registry = Registry(new_db("r"), POLICY, clock=lambda: at, audit_key=AUDIT_KEY)
    number = registry.allocate_card_number()
    registry.enroll(SAMPLE_HOLDER, number, operator="op")
    # Mon 11-30 (1), Tue 12-01 (2), Wed 12-02 (3), 00:30+08 → 12-01 16:30Z
    lapse = registry.report_loss(number, operator="op").lapse_at
    assert lapse == "2026-12-01T16:30:00+00:00"


def test_the_security_module_audit_takes_its_clock(tmp_path: Path) -> None:
    at = datetime(2030, 12, 20, 2, 0, 0, 123000, tzinfo=UTC)
    log = AuditLog(tmp_path / "audit.log", clock=lambda: at)
    log.record(client="c", operation="op", result="ok")
    log.close()
    entry = json.loads((tmp_path / "audit.log").read_text(encoding="utf-8"))
    assert entry["time"] == "2030-12-20T02:00:00.123+00:00"
