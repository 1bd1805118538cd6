"""The medical-account balance end to end (issue 17; docs/business-rules.md "The medical-account
balance", 莱西: "更换社保卡的,新卡激活以后,原卡将自动废止,医疗保险个人帐户金有余额的,自动转入
到本人社会保障卡的医疗保险个人帐户中"): a reissue request; the business system reports the old
card's balance through a real ``sscard serve``; ``sscard job run`` makes the new card on the
simulated station (pyscard → pcscd → vpcd) and its activation records the transfer with the
amount in the same transaction; ``registry show`` and the API show both cards' side, ``sscard
audit verify`` is clean and a hand-edited transfer row breaks it. The pending path (no report
before activation, completed by a late one) and a strict region's refusal (the job pauses at
activation until the report comes). Every bad report refused with nothing written. SQLite and
PostgreSQL (``new_db``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from personalize.api.clients import add_client
from personalize.policy import POLICY_DIR, load_policy
from personalize.roles import ApiRole, Role
from personalize.trackvault import TrackVault
from simulator.center import submit_reissue_job
from simulator.factory import SAMPLE_HOLDER
from simulator.station import SimulatedStation
from sscard.profile import load_profile
from tests.api_serve import serve_api
from tests.clock import FAKETIME_ENV
from tests.conftest import NewDatabase
from tests.integration.api_fixture import SUPERVISOR, card_number, holder, open_registry
from tests.integration.crash_campaign import job_run_argv
from tests.operators import login
from tests.stores import behind_its_back

pytestmark = pytest.mark.pcsc
POLICY = load_policy("default")
PROFILE = load_profile("default")
AS_OF = "2026-11-25T16:00:00+08:00"  # half an hour before the pinned clock (09:30 UTC)


@dataclass
class World:
    db: str
    station: SimulatedStation
    job: int
    old: str  # the lost card's number
    policy: Path
    session: dict[str, str]

    def run_job(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            job_run_argv(self.job, self.station.station_file),
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, **self.session, **FAKETIME_ENV},
        )

    def new_card(self) -> str | None:
        registry = open_registry(self.db)
        try:
            lost = registry.card(self.old)
            return next(
                (c.card_number for c in registry.cards_of(lost.person_id) if c.id != lost.id),
                None,
            )
        finally:
            registry.close()


def strict_policy(tmp_path: Path) -> Path:
    """The default policy, with the region requiring the balance before activation."""
    text = (POLICY_DIR / "default.toml").read_text(encoding="utf-8")
    path = tmp_path / "strict.toml"
    path.write_text(
        text.replace("required_before_activation = false", "required_before_activation = true"),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path, new_db: NewDatabase) -> Iterator[World]:
    """A holder whose lost card has a reissue job submitted, a simulated station to run it,
    under the default policy or (indirect parameter ``"strict"``) a strict one; one more
    holder with a valid card."""
    db = new_db("registry")
    strict = getattr(request, "param", "default") == "strict"
    policy = strict_policy(tmp_path) if strict else POLICY_DIR / "default.toml"
    with SimulatedStation(
        tmp_path / "station", PROFILE, POLICY.region_code, cards=2, registry=db, policy=str(policy)
    ) as sim:
        registry = open_registry(db)
        vault = TrackVault.from_file(sim.track_key)
        job, old = submit_reissue_job(
            registry, PROFILE, vault, SAMPLE_HOLDER, photo_dir=sim.root, operator="op"
        )
        registry.enroll(holder(3), card_number(3), operator="op")  # awaits no new card
        registry.close()
        yield World(db, sim, job, old, policy, login(db, "op", Role.CARD_CENTER))


@dataclass
class BusinessSystem:
    """The social-security business system as an API client (role counter)."""

    client: httpx.Client

    def report(self, card: str, amount: Any, **more: Any) -> httpx.Response:
        return self.client.post(
            f"/v1/cards/{card}/medical-balance",
            json={"amount": amount, "as_of": AS_OF, "reference": "YB-20261125-1", **more},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )


@pytest.fixture
def api(world: World) -> Iterator[BusinessSystem]:
    registry = open_registry(world.db)
    token = add_client(registry, "yibao", ApiRole.COUNTER, by=SUPERVISOR)[1]
    registry.close()
    with serve_api(world.db, extra=("--policy", str(world.policy))) as base:
        client = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        yield BusinessSystem(client)
        client.close()


def sscard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "personalize.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **FAKETIME_ENV},
    )


def shown(world: World, card: str) -> list[dict[str, Any]]:
    policy = str(world.policy)
    show = sscard("registry", "show", card, "--db", world.db, "--policy", policy, "--json")
    assert show.returncode == 0, show.stderr
    balance: list[dict[str, Any]] = json.loads(show.stdout)["medical_balance"]
    return balance


def status_of(world: World, card: str) -> str:
    registry = open_registry(world.db)
    try:
        return registry.card(card).status
    finally:
        registry.close()


def transfers(world: World) -> list[tuple[object, ...]]:
    registry = open_registry(world.db)
    try:
        return [tuple(r) for r in registry.db.execute("SELECT * FROM balance_transfers")]
    finally:
        registry.close()


def balance_events(world: World) -> list[tuple[str, str, dict[str, Any]]]:
    registry = open_registry(world.db)
    try:
        rows = registry.db.execute(
            "SELECT action, subject, details FROM audit_events WHERE action LIKE 'balance.%'"
            " ORDER BY id"
        )
        return [(r["action"], r["subject"], json.loads(r["details"])) for r in rows]
    finally:
        registry.close()


def test_the_reported_balance_moves_to_the_new_card_at_its_activation(
    world: World, api: BusinessSystem
) -> None:
    first = api.report(world.old, "100.00")
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "reported" and first.json()["amount"] == "100.00"
    second = api.report(world.old, "12345678.99", reference="YB-20261125-2")  # replaces it
    assert second.status_code == 200, second.text
    assert (second.json()["amount"], second.json()["amount_fen"]) == ("12345678.99", 1234567899)
    assert second.json()["as_of"] == AS_OF and second.json()["to_card"] is None
    (before,) = shown(world, world.old)
    assert before["status"] == "reported" and before["to_card"] is None

    run = world.run_job()
    assert run.returncode == 0, run.stderr
    new = world.new_card()
    assert new is not None
    for card in (world.old, new):  # both cards show the one transfer
        (moved,) = shown(world, card)
        assert (moved["status"], moved["amount"], moved["amount_fen"]) == (
            "transferred", "12345678.99", 1234567899
        )  # fmt: skip
        assert (moved["from_card"], moved["to_card"]) == (world.old, new)
    text = sscard("registry", "show", new, "--db", world.db).stdout
    line = f"医保个人账户余额 medical balance {world.old} → {new}: 12345678.99 元, 已转入新卡"
    assert line in text

    card_view = api.client.get(f"/v1/cards/{new}")
    assert card_view.status_code == 200, card_view.text
    assert card_view.json()["medical_balance"][0]["amount"] == "12345678.99"
    request_view = api.client.get("/v1/reissue-requests/1")
    assert request_view.json()["medical_balance"]["status"] == "transferred"

    actions = [(a, s, d["amount"]) for a, s, d in balance_events(world)]
    assert actions == [
        ("balance.report", world.old, "100.00"),
        ("balance.report", world.old, "12345678.99"),
        ("balance.transfer", world.old, "12345678.99"),
    ]
    verify = sscard("audit", "verify", "--db", world.db)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    behind_its_back(world.db, "UPDATE balance_transfers SET amount_fen = amount_fen + 100")
    broken = sscard("audit", "verify", "--db", world.db, "--full")
    assert broken.returncode == 1 and "balance_transfers/1" in broken.stdout, broken.stdout


def test_without_a_report_the_activation_leaves_the_transfer_pending(
    world: World, api: BusinessSystem
) -> None:
    run = world.run_job()
    assert run.returncode == 0, run.stderr
    new = world.new_card()
    assert new is not None
    (pending,) = shown(world, new)
    assert (pending["status"], pending["amount"]) == ("pending", None)
    assert "待报" in sscard("registry", "show", world.old, "--db", world.db).stdout
    late = api.report(world.old, "0.29")
    assert late.status_code == 200, late.text
    assert (late.json()["status"], late.json()["amount_fen"]) == ("transferred", 29)
    assert [a for a, _, _ in balance_events(world)] == ["balance.pending", "balance.transfer"]
    again = api.report(world.old, "0.30")  # the transfer is made: no more reports
    assert again.status_code == 409 and "没有待换发的新卡" in again.json()["detail"]
    assert sscard("audit", "verify", "--db", world.db).returncode == 0


@pytest.mark.parametrize("world", ["strict"], indirect=True)
def test_a_strict_region_refuses_activation_until_the_balance_is_reported(
    world: World, api: BusinessSystem
) -> None:
    run = world.run_job()  # refused: the card is made, its job pauses at activate
    assert run.returncode != 0 and "医保个人账户余额尚未由业务系统报送" in run.stderr
    new = world.new_card()
    assert new is not None and transfers(world) == []
    assert status_of(world, new) == "personalizing" and status_of(world, world.old) != "void"
    assert shown(world, world.old) == []
    assert api.report(world.old, "0.10").status_code == 200
    rerun = world.run_job()  # sscard job run resumes the paused job at its activation
    assert rerun.returncode == 0, rerun.stderr
    (moved,) = shown(world, world.old)
    assert (moved["status"], moved["amount_fen"], moved["to_card"]) == ("transferred", 10, new)
    assert status_of(world, new) == "active" and status_of(world, world.old) == "void"
    assert sscard("audit", "verify", "--db", world.db).returncode == 0


def test_bad_reports_are_refused_and_write_nothing(world: World, api: BusinessSystem) -> None:
    before = transfers(world)
    refusals: list[tuple[str, Any, dict[str, Any], int, str]] = [
        (world.old, "-1.00", {}, 422, "负数"),
        (world.old, "1.234", {}, 422, "两位小数"),
        (world.old, "十元", {}, 422, "十进制"),
        (world.old, "1e3", {}, 422, "十进制"),
        (world.old, "100000000.00", {}, 422, "上限"),
        (world.old, 0.1, {}, 422, "amount"),  # a JSON number: never a float
        (world.old, "1.00", {"as_of": "2026-11-26T09:00:00+08:00"}, 422, "晚于当前时间"),
        (world.old, "1.00", {"as_of": "2026-11-25T09:00:00"}, 422, "as_of"),  # no offset
        (world.old, "1.00", {"extra": 1}, 422, "extra"),
        (card_number(3), "1.00", {}, 409, "没有待换发的新卡"),  # a valid card awaiting nothing
        (card_number(9), "1.00", {}, 404, "不在登记库中"),
    ]
    for card, amount, more, status, says in refusals:
        answer = api.report(card, amount, **more)
        assert answer.status_code == status, (amount, more, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert says in answer.text, answer.text
    assert transfers(world) == before == []
    assert balance_events(world) == []
