"""The store of 换领 (identity data changed, docs/business-rules.md "换领 (identity data
changed)"): the change each 换领 request was made on — the old and new name and ID number the
公安部门变更证明 certifies, that certificate's number and issuing authority, and the 社保经办机构
更改证明's number — and, at the new card's activation, the person's record changed to the new
data (in the activation's transaction, :meth:`personalize.registry.Registry.activate`).
"""

from __future__ import annotations

from dataclasses import dataclass

from personalize.database import Database, Migration, Row

# The change rows, the same on both databases (the end of ``MIGRATION``).
_CHANGES = """
    CREATE TABLE identity_changes (
        id INTEGER PRIMARY KEY,
        request_id INTEGER NOT NULL UNIQUE REFERENCES reissue_requests(id),
        person_id INTEGER NOT NULL REFERENCES persons(id),
        old_name TEXT NOT NULL,
        old_ssn TEXT NOT NULL,
        new_name TEXT NOT NULL,
        new_ssn TEXT NOT NULL,
        certificate TEXT NOT NULL,
        authority TEXT NOT NULL,
        bureau_certificate TEXT NOT NULL,
        at TEXT NOT NULL,
        applied_at TEXT,
        audit_event_id INTEGER
    );
    CREATE INDEX identity_changes_by_new_ssn ON identity_changes(new_ssn);
    CREATE INDEX identity_changes_by_audit_event ON identity_changes(audit_event_id);
    """

# Its own migration (appended to ``personalize.registry.MIGRATIONS``): the request kind
# ``change`` beside reissue and replacement, and the change rows. SQLite cannot alter a CHECK
# constraint: the kind column is replaced by one with the wider CHECK (values copied; the old
# column's own CHECK goes with it); PostgreSQL swaps the named constraint in place.
MIGRATION = Migration(
    """
    ALTER TABLE reissue_requests ADD COLUMN kind_wider TEXT NOT NULL DEFAULT 'reissue'
        CHECK (kind_wider IN ('reissue', 'replacement', 'change'));
    UPDATE reissue_requests SET kind_wider = kind;
    ALTER TABLE reissue_requests DROP COLUMN kind;
    ALTER TABLE reissue_requests RENAME COLUMN kind_wider TO kind;"""
    + _CHANGES,
    postgresql="""
    ALTER TABLE reissue_requests DROP CONSTRAINT reissue_requests_kind_check;
    ALTER TABLE reissue_requests ADD CONSTRAINT reissue_requests_kind_check
        CHECK (kind IN ('reissue', 'replacement', 'change'));"""
    + _CHANGES,
)

# The columns an audit event's row digest covers (``personalize.registry.AUDITED_COLUMNS``).
AUDITED = (
    "request_id",
    "person_id",
    "old_name",
    "old_ssn",
    "new_name",
    "new_ssn",
    "certificate",
    "authority",
    "bureau_certificate",
    "at",
    "applied_at",
)


@dataclass(frozen=True)
class IdentityChange:
    """An ``identity_changes`` row: what a 换领 request's certificates say."""

    id: int
    request_id: int
    person_id: int
    old_name: str
    old_ssn: str
    new_name: str
    new_ssn: str
    certificate: str  # 公安部门变更证明 number
    authority: str  # the 公安 office that issued it
    bureau_certificate: str  # 社保经办机构更改证明 number
    at: str
    applied_at: str | None  # when the person's record took the new data (activation)


def _change(row: Row) -> IdentityChange:
    return IdentityChange(
        id=int(row["id"]),
        request_id=int(row["request_id"]),
        person_id=int(row["person_id"]),
        old_name=row["old_name"],
        old_ssn=row["old_ssn"],
        new_name=row["new_name"],
        new_ssn=row["new_ssn"],
        certificate=row["certificate"],
        authority=row["authority"],
        bureau_certificate=row["bureau_certificate"],
        at=row["at"],
        applied_at=row["applied_at"],
    )


class ChangeStore:
    """The ``identity_changes`` table on the registry's connection (calls inside its
    transactions)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        *,
        request_id: int,
        person_id: int,
        old: tuple[str, str],
        new: tuple[str, str],
        certificate: str,
        authority: str,
        bureau_certificate: str,
        at: str,
    ) -> IdentityChange:
        """Record the change a 换领 request was made on; ``old`` and ``new`` are
        (name, 18-character ID number)."""
        self.db.insert(
            "INSERT INTO identity_changes (request_id, person_id, old_name, old_ssn, new_name,"
            " new_ssn, certificate, authority, bureau_certificate, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (request_id, person_id, *old, *new, certificate, authority, bureau_certificate, at),
        )
        change = self.of_request(request_id)
        assert change is not None
        return change

    def of_request(self, request_id: int) -> IdentityChange | None:
        row: Row | None = self.db.execute(
            "SELECT * FROM identity_changes WHERE request_id = ?", (request_id,)
        ).fetchone()
        return None if row is None else _change(row)

    def pending_for(self, new_ssn: str) -> IdentityChange | None:
        """A change to ``new_ssn`` whose request is still unfinished (not yet applied)."""
        row: Row | None = self.db.execute(
            "SELECT c.* FROM identity_changes c JOIN reissue_requests r ON r.id = c.request_id"
            " WHERE c.new_ssn = ? AND c.applied_at IS NULL AND r.status IN ('open', 'in_job')",
            (new_ssn,),
        ).fetchone()
        return None if row is None else _change(row)

    def apply(self, change: IdentityChange, at: str) -> bool:
        """The person's record takes the new name and ID number, only if it still holds the
        old ones (a record changed meanwhile is never overwritten); False when it did not."""
        changed = self.db.execute(
            "UPDATE persons SET name = ?, ssn = ? WHERE id = ? AND name = ? AND ssn = ?",
            (change.new_name, change.new_ssn, change.person_id, change.old_name, change.old_ssn),
        ).rowcount
        if changed != 1:
            return False
        self.db.execute(
            "UPDATE identity_changes SET applied_at = ? WHERE id = ?", (at, change.id)
        )
        return True
