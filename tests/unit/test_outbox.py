"""回盘 done right (issue 15 Deliver 5; docs/outbox.md), on a real SQLite file and a real
PostgreSQL server: each activation, void, freeze and unfreeze writes its outbox event in the
transaction of the change; the dispatcher delivers them over real HTTP to a receiver on
127.0.0.1 that checks the HMAC with its own code — in order, once per event id, through a
receiver down for an hour (an injected clock, no sleeping), one destination independent of
the other, giving up after the policy's attempts until an operator re-queues."""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from personalize.outbox_dispatch import dispatch_once, run_dispatcher
from personalize.outbox_store import DeliveryState, OutboxEvent
from personalize.policy import load_policy
from personalize.registry import ACTIVATION_EVIDENCE, Registry, RegistryError
from personalize.webhooks import Attempt, RetryPolicy, Webhook, post
from simulator.factory import SAMPLE_HOLDER
from tests.audit_key import AUDIT_KEY
from tests.clock import PINNED, MovingClock
from tests.conftest import NewDatabase
from tests.stores import inserts_fail, step_details
from tests.webhook_receiver import BANK_SECRET, KAGUAN_SECRET, Receiver, self_signed_tls

POLICY = load_policy("default")


@pytest.fixture
def registry(new_db: NewDatabase, clock: MovingClock) -> Iterator[Registry]:
    registry = Registry(new_db("outbox"), POLICY, clock=clock, audit_key=AUDIT_KEY)
    yield registry
    registry.close()


@pytest.fixture
def kaguan(clock: MovingClock) -> Iterator[Receiver]:
    receiver = Receiver(KAGUAN_SECRET, now=clock.unix).up()
    yield receiver
    receiver.down()


@pytest.fixture
def bank(clock: MovingClock) -> Iterator[Receiver]:
    receiver = Receiver(BANK_SECRET, now=clock.unix).up()
    yield receiver
    receiver.down()


def webhook(name: str, receiver: Receiver, secret: str, **retry: float) -> Webhook:
    return Webhook(name, receiver.url, secret.encode(), RetryPolicy(**retry), timeout_seconds=5)


def events(registry: Registry) -> list[OutboxEvent]:
    return registry.outbox.events_after(0, limit=1000)


def enrolled(registry: Registry) -> str:
    number = registry.allocate_card_number()
    registry.enroll(SAMPLE_HOLDER, number, operator="op")
    return number


def activate_replacement(registry: Registry, number: str) -> str:
    """The card's reissue made and activated (old card void): the new card's number."""
    registry.formalize_loss(number, operator="op", evidence="ID")
    request = registry.request_reissue(number, operator="op")
    old = registry.card(number)
    with registry.transaction() as db:
        job = db.insert(
            "INSERT INTO jobs (request_id, person_id, old_card_id, holder, status, operator,"
            " created_at, updated_at, sn, fence) VALUES (?, ?, ?, '{}', 'running', 'op', 'now',"
            " 'now', 'AA01', 1)",
            (request.id, old.person_id, old.id),
        )
        db.execute("INSERT INTO job_photos (job_id, photo) VALUES (?, ?)", (job, b"\x00"))
        db.execute("UPDATE reissue_requests SET status = 'in_job', job_id = ?", (job,))
    new = registry.start_card(job, operator="op")
    with registry.transaction() as db:
        db.execute("UPDATE cards SET sn = 'AA01' WHERE id = ?", (new.id,))
        for step in ("feed", *ACTIVATION_EVIDENCE):
            db.execute(
                "INSERT INTO job_steps (job_id, step, result, sn, at, details, fence)"
                " VALUES (?, ?, 'ok', 'AA01', 'now', ?, 1)",
                (job, step, step_details(step)),
            )
    registry.activate(new.id, operator="op", job_id=job, fence=1)
    return new.card_number


# ------------------------------------------------------------------ the same transaction


def test_every_activation_void_freeze_and_unfreeze_writes_one_event(
    registry: Registry, clock: MovingClock
) -> None:
    number = enrolled(registry)
    assert events(registry) == []  # enrolling an existing card tells nobody anything new
    registry.report_loss(number, operator="op", channel="phone")
    registry.unreport(number, operator="op", evidence="ID")
    registry.report_loss(number, operator="op")
    clock.now += timedelta(days=10)  # the 预挂失 lapses: the freeze ends by itself
    registry.lapse_expired()
    new_number = activate_replacement(registry, number)
    got = [(e.seq, e.kind, e.card_number, e.status) for e in events(registry)]
    assert got == [
        (1, "card.frozen", number, "provisional_loss"),
        (2, "card.unfrozen", number, "active"),
        (3, "card.frozen", number, "provisional_loss"),
        (4, "card.unfrozen", number, "active"),
        (5, "card.frozen", number, "formal_loss"),
        (6, "card.voided", number, "void"),
        (7, "card.activated", new_number, "active"),
    ]
    body = json.loads(events(registry)[6].body)
    assert body == {
        "id": events(registry)[6].event_id,
        "seq": 7,
        "kind": "card.activated",
        "card_number": new_number,
        "status": "active",
        "previous_status": "personalizing",
        "region": POLICY.region_code,
        "sn": "AA01",
        "card_id": None,
        "at": clock.now.isoformat(timespec="seconds"),
    }
    assert len({e.event_id for e in events(registry)}) == 7
    # no personal data beyond the card's numbers
    text = " ".join(e.body for e in events(registry))
    assert SAMPLE_HOLDER.ssn not in text and SAMPLE_HOLDER.name not in text


def test_a_failed_state_change_leaves_no_event_and_a_failed_event_no_change(
    registry: Registry,
) -> None:
    number = enrolled(registry)
    with (
        inserts_fail(registry.db, "status_history", "disk full"),
        pytest.raises(RegistryError, match="disk full"),
    ):
        registry.report_loss(number, operator="op")
    assert events(registry) == []
    with (
        inserts_fail(registry.db, "outbox_events", "outbox disk full"),
        pytest.raises(RegistryError, match="outbox disk full"),
    ):
        registry.report_loss(number, operator="op")
    assert registry.card(number).status == "active"
    assert registry.history(registry.card(number).id) == []
    assert events(registry) == []
    registry.report_loss(number, operator="op")
    assert [e.kind for e in events(registry)] == ["card.frozen"]
    # a refused transition (the table says no) writes nothing either
    with pytest.raises(RegistryError):
        registry.report_loss(number, operator="op")
    assert len(events(registry)) == 1


# ------------------------------------------------------------------ delivery


def test_a_receiver_down_for_an_hour_gets_every_event_in_order_once(
    registry: Registry, clock: MovingClock, kaguan: Receiver
) -> None:
    hook = webhook("kaguan", kaguan, KAGUAN_SECRET, first_seconds=1, max_seconds=300)
    tries: list[datetime] = []

    def counted(w: Webhook, event: OutboxEvent, now: datetime) -> Attempt:
        tries.append(now)
        return post(w, event, now)

    number = enrolled(registry)
    registry.report_loss(number, operator="op")
    kaguan.down()
    start = clock.now
    for minute in range(61):  # a pass a minute for an hour; a change now and then
        clock.now = start + timedelta(minutes=minute)
        if minute in (10, 20, 30):
            registry.unreport(number, operator="op", evidence="ID")
            registry.report_loss(number, operator="op")
        progress = dispatch_once(registry, [hook], send=counted)
        assert progress[0].delivered == 0
    assert kaguan.tries == 0
    # backoff: each wait at least the policy's delay, capped at 300 s, so far fewer tries
    # than passes, and the dispatcher never gave up
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(tries)]
    assert all(gap >= min(300, 2**n) for n, gap in enumerate(gaps))
    assert max(gaps) == 300 and len(tries) < 25
    state = registry.outbox.destination("kaguan")
    assert state.attempts == len(tries) and state.failed_at is None
    assert state.last_error is not None and "ConnectionRefused" in state.last_error

    kaguan.up()  # back, on the same port
    clock.now = start + timedelta(minutes=66)
    progress = dispatch_once(registry, [hook], send=counted)
    sent = events(registry)
    assert progress[0].delivered == len(sent) == 7
    assert [e["id"] for e in kaguan.received] == [e.event_id for e in sent]
    assert [e["seq"] for e in kaguan.received] == list(range(1, 8))
    assert set(kaguan.deliveries.values()) == {1} and kaguan.refused == []
    assert dispatch_once(registry, [hook])[0].delivered == 0  # nothing is sent twice
    assert kaguan.tries == 7


def test_two_destinations_are_independent(
    registry: Registry, clock: MovingClock, kaguan: Receiver, bank: Receiver
) -> None:
    hooks = [
        webhook("kaguan", kaguan, KAGUAN_SECRET),
        webhook("bank", bank, BANK_SECRET, first_seconds=60),
    ]
    number = enrolled(registry)
    registry.report_loss(number, operator="op")
    registry.formalize_loss(number, operator="op", evidence="ID")
    bank.answer = 503
    first = dispatch_once(registry, hooks)
    assert [(p.destination, p.delivered) for p in first] == [("kaguan", 2), ("bank", 0)]
    assert first[1].last_error == "HTTP 503 Service Unavailable"
    assert len(kaguan.received) == 2 and bank.received == []
    registry.unreport(number, operator="op", evidence="ID")
    clock.now += timedelta(seconds=30)  # the bank's backoff (60 s) has not passed
    assert [p.delivered for p in dispatch_once(registry, hooks)] == [1, 0]
    assert bank.tries == 1
    bank.answer = 200
    clock.now += timedelta(seconds=31)
    assert [p.delivered for p in dispatch_once(registry, hooks)] == [0, 3]
    assert [e["seq"] for e in bank.received] == [e["seq"] for e in kaguan.received] == [1, 2, 3]
    assert [e["kind"] for e in bank.received] == ["card.frozen", "card.frozen", "card.unfrozen"]


def test_the_receiver_refuses_a_wrong_signature_and_nothing_counts_as_delivered(
    registry: Registry, kaguan: Receiver
) -> None:
    number = enrolled(registry)
    registry.report_loss(number, operator="op")
    wrong = webhook("kaguan", kaguan, BANK_SECRET)  # not the secret the receiver shares
    assert dispatch_once(registry, [wrong])[0].last_error == "HTTP 401 Unauthorized"
    assert kaguan.refused == ["bad signature"] and kaguan.received == []
    assert registry.outbox.destination("kaguan").delivered_through == 0


def test_a_stale_timestamp_is_refused_by_the_receiver(
    registry: Registry, clock: MovingClock, kaguan: Receiver
) -> None:
    number = enrolled(registry)
    registry.report_loss(number, operator="op")
    hook = webhook("kaguan", kaguan, KAGUAN_SECRET)

    def replayed_later(w: Webhook, event: OutboxEvent, now: datetime) -> Attempt:
        return post(w, event, now - timedelta(minutes=10))  # signed ten minutes ago

    assert dispatch_once(registry, [hook], send=replayed_later)[0].delivered == 0
    assert kaguan.refused == ["stale timestamp"]


def test_https_to_a_receiver_whose_ca_is_given(
    registry: Registry, clock: MovingClock, tmp_path: Path
) -> None:
    """A private receiver's certificate is trusted only by its ``ca_file``: without it the
    try fails (the certificate is verified), with it the event goes."""
    context, ca_file = self_signed_tls(tmp_path)
    receiver = Receiver(KAGUAN_SECRET, now=clock.unix, tls=context).up()
    try:
        number = enrolled(registry)
        registry.report_loss(number, operator="op")
        hook = webhook("kaguan", receiver, KAGUAN_SECRET)
        assert hook.url.startswith("https://127.0.0.1:")
        untrusted = dispatch_once(registry, [hook])[0]
        assert untrusted.delivered == 0 and "CERTIFICATE_VERIFY_FAILED" in str(untrusted.last_error)
        clock.now += timedelta(seconds=1)
        trusted = dataclasses.replace(hook, ca_file=str(ca_file))
        assert dispatch_once(registry, [trusted])[0].delivered == 1
        assert [e["seq"] for e in receiver.received] == [1]
    finally:
        receiver.down()


def test_after_its_attempts_an_event_fails_and_holds_back_the_rest_until_retried(
    registry: Registry, clock: MovingClock, kaguan: Receiver
) -> None:
    hook = webhook("kaguan", kaguan, KAGUAN_SECRET, first_seconds=1, max_attempts=2)
    number = enrolled(registry)
    registry.report_loss(number, operator="op")
    registry.unreport(number, operator="op", evidence="ID")
    kaguan.answer = 500
    dispatch_once(registry, [hook])
    clock.now += timedelta(seconds=1)
    assert dispatch_once(registry, [hook])[0].failed_event == 1
    clock.now += timedelta(hours=1)
    dispatch_once(registry, [hook])
    assert kaguan.tries == 2  # given up: not tried again
    failed = registry.outbox.entries(state=DeliveryState.FAILED)
    assert [(e.event.seq, e.destination, e.attempts) for e in failed] == [(1, "kaguan", 2)]
    assert failed[0].last_error == "HTTP 500 Internal Server Error"
    assert registry.outbox.event(failed[0].event.event_id) == registry.outbox.event("1")
    pending = registry.outbox.entries(state=DeliveryState.PENDING)
    assert [(e.event.seq, e.attempts) for e in pending] == [(2, 0)]
    kaguan.answer = 200
    with registry.transaction():
        assert registry.outbox.requeue(1, destination=None, at="2000-01-01T00:00:00+00:00") == [
            "kaguan"
        ]
        assert registry.outbox.requeue(1, destination=None, at="2000-01-01T00:00:00+00:00") == []
    assert dispatch_once(registry, [hook])[0].delivered == 2
    assert [e["seq"] for e in kaguan.received] == [1, 2]
    delivered = registry.outbox.entries(state=DeliveryState.DELIVERED)
    assert [(e.event.seq, e.destination) for e in delivered] == [(1, "kaguan"), (2, "kaguan")]


def test_a_repeat_after_a_lost_commit_is_recognised_by_its_id(
    registry: Registry, kaguan: Receiver
) -> None:
    """The one duplicate a sender cannot rule out: acknowledged, then the dispatcher died
    before recording it. The same event id goes again; the receiver keeps it once."""
    number = enrolled(registry)
    registry.report_loss(number, operator="op")
    hook = webhook("kaguan", kaguan, KAGUAN_SECRET)
    (event,) = events(registry)
    assert post(hook, event, PINNED).ok  # delivered, its progress never committed
    assert dispatch_once(registry, [hook])[0].delivered == 1
    assert kaguan.tries == 2 and kaguan.deliveries[event.event_id] == 2
    assert [e["id"] for e in kaguan.received] == [event.event_id]


def test_the_running_dispatcher_outlasts_a_busy_registry(
    registry: Registry, kaguan: Receiver
) -> None:
    """A pass the registry refuses (another writer holds it past the busy timeout) is
    reported, and the next pass delivers."""
    number = enrolled(registry)
    registry.report_loss(number, operator="op")
    other = Registry(registry.path, POLICY, create=False, audit_key=AUDIT_KEY)
    registry.db.set_busy_timeout(50)
    stop = threading.Event()
    lines: list[str] = []

    def report(line: str) -> None:
        lines.append(line)
        if "本轮回盘投递中止" in line:
            other.db.rollback()  # the other writer is done
        if "已送达" in line:
            stop.set()

    other.db.begin_write()
    run_dispatcher(
        registry, [webhook("kaguan", kaguan, KAGUAN_SECRET)], poll=0.01, stop=stop, report=report
    )
    other.close()
    assert "登记库正忙" in lines[0] and len(lines) == 2
    assert [e["seq"] for e in kaguan.received] == [1]


def test_no_secret_in_the_events_the_state_or_the_report(
    registry: Registry, kaguan: Receiver
) -> None:
    number = enrolled(registry)
    registry.report_loss(number, operator="op")
    registry.unreport(number, operator="op", evidence="ID")
    lines: list[str] = []
    hook = webhook("kaguan", kaguan, KAGUAN_SECRET, max_attempts=1)
    kaguan.answer = 503
    dispatch_once(registry, [hook], report=lines.append)
    kaguan.answer = 200
    dispatch_once(registry, [webhook("bank", kaguan, KAGUAN_SECRET)], report=lines.append)
    stored = [repr(e) for e in events(registry)] + [
        repr(registry.outbox.destination(n)) for n in ("kaguan", "bank")
    ]
    seen = "\n".join([*lines, *stored, repr(hook)])
    assert "HTTP 503" in seen and "已送达" in seen  # the texts are there to be searched
    assert KAGUAN_SECRET not in seen and KAGUAN_SECRET.encode().hex() not in seen


def test_the_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(first_seconds=5, max_seconds=60, max_attempts=4)
    assert [policy.delay(n) for n in range(1, 6)] == [5, 10, 20, 40, 60]
    assert [policy.gives_up(n) for n in (3, 4)] == [False, True]
    assert not RetryPolicy(max_attempts=0).gives_up(10_000)
