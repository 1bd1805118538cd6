"""``sscard station run``: the station worker's command line (personalize/station_worker.py,
docs/service.md "Stations that pull work")."""

from __future__ import annotations

import argparse
import dataclasses

from personalize.cli_types import positive_seconds
from personalize.operator_commands import acting
from personalize.policy import load_policy
from personalize.station import StationConfig
from personalize.station_worker import WorkerOptions, run_station


def cmd_station_run(args: argparse.Namespace) -> int:
    config = StationConfig.load(args.station)
    if args.lease is not None:
        config = dataclasses.replace(config, lease_seconds=args.lease)
    registry = config.open_registry(load_policy(config.policy), create=False)
    try:
        operator = acting(registry, "job.run").name
    finally:
        registry.close()
    options = WorkerOptions(once=args.once, idle_exit=args.idle_exit, poll=args.poll)
    return run_station(config, operator, options, lambda s: print(s, flush=True))


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    station = sub.add_parser("station", help="a station that pulls its own jobs").add_subparsers(
        dest="station_command", required=True
    )
    p = station.add_parser(
        "run",
        help="claim and run jobs until told to stop (SIGTERM: finish the step, release, exit 0)",
        description="Claim the next job this station can do (its region, its printer), run "
        "it, renew its lease by heartbeat, repeat. SIGTERM/SIGINT finishes the current step, "
        "releases the job (resumable) and exits 0; a second signal aborts.",
    )
    p.add_argument("--station", required=True, help="the station's configuration (TOML)")
    p.add_argument("--once", action="store_true", help="stop after one job")
    p.add_argument("--idle-exit", action="store_true", help="stop when no job can be claimed")
    p.add_argument(
        "--poll", type=positive_seconds, default=2.0, help="seconds between claims when idle [2]"
    )
    p.add_argument(
        "--lease",
        type=positive_seconds,
        help="lease length in seconds (default: the station file's)",
    )
    p.set_defaults(func=cmd_station_run)
