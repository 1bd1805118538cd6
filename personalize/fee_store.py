"""The fee settlements repository (工本费收取/免收, issue 17; docs/business-rules.md "Fees and
receipts"): every SQL statement about ``fee_settlements`` and the reading of the requests whose
fee the daily report sums.

A request's fee (``reissue_requests.fee``, from the region policy) is settled once: **paid**
(a receipt number, 收据号, unique across the registry; the amount, equal to the fee) or
**waived** (免收: a reason and the second operator who approved it). One row per settled
request (``request_id`` UNIQUE); a row is never updated or deleted. The rows are audited state
rows (``AUDITED_COLUMNS``): each names the audit event that explains it. The store never opens a
transaction of its own (docs/architecture.md "The store layer").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from personalize.database import Database, Row


class Outcome(StrEnum):
    """How a fee was settled."""

    PAID = "paid"  # 已收
    WAIVED = "waived"  # 免收

    @property
    def label(self) -> str:
        return "已收" if self == Outcome.PAID else "免收"


MIGRATION = """
    CREATE TABLE fee_settlements (
        id INTEGER PRIMARY KEY,
        request_id INTEGER NOT NULL UNIQUE REFERENCES reissue_requests(id),
        outcome TEXT NOT NULL CHECK (outcome IN ('paid', 'waived')),
        amount INTEGER NOT NULL CHECK (amount > 0),
        receipt_no TEXT UNIQUE,
        reason TEXT,
        operator TEXT NOT NULL,
        approved_by TEXT,
        at TEXT NOT NULL,
        audit_event_id INTEGER,
        CHECK ((outcome = 'paid' AND receipt_no IS NOT NULL)
            OR (outcome = 'waived' AND receipt_no IS NULL AND reason IS NOT NULL
                AND approved_by IS NOT NULL))
    );
    CREATE INDEX fee_settlements_by_audit_event ON fee_settlements(audit_event_id);
    CREATE INDEX fee_settlements_by_at ON fee_settlements(at);
    CREATE INDEX requests_with_fee_by_applied_on ON reissue_requests(applied_on)
        WHERE fee > 0;
"""

# the audited columns of a settlement row (personalize/registry.py AUDITED_COLUMNS)
AUDITED = (
    "request_id",
    "outcome",
    "amount",
    "receipt_no",
    "reason",
    "operator",
    "approved_by",
    "at",
)


@dataclass(frozen=True)
class Settlement:
    """One ``fee_settlements`` row, with its request's kind and fee (for the report)."""

    id: int
    request_id: int
    outcome: Outcome
    amount: int
    receipt_no: str | None
    reason: str | None
    operator: str
    approved_by: str | None
    at: str  # ISO 8601 UTC
    kind: str  # the request's: 'reissue' or 'replacement'
    fee: int  # the request's fee, which ``amount`` must equal


@dataclass(frozen=True)
class OutcomeSum:
    """The settlements of one kind and outcome in a span, counted and summed by the database."""

    kind: str
    outcome: Outcome
    count: int
    total: int


@dataclass(frozen=True)
class Unsettled:
    """A request with a fee not settled by a moment (未收)."""

    request_id: int
    kind: str
    fee: int
    applied_on: str
    card_number: str


_SETTLEMENT = (
    "SELECT s.id, s.request_id, s.outcome, s.amount, s.receipt_no, s.reason, s.operator,"
    " s.approved_by, s.at, r.kind, r.fee FROM fee_settlements s"
    " JOIN reissue_requests r ON r.id = s.request_id"
)


def _settlement(row: Row) -> Settlement:
    return Settlement(
        id=int(row["id"]),
        request_id=int(row["request_id"]),
        outcome=Outcome(row["outcome"]),
        amount=int(row["amount"]),
        receipt_no=row["receipt_no"],
        reason=row["reason"],
        operator=row["operator"],
        approved_by=row["approved_by"],
        at=row["at"],
        kind=row["kind"],
        fee=int(row["fee"]),
    )


class FeeStore:
    """The fee settlements on one registry connection."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        request_id: int,
        outcome: Outcome,
        amount: int,
        *,
        at: str,
        operator: str,
        receipt_no: str | None = None,
        reason: str | None = None,
        approved_by: str | None = None,
    ) -> int:
        """A new settlement (inside the transaction that audits it); its id."""
        return self.db.insert(
            "INSERT INTO fee_settlements (request_id, outcome, amount, receipt_no, reason,"
            " operator, approved_by, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (request_id, str(outcome), amount, receipt_no, reason, operator, approved_by, at),
        )

    def of_request(self, request_id: int) -> Settlement | None:
        row = self.db.execute(f"{_SETTLEMENT} WHERE s.request_id = ?", (request_id,)).fetchone()
        return None if row is None else _settlement(row)

    def by_receipt(self, receipt_no: str) -> Settlement | None:
        row = self.db.execute(f"{_SETTLEMENT} WHERE s.receipt_no = ?", (receipt_no,)).fetchone()
        return None if row is None else _settlement(row)

    def settled(self, since: str, until: str) -> list[Settlement]:
        """The settlements with ``at`` in [since, until), in order."""
        rows = self.db.execute(
            f"{_SETTLEMENT} WHERE s.at >= ? AND s.at < ? ORDER BY s.at, s.id", (since, until)
        )
        return [_settlement(r) for r in rows]

    def sums(self, since: str, until: str) -> list[OutcomeSum]:
        """The settlements with ``at`` in [since, until) counted and summed per request kind
        and outcome — by the database, so the report can check them against its rows."""
        rows = self.db.execute(
            "SELECT r.kind, s.outcome, COUNT(*) AS n, SUM(s.amount) AS total"
            " FROM fee_settlements s JOIN reissue_requests r ON r.id = s.request_id"
            " WHERE s.at >= ? AND s.at < ? GROUP BY r.kind, s.outcome ORDER BY r.kind, s.outcome",
            (since, until),
        )
        return [
            OutcomeSum(r["kind"], Outcome(r["outcome"]), int(r["n"]), int(r["total"])) for r in rows
        ]

    def unsettled(self, applied_by: str, settled_before: str) -> list[Unsettled]:
        """The requests with a fee applied for on or before the local date ``applied_by``
        and not settled before ``settled_before`` (ISO 8601 UTC): what is outstanding then —
        a request withdrawn (撤销) before then owes nothing; one withdrawn later still did."""
        rows = self.db.execute(
            "SELECT r.id, r.kind, r.fee, r.applied_on, c.card_number FROM reissue_requests r"
            " JOIN cards c ON c.id = r.old_card_id"
            " WHERE r.fee > 0 AND r.applied_on <= ?"
            " AND (r.status <> 'withdrawn' OR r.withdrawn_at >= ?)"
            " AND NOT EXISTS (SELECT 1 FROM"
            " fee_settlements s WHERE s.request_id = r.id AND s.at < ?) ORDER BY r.id",
            (applied_by, settled_before, settled_before),
        )
        return [
            Unsettled(int(r["id"]), r["kind"], int(r["fee"]), r["applied_on"], r["card_number"])
            for r in rows
        ]

    def events(self, since: str, until: str, actions: tuple[str, ...]) -> int:
        """How many audit events of ``actions`` were written with ``at`` in [since, until)."""
        marks = ", ".join("?" for _ in actions)
        row = self.db.execute(
            f"SELECT COUNT(*) FROM audit_events WHERE action IN ({marks}) AND at >= ? AND at < ?",
            (*actions, since, until),
        ).scalar()
        return int(row)
