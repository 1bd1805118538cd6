"""The outbox repository (回盘, issue 15 Deliver 5; docs/outbox.md): every SQL statement about
the tables ``outbox_events`` and ``outbox_destinations``.

An event is written by :meth:`OutboxStore.record`, called by the registry's one card
transition (``Registry._transition``) inside its write transaction: the state change and its
event commit or roll back together (the transactional outbox pattern). Its ``seq`` is the
next number after the last under the writers' lock, like the audit chain's ids: gap-free and
in commit order, so a destination's progress is one number (``delivered_through``) and a
receiver can see a gap.

A destination's row is its delivery state: the last event it acknowledged, the attempts at
the next one, when to try again, and whether the dispatcher gave up on it (``failed_at``) —
one destination's state never holds back another's. The store never opens a transaction of
its own (docs/architecture.md "The store layer").
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from enum import StrEnum

from personalize.database import Database, Row

# The card transitions the card-management system (卡管) and the bank hear of, by the
# transition table's action (personalize/lifecycle.py), and the event kind each makes
# (docs/business-rules.md "Channels…": every activated, voided or frozen card, and the end
# of a freeze). Other transitions (a reissue applied for, an unfinished card written off)
# change nothing a terminal or a bank acts on.
EVENT_KINDS: dict[str, str] = {
    "activate": "card.activated",
    "retire": "card.voided",
    "report_loss": "card.frozen",
    "formalize_loss": "card.frozen",
    "unreport": "card.unfrozen",
    "lapse": "card.unfrozen",
}


class DeliveryState(StrEnum):
    """An event's state at one destination (``sscard outbox list --status``)."""

    PENDING = "pending"  # not yet acknowledged (being tried, or behind one that is)
    FAILED = "failed"  # the dispatcher gave up after the retry policy's attempts
    DELIVERED = "delivered"  # acknowledged with a 2xx


DELIVERY_LABELS = {
    DeliveryState.PENDING: "待送达",
    DeliveryState.FAILED: "失败",
    DeliveryState.DELIVERED: "已送达",
}


@dataclass(frozen=True)
class OutboxEvent:
    """One ``outbox_events`` row: ``body`` is exactly what is sent (JSON, no personal data
    beyond the card's numbers, never a PIN, key or track)."""

    seq: int
    event_id: str  # UUID, the id a receiver deduplicates by
    kind: str
    card_number: str
    status: str
    at: str
    body: str


@dataclass(frozen=True)
class Destination:
    """One ``outbox_destinations`` row: a webhook's delivery state."""

    name: str
    delivered_through: int  # the last event (seq) it acknowledged; 0: none yet
    attempt_event: int | None  # the event ``attempts`` counts tries of
    attempts: int
    next_attempt_at: str | None  # not before (the backoff)
    last_error: str | None
    failed_at: str | None  # given up on ``attempt_event``: until an operator's retry


@dataclass(frozen=True)
class OutboxEntry:
    """An event as an operator lists it: at one destination (None: no destination yet)."""

    event: OutboxEvent
    destination: str | None
    state: DeliveryState
    attempts: int
    last_error: str | None
    next_attempt_at: str | None


@dataclass(frozen=True)
class DestinationStatus:
    """How far one destination is (the auditor's 回盘 page): its events ``delivered``,
    ``failed`` (the one it gave up on, 0 or 1) and ``pending`` (the rest, not yet
    acknowledged) — the counts of :data:`_STATE` at that destination — with the event it is
    trying (``attempt_event``), the tries, the last error and when it gave up."""

    name: str
    delivered: int
    failed: int
    pending: int
    attempt_event: OutboxEvent | None
    attempts: int
    last_error: str | None
    failed_at: str | None


MIGRATION = """
    CREATE TABLE outbox_events (
        id INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        card_number TEXT NOT NULL,
        status TEXT NOT NULL,
        at TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE TABLE outbox_destinations (
        name TEXT PRIMARY KEY,
        delivered_through BIGINT NOT NULL DEFAULT 0,
        attempt_event BIGINT,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        last_error TEXT,
        failed_at TEXT
    );
"""


def _event(row: Row) -> OutboxEvent:
    return OutboxEvent(
        seq=int(row["id"]),
        event_id=row["event_id"],
        kind=row["kind"],
        card_number=row["card_number"],
        status=row["status"],
        at=row["at"],
        body=row["payload"],
    )


def _destination(row: Row) -> Destination:
    return Destination(
        name=row["name"],
        delivered_through=int(row["delivered_through"]),
        attempt_event=None if row["attempt_event"] is None else int(row["attempt_event"]),
        attempts=int(row["attempts"]),
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        failed_at=row["failed_at"],
    )


# An event's state at a destination ``d``, in SQL (the one definition ``entries`` filters by)
_STATE = (
    "CASE WHEN d.name IS NULL THEN 'pending'"
    " WHEN e.id <= d.delivered_through THEN 'delivered'"
    " WHEN d.failed_at IS NOT NULL AND e.id = d.attempt_event THEN 'failed'"
    " ELSE 'pending' END"
)


class OutboxStore:
    """The outbox on the registry's connection (call inside ``Registry.transaction()`` to
    write)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------- events

    def record(
        self,
        *,
        action: str,
        card_number: str,
        status: str,
        previous: str | None,
        region: str,
        sn: str | None,
        card_id: str | None,
        at: str,
    ) -> OutboxEvent | None:
        """The event of a card transition by ``action`` (inside its transaction), or None
        when the action is not one the outside world hears of (:data:`EVENT_KINDS`)."""
        kind = EVENT_KINDS.get(action)
        if kind is None:
            return None
        seq = int(self.db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM outbox_events").scalar())
        event_id = str(uuid.uuid4())
        body = json.dumps(
            {
                "id": event_id,
                "seq": seq,
                "kind": kind,
                "card_number": card_number,
                "status": status,
                "previous_status": previous,
                "region": region,
                "sn": sn,
                "card_id": card_id,
                "at": at,
            },
            ensure_ascii=False,
            sort_keys=True,
        )
        self.db.execute(
            "INSERT INTO outbox_events (id, event_id, kind, card_number, status, at, payload)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, event_id, kind, card_number, status, at, body),
        )
        return OutboxEvent(seq, event_id, kind, card_number, status, at, body)

    def event(self, key: str) -> OutboxEvent | None:
        """An event by its sequence number or its UUID."""
        column, value = ("id", int(key)) if key.isdigit() else ("event_id", key)
        row = self.db.execute(
            f"SELECT * FROM outbox_events WHERE {column} = ?", (value,)
        ).fetchone()
        return None if row is None else _event(row)

    def events_after(self, seq: int, *, limit: int) -> list[OutboxEvent]:
        """The next ``limit`` events after ``seq``, in order."""
        rows = self.db.execute(
            "SELECT * FROM outbox_events WHERE id > ? ORDER BY id LIMIT ?", (seq, limit)
        )
        return [_event(r) for r in rows]

    # ------------------------------------------------------------- destinations

    def destination(self, name: str) -> Destination:
        """The destination's delivery state, its row made when first named (a new
        destination starts at the first event)."""
        self.db.execute(
            "INSERT INTO outbox_destinations (name) VALUES (?) ON CONFLICT (name) DO NOTHING",
            (name,),
        )
        row = self.db.execute(
            "SELECT * FROM outbox_destinations WHERE name = ?", (name,)
        ).fetchone()
        assert row is not None
        return _destination(row)

    def acknowledged(self, name: str, seq: int) -> bool:
        """``name`` acknowledged event ``seq``: its progress moves on, the attempts start
        over. False (nothing changed) when it had already moved past (another dispatcher)."""
        return (
            self.db.execute(
                "UPDATE outbox_destinations SET delivered_through = ?, attempt_event = NULL,"
                " attempts = 0, next_attempt_at = NULL, last_error = NULL, failed_at = NULL"
                " WHERE name = ? AND delivered_through < ?",
                (seq, name, seq),
            ).rowcount
            == 1
        )

    def attempt_failed(
        self,
        name: str,
        seq: int,
        *,
        attempts: int,
        error: str,
        next_attempt_at: str,
        failed_at: str | None,
    ) -> None:
        """Try ``attempts`` of event ``seq`` at ``name`` failed with ``error``: try again
        from ``next_attempt_at``, or never (``failed_at``: given up)."""
        self.db.execute(
            "UPDATE outbox_destinations SET attempt_event = ?, attempts = ?, last_error = ?,"
            " next_attempt_at = ?, failed_at = ? WHERE name = ?",
            (seq, attempts, error, next_attempt_at, failed_at, name),
        )

    def requeue(self, seq: int, *, destination: str | None, at: str) -> list[str]:
        """The destinations that had given up on event ``seq`` try it again from ``at``
        with a fresh count of attempts (all of them, or only ``destination``)."""
        where = "attempt_event = ? AND failed_at IS NOT NULL"
        params: tuple[object, ...] = (seq,)
        if destination is not None:
            where, params = f"{where} AND name = ?", (seq, destination)
        names = [
            str(r["name"])
            for r in self.db.execute(
                f"SELECT name FROM outbox_destinations WHERE {where} ORDER BY name", params
            )
        ]
        self.db.execute(
            "UPDATE outbox_destinations SET attempts = 0, failed_at = NULL, last_error = NULL,"
            f" next_attempt_at = ? WHERE {where}",
            (at, *params),
        )
        return names

    # ------------------------------------------------------------- the operators' list

    def _slowest(self) -> int:
        """The least progress of a known destination (0: none known)."""
        return int(
            self.db.execute(
                "SELECT COALESCE(MIN(delivered_through), 0) FROM outbox_destinations"
            ).scalar()
        )

    def entries(
        self, *, state: DeliveryState | None = None, after: int = 0, limit: int = 50
    ) -> list[OutboxEntry]:
        """Up to ``limit`` events after ``after`` (keyset on ``seq``), each at every known
        destination (or at none yet), in order; with ``state``, the events in that state
        somewhere, at the destinations where they are. The attempts and last error are a
        destination's for the event it is trying."""
        if state in (DeliveryState.PENDING, DeliveryState.FAILED):  # none at or before
            after = max(after, self._slowest())  # every destination's progress
        wanted = "" if state is None else f" WHERE {_STATE} = ?"
        events = (
            "SELECT * FROM outbox_events e WHERE e.id > ?"
            + (
                ""
                if state is None
                else " AND EXISTS (SELECT 1 FROM (SELECT 1 AS one) x"
                f" LEFT JOIN outbox_destinations d ON 1 = 1{wanted})"
            )
            + " ORDER BY e.id LIMIT ?"
        )
        rows = self.db.execute(
            f"SELECT e.*, d.name, d.attempt_event, d.attempts, d.last_error,"
            f" d.next_attempt_at, {_STATE} AS state FROM ({events}) e"
            f" LEFT JOIN outbox_destinations d ON 1 = 1{wanted} ORDER BY e.id, d.name",
            (after, limit) if state is None else (after, str(state), limit, str(state)),
        )
        entries = []
        for r in rows:
            trying = r["attempt_event"] is not None and int(r["attempt_event"]) == int(r["id"])
            entries.append(
                OutboxEntry(
                    event=_event(r),
                    destination=r["name"],
                    state=DeliveryState(r["state"]),
                    attempts=int(r["attempts"]) if trying else 0,
                    last_error=r["last_error"] if trying else None,
                    next_attempt_at=r["next_attempt_at"] if trying else None,
                )
            )
        return entries

    # ------------------------------------------------------------- the auditor's status

    def event_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM outbox_events").scalar())

    def destination_status(self) -> list[DestinationStatus]:
        """Every known destination's counts, by name. An event is delivered at or before
        ``delivered_through``, failed when it is the ``attempt_event`` given up on, pending
        otherwise (as :data:`_STATE` says): counted by the primary key's range, not by a
        walk over the events."""
        total = self.event_count()
        statuses = []
        for d in self.db.execute("SELECT * FROM outbox_destinations ORDER BY name").fetchall():
            destination = _destination(d)
            delivered = int(
                self.db.execute(
                    "SELECT COUNT(*) FROM outbox_events WHERE id <= ?",
                    (destination.delivered_through,),
                ).scalar()
            )
            trying = (
                None if destination.attempt_event is None
                else self.event(str(destination.attempt_event))
            )  # fmt: skip
            failed = int(
                trying is not None
                and destination.failed_at is not None
                and trying.seq > destination.delivered_through
            )
            statuses.append(
                DestinationStatus(
                    name=destination.name,
                    delivered=delivered,
                    failed=failed,
                    pending=total - delivered - failed,
                    attempt_event=trying,
                    attempts=destination.attempts,
                    last_error=destination.last_error,
                    failed_at=destination.failed_at,
                )
            )
        return statuses
