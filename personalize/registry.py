"""The card registry: persons, cards, status history, blacklist, reissue requests, jobs and a
hash-chained audit log, in one SQLite file (WAL) with schema migrations.

Statuses and transitions follow docs/business-rules.md. **At most one valid card per person** is a
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

from personalize.lifecycle import (
    VALID_CARD_STATUSES,
    CardStatus,
    RequestStatus,
    Subject,
    Transition,
    TransitionRefused,
    lookup,
)
from personalize.policy import RegionPolicy
from sscard.identifiers import card_number_check, validate_card_number
from sscard.records import HolderData

VALID = tuple(str(s) for s in VALID_CARD_STATUSES)
STATUS_NAMES = {str(s): s.label for s in CardStatus}

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
    # 4: reissue requests get a status (open again when their job is cancelled or fails) and
    # the agent who applied; a request may have several jobs over time (at most one live)
    """
    ALTER TABLE reissue_requests ADD COLUMN status TEXT NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'in_job', 'done'));
    ALTER TABLE reissue_requests ADD COLUMN agent TEXT;
    UPDATE reissue_requests SET status = CASE
        WHEN job_id IS NULL THEN 'open'
        WHEN (SELECT status FROM jobs WHERE jobs.id = reissue_requests.job_id) = 'done'
            THEN 'done'
        WHEN (SELECT status FROM jobs WHERE jobs.id = reissue_requests.job_id)
            IN ('cancelled', 'failed') THEN 'open'
        ELSE 'in_job' END;
    UPDATE cards SET status = 'rejected' WHERE status = 'personalizing'
        AND job_id IN (SELECT id FROM jobs WHERE status IN ('cancelled', 'failed'));
    CREATE TABLE jobs_new (
        id INTEGER PRIMARY KEY,
        request_id INTEGER NOT NULL REFERENCES reissue_requests(id),
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
    INSERT INTO jobs_new SELECT * FROM jobs;
    DROP TABLE jobs;
    ALTER TABLE jobs_new RENAME TO jobs;
    CREATE UNIQUE INDEX one_live_job_per_request ON jobs(request_id)
        WHERE status NOT IN ('done', 'failed', 'cancelled');
    """,
    # 5: 验卡单 (office verification reports): what each said, to be reprinted (补打)
    """
    CREATE TABLE office_reports (
        id INTEGER PRIMARY KEY,
        report_no TEXT UNIQUE,
        card_number TEXT,
        request_id INTEGER REFERENCES reissue_requests(id),
        at TEXT NOT NULL,
        operator TEXT NOT NULL,
        data TEXT NOT NULL
    );
    """,
    # 6: fencing tokens — each claim of a job increments ``fence``, and every write of the
    # job (step records, card updates, activation) carries and checks it; step records keep
    # the token they were written under, and ``intent`` rows mark a step begun (issue 11)
    """
    ALTER TABLE jobs ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE job_steps ADD COLUMN fence INTEGER;
    CREATE INDEX job_steps_by_job_sn ON job_steps(job_id, sn, step);
    """,
]

# The steps that must be recorded ``ok`` for a card, in its job, after it was fed, before the
# registry activates it (docs/architecture.md "How a reissued card flows").
ACTIVATION_EVIDENCE = ("chip_write", "chip_verify", "encode_stripe", "stripe_verify", "print_face")

GENESIS = "0" * 64
Clock = Callable[[], datetime]


class RegistryError(Exception):
    """A transition the rules do not allow, or an unknown card/person."""


class LeaseLost(RegistryError):
    """A station's fencing token is no longer its job's: another station claimed the job
    (or it ended), so this station may record nothing more and stops."""


def mask_id(ssn: str) -> str:
    """First 6 and last 4 characters shown: 110105********002X."""
    return ssn[:6] + "*" * (len(ssn) - 10) + ssn[-4:]


@dataclass(frozen=True)
class Agent:
    """Someone applying on the holder's behalf (委托代办): both ID cards are shown and copied
    (docs/business-rules.md "Agents")."""

    name: str
    id_number: str

    def as_text(self) -> str:
        return json.dumps({"name": self.name, "id_number": self.id_number}, ensure_ascii=False)

    @classmethod
    def from_text(cls, text: str | None) -> Agent | None:
        if not text:
            return None
        d = json.loads(text)
        return cls(str(d["name"]), str(d["id_number"]))


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
    def __init__(
        self,
        path: str | Path,
        policy: RegionPolicy,
        *,
        clock: Clock = utc_now,
        create: bool = True,
    ) -> None:
        """Open the registry at ``path``; with ``create=False`` only an existing database
        (SQLite ``mode=rw``): a missing one is a RegistryError naming the path, never a new
        empty file."""
        self.path = Path(path)
        self.policy = policy
        self.clock = clock
        if not create and not self.path.is_file():
            raise RegistryError(
                f"登记库不存在：{self.path}；新建请用 sscard registry init --db {self.path} "
                "(no registry database at this path)"
            )
        uri = f"{self.path.absolute().as_uri()}?mode={'rwc' if create else 'rw'}"
        try:
            self.db = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA busy_timeout=30000")
        except sqlite3.Error as exc:
            raise RegistryError(
                f"无法打开登记库：{self.path} (cannot open the registry database: {exc})"
            ) from None
        self._savepoints = 0
        self._migrate()

    def close(self) -> None:
        self.db.close()

    # ----------------------------------------------------------------- schema

    def _migrate(self) -> None:
        """Apply the migrations not yet applied, each in its own transaction. Foreign keys
        are off meanwhile (a migration may rebuild a table others refer to — SQLite's
        documented ALTER procedure) and checked before each commit."""
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version >= len(MIGRATIONS):
            return
        self.db.execute("PRAGMA foreign_keys=OFF")
        try:
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                with self.transaction():
                    for statement in script.split(";"):
                        if statement.strip():
                            self.db.execute(statement)
                    if self.db.execute("PRAGMA foreign_key_check").fetchone() is not None:
                        raise RegistryError(f"migration {number} breaks a foreign key")
                    self.db.execute(f"PRAGMA user_version = {number}")
        finally:
            self.db.execute("PRAGMA foreign_keys=ON")

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception. Inside an open
        transaction it is a SAVEPOINT: the caller's transaction decides, so a registry
        change and the document it produces can succeed or fail together."""
        if self.db.in_transaction:
            self._savepoints += 1
            name = f"sp{self._savepoints}"
            self.db.execute(f"SAVEPOINT {name}")
            try:
                yield self.db
            except BaseException:
                self.db.execute(f"ROLLBACK TO {name}")
                self.db.execute(f"RELEASE {name}")
                raise
            finally:
                self._savepoints -= 1
            self.db.execute(f"RELEASE {name}")
            return
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

    def request(self, request_id: int) -> sqlite3.Row:
        row: sqlite3.Row | None = self.db.execute(
            "SELECT * FROM reissue_requests WHERE id = ?", (request_id,)
        ).fetchone()
        if row is None:
            raise RegistryError(f"没有申请 {request_id} (no request {request_id})")
        return row

    def open_request(self, old_card_id: int) -> sqlite3.Row | None:
        """The card's request waiting for a job, if any."""
        row: sqlite3.Row | None = self.db.execute(
            "SELECT * FROM reissue_requests WHERE old_card_id = ? AND status = ?"
            " ORDER BY id DESC LIMIT 1",
            (old_card_id, RequestStatus.OPEN.value),
        ).fetchone()
        return row

    def blacklisted(self, card_number: str) -> bool:
        row = self.db.execute("SELECT 1 FROM blacklist WHERE card_number = ?", (card_number,))
        return row.fetchone() is not None

    # ----------------------------------------------------------------- transitions

    def rule(
        self,
        subject: Subject,
        source: str | None,
        action: str,
        *,
        evidence: str | None = None,
        agent: Agent | None = None,
    ) -> Transition:
        """The transition table's entry (``personalize.lifecycle``), with this region's
        policy flags, or ``RegistryError`` with the reason."""
        try:
            return lookup(
                subject,
                source,
                action,
                evidence=evidence,
                agent=agent is not None,
                flags={"unreport_after_formal_loss": self.policy.unreport_after_formal_loss},
            )
        except TransitionRefused as exc:
            raise RegistryError(str(exc)) from None

    def _history(
        self,
        card_id: int,
        card_number: str,
        source: str | None,
        target: str,
        operator: str,
        reason: str,
        evidence: str | None,
    ) -> None:
        now = _iso(self.clock())
        self.db.execute(
            "INSERT INTO status_history (card_id, from_status, to_status, at, operator, reason,"
            " evidence) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (card_id, source, target, now, operator, reason, evidence),
        )
        self.audit(
            operator,
            f"card.{target}",
            card_number,
            {"from": source, "to": target, "reason": reason, "evidence": evidence},
        )

    def _transition(
        self,
        card: Card,
        action: str,
        operator: str,
        reason: str,
        evidence: str | None = None,
        *,
        agent: Agent | None = None,
        lapse_at: str | None = None,
    ) -> str:
        """Move ``card`` by ``action`` as the table says (inside the caller's transaction):
        the status, its history row and the audit event. Returns the new status."""
        rule = self.rule("card", card.status, action, evidence=evidence, agent=agent)
        target = str(rule.target)
        self.db.execute(
            "UPDATE cards SET status = ?, status_since = ?, lapse_at = ? WHERE id = ?",
            (target, _iso(self.clock()), lapse_at, card.id),
        )
        if agent is not None:
            evidence = f"{evidence or ''} 代办人 agent {agent.name} {mask_id(agent.id_number)}"
            evidence = evidence.strip()
        self._history(card.id, card.card_number, card.status, target, operator, reason, evidence)
        return target

    def _move_request(self, request_id: int, action: str, operator: str, **details: Any) -> None:
        """Move a reissue request by ``action`` as the table says (inside a transaction)."""
        request = self.request(request_id)
        target = str(self.rule("request", request["status"], action).target)
        self.db.execute("UPDATE reissue_requests SET status = ? WHERE id = ?", (target, request_id))
        self.audit(
            operator,
            f"request.{action}",
            request_number(request_id),
            {"from": request["status"], "to": target, **details},
        )

    def lapse_expired(self) -> int:
        """Provisional losses past their deadline lapse back to active (docs/business-rules.md).
        Runs before reads; inside an open transaction it waits for the next read."""
        if self.db.in_transaction:
            return 0
        now = _iso(self.clock())
        rows = self.db.execute(
            "SELECT * FROM cards WHERE status = 'provisional_loss' AND lapse_at <= ?", (now,)
        ).fetchall()
        for row in rows:
            with self.transaction():
                self._transition(_card(row), "lapse", "system", "预挂失逾期未正式挂失，自动解除")
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
        """Register a person and their existing active card (migration of existing data).
        The card number and the person's data are validated first (check characters, the
        ID number's birth date, gender and region code, birth date not after today in the
        region's zone); nothing is written when they are refused."""
        validate_card_number(card_number)
        holder.validate(today=self.policy.local_date(self.clock()))
        now = _iso(self.clock())
        with self.transaction():
            if self.db.execute(
                "SELECT 1 FROM cards WHERE card_number = ?", (card_number,)
            ).fetchone():
                raise RegistryError(
                    f"卡号 {card_number} 无法登记：卡号已登记 "
                    "(cannot enroll: card number already enrolled)"
                )
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
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        person_id,
                        card_number,
                        sn,
                        card_id,
                        self.policy.region_code,
                        str(self.rule("card", None, "enroll").target),
                        now,
                        (issued_on or self.policy.local_date(self.clock())).isoformat(),
                        now,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                reason = (
                    "该持卡人已有有效卡 (cannot enroll: the person already holds a valid card)"
                    if "cards.person_id" in str(exc)
                    else f"(cannot enroll: {exc})"
                )
                raise RegistryError(f"卡号 {card_number} 无法登记：{reason}") from None
            self.audit(operator, "card.enroll", card_number, {"ssn_tail": holder.ssn[-4:]})
        return self.card(card_number)

    def report_loss(self, card_number: str, *, operator: str, channel: str = "counter") -> Card:
        card = self.card(card_number)
        self.rule("card", card.status, "report_loss")
        lapse = _iso(self.policy.lapse_deadline(self.clock()))
        with self.transaction():
            self._transition(card, "report_loss", operator, f"预挂失 via {channel}", lapse_at=lapse)
        return self.card(card_number)

    def formalize_loss(
        self, card_number: str, *, operator: str, evidence: str, agent: Agent | None = None
    ) -> Card:
        card = self.card(card_number)
        with self.transaction():
            self._transition(card, "formalize_loss", operator, "正式挂失", evidence, agent=agent)
        return self.card(card_number)

    def unreport(
        self, card_number: str, *, operator: str, evidence: str, agent: Agent | None = None
    ) -> Card:
        card = self.card(card_number)
        with self.transaction():
            self._transition(card, "unreport", operator, "解挂", evidence, agent=agent)
        return self.card(card_number)

    def request_reissue(
        self,
        card_number: str,
        *,
        operator: str,
        counter: str = "",
        kind: str = "reissue",
        fee: int | None = None,
        agent: Agent | None = None,
    ) -> sqlite3.Row:
        """Reissue after formal loss (→ 补卡中), or replacement after a damage verdict
        (→ 换卡中); returns the request (the 领卡证明 data). The fee of a reissue is the
        policy's 补卡工本费 unless given; a replacement's comes from the verdict."""
        if kind not in ("reissue", "replacement"):
            raise RegistryError(f"kind is reissue or replacement, not {kind!r}")
        action = f"request_{kind}"
        card = self.card(card_number)
        self.rule("card", card.status, action, agent=agent)
        fee = self.policy.fee_reissue if fee is None and kind == "reissue" else (fee or 0)
        today = self.policy.local_date(self.clock())
        collect = self.policy.collection_date(today)
        with self.transaction():
            self._transition(
                card,
                action,
                operator,
                "补卡申请" if kind == "reissue" else "换卡申请",
                agent=agent,
            )
            cur = self.db.execute(
                "INSERT INTO reissue_requests (person_id, old_card_id, kind, applied_on,"
                " collect_on, place, fee, operator, counter, status, agent)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    str(self.rule("request", None, action).target),
                    None if agent is None else agent.as_text(),
                ),
            )
            request_id = int(cur.lastrowid or 0)
            self.audit(
                operator,
                f"request.{kind}",
                card_number,
                {
                    "request": request_id,
                    "collect_on": collect.isoformat(),
                    "fee": fee,
                    "agent": agent is not None,
                },
            )
            return self.request(request_id)

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

    def _next_free_number(self) -> str:
        """The region's next 卡号 not in use — enrolled, allocated or blacklisted — and the
        counter moved past it (call inside the transaction that uses the number)."""
        prefix = self.policy.card_number_prefix
        row = self.db.execute(
            "SELECT next FROM card_numbers WHERE prefix = ?", (prefix,)
        ).fetchone()
        serial = int(row["next"]) if row else 1
        while True:
            if serial > 9_999_999:
                raise RegistryError(f"卡号段 {prefix} 已用尽 (card numbers of {prefix} exhausted)")
            first8 = f"{prefix}{serial:07d}"
            number = first8 + card_number_check(first8)
            serial += 1
            used = self.db.execute(
                "SELECT 1 FROM cards WHERE card_number = ?"
                " UNION ALL SELECT 1 FROM blacklist WHERE card_number = ?",
                (number, number),
            ).fetchone()
            if used is None:
                break
        self.db.execute(
            "INSERT INTO card_numbers (prefix, next) VALUES (?, ?) ON CONFLICT"
            "(prefix) DO UPDATE SET next = excluded.next",
            (prefix, serial),
        )
        return number

    def allocate_card_number(self) -> str:
        """Reserve the next free 卡号 of this region: prefix + 7 digits + check character
        (for enrolling; a job's new card gets its number in ``start_card``)."""
        with self.transaction():
            return self._next_free_number()

    def start_card(self, job_id: int, *, operator: str) -> Card:
        """The job's new card (制卡中) with a fresh number, allocated and inserted in one
        transaction — a number in use is never handed out."""
        with self.transaction() as db:
            job = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if job is None:
                raise RegistryError(f"没有作业 {job_id} (no job {job_id})")
            target = str(self.rule("card", None, "start").target)
            number = self._next_free_number()
            now = _iso(self.clock())
            cur = db.execute(
                "INSERT INTO cards (person_id, card_number, region, status, status_since,"
                " job_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job["person_id"], number, self.policy.region_code, target, now, job_id, now),
            )
            card_id = int(cur.lastrowid or 0)
            db.execute("UPDATE jobs SET new_card_id = ? WHERE id = ?", (card_id, job_id))
            self._history(card_id, number, None, target, operator, "开始制卡", f"job {job_id}")
            return self.card_by_id(card_id)

    def release_card(self, card_id: int, *, operator: str, reason: str) -> Card:
        """An unfinished new card leaves its job (废卡): cancelled or failed job, card
        written off. Its number is never reused; a card that reached a chip (it has an SN)
        is blacklisted, since what was written may be on it."""
        with self.transaction() as db:
            card = self.card_by_id(card_id)
            self._transition(card, "release", operator, reason, f"job {card.job_id}")
            if card.sn is not None:
                db.execute(
                    "INSERT INTO blacklist (card_number, sn, card_id, reason, at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (card.card_number, card.sn, card.card_id, "written off", _iso(self.clock())),
                )
            db.execute("UPDATE jobs SET new_card_id = NULL WHERE new_card_id = ?", (card_id,))
            return self.card_by_id(card_id)

    def check_fence(self, job_id: int, fence: int | None) -> sqlite3.Row:
        """The job, if ``fence`` is still its token and it is running (call inside the
        transaction that writes for the job); ``LeaseLost`` otherwise."""
        job: sqlite3.Row | None = self.db.execute(
            "SELECT * FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        if job is None:
            raise RegistryError(f"没有作业 {job_id} (no job {job_id})")
        if fence is None or job["fence"] != fence or job["status"] != "running":
            raise LeaseLost(
                f"作业 {job_id} 的租约已失效（现由工位 {job['station']} 持有，状态 "
                f"{job['status']}），本工位停止，不再记录或操作设备 (this station lost the job's "
                f"lease: token {fence} is not the job's {job['fence']}; stopping)"
            )
        return job

    def claim(self, job_id: int, station: str, *, until: datetime, target: str) -> int:
        """The job's lease for ``station`` until ``until``, and its new fencing token
        (call inside the transaction that checked the claim may be made)."""
        self.db.execute(
            "UPDATE jobs SET status = ?, station = ?, lease_until = ?, fence = fence + 1,"
            " updated_at = ? WHERE id = ?",
            (target, station, _iso(until), _iso(self.clock()), job_id),
        )
        return int(self.db.execute("SELECT fence FROM jobs WHERE id = ?", (job_id,)).fetchone()[0])

    def sn_seen(self, sn: str) -> bool:
        """A chip SN the registry already knows — a card made, fed to a job or blacklisted:
        such a card is never taken as a blank."""
        row = self.db.execute(
            "SELECT 1 FROM cards WHERE sn = ? UNION ALL SELECT 1 FROM blacklist WHERE sn = ?"
            " UNION ALL SELECT 1 FROM job_steps WHERE sn = ? LIMIT 1",
            (sn, sn, sn),
        ).fetchone()
        return row is not None

    def _activation_evidence(self, job: sqlite3.Row, new: Card) -> None:
        """The card to activate is the job's current card, fed in this job, and every step
        of :data:`ACTIVATION_EVIDENCE` was recorded ``ok`` for its SN in this job after it
        was fed (print_face ``ok`` is recorded only once the printer has printed and ejected
        it), and it was not written off since; else ``RegistryError``."""
        sn = new.sn
        if sn is None or sn != job["sn"]:
            raise RegistryError(
                f"拒绝启用：新卡 {new.card_number} 的芯片序列号与作业当前卡不符 "
                "(refusing to activate: the card is not the job's current card)"
            )
        fed = self.db.execute(
            "SELECT MAX(id) FROM job_steps WHERE job_id = ? AND sn = ? AND step = 'feed'"
            " AND result = 'ok'",
            (job["id"], sn),
        ).fetchone()[0]
        rows = self.db.execute(
            "SELECT step, result FROM job_steps WHERE job_id = ? AND sn = ? AND id > ? ORDER BY id",
            (job["id"], sn, fed or 0),
        ).fetchall()
        done = {r["step"] for r in rows if r["result"] == "ok"}
        missing = [step for step in ACTIVATION_EVIDENCE if step not in done]
        if fed is None or missing or any(r["step"] == "card" for r in rows):
            raise RegistryError(
                f"拒绝启用：卡 {sn} 在本作业中未完成 {', '.join(missing) or 'feed'} 或已报废 "
                "(refusing to activate: the card was not written, verified, encoded and printed "
                "in this job)"
            )
        if self.db.execute("SELECT 1 FROM blacklist WHERE sn = ?", (sn,)).fetchone():
            raise RegistryError(f"拒绝启用：芯片序列号 {sn} 已列入黑名单 (the SN is blacklisted)")

    def activate(
        self, new_card_id: int, *, operator: str, job_id: int, fence: int | None = None
    ) -> Card:
        """One transaction: old card → void + blacklist, new card → active, the request
        done, audit event — only for the job's station holding its token (``fence``) and a
        card with the whole evidence of :meth:`_activation_evidence`."""
        with self.transaction():
            new = self.card_by_id(new_card_id)
            job = self.check_fence(job_id, fence)
            if job["new_card_id"] != new.id:
                raise RegistryError("the card does not belong to this job")
            self._activation_evidence(job, new)
            old = self.card_by_id(int(job["old_card_id"]))
            self.rule("card", new.status, "activate")
            self._transition(old, "retire", operator, "新卡启用，旧卡注销", f"job {job_id}")
            self.db.execute(
                "INSERT INTO blacklist (card_number, sn, card_id, reason, at)"
                " VALUES (?, ?, ?, ?, ?)",
                (old.card_number, old.sn, old.card_id, "replaced", _iso(self.clock())),
            )
            self._transition(new, "activate", operator, "新卡启用", f"job {job_id}")
            self._move_request(int(job["request_id"]), "complete", operator, job=job_id)
            self.audit(
                operator,
                "card.activate",
                new.card_number,
                {"job": job_id, "old_card": old.card_number, "blacklisted": True},
            )
        return self.card_by_id(new_card_id)

    # ----------------------------------------------------------------- 验卡单 (office reports)

    def add_office_report(
        self,
        *,
        card_number: str,
        operator: str,
        request_id: int | None,
        data: dict[str, Any],
    ) -> sqlite3.Row:
        """Keep a 验卡单's content (call inside the transaction that audits the diagnosis).
        Its number ``YK-<local date>-<row id>`` is unique by the row id, not by the clock."""
        now = self.clock()
        cur = self.db.execute(
            "INSERT INTO office_reports (card_number, request_id, at, operator, data)"
            " VALUES (?, ?, ?, ?, ?)",
            (card_number, request_id, _iso(now), operator, json.dumps(data, ensure_ascii=False)),
        )
        report_no = f"YK-{self.policy.local_date(now):%Y%m%d}-{cur.lastrowid:06d}"
        self.db.execute(
            "UPDATE office_reports SET report_no = ? WHERE id = ?", (report_no, cur.lastrowid)
        )
        row = self.office_report(report_no)
        assert row is not None
        return row

    def office_report(self, report_no: str) -> sqlite3.Row | None:
        """A stored 验卡单 by its number, or None."""
        row: sqlite3.Row | None = self.db.execute(
            "SELECT * FROM office_reports WHERE report_no = ?", (report_no,)
        ).fetchone()
        return row


def request_number(request_id: int) -> str:
    """The number a request is known by on its 领卡证明: ``SSCARD-REQ-000001``."""
    return f"SSCARD-REQ-{request_id:06d}"


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
