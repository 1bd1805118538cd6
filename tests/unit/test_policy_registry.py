"""Region policy date math and the registry's rules: transitions, the one-valid-card
constraint, atomic activation, the hash-chained audit log."""

from __future__ import annotations

import sqlite3
import tomllib
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from personalize.database import IntegrityError
from personalize.policy import (
    POLICY_DIR,
    PolicyError,
    RegionPolicy,
    load_policy,
    policy_from_dict,
)
from personalize.registry import ACTIVATION_EVIDENCE, MIGRATIONS, Registry, RegistryError
from simulator.factory import SAMPLE_HOLDER
from sscard.identifiers import card_number_check, ssn_check
from sscard.records import HolderData
from tests.audit_key import AUDIT_KEY
from tests.clock import MovingClock
from tests.conftest import NewDatabase
from tests.stores import inserts_fail, step_details

POLICY = load_policy("default")


@pytest.fixture
def registry(new_db: NewDatabase, clock: MovingClock) -> Registry:
    return Registry(new_db("r"), POLICY, clock=clock, audit_key=AUDIT_KEY)


def test_working_days_skip_weekends_and_holidays() -> None:
    assert POLICY.add_working_days(date(2026, 11, 27), 1) == date(2026, 11, 30)  # Fri → Mon
    assert POLICY.collection_date(date(2026, 11, 25)) == date(2026, 12, 16)  # 15 working days
    # National Day 2026: Oct 1-7 are days off
    assert POLICY.add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)


def test_lapse_units() -> None:
    # Working days are counted on Shanghai dates. 2026-11-27 08:00Z is Friday 16:00 in
    # Shanghai: Mon 11-30 (1), Tue 12-01 (2), Wed 12-02 (3) → 12-02 16:00+08 = 08:00Z.
    friday = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    assert POLICY.lapse_deadline(friday) == datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    # 2026-11-27 16:00Z is already Saturday 00:00 in Shanghai: Mon (1), Tue (2), Wed 12-02 (3)
    # → 12-02 00:00+08 = 12-01 16:00Z (counted on UTC dates it would be 12-02 16:00Z).
    reported = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
    assert POLICY.lapse_deadline(reported) == datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
    assert POLICY.lapse_deadline(reported).utcoffset() == timedelta(0)  # stored as UTC
    hours = replace(POLICY, provisional_lapse=72, provisional_lapse_unit="hours")
    assert hours.lapse_deadline(reported) == reported + timedelta(hours=72)
    days = replace(POLICY, provisional_lapse=10, provisional_lapse_unit="days")
    assert days.lapse_deadline(reported) == reported + timedelta(days=10)


def test_bad_policies() -> None:
    with (POLICY_DIR / "default.toml").open("rb") as fh:
        base = tomllib.load(fh)
    for change, reason in (
        ({"region_code": "3717"}, "region_code"),
        ({"issuer_org": "00"}, "issuer_org"),
        ({"card_number_prefix": "h"}, "prefix"),
        ({"loss": {**base["loss"], "provisional_lapse_unit": "weeks"}}, "unit"),
        ({"pin": {"default": "12345"}}, "PIN"),
        ({"calendar": {"2026": {"holidays": ["2026-02-30"]}}}, "malformed"),
    ):
        with pytest.raises(PolicyError, match=reason):
            policy_from_dict({**base, **change}, "x")
    with pytest.raises(PolicyError, match="shipped: default"):
        load_policy("atlantis")


def enroll(registry: Registry) -> str:
    number = registry.allocate_card_number()
    registry.enroll(SAMPLE_HOLDER, number, operator="op1")
    return number


def test_loss_reissue_flow(registry: Registry) -> None:
    number = enroll(registry)
    assert number[0] == "H" and len(number) == 9
    assert registry.report_loss(number, operator="op1").status == "provisional_loss"
    assert registry.formalize_loss(number, operator="op1", evidence="ID").status == "formal_loss"
    request = registry.request_reissue(number, operator="op1", counter="3")
    assert request.collect_on == "2026-12-16"
    assert registry.card(number).status == "reissue_pending"
    with pytest.raises(RegistryError, match="不能解挂"):
        registry.unreport(number, operator="op1", evidence="ID")  # a reissue was requested
    history = [h.to_status for h in registry.history(registry.card(number).id)]
    assert history == ["provisional_loss", "formal_loss", "reissue_pending"]


def test_refused_transitions(registry: Registry) -> None:
    number = enroll(registry)
    with pytest.raises(RegistryError, match="正式挂失"):
        registry.request_reissue(number, operator="op1")
    with pytest.raises(RegistryError, match="evidence"):
        registry.formalize_loss(number, operator="op1", evidence="")
    with pytest.raises(RegistryError, match="不能解挂"):
        registry.unreport(number, operator="op1", evidence="ID")
    registry.report_loss(number, operator="op1")
    with pytest.raises(RegistryError, match="只能对正常状态"):
        registry.report_loss(number, operator="op1")
    assert registry.unreport(number, operator="op1", evidence="ID").status == "active"
    with pytest.raises(RegistryError, match="unknown card"):
        registry.card("Z99999999")


def test_formal_loss_unreport_is_a_policy_setting(new_db: NewDatabase, clock: MovingClock) -> None:
    strict = Registry(
        new_db("s"),
        replace(POLICY, unreport_after_formal_loss=False),
        clock=clock,
        audit_key=AUDIT_KEY,
    )
    number = enroll(strict)
    strict.formalize_loss(number, operator="op1", evidence="ID")
    with pytest.raises(RegistryError):
        strict.unreport(number, operator="op1", evidence="ID")


def test_provisional_loss_lapses(registry: Registry, clock: MovingClock) -> None:
    number = enroll(registry)
    registry.report_loss(number, operator="op1")
    clock.now += timedelta(days=2)
    assert registry.card(number).status == "provisional_loss"
    clock.now += timedelta(days=3)  # three working days later (a weekend in between)
    events = registry.verify_audit()[0]
    assert registry.card(number).status == "active"  # shown lapsed …
    assert registry.verify_audit()[0] == events  # … but reading never writes
    assert registry.lapse_expired() == 1 and registry.lapse_expired() == 0  # the sweep
    last = registry.history(registry.card(number).id)[-1]
    assert (last.operator, last.from_status, last.to_status) == (
        "system",
        "provisional_loss",
        "active",
    )


def test_the_next_change_records_the_lapse_first(registry: Registry, clock: MovingClock) -> None:
    number = enroll(registry)
    registry.report_loss(number, operator="op1")
    clock.now += timedelta(days=10)
    assert registry.report_loss(number, operator="op2").status == "provisional_loss"
    moves = [
        (h.operator, h.from_status, h.to_status) for h in registry.history(registry.card(number).id)
    ]
    assert moves == [
        ("op1", "active", "provisional_loss"),
        ("system", "provisional_loss", "active"),
        ("op2", "active", "provisional_loss"),
    ]


def test_one_valid_card_is_a_database_constraint(registry: Registry) -> None:
    number = enroll(registry)
    person = registry.card(number).person_id
    with pytest.raises(IntegrityError):
        registry.db.execute(
            "INSERT INTO cards (person_id, card_number, region, status, status_since,"
            " created_at) VALUES (?, 'X00000019', '371700', 'active', 'now', 'now')",
            (person,),
        )
    with pytest.raises(RegistryError, match="cannot enroll"):
        registry.enroll(SAMPLE_HOLDER, registry.allocate_card_number(), operator="op1")


def test_activation_is_atomic(registry: Registry) -> None:
    number = enroll(registry)
    registry.formalize_loss(number, operator="op1", evidence="ID")
    request = registry.request_reissue(number, operator="op1")
    old = registry.card(number)
    with registry.transaction() as db:
        db.execute(
            "INSERT INTO jobs (request_id, person_id, old_card_id, holder,"
            " status, operator, created_at, updated_at) VALUES"
            " (?, ?, ?, '{}', 'running', 'op1', 'now', 'now')",
            (request.id, old.person_id, old.id),
        )
        db.execute("INSERT INTO job_photos (job_id, photo) VALUES (1, ?)", (b"\x00",))
        db.execute("UPDATE reissue_requests SET status = 'in_job', job_id = 1")
    new = registry.start_card(1, operator="op1")
    new_id, new_number = new.id, new.card_number
    assert new.status == "personalizing" and new_number != number
    with registry.transaction() as db:  # the job's evidence for the card, under token 1
        db.execute("UPDATE jobs SET sn = 'AA01', fence = 1 WHERE id = 1")
        db.execute("UPDATE cards SET sn = 'AA01' WHERE id = ?", (new_id,))
        for step in ("feed", *ACTIVATION_EVIDENCE):
            db.execute(
                "INSERT INTO job_steps (job_id, step, result, sn, at, details, fence)"
                " VALUES (1, ?, 'ok', 'AA01', 'now', ?, 1)",
                (step, step_details(step)),
            )
    events_before = registry.verify_audit()[0]
    with (
        inserts_fail(registry.db, "blacklist", "disk full"),
        pytest.raises(RegistryError, match="disk full"),  # a refusal, never a raw driver error
    ):
        registry.activate(new_id, operator="op1", job_id=1, fence=1)
    # nothing of the activation happened
    assert registry.card(number).status == "reissue_pending"
    assert registry.card(new_number).status == "personalizing"
    assert registry.verify_audit()[0] == events_before
    registry.activate(new_id, operator="op1", job_id=1, fence=1)
    assert registry.card(number).status == "void" and registry.blacklisted(number)
    assert registry.card(new_number).status == "active"
    assert registry.request(request.id).status == "done"


def test_audit_chain_detects_edits_and_deletions(registry: Registry) -> None:
    number = enroll(registry)
    registry.report_loss(number, operator="op1")
    registry.unreport(number, operator="op1", evidence="ID")
    count, problems = registry.verify_audit()
    assert count == 3 and problems == []
    registry.db.execute("UPDATE audit_events SET operator = 'mallory' WHERE id = 2")
    assert registry.verify_audit()[1] == [
        "审计事件 2 内容被改动或哈希被重算 "
        "(event 2: its content was altered or its hash recomputed)"
    ]
    registry.db.execute("UPDATE audit_events SET operator = 'op1' WHERE id = 2")
    registry.db.execute("DELETE FROM audit_events WHERE id = 2")
    problems = registry.verify_audit()[1]
    assert "(events 2-2 are missing: deleted)" in problems[0]
    assert "event 3: broken link" in problems[1]


def test_migrations_are_versioned(new_db: NewDatabase) -> None:
    path = new_db("m")
    first = Registry(path, POLICY, audit_key=AUDIT_KEY)
    assert first.schema_version == len(MIGRATIONS)
    first.close()
    again = Registry(path, POLICY, audit_key=AUDIT_KEY)  # reopening applies nothing twice
    assert again.schema_version == len(MIGRATIONS)


def test_policy_type() -> None:
    assert isinstance(POLICY, RegionPolicy)
    assert POLICY.allows("reencode", "active") and not POLICY.allows("reencode", "void")


def card_number(serial: int) -> str:
    """The default region's 卡号 with that serial (H + 7 digits + check character)."""
    first8 = f"H{serial:07d}"
    return first8 + card_number_check(first8)


def neighbour(holder: HolderData, n: int) -> HolderData:
    """Another person: ``holder`` with sequence number ``n`` in the ID number."""
    first17 = holder.ssn[:14] + f"{n:03d}"
    return replace(holder, ssn=first17 + ssn_check(first17), gender=str(2 - n % 2))


def test_allocation_skips_every_number_in_use(registry: Registry) -> None:
    enrolled = [card_number(n) for n in (1, 2, 3, 5)]
    assert card_number(1) == "H00000012"  # the README's example
    for i, number in enumerate(enrolled):
        registry.enroll(neighbour(SAMPLE_HOLDER, 11 + i), number, operator="op1")
    fresh = [registry.allocate_card_number() for _ in range(3)]
    assert fresh == [card_number(4), card_number(6), card_number(7)]
    assert not set(fresh) & set(enrolled)


def test_migration_4_keeps_existing_requests_and_jobs(tmp_path: Path, clock: MovingClock) -> None:
    """A registry made before request statuses: a cancelled job's request opens again and its
    unfinished card is released; a running job's request stays in its job."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:3]:
        db.executescript(script)
    db.executescript(
        """
        INSERT INTO persons VALUES (1, 'a', 'n', '1', '01', '110105', '1949-12-31', 'x');
        INSERT INTO persons VALUES (2, 'b', 'n', '1', '01', '110105', '1949-12-31', 'x');
        INSERT INTO cards (id, person_id, card_number, region, status, status_since, created_at)
            VALUES (1, 1, 'H00000012', '371700', 'reissue_pending', 'x', 'x'),
                   (2, 2, 'H00000020', '371700', 'reissue_pending', 'x', 'x'),
                   (3, 1, 'H00000039', '371700', 'personalizing', 'x', 'x'),
                   (4, 2, 'H00000047', '371700', 'personalizing', 'x', 'x');
        UPDATE cards SET job_id = 1 WHERE id = 3;
        UPDATE cards SET job_id = 2 WHERE id = 4;
        INSERT INTO reissue_requests VALUES (1, 1, 1, 'reissue', 'd', 'd', 'p', 0, 'op', '', 1),
                                            (2, 2, 2, 'reissue', 'd', 'd', 'p', 0, 'op', '', 2);
        INSERT INTO jobs (id, request_id, person_id, old_card_id, new_card_id, holder, photo,
            status, operator, created_at, updated_at)
            VALUES (1, 1, 1, 1, 3, '{}', x'00', 'cancelled', 'op', 'x', 'x'),
                   (2, 2, 2, 2, 4, '{}', x'00', 'running', 'op', 'x', 'x');
        INSERT INTO job_steps (job_id, step, result, at, details) VALUES (1, 'feed', 'ok', 'x', '');
        PRAGMA user_version = 3;
        """
    )
    db.close()
    registry = Registry(path, POLICY, clock=clock, audit_key=AUDIT_KEY)
    assert registry.schema_version == len(MIGRATIONS)
    assert [registry.request(n).status for n in (1, 2)] == ["open", "in_job"]
    assert [registry.card_by_id(n).status for n in (3, 4)] == ["rejected", "personalizing"]
    assert registry.db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert registry.db.execute("SELECT COUNT(*) FROM job_steps").fetchone()[0] == 1
    # a second job for request 1 is now possible; a second live job for request 2 is not
    insert = (
        "INSERT INTO jobs (request_id, person_id, old_card_id, holder, status,"
        " operator, created_at, updated_at) VALUES (?, ?, ?, '{}', 'queued', 'op', 'x', 'x')"
    )
    registry.db.execute(insert, (1, 1, 1))
    with pytest.raises(IntegrityError):
        registry.db.execute(insert, (2, 2, 2))


def test_request_dates_are_dates_in_the_region(new_db: NewDatabase) -> None:
    """04:00 on 11-27 in Shanghai is 20:00 on 11-26 in UTC: the application is of the 27th."""
    early = Registry(
        new_db("z"),
        POLICY,
        clock=lambda: datetime(2026, 11, 26, 20, tzinfo=UTC),
        audit_key=AUDIT_KEY,
    )
    early.enroll(SAMPLE_HOLDER, "H00000012", operator="op1")
    early.formalize_loss("H00000012", operator="op1", evidence="ID")
    request = early.request_reissue("H00000012", operator="op1")
    assert (request.applied_on, request.collect_on) == ("2026-11-27", "2026-12-18")
    assert request.fee == 20 == POLICY.fee_reissue
