"""What the daily reconciliation costs (issue 16; docs/business-rules.md "Card stock") as the
ledger grows: ``day_report`` of the last day over a ledger of ``--days`` days of movements at
``--stations`` stations, timed ``--repeat`` times; p50 / p99, for a small and a large ledger
(``--small`` and ``--large`` movements in all), and the ratio of the p50s. The day's own
rows are found by index; the opening and closing stock are sums over the whole ledger
before the day, so the cost grows with the ledger's history.

On SQLite (a file in a temporary directory). The movements are written by the store in
bulk (one transaction per ledger), as the jobs and operators would have written them over
the days; each names a placeholder audit event (the ledger is not an audited table).

    .venv/bin/python bench/stock_report.py [--small 10000] [--large 1000000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from bench.scaling import time_over_registry  # noqa: E402
from personalize.policy import load_policy  # noqa: E402
from personalize.registry import Registry, _iso  # noqa: E402
from personalize.stock import day_report  # noqa: E402
from personalize.stock_store import MoveKind  # noqa: E402
from tests.audit_key import AUDIT_KEY  # noqa: E402

END = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)  # the last day's movements end here
POLICY = load_policy("default")


def ledger(path: Path, moves: int, days: int, stations: int) -> Registry:
    """A registry whose ledger holds ``moves`` movements spread evenly over ``days`` days
    before ``END``: a delivery per station each morning, the rest personalized cards."""
    registry = Registry(path, POLICY, clock=lambda: END, audit_key=AUDIT_KEY)
    per_day = moves // days
    with registry.transaction():
        for day in range(days):
            start = END - timedelta(days=days - day)
            for n in range(per_day):
                station = f"st-{n % stations}"
                kind = MoveKind.RECEIVED if n < stations else MoveKind.PERSONALIZED
                registry.stock.add(
                    kind,
                    station,
                    per_day if kind == MoveKind.RECEIVED else 1,
                    at=_iso(start + timedelta(seconds=n * 86_000 / per_day)),
                    operator="bench",
                    audit_event=1,
                    job_id=None,
                )
    return registry


def measure(moves: int, days: int, stations: int, repeat: int) -> tuple[float, float]:
    day = POLICY.local_date(END - timedelta(hours=12))
    p50, p99, _ = time_over_registry(
        "stock",
        lambda path: ledger(path, moves, days, stations),
        lambda registry: day_report(registry, day),
        repeat,
    )
    return p50, p99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000, help="movements of the small ledger")
    parser.add_argument("--large", type=int, default=1_000_000, help="movements of the large one")
    parser.add_argument("--days", type=int, default=365, help="days the movements span")
    parser.add_argument("--stations", type=int, default=8, help="stations")
    parser.add_argument("--repeat", type=int, default=30, help="reports timed per ledger")
    args = parser.parse_args()
    results = {}
    for size in (args.small, args.large):
        results[size] = measure(size, args.days, args.stations, args.repeat)
        p50, p99 = results[size]
        print(f"ledger {size:>9} movements: day_report p50 {p50:8.2f} ms  p99 {p99:8.2f} ms")
    ratio = results[args.large][0] / results[args.small][0]
    print(f"p50 {args.large}/{args.small}: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
