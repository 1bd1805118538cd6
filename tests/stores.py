"""Test helpers that do the same thing to a registry on either database (tests/conftest.py
``new_db``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from personalize.database import Database, open_database
from personalize.registry import ACTIVATION_EVIDENCE, Registry
from simulator.factory import SAMPLE_HOLDER


@contextmanager
def inserts_fail(db: Database, table: str, message: str) -> Iterator[None]:
    """Every INSERT into ``table`` fails with ``message`` while the ``with`` lasts (a full
    disk, a lost connection), by a trigger — SQLite ``RAISE(ABORT)``, PostgreSQL ``RAISE
    EXCEPTION``."""
    name = f"fail_{table}"
    if db.dialect == "sqlite":
        db.execute(
            f"CREATE TRIGGER {name} BEFORE INSERT ON {table}"
            f" BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )
    else:
        db.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql"
            f" AS $$ BEGIN RAISE EXCEPTION '{message}'; END $$"
        )
        db.execute(
            f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()"
        )
    try:
        yield
    finally:
        db.execute(f"DROP TRIGGER {name}" + ("" if db.dialect == "sqlite" else f" ON {table}"))


def behind_its_back(location: str | Path, sql: str) -> None:
    """Run ``sql`` on the registry at ``location`` through a connection of its own, as the
    ``sqlite3`` shell or ``psql`` would — not through sscard."""
    db = open_database(location, create=False)
    try:
        db.execute(sql)
    finally:
        db.close()


# What a station's ``chip_write`` records (personalize/jobs.py): the issue date it wrote to
# EF05, which activation keeps as the card's 发卡日期 (the start of its validity).
ISSUE_DATE = "2026-11-25"


def step_details(step: str) -> str:
    """A recorded step's details as a station writes them (JSON)."""
    return f'{{"issue_date": "{ISSUE_DATE}"}}' if step == "chip_write" else "{}"


FED_SN = "5343000000000001"


def fed_job(registry: Registry) -> tuple[int, int]:
    """A reissue job (id 1) for a new holder, its new card started and fed with ``FED_SN``
    (no step recorded yet): (job id, new card id)."""
    number = registry.allocate_card_number()
    registry.enroll(SAMPLE_HOLDER, number, operator="op")
    registry.formalize_loss(number, operator="op", evidence="ID")
    request = registry.request_reissue(number, operator="op")
    old = registry.card(number)
    now = registry.clock().isoformat()
    with registry.transaction() as db:
        db.execute(
            "INSERT INTO jobs (request_id, person_id, old_card_id, holder, status,"
            " operator, created_at, updated_at) VALUES (?, ?, ?, '{}', 'queued', 'op', ?, ?)",
            (request.id, old.person_id, old.id, now, now),
        )
        db.execute("INSERT INTO job_photos (job_id, photo) VALUES (1, ?)", (b"\x00",))
        db.execute("UPDATE reissue_requests SET status = 'in_job', job_id = 1")
    card = registry.start_card(1, operator="op")
    with registry.transaction() as db:
        db.execute("UPDATE jobs SET sn = ? WHERE id = 1", (FED_SN,))
        db.execute("UPDATE cards SET sn = ? WHERE id = ?", (FED_SN, card.id))
    return 1, card.id


def record_steps(registry: Registry, *names: str, result: str = "ok") -> None:
    """Job 1's steps recorded for ``FED_SN``, as a station records them."""
    now = registry.clock().isoformat()
    with registry.transaction() as db:
        for name in names:
            db.execute(
                "INSERT INTO job_steps (job_id, step, result, sn, at, details)"
                " VALUES (1, ?, ?, ?, ?, ?)",
                (name, result, FED_SN, now, step_details(name)),
            )


def running_job(
    registry: Registry, number: str, sn: str, station: str, *, evidence: bool = True
) -> tuple[int, int]:
    """A running job of ``station`` (token 1) for card ``number``'s open request, its new
    card ``sn`` fed (and, with ``evidence``, written, verified, encoded and printed): (job
    id, new card id)."""
    old = registry.card(number)
    request = registry.open_request(old.id)
    assert request is not None
    with registry.transaction() as db:
        job = db.insert(
            "INSERT INTO jobs (request_id, person_id, old_card_id, holder, status, operator,"
            " created_at, updated_at, sn, fence, station) VALUES (?, ?, ?, '{}', 'running',"
            " 'op', 'now', 'now', ?, 1, ?)",
            (request.id, old.person_id, old.id, sn, station),
        )
        db.execute("INSERT INTO job_photos (job_id, photo) VALUES (?, ?)", (job, b"\x00"))
        db.execute(
            "UPDATE reissue_requests SET status = 'in_job', job_id = ? WHERE id = ?",
            (job, request.id),
        )
    new = registry.start_card(job, operator="op")
    with registry.transaction() as db:
        db.execute("UPDATE cards SET sn = ? WHERE id = ?", (sn, new.id))
        for step in ("feed", *(ACTIVATION_EVIDENCE if evidence else ())):
            db.execute(
                "INSERT INTO job_steps (job_id, step, result, sn, at, details, fence)"
                " VALUES (?, ?, 'ok', ?, 'now', ?, 1)",
                (job, step, sn, step_details(step)),
            )
    return job, new.id


def before_changes(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """``registry``, opened at a schema older than the 换领's (``change_store.MIGRATION``),
    acting as the code of that schema: there is no 换领 whose new ID number an enrolment
    must leave free (``Registry.enroll`` asks ``ChangeStore.pending_for``)."""
    monkeypatch.setattr(registry.changes, "pending_for", lambda ssn: None)
    return registry
