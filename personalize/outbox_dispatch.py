"""The outbox dispatcher (回盘, issue 15 Deliver 5; docs/outbox.md): ``sscard outbox dispatch``
delivers each destination's pending events in order, one at a time, and moves its progress
only when a 2xx acknowledged the event.

- **In order, per destination**: the next event is sent only after the one before it was
  acknowledged; a destination's state (its progress, attempts, backoff, given up) is its
  own row, so a receiver that is down holds back only itself.
- **Retries**: a failed try is counted and the next one waits the destination's backoff
  (:class:`personalize.webhooks.RetryPolicy`); after ``max_attempts`` the dispatcher gives
  up on the event (``failed``) and the destination waits for ``sscard outbox retry``.
- **Exactly once per event id, as far as the sender can tell**: the progress is committed
  right after each acknowledgement; only a crash between a 2xx and that commit sends an
  event again, with the same ``SSCard-Event-Id`` — the receiver deduplicates by it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from personalize.outbox_store import OutboxEvent
from personalize.registry import Registry, RegistryError
from personalize.webhooks import Attempt, Webhook, post

Send = Callable[[Webhook, OutboxEvent, datetime], Attempt]
Report = Callable[[str], None]
BATCH = 100  # events read at a time
LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """What one pass did for a destination."""

    destination: str
    delivered: int  # events acknowledged in this pass
    delivered_through: int  # its last acknowledged event (seq)
    failed_event: int | None  # the event it has given up on, if any
    next_attempt_at: str | None  # when it tries again after a failure
    last_error: str | None


def iso_utc(moment: datetime) -> str:
    """An instant as the registry stores it: ISO 8601 UTC, to the second (compared as text)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _failed_try(
    registry: Registry, webhook: Webhook, event: OutboxEvent, attempt: Attempt, tries: int
) -> str:
    """Record the ``tries``-th failed try of ``event``; the line the operator reads."""
    now = registry.clock()
    gave_up = webhook.retry.gives_up(tries)
    later = now + timedelta(seconds=webhook.retry.delay(tries))
    again = iso_utc(later)
    registry.outbox.attempt_failed(
        webhook.name,
        event.seq,
        attempts=tries,
        error=attempt.error,
        next_attempt_at=again,
        failed_at=iso_utc(now) if gave_up else None,
    )
    if gave_up:
        return (
            f"{webhook.name}：事件 {event.seq} 已放弃（{tries} 次失败：{attempt.error}），"
            f"查明后请用 sscard outbox retry {event.seq} (gave up; retry re-queues it)"
        )
    local = registry.policy.local_time(datetime.fromisoformat(again)).isoformat()
    return (
        f"{webhook.name}：事件 {event.seq} 第 {tries} 次投递失败：{attempt.error}；"
        f"{local} 重试 (delivery failed, next try at {local})"
    )


def deliver(
    registry: Registry, webhook: Webhook, send: Send, report: Report, stop: threading.Event
) -> Progress:
    """One pass for one destination: its due events, in order, until none is left, one
    fails, it has given up, or ``stop`` is set."""
    delivered = 0
    with registry.transaction():
        state = registry.outbox.destination(webhook.name)
    while (
        not stop.is_set()
        and state.failed_at is None
        and (state.next_attempt_at is None or state.next_attempt_at <= iso_utc(registry.clock()))
        and (events := registry.outbox.events_after(state.delivered_through, limit=BATCH))
    ):
        for event in events:
            attempt = send(webhook, event, registry.clock())
            with registry.transaction():
                if attempt.ok:
                    registry.outbox.acknowledged(webhook.name, event.seq)
                    line = (
                        f"{webhook.name}：已送达事件 {event.seq} {event.kind} 卡号 "
                        f"{event.card_number} (delivered)"
                    )
                else:
                    tries = state.attempts + 1 if state.attempt_event == event.seq else 1
                    line = _failed_try(registry, webhook, event, attempt, tries)
                state = registry.outbox.destination(webhook.name)
            LOG.info("%s", line)
            report(line)
            if not attempt.ok:
                break
            delivered += 1
            if stop.is_set():
                break
    return Progress(
        destination=webhook.name,
        delivered=delivered,
        delivered_through=state.delivered_through,
        failed_event=state.attempt_event if state.failed_at is not None else None,
        next_attempt_at=state.next_attempt_at,
        last_error=state.last_error,
    )


def dispatch_once(
    registry: Registry,
    webhooks: Sequence[Webhook],
    *,
    send: Send = post,
    report: Report = lambda line: None,
    stop: threading.Event | None = None,
) -> list[Progress]:
    """One pass over every destination (``sscard outbox dispatch --once``); with ``stop``,
    a pass that ends as soon as it is set, after the try under way."""
    stop = threading.Event() if stop is None else stop
    return [deliver(registry, webhook, send, report, stop) for webhook in webhooks]


def run_dispatcher(
    registry: Registry,
    webhooks: Sequence[Webhook],
    *,
    poll: float,
    stop: threading.Event,
    send: Send = post,
    report: Report = lambda line: None,
) -> None:
    """Pass after pass, ``poll`` seconds apart, until ``stop`` is set (SIGTERM/SIGINT): a
    pass under way ends after its current try. A registry that refuses a pass (busy,
    a lost connection) is reported and tried again at the next pass: what was not
    committed is sent again, with the same event id."""
    while not stop.is_set():
        try:
            dispatch_once(registry, webhooks, send=send, report=report, stop=stop)
        except RegistryError as exc:
            LOG.warning("%s", exc)
            report(f"本轮回盘投递中止，稍后重试 (pass abandoned, tried again): {exc}")
        stop.wait(poll)


def requeue_failed(
    registry: Registry, operator: str, key: str, destination: str | None = None
) -> tuple[OutboxEvent, list[str]]:
    """An operator's re-queue of an event a destination gave up on (``outbox.retry``: every
    such destination, or ``destination``), inside the caller's write transaction, audited;
    the event (by ``seq`` or UUID) and the destinations that will try it again. Shared by
    ``sscard outbox retry`` and the console."""
    event = registry.outbox.event(key)
    if event is None:
        raise RegistryError(f"没有回盘事件 {key} (no outbox event {key})")
    names = registry.outbox.requeue(
        event.seq, destination=destination, at=iso_utc(registry.clock())
    )
    if not names:
        raise RegistryError(
            f"回盘事件 {event.seq} 未处于失败状态，无需重发 (the event has not failed"
            + ("" if destination is None else f" at {destination}")
            + ": nothing to retry)"
        )
    registry.audit(
        operator,
        "outbox.retry",
        f"outbox/{event.seq}",
        {"event_id": event.event_id, "destinations": names},
    )
    return event, names
