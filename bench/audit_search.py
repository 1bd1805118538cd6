"""The auditor's search of the audit chain (issue 16, Deliver 5; personalize/audit_store.py) on a
long chain: one page (50 events, newest first) by operator, by card, by a time window in the
middle of the history, and the 1,001st page of everything — with the search's indexes
(``audit_events_by_at|subject|operator``) and without them (the schema before), and the deep
page by keyset against the same page by ``OFFSET``.

    .venv/bin/python bench/audit_search.py [--events 1000000] [--rounds 7]

The chain is written straight into a SQLite registry's ``audit_events`` (the search reads
``at``, ``operator`` and ``subject``; the hashes do not matter to it): one event a second,
200 operators and 100,000 subjects in turn (a card has one event in 100,000). Each query
is run ``--rounds`` times; the median and the slowest are reported, in milliseconds.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from personalize import audit_store
from personalize.audit_store import AuditEvent, EventSearch
from personalize.policy import load_policy
from personalize.registry import Registry

START = datetime(2026, 1, 1, tzinfo=UTC)
INDEXES = ("audit_events_by_at", "audit_events_by_subject", "audit_events_by_operator")
PAGE = 50


def build(path: Path, events: int) -> None:
    """A registry (every migration) whose chain has ``events`` events."""
    Registry(path, load_policy("default")).close()
    con = sqlite3.connect(path)
    with con:
        con.executemany(
            "INSERT INTO audit_events (id, at, operator, action, subject, details, prev_hash,"
            " hash) VALUES (?, ?, ?, 'card.note', ?, '{}', '', '')",
            (
                (
                    n,
                    (START + timedelta(seconds=n)).isoformat(timespec="seconds"),
                    f"op{n % 200}",
                    f"H{n % 100_000:08d}",
                )
                for n in range(1, events + 1)
            ),
        )
    con.execute("ANALYZE")
    con.close()


def timed(query: Callable[[], list[AuditEvent]], rounds: int) -> tuple[float, float]:
    """(median, slowest) milliseconds of ``query``, which must find events."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        assert query()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def measure(path: Path, events: int, rounds: int) -> dict[str, tuple[float, float]]:
    registry = Registry(path, load_policy("default"), create=False)
    db = registry.db
    middle = START + timedelta(seconds=events // 2)
    window = EventSearch(
        since=middle.isoformat(timespec="seconds"),
        until=(middle + timedelta(hours=1)).isoformat(timespec="seconds"),
    )
    deep = PAGE * 1000
    cursor = audit_store.event_page(db, EventSearch(), limit=deep)[-1]

    def offset() -> list[AuditEvent]:
        rows = db.execute(
            "SELECT id, at, operator, action, subject, details FROM audit_events"
            " ORDER BY at DESC, id DESC LIMIT ? OFFSET ?",
            (PAGE, deep),
        )
        return [AuditEvent(*r) for r in rows]

    queries: dict[str, Callable[[], list[AuditEvent]]] = {
        "operator": lambda: audit_store.event_page(db, EventSearch(operator="op7")),
        "card": lambda: audit_store.event_page(db, EventSearch(subjects=("H00000007",))),
        "time window": lambda: audit_store.event_page(db, window),
        "page 1001, keyset": lambda: audit_store.event_page(db, EventSearch(), before=cursor),
        "page 1001, OFFSET": offset,
    }
    try:
        return {name: timed(query, rounds) for name, query in queries.items()}
    finally:
        registry.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "registry.db"
        start = time.perf_counter()
        build(path, args.events)
        print(f"{args.events:,} events written in {time.perf_counter() - start:.1f} s")
        after = measure(path, args.events, args.rounds)
        con = sqlite3.connect(path)
        for index in INDEXES:
            con.execute(f"DROP INDEX {index}")
        con.close()
        before = measure(path, args.events, args.rounds)
    print(f"{'one page of 50':<20} {'without the indexes':>22} {'with them':>18}")
    for name in after:
        (b50, bmax), (a50, amax) = before[name], after[name]
        print(f"{name:<20} {b50:>10.1f} (max {bmax:>7.1f}) {a50:>8.2f} (max {amax:>6.2f}) ms")


if __name__ == "__main__":
    main()
