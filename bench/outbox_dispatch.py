"""What 回盘 costs (issue 15 Deliver 5; docs/outbox.md): the outbox event a card transition
writes in its transaction, and the dispatcher's delivery rate to a webhook.

1. **Transition cost**: ``report_loss`` then ``unreport`` on ``--cards`` cards of a fresh
   registry, each timed; p50 / p99 with the outbox event written and without it (the same
   code with the registry's outbox write switched off — the path before the outbox), and
   the ratio of the p50s.
2. **Delivery**: the events of part 1 (two per card) delivered by ``dispatch_once`` to a
   stdlib HTTP receiver on 127.0.0.1 that checks each signature: events per second and the
   per-event p50 / p99 (HTTP try plus the committed progress).

On SQLite (a file in a temporary directory), and with ``--postgresql`` also on a private
PostgreSQL server (tests/pgserver.py). The machine is shared: each measurement runs
``--rounds`` times and the round with the lowest p50 counts.

    .venv/bin/python bench/outbox_dispatch.py [--cards 500] [--rounds 3] [--postgresql]
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from bench.scaling import p50_p99_ms  # noqa: E402
from personalize.outbox_dispatch import dispatch_once  # noqa: E402
from personalize.outbox_store import OutboxEvent  # noqa: E402
from personalize.policy import load_policy  # noqa: E402
from personalize.registry import Registry  # noqa: E402
from personalize.seed import seed_registry  # noqa: E402
from personalize.webhooks import Attempt, Webhook, post  # noqa: E402
from tests.audit_key import AUDIT_KEY  # noqa: E402
from tests.webhook_receiver import KAGUAN_SECRET, Receiver  # noqa: E402

AT = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)  # the registry's clock: runs are comparable
POLICY = load_policy("default")
# the audit checkpoint logs of the bench's registries (not in the current directory)
CHECKPOINTS = Path(tempfile.mkdtemp(prefix="sscard-outbox-bench-checkpoints-"))


def _registry(location: str, cards: int) -> tuple[Registry, list[str]]:
    """A fresh registry of synthetic persons (``registry seed``) and ``cards`` of its active
    cards."""
    checkpoints = CHECKPOINTS / f"{len(list(CHECKPOINTS.iterdir()))}.checkpoints"
    registry = Registry(
        location, POLICY, clock=lambda: AT, audit_key=AUDIT_KEY, checkpoints=checkpoints
    )
    seed_registry(registry, 2 * cards, operator="bench")
    page = registry.card_page(status="active", limit=cards)
    assert len(page) == cards, "the seed made too few active cards"
    return registry, [listed.card.card_number for listed in page]


def _transitions(registry: Registry, numbers: list[str]) -> list[float]:
    times = []
    for number in numbers:
        start = time.perf_counter()
        registry.report_loss(number, operator="bench", channel="phone")
        middle = time.perf_counter()
        registry.unreport(number, operator="bench", evidence="ID")
        times += [middle - start, time.perf_counter() - middle]
    return times


def _delivery(registry: Registry) -> tuple[float, list[float]]:
    """(events per second, per-event seconds) of delivering the whole outbox."""
    receiver = Receiver(KAGUAN_SECRET).up()
    hook = Webhook("kaguan", receiver.url, KAGUAN_SECRET.encode())
    times: list[float] = []

    def timed(w: Webhook, event: OutboxEvent, now: datetime) -> Attempt:
        times.append(time.perf_counter())
        return post(w, event, now)

    try:
        start = time.perf_counter()
        (progress,) = dispatch_once(registry, [hook], send=timed)
        total = time.perf_counter() - start
    finally:
        receiver.down()
    assert progress.delivered == len(receiver.received) == len(times), receiver.refused
    per_event = [b - a for a, b in itertools.pairwise(times)]
    return progress.delivered / total, per_event


@dataclass(frozen=True)
class Round:
    """p50 / p99 in ms of a transition with and without its outbox event, and delivery."""

    transition_with: tuple[float, float]
    transition_without: tuple[float, float]
    delivery_rate: float  # events per second
    delivery: tuple[float, float]


def _round(new: Callable[[], str], cards: int) -> Round:
    registry, numbers = _registry(new(), cards)
    transition_with = p50_p99_ms(_transitions(registry, numbers))
    rate, per_event = _delivery(registry)
    registry.close()
    registry, numbers = _registry(new(), cards)
    registry._outbox_ready = False  # the transition as before the outbox: no event written
    transition_without = p50_p99_ms(_transitions(registry, numbers))
    registry.close()
    return Round(transition_with, transition_without, rate, p50_p99_ms(per_event))


def _best(new: Callable[[], str], cards: int, rounds: int) -> Round:
    """Each figure's best round (lowest p50, highest rate): the machine is shared."""
    runs = [_round(new, cards) for _ in range(rounds)]
    return Round(
        min((r.transition_with for r in runs), key=lambda t: t[0]),
        min((r.transition_without for r in runs), key=lambda t: t[0]),
        max(r.delivery_rate for r in runs),
        min((r.delivery for r in runs), key=lambda t: t[0]),
    )


def _report(backend: str, best: Round) -> None:
    (with50, with99), (without50, without99) = best.transition_with, best.transition_without
    print(
        f"| {backend} | {without50:.3f} / {without99:.3f} | {with50:.3f} / {with99:.3f} | "
        f"{with50 / without50:.2f} | {best.delivery_rate:.0f} | "
        f"{best.delivery[0]:.3f} / {best.delivery[1]:.3f} |"
    )


@contextmanager
def _sqlite() -> Iterator[Callable[[], str]]:
    with tempfile.TemporaryDirectory(prefix="sscard-outbox-bench-") as work:
        count = iter(range(1_000_000))
        yield lambda: str(Path(work) / f"r{next(count)}.db")


@contextmanager
def _postgresql() -> Iterator[Callable[[], str]]:
    from tests.pgserver import postgres_server

    with postgres_server() as server:
        count = iter(range(1_000_000))
        yield lambda: server.create_database(f"outbox_bench_{next(count)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cards", type=int, default=500, help="cards (2 transitions each)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best counts")
    parser.add_argument("--postgresql", action="store_true", help="also on PostgreSQL")
    args = parser.parse_args()
    print(
        "| registry | transition without outbox p50 / p99 ms | with outbox p50 / p99 ms | "
        "ratio | delivered events/s | per event p50 / p99 ms |"
    )
    print("|---|---|---|---|---|---|")
    backends = [("SQLite", _sqlite)] + ([("PostgreSQL", _postgresql)] if args.postgresql else [])
    try:
        for name, backend in backends:
            with backend() as new:
                _report(name, _best(new, args.cards, args.rounds))
    finally:
        shutil.rmtree(CHECKPOINTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
