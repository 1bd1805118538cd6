"""Who may open which console page, and how a browser proves who it is (docs/console.md
"Sessions, roles and CSRF").

* Login opens an operator session (``personalize.operators.open_session``: the registry
  keeps only the token's SHA-256) whose token is the cookie ``sscard_console`` — HttpOnly,
  SameSite=Strict, Path=/console (and Secure with ``--secure-cookies``). The session slides
  with use (``--console-idle``, 30 min by default) and never outlives 8 hours; an expired or
  ended session sends the browser back to the login page.
* ``PAGES`` is the one table: each console route (method, path) → its ``Access``: the roles
  that may open a page, or the action (``personalize.roles.ACTIONS``) a form performs — the
  roles allowed that action by ``roles.PERMISSIONS``, the CLI's own table. A route missing
  from it is refused to everyone, and a test walks every route of the console against it.
* Every form carries a CSRF token (``csrf_token``: an HMAC of the session token, so it is
  worthless without the cookie it belongs to) that every POST must return; the login form,
  before any session, uses a double-submitted cookie. A refusal is an audit event
  (``console.refused``) naming the operator.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from personalize.api.access import ApiState
from personalize.operators import (
    Operator,
    OperatorError,
    Session,
    refresh_session,
    session_operator,
)
from personalize.registry import Registry, RegistryError
from personalize.roles import ACTIONS, PERMISSIONS, Role

COOKIE = "sscard_console"
LOGIN_COOKIE = "sscard_login"  # the login form's double-submitted CSRF token
PREFIX = "/console"
DEFAULT_IDLE = timedelta(minutes=30)


@dataclass(frozen=True)
class Access:
    """Who may use one console route: ``roles`` for a page; for a form, the ``action`` it
    performs (its roles are the action's, from ``roles.PERMISSIONS``)."""

    roles: frozenset[Role]
    action: str | None = None

    @classmethod
    def page(cls, *roles: Role) -> Access:
        """A page for ``roles`` (a supervisor may open every page)."""
        return cls(frozenset({*roles, Role.SUPERVISOR}))

    @classmethod
    def form(cls, action: str) -> Access:
        """A form performing ``action``: who may perform it, by the one permission table."""
        if action not in ACTIONS:
            raise KeyError(f"unknown action {action!r}")
        return cls(frozenset(r for r in Role if action in PERMISSIONS[r]), action)


EVERY_OPERATOR = Access(frozenset(Role))
PUBLIC = Access(frozenset())  # the login page and the static files: no session


class LoginNeeded(Exception):
    """No live session: the browser goes to the login page (with why, and where it was)."""

    def __init__(self, reason: str, back: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.back = back

    def location(self) -> str:
        return f"{PREFIX}/login?next={quote(self.back)}&why={quote(self.reason)}"


class Forbidden(Exception):
    """A live session whose role may not use the route (answered 403, audited)."""


@dataclass(frozen=True)
class ConsoleUser:
    """The operator behind a request, with the CSRF token of their session."""

    operator: Operator
    session: Session
    csrf: str

    @property
    def name(self) -> str:
        return self.operator.name

    @property
    def role(self) -> Role:
        return self.operator.role

    def may(self, action: str) -> bool:
        return action in PERMISSIONS[self.role]


def csrf_token(session_token: str) -> str:
    """The session's CSRF token: HMAC-SHA256 keyed by the session token (OWASP CSRF
    Prevention Cheat Sheet, "Signed Double-Submit Cookie"), hex."""
    return hmac.new(session_token.encode(), b"sscard console csrf", hashlib.sha256).hexdigest()


def new_login_token() -> str:
    return secrets.token_urlsafe(24)


def idle_timeout(state: ApiState) -> timedelta:
    """``sscard serve --console-idle SECONDS`` (default 30 minutes)."""
    seconds = getattr(state.args, "console_idle", None)
    return DEFAULT_IDLE if seconds is None else timedelta(seconds=seconds)


def console_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


def route_path(request: Request) -> tuple[str, str]:
    route = request.scope.get("route")
    return request.method, str(getattr(route, "path", request.url.path))


def _back(request: Request) -> str:
    if request.method != "GET":
        return f"{PREFIX}/"
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{PREFIX}{request.url.path.removeprefix(PREFIX)}{query}"


def audit_refusal(registry: Registry, who: str, subject: str, reason: str) -> None:
    """A refusal as its own audit event (best effort: a busy registry still answers)."""
    try:
        with registry.transaction():
            registry.audit(who, "console.refused", subject, {"reason": reason})
    except RegistryError:
        pass


async def _form_csrf(request: Request) -> str | None:
    form = await request.form()
    value = form.get("csrf")
    return value if isinstance(value, str) else None


async def console_user(request: Request) -> ConsoleUser | None:
    """The operator of this request, allowed this route by ``PAGES`` (None on a public
    route); a POST must also carry its session's CSRF token. An application-wide
    dependency of the console."""
    method, path = route_path(request)
    pages: dict[tuple[str, str], Access] = request.app.state.pages  # app.py: every router's
    access = pages.get((method, path))
    if access is PUBLIC:
        return None
    state = console_state(request)
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginNeeded("请先登录 (please log in)", _back(request))
    registry = state.registry()
    try:
        kind = "form" if method == "POST" else "page"
        operator = session_operator(registry, Session("-", token, ""), action=f"console.{kind}")
    except OperatorError as exc:
        raise LoginNeeded(str(exc), _back(request)) from None
    session = Session(operator.name, token, "")
    user = ConsoleUser(operator, session, csrf_token(token))
    if method == "POST":
        sent = await _form_csrf(request)
        if sent is None or not hmac.compare_digest(sent, user.csrf):
            reason = "表单已失效（CSRF 校验失败），请刷新页面后重试 (CSRF token missing or wrong)"
            audit_refusal(registry, user.name, path, reason)
            raise Forbidden(reason)
    if access is None or user.role not in access.roles:
        what = ACTIONS[access.action] if access and access.action else "访问此页面"
        reason = (
            f"{user.role.label} {user.name} 无权{what} "
            f"(role {user.role} may not use {method} {path})"
        )
        audit_refusal(registry, user.name, path, reason)
        raise Forbidden(reason)
    refresh_session(registry, session, idle_timeout(state))
    return user


def signed_in(user: Annotated[ConsoleUser | None, Depends(console_user)]) -> ConsoleUser:
    """The operator of a route that is not public."""
    assert user is not None
    return user


User = Annotated[ConsoleUser, Depends(signed_in)]
