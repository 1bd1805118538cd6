"""Test helpers that do the same thing to a registry on either database (tests/conftest.py
``new_db``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from personalize.database import Database


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
