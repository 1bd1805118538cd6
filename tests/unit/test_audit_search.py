"""The auditor's reading of the store (issue 16, Deliver 5; personalize/audit_store.py, the
outbox's counts in personalize/outbox_store.py), on a real SQLite file and a real PostgreSQL
server: the keyset pages return every matching event once, newest first, whatever the page
size; each filter keeps exactly its events (the time range from inclusive to exclusive); a
card's subjects include its reissue request; SQLite answers a page and a time range from the
new indexes, without sorting; the outbox counts per destination are those of ``entries``;
local time in and out, and no secret field shown."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from personalize import audit_store
from personalize.audit_store import AuditEvent, EventSearch
from personalize.outbox_store import DeliveryState
from personalize.policy import load_policy
from personalize.registry import Registry, RegistryError, request_number
from personalize.web.routes_audit import local_text, shown_details, utc_text
from simulator.factory import SAMPLE_HOLDER
from tests.audit_key import AUDIT_KEY
from tests.clock import PINNED, MovingClock
from tests.conftest import NewDatabase

POLICY = load_policy("default")
CARD = "H00000012"


@pytest.fixture
def registry(new_db: NewDatabase, clock: MovingClock) -> Iterator[Registry]:
    registry = Registry(new_db("audit_search"), POLICY, clock=clock, audit_key=AUDIT_KEY)
    yield registry
    registry.close()


def notes(registry: Registry, clock: MovingClock) -> list[AuditEvent]:
    """Twelve events by two operators about two subjects, three at each of four times (ties
    in ``at`` broken by id), written out of time order; all events, newest first."""
    for hour in (3, 1, 2, 0):
        clock.now = PINNED + timedelta(hours=hour)
        with registry.transaction():
            for n in range(3):
                registry.audit(f"op{n % 2}", "test.note", f"s{hour % 2}", {"hour": hour, "n": n})
    every = audit_store.event_page(registry.db, EventSearch(), limit=100)
    assert [(e.at, e.id) for e in every] == sorted(((e.at, e.id) for e in every), reverse=True)
    return every


def pages(registry: Registry, search: EventSearch, size: int) -> list[AuditEvent]:
    found: list[AuditEvent] = []
    while True:
        page = audit_store.event_page(
            registry.db, search, before=found[-1] if found else None, limit=size
        )
        found += page
        if len(page) < size:
            return found


@pytest.mark.parametrize("size", [1, 2, 3, 5, 12, 13])
def test_keyset_pages_return_every_event_once_newest_first(
    registry: Registry, clock: MovingClock, size: int
) -> None:
    every = notes(registry, clock)
    assert len(every) == 12
    assert pages(registry, EventSearch(), size) == every
    mine = EventSearch(operator="op1", subjects=("s1",))
    expected = [e for e in every if e.operator == "op1" and e.subject == "s1"]
    assert expected and pages(registry, mine, size) == expected


def test_each_filter_keeps_exactly_its_events(registry: Registry, clock: MovingClock) -> None:
    every = notes(registry, clock)
    since, until = (PINNED + timedelta(hours=h) for h in (1, 3))
    window = EventSearch(since=since.isoformat(), until=until.isoformat())
    found = audit_store.event_page(registry.db, window)
    assert [json.loads(e.details)["hour"] for e in found] == [2, 2, 2, 1, 1, 1]  # 3 excluded
    by_subject = audit_store.event_page(registry.db, EventSearch(subjects=("s0", "nothing")))
    assert by_subject == [e for e in every if e.subject == "s0"]
    assert audit_store.event_page(registry.db, EventSearch(subjects=())) == []
    assert audit_store.event_page(registry.db, EventSearch(operator="nobody")) == []


def test_a_cards_subjects_include_its_request_and_a_persons_their_cards(
    registry: Registry,
) -> None:
    registry.enroll(SAMPLE_HOLDER, CARD, operator="op")
    assert audit_store.card_subjects(registry.db, "H99999999") is None
    assert audit_store.person_subjects(registry.db, "110105194912310000") is None
    registry.report_loss(CARD, operator="op")
    registry.formalize_loss(CARD, operator="op", evidence="居民身份证")
    request = registry.request_reissue(CARD, operator="op")
    assert audit_store.card_subjects(registry.db, CARD) == (CARD, request_number(request.id))
    person = registry.person_by_ssn(SAMPLE_HOLDER.ssn)
    assert person is not None
    assert audit_store.person_subjects(registry.db, SAMPLE_HOLDER.ssn) == (
        f"person/{person.id}", CARD, request_number(request.id)
    )  # fmt: skip


def test_sqlite_answers_a_page_from_the_indexes_without_sorting(
    tmp_path: Path, clock: MovingClock
) -> None:
    """SQLite's query plan (PostgreSQL plans by its statistics, which a test table lacks)."""
    registry = Registry(tmp_path / "plan.db", POLICY, clock=clock, audit_key=AUDIT_KEY)
    notes(registry, clock)
    cursor = (PINNED.isoformat(), PINNED.isoformat(), 5)
    for where, params, index in (
        ("at <= ? AND (at < ? OR id < ?)", cursor, "audit_events_by_at"),
        ("subject = ? AND at >= ?", ("s1", PINNED.isoformat()), "audit_events_by_subject"),
        ("operator = ? AND at < ?", ("op0", PINNED.isoformat()), "audit_events_by_operator"),
    ):
        plan = " ".join(
            str(r[-1])
            for r in registry.db.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM audit_events WHERE "
                + where
                + " ORDER BY at DESC, id DESC LIMIT 50",
                params,
            )
        )
        assert index in plan and "TEMP B-TREE" not in plan, plan
    registry.close()


def test_outbox_counts_per_destination_are_those_of_entries(registry: Registry) -> None:
    registry.enroll(SAMPLE_HOLDER, CARD, operator="op")
    registry.report_loss(CARD, operator="op")
    registry.unreport(CARD, operator="op", evidence="居民身份证")
    registry.report_loss(CARD, operator="op")
    outbox = registry.outbox
    assert outbox.destination_status() == [] and outbox.event_count() == 3
    with registry.transaction():
        outbox.destination("kaguan")
        outbox.acknowledged("kaguan", 2)
        outbox.destination("bank")
        outbox.attempt_failed(
            "bank", 1, attempts=5, error="HTTP 503", next_attempt_at="x", failed_at="y"
        )
        outbox.destination("city")
        outbox.attempt_failed(
            "city", 1, attempts=1, error="连接失败", next_attempt_at="x", failed_at=None
        )
    listed = Counter(
        (e.destination, str(e.state)) for e in outbox.entries() if e.destination is not None
    )
    counts = {
        s.name: {"pending": s.pending, "failed": s.failed, "delivered": s.delivered}
        for s in outbox.destination_status()
    }
    assert counts == {
        name: {state: listed[name, state] for state in map(str, DeliveryState)}
        for name in ("bank", "city", "kaguan")
    }
    assert counts["bank"] == {"pending": 2, "failed": 1, "delivered": 0}
    bank, city, _ = outbox.destination_status()
    assert bank.attempt_event is not None and bank.attempt_event.seq == 1
    assert (bank.last_error, city.failed, city.last_error) == ("HTTP 503", 0, "连接失败")


def test_times_are_local_in_and_out_and_a_bad_time_is_refused() -> None:
    assert utc_text(POLICY, "2026-11-27T00:00", "起始时间") == "2026-11-26T16:00:00+00:00"
    assert utc_text(POLICY, "2026-11-27 08:30:15", "起始时间") == "2026-11-27T00:30:15+00:00"
    assert local_text(POLICY, "2026-11-26T16:00:00+00:00") == "2026-11-27 00:00:00"
    assert local_text(POLICY, datetime(2026, 6, 1, tzinfo=UTC).isoformat()) == (
        "2026-06-01 08:00:00"
    )
    with pytest.raises(RegistryError, match="截止时间「昨天」不是有效的时间"):
        utc_text(POLICY, "昨天", "截止时间")


def test_no_field_named_as_a_secret_is_shown() -> None:
    details = {
        "token": "t",
        "query_password": "p",
        "new_pin": "1234",
        "client": 3,
        "agent": True,
        "pinned": "shown",
        "nested": {"secret": "s", "keep": [{"password": "p", "n": 1}]},
        "rows": {"cards/1": {"digest": "d"}},
    }
    shown = shown_details(json.dumps(details))
    assert shown == [
        ("agent", "是"),
        ("client", "3"),
        ("nested", '{"keep": [{"n": 1}]}'),
        ("pinned", "shown"),
        ("rows", "1 行 (state rows sealed)"),
    ]
