"""Operator accounts, passwords and login sessions (issue 11, deliverable 4; docs/service.md
"Operators").

* Passwords are NFKC-normalised (a password typed with an IME's full-width digits is the
  same password) and kept only as a scrypt hash (RFC 7914; N=2^17, r=8, p=1 as OWASP's
  Password Storage Cheat Sheet recommends), stored with its parameters and a random salt:
  ``scrypt$N$r$p$<salt hex>$<hash hex>``. Comparison is constant-time
  (``hmac.compare_digest``); an unknown name costs the same hash as a wrong password.
* A login opens a session: a random 256-bit token handed to the operator (the session
  file, mode 0600) of which the registry keeps only the SHA-256, with its expiry
  (``SESSION_LIFETIME``). Logout or disabling the operator ends it.
* ``require(registry, session, action)`` is the one gate of every state-changing command:
  a valid, unexpired session of an enabled operator whose role allows the action
  (``personalize.roles``). ``confirm(...)`` is dual control: a second, different operator
  allowed to confirm. Every refusal is one line, Chinese first, and an audit event.
  Passwords and tokens never reach the audit log, a log record or an exception.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from personalize.outfiles import FILE_MODE, ensure_dir
from personalize.registry import Registry
from personalize.roles import ACTIONS, DUAL_CONTROL, Role, allowed

SESSION_LIFETIME = timedelta(hours=8)
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
SCRYPT_MAXMEM = 256 * 1024 * 1024
MIN_PASSWORD = 8
NAME = re.compile(r"[\w.\-]{1,32}")
SESSION_ENV = "SSCARD_SESSION"
DEFAULT_SESSION = Path("~/.config/sscard/session")


class OperatorError(Exception):
    """Not logged in, a wrong password, an expired session, or a role that may not act."""


@dataclass(frozen=True)
class Operator:
    name: str
    role: Role
    enabled: bool = True


@dataclass(frozen=True)
class Session:
    """What the session file holds: the operator's name and the token (never logged)."""

    operator: str
    token: str
    expires_at: str

    def __repr__(self) -> str:  # the token stays out of tracebacks and logs
        return f"Session(operator={self.operator!r}, expires_at={self.expires_at!r})"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


# ------------------------------------------------------------------ passwords


def _password_bytes(password: str) -> bytes:
    return unicodedata.normalize("NFKC", password).encode()


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        _password_bytes(password), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=32
    )


def hash_password(password: str, *, minimum: int = MIN_PASSWORD) -> str:
    """A new password's stored form, after the length rule (at least ``minimum``
    characters; an operator's ``MIN_PASSWORD``, a holder's 查询密码 its own)."""
    if len(unicodedata.normalize("NFKC", password)) < minimum:
        raise OperatorError(f"口令至少 {minimum} 个字符 (the password needs {minimum} characters)")
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(stored: str | None, password: str) -> bool:
    """``password`` matches the stored hash (constant-time comparison); with no stored hash
    (an unknown account) it costs the same and is False."""
    if stored is None:
        check_password(_NOBODY, password)
        return False
    kind, n, r, p, salt, digest = stored.split("$")
    if kind != "scrypt":
        return False
    computed = _scrypt(password, bytes.fromhex(salt), int(n), int(r), int(p))
    return hmac.compare_digest(computed, bytes.fromhex(digest))


# A hash nobody's password matches, checked for an unknown name so that it costs the same.
_NOBODY = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${'00' * 16}${'00' * 32}"


# ------------------------------------------------------------------ accounts


def valid_name(name: str) -> str:
    """The operator name (工号) NFKC-normalised: letters, digits, ``_ . -``, 1–32."""
    text = unicodedata.normalize("NFKC", name).strip()
    if not NAME.fullmatch(text):
        raise OperatorError(
            f"操作员名无效：{name!r}（字母、数字、_ . -，至多 32 个）(not a valid operator name)"
        )
    return text


def find_operator(registry: Registry, name: str) -> Operator | None:
    row = registry.db.execute(
        "SELECT name, role, enabled FROM operators WHERE name = ?", (name,)
    ).fetchone()
    return None if row is None else Operator(row["name"], Role(row["role"]), bool(row["enabled"]))


def list_operators(registry: Registry) -> list[Operator]:
    rows = registry.db.execute("SELECT name, role, enabled FROM operators ORDER BY id")
    return [Operator(r["name"], Role(r["role"]), bool(r["enabled"])) for r in rows]


def has_operators(registry: Registry) -> bool:
    return registry.db.execute("SELECT 1 FROM operators LIMIT 1").fetchone() is not None


def add_operator(
    registry: Registry, name: str, role: Role, password: str, *, by: Operator | None
) -> Operator:
    """A new account. The first of an empty registry is a supervisor added without a
    session (``by=None``); later ones need ``by``, an operator allowed ``operator.add``.
    The check and the insert are one write transaction, so two first operators cannot
    both be bootstrapped."""
    name = valid_name(name)
    stored = hash_password(password)  # slow: before the write lock is taken
    with registry.transaction() as db:
        if by is None:
            if has_operators(registry):
                raise OperatorError(
                    "已有操作员：须由主管登录后新增 (operators exist: a supervisor's session "
                    "is needed)"
                )
            if role != Role.SUPERVISOR:
                raise OperatorError(
                    "第一个操作员须为主管 supervisor (the first operator must be a supervisor)"
                )
        elif not allowed(by.role, "operator.add"):
            raise OperatorError(f"{by.name} 无权新增操作员 (may not add operators)")
        if find_operator(registry, name) is not None:
            raise OperatorError(f"操作员 {name} 已存在 (the operator exists)")
        db.execute(
            "INSERT INTO operators (name, role, password_hash, created_at, created_by)"
            " VALUES (?, ?, ?, ?, ?)",
            (name, str(role), stored, _iso(registry.clock()), None if by is None else by.name),
        )
        registry.audit(
            "bootstrap" if by is None else by.name,
            "operator.add",
            name,
            {"role": str(role)},
        )
    return Operator(name, role)


def disable_operator(registry: Registry, name: str, *, by: Operator) -> Operator:
    """Disable an account and end its sessions; the last enabled supervisor stays."""
    with registry.transaction() as db:
        target = find_operator(registry, valid_name(name))
        if target is None:
            raise OperatorError(f"没有操作员 {name} (no such operator)")
        if target.role == Role.SUPERVISOR:
            left = db.execute(
                "SELECT COUNT(*) FROM operators WHERE role = ? AND enabled = 1 AND name != ?",
                (str(Role.SUPERVISOR), target.name),
            ).scalar()
            if left == 0:
                raise OperatorError(
                    "不能停用最后一位主管 (the last enabled supervisor cannot be disabled)"
                )
        db.execute("UPDATE operators SET enabled = 0 WHERE name = ?", (target.name,))
        db.execute(
            "UPDATE operator_sessions SET ended_at = ? WHERE ended_at IS NULL AND operator_id ="
            " (SELECT id FROM operators WHERE name = ?)",
            (_iso(registry.clock()), target.name),
        )
        registry.audit(by.name, "operator.disable", target.name, {})
    return Operator(target.name, target.role, enabled=False)


def refuse(registry: Registry, who: str, action: str, subject: str, reason: str) -> OperatorError:
    """Audit a refusal (its own transaction) and return the error to raise."""
    with registry.transaction():
        registry.audit(who, f"{action}.refused", subject, {"reason": reason})
    return OperatorError(reason)


def authenticate(registry: Registry, name: str, password: str, *, purpose: str) -> Operator:
    """The enabled operator ``name`` if ``password`` is theirs; else refused and audited
    (``<purpose>.refused``) without saying which of the two was wrong."""
    name = unicodedata.normalize("NFKC", name).strip()
    row = registry.db.execute(
        "SELECT name, role, enabled, password_hash FROM operators WHERE name = ?", (name,)
    ).fetchone()
    matches = check_password(_NOBODY if row is None else row["password_hash"], password)
    if row is None or not matches:
        raise refuse(
            registry, name, purpose, name, "操作员名或口令错误 (wrong operator name or password)"
        )
    if not row["enabled"]:
        raise refuse(registry, name, purpose, name, f"操作员 {name} 已停用 (operator disabled)")
    return Operator(row["name"], Role(row["role"]))


# ------------------------------------------------------------------ sessions


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(
    registry: Registry, name: str, password: str, *, lifetime: timedelta = SESSION_LIFETIME
) -> Session:
    """``sscard login`` (and the console's login page): check the password, keep the new
    token's hash with its expiry, ``lifetime`` from now (at most ``SESSION_LIFETIME``)."""
    who = authenticate(registry, name, password, purpose="operator.login")
    token = secrets.token_urlsafe(32)
    now = registry.clock()
    expires = _iso(now + min(lifetime, SESSION_LIFETIME))
    with registry.transaction() as db:
        db.execute(
            "INSERT INTO operator_sessions (operator_id, token_hash, created_at, expires_at)"
            " SELECT id, ?, ?, ? FROM operators WHERE name = ?",
            (_token_hash(token), _iso(now), expires, who.name),
        )
        registry.audit(who.name, "operator.login", who.name, {"expires_at": expires})
    return Session(who.name, token, expires)


def end_session(registry: Registry, session: Session) -> bool:
    """``sscard logout``: the session ends now; False when it was not open."""
    with registry.transaction() as db:
        ended = db.execute(
            "UPDATE operator_sessions SET ended_at = ? WHERE token_hash = ? AND ended_at IS NULL",
            (_iso(registry.clock()), _token_hash(session.token)),
        ).rowcount
        if ended:
            registry.audit(session.operator, "operator.logout", session.operator, {})
    return bool(ended)


def refresh_session(registry: Registry, session: Session, idle: timedelta) -> str | None:
    """Slide a live session's expiry to ``idle`` from now — never past ``SESSION_LIFETIME``
    after it opened (the console's idle time-out: a counter left alone logs itself out).
    Written only when the expiry would move by more than a minute; the new expiry or None."""
    now = registry.clock()
    row = registry.db.execute(
        "SELECT created_at, expires_at FROM operator_sessions"
        " WHERE token_hash = ? AND ended_at IS NULL",
        (_token_hash(session.token),),
    ).fetchone()
    if row is None or datetime.fromisoformat(row["expires_at"]) <= now:
        return None
    cap = datetime.fromisoformat(row["created_at"]) + SESSION_LIFETIME
    expires = min(now + idle, cap)
    if expires - datetime.fromisoformat(row["expires_at"]) <= timedelta(minutes=1):
        return None
    with registry.transaction() as db:
        db.execute(
            "UPDATE operator_sessions SET expires_at = ? WHERE token_hash = ? AND ended_at IS NULL",
            (_iso(expires), _token_hash(session.token)),
        )
    return _iso(expires)


def session_operator(registry: Registry, session: Session | None, *, action: str) -> Operator:
    """The operator of a live session, or refused: no session, unknown or ended token, past
    its expiry by the registry's clock, or a disabled account."""
    if session is None:
        raise refuse(
            registry,
            "-",
            action,
            action,
            f"未登录，请先 sscard login NAME (not logged in; set ${SESSION_ENV} or log in)",
        )
    row = registry.db.execute(
        "SELECT o.name, o.role, o.enabled, s.expires_at, s.ended_at FROM operator_sessions s"
        " JOIN operators o ON o.id = s.operator_id WHERE s.token_hash = ?",
        (_token_hash(session.token),),
    ).fetchone()
    who = session.operator if row is None else str(row["name"])
    reason = None
    if row is None or row["ended_at"] is not None:
        reason = "会话无效或已注销，请重新登录 (no such session: log in again)"
    elif datetime.fromisoformat(row["expires_at"]) <= registry.clock():
        reason = f"会话已于 {row['expires_at']} 过期，请重新登录 (the session expired)"
    elif not row["enabled"]:
        reason = f"操作员 {who} 已停用 (operator disabled)"
    if reason is not None:
        raise refuse(registry, who, action, action, reason)
    assert row is not None  # no row is a reason above
    return Operator(who, Role(row["role"]))


def require(registry: Registry, session: Session | None, action: str) -> Operator:
    """The gate of a state-changing command: the session's operator, whose role allows
    ``action``; a refusal is audited."""
    who = session_operator(registry, session, action=action)
    if not allowed(who.role, action):
        raise refuse(
            registry,
            who.name,
            action,
            action,
            f"{who.role.label} {who.name} 无权{ACTIONS[action]} (role {who.role} may not {action})",
        )
    return who


def confirm(registry: Registry, actor: Operator, confirmer: Operator, action: str) -> Operator:
    """Dual control: ``confirmer`` (already authenticated) is a different operator whose
    role may confirm; else refused and audited."""
    if action not in DUAL_CONTROL:
        raise KeyError(f"{action} needs no confirmation")
    if confirmer.name == actor.name:
        raise refuse(
            registry,
            actor.name,
            action,
            action,
            "复核人须为另一位操作员 (dual control needs a second, different operator)",
        )
    if not allowed(confirmer.role, "confirm"):
        raise refuse(
            registry,
            actor.name,
            action,
            action,
            f"{confirmer.role.label} {confirmer.name} 无权复核 (role {confirmer.role} may not "
            "confirm)",
        )
    return confirmer


# ------------------------------------------------------------------ the session file


def session_path() -> Path:
    """``$SSCARD_SESSION``, or ``~/.config/sscard/session``."""
    return Path(os.environ.get(SESSION_ENV) or DEFAULT_SESSION).expanduser()


def save_session(path: Path, session: Session) -> Path:
    """Write the session file whole (0600, its directory 0700 when created), replacing an
    earlier one."""
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-session-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(
                {"operator": session.operator, "token": session.token,
                 "expires_at": session.expires_at},
                fh,
            )  # fmt: skip
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


def load_session(path: Path) -> Session | None:
    """The session in ``path``; None when there is no file. A file others may read is
    refused (a token readable by others is not the operator's)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & 0o077:
        raise OperatorError(
            f"会话文件 {path} 权限过宽，请重新登录 (the session file is readable by others: "
            "log in again)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Session(str(data["operator"]), str(data["token"]), str(data["expires_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        raise OperatorError(
            f"会话文件 {path} 无效，请重新登录 (not a session file: log in again)"
        ) from None
