"""The medical-account balance transfers' repository (issue 17; docs/business-rules.md "The
medical-account balance"): every SQL statement about the table ``balance_transfers``.

One row per reissue/replacement request: the balance the business system reported for the
old card (``reported``), recorded as moved to the new card by the activation's transaction
(``transferred``), or — a region that activates first — a transfer the activation left
``pending`` until the business system reports. Amounts are integer fen (BIGINT). The rows are
audited state rows (``Registry`` seals each change with its audit event: ``AUDITED_COLUMNS``),
so a row edited behind sscard's back breaks ``sscard audit verify``. The store never opens
a transaction of its own (docs/architecture.md "The store layer").
"""

from __future__ import annotations

from personalize.database import Database, Row
from personalize.medical_balance import BalanceTransfer, TransferStatus

MIGRATION = f"""
    CREATE TABLE balance_transfers (
        id INTEGER PRIMARY KEY,
        request_id INTEGER NOT NULL UNIQUE REFERENCES reissue_requests(id),
        old_card_id INTEGER NOT NULL REFERENCES cards(id),
        new_card_id INTEGER REFERENCES cards(id),
        amount_fen BIGINT CHECK (amount_fen >= 0),
        as_of TEXT,
        reference TEXT,
        reported_at TEXT,
        reported_by TEXT,
        status TEXT NOT NULL CHECK (status IN ({", ".join(f"'{s}'" for s in TransferStatus)})),
        transferred_at TEXT,
        audit_event_id INTEGER,
        CHECK ((amount_fen IS NULL) = (status = '{TransferStatus.PENDING}')),
        CHECK ((new_card_id IS NULL) = (status = '{TransferStatus.REPORTED}'))
    );
    CREATE INDEX balance_transfers_by_old_card ON balance_transfers(old_card_id);
    CREATE INDEX balance_transfers_by_new_card ON balance_transfers(new_card_id);
    CREATE INDEX balance_transfers_by_audit_event ON balance_transfers(audit_event_id);
"""

# what the audit digest of a row covers (``personalize.registry.AUDITED_COLUMNS``)
AUDITED = (
    "request_id",
    "old_card_id",
    "new_card_id",
    "amount_fen",
    "as_of",
    "reference",
    "reported_at",
    "reported_by",
    "status",
    "transferred_at",
)
_COLUMNS = "id, " + ", ".join(AUDITED)


def _transfer(row: Row) -> BalanceTransfer:
    return BalanceTransfer(
        id=int(row["id"]),
        request_id=int(row["request_id"]),
        old_card_id=int(row["old_card_id"]),
        new_card_id=None if row["new_card_id"] is None else int(row["new_card_id"]),
        amount_fen=None if row["amount_fen"] is None else int(row["amount_fen"]),
        as_of=row["as_of"],
        reference=row["reference"],
        reported_at=row["reported_at"],
        reported_by=row["reported_by"],
        status=TransferStatus(row["status"]),
        transferred_at=row["transferred_at"],
    )


class BalanceStore:
    """The balance transfers on one registry connection."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def of_request(self, request_id: int) -> BalanceTransfer | None:
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM balance_transfers WHERE request_id = ?", (request_id,)
        ).fetchone()
        return None if row is None else _transfer(row)

    def of_card(self, card_id: int) -> list[BalanceTransfer]:
        """The transfers out of the card (it was replaced) and into it (it replaced one)."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM balance_transfers WHERE old_card_id = ?"
            f" UNION SELECT {_COLUMNS} FROM balance_transfers WHERE new_card_id = ? ORDER BY id",
            (card_id, card_id),
        )
        return [_transfer(r) for r in rows]

    def pending_from(self, old_card_id: int) -> BalanceTransfer | None:
        """The transfer out of the card that its new card's activation left pending."""
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM balance_transfers WHERE old_card_id = ? AND status = ?",
            (old_card_id, str(TransferStatus.PENDING)),
        ).fetchone()
        return None if row is None else _transfer(row)

    def report(
        self,
        request_id: int,
        old_card_id: int,
        amount_fen: int,
        *,
        as_of: str,
        reference: str | None,
        at: str,
        by: str,
    ) -> None:
        """The reported balance of a request's old card before its new card is active: a
        new ``reported`` row, or the earlier report's replaced."""
        self.db.execute(
            "INSERT INTO balance_transfers (request_id, old_card_id, amount_fen, as_of,"
            " reference, reported_at, reported_by, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (request_id) DO UPDATE SET amount_fen = excluded.amount_fen,"
            " as_of = excluded.as_of, reference = excluded.reference,"
            " reported_at = excluded.reported_at, reported_by = excluded.reported_by",
            (
                request_id,
                old_card_id,
                amount_fen,
                as_of,
                reference,
                at,
                by,
                str(TransferStatus.REPORTED),
            ),
        )

    def transfer(self, request_id: int, new_card_id: int, *, at: str) -> None:
        """The reported amount recorded as moved to the new card (the activation)."""
        self.db.execute(
            "UPDATE balance_transfers SET new_card_id = ?, status = ?, transferred_at = ?"
            " WHERE request_id = ?",
            (new_card_id, str(TransferStatus.TRANSFERRED), at, request_id),
        )

    def complete(
        self,
        request_id: int,
        amount_fen: int,
        *,
        as_of: str,
        reference: str | None,
        at: str,
        by: str,
    ) -> None:
        """A pending transfer completed by the business system's late report."""
        self.db.execute(
            "UPDATE balance_transfers SET amount_fen = ?, as_of = ?, reference = ?,"
            " reported_at = ?, reported_by = ?, status = ?, transferred_at = ?"
            " WHERE request_id = ?",
            (
                amount_fen,
                as_of,
                reference,
                at,
                by,
                str(TransferStatus.TRANSFERRED),
                at,
                request_id,
            ),
        )

    def leave_pending(self, request_id: int, old_card_id: int, new_card_id: int) -> None:
        """The new card activated with no balance reported: a ``pending`` row."""
        self.db.execute(
            "INSERT INTO balance_transfers (request_id, old_card_id, new_card_id, status)"
            " VALUES (?, ?, ?, ?)",
            (request_id, old_card_id, new_card_id, str(TransferStatus.PENDING)),
        )
