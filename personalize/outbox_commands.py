"""``sscard outbox dispatch|list|retry`` (回盘, issue 15 Deliver 5; docs/outbox.md).

``dispatch`` delivers the outbox to the webhooks of ``outbox.toml`` (needs no session and no
audit key: it changes no card, only its own delivery state); ``list`` shows the events with
their state at each destination; ``retry`` re-queues an event a destination gave up on — an
operator's action (``outbox.retry``), audited.
"""

from __future__ import annotations

import argparse
import signal
import threading
from dataclasses import asdict
from itertools import groupby
from pathlib import Path
from typing import Any

from personalize.cli_types import positive_seconds
from personalize.operator_commands import acting
from personalize.outbox_dispatch import dispatch_once, requeue_failed, run_dispatcher
from personalize.outbox_store import DELIVERY_LABELS, DeliveryState, OutboxEntry
from personalize.registry import STATUS_NAMES, Registry
from personalize.registry_options import add_common_options, add_db_option, open_registry
from personalize.service_commands import _cursor, _emit, _local, _pad, _page
from personalize.webhooks import load_webhooks


def cmd_outbox_dispatch(args: argparse.Namespace) -> int:
    webhooks = load_webhooks(Path(args.config))  # a wrong file refused before the registry
    registry = open_registry(args)

    def report(line: str) -> None:
        if not args.json:
            print(line, flush=True)

    if args.once:
        progress = dispatch_once(registry, webhooks, report=report)
        _emit(
            args,
            {"destinations": [asdict(p) for p in progress]},
            "\n".join(
                f"{p.destination}：已送达至事件 {p.delivered_through}，本轮 {p.delivered} 个"
                + ("" if p.failed_event is None else f"；事件 {p.failed_event} 已放弃")
                + f" (delivered through {p.delivered_through})"
                for p in progress
            ),
        )
        return 0
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    names = ", ".join(w.name for w in webhooks)
    report(f"回盘投递开始 dispatching to {names} (SIGTERM/Ctrl-C stops)")
    run_dispatcher(registry, webhooks, poll=args.poll, stop=stop, report=report)
    report("回盘投递已停止 (dispatcher stopped)")
    return 0


def _event_dict(registry: Registry, entries: list[OutboxEntry]) -> dict[str, Any]:
    """One event with its state at each destination."""
    event = entries[0].event
    return {
        "seq": event.seq,
        "event_id": event.event_id,
        "kind": event.kind,
        "card_number": event.card_number,
        "status": event.status,
        "at": _local(registry, event.at),
        "destinations": [
            {
                "name": e.destination,
                "state": str(e.state),
                "attempts": e.attempts,
                "last_error": e.last_error,
                "next_attempt_at": _local(registry, e.next_attempt_at),
            }
            for e in entries
        ],
    }


def _event_lines(events: list[dict[str, Any]]) -> list[str]:
    lines = []
    for event in events:
        status = STATUS_NAMES.get(event["status"], event["status"])
        head = (
            f"{event['seq']:>6} {_pad(event['kind'], 14)} {event['card_number']}  "
            f"{_pad(status, 8)} {event['at']}  {event['event_id']}"
        )
        lines.append(head)
        for d in event["destinations"]:
            state = DELIVERY_LABELS[DeliveryState(d["state"])]
            tail = f" 第 {d['attempts']} 次失败：{d['last_error']}" if d["attempts"] else ""
            name = d["name"] or "（尚无目的地 no destination yet）"
            lines.append(f"       → {name} {state}{tail}")
    return lines


def cmd_outbox_list(args: argparse.Namespace) -> int:
    """A page of outbox events in order, each with its state at every destination."""
    registry = open_registry(args)
    state = None if args.status is None else DeliveryState(args.status)
    entries = registry.outbox.entries(state=state, after=_cursor(args), limit=args.limit + 1)
    events = [
        _event_dict(registry, list(group))
        for _, group in groupby(entries, key=lambda e: e.event.seq)
    ]
    _page(args, "events", events, "seq", _event_lines, "没有回盘事件 (no outbox events)")
    return 0


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    """Re-queue an event the dispatcher gave up on (at one destination, or every one that
    did), audited as the operator's."""
    registry = open_registry(args)
    operator = acting(registry, "outbox.retry").name
    with registry.transaction():
        event, names = requeue_failed(registry, operator, args.event, args.destination)
    _emit(
        args,
        {"seq": event.seq, "event_id": event.event_id, "destinations": names},
        f"回盘事件 {event.seq} 已重新排队：{', '.join(names)} (re-queued)",
    )
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    outbox = sub.add_parser(
        "outbox",
        help="回盘: card events for the card-management system and the bank (webhooks)",
        description="Every activation, void, freeze and unfreeze of a card is an outbox event, "
        "written with the change; the dispatcher delivers them, in order, signed, to the "
        "webhooks of outbox.toml until each acknowledges (docs/outbox.md).",
    ).add_subparsers(dest="outbox_command", required=True)

    p = outbox.add_parser(
        "dispatch",
        help="deliver pending events to the configured webhooks (until stopped, or --once)",
    )
    p.add_argument("--config", required=True, help="the destinations (outbox.toml)")
    p.add_argument("--once", action="store_true", help="one pass over every destination")
    p.add_argument("--poll", type=positive_seconds, default=2.0, help="seconds between passes [2]")
    add_db_option(p)
    add_common_options(p)
    p.set_defaults(func=cmd_outbox_dispatch)

    p = outbox.add_parser(
        "list", help="events and their state at each destination (--status, --after)"
    )
    p.add_argument(
        "--status", choices=[str(s) for s in DeliveryState], help="only events in this state"
    )
    p.add_argument("--limit", type=int, default=50, help="events per page (default 50)")
    p.add_argument("--after", help="the cursor a page printed: the next page")
    add_db_option(p)
    add_common_options(p)
    p.set_defaults(func=cmd_outbox_list)

    p = outbox.add_parser("retry", help="re-queue an event a destination gave up on")
    p.add_argument("event", help="the event's number (seq) or id (UUID)")
    p.add_argument("--destination", help="only at this destination (default: every one)")
    add_db_option(p)
    add_common_options(p)
    p.set_defaults(func=cmd_outbox_retry)
