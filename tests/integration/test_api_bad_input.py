"""Bad input to the API (issue 15, Deliver 6), through a real ``sscard serve`` on SQLite and
PostgreSQL: malformed JSON, wrong types, unknown fields, oversize bodies (declared and
streamed) and photos, invalid check characters of ID and card numbers, unknown routes and
methods, unknown and revoked clients — each an ``application/problem+json`` with a 4xx and
a Chinese title, none echoing what was sent, and nothing written. Also a job submitted
through the API, and its status."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import httpx
import pytest

from personalize.roles import ApiRole
from personalize.trackvault import TrackVault
from simulator.factory import sample_photo
from tests.api_serve import serve_api
from tests.conftest import NewDatabase
from tests.integration.api_fixture import Api, api_world, card_number, holder, prepare

COUNTER, CARD_CENTER = ApiRole.COUNTER, ApiRole.CARD_CENTER
STATE_TABLES = ("cards", "status_history", "reissue_requests", "jobs", "api_idempotency",
                "query_passwords")  # fmt: skip


@pytest.fixture
def api(new_db: NewDatabase, tmp_path: Path) -> Iterator[Api]:
    db = new_db("bad")
    tokens = prepare(db)
    key = tmp_path / "track.key"
    TrackVault.create(key)
    with serve_api(db, track_key=key) as base:
        yield from api_world(base, db, tokens)


def snapshot(api: Api) -> dict[str, list[tuple[object, ...]]]:
    registry = api.registry()
    try:
        return {
            t: [tuple(r) for r in registry.db.execute(f"SELECT * FROM {t} ORDER BY 1, 2")]
            for t in STATE_TABLES
        }
    finally:
        registry.close()


def assert_problem(answer: httpx.Response, status: int, *, secret: str | None = None) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == status and problem["type"].startswith("urn:sscard:problem:")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in problem["title"]), problem
    if secret is not None:
        assert secret not in answer.text


def raw_post(api: Api, path: str, content: bytes, **headers: str) -> httpx.Response:
    return api.as_(COUNTER).post(
        path,
        content=content,
        headers={"Idempotency-Key": "k", "Content-Type": "application/json", **headers},
    )


def test_bad_input_is_a_problem_and_writes_nothing(api: Api) -> None:
    before = snapshot(api)
    number = card_number(0)
    bad_ssn = holder(0).ssn[:17] + ("1" if holder(0).ssn[17] != "1" else "2")
    bad_card = number[:8] + ("1" if number[8] != "1" else "2")
    assert_problem(raw_post(api, "/v1/loss-reports", b'{"channel": "counter", '), 400)
    assert_problem(raw_post(api, "/v1/loss-reports", b"\xff\xfe not json"), 400)
    wrong_type = api.post(COUNTER, "/v1/loss-reports", {"channel": "counter", "card_number": 7})
    assert_problem(wrong_type, 422)
    assert wrong_type.json()["errors"][0]["loc"] == ["body", "card_number"]
    assert_problem(
        api.post(COUNTER, "/v1/loss-reports", {"channel": "fax", "card_number": number}), 422
    )
    extra = {"channel": "counter", "card_number": number, "extra": 1}
    assert_problem(api.post(COUNTER, "/v1/loss-reports", extra), 422)
    assert_problem(api.post(COUNTER, "/v1/loss-reports", [1, 2]), 422)
    invalid_id = api.post(COUNTER, "/v1/loss-reports", {"channel": "counter", "id_number": bad_ssn})
    assert_problem(invalid_id, 422)
    assert "校验位" in invalid_id.json()["detail"]
    invalid_card = api.post(
        COUNTER, "/v1/loss-reports", {"channel": "counter", "card_number": bad_card}
    )
    assert_problem(invalid_card, 422)
    assert "校验位" in invalid_card.json()["detail"]
    assert_problem(api.as_(COUNTER).get(f"/v1/cards/{bad_card}/status"), 422)
    assert_problem(api.as_(COUNTER).get("/v1/cards/h0000001x/status"), 422)
    assert_problem(api.as_(COUNTER).get(f"/v1/cards/{card_number(899)}/status"), 404)
    assert_problem(api.as_(COUNTER).get("/v1/blacklist", params={"since": -1}), 422)
    assert_problem(api.as_(COUNTER).get("/v1/nothing-here"), 404)
    assert_problem(api.as_(COUNTER).delete(f"/v1/cards/{number}/status"), 405)
    # a 查询密码 too short is refused without being echoed
    short = api.post(COUNTER, f"/v1/cards/{number}/query-password", {"password": "12345"})
    assert_problem(short, 422, secret="12345")
    assert snapshot(api) == before


def test_oversize_bodies_are_413(api: Api) -> None:
    before = snapshot(api)
    big = b'{"channel": "counter", "card_number": "' + b"A" * 70_000 + b'"}'
    assert_problem(raw_post(api, "/v1/loss-reports", big), 413)

    def stream() -> Iterator[bytes]:  # no Content-Length: chunked, counted as it arrives
        yield b'{"channel": "counter", "card_number": "'
        for _ in range(20):
            yield b"A" * 8192
        yield b'"}'

    answer = api.as_(COUNTER).post(
        "/v1/loss-reports", content=stream(),
        headers={"Idempotency-Key": "k", "Content-Type": "application/json"},
    )  # fmt: skip
    assert_problem(answer, 413)
    assert snapshot(api) == before


def _reissue_pending(api: Api, index: int) -> str:
    number = card_number(index)
    assert (
        api.post(
            COUNTER, "/v1/loss-reports", {"channel": "counter", "card_number": number}
        ).status_code
        == 201
    )
    assert (
        api.post(COUNTER, f"/v1/cards/{number}/formal-loss", {"evidence": "身份证原件"}).status_code
        == 200
    )
    assert api.post(COUNTER, "/v1/reissue-requests", {"card_number": number}).status_code == 201
    return number  # fmt: skip


def _job(index: int, photo: bytes) -> dict[str, object]:
    person = {k: str(v) for k, v in asdict(holder(index)).items() if k != "extra"}
    return {
        "old_card_number": card_number(index),
        "holder": person,
        "photo": "base64:" + base64.b64encode(photo).decode(),
        "tracks": {"2": "6222021234567890123=3011120"},
    }


def test_a_job_is_submitted_and_followed_and_a_big_photo_refused(api: Api) -> None:
    _reissue_pending(api, 1)
    before = snapshot(api)
    too_big = api.post(CARD_CENTER, "/v1/jobs", _job(1, sample_photo(size=5000)))
    assert_problem(too_big, 422)
    assert "照片" in too_big.json()["detail"]
    not_jpeg = api.post(CARD_CENTER, "/v1/jobs", _job(1, b"GIF89a" + bytes(200)))
    assert_problem(not_jpeg, 422)
    assert_problem(
        api.post(CARD_CENTER, "/v1/jobs", {**_job(1, sample_photo()), "photo": "photo.jpg"}), 422
    )
    assert snapshot(api) == before

    answer = api.post(CARD_CENTER, "/v1/jobs", _job(1, sample_photo()))
    assert answer.status_code == 201, answer.text
    job = answer.json()
    assert job["status"] == "queued" and job["old_card_number"] == card_number(1)
    assert "6222021234567890123" not in answer.text  # the tracks are sealed, never shown
    shown = api.as_(CARD_CENTER).get(f"/v1/jobs/{job['job']}")
    assert shown.status_code == 200 and shown.json()["status"] == "queued"
    assert shown.json()["holder"] == "张*"
    assert_problem(api.as_(CARD_CENTER).get("/v1/jobs/999"), 404)
