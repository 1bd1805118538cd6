"""A registry made before the keyed audit (schema 5, plain SHA-256 chain) is upgraded only
with the audit key: its events keep their hashes, one keyed ``audit.adopt`` event explains
the rows present then, and the old part of the chain is sealed by it."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from personalize.policy import load_policy
from personalize.registry import MIGRATIONS, Registry, RegistryError
from tests.audit_key import AUDIT_KEY
from tests.clock import pinned_clock

POLICY = load_policy("default")


def old_registry(path: Path) -> None:
    """Schema 5 with one card and the two SHA-256-chained events of its enrolment and loss."""
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:5]:
        db.executescript(script)
    db.executescript(
        """
        INSERT INTO persons VALUES (1, '11010519491231002X', '张三', '2', '01', '110105',
            '1949-12-31', '2026-11-20T01:00:00+00:00');
        INSERT INTO cards (id, person_id, card_number, region, status, status_since, created_at)
            VALUES (1, 1, 'H00000012', '371700', 'provisional_loss',
                    '2026-11-24T01:00:00+00:00', '2026-11-20T01:00:00+00:00');
        PRAGMA user_version = 5;
        """
    )
    prev = "0" * 64
    for at, action in (("2026-11-20T01:00:00+00:00", "card.enroll"),
                       ("2026-11-24T01:00:00+00:00", "card.provisional_loss")):  # fmt: skip
        body = json.dumps([prev, at, "op1", action, "H00000012", "{}"], ensure_ascii=False)
        digest = hashlib.sha256(body.encode()).hexdigest()
        db.execute(
            "INSERT INTO audit_events (at, operator, action, subject, details, prev_hash, hash)"
            " VALUES (?, 'op1', ?, 'H00000012', '{}', ?, ?)",
            (at, action, prev, digest),
        )
        prev = digest
    db.commit()
    db.close()


def test_upgrade_needs_the_key_and_adopts_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_registry(path)
    with pytest.raises(RegistryError, match="give the audit key"):
        Registry(path, POLICY, clock=pinned_clock, create=False)
    registry = Registry(path, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY, create=False)
    assert registry.verify_audit() == (3, [])
    adopt = registry.db.execute("SELECT * FROM audit_events WHERE id = 3").fetchone()
    assert (adopt["action"], json.loads(adopt["details"])["legacy_events"]) == ("audit.adopt", 2)
    assert registry.card("H00000012").status == "provisional_loss"
    registry.unreport("H00000012", operator="op1", evidence="居民身份证")
    assert registry.verify_audit() == (4, [])
    # an old event edited: its SHA-256 no longer matches; rebuilt, the keyed event's link breaks
    registry.db.execute("UPDATE audit_events SET operator = 'mallory' WHERE id = 1")
    assert registry.verify_audit()[1] == [
        "审计事件 1 内容被改动或哈希被重算 (event 1: its content was altered or its hash "
        "recomputed)"
    ]
    prev = "0" * 64
    old = registry.db.execute("SELECT * FROM audit_events WHERE id <= 2 ORDER BY id")
    for row in old.fetchall():
        fields = [prev, row["at"], row["operator"], row["action"], row["subject"], "{}"]
        prev = hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()
        registry.db.execute(
            "UPDATE audit_events SET prev_hash = ?, hash = ? WHERE id = ?",
            (fields[0], prev, row["id"]),
        )
    assert registry.verify_audit()[1] == [
        "审计事件 3 链接断开 (event 3: broken link — an event before it changed or is gone)"
    ]
