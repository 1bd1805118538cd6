"""What the medical-account balance adds to an activation (docs/service.md "The medical-account
balance"): the wall time of ``Registry.activate`` — the transaction that voids the old card,
activates the new one and now records the balance transfer — with no balance reported
(the transfer left pending) and with one reported, and of ``Registry.report_balance``;
medians and p99 over ``--runs`` fresh SQLite registries (a job made and fed each time,
``tests/stores.py``). On a tree without the balance code only the first is measured.

    .venv/bin/python bench/balance_activation.py [--runs 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))

from personalize.jobs import claim_job  # noqa: E402
from personalize.policy import load_policy  # noqa: E402
from personalize.registry import ACTIVATION_EVIDENCE, Registry  # noqa: E402
from tests.audit_key import AUDIT_KEY  # noqa: E402
from tests.clock import pinned_clock  # noqa: E402
from tests.stores import fed_job, record_steps  # noqa: E402


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return (time.perf_counter() - start) * 1000


def one_run(root: Path, *, reported: bool) -> dict[str, float]:
    """A fresh registry with a made job; the report (when ``reported``) and the activation."""
    registry = Registry(root / "r.db", load_policy("default"), clock=pinned_clock,
                        audit_key=AUDIT_KEY)  # fmt: skip
    try:
        job_id, card_id = fed_job(registry)
        record_steps(registry, "feed", *ACTIVATION_EVIDENCE)
        fence = claim_job(registry, job_id, "station-1")
        times: dict[str, float] = {}
        if reported:
            old = registry.card_by_id(registry.job(job_id).old_card_id).card_number
            as_of = pinned_clock() - timedelta(hours=1)
            times["report_balance"] = timed(
                lambda: registry.report_balance(
                    old, "1234.56", as_of=as_of, reference="bench", operator="bench"
                )
            )
        times["activate"] = timed(
            lambda: registry.activate(card_id, operator="bench", job_id=job_id, fence=fence)
        )
        return times
    finally:
        registry.close()


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    modes = [False, True] if hasattr(Registry, "report_balance") else [False]
    figures: dict[str, dict[str, float]] = {}
    for reported in modes:
        samples: dict[str, list[float]] = {}
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                for name, ms in one_run(Path(tmp), reported=reported).items():
                    samples.setdefault(name, []).append(ms)
        label = "reported" if reported else "not reported"
        for name, values in samples.items():
            figures[f"{name} ({label})"] = summary(values)
    if args.json:
        print(json.dumps(figures, ensure_ascii=False, indent=2))
    else:
        for name, figure in figures.items():
            print(f"{name:32} median {figure['median_ms']:8.3f} ms  p99 {figure['p99_ms']:8.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
