"""The tests' own PostgreSQL server (tests/pgserver.py) and, on it, the PostgreSQL features
issue 13's registry relies on: the one-valid-card rule as a partial unique index, and job
claims with ``SELECT … FOR UPDATE SKIP LOCKED`` (docs/architecture.md, "PostgreSQL in the
tests")."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from personalize.lifecycle import VALID_CARD_STATUSES
from tests.pgserver import PostgresServer, postgres_server

# the statuses in which a card is its person's card (docs/service.md)
VALID_STATUSES = (
    "active",
    "provisional_loss",
    "formal_loss",
    "reissue_pending",
    "replacement_pending",
)


@pytest.fixture
def db(postgres: PostgresServer) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection to a fresh database of the session's server."""
    url = postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")
    with psycopg.connect(url) as conn:
        yield conn


def test_the_server_is_a_private_postgresql_15_on_loopback(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql://sscard_test:")
    assert "@127.0.0.1:" in postgres_url
    with psycopg.connect(postgres_url) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()
        assert version is not None and 150000 <= int(str(version[0])) < 160000
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN"
                " ('listen_addresses', 'fsync', 'server_encoding')"
            ).fetchall()
        )
        assert settings == {
            "listen_addresses": "127.0.0.1",
            "fsync": "off",
            "server_encoding": "UTF8",
        }
        role = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert role.fetchone() == (False,)  # the tests' role is no superuser


def test_a_table_keeps_chinese_text(db: psycopg.Connection[tuple[object, ...]]) -> None:
    db.execute("CREATE TABLE persons (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL)")
    db.execute("INSERT INTO persons (name) VALUES (%s), (%s)", ("张三", "欧阳娜娜"))
    rows = db.execute("SELECT id, name FROM persons ORDER BY id").fetchall()
    assert rows == [(1, "张三"), (2, "欧阳娜娜")]


def test_a_partial_unique_index_refuses_a_second_valid_card(
    db: psycopg.Connection[tuple[object, ...]],
) -> None:
    assert tuple(str(s) for s in VALID_CARD_STATUSES) == VALID_STATUSES
    listed = ", ".join(f"'{s}'" for s in VALID_STATUSES)
    db.execute("CREATE TABLE cards (id BIGSERIAL PRIMARY KEY, person_id BIGINT, status TEXT)")
    db.execute(
        "CREATE UNIQUE INDEX one_valid_card_per_person ON cards (person_id)"
        f" WHERE status IN ({listed})"
    )
    add = "INSERT INTO cards (person_id, status) VALUES (%s, %s) RETURNING id"
    first = db.execute(add, (1, "active")).fetchone()
    db.execute(add, (1, "void"))  # cards no longer valid do not count
    db.execute(add, (1, "personalizing"))
    db.execute(add, (2, "active"))  # another person's
    db.commit()
    for status in VALID_STATUSES:
        with pytest.raises(psycopg.errors.UniqueViolation, match="one_valid_card_per_person"):
            db.execute(add, (1, status))
        db.rollback()
    # the old card voided and the new one activated in one transaction: allowed
    assert first is not None
    db.execute("UPDATE cards SET status = 'void' WHERE id = %s", first)
    db.execute("UPDATE cards SET status = 'active' WHERE status = 'personalizing'")
    db.commit()
    rows = db.execute("SELECT person_id, status FROM cards ORDER BY id").fetchall()
    assert rows == [(1, "void"), (1, "void"), (1, "active"), (2, "active")]


def test_skip_locked_lets_two_connections_claim_different_jobs(
    postgres: PostgresServer,
) -> None:
    url = postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")
    with psycopg.connect(url) as setup:
        setup.execute("CREATE TABLE jobs (id BIGSERIAL PRIMARY KEY, status TEXT, station TEXT)")
        setup.execute("INSERT INTO jobs (status) SELECT 'queued' FROM generate_series(1, 3)")
    claim = "SELECT id FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
    with psycopg.connect(url) as a, psycopg.connect(url) as b:
        first = a.execute(claim).fetchone()  # a's transaction holds the row lock
        second = b.execute(claim).fetchone()
        assert first == (1,) and second == (2,)
        # without SKIP LOCKED the second station would wait for the first: NOWAIT shows it
        with pytest.raises(psycopg.errors.LockNotAvailable):
            b.execute("SELECT id FROM jobs WHERE id = 1 FOR UPDATE NOWAIT")
        b.rollback()
        a.execute("UPDATE jobs SET status = 'running', station = 'a' WHERE id = %s", first)
        a.commit()  # claimed: the row is free again, but no longer queued
        third = b.execute(claim).fetchone()
        assert third == (2,)
        b.execute("UPDATE jobs SET status = 'running', station = 'b' WHERE id = %s", third)
        b.commit()
        rows = a.execute("SELECT id, status, station FROM jobs ORDER BY id").fetchall()
        assert rows == [(1, "running", "a"), (2, "running", "b"), (3, "queued", None)]


def test_the_server_is_stopped_and_removed_at_the_end_also_on_failure() -> None:
    with pytest.raises(RuntimeError, match="a test failed"), postgres_server() as server:
        directory = server.directory
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert (directory / "data" / "postmaster.pid").exists()
        raise RuntimeError("a test failed")
    assert not directory.exists()
    with pytest.raises(OSError), socket.create_connection((server.host, server.port), 2):
        pass
