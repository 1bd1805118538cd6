"""The API's registered clients (docs/api.md "Clients and roles"): ``sscard api-client
add|list|revoke``, and who a bearer token is.

A client's token is 32 random bytes (URL-safe base64), shown once when it is added; the
registry keeps only its SHA-256 — a token is a high-entropy secret, not a password, so one
fast hash suffices (RFC 6750 bearer tokens; the operators' session tokens are kept the
same way, ``personalize.operators``). Adding and revoking are audit events of the operator
who did it; a revoked client is refused from its next call on.
"""

from __future__ import annotations

import hashlib
import secrets

from personalize import api_store
from personalize.api_store import ApiClient
from personalize.operators import Operator, OperatorError, valid_name
from personalize.registry import Registry, _iso
from personalize.roles import ApiRole, allowed


class ClientError(OperatorError):
    """A client name taken or unknown, or an operator not allowed to manage clients."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_client(
    registry: Registry, name: str, role: ApiRole, *, by: Operator
) -> tuple[ApiClient, str]:
    """A new client and its token (to be shown once, never stored)."""
    if not allowed(by.role, "api_client.add"):
        raise ClientError(f"{by.name} 无权新增接口客户端 (may not add API clients)")
    name = valid_name(name)
    token = secrets.token_urlsafe(32)
    with registry.transaction() as db:
        if api_store.client_named(db, name) is not None:
            raise ClientError(f"接口客户端 {name} 已存在 (the API client exists)")
        client = api_store.insert_client(
            db, name, role, token_hash(token), at=_iso(registry.clock()), by=by.name
        )
        registry.audit(by.name, "api_client.add", name, {"client": client.id, "role": str(role)})
    return client, token


def revoke_client(registry: Registry, name: str, *, by: Operator) -> ApiClient:
    """The client's token stops working at once (its next call is refused, 401)."""
    if not allowed(by.role, "api_client.revoke"):
        raise ClientError(f"{by.name} 无权吊销接口客户端 (may not revoke API clients)")
    with registry.transaction() as db:
        client = api_store.client_named(db, valid_name(name))
        if client is None:
            raise ClientError(f"没有接口客户端 {name} (no such API client)")
        if client.revoked_at is not None:
            raise ClientError(f"接口客户端 {name} 已吊销 (the API client is already revoked)")
        api_store.mark_revoked(db, client.id, at=_iso(registry.clock()))
        registry.audit(by.name, "api_client.revoke", name, {"client": client.id})
        revoked = api_store.client_named(db, client.name)
    assert revoked is not None
    return revoked


def client_of_token(registry: Registry, token: str) -> ApiClient | None:
    """The client whose token this is, revoked or not; None for a token nobody holds."""
    return api_store.client_by_token_hash(registry.db, token_hash(token))
