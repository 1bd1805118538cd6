"""``sscard sim center``: a simulated card center drains a batch of reissue jobs with N
station workers, then reports its throughput, step times and invariants (issue 13,
Deliver 6; docs/service.md "A simulated card center").

It is the composition root of the run: the center's devices (simulator/center.py), M
synthetic holders (GB 11643 IDs and GBK names of personalize/seed.py) each with a lost card,
a reissue request and a submitted job, a card-center operator with a session for the
workers, and N ``sscard station run --idle-exit`` processes. Whatever it started is stopped
on the way out, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

from personalize.cli_types import positive_count
from personalize.database import display
from personalize.operator_commands import acting
from personalize.operators import (
    add_operator,
    find_operator,
    has_operators,
    open_session,
    save_session,
)
from personalize.policy import load_policy
from personalize.registry import Registry
from personalize.roles import Role
from personalize.seed import synthetic_name, synthetic_ssn
from personalize.station import StationConfig
from personalize.trackvault import TrackVault
from simulator.center import SimulatedCenter, submit_reissue_job
from simulator.center_checks import check_center, jobs_done, jobs_per_hour, step_times
from sscard.profile import CardProfile, load_profile
from sscard.records import HolderData

SUPERVISOR = "sim-supervisor"  # bootstraps an empty registry, adds each run's operator
SPARE_CARDS = 8  # blank cards per station beyond one per job (rejected or lost ones)
STOP_GRACE = 30.0  # seconds a worker has to finish its step after SIGTERM


def center_operator(registry: Registry, out: Path) -> tuple[str, Path]:
    """A new card-center operator for this run and its session file in ``out``, added by
    ``sim-supervisor`` — bootstrapped in an empty registry, kept from an earlier run — or,
    in a registry with other operators (a seeded one), by the supervisor logged in at
    ``$SSCARD_SESSION``."""
    if not has_operators(registry):
        add_operator(registry, SUPERVISOR, Role.SUPERVISOR, secrets.token_urlsafe(24), by=None)
    supervisor = find_operator(registry, SUPERVISOR)
    if supervisor is None or supervisor.role != Role.SUPERVISOR:
        supervisor = acting(registry, "operator.add")
    name = f"sim-center-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(24)
    add_operator(registry, name, Role.CARD_CENTER, password, by=supervisor)
    session = save_session(out / f"session-{name}", open_session(registry, name, password))
    return name, session


def synthetic_holders(registry: Registry, count: int) -> Iterator[HolderData]:
    """``count`` synthetic holders not yet in the registry, in the order of
    personalize/seed.py's persons, from the first one not enrolled (a seeded registry or an
    earlier run enrolled a leading run of them)."""
    index = first_unenrolled(registry)
    while count:
        ssn, born, gender = synthetic_ssn(index)
        if registry.person_by_ssn(ssn) is None:
            yield HolderData(
                ssn=ssn,
                name=synthetic_name(index),
                gender=gender,
                ethnicity="01",
                birthplace=ssn[:6],
                birth_date=born,
            )
            count -= 1
        index += 1


def first_unenrolled(registry: Registry) -> int:
    """The first synthetic person not enrolled, assuming those enrolled are a leading run
    (``registry seed``, earlier ``sim center`` runs): O(log n) lookups, doubling then
    bisecting."""

    def enrolled(index: int) -> bool:
        return registry.person_by_ssn(synthetic_ssn(index)[0]) is not None

    if not enrolled(0):
        return 0
    low, high = 0, 1  # enrolled(low), and high to be found not enrolled
    while enrolled(high):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if enrolled(middle) else (low, middle)
    return high


def prepare_jobs(
    registry: Registry,
    profile: CardProfile,
    vault: TrackVault,
    count: int,
    *,
    out: Path,
    operator: str,
) -> list[int]:
    """``count`` reissue jobs, queued: their ids."""
    return [
        submit_reissue_job(registry, profile, vault, holder, photo_dir=out, operator=operator)[0]
        for holder in synthetic_holders(registry, count)
    ]


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM as Ctrl-C: the run unwinds and stops what it started."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_workers(station_files: list[Path], session: Path, out: Path) -> list[int]:
    """One ``sscard station run --idle-exit`` per station, until all have exited (output
    in ``out/worker-N.log``); their exit statuses. Interrupted: each is sent SIGTERM
    (finish the step, release the job), then killed after ``STOP_GRACE``."""
    workers: list[subprocess.Popen[bytes]] = []
    with ExitStack() as stack:
        for index, station_file in enumerate(station_files):
            log = stack.enter_context((out / f"worker-{index + 1}.log").open("wb"))
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "personalize.cli",
                        "station",
                        "run",
                        "--station",
                        str(station_file),
                        "--idle-exit",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=worker_env(session),
                )
            )
        try:
            return [worker.wait() for worker in workers]
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGTERM)
            for worker in workers:
                try:
                    worker.wait(timeout=STOP_GRACE)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()


def worker_env(session: Path) -> dict[str, str]:
    """A worker's environment: this one, acting under the run's operator session."""
    return {**os.environ, "SSCARD_SESSION": str(session)}


def registry_location(text: str | None) -> str | None:
    """``--db`` as the station files take it: a URL unchanged, a relative path made
    absolute (a station file resolves paths against its own directory)."""
    if text is None or "://" in text:
        return text
    return str(Path(text).resolve())


def cmd_sim_center(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    policy = load_policy(args.policy)
    profile = load_profile(policy.profile)
    with (
        stop_on_sigterm(),
        SimulatedCenter(
            out,
            profile,
            policy.region_code,
            stations=args.stations,
            cards_per_station=args.jobs + SPARE_CARDS,
            registry=registry_location(args.db),
            policy=args.policy,
        ) as center,
    ):
        config = StationConfig.load(center.station_files[0])
        registry = config.open_registry(policy, create=True)
        try:
            operator, session = center_operator(registry, out)
            job_ids = prepare_jobs(
                registry,
                profile,
                TrackVault.from_file(config.track_key),
                args.jobs,
                out=out,
                operator=operator,
            )
            printed = center.printed()
            started = time.monotonic()
            exits = run_workers(center.station_files, session, out)
            summary = _summary(
                registry, job_ids, center.printed() - printed, exits, time.monotonic() - started
            )
        finally:
            registry.close()
    summary["registry"] = display(center.registry)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        _print(summary, out)
    return 0 if summary["ok"] else 1


def _summary(
    registry: Registry, job_ids: list[int], printed: int, exits: list[int], wall: float
) -> dict[str, Any]:
    invariants = check_center(registry, job_ids, printed)
    done = jobs_done(registry, job_ids)
    return {
        "stations": len(exits),
        "jobs": len(job_ids),
        "jobs_done": done,
        "wall_seconds": round(wall, 1),
        "jobs_per_hour": jobs_per_hour(registry, job_ids, done),
        "steps": [asdict(s) for s in step_times(registry, job_ids)],
        "invariants": [i.as_dict() for i in invariants],
        "worker_exits": exits,
        "ok": all(i.ok for i in invariants),
    }


def _print(summary: dict[str, Any], out: Path) -> None:
    print(
        f"制卡中心模拟 (simulated card center): {summary['stations']} 个工位 (stations), "
        f"{summary['jobs_done']}/{summary['jobs']} 个作业完成 (jobs done) "
        f"in {summary['wall_seconds']} s"
    )
    print(f"吞吐量 (throughput): {summary['jobs_per_hour']} 作业/小时 (jobs/hour)")
    print("步骤 (step)          次数 (n)  中位数 (median ms)  P95 (ms)")
    for s in summary["steps"]:
        print(f"  {s['step']:<18} {s['count']:>8} {s['median_ms']:>18} {s['p95_ms']:>9}")
    print("不变量 (invariants):")
    for i in summary["invariants"]:
        mark = "通过 (ok)" if i["ok"] else "失败 (FAILED)"
        print(f"  {i['name']:<27} {mark}: {i['detail']}")
    print(f"工位日志 (worker logs): {out}/worker-N.log; 登记库 (registry): {summary['registry']}")


def add_parser(sim: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sim.add_parser(
        "center",
        help="N simulated stations drain M reissue jobs; throughput, step times, invariants",
        description="Start a simulated card center (one pcscd with a vpcd slot per station, "
        "one security module, a printer emulator per station), queue M reissue jobs for "
        "synthetic holders, run N `sscard station run --idle-exit` workers until the queue "
        "is drained, and report jobs/hour, per-step median and p95 durations and the "
        "invariants checked. Exit status 1 when an invariant fails.",
    )
    p.add_argument("--stations", type=positive_count, default=2, help="station workers [2]")
    p.add_argument("--jobs", type=positive_count, default=20, help="reissue jobs to drain [20]")
    p.add_argument(
        "--db", help="registry location shared by the stations (default: OUT/registry.db)"
    )
    p.add_argument("--out", default="center", help="directory of the center's files [center]")
    p.add_argument("--policy", default="default", help="region policy name or TOML path")
    p.add_argument("--json", action="store_true", help="the summary as JSON")
    p.set_defaults(func=cmd_sim_center)
