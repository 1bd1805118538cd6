"""The console application, mounted by ``sscard serve`` at ``/console`` beside the API
(docs/console.md). It shares the API's ``ApiState`` (a registry per worker thread, one
queue of writers) but not its bearer tokens: a person logs in, a system holds a token.

``ROUTERS`` lists each section's router with its ``ACCESS`` table; ``PAGES`` (on
``app.state.pages``) is their union — the one table ``access.console_user`` reads."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.base import RequestResponseEndpoint

from personalize.api.access import ApiState
from personalize.api.problems import BodyLimit
from personalize.web import (
    routes_audit,
    routes_auth,
    routes_center,
    routes_counter,
    routes_fees,
    routes_stock,
)
from personalize.web.access import (
    Access,
    Forbidden,
    LoginNeeded,
    console_user,
)
from personalize.web.pages import render

# Each section of the console: a module with ``router`` and ``ACCESS``.
SECTIONS: tuple[ModuleType, ...] = (
    routes_auth,
    routes_counter,
    routes_center,
    routes_stock,
    routes_fees,
    routes_audit,
)

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD = 2 * 1024 * 1024  # a form with a photo; the policy's own photo limit is smaller

# Security headers of every page (OWASP Secure Headers): no framing (clickjacking), no
# script or style from elsewhere, no referrer leaving the console.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def page_table(sections: tuple[ModuleType, ...]) -> dict[tuple[str, str], Access]:
    """Every section's ``ACCESS``, keyed (method, route path) as ``access.route_path`` reads
    them; a route declared twice is a mistake caught at start."""
    table: dict[tuple[str, str], Access] = {}
    for section in sections:
        for key, access in section.ACCESS.items():
            if key in table:
                raise ValueError(f"console route {key} declared twice")
            table[key] = access
    return table


def create_console(state: ApiState) -> FastAPI:
    """The console on ``state``'s registry (mounted at /console by ``api.app.create_app``)."""
    app = FastAPI(
        title="社保卡制卡中心操作台",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(console_user)],
    )
    app.state.api = state
    app.state.pages = page_table(SECTIONS)
    for section in SECTIONS:
        app.include_router(section.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, limit=MAX_UPLOAD)

    @app.exception_handler(LoginNeeded)
    async def _login(request: Request, exc: LoginNeeded) -> Response:
        return RedirectResponse(exc.location(), status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return render(request, "error.html", None, status=403, title="无权操作", detail=str(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        title = {404: "没有这个页面", 405: "不支持的请求方法"}.get(exc.status_code, "请求失败")
        return render(request, "error.html", None, status=exc.status_code, title=title,
                      detail=str(exc.detail))  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        fields = "，".join(
            ".".join(str(p) for p in e.get("loc", ()) if p != "body") for e in exc.errors()
        )
        return render(request, "error.html", None, status=422, title="表单填写有误",
                      detail=f"请检查：{fields} (the form does not validate)")  # fmt: skip

    @app.middleware("http")
    async def _headers(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response: Response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app
