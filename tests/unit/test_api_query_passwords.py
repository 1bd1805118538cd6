"""The online channel's 查询密码 resists guessing (issue 15, Deliver 3; docs/api.md "The
online channel"), on SQLite and PostgreSQL: a slow hash, wrong attempts limited per person
and per client, the lockout audited, an unknown person answered as a wrong password."""

from __future__ import annotations

import pytest

from personalize import api_store
from personalize.api import query_passwords
from personalize.api.clients import add_client
from personalize.api.problems import ApiProblem
from personalize.api.query_passwords import check_query_password, hashed, set_query_password
from personalize.registry import Registry
from personalize.roles import ApiRole
from tests.conftest import NewDatabase
from tests.integration.api_fixture import SUPERVISOR, card_number, holder, open_registry

RIGHT = "862431"


@pytest.fixture
def registry(new_db: NewDatabase, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setattr(query_passwords, "PERSON_LIMIT", 3)
    monkeypatch.setattr(query_passwords, "CLIENT_LIMIT", 5)
    registry = open_registry(new_db("qp"))
    for i in range(2):
        registry.enroll(holder(i), card_number(i), operator="setup")
    with registry.transaction():
        set_query_password(registry, person(registry, 0), hashed(RIGHT), by="api:counter-1")
    return registry


def person(registry: Registry, index: int) -> int:
    found = registry.person_by_ssn(holder(index).ssn)
    assert found is not None
    return found.id


def attempt(registry: Registry, client: api_store.ApiClient, pid: int | None, pw: str) -> int:
    """The answer's status: 200 for a right password, else the problem's."""
    try:
        check_query_password(registry, client, pid, pw)
    except ApiProblem as problem:
        return problem.status
    return 200


def lockouts(registry: Registry) -> list[str]:
    rows = registry.db.execute("SELECT details FROM audit_events WHERE action = 'api.lockout'")
    return [r["details"] for r in rows]


def test_the_password_is_kept_as_a_slow_hash(registry: Registry) -> None:
    stored = api_store.query_password_hash(registry.db, person(registry, 0))
    assert stored is not None and stored.startswith("scrypt$131072$8$1$")
    assert RIGHT not in stored
    with pytest.raises(Exception, match="至少 6"):
        hashed("12345")


def test_wrong_attempts_lock_the_card_and_the_lockout_is_audited(registry: Registry) -> None:
    web = add_client(registry, "web", ApiRole.CHANNEL, by=SUPERVISOR)[0]
    kiosk = add_client(registry, "kiosk", ApiRole.CHANNEL, by=SUPERVISOR)[0]
    pid = person(registry, 0)
    assert attempt(registry, web, pid, "000000") == 403
    assert attempt(registry, web, pid, RIGHT) == 200  # a right one starts the count again
    assert [attempt(registry, web, pid, "000000") for _ in range(3)] == [403] * 3
    assert len(lockouts(registry)) == 1 and '"scope": "card"' in lockouts(registry)[0]
    assert attempt(registry, web, pid, RIGHT) == 429  # locked: not even checked
    assert attempt(registry, kiosk, pid, RIGHT) == 429  # whichever client asks
    assert attempt(registry, kiosk, person(registry, 1), RIGHT) == 403  # another card is not


def test_a_client_guessing_many_cards_is_locked_out(registry: Registry) -> None:
    web = add_client(registry, "web", ApiRole.CHANNEL, by=SUPERVISOR)[0]
    other = add_client(registry, "other", ApiRole.CHANNEL, by=SUPERVISOR)[0]
    # unknown persons: the same answer as a wrong password, and counted for the client
    assert [attempt(registry, web, None, "123456") for _ in range(3)] == [403] * 3
    assert [attempt(registry, web, person(registry, 1), "123456") for _ in range(2)] == [403] * 2
    assert attempt(registry, web, person(registry, 0), RIGHT) == 429
    assert any('"scope": "client"' in d for d in lockouts(registry))
    assert attempt(registry, other, person(registry, 0), RIGHT) == 200
