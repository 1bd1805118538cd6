"""Load on the HTTP API (issue 15, Show 3): ``sscard serve`` as its own process on loopback,
on a registry of ``--persons`` synthetic persons (``sscard registry seed``'s), called by
``--clients`` concurrent httpx clients (threads, one connection each):

* card status — ``GET /v1/cards/{n}/status`` as a hospital terminal, random active cards;
* loss report — ``POST /v1/loss-reports`` (counter channel), each a different active card.

Requests per second and p50 / p99 latency of each, on SQLite and, with ``--postgresql``,
on a private PostgreSQL server (tests/pgserver.py). Every call is audited (a write
transaction per call, reads included), which is what serializes the server.

    .venv/bin/python bench/api_load.py                          # 10k persons, SQLite
    .venv/bin/python bench/api_load.py --persons 1000000 --postgresql
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from personalize.api.clients import add_client  # noqa: E402
from personalize.operators import Operator  # noqa: E402
from personalize.policy import load_policy  # noqa: E402
from personalize.registry import Registry  # noqa: E402
from personalize.roles import ApiRole, Role  # noqa: E402
from personalize.seed import seed_registry  # noqa: E402
from tests.api_serve import serve_api  # noqa: E402
from tests.audit_key import AUDIT_KEY  # noqa: E402
from tests.clock import pinned_clock  # noqa: E402

Request = Callable[[httpx.Client, int], httpx.Response]


def build(db: str | Path, persons: int, reports: int) -> tuple[dict[ApiRole, str], list[str]]:
    """Seed the registry; a terminal and a counter client; active card numbers."""
    registry = Registry(db, load_policy("default"), clock=pinned_clock, audit_key=AUDIT_KEY)
    try:
        start = time.perf_counter()
        seed_registry(registry, persons, operator="bench")
        print(f"  seeded {persons} persons in {time.perf_counter() - start:.0f} s", flush=True)
        by = Operator("bench", Role.SUPERVISOR)
        tokens = {
            role: add_client(registry, f"bench-{role}", role, by=by)[1]
            for role in (ApiRole.TERMINAL, ApiRole.COUNTER)
        }
        numbers: list[str] = []
        after = 0
        while len(numbers) < reports:
            page = registry.card_page(status="active", after=after, limit=1000)
            if not page:
                break
            numbers += [listed.card.card_number for listed in page]
            after = page[-1].card.id
        return tokens, numbers
    finally:
        registry.close()


def run(base: str, token: str, clients: int, count: int, request: Request) -> dict[str, float]:
    """``count`` requests by ``clients`` threads; throughput and latency percentiles."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    counter = iter(range(count))

    def worker() -> None:
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as client:
            while True:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                start = time.perf_counter()
                answer = request(client, index)
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if answer.status_code >= 300:
                        failures.append(f"{answer.status_code} {answer.text[:200]}")

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if failures:
        raise SystemExit(f"{len(failures)} failed requests, e.g. {failures[0]}")
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "per_s": len(ordered) / wall,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


def measure(db: str | Path, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    tokens, numbers = build(db, args.persons, args.reports)
    rng = random.Random(7)
    with serve_api(db) as base:

        def status(client: httpx.Client, index: int) -> httpx.Response:
            return client.get(f"/v1/cards/{rng.choice(numbers)}/status")

        def report(client: httpx.Client, index: int) -> httpx.Response:
            return client.post(
                "/v1/loss-reports",
                json={"channel": "counter", "card_number": numbers[index]},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )

        run(base, tokens[ApiRole.TERMINAL], args.clients, 50, status)  # warm the threads
        return {
            "card status": run(base, tokens[ApiRole.TERMINAL], args.clients, args.statuses, status),
            "loss report": run(
                base, tokens[ApiRole.COUNTER], args.clients, min(args.reports, len(numbers)), report
            ),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=10_000, help="registry size")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--statuses", type=int, default=2000, help="card-status requests")
    parser.add_argument("--reports", type=int, default=1000, help="loss reports")
    parser.add_argument("--postgresql", action="store_true", help="also on PostgreSQL")
    args = parser.parse_args()
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="sscard-api-load-") as work:
        os.chdir(work)  # a PostgreSQL registry's checkpoint log goes to the current directory
        print(f"SQLite, {args.persons} persons", flush=True)
        results["SQLite"] = measure(Path(work) / "api.db", args)
        if args.postgresql:
            from tests.pgserver import postgres_server

            print(f"PostgreSQL, {args.persons} persons", flush=True)
            with postgres_server() as server:
                results["PostgreSQL"] = measure(server.create_database("api_load"), args)
    print(f"\n{args.clients} clients, {args.persons} persons")
    print("| store | operation | requests | req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for store, operations in results.items():
        for name, r in operations.items():
            print(
                f"| {store} | {name} | {r['requests']:.0f} | {r['per_s']:.0f} | "
                f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
