"""Who may call what, and how every call is run and audited (docs/api.md "Clients and
roles", "Idempotency").

* ``ROUTE_ROLES`` is the one table: each route (method, path) → the client roles allowed;
  a route missing from it is refused to everyone (and a test walks every route of the app
  against it). Health and readiness are public.
* ``caller`` (a dependency of every route) reads ``Authorization: Bearer <token>``: an
  unknown or revoked token is 401, a role the table does not list is 403 (audited).
* ``Call`` runs a route's work on this thread's registry: a read, then its audit event
  ``api.read``; a POST in one write transaction with its Idempotency-Key — a replay answers
  the stored first response, the same key with another body is refused (422), and the
  response is kept in the transaction of its effect, with the audit event ``api.call``. A
  refusal is answered as a problem and audited ``api.refused``. Every event names the
  client (``api:NAME``, its id in the details).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from fastapi.responses import Response
from fastapi.security import HTTPBearer

from personalize import api_store
from personalize.api.clients import client_of_token
from personalize.api.problems import ApiProblem, problem_of
from personalize.api_store import ApiClient, StoredResponse
from personalize.registry import Registry, RegistryError, _iso
from personalize.registry_options import open_registry
from personalize.roles import ApiRole
from personalize.trackvault import TrackVault

T = TypeVar("T")
EVERYONE = frozenset(ApiRole)
PUBLIC: frozenset[ApiRole] = frozenset()  # no token needed

# The one permission table of the API (issue 15, Deliver 3): channel clients report losses
# and ask a card's status; terminals (hospitals, pharmacies) ask status and the blacklist;
# the counter's business system does the counter's business; the card center submits and
# follows jobs; the auditor reads.
ROUTE_ROLES: dict[tuple[str, str], frozenset[ApiRole]] = {
    ("GET", "/v1/health"): PUBLIC,
    ("GET", "/v1/ready"): PUBLIC,
    ("POST", "/v1/loss-reports"): frozenset({ApiRole.CHANNEL, ApiRole.COUNTER}),
    ("GET", "/v1/cards/{card_number}/status"): EVERYONE,
    ("GET", "/v1/blacklist"): frozenset(
        {ApiRole.TERMINAL, ApiRole.COUNTER, ApiRole.CARD_CENTER, ApiRole.AUDITOR}
    ),
    ("GET", "/v1/cards/{card_number}"): frozenset(
        {ApiRole.COUNTER, ApiRole.CARD_CENTER, ApiRole.AUDITOR}
    ),
    ("GET", "/v1/persons/{id_number}"): frozenset({ApiRole.COUNTER, ApiRole.AUDITOR}),
    ("POST", "/v1/cards/{card_number}/formal-loss"): frozenset({ApiRole.COUNTER}),
    ("POST", "/v1/cards/{card_number}/unreport"): frozenset({ApiRole.COUNTER}),
    ("POST", "/v1/cards/{card_number}/query-password"): frozenset({ApiRole.COUNTER}),
    # the social-security business system reports the old card's medical-account balance
    ("POST", "/v1/cards/{card_number}/medical-balance"): frozenset({ApiRole.COUNTER}),
    ("POST", "/v1/reissue-requests"): frozenset({ApiRole.COUNTER}),
    ("POST", "/v1/change-requests"): frozenset({ApiRole.COUNTER}),
    ("GET", "/v1/reissue-requests/{request_id}"): frozenset(
        {ApiRole.COUNTER, ApiRole.CARD_CENTER, ApiRole.AUDITOR}
    ),
    ("GET", "/v1/reissue-requests/{request_id}/certificate"): frozenset({ApiRole.COUNTER}),
    ("POST", "/v1/reissue-requests/{request_id}/fee-payment"): frozenset({ApiRole.COUNTER}),
    ("GET", "/v1/fee-reports/{day}"): frozenset(
        {ApiRole.COUNTER, ApiRole.CARD_CENTER, ApiRole.AUDITOR}
    ),
    ("POST", "/v1/jobs"): frozenset({ApiRole.CARD_CENTER}),
    ("GET", "/v1/jobs/{job_id}"): frozenset(
        {ApiRole.CARD_CENTER, ApiRole.COUNTER, ApiRole.AUDITOR}
    ),
}

# Roles that may see a holder's name and ID number in clear (``?reveal=true``).
REVEALING = frozenset({ApiRole.COUNTER})


@dataclass
class ApiState:
    """What ``sscard serve`` was started with, and a registry per thread: a SQLite
    connection belongs to its thread, so each worker thread opens its own (with the audit
    key of ``--hsm``)."""

    args: argparse.Namespace
    vault: TrackVault | None
    local: threading.local = field(default_factory=threading.local)
    writer: threading.Lock = field(default_factory=threading.Lock)

    def registry(self) -> Registry:
        registry: Registry | None = getattr(self.local, "registry", None)
        if registry is None:
            registry = open_registry(self.args)
            self.local.registry = registry
        return registry

    @contextmanager
    def transaction(self) -> Iterator[Registry]:
        """This thread's registry in a write transaction, once this process's other
        writers are done: the threads queue at a lock instead of polling the database's
        (SQLite's busy handler sleeps up to 100 ms between tries: ``bench/api_load.py``
        measured p99 at 0.3–0.5 s without the queue); other processes still take turns at
        the database's lock."""
        registry = self.registry()
        with self.writer, registry.transaction():
            yield registry


def state_of(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


# documents the bearer scheme of the routers that need a token (``caller`` checks it)
bearer = HTTPBearer(
    auto_error=False,
    description="接口客户端的令牌：sscard api-client add 时显示一次 (the client's token)",
)


def _route(request: Request) -> tuple[str, str]:
    route = request.scope.get("route")
    return request.method, str(getattr(route, "path", request.url.path))


def caller(request: Request) -> ApiClient | None:
    """The client calling, allowed this route by ``ROUTE_ROLES`` (None on a public route).
    The token is read here for every route (an application-wide dependency); the routers
    that need one declare ``bearer`` so that /openapi.json says so."""
    method, path = _route(request)
    roles = ROUTE_ROLES.get((method, path))
    if roles is PUBLIC:
        return None
    challenge = {"WWW-Authenticate": "Bearer"}
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    credentials = token.strip() if scheme.lower() == "bearer" and token.strip() else None
    if credentials is None:
        raise ApiProblem(
            401,
            "缺少令牌：请用 Authorization: Bearer <token> (no bearer token)",
            slug="unauthenticated",
            headers=challenge,
        )
    registry = state_of(request).registry()
    client = client_of_token(registry, credentials)
    if client is None or client.revoked_at is not None:
        raise ApiProblem(
            401,
            "令牌无效或已吊销 (unknown or revoked token)",
            slug="unauthenticated",
            headers=challenge,
        )
    if roles is None or client.role not in roles:
        refusal = ApiProblem(
            403,
            f"客户端 {client.name}（{client.role.label}）无权调用 {method} {path} "
            f"(the role {client.role} may not call this)",
            slug="forbidden",
        )
        Call(client, state_of(request), method, request.url.path).audit_refusal(refusal)
        raise refusal
    return client


def authenticated(client: Annotated[ApiClient | None, Depends(caller)]) -> ApiClient:
    """The calling client of a route that is not public."""
    assert client is not None
    return client


IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="幂等键：同一客户端的同一键只办理一次，重放返回第一次的响应 "
        "(a replay answers the first response; another body with it is refused)",
    ),
]


def request_digest(method: str, path: str, payload: Any) -> str:
    """What a POST asked for: method, path and the body, canonical JSON."""
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{method} {path}\n{body}".encode()).hexdigest()


@dataclass
class Call:
    """One call of one client: runs its work on this thread's registry and audits it."""

    client: ApiClient
    state: ApiState
    method: str
    path: str

    @property
    def registry(self) -> Registry:
        return self.state.registry()

    @property
    def operator(self) -> str:
        return self.client.operator

    def _details(self, **more: Any) -> dict[str, Any]:
        return {
            "client": self.client.id,
            "role": str(self.client.role),
            "method": self.method,
            **more,
        }

    def audit_refusal(self, problem: ApiProblem) -> None:
        """The refusal as an audit event of its own (best effort: a registry too busy to
        record it still gets its answer)."""
        try:
            with self.state.transaction() as registry:
                registry.audit(
                    self.operator,
                    "api.refused",
                    self.path,
                    self._details(status=problem.status, reason=problem.detail),
                )
        except RegistryError:
            pass

    def refused(self, exc: Exception) -> ApiProblem:
        problem = problem_of(exc)
        self.audit_refusal(problem)
        return problem

    def read(self, work: Callable[[Registry], T]) -> T:
        """A read, then its audit event (its own write transaction)."""
        try:
            result = work(self.registry)
            with self.state.transaction() as registry:
                registry.audit(self.operator, "api.read", self.path, self._details())
        except Exception as exc:
            raise self.refused(exc) from None
        return result

    def write(
        self,
        key: str,
        payload: Any,
        work: Callable[[Registry], tuple[int, dict[str, Any]]],
    ) -> Response:
        """A POST: in one write transaction, the stored response of ``key`` replayed, or
        ``work`` (the workflow's change) done and its response kept with the audit event."""
        digest = request_digest(self.method, self.path, payload)
        try:
            with self.state.transaction() as registry:
                db = registry.db
                stored = api_store.stored_response(db, self.client.id, key)
                if stored is not None:
                    if stored.request_hash != digest:
                        raise ApiProblem(
                            422,
                            "该幂等键已用于另一个请求 (the Idempotency-Key was used for another "
                            "request)",
                            slug="idempotency-key-reused",
                        )
                    return Response(
                        stored.body,
                        status_code=stored.status,
                        media_type="application/json",
                        headers={"Idempotent-Replayed": "true"},
                    )
                status, body = work(registry)
                text = json.dumps(body, ensure_ascii=False)  # the replay's bytes too
                at = _iso(registry.clock())
                api_store.keep_response(
                    db, self.client.id, key, StoredResponse(digest, status, text), at=at
                )
                registry.audit(
                    self.operator, "api.call", self.path, self._details(status=status, key=key)
                )
        except Exception as exc:
            raise self.refused(exc) from None
        return Response(text, status_code=status, media_type="application/json")


def call(request: Request, client: Annotated[ApiClient, Depends(authenticated)]) -> Call:
    """The route's ``Call`` (a dependency)."""
    return Call(client, state_of(request), request.method, request.url.path)


CallOf = Annotated[Call, Depends(call)]
