"""The card registry: persons, cards, status history, blacklist, reissue requests, jobs and a
hash-chained audit log, in one SQLite file (WAL) with schema migrations.

Statuses and transitions follow BUSINESS-RULES.md. **At most one valid card per person** is a
database constraint: a partial unique index over the statuses in which a card is the
person's card (``VALID``). A new card is made in ``personalizing`` (not valid); activating it
voids the old one, blacklists the old identifiers and writes the audit event in one
transaction. Every transition is an audit event — who, when, why, evidence; each event's
hash covers the previous one, so ``verify_audit`` finds any edit or deletion.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from personalize.policy import RegionPolicy
from sscard.identifiers import card_number_check
from sscard.records import HolderData

VALID = ("active", "provisional_loss", "formal_loss", "reissue_pending", "replacement_pending")
STATUS_NAMES = {
    "active": "正常",
    "provisional_loss": "预挂失",
    "formal_loss": "正式挂失",
    "reissue_pending": "补卡中",
    "replacement_pending": "换卡中",
    "personalizing": "制卡中",
    "rejected": "废卡",
    "void": "注销",
}

MIGRATIONS: list[str] = [
    # 1: the initial schema
    f"""
    CREATE TABLE persons (
        id INTEGER PRIMARY KEY,
        ssn TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        gender TEXT NOT NULL,
        ethnicity TEXT NOT NULL,
        birthplace TEXT NOT NULL,
        birth_date TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE cards (
        id INTEGER PRIMARY KEY,
        person_id INTEGER NOT NULL REFERENCES persons(id),
        card_number TEXT NOT NULL UNIQUE,
        sn TEXT,
        card_id TEXT,
        region TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ({", ".join(f"'{s}'" for s in STATUS_NAMES)})),
        status_since TEXT NOT NULL,
        lapse_at TEXT,
        issued_on TEXT,
        job_id INTEGER,
        created_at TEXT NOT NULL
    );
    CREATE UNIQUE INDEX one_valid_card_per_person ON cards(person_id)
        WHERE status IN ({", ".join(f"'{s}'" for s in VALID)});
    CREATE TABLE status_history (
        id INTEGER PRIMARY KEY,
        card_id INTEGER NOT NULL REFERENCES cards(id),
        from_status TEXT,
        to_status TEXT NOT NULL,
        at TEXT NOT NULL,
        operator TEXT NOT NULL,
        reason TEXT NOT NULL,
        evidence TEXT
    );
    CREATE TABLE blacklist (
        id INTEGER PRIMARY KEY,
        card_number TEXT NOT NULL UNIQUE,
        sn TEXT,
        card_id TEXT,
        reason TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE TABLE reissue_requests (
        id INTEGER PRIMARY KEY,
        person_id INTEGER NOT NULL REFERENCES persons(id),
        old_card_id INTEGER NOT NULL REFERENCES cards(id),
        kind TEXT NOT NULL CHECK (kind IN ('reissue', 'replacement')),
        applied_on TEXT NOT NULL,
        collect_on TEXT NOT NULL,
        place TEXT NOT NULL,
        fee INTEGER NOT NULL,
        operator TEXT NOT NULL,
        counter TEXT,
        job_id INTEGER
    );
    CREATE TABLE card_numbers (
        prefix TEXT PRIMARY KEY,
        next INTEGER NOT NULL
    );
    CREATE TABLE audit_events (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        operator TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        details TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    """,
    # 2: personalization jobs and their step log
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        request_id INTEGER NOT NULL UNIQUE REFERENCES reissue_requests(id),
        person_id INTEGER NOT NULL REFERENCES persons(id),
        old_card_id INTEGER NOT NULL REFERENCES cards(id),
        new_card_id INTEGER REFERENCES cards(id),
        holder TEXT NOT NULL,
        photo BLOB NOT NULL,
        tracks BLOB,
        status TEXT NOT NULL CHECK (status IN
            ('queued', 'running', 'paused', 'done', 'failed', 'cancelled')),
        step TEXT,
        sn TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        station TEXT,
        lease_until TEXT,
        last_error TEXT,
        operator TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE job_steps (
        id INTEGER PRIMARY KEY,
        job_id INTEGER NOT NULL REFERENCES jobs(id),
        step TEXT NOT NULL,
        result TEXT NOT NULL,
        sn TEXT,
        at TEXT NOT NULL,
        details TEXT NOT NULL
    );
    """,
    # 3: issuer track images per card (sealed), for re-encoding at a street office
    """
    CREATE TABLE card_tracks (
        card_id INTEGER PRIMARY KEY REFERENCES cards(id),
        sealed BLOB NOT NULL,
        source TEXT NOT NULL,
        at TEXT NOT NULL
    );
    """,
]

GENESIS = "0" * 64
Clock = Callable[[], datetime]


class RegistryError(Exception):
    """A transition the rules do not allow, or an unknown card/person."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _event_hash(prev: str, at: str, operator: str, action: str, subject: str, details: str) -> str:
    body = json.dumps([prev, at, operator, action, subject, details], ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Card:
    id: int
    person_id: int
    card_number: str
    sn: str | None
    card_id: str | None
    region: str
    status: str
    status_since: str
    lapse_at: str | None
    issued_on: str | None
    job_id: int | None


class Registry:
    def __init__(self, path: str | Path, policy: RegionPolicy, *, clock: Clock = utc_now) -> None:
        self.path = Path(path)
        self.policy = policy
        self.clock = clock
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA busy_timeout=30000")
        self._migrate()

    def close(self) -> None:
        self.db.close()

    # ----------------------------------------------------------------- schema

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction():
                for statement in script.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ----------------------------------------------------------------- audit

    def audit(self, operator: str, action: str, subject: str, details: dict[str, Any]) -> None:
        """Append a hash-chained event (call inside the transaction it documents)."""
        row = self.db.execute("SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1").fetchone()
        prev = row["hash"] if row else GENESIS
        at = _iso(self.clock())
        text = json.dumps(details, ensure_ascii=False, sort_keys=True)
        digest = _event_hash(prev, at, operator, action, subject, text)
        self.db.execute(
            "INSERT INTO audit_events (at, operator, action, subject, details, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (at, operator, action, subject, text, prev, digest),
        )

    def verify_audit(self) -> tuple[int, list[str]]:
        """(events checked, problems): each event's hash and its link to the previous one."""
        problems: list[str] = []
        prev = GENESIS
        count = 0
        for row in self.db.execute("SELECT * FROM audit_events ORDER BY id"):
            count += 1
            if row["prev_hash"] != prev:
                problems.append(f"event {row['id']}: broken link (an event before it changed)")
            digest = _event_hash(
                row["prev_hash"],
                row["at"],
                row["operator"],
                row["action"],
                row["subject"],
                row["details"],
            )
            if digest != row["hash"]:
                problems.append(f"event {row['id']}: its content was altered")
            prev = row["hash"]
        return count, problems

    # ----------------------------------------------------------------- queries

    def card(self, card_number: str) -> Card:
        self.lapse_expired()
        row = self.db.execute(
            "SELECT * FROM cards WHERE card_number = ?", (card_number,)
        ).fetchone()
        if row is None:
            raise RegistryError(f"卡号 {card_number} 不在登记库中 (unknown card number)")
        return _card(row)

    def card_by_id(self, card_id: int) -> Card:
        row = self.db.execute("SELECT * FROM cards WHERE id = ?", (card_id,)).fetchone()
        if row is None:
            raise RegistryError(f"no card with id {card_id}")
        return _card(row)

    def person(self, person_id: int) -> sqlite3.Row:
        row: sqlite3.Row | None = self.db.execute(
            "SELECT * FROM persons WHERE id = ?", (person_id,)
        ).fetchone()
        if row is None:
            raise RegistryError(f"no person with id {person_id}")
        return row

    def person_by_ssn(self, ssn: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.db.execute(
            "SELECT * FROM persons WHERE ssn = ?", (ssn,)
        ).fetchone()
        return row

    def cards_of(self, person_id: int) -> list[Card]:
        rows = self.db.execute("SELECT * FROM cards WHERE person_id = ? ORDER BY id", (person_id,))
        return [_card(r) for r in rows]

    def history(self, card_id: int) -> list[sqlite3.Row]:
        return list(
            self.db.execute(
                "SELECT * FROM status_history WHERE card_id = ? ORDER BY id", (card_id,)
            )
        )

    def blacklisted(self, card_number: str) -> bool:
        row = self.db.execute("SELECT 1 FROM blacklist WHERE card_number = ?", (card_number,))
        return row.fetchone() is not None

    # ----------------------------------------------------------------- transitions

    def _set_status(
        self,
        card: Card,
        to: str,
        operator: str,
        reason: str,
        evidence: str | None = None,
        lapse_at: str | None = None,
    ) -> None:
        now = _iso(self.clock())
        self.db.execute(
            "UPDATE cards SET status = ?, status_since = ?, lapse_at = ? WHERE id = ?",
            (to, now, lapse_at, card.id),
        )
        self.db.execute(
            "INSERT INTO status_history (card_id, from_status, to_status, at, operator, reason,"
            " evidence) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (card.id, card.status, to, now, operator, reason, evidence),
        )
        self.audit(
            operator,
            f"card.{to}",
            card.card_number,
            {"from": card.status, "to": to, "reason": reason, "evidence": evidence},
        )

    def lapse_expired(self) -> int:
        """Provisional losses past their deadline lapse back to active (BUSINESS-RULES).
        Runs before reads; inside an open transaction it waits for the next read."""
        if self.db.in_transaction:
            return 0
        now = _iso(self.clock())
        rows = self.db.execute(
            "SELECT * FROM cards WHERE status = 'provisional_loss' AND lapse_at <= ?", (now,)
        ).fetchall()
        for row in rows:
            with self.transaction():
                self._set_status(_card(row), "active", "system", "预挂失逾期未正式挂失，自动解除")
        return len(rows)

    def enroll(
        self,
        holder: HolderData,
        card_number: str,
        *,
        operator: str,
        sn: str | None = None,
        card_id: str | None = None,
        issued_on: date | None = None,
    ) -> Card:
        """Register a person and their existing active card (migration of existing data)."""
        holder.validate()
        now = _iso(self.clock())
        with self.transaction():
            person = self.person_by_ssn(holder.ssn)
            if person is None:
                cur = self.db.execute(
                    "INSERT INTO persons (ssn, name, gender, ethnicity, birthplace, birth_date,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        holder.ssn,
                        holder.name,
                        holder.gender,
                        holder.ethnicity,
                        holder.birthplace,
                        holder.birth_date.isoformat(),
                        now,
                    ),
                )
                person_id = int(cur.lastrowid or 0)
            else:
                person_id = int(person["id"])
            try:
                self.db.execute(
                    "INSERT INTO cards (person_id, card_number, sn, card_id, region, status,"
                    " status_since, issued_on, created_at)"
                    " VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?)",
                    (
                        person_id,
                        card_number,
                        sn,
                        card_id,
                        self.policy.region_code,
                        now,
                        (issued_on or self.policy.local_date(self.clock())).isoformat(),
                        now,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise RegistryError(f"cannot enroll card {card_number}: {exc}") from None
            self.audit(operator, "card.enroll", card_number, {"ssn_tail": holder.ssn[-4:]})
        return self.card(card_number)

    def report_loss(self, card_number: str, *, operator: str, channel: str = "counter") -> Card:
        card = self.card(card_number)
        if card.status != "active":
            raise RegistryError(f"只能对正常状态的卡预挂失 (card is {STATUS_NAMES[card.status]})")
        lapse = _iso(self.policy.lapse_deadline(self.clock()))
        with self.transaction():
            self._set_status(
                card, "provisional_loss", operator, f"预挂失 via {channel}", lapse_at=lapse
            )
        return self.card(card_number)

    def formalize_loss(self, card_number: str, *, operator: str, evidence: str) -> Card:
        card = self.card(card_number)
        if card.status not in ("active", "provisional_loss"):
            raise RegistryError(f"不能正式挂失：卡片状态为 {STATUS_NAMES[card.status]}")
        if not evidence:
            raise RegistryError("正式挂失须核验身份证件 (evidence of the ID check is required)")
        with self.transaction():
            self._set_status(card, "formal_loss", operator, "正式挂失", evidence)
        return self.card(card_number)

    def unreport(self, card_number: str, *, operator: str, evidence: str) -> Card:
        card = self.card(card_number)
        allowed = (
            ("provisional_loss", "formal_loss")
            if self.policy.unreport_after_formal_loss
            else ("provisional_loss",)
        )
        if card.status not in allowed:
            raise RegistryError(
                f"不能解挂：卡片状态为 {STATUS_NAMES[card.status]} (un-report needs a reported "
                "card and no replacement request)"
            )
        with self.transaction():
            self._set_status(card, "active", operator, "解挂", evidence)
        return self.card(card_number)

    def request_reissue(
        self,
        card_number: str,
        *,
        operator: str,
        counter: str = "",
        kind: str = "reissue",
        fee: int = 0,
    ) -> sqlite3.Row:
        """Reissue after formal loss (→ 补卡中), or replacement after a damage verdict
        (→ 换卡中); returns the request (the 领卡证明 data)."""
        card = self.card(card_number)
        if kind == "reissue" and card.status != "formal_loss":
            raise RegistryError(
                f"补卡前须正式挂失：卡片状态为 {STATUS_NAMES[card.status]} "
                "(the old card must be formally reported lost)"
            )
        if kind == "replacement" and card.status not in ("active", "provisional_loss"):
            raise RegistryError(f"不能换卡：卡片状态为 {STATUS_NAMES[card.status]}")
        today = self.policy.local_date(self.clock())
        collect = self.policy.collection_date(today)
        with self.transaction():
            self._set_status(
                card,
                "reissue_pending" if kind == "reissue" else "replacement_pending",
                operator,
                "补卡申请" if kind == "reissue" else "换卡申请",
            )
            cur = self.db.execute(
                "INSERT INTO reissue_requests (person_id, old_card_id, kind, applied_on,"
                " collect_on, place, fee, operator, counter) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    card.person_id,
                    card.id,
                    kind,
                    today.isoformat(),
                    collect.isoformat(),
                    self.policy.collection_place,
                    fee,
                    operator,
                    counter,
                ),
            )
            self.audit(
                operator,
                f"request.{kind}",
                card_number,
                {"request": cur.lastrowid, "collect_on": collect.isoformat(), "fee": fee},
            )
        row: sqlite3.Row | None = self.db.execute(
            "SELECT * FROM reissue_requests WHERE id = ?", (cur.lastrowid,)
        ).fetchone()
        assert row is not None
        return row

    def set_tracks(self, card_id: int, sealed: bytes, *, source: str, operator: str) -> None:
        """Keep a card's sealed issuer track images (sealed with the context ``card-<id>``)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO card_tracks (card_id, sealed, source, at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(card_id) DO UPDATE SET sealed = excluded.sealed,"
                " source = excluded.source, at = excluded.at",
                (card_id, sealed, source, _iso(self.clock())),
            )
            self.audit(
                operator, "card.tracks", self.card_by_id(card_id).card_number, {"source": source}
            )

    def sealed_tracks(self, card_id: int) -> bytes | None:
        row = self.db.execute(
            "SELECT sealed FROM card_tracks WHERE card_id = ?", (card_id,)
        ).fetchone()
        return None if row is None else bytes(row["sealed"])

    def allocate_card_number(self) -> str:
        """The next 卡号 of this region: prefix + 7 digits + check character."""
        prefix = self.policy.card_number_prefix
        with self.transaction():
            row = self.db.execute(
                "SELECT next FROM card_numbers WHERE prefix = ?", (prefix,)
            ).fetchone()
            number = int(row["next"]) if row else 1
            self.db.execute(
                "INSERT INTO card_numbers (prefix, next) VALUES (?, ?) ON CONFLICT"
                "(prefix) DO UPDATE SET next = excluded.next",
                (prefix, number + 1),
            )
        first8 = f"{prefix}{number:07d}"
        return first8 + card_number_check(first8)

    def activate(self, new_card_id: int, *, operator: str, job_id: int) -> Card:
        """One transaction: old card → void + blacklist, new card → active, audit event."""
        with self.transaction():
            new = self.card_by_id(new_card_id)
            if new.status != "personalizing":
                raise RegistryError(f"card {new.card_number} is {new.status}, not personalizing")
            job = self.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if job is None or job["new_card_id"] != new.id:
                raise RegistryError("the card does not belong to this job")
            old = self.card_by_id(int(job["old_card_id"]))
            if old.status not in ("reissue_pending", "replacement_pending"):
                raise RegistryError(f"old card {old.card_number} is {old.status}")
            self._set_status(old, "void", operator, "新卡启用，旧卡注销", f"job {job_id}")
            self.db.execute(
                "INSERT INTO blacklist (card_number, sn, card_id, reason, at)"
                " VALUES (?, ?, ?, ?, ?)",
                (old.card_number, old.sn, old.card_id, "replaced", _iso(self.clock())),
            )
            self._set_status(new, "active", operator, "新卡启用", f"job {job_id}")
            self.audit(
                operator,
                "card.activate",
                new.card_number,
                {"job": job_id, "old_card": old.card_number, "blacklisted": True},
            )
        return self.card_by_id(new_card_id)


def _card(row: sqlite3.Row) -> Card:
    return Card(
        id=row["id"],
        person_id=row["person_id"],
        card_number=row["card_number"],
        sn=row["sn"],
        card_id=row["card_id"],
        region=row["region"],
        status=row["status"],
        status_since=row["status_since"],
        lapse_at=row["lapse_at"],
        issued_on=row["issued_on"],
        job_id=row["job_id"],
    )
