"""The registry's one connection layer (docs/architecture.md "Registry store"): SQLite, the
embedded default, or PostgreSQL (psycopg 3) for a card center whose stations sit on several
hosts. ``sqlite3`` and ``psycopg`` are imported here and nowhere else in production code.

What :class:`Database` gives the registry, the same on both:

- ``execute(sql, params)`` with ``?`` placeholders (rewritten to ``%s`` for psycopg, a
  literal ``%`` doubled), its rows one :class:`Row` type (by column name and by index);
  ``insert(sql, params)`` → the new row's id (``INSERT … RETURNING id``);
- ``write_transaction()``: SQLite ``BEGIN IMMEDIATE`` (the database's write lock); PostgreSQL
  ``BEGIN`` and at once ``pg_advisory_xact_lock(WRITER_LOCK)``. Every write transaction extends
  the ONE audit chain (each event's hash covers the previous one, ``Registry._seal``), so
  writers must take turns on every host, as SQLite's lock makes them; and the row checks a
  transaction makes before it changes a card (``Registry.card_for_update``) hold until its
  COMMIT. Readers never wait. ``lock_timeout`` bounds the wait like SQLite's busy timeout;
- savepoints, ``in_transaction``, the schema version (SQLite ``user_version``; PostgreSQL the
  table ``schema_version``), the migrations' DDL for the dialect (:func:`postgresql_ddl`), the
  audit "touched rows" (:meth:`Database.touched`);
- error mapping in ONE place (:meth:`Database._mapped`): a unique violation becomes
  :class:`IntegrityError` whose text names ``table.column`` as SQLite does (``UNIQUE
  constraint failed: cards.person_id``, never the values); a lock wait that outlasted the
  timeout, a deadlock or a serialization failure becomes :class:`BusyError`.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg.errors
from psycopg import pq

Dialect = Literal["sqlite", "postgresql"]
Params = Sequence[Any]

BUSY_TIMEOUT_S = 30  # how long a change waits for another station's transaction
# the key of the PostgreSQL advisory lock every write transaction takes (any fixed bigint;
# "sscard" in ASCII)
WRITER_LOCK = 0x737363617264


class DatabaseError(Exception):
    """The database refused or failed a statement (text safe to show: no parameter values)."""


class IntegrityError(DatabaseError):
    """A constraint was violated; a unique one reads ``UNIQUE constraint failed: t.col``."""


class BusyError(DatabaseError):
    """Another transaction held the lock longer than the busy timeout (or a deadlock or
    serialization failure made the database give up): try again."""


class MissingDatabase(DatabaseError):
    """``create=False`` and there is no database at the location."""


class Row(tuple[Any, ...]):
    """A result row: by index like a tuple, by column name like ``sqlite3.Row``."""

    names: tuple[str, ...]

    def __new__(cls, names: tuple[str, ...], values: Sequence[Any]) -> Row:
        row = super().__new__(cls, values)
        row.names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self.names.index(key))
            except ValueError:
                raise IndexError(f"no column {key!r}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self.names)


class Result:
    """A statement's result: ``fetchone``, ``fetchall``, iteration, ``rowcount``."""

    def __init__(self, db: Database, cursor: Any) -> None:
        self._db = db
        self._cursor = cursor
        description = cursor.description
        self._names = tuple(d[0] for d in description) if description else ()
        self.rowcount: int = cursor.rowcount

    def _row(self, values: Sequence[Any] | None) -> Row | None:
        if values is None:
            return None
        return Row(self._names, [bytes(v) if isinstance(v, memoryview) else v for v in values])

    def fetchone(self) -> Row | None:
        with self._db._mapped():
            return self._row(self._cursor.fetchone())

    def fetchall(self) -> list[Row]:
        with self._db._mapped():
            return [Row(self._names, v) for v in self._cursor.fetchall()]

    def scalar(self) -> Any:
        """The first column of the first row (None when there is no row)."""
        row = self.fetchone()
        return None if row is None else row[0]

    def __iter__(self) -> Iterator[Row]:
        while (row := self.fetchone()) is not None:
            yield row

    def close(self) -> None:
        self._cursor.close()


def is_url(location: str | Path) -> bool:
    """``postgresql://…`` (or ``postgres://``) rather than a file path / ``sqlite:///path``."""
    return str(location).startswith(("postgresql://", "postgres://"))


def sqlite_path(location: str | Path) -> Path:
    """The file of a SQLite location: a path or ``sqlite:///path``."""
    text = str(location)
    return Path(text[len("sqlite://") :] if text.startswith("sqlite://") else text)


def display(location: str | Path) -> str:
    """The location as errors and logs may show it: a URL without its password."""
    text = str(location)
    if not is_url(text):
        return text
    parts = urlsplit(text)
    if parts.password is None:
        return text
    netloc = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{netloc[-1]}"))


def checkpoint_default(location: str | Path) -> str:
    """Where the audit checkpoint log is when none is named (docs/service.md "Audit"): a
    SQLite registry's beside its file (``<db>.checkpoints``); a PostgreSQL registry's in the
    current directory, named after the server and database
    (``127.0.0.1-5432-sscard.checkpoints``) — name a shared, backed-up path with
    ``--audit-checkpoints`` in production."""
    if not is_url(location):
        return f"{sqlite_path(location)}.checkpoints"
    parts = urlsplit(str(location))
    name = parts.path.lstrip("/") or "postgres"
    return f"{parts.hostname or 'localhost'}-{parts.port or 5432}-{name}.checkpoints"


_QUESTION = re.compile(r"'(?:[^']|'')*'|\?|%")


def pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s``, a literal ``%`` as ``%%``; quoted text
    untouched except for ``%``."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "?":
            return "%s"
        return token.replace("%", "%%")

    return _QUESTION.sub(replace, sql)


_ROWID = re.compile(r"\bid INTEGER PRIMARY KEY\b")
_INTEGER = re.compile(r"\bINTEGER\b")
_BLOB = re.compile(r"\bBLOB\b")


def postgresql_ddl(script: str) -> str:
    """A migration written for SQLite, mechanically in PostgreSQL's types: the row id
    ``id INTEGER PRIMARY KEY`` (SQLite's rowid) an identity column, ``INTEGER`` ``BIGINT``
    (SQLite's integers are 64-bit), ``BLOB`` ``BYTEA``. A migration that needs more (a table
    rebuild) gives its PostgreSQL form beside it (``registry.Migration``)."""
    script = _ROWID.sub("id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", script)
    return _BLOB.sub("BYTEA", _INTEGER.sub("BIGINT", script))


class Migration(str):
    """A migration's SQLite script with its PostgreSQL form beside it, for a migration the
    mechanical translation (:func:`postgresql_ddl`) does not do — a str, so the list of
    migrations stays one list of scripts."""

    postgresql: str

    def __new__(cls, sqlite: str, *, postgresql: str) -> Migration:
        migration = super().__new__(cls, sqlite)
        migration.postgresql = postgresql
        return migration


_UNIQUE_KEY = re.compile(r"Key \(([^)]*)\)=")


@dataclass
class Database:
    """One connection (see the module docstring)."""

    dialect: Dialect
    connection: Any
    location: str

    # ----------------------------------------------------------------- errors

    @contextmanager
    def _mapped(self) -> Iterator[None]:
        """The one place a driver's error becomes this module's."""
        try:
            yield
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from None
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise BusyError(text) from None
            raise DatabaseError(text) from None
        except sqlite3.Error as exc:
            raise DatabaseError(str(exc)) from None
        except psycopg.errors.UniqueViolation as exc:
            columns = _UNIQUE_KEY.search(exc.diag.message_detail or "")
            what = columns.group(1) if columns else exc.diag.constraint_name
            raise IntegrityError(
                f"UNIQUE constraint failed: {exc.diag.table_name}.{what}"
            ) from None
        except psycopg.errors.IntegrityError as exc:
            raise IntegrityError(
                f"{exc.diag.sqlstate} constraint failed: {exc.diag.table_name}."
                f"{exc.diag.constraint_name or exc.diag.column_name}"
            ) from None
        except (
            psycopg.errors.LockNotAvailable,
            psycopg.errors.QueryCanceled,
            psycopg.errors.DeadlockDetected,
            psycopg.errors.SerializationFailure,
        ) as exc:
            raise BusyError(exc.diag.message_primary or type(exc).__name__) from None
        except psycopg.Error as exc:
            raise DatabaseError(exc.diag.message_primary or type(exc).__name__) from None

    # ----------------------------------------------------------------- statements

    def execute(self, sql: str, params: Params = ()) -> Result:
        if self.dialect == "postgresql":
            sql = pyformat(sql)
        with self._mapped():
            return Result(self, self.connection.execute(sql, params))

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        if self.dialect == "postgresql":
            sql = pyformat(sql)
        with self._mapped():
            self.connection.cursor().executemany(sql, rows)

    def follow_ids(self, table: str) -> None:
        """After rows were inserted with explicit ids (a bulk load): PostgreSQL's identity
        sequence is moved past them, or the next ordinary insert would collide; SQLite's
        rowid follows by itself."""
        if self.dialect == "postgresql":
            self.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
            )

    def insert(self, sql: str, params: Params = ()) -> int:
        """``INSERT … RETURNING id``: the new row's id."""
        row = self.execute(f"{sql} RETURNING id", params).fetchone()
        assert row is not None
        return int(row[0])

    def close(self) -> None:
        self.connection.close()

    def set_busy_timeout(self, milliseconds: int) -> None:
        """How long a write waits for another's lock before ``BusyError``."""
        if self.dialect == "sqlite":
            self.execute(f"PRAGMA busy_timeout = {int(milliseconds)}")
        else:
            self.execute(f"SET lock_timeout = {int(milliseconds)}")

    # ----------------------------------------------------------------- transactions

    @property
    def in_transaction(self) -> bool:
        if self.dialect == "sqlite":
            return bool(self.connection.in_transaction)
        return bool(self.connection.info.transaction_status != pq.TransactionStatus.IDLE)

    def begin_write(self) -> None:
        """Start a write transaction holding the writers' lock (module docstring)."""
        if self.dialect == "sqlite":
            self.execute("BEGIN IMMEDIATE")
            return
        self.execute("BEGIN")
        try:
            self.execute("SELECT pg_advisory_xact_lock(?)", (WRITER_LOCK,))
        except BaseException:
            self.rollback()
            raise

    def begin_read(self) -> None:
        """Start a read transaction whose every query sees the database as at its first read:
        SQLite's WAL snapshot (a deferred BEGIN), PostgreSQL's REPEATABLE READ — a long read
        is consistent while writers go on."""
        if self.dialect == "sqlite":
            self.execute("BEGIN")
        else:
            self.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def lock_skipping(self, alias: str) -> str:
        """The clause that locks the rows a claim's SELECT returns and passes over rows
        another transaction holds: PostgreSQL ``FOR UPDATE OF alias SKIP LOCKED``; nothing
        on SQLite, whose write transaction (``BEGIN IMMEDIATE``) already holds the database."""
        return "" if self.dialect == "sqlite" else f" FOR UPDATE OF {alias} SKIP LOCKED"

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self.execute("ROLLBACK")

    @contextmanager
    def savepoint(self, name: str) -> Iterator[None]:
        self.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self.execute(f"RELEASE SAVEPOINT {name}")
            raise
        self.execute(f"RELEASE SAVEPOINT {name}")

    # ----------------------------------------------------------------- schema

    def schema_version(self) -> int:
        if self.dialect == "sqlite":
            return int(self.execute("PRAGMA user_version").fetchone()[0])  # type: ignore[index]
        if not self._has_table("schema_version"):
            return 0
        row = self.execute("SELECT version FROM schema_version").fetchone()
        return 0 if row is None else int(row[0])

    def _has_table(self, name: str) -> bool:
        """(PostgreSQL) Whether the table exists, read from ``pg_tables`` with this
        statement's snapshot — not ``to_regclass``, whose name lookup may answer from the
        session's catalog cache a table another session has created since."""
        found = self.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = ?",
            (name,),
        )
        return found.fetchone() is not None

    def set_schema_version(self, version: int) -> None:
        """(Inside the migration's write transaction.)"""
        if self.dialect == "sqlite":
            self.execute(f"PRAGMA user_version = {int(version)}")
            return
        self.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        self.execute("DELETE FROM schema_version")
        self.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def run_script(self, script: str) -> None:
        """A migration's statements (``;``-separated), in this dialect's DDL."""
        if self.dialect == "postgresql":
            script = postgresql_ddl(getattr(script, "postgresql", script))
        for statement in script.split(";"):
            if statement.strip():
                self.execute(statement)

    @contextmanager
    def foreign_keys_deferred(self) -> Iterator[None]:
        """Foreign keys off while migrating (SQLite's documented ALTER procedure: a
        migration may rebuild a table others refer to); PostgreSQL checks them as ever."""
        if self.dialect == "postgresql":
            yield
            return
        self.execute("PRAGMA foreign_keys=OFF")
        try:
            yield
        finally:
            self.execute("PRAGMA foreign_keys=ON")

    def foreign_key_violated(self) -> bool:
        if self.dialect == "postgresql":
            return False  # refused at once by the statement that broke it
        return self.execute("PRAGMA foreign_key_check").fetchone() is not None

    # ----------------------------------------------------------------- touched rows

    def watch(
        self,
        tables: dict[str, tuple[str, ...]],
        *,
        parts: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        """Note every row of ``tables`` this session inserts, deletes or changes in one of
        the listed columns, for the audit seal. SQLite: TEMP triggers of this connection
        into a TEMP table — a change by any other connection is not noted. PostgreSQL:
        triggers on the tables themselves (every session's changes) into ``audit_touched``
        keyed by transaction id; the seal reads only its own transaction's rows, so a row
        changed by psql is noted under a transaction no seal reads — and stays unexplained
        in ``audit verify``. Created once (under the writers' lock), then only checked. The
        table of touched rows is made by :meth:`keep_touched`, before the migrations.
        ``parts`` names tables whose rows are part of another table's row: ``{"job_photos":
        ("jobs", "job_id")}`` notes any change of a photo as a change of its job."""
        parts = parts or {}
        if self.dialect == "sqlite":
            for table, columns in tables.items():
                for when, ref in (
                    ("INSERT", "NEW"),
                    (f"UPDATE OF {', '.join(columns)}", "NEW"),
                    ("DELETE", "OLD"),
                ):
                    name = f"audit_{table}_{when.split()[0].lower()}"
                    self.execute(
                        f"CREATE TEMP TRIGGER IF NOT EXISTS {name} AFTER {when} ON main.{table}"
                        " BEGIN INSERT INTO audit_touched VALUES"
                        f" ('{table}', {ref}.id) ON CONFLICT DO NOTHING; END"
                    )
            for part, (whole, key) in parts.items():
                for when, ref in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
                    self.execute(
                        f"CREATE TEMP TRIGGER IF NOT EXISTS audit_{part}_{when.lower()} AFTER"
                        f" {when} ON main.{part} BEGIN INSERT INTO audit_touched VALUES"
                        f" ('{whole}', {ref}.{key}) ON CONFLICT DO NOTHING; END"
                    )
            return
        names = [f"audit_{table}_touched" for table in [*tables, *parts]]
        have = self.execute(
            "SELECT COUNT(*) FROM pg_trigger WHERE tgname = ANY(?)", (names,)
        ).fetchone()
        if have is not None and have[0] == len(names):
            return
        with self._schema_change():
            self._create_pg_watch(tables, parts)

    @contextmanager
    def _schema_change(self) -> Iterator[None]:
        """A transaction of its own under the writers' lock (PostgreSQL)."""
        self.begin_write()
        try:
            yield
            self.commit()
        except BaseException:
            self.rollback()
            raise

    def keep_touched(self) -> None:
        """The table the audit's touched rows are noted in (:meth:`watch`): SQLite a TEMP
        table of this connection, PostgreSQL ``audit_touched`` keyed by transaction id."""
        if self.dialect == "sqlite":
            self.execute(
                "CREATE TEMP TABLE IF NOT EXISTS audit_touched"
                " (tbl TEXT NOT NULL, row_id INTEGER NOT NULL, PRIMARY KEY (tbl, row_id))"
            )
            return
        if self._has_table("audit_touched"):
            return
        with self._schema_change():
            self.execute(
                "CREATE TABLE IF NOT EXISTS audit_touched (xid BIGINT NOT NULL,"
                " tbl TEXT NOT NULL, row_id BIGINT NOT NULL, PRIMARY KEY (xid, tbl, row_id))"
            )

    def _create_pg_watch(
        self, tables: dict[str, tuple[str, ...]], parts: dict[str, tuple[str, str]]
    ) -> None:
        self.execute(
            """CREATE OR REPLACE FUNCTION audit_note_touched() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO audit_touched VALUES (txid_current(), TG_TABLE_NAME,
                    CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END)
                    ON CONFLICT DO NOTHING;
                RETURN NULL;
            END $$"""
        )
        for table, columns in tables.items():
            self.execute(
                f"CREATE OR REPLACE TRIGGER audit_{table}_touched AFTER INSERT OR DELETE OR"
                f" UPDATE OF {', '.join(columns)} ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION audit_note_touched()"
            )
        # a part's change is its whole's: (whole table, the part's column naming the whole)
        self.execute(
            """CREATE OR REPLACE FUNCTION audit_note_part_touched() RETURNS trigger
            LANGUAGE plpgsql AS $$
            DECLARE changed jsonb;
            BEGIN
                IF TG_OP = 'DELETE' THEN changed := to_jsonb(OLD);
                ELSE changed := to_jsonb(NEW);
                END IF;
                INSERT INTO audit_touched VALUES (txid_current(), TG_ARGV[0],
                    (changed ->> TG_ARGV[1])::BIGINT)
                    ON CONFLICT DO NOTHING;
                RETURN NULL;
            END $$"""
        )
        for part, (whole, key) in parts.items():
            self.execute(
                f"CREATE OR REPLACE TRIGGER audit_{part}_touched AFTER INSERT OR DELETE OR"
                f" UPDATE ON {part} FOR EACH ROW"
                f" EXECUTE FUNCTION audit_note_part_touched('{whole}', '{key}')"
            )

    def _mine(self) -> str:
        return "" if self.dialect == "sqlite" else " WHERE xid = txid_current()"

    def touched(self) -> list[tuple[str, int]]:
        """The rows this transaction changed, (table, id), in order."""
        query = f"SELECT tbl, row_id FROM audit_touched{self._mine()} ORDER BY tbl, row_id"
        return [(str(t), int(r)) for t, r in self.execute(query)]

    def forget_touched(self) -> None:
        self.execute(f"DELETE FROM audit_touched{self._mine()}")

    def touch_all(self, table: str) -> None:
        """Note every row of ``table`` as touched (the keyed-audit migration adopts them)."""
        xid = "" if self.dialect == "sqlite" else "txid_current(), "
        self.execute(
            f"INSERT INTO audit_touched SELECT {xid}'{table}', id FROM {table}"
            " WHERE true ON CONFLICT DO NOTHING"  # WHERE: SQLite's parse of SELECT … ON
        )


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite opens it: SQLite creates its ``-wal`` and
    ``-shm`` files with the database file's permissions (``os_unix.c``, ``findCreateFileMode``),
    so the holders' data never sit in a world-readable file. An existing file is left as is."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _write_ahead_log(connection: sqlite3.Connection) -> None:
    """``PRAGMA journal_mode=WAL``. Converting a new file needs its exclusive lock, and
    SQLite answers "database is locked" at once, without waiting, when another process is
    converting it too (waiting could deadlock two lock upgrades): retry for as long as the
    busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def registry_exists(location: str | Path) -> bool:
    """A SQLite file there, or a PostgreSQL database holding a registry's schema."""
    if not is_url(location):
        return sqlite_path(location).exists()
    try:
        open_database(location, create=False).close()
    except MissingDatabase:
        return False
    return True


def open_database(location: str | Path, *, create: bool) -> Database:
    """The database at ``location``: a path or ``sqlite:///path`` (SQLite, WAL, busy
    timeout, a new file private to its owner, ``mode=rw`` unless ``create``) or
    ``postgresql://user@host:port/name`` (an existing database; the schema is the
    migrations'). ``MissingDatabase`` when not ``create`` and there is no SQLite file, or
    the PostgreSQL database has no registry schema yet;
    ``DatabaseError`` when it cannot be opened (the text never shows a password)."""
    if is_url(location):
        db = Database("postgresql", None, str(location))
        with db._mapped():
            db.connection = psycopg.connect(
                str(location), autocommit=True, connect_timeout=BUSY_TIMEOUT_S
            )
        db.set_busy_timeout(BUSY_TIMEOUT_S * 1000)
        if not create and not db.schema_version():
            db.close()  # an empty database: no registry made there (registry init) yet
            raise MissingDatabase(display(location))
        return db
    path = sqlite_path(location)
    if not create and not path.is_file():
        raise MissingDatabase(str(path))
    if create:
        try:
            _create_private(path)
        except OSError as exc:
            raise DatabaseError(f"cannot create the file: {exc.strerror}") from None
    db = Database("sqlite", None, str(path))
    uri = f"{path.absolute().as_uri()}?mode={'rwc' if create else 'rw'}"
    with db._mapped():
        db.connection = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        _write_ahead_log(db.connection)
        db.connection.execute("PRAGMA foreign_keys=ON")
    db.set_busy_timeout(BUSY_TIMEOUT_S * 1000)
    return db
