"""Suite-wide secret watch: every log record, every APDU exchange of every transport (as its
trace event) and the message of every exception of the project's own hierarchies produced
while the suite runs is kept, and
``tests/test_secrets_never_leak.py`` — moved to the very end of the run — fails if any test
key, the test LMK or the test client secret appears in them, in any spelling."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from apdu.errors import ApduError
from apdu.transport import Transport
from hsm_stub.errors import SecurityModuleError
from personalize.operators import OperatorError
from personalize.webhooks import WebhookConfigError
from tests.audit_key import HSM_ENV
from tests.clock import MovingClock
from tests.pgserver import PostgresServer, postgres_server


class SecretWatch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.logs: list[str] = []
        self.traces: list[str] = []
        self.exceptions: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.logs.append(text)


WATCH = SecretWatch()


def _recording_init(base: type[Exception]) -> Callable[..., None]:
    original = base.__init__

    def __init__(self: Exception, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        WATCH.exceptions.append(f"{type(self).__name__}: {self} {self.args!r}")

    return __init__


def pytest_configure(config: pytest.Config) -> None:
    os.environ.update(HSM_ENV)  # every `sscard` subprocess has the test audit key
    root = logging.getLogger()
    root.addHandler(WATCH)
    root.setLevel(logging.DEBUG)
    for base in (ApduError, SecurityModuleError, OperatorError, WebhookConfigError):
        base.__init__ = _recording_init(base)  # type: ignore[method-assign]
    init = Transport.__init__

    def watched_init(self: Transport, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.add_observer(lambda event: WATCH.traces.append(event.render() + repr(event)))

    Transport.__init__ = watched_init  # type: ignore[method-assign]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    last = [i for i in items if i.nodeid.startswith("tests/test_secrets_never_leak.py")]
    items[:] = [i for i in items if i not in last] + last


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL server for the whole session (tests/pgserver.py)."""
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres: PostgresServer) -> str:
    """``postgresql://…`` of the session's test database on that server."""
    return postgres.url


NewDatabase = Callable[[str], str]


@pytest.fixture(params=["sqlite", "postgresql"])
def new_db(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> NewDatabase:
    """A factory of new, empty registry databases, ``new_db("r")`` → their location: a SQLite
    file in ``tmp_path``, or a database of its own on the session's PostgreSQL server (which
    starts only for these). The test runs in ``tmp_path``, where a PostgreSQL registry's
    audit checkpoint log is by default (``personalize.database.checkpoint_default``)."""
    monkeypatch.chdir(tmp_path)
    if request.param == "sqlite":
        return lambda name: str(tmp_path / f"{name}.db")
    server: PostgresServer = request.getfixturevalue("postgres")
    return lambda name: server.create_database(f"{name}_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def clock() -> MovingClock:
    """The registry's time, moved on by the test."""
    return MovingClock()
