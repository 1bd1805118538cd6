"""The card stock repository (库存, issue 16; docs/business-rules.md "Card stock"): every SQL
statement about the ledger table ``stock_moves``, and the reading of the job records the
daily reconciliation checks the ledger against.

A movement is one row: blank cards received at a station (a delivery: its batch or serial
range), one card personalized (written in the activation's transaction,
``Registry.activate``), one card rejected (written in the write-off's transaction:
``JobRunner._write_off``, ``end_job``), or one taken out as a test card. Nothing is ever
updated or deleted: a station's stock is the sum of its movements. Each row names the audit
event that records it. The store never opens a transaction of its own (docs/architecture.md
"The store layer").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from personalize.database import Database, Row
from personalize.lifecycle import CardStatus


class MoveKind(StrEnum):
    """What a movement does to a station's blank-card stock."""

    RECEIVED = "received"  # 入库: a delivery of blank cards (adds)
    PERSONALIZED = "personalized"  # 制成: a card activated (takes one)
    REJECTED = "rejected"  # 废卡: a card written off, with its reason (takes one)
    TEST = "test"  # 测试卡: taken out for a test, with its reason (takes one)

    @property
    def label(self) -> str:
        return MOVE_LABELS[self]

    @property
    def sign(self) -> int:
        """+1 for what comes into stock, -1 for what leaves it."""
        return 1 if self == MoveKind.RECEIVED else -1


MOVE_LABELS = {
    MoveKind.RECEIVED: "入库",
    MoveKind.PERSONALIZED: "制成",
    MoveKind.REJECTED: "废卡",
    MoveKind.TEST: "测试卡",
}

MIGRATION = f"""
    CREATE TABLE stock_moves (
        id INTEGER PRIMARY KEY,
        station TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ({", ".join(f"'{k}'" for k in MoveKind)})),
        quantity INTEGER NOT NULL CHECK (quantity > 0),
        at TEXT NOT NULL,
        operator TEXT NOT NULL,
        batch TEXT,
        reason TEXT,
        detail TEXT,
        job_id INTEGER REFERENCES jobs(id),
        sn TEXT,
        audit_event BIGINT NOT NULL
    );
    CREATE INDEX stock_moves_by_at ON stock_moves(at);
    CREATE INDEX stock_moves_by_station ON stock_moves(station, at);
    CREATE INDEX status_history_activations_by_at ON status_history(at)
        WHERE to_status = 'active';
    CREATE INDEX status_history_releases_by_at ON status_history(at)
        WHERE to_status = 'rejected';
    CREATE INDEX job_steps_write_offs_by_at ON job_steps(at) WHERE step = 'card';
"""


@dataclass(frozen=True)
class StockMove:
    """One ``stock_moves`` row. ``batch``: a delivery's batch or card-serial range;
    ``reason``: why a card was rejected (a short kind, counted by) or taken as a test card;
    ``detail``: a rejection's full reason as the job recorded it."""

    id: int
    station: str
    kind: MoveKind
    quantity: int
    at: str
    operator: str
    batch: str | None
    reason: str | None
    detail: str | None
    job_id: int | None
    sn: str | None
    audit_event: int


@dataclass(frozen=True)
class MoveSum:
    """The movements of one station, kind and reason in a span, summed."""

    station: str
    kind: MoveKind
    reason: str | None
    quantity: int


@dataclass(frozen=True)
class JobCount:
    """What one station's jobs recorded in a span: cards activated and cards written off."""

    station: str
    activated: int
    written_off: int


_COLUMNS = (
    "id, station, kind, quantity, at, operator, batch, reason, detail, job_id, sn, audit_event"
)


def _move(row: Row) -> StockMove:
    return StockMove(
        id=int(row["id"]),
        station=row["station"],
        kind=MoveKind(row["kind"]),
        quantity=int(row["quantity"]),
        at=row["at"],
        operator=row["operator"],
        batch=row["batch"],
        reason=row["reason"],
        detail=row["detail"],
        job_id=row["job_id"],
        sn=row["sn"],
        audit_event=int(row["audit_event"]),
    )


def _span(since: str | None, until: str | None) -> tuple[str, tuple[str, ...]]:
    """``at`` in [since, until): ISO 8601 UTC text, compared as text."""
    conditions = [c for c, v in (("at >= ?", since), ("at < ?", until)) if v is not None]
    where = " WHERE " + " AND ".join(conditions) if conditions else ""
    return where, tuple(v for v in (since, until) if v is not None)


# The job side of the reconciliation, per the job's station: cards activated (a new card
# leaving 制卡中 for 正常), write-offs the runner recorded (``job_steps`` step ``card``), and
# fed cards released when their job was cancelled or failed (an SN, no write-off record).
# The statuses are literals, so that the day's rows are found by the partial indexes above.
_ACTIVATED = (
    "SELECT j.station, COUNT(*) FROM status_history h JOIN cards c ON c.id = h.card_id"
    f" JOIN jobs j ON j.id = c.job_id WHERE h.to_status = '{CardStatus.ACTIVE}'"
    f" AND h.from_status = '{CardStatus.PERSONALIZING}' AND h.at >= ? AND h.at < ?"
    " GROUP BY j.station"
)
_WRITTEN_OFF = (
    "SELECT j.station, COUNT(*) FROM job_steps s JOIN jobs j ON j.id = s.job_id"
    " WHERE s.step = 'card' AND s.at >= ? AND s.at < ? GROUP BY j.station"
)
_RELEASED_WITH_JOB = (
    "SELECT j.station, COUNT(*) FROM status_history h JOIN cards c ON c.id = h.card_id"
    f" JOIN jobs j ON j.id = c.job_id WHERE h.to_status = '{CardStatus.REJECTED}'"
    " AND h.at >= ? AND h.at < ? AND c.sn IS NOT NULL AND NOT EXISTS (SELECT 1 FROM job_steps s"
    " WHERE s.job_id = c.job_id AND s.sn = c.sn AND s.step = 'card') GROUP BY j.station"
)


class StockStore:
    """The stock ledger on one registry connection."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        kind: MoveKind,
        station: str,
        quantity: int,
        *,
        at: str,
        operator: str,
        audit_event: int,
        batch: str | None = None,
        reason: str | None = None,
        detail: str | None = None,
        job_id: int | None = None,
        sn: str | None = None,
    ) -> StockMove:
        """A new movement (inside the transaction of what it records)."""
        move_id = self.db.insert(
            "INSERT INTO stock_moves (station, kind, quantity, at, operator, batch, reason,"
            " detail, job_id, sn, audit_event) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                station,
                str(kind),
                quantity,
                at,
                operator,
                batch,
                reason,
                detail,
                job_id,
                sn,
                audit_event,
            ),
        )
        return StockMove(
            id=move_id,
            station=station,
            kind=kind,
            quantity=quantity,
            at=at,
            operator=operator,
            batch=batch,
            reason=reason,
            detail=detail,
            job_id=job_id,
            sn=sn,
            audit_event=audit_event,
        )

    def sums(self, *, since: str | None = None, until: str | None = None) -> list[MoveSum]:
        """The movements with ``at`` in [since, until) (open ends: all), summed per station,
        kind and reason."""
        where, params = _span(since, until)
        rows = self.db.execute(
            "SELECT station, kind, reason, SUM(quantity) AS total FROM stock_moves"
            f"{where} GROUP BY station, kind, reason ORDER BY station, kind, reason",
            params,
        )
        return [
            MoveSum(r["station"], MoveKind(r["kind"]), r["reason"], int(r["total"])) for r in rows
        ]

    def moves(
        self, *, since: str | None = None, until: str | None = None, kind: MoveKind | None = None
    ) -> list[StockMove]:
        """The movements with ``at`` in [since, until) (of ``kind``), in order."""
        where, params = _span(since, until)
        if kind is not None:
            where += (" AND" if where else " WHERE") + " kind = ?"
            params += (str(kind),)
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM stock_moves{where} ORDER BY id", params)
        return [_move(r) for r in rows]

    def job_counts(self, since: str, until: str) -> list[JobCount]:
        """Per station (its jobs' ``station``), the cards activated and written off with
        ``at`` in [since, until), from the job records and the cards' histories."""
        activated = self._per_station(_ACTIVATED, (since, until))
        written_off = self._per_station(_WRITTEN_OFF, (since, until))
        for station, n in self._per_station(_RELEASED_WITH_JOB, (since, until)).items():
            written_off[station] = written_off.get(station, 0) + n
        return [
            JobCount(station, activated.get(station, 0), written_off.get(station, 0))
            for station in sorted(activated.keys() | written_off.keys())
        ]

    def _per_station(self, query: str, params: tuple[str, ...]) -> dict[str, int]:
        return {str(r[0]): int(r[1]) for r in self.db.execute(query, params) if r[0] is not None}
