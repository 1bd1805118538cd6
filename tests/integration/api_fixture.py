"""The API tests' world: a registry (SQLite or PostgreSQL, ``new_db``) with enrolled holders
and one registered client per role, and ``sscard serve`` on it (tests/api_serve.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from personalize.api.clients import add_client
from personalize.operators import Operator
from personalize.policy import load_policy
from personalize.registry import Registry
from personalize.roles import ApiRole, Role
from simulator.factory import SAMPLE_HOLDER
from sscard.identifiers import card_number_check, ssn_check
from sscard.records import HolderData
from tests.api_serve import serve_api
from tests.audit_key import AUDIT_KEY
from tests.clock import pinned_clock

POLICY = load_policy("default")
SUPERVISOR = Operator("sup0", Role.SUPERVISOR)
PERSONS = 4


def card_number(index: int) -> str:
    first8 = f"H{index + 100:07d}"
    return first8 + card_number_check(first8)


def holder(index: int) -> HolderData:
    first17 = f"11010519491231{2 * index:03d}"
    return replace(SAMPLE_HOLDER, ssn=first17 + ssn_check(first17))


def open_registry(db: str | Path) -> Registry:
    return Registry(db, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)


def prepare(db: str | Path, persons: int = PERSONS) -> dict[ApiRole, str]:
    """Enrol ``persons`` holders with a card each; one client per role; their tokens."""
    registry = open_registry(db)
    try:
        for i in range(persons):
            registry.enroll(holder(i), card_number(i), operator="setup")
        return {role: add_client(registry, f"{role}-1", role, by=SUPERVISOR)[1] for role in ApiRole}
    finally:
        registry.close()


@dataclass
class Api:
    base: str
    db: str | Path
    tokens: dict[ApiRole, str]
    clients: dict[ApiRole, httpx.Client] = field(default_factory=dict)

    def as_(self, role: ApiRole) -> httpx.Client:
        if role not in self.clients:
            self.clients[role] = httpx.Client(
                base_url=self.base,
                headers={"Authorization": f"Bearer {self.tokens[role]}"},
                timeout=60,
            )
        return self.clients[role]

    def post(
        self, role: ApiRole, path: str, body: Any, *, key: str | None = None
    ) -> httpx.Response:
        return self.as_(role).post(
            path, json=body, headers={"Idempotency-Key": key or uuid.uuid4().hex}
        )

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    def registry(self) -> Registry:
        return open_registry(self.db)


def api_world(base: str, db: str | Path, tokens: dict[ApiRole, str]) -> Iterator[Api]:
    api = Api(base, db, tokens)
    try:
        yield api
    finally:
        api.close()


def served_api(db: str | Path, persons: int = PERSONS) -> Iterator[Api]:
    """The world on ``db`` (``prepare``) with ``sscard serve`` on it: a fixture's
    ``yield from served_api(new_db("api"))``."""
    tokens = prepare(db, persons)
    with serve_api(db) as base:
        yield from api_world(base, db, tokens)
