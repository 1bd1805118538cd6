"""Login, logout and the home page of the console (docs/console.md "Sessions, roles and
CSRF")."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from personalize.operators import OperatorError, end_session, open_session
from personalize.web.access import (
    COOKIE,
    EVERY_OPERATOR,
    LOGIN_COOKIE,
    PREFIX,
    PUBLIC,
    Access,
    User,
    console_state,
    idle_timeout,
    new_login_token,
)
from personalize.web.pages import redirect, render

router = APIRouter()

ACCESS: dict[tuple[str, str], Access] = {
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): EVERY_OPERATOR,
    ("GET", "/"): EVERY_OPERATOR,
}


def _safe_next(target: str | None) -> str:
    """Only a console path (never another site: an open redirect)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//"):
        return target
    return PREFIX + "/"


def _login_page(request: Request, *, why: str | None, back: str, status: int = 200) -> Response:
    token = new_login_token()
    response = render(
        request, "login.html", None, status=status, why=why, back=back, login_csrf=token
    )
    secure = bool(getattr(console_state(request).args, "secure_cookies", False))
    response.set_cookie(
        LOGIN_COOKIE, token, path=PREFIX, httponly=True, samesite="strict", secure=secure
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None, why: str | None = None) -> Response:
    return _login_page(request, why=why, back=_safe_next(next))


@router.post("/login")
def login(
    request: Request,
    name: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    csrf: Annotated[str, Form(max_length=128)],
    next: Annotated[str, Form(max_length=512)] = PREFIX + "/",
) -> Response:
    state = console_state(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf, expected):
        return _login_page(
            request,
            why="登录表单已失效，请重新输入 (the login form expired: CSRF check failed)",
            back=_safe_next(next),
            status=403,
        )
    try:
        session = open_session(state.registry(), name, password, lifetime=idle_timeout(state))
    except OperatorError as exc:
        return _login_page(request, why=str(exc), back=_safe_next(next), status=401)
    response = redirect(_safe_next(next).removeprefix(PREFIX))
    response.set_cookie(
        COOKIE,
        session.token,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=bool(getattr(state.args, "secure_cookies", False)),
    )
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return response


@router.post("/logout")
def logout(request: Request, user: User) -> Response:
    end_session(console_state(request).registry(), user.session)
    response = redirect("/login", ok="已退出登录 (logged out)")
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: User) -> Response:
    return render(request, "home.html", user)
