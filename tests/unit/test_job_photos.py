"""A job's photo lives outside the hot jobs table (issue 13, item 2): the migration moves the
photos of an existing registry into ``job_photos``, the job row's audit digest still covers
the photo, and a photo changed outside sscard is found by ``verify_audit``. Real SQLite files
at the schema before the migration (the migrations up to it), a pinned clock."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import personalize.registry as registry_module
from personalize.policy import load_policy
from personalize.registry import MIGRATIONS, PHOTO_MIGRATION, Registry
from simulator.factory import SAMPLE_HOLDER, sample_photo
from tests.audit_key import AUDIT_KEY
from tests.clock import PINNED, pinned_clock
from tests.stores import before_changes

POLICY = load_policy("default")


def _old_registry_with_a_job(path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """A registry at the schema before the photo migration, with one audited job whose photo
    is in its row, as the code of that schema wrote it."""
    monkeypatch.setattr(
        registry_module, "MIGRATIONS", MIGRATIONS[: MIGRATIONS.index(PHOTO_MIGRATION)]
    )
    old = before_changes(
        Registry(path, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY), monkeypatch
    )
    number = old.allocate_card_number()
    card = old.enroll(SAMPLE_HOLDER, number, operator="op")
    old.formalize_loss(number, operator="op", evidence="身份证")
    request = old.request_reissue(number, operator="op")
    photo = sample_photo("old")
    with old.transaction() as db:
        db.execute(
            "INSERT INTO jobs (request_id, person_id, old_card_id, holder, photo, status,"
            " operator, created_at, updated_at) VALUES (?, ?, ?, '{}', ?, 'queued', 'op', ?, ?)",
            (request.id, card.person_id, card.id, photo, PINNED.isoformat(), PINNED.isoformat()),
        )
        old.audit("op", "job.submit", "job-1", {})
    assert old.verify_audit()[1] == []
    old.close()
    monkeypatch.undo()
    return photo


def test_the_migration_moves_photos_out_of_the_job_rows_and_the_audit_still_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.db"
    photo = _old_registry_with_a_job(path, monkeypatch)
    registry = Registry(path, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    assert registry.schema_version == len(MIGRATIONS)
    columns = [r["name"] for r in registry.db.execute("PRAGMA table_info(jobs)")]
    assert "photo" not in columns
    assert registry.job_photo(1) == photo
    assert registry.verify_audit()[1] == []  # the job row's digest still covers its photo


def test_a_photo_changed_outside_sscard_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.db"
    _old_registry_with_a_job(path, monkeypatch)
    Registry(path, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY).close()  # migrated
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE job_photos SET photo = ? WHERE job_id = 1", (sample_photo("other"),))
    problems = Registry(path, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY).verify_audit()[1]
    assert any("jobs/1" in p for p in problems)


def test_a_photo_written_by_sscard_is_sealed_with_its_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.db"
    _old_registry_with_a_job(path, monkeypatch)
    registry = Registry(path, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    with registry.transaction() as db:
        db.execute("UPDATE job_photos SET photo = ? WHERE job_id = 1", (sample_photo("new"),))
        registry.audit("op", "job.photo", "job-1", {})
    assert registry.verify_audit()[1] == []
