"""The initial-PIN mark end to end (issue 17; docs/business-rules.md "PINs", 珠海: "医保账户
初始密码不能消费…持卡人在初次领卡后应及时修改初始密码"): a job on the simulated station
activates a card marked as holding the initial PIN; ``sscard card change-pin`` through
pcscd + vpcd clears the mark once the card answered 9000, a wrong current PIN leaves it, a
registry that cannot record is refused before the card is touched; ``registry show`` and
the API's card status (a real ``sscard serve``) say it — and no PIN reaches an output, an
answer, an audit event or the server's log. SQLite and PostgreSQL (``new_db``)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from personalize.api.clients import add_client
from personalize.policy import load_policy
from personalize.registry import Registry
from personalize.roles import ApiRole, Role
from personalize.trackvault import TrackVault
from simulator.center import submit_reissue_job
from simulator.factory import SAMPLE_HOLDER
from simulator.station import SimulatedStation
from sscard.profile import load_profile
from tests.api_serve import SERVER_OUTPUT, serve_api
from tests.audit_key import HSM_ENV
from tests.cli import run_sscard
from tests.clock import FAKETIME_ENV, pinned_clock
from tests.conftest import NewDatabase
from tests.integration.api_fixture import SUPERVISOR, open_registry
from tests.integration.crash_campaign import job_run_argv
from tests.integration.holder_reader import printed_card
from tests.operators import login

pytestmark = pytest.mark.pcsc
POLICY = load_policy("default")
PROFILE = load_profile("default")
INITIAL = POLICY.default_pin
NEW_PIN = "246813"


@dataclass
class Issued:
    db: str
    number: str  # the new card's 卡号
    reader: str  # where the new card sits, for the holder's commands


@pytest.fixture
def issued(tmp_path: Path, new_db: NewDatabase) -> Iterator[Issued]:
    """A reissue job run by ``sscard job run`` on the simulated station (clock pinned), its
    printed card taken from the output hopper and put in the holder's reader."""
    db = new_db("registry")
    with SimulatedStation(
        tmp_path / "station", PROFILE, POLICY.region_code, cards=2, registry=db
    ) as sim:
        registry = open_registry(db)
        vault = TrackVault.from_file(sim.track_key)
        job, old = submit_reissue_job(
            registry, PROFILE, vault, SAMPLE_HOLDER, photo_dir=sim.root, operator="op"
        )
        session = login(db, "op", Role.CARD_CENTER)
        run = subprocess.run(
            job_run_argv(job, sim.station_file),
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, **session, **FAKETIME_ENV},
        )
        assert run.returncode == 0, run.stderr
        lost = registry.card(old)
        new = next(c for c in registry.cards_of(lost.person_id) if c.id != lost.id)
        registry.close()
        with printed_card(sim) as reader:
            yield Issued(db, new.card_number, reader)


def sscard(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_sscard(
        *args, stdin=stdin, env={**os.environ, **FAKETIME_ENV} if env is None else env
    )


def change_pin(
    o: Issued, old: str, new: str, *, db: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return sscard(
        "card", "change-pin", "--reader", o.reader, "--db", db or o.db, "--json",
        stdin=f"{old}\n{new}\n{new}\n", env=env,
    )  # fmt: skip


def verify_pin(o: Issued, pin: str) -> bool:
    return sscard("card", "verify-pin", "--reader", o.reader, stdin=f"{pin}\n").returncode == 0


def mark(o: Issued) -> bool | None:
    registry = Registry(o.db, POLICY, clock=pinned_clock)
    try:
        return registry.initial_pin(registry.card(o.number))
    finally:
        registry.close()


def shown(o: Issued) -> dict[str, object]:
    show = sscard("registry", "show", o.number, "--db", o.db, "--json")
    assert show.returncode == 0, show.stderr
    data: dict[str, object] = json.loads(show.stdout)
    return data


def audit_details(o: Issued) -> list[tuple[str, str]]:
    registry = Registry(o.db, POLICY, clock=pinned_clock)
    try:
        rows = registry.db.execute("SELECT action, details FROM audit_events ORDER BY id")
        return [(r["action"], r["details"]) for r in rows]
    finally:
        registry.close()


def test_a_new_card_holds_the_initial_pin_until_the_holder_changes_it(issued: Issued) -> None:
    o = issued
    assert mark(o) is True
    data = shown(o)
    assert data["initial_pin"] is True and "医保账户不能消费" in str(data["initial_pin_name"])
    assert data["issued_on"] == "2026-11-25" and data["valid_until"] == "2036-11-25"
    text = sscard("registry", "show", o.number, "--db", o.db).stdout
    assert "初始密码 initial PIN: 初始密码未修改" in text and "有效期内" in text

    registry = open_registry(o.db)
    token = add_client(registry, "hospital-1", ApiRole.TERMINAL, by=SUPERVISOR)[1]
    registry.close()
    answers: list[str] = []
    with serve_api(o.db) as base:
        terminal = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

        def status() -> dict[str, object]:
            answer = terminal.get(f"/v1/cards/{o.number}/status")
            assert answer.status_code == 200, answer.text
            answers.append(answer.text)
            body: dict[str, object] = answer.json()
            return body

        before = status()
        assert before["initial_pin"] is True and before["refuse"] is False
        assert before["validity"] == "有效期内" and before["valid_until"] == "2036-11-25"

        wrong = change_pin(o, "999999", NEW_PIN)  # a wrong current PIN: the card says 63Cx
        assert wrong.returncode == 1 and "原 PIN 错误" in wrong.stderr
        assert json.loads(wrong.stdout) == {"changed": False, "tries_left": 2}
        assert mark(o) is True and status()["initial_pin"] is True

        changed = change_pin(o, INITIAL, NEW_PIN)
        assert changed.returncode == 0, changed.stderr
        assert json.loads(changed.stdout) == {"changed": True}
        assert verify_pin(o, NEW_PIN) and not verify_pin(o, INITIAL)
        assert mark(o) is False and status()["initial_pin"] is False
        assert shown(o)["initial_pin_name"] == "已修改初始密码 (initial PIN changed)"
        terminal.close()

    events = audit_details(o)
    marks = [json.loads(d) for a, d in events if a == "card.initial_pin"]
    assert [(m["from"], m["initial_pin"], m["via"]) for m in marks] == [
        (True, False, "card change-pin")
    ]
    assert list(marks[0]["rows"]) == ["card_pin_marks/1"]  # the mark's row, sealed
    outputs = [wrong.stdout, wrong.stderr, changed.stdout, changed.stderr, *answers]
    outputs += [d for _, d in events] + [SERVER_OUTPUT[base]]
    for pin in (INITIAL, NEW_PIN, "999999"):
        assert not [text for text in outputs if pin in text], f"PIN {pin} leaked"


def test_change_pin_refuses_a_registry_that_cannot_record_and_changes_nothing(
    issued: Issued, new_db: NewDatabase
) -> None:
    o = issued
    before = audit_details(o)
    no_key = {k: v for k, v in os.environ.items() if k not in HSM_ENV} | FAKETIME_ENV
    read_only = change_pin(o, INITIAL, NEW_PIN, env=no_key)
    assert read_only.returncode == 1 and "登记库只读" in read_only.stderr
    assert "未修改 PIN" in read_only.stderr

    other = new_db("other")  # a registry that does not know the card
    open_registry(other).close()
    unknown = change_pin(o, INITIAL, NEW_PIN, db=other)
    assert unknown.returncode == 1 and "不在登记库中" in unknown.stderr

    differ = sscard(
        "card", "change-pin", "--reader", o.reader, "--db", o.db,
        stdin=f"{INITIAL}\n{NEW_PIN}\n{NEW_PIN[::-1]}\n",
    )  # fmt: skip
    assert differ.returncode == 1 and "不一致" in differ.stderr

    assert verify_pin(o, INITIAL)  # the card still holds the initial PIN (and tries reset)
    assert mark(o) is True and audit_details(o) == before

    back = change_pin(o, INITIAL, INITIAL)  # "changed" to the initial PIN: still the initial PIN
    assert back.returncode == 0, back.stderr
    assert mark(o) is True
