"""Test helpers that do the same thing to a registry on either database (tests/conftest.py
``new_db``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from personalize.database import Database, open_database


@contextmanager
def inserts_fail(db: Database, table: str, message: str) -> Iterator[None]:
    """Every INSERT into ``table`` fails with ``message`` while the ``with`` lasts (a full
    disk, a lost connection), by a trigger — SQLite ``RAISE(ABORT)``, PostgreSQL ``RAISE
    EXCEPTION``."""
    name = f"fail_{table}"
    if db.dialect == "sqlite":
        db.execute(
            f"CREATE TRIGGER {name} BEFORE INSERT ON {table}"
            f" BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )
    else:
        db.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql"
            f" AS $$ BEGIN RAISE EXCEPTION '{message}'; END $$"
        )
        db.execute(
            f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()"
        )
    try:
        yield
    finally:
        db.execute(f"DROP TRIGGER {name}" + ("" if db.dialect == "sqlite" else f" ON {table}"))


def behind_its_back(location: str | Path, sql: str) -> None:
    """Run ``sql`` on the registry at ``location`` through a connection of its own, as the
    ``sqlite3`` shell or ``psql`` would — not through sscard."""
    db = open_database(location, create=False)
    try:
        db.execute(sql)
    finally:
        db.close()


# What a station's ``chip_write`` records (personalize/jobs.py): the issue date it wrote to
# EF05, which activation keeps as the card's 发卡日期 (the start of its validity).
ISSUE_DATE = "2026-11-25"


def step_details(step: str) -> str:
    """A recorded step's details as a station writes them (JSON)."""
    return f'{{"issue_date": "{ISSUE_DATE}"}}' if step == "chip_write" else "{}"
