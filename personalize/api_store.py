"""The HTTP API's store (issue 15; docs/api.md): its clients, the responses kept per
Idempotency-Key, the holders' 查询密码 hashes and failed attempts (tables of
``registry.API_MIGRATION``), and the blacklist feed read from the cards' status history.

A store module (docs/architecture.md "The store layer"): it runs the SQL and returns frozen
dataclasses; it never opens a transaction — the caller wraps its calls in
``Registry.transaction()``, so a response is kept in the transaction of its effect.
"""

from __future__ import annotations

from dataclasses import dataclass

from personalize.database import Database, Row
from personalize.roles import ApiRole

API_OPERATOR_PREFIX = "api:"  # audit events and status history name a client ``api:NAME``


@dataclass(frozen=True)
class ApiClient:
    """A registered caller of the API (``sscard api-client add``)."""

    id: int
    name: str
    role: ApiRole
    created_at: str
    created_by: str
    revoked_at: str | None

    @property
    def operator(self) -> str:
        """How audit events and status history name this client."""
        return f"{API_OPERATOR_PREFIX}{self.name}"


@dataclass(frozen=True)
class StoredResponse:
    """The first response to a client's Idempotency-Key, and what its request was."""

    request_hash: str
    status: int
    body: str


@dataclass(frozen=True)
class FeedEntry:
    """One change of the blacklist: a card's status changed (``cursor`` is its history row,
    increasing in commit order: writers take one lock, docs/service.md "Concurrency")."""

    cursor: int
    card_number: str
    sn: str | None
    from_status: str | None
    status: str
    at: str


def _client(row: Row) -> ApiClient:
    return ApiClient(
        id=int(row["id"]),
        name=row["name"],
        role=ApiRole(row["role"]),
        created_at=row["created_at"],
        created_by=row["created_by"],
        revoked_at=row["revoked_at"],
    )


# ------------------------------------------------------------------ clients


def insert_client(
    db: Database, name: str, role: ApiRole, token_hash: str, *, at: str, by: str
) -> ApiClient:
    client_id = db.insert(
        "INSERT INTO api_clients (name, role, token_hash, created_at, created_by)"
        " VALUES (?, ?, ?, ?, ?)",
        (name, str(role), token_hash, at, by),
    )
    return ApiClient(client_id, name, role, at, by, None)


def client_named(db: Database, name: str) -> ApiClient | None:
    row = db.execute("SELECT * FROM api_clients WHERE name = ?", (name,)).fetchone()
    return None if row is None else _client(row)


def client_by_token_hash(db: Database, token_hash: str) -> ApiClient | None:
    row = db.execute("SELECT * FROM api_clients WHERE token_hash = ?", (token_hash,)).fetchone()
    return None if row is None else _client(row)


def list_clients(db: Database) -> list[ApiClient]:
    return [_client(r) for r in db.execute("SELECT * FROM api_clients ORDER BY id")]


def mark_revoked(db: Database, client_id: int, *, at: str) -> None:
    db.execute("UPDATE api_clients SET revoked_at = ? WHERE id = ?", (at, client_id))


# ------------------------------------------------------------------ idempotency


def stored_response(db: Database, client_id: int, key: str) -> StoredResponse | None:
    row = db.execute(
        "SELECT request_hash, status, response FROM api_idempotency"
        " WHERE client_id = ? AND idem_key = ?",
        (client_id, key),
    ).fetchone()
    if row is None:
        return None
    return StoredResponse(row["request_hash"], int(row["status"]), row["response"])


def keep_response(
    db: Database, client_id: int, key: str, response: StoredResponse, *, at: str
) -> None:
    db.execute(
        "INSERT INTO api_idempotency (client_id, idem_key, request_hash, status, response,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (client_id, key, response.request_hash, response.status, response.body, at),
    )


# ------------------------------------------------------------------ 查询密码


def query_password_hash(db: Database, person_id: int) -> str | None:
    row = db.execute(
        "SELECT password_hash FROM query_passwords WHERE person_id = ?", (person_id,)
    ).fetchone()
    return None if row is None else str(row["password_hash"])


def set_query_password(db: Database, person_id: int, stored: str, *, at: str, by: str) -> None:
    db.execute(
        "INSERT INTO query_passwords (person_id, password_hash, set_at, set_by)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (person_id) DO UPDATE SET"
        " password_hash = excluded.password_hash, set_at = excluded.set_at,"
        " set_by = excluded.set_by",
        (person_id, stored, at, by),
    )


def add_failure(db: Database, person_id: int | None, client_id: int, *, at: str) -> None:
    db.execute(
        "INSERT INTO query_password_failures (person_id, client_id, at) VALUES (?, ?, ?)",
        (person_id, client_id, at),
    )


def failures_of_person(db: Database, person_id: int, *, since: str) -> int:
    return int(
        db.execute(
            "SELECT COUNT(*) FROM query_password_failures WHERE person_id = ? AND at > ?",
            (person_id, since),
        ).scalar()
    )


def failures_of_client(db: Database, client_id: int, *, since: str) -> int:
    return int(
        db.execute(
            "SELECT COUNT(*) FROM query_password_failures WHERE client_id = ? AND at > ?",
            (client_id, since),
        ).scalar()
    )


def clear_failures(db: Database, person_id: int) -> None:
    """A right 查询密码 starts the person's count again (the client's stays)."""
    db.execute("DELETE FROM query_password_failures WHERE person_id = ?", (person_id,))


# ------------------------------------------------------------------ blacklist feed


def status_changes(db: Database, *, after: int, limit: int) -> list[FeedEntry]:
    """The cards' status changes after history row ``after``, in row order (the primary
    key's index: O(log n + limit)); a new card's start (no previous status) is not one."""
    rows = db.execute(
        "SELECT h.id, c.card_number, c.sn, h.from_status, h.to_status, h.at"
        " FROM status_history h JOIN cards c ON c.id = h.card_id"
        " WHERE h.id > ? AND h.from_status IS NOT NULL ORDER BY h.id LIMIT ?",
        (after, limit),
    )
    return [
        FeedEntry(
            cursor=int(r["id"]),
            card_number=r["card_number"],
            sn=r["sn"],
            from_status=r["from_status"],
            status=r["to_status"],
            at=r["at"],
        )
        for r in rows
    ]
