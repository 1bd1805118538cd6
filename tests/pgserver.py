"""A private PostgreSQL 15 server for the tests (docs/architecture.md, "PostgreSQL in the
tests"): Debian's binaries in /usr/lib/postgresql/15/bin, run as the ``postgres`` user
(``runuser``), a cluster of its own in a temporary directory, listening on 127.0.0.1 at a
free port and on a Unix socket in that directory, ``fsync=off`` (a test cluster is thrown
away). Independent of any cluster Debian's package made: nothing of /etc/postgresql or
/var/lib/postgresql is read or started. Stopped and removed when the ``with`` ends, also when
the tests fail.

    with postgres_server() as server:
        server.url  # postgresql://sscard_test:…@127.0.0.1:PORT/sscard_test
        server.create_database("other")  # another empty database of the same owner
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SERVICE_USER = "postgres"
ROLE = "sscard_test"
DATABASE = "sscard_test"
START_TIMEOUT = 60  # seconds for pg_ctl to see the server accept connections


class PostgresUnavailable(RuntimeError):
    """The test server could not be started (the message says which step and why)."""


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    role: str
    password: str
    database: str
    directory: Path  # the cluster, its log and its Unix socket; removed at the end

    def url_of(self, database: str) -> str:
        return f"postgresql://{self.role}:{self.password}@{self.host}:{self.port}/{database}"

    @property
    def url(self) -> str:
        """The test database's URL."""
        return self.url_of(self.database)

    def create_database(self, name: str) -> str:
        """A new empty database owned by the test role; its URL."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_of(name)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def as_service_user(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``argv`` run as the ``postgres`` user; PostgresUnavailable with its output if it
    fails."""
    command = ["runuser", "-u", SERVICE_USER, "--", *argv]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise PostgresUnavailable(
            f"{Path(argv[0]).name} failed ({done.returncode}): {done.stderr or done.stdout}"
        )
    return done


def private_directory() -> Path:
    """A temporary directory owned by ``postgres``, mode 0700, that it can reach (the
    temporary directory's parents must let it through)."""
    if not (PG_BIN / "initdb").exists():
        raise PostgresUnavailable(f"no {PG_BIN}/initdb: apt-get install postgresql (make deps)")
    top = Path(tempfile.mkdtemp(prefix="sscard-pg-"))
    top.chmod(0o700)
    shutil.chown(top, SERVICE_USER, SERVICE_USER)
    try:
        as_service_user("test", "-w", str(top), cwd=top)
    except PostgresUnavailable:
        shutil.rmtree(top)
        raise PostgresUnavailable(
            f"{top} is out of the postgres user's reach: set TMPDIR to a directory it can "
            "traverse (e.g. /tmp)"
        ) from None
    return top


@contextlib.contextmanager
def postgres_server(settings: tuple[str, ...] = ()) -> Iterator[PostgresServer]:
    """A running private server with the role and database of the tests (see above);
    ``settings`` (``name=value``) are added to its command line (a benchmark sizes its
    buffers for a city's registry)."""
    top = private_directory()
    data, log = top / "data", top / "server.log"
    password = secrets.token_hex(16)
    pwfile = top / "password"
    pwfile.write_text(password + "\n", encoding="ascii")
    shutil.chown(pwfile, SERVICE_USER, SERVICE_USER)
    port = free_port()
    started = False
    try:
        as_service_user(
            str(PG_BIN / "initdb"), "-D", str(data), "-U", SERVICE_USER,
            "--auth-local=peer", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions",
            cwd=top,
        )  # fmt: skip
        pwfile.unlink()
        options = " ".join(
            f"-c {setting}"
            for setting in (
                "listen_addresses=127.0.0.1",
                f"port={port}",
                f"unix_socket_directories={top}",
                "fsync=off",
                "synchronous_commit=off",
                "full_page_writes=off",
                "max_connections=100",
                *settings,
            )
        )
        started = True  # from here on pg_ctl stop runs, even if start failed halfway
        try:
            as_service_user(
                str(PG_BIN / "pg_ctl"), "start", "-D", str(data), "-l", str(log), "-w",
                "-t", str(START_TIMEOUT), "-o", options,
                cwd=top,
            )  # fmt: skip
        except PostgresUnavailable as exc:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailable(f"{exc}\n{tail}") from None
        as_service_user(
            str(PG_BIN / "psql"), "-h", str(top), "-p", str(port), "-d", "postgres",
            "-v", "ON_ERROR_STOP=1", "-q",
            "-c", f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{password}'",
            "-c", f"CREATE DATABASE {DATABASE} OWNER {ROLE}",
            cwd=top,
        )  # fmt: skip
        yield PostgresServer("127.0.0.1", port, ROLE, password, DATABASE, top)
    finally:
        if started:
            subprocess.run(
                ["runuser", "-u", SERVICE_USER, "--", str(PG_BIN / "pg_ctl"), "stop",
                 "-D", str(data), "-m", "immediate", "-w"],
                cwd=top, capture_output=True, timeout=120, check=False,
            )  # fmt: skip
        shutil.rmtree(top, ignore_errors=True)
