"""Wall time of one reissue on the simulated station, split by job step: the whole demo flow
(station start, registry transitions, the job, the read-back) run ``--runs`` times.

    .venv/bin/python bench/reissue_e2e.py [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import tempfile
from datetime import datetime
from pathlib import Path

from personalize.cli import DEMO_AT
from personalize.demo import run_demo, running_from
from personalize.jobs import STEPS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    steps: dict[str, list[float]] = {s: [] for s in STEPS}
    totals: list[float] = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            with contextlib.redirect_stdout(io.StringIO()):
                run_demo(Path(tmp) / "out", clock=running_from(datetime.fromisoformat(DEMO_AT)))
            summary = json.loads((Path(tmp) / "out" / "summary.json").read_text())
        totals.append(summary["seconds"])
        for step, ms in summary["step_ms"].items():
            steps[step].append(ms)
    print(f"runs: {args.runs}")
    for step in STEPS:
        print(f"  {step:<14} median {statistics.median(steps[step]):7.1f} ms")
    job = sum(statistics.median(v) for v in steps.values())
    print(f"  {'job total':<14} median {job:7.1f} ms")
    print(f"whole demo flow (station up → read-back): median {statistics.median(totals):.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
