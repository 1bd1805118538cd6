"""The registry's connection layer (personalize/database.py) on SQLite and PostgreSQL: one
Row type, ``?`` placeholders, the same schema from the same migrations, errors mapped in one
place, a password never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from personalize.database import (
    BusyError,
    Database,
    IntegrityError,
    Row,
    checkpoint_default,
    display,
    open_database,
    pyformat,
)
from personalize.policy import load_policy
from personalize.registry import MIGRATIONS, Registry, RegistryError
from simulator.factory import SAMPLE_HOLDER
from tests.audit_key import AUDIT_KEY
from tests.clock import pinned_clock
from tests.conftest import NewDatabase
from tests.pgserver import PostgresServer

POLICY = load_policy("default")


def test_placeholders_become_pyformat_outside_quoted_text() -> None:
    assert pyformat("SELECT ? WHERE a LIKE '50%?' AND b = ?") == (
        "SELECT %s WHERE a LIKE '50%%?' AND b = %s"
    )
    assert pyformat("SELECT 'it''s ?', ? % 2") == "SELECT 'it''s ?', %s %% 2"


def test_a_row_is_read_by_name_and_by_index() -> None:
    row = Row(("id", "name"), (7, "张三"))
    assert (row["id"], row[1], tuple(row), dict(row)) == (7, "张三", (7, "张三"), row_dict())
    with pytest.raises(IndexError, match="no column 'ssn'"):
        row["ssn"]


def row_dict() -> dict[str, object]:
    return {"id": 7, "name": "张三"}


def test_a_password_is_never_shown() -> None:
    url = "postgresql://sscard:s3cret@10.0.0.5:5433/cards"
    assert display(url) == "postgresql://sscard:***@10.0.0.5:5433/cards"
    assert display("/var/lib/sscard/registry.db") == "/var/lib/sscard/registry.db"
    assert checkpoint_default(url) == "10.0.0.5-5433-cards.checkpoints"
    assert checkpoint_default("sqlite:///srv/r.db") == "/srv/r.db.checkpoints"


def schema(db: Database) -> dict[str, set[str]]:
    """Every table's columns, and the indexes by name (with ``partial`` for a WHERE)."""
    if db.dialect == "sqlite":
        tables = [
            r["name"]
            for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not r["name"].startswith("sqlite_")
        ]
        shape = {t: {r["name"] for r in db.execute(f"PRAGMA table_info({t})")} for t in tables}
        indexes = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        )
    else:
        shape = {}
        for r in db.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public'"
        ):
            shape.setdefault(r["table_name"], set()).add(r["column_name"])
        indexes = db.execute(
            "SELECT indexname AS name, indexdef AS sql FROM pg_indexes"
            " WHERE schemaname = 'public' AND indexname NOT LIKE '%pkey'"
            " AND indexname NOT LIKE '%key'"
        )
    shape["indexes"] = {
        f"{r['name']}{' partial' if ' WHERE ' in r['sql'].upper() else ''}" for r in indexes
    }
    return shape


def test_both_databases_have_the_same_schema(tmp_path: Path, postgres: PostgresServer) -> None:
    """The same migrations give the same tables, columns and named indexes — the partial
    unique index one_valid_card_per_person among them. (PostgreSQL keeps two tables of its
    own: ``schema_version`` for SQLite's user_version, and ``audit_touched``, a TEMP table
    on SQLite.)"""
    sqlite = Registry(tmp_path / "r.db", POLICY, audit_key=AUDIT_KEY)
    url = postgres.create_database("same_schema")
    pg = Registry(url, POLICY, audit_key=AUDIT_KEY, checkpoints=tmp_path / "pg.checkpoints")
    assert sqlite.schema_version == pg.schema_version == len(MIGRATIONS)
    lite, post = schema(sqlite.db), schema(pg.db)
    assert post.pop("schema_version") == {"version"}
    assert post.pop("audit_touched") == {"xid", "tbl", "row_id"}
    assert lite == post
    assert {"one_valid_card_per_person partial", "one_live_job_per_request partial"} <= (
        post["indexes"]
    )


def test_a_unique_violation_names_the_column_and_never_the_value(new_db: NewDatabase) -> None:
    location = new_db("r")
    registry = Registry(location, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    registry.enroll(SAMPLE_HOLDER, "H00000012", operator="op")
    db = open_database(location, create=False)
    with pytest.raises(IntegrityError) as caught:
        db.execute(
            "INSERT INTO persons (ssn, name, gender, ethnicity, birthplace, birth_date,"
            " created_at) VALUES (?, 'x', '1', '01', '110105', '1949-12-31', 'now')",
            (SAMPLE_HOLDER.ssn,),
        )
    assert str(caught.value) == "UNIQUE constraint failed: persons.ssn"
    with pytest.raises(IntegrityError, match=r"^UNIQUE constraint failed: cards\.person_id$"):
        db.execute(  # the partial unique index: a second valid card
            "INSERT INTO cards (person_id, card_number, region, status, status_since,"
            " created_at) VALUES (1, 'H00000020', '371700', 'active', 'now', 'now')"
        )


def test_a_writer_waiting_past_the_timeout_is_busy(new_db: NewDatabase) -> None:
    location = new_db("r")
    Registry(location, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY).close()
    first, second = (open_database(location, create=False) for _ in range(2))
    second.set_busy_timeout(50)
    first.begin_write()
    with pytest.raises(BusyError):
        second.begin_write()
    first.rollback()
    second.begin_write()  # free again
    second.rollback()


def test_a_command_on_an_empty_postgresql_database_finds_no_registry(
    postgres_url: str,
) -> None:
    empty = postgres_url.rsplit("/", 1)[0] + "/postgres"
    with pytest.raises(RegistryError, match=r"^登记库不存在：postgresql://sscard_test:\*\*\*@"):
        Registry(empty, POLICY, create=False, audit_key=AUDIT_KEY)


def test_many_rows_in_one_call_and_their_ids(new_db: NewDatabase) -> None:
    location = new_db("r")
    Registry(location, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY).close()
    db = open_database(location, create=False)
    db.executemany(
        "INSERT INTO card_numbers (prefix, next) VALUES (?, ?)", [("A", 1), ("B", 50), ("C", 7)]
    )
    rows = db.execute("SELECT prefix, next FROM card_numbers ORDER BY prefix").fetchall()
    assert [tuple(r) for r in rows] == [("A", 1), ("B", 50), ("C", 7)]
    first = db.insert(
        "INSERT INTO office_reports (at, operator, data) VALUES (?, ?, ?)", ("now", "op", "{}")
    )
    assert (
        db.insert(
            "INSERT INTO office_reports (at, operator, data) VALUES (?, ?, ?)", ("now", "op", "{}")
        )
        == first + 1
    )
