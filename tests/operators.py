"""Logged-in operators for the CLI tests (docs/service.md "Operators").

``login(db)`` makes sure the registry at ``db`` exists and holds the operator (the first one
bootstraps as a supervisor; a non-supervisor gets a supervisor ``sup0`` added first), opens
a session and returns ``{"SSCARD_SESSION": <file>}`` to merge into a subprocess's
environment: ``env={**os.environ, **login(db)}`` or ``{"PATH": …, **login(db)}``. The
session starts at ``clock()`` — by default ``tests.clock.PINNED``, the instant ``FAKETIME``
starts the subprocesses at, and lasts 8 hours; a test running ``sscard`` at another instant
passes that clock.

``confirm(db)`` is the dual-control options of a second supervisor (``sup2``):
``("--confirm-session", <their session file>)`` — no password on standard input needed.
"""

from __future__ import annotations

from pathlib import Path

from personalize.database import is_url
from personalize.operators import (
    Operator,
    add_operator,
    find_operator,
    has_operators,
    open_session,
    save_session,
)
from personalize.policy import load_policy
from personalize.registry import Clock, Registry
from personalize.roles import Role
from tests.audit_key import AUDIT_KEY
from tests.clock import pinned_clock

PASSWORD = "test-operator-pw"  # every test operator's password (test accounts only)
BOOTSTRAP = "sup0"
CONFIRMER = "sup2"


def session_file(db: str | Path, name: str) -> Path:
    """Beside a SQLite registry; in the current directory for a PostgreSQL one."""
    return (Path.cwd() if is_url(db) else Path(db).parent) / f"session-{name}"


def login(
    db: str | Path,
    name: str = "op7",
    role: Role = Role.SUPERVISOR,
    *,
    clock: Clock = pinned_clock,
    policy: str = "default",
) -> dict[str, str]:
    """The environment entry of a session of ``name`` (``role``) on the registry ``db``."""
    registry = Registry(db, load_policy(policy), clock=clock, audit_key=AUDIT_KEY)
    try:
        if find_operator(registry, name) is None:
            if role != Role.SUPERVISOR and not has_operators(registry):
                add_operator(registry, BOOTSTRAP, Role.SUPERVISOR, PASSWORD, by=None)
            by = _supervisor(registry) if has_operators(registry) else None
            add_operator(registry, name, role, PASSWORD, by=by)
        path = save_session(session_file(db, name), open_session(registry, name, PASSWORD))
    finally:
        registry.close()
    return {"SSCARD_SESSION": str(path)}


def confirm(
    db: str | Path, name: str = CONFIRMER, *, clock: Clock = pinned_clock
) -> tuple[str, str]:
    """``--confirm-session FILE`` of a second supervisor, for dual-control commands."""
    return ("--confirm-session", login(db, name, Role.SUPERVISOR, clock=clock)["SSCARD_SESSION"])


def _supervisor(registry: Registry) -> Operator:
    row = registry.db.execute(
        "SELECT name FROM operators WHERE role = ? AND enabled = 1 ORDER BY id LIMIT 1",
        (str(Role.SUPERVISOR),),
    ).fetchone()
    return Operator(str(row["name"]), Role.SUPERVISOR)
