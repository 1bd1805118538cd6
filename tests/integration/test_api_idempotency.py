"""Idempotency of the API's POSTs (issue 15, Deliver 4), on SQLite and PostgreSQL through a
real ``sscard serve``: a replay answers the first response and changes nothing; the same key
with another body is refused; a missing key is refused; fifty concurrent loss reports of one
card make exactly one transition."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from personalize.roles import ApiRole
from tests.conftest import NewDatabase
from tests.integration.api_fixture import Api, card_number, served_api

COUNTER = ApiRole.COUNTER


@pytest.fixture
def api(new_db: NewDatabase) -> Iterator[Api]:
    yield from served_api(new_db("idem"))


def transitions(api: Api, number: str) -> list[str]:
    registry = api.registry()
    try:
        return [h.to_status for h in registry.history(registry.card(number).id)]
    finally:
        registry.close()


def test_a_replay_answers_the_first_response(api: Api) -> None:
    number = card_number(0)
    body = {"channel": "counter", "card_number": number}
    first = api.post(COUNTER, "/v1/loss-reports", body, key="k-1")
    assert first.status_code == 201
    again = api.post(COUNTER, "/v1/loss-reports", body, key="k-1")
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert transitions(api, number) == ["provisional_loss"]
    # a new key for the same report: the card is no longer active, refused by the rules
    other = api.post(COUNTER, "/v1/loss-reports", body, key="k-2")
    assert other.status_code == 409 and other.json()["title"] == "与当前状态冲突"


def test_the_same_key_with_another_body_is_refused(api: Api) -> None:
    api.post(COUNTER, "/v1/loss-reports", {"channel": "counter", "card_number": card_number(0)},
             key="k-1")  # fmt: skip
    reused = api.post(
        COUNTER, "/v1/loss-reports", {"channel": "counter", "card_number": card_number(1)},
        key="k-1",
    )  # fmt: skip
    assert reused.status_code == 422
    assert reused.headers["content-type"] == "application/problem+json"
    assert reused.json()["type"] == "urn:sscard:problem:idempotency-key-reused"
    assert transitions(api, card_number(1)) == []


def test_a_post_without_a_key_is_refused(api: Api) -> None:
    answer = api.as_(COUNTER).post(
        "/v1/loss-reports", json={"channel": "counter", "card_number": card_number(0)}
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert transitions(api, card_number(0)) == []


def _report(api: Api, key: str) -> httpx.Response:
    with httpx.Client(base_url=api.base, timeout=120) as client:
        return client.post(
            "/v1/loss-reports",
            json={"channel": "counter", "card_number": card_number(0)},
            headers={"Authorization": f"Bearer {api.tokens[COUNTER]}", "Idempotency-Key": key},
        )


def test_fifty_concurrent_reports_make_one_transition(api: Api) -> None:
    keys = [uuid.uuid4().hex for _ in range(50)]
    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(lambda key: _report(api, key), keys))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [409] * 49, codes
    assert transitions(api, card_number(0)) == ["provisional_loss"]
    registry = api.registry()
    try:  # fifty writers took turns: the audit chain and its checkpoints are whole
        assert registry.verify_audit()[1] == []
    finally:
        registry.close()


def test_fifty_concurrent_replays_of_one_key_make_one_transition(api: Api) -> None:
    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(lambda _: _report(api, "same-key"), range(50)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.text for a in answers}) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 49
    assert transitions(api, card_number(0)) == ["provisional_loss"]
