"""What the day's fee report costs (issue 17; docs/business-rules.md "Fees and receipts") as
the registry's requests grow: ``fee_day_report`` of the last day over ``--days`` days of
补卡 requests, each with the 20-yuan fee, most paid an hour after the application and one in
50 never settled, timed ``--repeat`` times; p50 / p99 for a small and a large registry
(``--small`` and ``--large`` requests in all), and the ratio of the p50s. The day's receipts
are found by index (``fee_settlements_by_at``); the fees outstanding at the day's close are
the requests with a fee applied for by then (the partial index
``requests_with_fee_by_applied_on``) without a settlement before then — a walk of the
history of requests with a fee, so that part grows with it.

On SQLite (a file in a temporary directory). The persons and cards come from ``registry
seed`` (audited, in bulk); the requests and settlements are written in bulk by a connection
of their own, as years of counters would have written them (not audited: the bench reads).

    .venv/bin/python bench/fee_report.py [--small 10000] [--large 100000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from bench.scaling import time_over_registry  # noqa: E402
from personalize.database import open_database  # noqa: E402
from personalize.fee_report import fee_day_report  # noqa: E402
from personalize.policy import load_policy  # noqa: E402
from personalize.registry import Registry, _iso  # noqa: E402
from personalize.seed import seed_registry  # noqa: E402
from tests.audit_key import AUDIT_KEY  # noqa: E402

END = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)  # the last day's requests end here
POLICY = load_policy("default")


def requests(path: Path, count: int, days: int) -> Registry:
    """``count`` persons with a card each (``registry seed``), then one 补卡 request per card
    spread evenly over ``days`` days before ``END``, paid an hour later but one in 50; the
    registry opened on them."""
    registry = Registry(path, POLICY, clock=lambda: END, audit_key=AUDIT_KEY)
    seed_registry(registry, count, operator="bench")
    cards = [int(r[0]) for r in registry.db.execute("SELECT id FROM cards ORDER BY id")]
    people = {int(r[0]): int(r[1]) for r in registry.db.execute("SELECT id, person_id FROM cards")}
    registry.close()
    db = open_database(path, create=False)
    step = timedelta(days=days) / len(cards)
    rows, paid = [], []
    for n, card in enumerate(cards, 1):
        at = END - timedelta(days=days) + step * n
        day = POLICY.local_date(at).isoformat()
        rows.append((n, people[card], card, day, day, "bench", 20, "bench", "done"))
        if n % 50:
            paid.append((n, 20, f"B{n:09d}", "bench", _iso(at + timedelta(hours=1))))
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO reissue_requests (id, person_id, old_card_id, kind, applied_on, collect_on,"
        " place, fee, operator, status) VALUES (?, ?, ?, 'reissue', ?, ?, ?, ?, ?, ?)",
        rows,
    )
    db.executemany(
        "INSERT INTO fee_settlements (request_id, outcome, amount, receipt_no, operator, at)"
        " VALUES (?, 'paid', ?, ?, ?, ?)",
        paid,
    )
    db.execute("COMMIT")
    db.close()
    return Registry(path, POLICY, clock=lambda: END, audit_key=AUDIT_KEY)


def measure(count: int, days: int, repeat: int) -> tuple[float, float, int, int]:
    """(p50, p99, the day's receipts, fees outstanding at its close)."""
    day = POLICY.local_date(END - timedelta(hours=12))
    p50, p99, report = time_over_registry(
        "fee",
        lambda path: requests(path, count, days),
        lambda registry: fee_day_report(registry, day),
        repeat,
    )
    return p50, p99, len(report.settlements), len(report.outstanding)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000, help="requests of the small one")
    parser.add_argument("--large", type=int, default=100_000, help="requests of the large one")
    parser.add_argument("--days", type=int, default=365, help="days the requests span")
    parser.add_argument("--repeat", type=int, default=30, help="reports timed per registry")
    args = parser.parse_args()
    p50s = {}
    for size in (args.small, args.large):
        p50, p99, receipts, outstanding = measure(size, args.days, args.repeat)
        p50s[size] = p50
        print(
            f"{size:>9} requests: fee_day_report p50 {p50:8.2f} ms  p99 {p99:8.2f} ms"
            f"  ({receipts} receipts that day, {outstanding} outstanding)"
        )
    print(f"p50 {args.large}/{args.small}: {p50s[args.large] / p50s[args.small]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
