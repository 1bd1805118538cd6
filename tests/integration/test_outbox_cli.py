"""``sscard outbox dispatch|list|retry`` as operators run them (docs/outbox.md), each a real
subprocess (clock pinned by faketime) against a registry on SQLite or PostgreSQL and a real
webhook receiver on 127.0.0.1 that fails, then recovers: the event given up on is listed as
failed, re-queued by a card-center operator (audited), then delivered with the rest, in
order, once; the long-running dispatcher delivers a change made while it runs and stops
cleanly on SIGTERM. No secret in any output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from personalize.policy import load_policy
from personalize.registry import Registry
from personalize.roles import Role
from simulator.factory import SAMPLE_HOLDER
from tests.audit_key import AUDIT_KEY, HSM_ENV
from tests.clock import faketime, pinned_clock
from tests.conftest import NewDatabase
from tests.operators import login
from tests.webhook_receiver import KAGUAN_SECRET, Receiver

POLICY = load_policy("default")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver(KAGUAN_SECRET).up()  # subprocess clocks: no freshness check here
    yield receiver
    receiver.down()


@pytest.fixture
def db(new_db: NewDatabase) -> str:
    """A registry with one card reported lost and un-reported: events 1 and 2."""
    location = new_db("outbox_cli")
    registry = Registry(location, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    number = registry.allocate_card_number()
    registry.enroll(SAMPLE_HOLDER, number, operator="op")
    registry.report_loss(number, operator="op", channel="phone")
    registry.unreport(number, operator="op", evidence="ID")
    registry.close()
    return location


def outbox_toml(tmp_path: Path, receiver: Receiver, max_attempts: int) -> Path:
    secret = tmp_path / "kaguan.secret"
    secret.write_text(KAGUAN_SECRET, encoding="utf-8")
    os.chmod(secret, 0o600)
    path = tmp_path / "outbox.toml"
    path.write_text(
        f'[[destination]]\nname = "kaguan"\nurl = "{receiver.url}"\n'
        f'secret_file = "{secret}"\n[destination.retry]\nmax_attempts = {max_attempts}\n',
        encoding="utf-8",
    )
    return path


def command(db: str, *args: str, at: str | None) -> list[str]:
    """``sscard outbox ARGS`` with its clock from ``at``; ``None``: the real clock."""
    clock = () if at is None else faketime(at)
    return [*clock, sys.executable, "-m", "personalize.cli", "outbox", *args, "--db", db]


def environment(session: dict[str, str] | None = None) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": str(Path.cwd()), **HSM_ENV, **(session or {})}


def sscard(
    db: str, *args: str, at: str = "2026-11-25 09:30:00", session: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(db, *args, at=at),
        capture_output=True,
        text=True,
        timeout=120,
        env=environment(session),
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    assert KAGUAN_SECRET not in result.stdout + result.stderr
    return result.stdout


def listed(db: str, status: str) -> list[tuple[int, str, str]]:
    out = json.loads(ok(sscard(db, "list", "--status", status, "--json")))
    return [(e["seq"], d["name"], d["state"]) for e in out["events"] for d in e["destinations"]]


def test_failed_then_listed_retried_and_delivered_in_order_once(
    db: str, tmp_path: Path, receiver: Receiver
) -> None:
    config = str(outbox_toml(tmp_path, receiver, max_attempts=1))
    assert listed(db, "pending") == [(1, None, "pending"), (2, None, "pending")]
    receiver.answer = 503
    out = ok(sscard(db, "dispatch", "--once", "--config", config))
    assert "事件 1 已放弃" in out and "sscard outbox retry 1" in out
    assert listed(db, "failed") == [(1, "kaguan", "failed")]
    assert listed(db, "pending") == [(2, "kaguan", "pending")]
    text = ok(sscard(db, "list"))
    assert "第 1 次失败：HTTP 503 Service Unavailable" in text and "card.frozen" in text

    refused = sscard(db, "retry", "1", at="2026-11-25 09:31:00")
    assert refused.returncode == 1 and refused.stderr.startswith("错误：未登录")
    counter = login(db, "clerk", Role.COUNTER)
    refused = sscard(db, "retry", "1", at="2026-11-25 09:31:00", session=counter)
    assert refused.returncode == 1 and "无权重发回盘事件" in refused.stderr
    center = login(db, "center1", Role.CARD_CENTER)
    out = ok(sscard(db, "retry", "1", "--json", at="2026-11-25 09:31:00", session=center))
    assert json.loads(out)["destinations"] == ["kaguan"]
    again = sscard(db, "retry", "1", at="2026-11-25 09:31:00", session=center)
    assert again.returncode == 1 and "未处于失败状态" in again.stderr

    receiver.answer = 200
    out = json.loads(
        ok(sscard(db, "dispatch", "--once", "--json", "--config", config, at="2026-11-25 09:32:00"))
    )
    assert [(p["delivered"], p["delivered_through"]) for p in out["destinations"]] == [(2, 2)]
    assert [e["seq"] for e in receiver.received] == [1, 2]
    assert set(receiver.deliveries.values()) == {1}
    assert receiver.refused == ["application error"]  # the one 503
    assert listed(db, "delivered") == [(1, "kaguan", "delivered"), (2, "kaguan", "delivered")]
    assert listed(db, "failed") == listed(db, "pending") == []

    registry = Registry(db, POLICY, clock=pinned_clock, create=False, audit_key=AUDIT_KEY)
    retries = registry.db.execute(
        "SELECT operator, subject FROM audit_events WHERE action = 'outbox.retry'"
    ).fetchall()
    assert [tuple(r) for r in retries] == [("center1", "outbox/1")]
    assert registry.verify_audit()[1] == []
    registry.close()


def test_a_wrong_outbox_toml_is_one_line_and_nothing_is_sent(
    db: str, tmp_path: Path, receiver: Receiver
) -> None:
    config = outbox_toml(tmp_path, receiver, max_attempts=1)
    os.chmod(tmp_path / "kaguan.secret", 0o644)
    result = sscard(db, "dispatch", "--once", "--config", str(config))
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"错误：回盘配置 {config} kaguan：密钥文件") and "权限过宽" in line
    assert receiver.tries == 0 and listed(db, "pending") == [
        (1, None, "pending"),
        (2, None, "pending"),
    ]


def test_the_running_dispatcher_delivers_a_new_change_and_stops_on_sigterm(
    db: str, tmp_path: Path, receiver: Receiver
) -> None:
    config = str(outbox_toml(tmp_path, receiver, max_attempts=0))
    # the real clock: libfaketime makes a timed wait between passes never end (it shifts
    # CLOCK_MONOTONIC, against which the kernel times the wait); nothing the dispatcher does
    # here depends on the date
    dispatcher = subprocess.Popen(
        command(db, "dispatch", "--config", config, "--poll", "0.2", at=None),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    try:
        wait_for(lambda: len(receiver.received) == 2, dispatcher)
        registry = Registry(db, POLICY, clock=pinned_clock, create=False, audit_key=AUDIT_KEY)
        number = registry.card_page()[0].card.card_number
        registry.formalize_loss(number, operator="op", evidence="ID")
        registry.close()
        wait_for(lambda: len(receiver.received) == 3, dispatcher)
    finally:
        dispatcher.send_signal(signal.SIGTERM)
        out, err = dispatcher.communicate(timeout=60)
    assert dispatcher.returncode == 0, err
    assert [(e["seq"], e["kind"]) for e in receiver.received] == [
        (1, "card.frozen"),
        (2, "card.unfrozen"),
        (3, "card.frozen"),
    ]
    assert out.count("已送达事件") == 3 and "回盘投递已停止" in out
    assert KAGUAN_SECRET not in out + err


def wait_for(done: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    """Until ``done()`` (a guard against a hang, not a timed assertion)."""
    deadline = time.monotonic() + 60
    while not done():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the dispatcher delivered nothing in 60 s"
        time.sleep(0.05)
