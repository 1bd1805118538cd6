"""Rendering console pages: the Jinja2 templates of ``templates/`` with the operator, their
CSRF token, the navigation their role sees and the one-time message of the last form
(docs/console.md "Pages")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from personalize.roles import Role
from personalize.web.access import PREFIX, ConsoleUser

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
FLASH = "sscard_flash"  # the message of the last form, shown once


@dataclass(frozen=True)
class NavEntry:
    label: str
    path: str
    roles: frozenset[Role]


def _nav(label: str, path: str, *roles: Role) -> NavEntry:
    return NavEntry(label, PREFIX + path, frozenset({*roles, Role.SUPERVISOR}))


# The console's sections, in the order of the menu; each shows to the roles that may open it.
NAV: tuple[NavEntry, ...] = (
    _nav("柜台业务", "/counter", Role.COUNTER),
    _nav("制卡队列", "/center", Role.CARD_CENTER),
    _nav("卡片库存", "/center/stock", Role.CARD_CENTER),
    _nav("审计", "/audit", Role.AUDITOR),
)


def nav_for(role: Role) -> list[NavEntry]:
    return [entry for entry in NAV if role in entry.roles]


def render(
    request: Request,
    template: str,
    user: ConsoleUser | None,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """``template`` with ``context``, the operator and their menu, and the last form's
    message (then cleared)."""
    flash = request.cookies.get(FLASH)
    message = None
    if flash:
        kind, _, text = unquote(flash).partition("|")
        message = {"kind": kind, "text": text}
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "user": user,
            "csrf": user.csrf if user else "",
            "nav": nav_for(user.role) if user else [],
            "prefix": PREFIX,
            "flash": message,
            **context,
        },
        status_code=status,
    )
    if flash:
        response.delete_cookie(FLASH, path=PREFIX)
    return response


def inline_pdf(pdf: bytes, name: str) -> Response:
    """A PDF the browser opens in place (inline), with an ASCII ``name`` for a save."""
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


def redirect(path: str, *, ok: str | None = None, error: str | None = None) -> Response:
    """Post/Redirect/Get: back to a console page (``path`` under /console), with a message
    shown once — ``ok`` for a change made, ``error`` for a refusal (nothing written)."""
    response = RedirectResponse(PREFIX + path, status_code=303)
    if ok is not None or error is not None:
        kind, text = ("ok", ok) if ok is not None else ("error", error)
        response.set_cookie(
            FLASH, quote(f"{kind}|{text}"), path=PREFIX, httponly=True, samesite="strict"
        )
    return response
