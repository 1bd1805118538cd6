"""The FastAPI application of ``sscard serve`` (issue 15; docs/api.md): the routes of
``routes_cards`` and ``routes_requests``, health and readiness, the problem handlers and the
body limit. Every route runs a workflow of the registry on this thread's connection
(``access.ApiState``). The operator console (``personalize.web``, docs/console.md) is
mounted at ``/console`` on the same state; ``/`` leads there."""

from __future__ import annotations

import argparse
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request

from personalize.api import routes_cards, routes_fees, routes_requests
from personalize.api.access import ApiState, caller, state_of
from personalize.api.models import Health, problems
from personalize.api.problems import ApiProblem, BodyLimit, install
from personalize.registry import MIGRATIONS, RegistryError
from personalize.trackvault import TrackVault
from personalize.web import app as console
from personalize.web.access import PREFIX as CONSOLE

MAX_BODY = 64 * 1024  # bytes: a job with its photo (4 KiB by default) fits many times

DESCRIPTION = """社保卡制卡中心的 HTTP 接口：各渠道挂失、卡状态（医院、药店终端）、黑名单增量、
查询（默认脱敏）、正式挂失、解挂、补卡申请与领卡证明、制卡作业。

* 认证：`Authorization: Bearer <令牌>`，令牌由 `sscard api-client add` 发放，按角色授权。
* 每个 POST 须带 `Idempotency-Key`：重放返回第一次的响应，同键不同请求被拒绝。
* 错误一律为 RFC 9457 `application/problem+json`，`title` 为中文。
"""

health_router = APIRouter(prefix="/v1", tags=["运行状态 health"])


@health_router.get("/health", response_model=Health, summary="存活检查")
def health() -> dict[str, Any]:
    return {"status": "ok"}


@health_router.get(
    "/ready",
    response_model=Health,
    summary="就绪检查",
    description="登记库可读、结构为最新版本、审计密钥可用时就绪。",
    responses=problems(503),
)
def ready(request: Request) -> dict[str, Any]:
    try:
        registry = state_of(request).registry()
        version = registry.schema_version
    except RegistryError as exc:
        raise ApiProblem(503, str(exc), slug="not-ready") from None
    if version != len(MIGRATIONS):
        raise ApiProblem(
            503,
            f"登记库结构版本 {version}，应为 {len(MIGRATIONS)} (schema version {version}, "
            f"expected {len(MIGRATIONS)})",
            slug="not-ready",
        )
    if registry.audit_key is None:
        raise ApiProblem(503, "未配置审计密钥 (no audit key: give --hsm)", slug="not-ready")
    return {"status": "ready", "schema_version": version}


ROUTERS = (health_router, routes_cards.router, routes_requests.router, routes_fees.router)


def create_app(args: argparse.Namespace, *, max_body: int = MAX_BODY) -> FastAPI:
    """The application for the registry and security module of ``args`` (``--db``,
    ``--hsm``…, ``--policy``) and the track key of ``args.track_key`` (job submission)."""
    app = FastAPI(
        title="社保卡制卡中心接口 (sscard API)",
        version="1",
        description=DESCRIPTION,
        dependencies=[Depends(caller)],  # every route: its role rule (ROUTE_ROLES)
        docs_url=None,
        redoc_url=None,
    )
    vault = TrackVault.from_file(args.track_key) if args.track_key else None
    app.state.api = ApiState(args, vault)
    install(app)
    for router in ROUTERS:
        app.include_router(router)
    app.mount(CONSOLE, console.create_console(app.state.api))
    app.add_middleware(BodyLimit, limit=max_body, skip=CONSOLE + "/")
    return app
