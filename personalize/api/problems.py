"""Every error of the API is an RFC 9457 problem (``application/problem+json``) with a
Chinese ``title`` and, in ``detail``, the one-line refusal of the rule that refused (Chinese
first, English in parentheses, as the CLI prints it) — validation errors, unknown routes,
oversize bodies and unexpected failures included (docs/api.md "Errors").

A problem never carries what the caller sent: a validation error names the field and what
is wrong with it, never its value (a 查询密码 or an ID number stays out of responses and
logs)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from personalize.jobs import JobError
from personalize.operators import OperatorError
from personalize.registry import BUSY, RegistryError
from sscard.errors import InvalidData

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)

# Chinese titles of the statuses the API answers with (the ``title`` of a problem whose
# type is the status itself).
TITLES: dict[int, str] = {
    400: "请求格式错误",
    401: "未认证的客户端",
    403: "无权调用",
    404: "没有这个资源",
    405: "不支持的请求方法",
    409: "与当前状态冲突",
    413: "请求体过大",
    415: "不支持的内容类型",
    422: "请求数据无效",
    423: "已锁定",
    429: "尝试次数过多",
    500: "服务器内部错误",
    503: "服务暂不可用",
}


class ProblemField(BaseModel):
    """One field a validation error names."""

    loc: list[str | int] = Field(description="字段位置 (where in the request)")
    msg: str = Field(description="错在哪里 (what is wrong)")
    type: str = Field(description="错误类别 (pydantic's error type)")


class Problem(BaseModel):
    """RFC 9457 问题详情 (problem details)."""

    type: str = Field(description="问题类别的 URI (problem type)")
    title: str = Field(description="问题标题（中文）(short Chinese title)")
    status: int = Field(description="HTTP 状态码")
    detail: str = Field(description="说明：中文在前，英文在括号内 (Chinese first)")
    instance: str | None = Field(default=None, description="出错的请求路径 (request path)")
    errors: list[ProblemField] | None = Field(
        default=None, description="校验错误的字段 (fields that failed validation)"
    )


class ApiProblem(Exception):
    """Raised by a route: answered as a problem with this status."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or f"http-{status}"
        self.headers = headers or {}
        self.errors = errors

    @property
    def title(self) -> str:
        return TITLES.get(self.status, "请求失败")

    def response(self, instance: str | None = None) -> JSONResponse:
        body = Problem(
            type=f"urn:sscard:problem:{self.slug}",
            title=self.title,
            status=self.status,
            detail=self.detail,
            instance=instance,
            errors=None if self.errors is None else [ProblemField(**e) for e in self.errors],
        )
        return JSONResponse(
            body.model_dump(exclude_none=True),
            status_code=self.status,
            media_type=PROBLEM_JSON,
            headers=self.headers,
        )


# What the API answers for a refusal of the workflows (docs/api.md "Errors"): a transition
# the rules refuse is a conflict with the card's state, refused data is unprocessable.
def problem_of(exc: Exception) -> ApiProblem:
    if isinstance(exc, ApiProblem):
        return exc
    if isinstance(exc, RegistryError):
        if str(exc) == BUSY:
            return ApiProblem(503, BUSY, slug="registry-busy", headers={"Retry-After": "1"})
        return ApiProblem(409, str(exc), slug="refused")
    if isinstance(exc, (JobError, InvalidData)):
        return ApiProblem(422, str(exc), slug="invalid-data")
    if isinstance(exc, OperatorError):
        return ApiProblem(422, str(exc), slug="invalid-data")
    raise exc


# ------------------------------------------------------------------ handlers


def _validation_problem(exc: RequestValidationError) -> ApiProblem:
    errors = [
        {
            "loc": [str(p) if not isinstance(p, int) else p for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        return ApiProblem(
            400, "请求体不是有效的 JSON (the body is not valid JSON)", slug="malformed-json"
        )
    fields = "，".join(".".join(str(p) for p in e["loc"]) for e in errors)
    return ApiProblem(
        422,
        f"请求数据不符合接口定义：{fields} (the request does not match the schema)",
        slug="validation",
        errors=errors,
    )


HTTP_DETAILS: dict[int, str] = {
    404: "没有这个接口 (no such endpoint)",
    405: "该接口不支持这个方法 (method not allowed)",
}


def install(app: FastAPI) -> None:
    """The problem handlers of ``app``."""

    @app.exception_handler(ApiProblem)
    async def _problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return exc.response(request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_problem(exc).response(request.url.path)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        detail = HTTP_DETAILS.get(exc.status_code, f"{TITLES.get(exc.status_code, '')}")
        headers = dict(exc.headers or {})
        return ApiProblem(exc.status_code, detail, headers=headers).response(request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected %s on %s", type(exc).__name__, request.url.path)
        return ApiProblem(
            500, "服务器内部错误，已记录 (unexpected server error; logged)", slug="internal"
        ).response(request.url.path)


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is answered 413 (a problem)
    before any route sees it — by its Content-Length, or while it streams in. Paths under
    ``skip`` (the console, which has a limit of its own) pass untouched."""

    def __init__(self, app: Asgi, limit: int, skip: str | None = None) -> None:
        self.app = app
        self.limit = limit
        self.skip = skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        skipped = self.skip is not None and str(scope.get("path", "")).startswith(self.skip)
        if scope["type"] != "http" or skipped:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = ApiProblem(
            413,
            f"请求体超过 {self.limit} 字节上限 (the body exceeds {self.limit} bytes)",
            slug="too-large",
        )
        await problem.response(str(scope.get("path", "")))(scope, receive, send)
