"""What the benchmarks share: percentiles in milliseconds, and the timing of a report over a
registry built afresh in a temporary directory (the "small and large registry, p50 / p99
and the ratio of the p50s" benchmarks: bench/stock_report.py, bench/fee_report.py)."""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from personalize.registry import Registry

Result = TypeVar("Result")


def p50_p99_ms(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 of ``samples`` (seconds) in milliseconds."""
    ordered = sorted(samples)
    return (
        statistics.median(ordered) * 1000,
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    )


def time_over_registry(
    name: str,
    build: Callable[[Path], Registry],
    report: Callable[[Registry], Result],
    repeat: int,
) -> tuple[float, float, Result]:
    """``build`` a registry in a new temporary directory (removed afterwards), then time
    ``report`` on it ``repeat`` times: (p50 ms, p99 ms, the last report)."""
    work = Path(tempfile.mkdtemp(prefix=f"sscard-{name}-bench-"))
    try:
        registry = build(work / f"{name}.db")
        samples = []
        for _ in range(repeat):
            began = time.perf_counter()
            result = report(registry)
            samples.append(time.perf_counter() - began)
        registry.close()
        return (*p50_p99_ms(samples), result)
    finally:
        shutil.rmtree(work, ignore_errors=True)
