"""Crash campaign figures (issue 11): ``job run`` SIGKILLed at random delays over many jobs
and resumed, on one station, then on two stations with forced lease takeovers.

    unshare --mount --net bash -c 'ip link set lo up; mount -t tmpfs tmpfs /run/pcscd; \
        .venv/bin/python bench/crash_resume.py --jobs 60 --kills 3 4'
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.crash_campaign import Campaign


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--kills", type=int, nargs=2, default=(3, 4), metavar=("MIN", "MAX"))
    parser.add_argument("--stations", type=int, nargs="+", default=[1, 2], choices=(1, 2))
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    for stations in args.stations:
        started = time.monotonic()
        with (
            tempfile.TemporaryDirectory() as tmp,
            Campaign(Path(tmp), jobs=args.jobs, stations=stations, seed=args.seed) as c,
        ):
            figures = c.campaign((args.kills[0], args.kills[1]))
        result = {"stations": stations, **figures.as_dict()}
        result["seconds"] = round(time.monotonic() - started, 1)
        print(json.dumps(result))
        for line in figures.details[:20]:
            print("   ", line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
