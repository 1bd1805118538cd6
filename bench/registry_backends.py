"""The registry's counter operations on SQLite and on PostgreSQL, side by side, through the
same ``Registry`` code (personalize/database.py): what choosing ``--db postgresql://…``
costs per operation on one host.

A registry of ``--persons`` enrolled persons on each store — a SQLite file in a temporary
directory, and a database on a private PostgreSQL 15 server on loopback that the bench
starts and stops itself (tests/pgserver.py; ``fsync`` off like the tests' server, so it
measures the server's work, not the disk) — then ``--rounds`` rounds of: look a card up,
report it lost (预挂失), undo the loss (解挂), ``audit verify`` excluded. The audit key is
the test keystore's (tests/audit_key.py).

    .venv/bin/python bench/registry_backends.py [--persons 999] [--rounds 300]

Prints p50 and p99 per operation and store, and the PostgreSQL/SQLite ratio of the p50s.
Run as root (the server runs as the ``postgres`` user) — inside the tests' namespace
command if other suites run on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from personalize.policy import load_policy
from personalize.registry import Registry
from simulator.factory import SAMPLE_HOLDER
from sscard.identifiers import card_number_check, ssn_check
from tests.audit_key import AUDIT_KEY
from tests.pgserver import postgres_server

POLICY = load_policy("default")
MOMENT = datetime(2026, 11, 25, 1, 30, tzinfo=UTC)  # a Wednesday morning in Shanghai


def fill(registry: Registry, persons: int) -> list[str]:
    """``persons`` enrolled persons with one active card each; their card numbers."""
    numbers = []
    for n in range(1, persons + 1):  # sequence numbers of one birth date: at most 999
        first17 = SAMPLE_HOLDER.ssn[:14] + f"{n:03d}"
        gender = "1" if n % 2 else "2"  # GB 11643: an odd sequence number is a man
        holder = replace(SAMPLE_HOLDER, ssn=first17 + ssn_check(first17), gender=gender)
        first8 = f"H{n:07d}"
        numbers.append(first8 + card_number_check(first8))
        registry.enroll(holder, numbers[-1], operator="bench")
    return numbers


def measure(registry: Registry, numbers: list[str], rounds: int) -> dict[str, list[float]]:
    operations: dict[str, Callable[[str], object]] = {
        "card": registry.card,
        "report_loss": lambda n: registry.report_loss(n, operator="bench"),
        "unreport": lambda n: registry.unreport(n, operator="bench", evidence="居民身份证"),
    }
    times: dict[str, list[float]] = {name: [] for name in operations}
    for i in range(rounds):
        number = numbers[(i * 7919) % len(numbers)]
        for name, operation in operations.items():
            started = time.perf_counter()
            operation(number)
            times[name].append((time.perf_counter() - started) * 1000)
    return times


def quantile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=999, help="1 to 999")
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    if not 1 <= args.persons <= 999:
        parser.error("--persons is 1 to 999 (sequence numbers of one birth date)")
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, postgres_server() as server:
        stores = {
            "sqlite": str(Path(tmp) / "registry.db"),
            "postgresql": server.create_database("bench"),
        }
        for store, location in stores.items():
            registry = Registry(
                location,
                POLICY,
                clock=lambda: MOMENT,
                audit_key=AUDIT_KEY,
                checkpoints=Path(tmp) / f"{store}.checkpoints",
            )
            numbers = fill(registry, args.persons)
            results[store] = measure(registry, numbers, args.rounds)
            registry.close()
    print(f"{args.persons} persons, {args.rounds} rounds; milliseconds")
    print(f"{'operation':<12} {'store':<11} {'p50':>7} {'p99':>7}")
    for name in results["sqlite"]:
        for store, times in results.items():
            p50, p99 = statistics.median(times[name]), quantile(times[name], 99)
            print(f"{name:<12} {store:<11} {p50:7.2f} {p99:7.2f}")
        ratio = statistics.median(results["postgresql"][name]) / statistics.median(
            results["sqlite"][name]
        )
        print(f"{name:<12} {'pg/sqlite':<11} {ratio:7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
