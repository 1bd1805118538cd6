"""A job's time on the simulated station, split into the printer's, the card's and the
software's own (issue 14, Deliver 4).

    unshare --mount --net bash -c 'ip link set lo up; mount -t tmpfs tmpfs /run/pcscd; \
        .venv/bin/python bench/station_job.py --jobs 20 --processes 5'

One simulated station (simulator/center.py, as ``sscard sim center`` and
tests/integration/test_station_worker.py set it up). ``--jobs`` reissue jobs are run the way
``sscard station run`` runs them — :func:`personalize.station_worker.run_station` in this
process: devices opened once, ``claim_next_job`` + ``JobRunner`` — and per job the bench
reports medians of

- wall: from the claim to the job's end;
- printer: time waiting for the printer's answers (inside ``EvolisPrinter.command`` and its
  session synchronization — the Port reads);
- card: time inside the PC/SC exchanges, connections and waits for a card to arrive or
  leave (pyscard's ``SCardTransmit``, ``SCardConnect``/``SCardReconnect`` and
  ``SCardGetStatusChange`` as apdu/pcsc.py calls them);
- software: the rest (target ≤ 150 ms), by step, with its CPU time (the worker thread's
  ``thread_time``, which the other loads of a shared machine do not stretch as they stretch
  wall time) and the security module's round trips shown apart (part of the software's
  time: its server runs in this process).

The timing wrappers are installed by this bench only; production code has none. The old
figures are measured in the same run, in ``--rounds`` alternating with today's worker (so
that a change in the machine's load meets both): the worker as before issue 14 (a PC/SC
context established and released around every wait and connection, the proof's font loaded
by the first job; the old code path is the bench's ``PerCallReader``), and ``--processes``
jobs each run as its own ``sscard job run`` process (process start, imports, fonts,
security-module connection, printer session, exit). ``--profile N`` runs N more jobs in the
worker under cProfile and prints where the software's time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reportlab.pdfbase import pdfmetrics
from smartcard import scard

import apdu.pcsc
import personalize.station_worker as station_worker
from apdu.pcsc import PcscTransport
from hsm_stub.client import TcpSecurityModule
from personalize.auditlog import PendingCheckpoint
from personalize.database import Database
from personalize.jobs import STEPS, JobRunner
from personalize.station import StationConfig
from personalize.station_worker import WorkerOptions, run_station
from printer.evolis import EvolisPrinter
from printer.face import PDF_FONT
from tests.integration.crash_campaign import Campaign, job_run_argv

DEVICES = ("printer", "card")
# Shown apart: the card's waits for a card to arrive (after a feed: pcscd's presence
# polling) and to leave (before a feed); of the software's time, the security module's round
# trips, the durable writes (the registry's COMMIT, fsync of SQLite's WAL, and the audit
# checkpoint appended and fsynced after it) and the PC/SC context set-up (establish, list
# the readers, release: round trips to pcscd, not the card's).
BUCKETS = (*DEVICES, "hsm", "arrival", "removal", "durable", "setup")
CARD_CALLS = ("SCardTransmit", "SCardConnect", "SCardReconnect", "SCardGetStatusChange")
SETUP_CALLS = ("SCardEstablishContext", "SCardListReaders", "SCardReleaseContext")
# each bucket on two clocks: wall (perf_counter) and the worker thread's CPU (thread_time),
# the latter for a machine whose other loads stretch every wall figure
CLOCKS = (*BUCKETS, *(f"{b} cpu" for b in BUCKETS), "contexts")


@dataclass
class Meter:
    """Seconds spent inside the wrapped functions, by bucket, in the worker's thread."""

    totals: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CLOCKS, 0.0))
    depth: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BUCKETS, 0))
    thread: int = field(default_factory=threading.get_ident)

    def snapshot(self) -> dict[str, float]:
        return {**self.totals, "cpu": time.thread_time()}

    def count(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` with its calls counted in ``totals[name]`` (PC/SC contexts established)."""

        @functools.wraps(fn)
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.totals[name] += 1
            return fn(*args, **kwargs)

        return counted

    def wrap(self, bucket: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != self.thread or self.depth[bucket]:
                return fn(*args, **kwargs)  # another thread's, or nested in a timed call
            self.depth[bucket] += 1
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.totals[bucket] += time.perf_counter() - start
                self.totals[f"{bucket} cpu"] += time.thread_time() - cpu
                self.depth[bucket] -= 1

        return timed


@dataclass
class Split:
    """One stretch of time: wall and the devices' and module's shares of it."""

    wall: float
    inside: dict[str, float]

    @property
    def software(self) -> float:
        return self.wall - sum(self.inside[d] for d in DEVICES)

    @property
    def software_cpu(self) -> float:
        """The worker thread's CPU outside the device calls."""
        return self.inside["cpu"] - sum(self.inside[f"{d} cpu"] for d in DEVICES)


@dataclass
class Record:
    jobs: list[Split] = field(default_factory=list)
    steps: dict[str, list[Split]] = field(default_factory=dict)
    claims: list[float] = field(default_factory=list)
    font_cpu: list[float] = field(default_factory=list)  # the font registered at start

    def extend(self, other: Record) -> None:
        self.jobs += other.jobs
        for name, splits in other.steps.items():
            self.steps.setdefault(name, []).extend(splits)
        self.claims += other.claims
        self.font_cpu += other.font_cpu


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in before}


@contextmanager
def instrumented(meter: Meter, record: Record) -> Iterator[None]:
    """Wrap the device calls, the steps, the claims and the runs (restored on exit)."""
    patches: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, wrapper: Any) -> None:
        patches.append((owner, name, getattr(owner, name)))
        setattr(owner, name, wrapper)

    patch(EvolisPrinter, "command", meter.wrap("printer", EvolisPrinter.command))
    patch(EvolisPrinter, "synchronize", meter.wrap("printer", EvolisPrinter.synchronize))
    for call in CARD_CALLS:  # the card's exchanges, connections and presence waits
        patch(scard, call, meter.wrap("card", getattr(scard, call)))
    for call in SETUP_CALLS:
        patch(scard, call, meter.wrap("setup", getattr(scard, call)))
    wait = apdu.pcsc._wait
    arrival, removal = meter.wrap("arrival", wait), meter.wrap("removal", wait)

    def split_wait(ctx: Any, reader: Any, timeout: float, want_card: bool) -> bytes:
        return bytes((arrival if want_card else removal)(ctx, reader, timeout, want_card))

    patch(apdu.pcsc, "_wait", split_wait)
    patch(TcpSecurityModule, "_call", meter.wrap("hsm", TcpSecurityModule._call))
    patch(Database, "commit", meter.wrap("durable", Database.commit))
    patch(PendingCheckpoint, "write", meter.wrap("durable", PendingCheckpoint.write))
    establish = scard.SCardEstablishContext  # timed as set-up above, counted here
    patch(scard, "SCardEstablishContext", meter.count("contexts", establish))

    def timed_step(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def step(self: JobRunner, *args: Any) -> Any:
            before, start = meter.snapshot(), time.perf_counter()
            try:
                return fn(self, *args)
            finally:
                wall = time.perf_counter() - start
                split = Split(wall, delta(before, meter.snapshot()))
                record.steps.setdefault(name, []).append(split)

        return step

    for name in STEPS:
        patch(JobRunner, f"step_{name}", timed_step(name, getattr(JobRunner, f"step_{name}")))
    pending: dict[str, Any] = {}
    claim = station_worker.claim_next_job

    def timed_claim(*args: Any, **kwargs: Any) -> Any:
        before, start = meter.snapshot(), time.perf_counter()
        result = claim(*args, **kwargs)
        if result is not None:  # the idle worker's last look is no job's
            pending.update(before=before, start=start)
            record.claims.append(time.perf_counter() - start)
        return result

    patch(station_worker, "claim_next_job", timed_claim)
    run = JobRunner.run

    def timed_run(self: JobRunner, job_id: int, **kwargs: Any) -> Any:
        try:
            return run(self, job_id, **kwargs)
        finally:
            wall = time.perf_counter() - pending["start"]
            record.jobs.append(Split(wall, delta(pending["before"], meter.snapshot())))

    patch(JobRunner, "run", timed_run)
    try:
        yield
    finally:
        for owner, name, original in reversed(patches):
            setattr(owner, name, original)


class PerCallReader:
    """The contact reader as the runner used it before issue 14: every wait and connection
    on a PC/SC context of its own (established, readers listed, released) — the old code
    path, kept callable here to be measured in the same run."""

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def wait_for_card(self, timeout: float = 10.0) -> bytes:
        return apdu.pcsc.wait_for_card(self.spec, timeout)

    def wait_for_removal(self, timeout: float = 10.0) -> None:
        apdu.pcsc.wait_for_removal(self.spec, timeout)

    def connect(self) -> PcscTransport:
        transport = PcscTransport(self.spec)
        transport.connect()
        return transport

    def __enter__(self) -> PerCallReader:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def run_worker(
    campaign: Campaign, *, before: bool = False, profile: cProfile.Profile | None = None
) -> Record:
    """``station run --idle-exit`` in this process, instrumented, its lines kept quiet;
    ``before``: as before issue 14 — a PC/SC context per wait and connection, and the
    proof's font loaded by the first job instead of at start."""
    meter, record = Meter(), Record()
    config = StationConfig.load(campaign.station_files[0])
    lines: list[str] = []
    saved = {name: getattr(station_worker, name) for name in ("PcscReader", "register_pdf_font")}

    def register_timed() -> None:
        known = pdfmetrics.getRegisteredFontNames()
        start = time.thread_time()
        saved["register_pdf_font"]()
        if PDF_FONT not in known:  # registered now, not by an earlier run in this process
            record.font_cpu.append(time.thread_time() - start)

    patches: dict[str, Any] = {"register_pdf_font": register_timed}
    if before:
        patches = {"PcscReader": PerCallReader, "register_pdf_font": lambda: None}
    for name, value in patches.items():
        setattr(station_worker, name, value)
    try:
        with instrumented(meter, record):
            if profile is not None:
                profile.enable()
            try:
                status = run_station(config, "op", WorkerOptions(idle_exit=True), lines.append)
            finally:
                if profile is not None:
                    profile.disable()
    finally:
        for name, value in saved.items():
            setattr(station_worker, name, value)
    if status != 0:
        raise SystemExit("\n".join(lines))
    return record


def run_processes(campaign: Campaign, jobs: list[int]) -> list[float]:
    """Each job as its own ``sscard job run`` process (the old way): wall per job."""
    walls = []
    for job_id in jobs:
        start = time.perf_counter()
        done = subprocess.run(
            job_run_argv(job_id, campaign.station_files[0]),
            capture_output=True,
            text=True,
            env={**os.environ, **campaign.session},
            timeout=180,
        )
        walls.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"job run {job_id} failed:\n{done.stdout}\n{done.stderr}")
    return walls


def ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def report(record: Record) -> None:
    """Today's worker: medians per job, then by step."""
    jobs = record.jobs
    print(f"the worker today: {len(jobs)} jobs, medians per job")
    print(f"  wall                      {ms([j.wall for j in jobs]):7.1f} ms")
    for device in DEVICES:
        print(f"  {device + ' (device)':<25} {ms([j.inside[device] for j in jobs]):7.1f} ms")
    print(f"  software                  {ms([j.software for j in jobs]):7.1f} ms  (target ≤ 150)")
    print(f"    its CPU (worker thread) {ms([j.software_cpu for j in jobs]):7.1f} ms")
    print(f"    security module         {ms([j.inside['hsm'] for j in jobs]):7.1f} ms")
    print(
        f"    durable writes          {ms([j.inside['durable'] for j in jobs]):7.1f} ms"
        "  (COMMIT and the audit checkpoint, fsynced)"
    )
    print(f"    PC/SC context set-up    {ms([j.inside['setup'] for j in jobs]):7.1f} ms")
    feeds = record.steps.get("feed", [])
    if feeds:
        print(
            f"  feed: the card's arrival waited {ms([f.inside['arrival'] for f in feeds]):.1f} ms"
            f", the last card's removal {ms([f.inside['removal'] for f in feeds]):.1f} ms"
            " (pcscd polls vpcd every ~400 ms)"
        )
    print("by step, median ms:  wall  printer   card  software  (CPU)  module")
    print(f"  {'claim':<16} {ms(record.claims):7.1f}")
    for name in STEPS:
        splits = record.steps.get(name, [])
        if splits:
            print(
                f"  {name:<16} {ms([s.wall for s in splits]):7.1f} "
                f"{ms([s.inside['printer'] for s in splits]):7.1f} "
                f"{ms([s.inside['card'] for s in splits]):7.1f} "
                f"{ms([s.software for s in splits]):8.1f} "
                f"{ms([s.software_cpu for s in splits]):7.1f} "
                f"{ms([s.inside['hsm'] for s in splits]):7.1f}"
            )
    outside = [
        j.software - sum(s[i].software for s in record.steps.values() if len(s) == len(jobs))
        for i, j in enumerate(jobs)
    ]
    print(
        f"  {'between steps':<16} {ms(outside) - ms(record.claims):7.1f}  "
        "(job and step reads, fence checks, finish)"
    )


def compare(old: Record, new: Record, processes: list[float]) -> None:
    """Before issue 14 → today, in this run."""

    def row(label: str, before: float, after: float, unit: str = "ms") -> None:
        ratio = f"{before / after:6.2f}x" if after else ""
        print(f"  {label:<34} {before:8.1f} → {after:8.1f} {unit:<4} {ratio}")

    print("before → today (same run; medians per job):")
    for label, of in (
        ("wall", lambda j: j.wall * 1000),
        ("software", lambda j: j.software * 1000),
        ("software CPU", lambda j: j.software_cpu * 1000),
    ):
        row(label, statistics.median(map(of, old.jobs)), statistics.median(map(of, new.jobs)))
    row(
        "PC/SC context set-up",
        statistics.median(j.inside["setup"] * 1000 for j in old.jobs),
        statistics.median(j.inside["setup"] * 1000 for j in new.jobs),
    )
    row(
        "PC/SC contexts established",
        statistics.median(j.inside["contexts"] for j in old.jobs),
        statistics.median(j.inside["contexts"] for j in new.jobs),
        "",
    )
    if new.font_cpu:
        print(
            f"  the proof's font, registered at the worker's start: {new.font_cpu[0] * 1000:.1f}"
            " ms of CPU (before: in the first job)"
        )
    if processes:
        row(
            f"one 'sscard job run' per job ({len(processes)}), wall",
            ms(processes),
            ms([j.wall for j in new.jobs]),
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20, help="jobs run by each worker [20]")
    parser.add_argument(
        "--processes", type=int, default=5, help="jobs run as 'sscard job run' processes [5]"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="the jobs in rounds, today's worker and the old ways alternating, so that a "
        "change in the machine's load meets both [4]",
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="N more jobs under cProfile [0]"
    )
    args = parser.parse_args()
    total = args.processes + 2 * args.jobs + args.profile
    with (
        tempfile.TemporaryDirectory() as tmp,
        Campaign(Path(tmp), jobs=total, stations=1) as campaign,
    ):
        numbers = iter(range(1, total + 1))

        def submit(count: int) -> list[int]:
            return [campaign.submit(next(numbers))[0] for _ in range(count)]

        def share(count: int, index: int) -> int:  # round index's part of count
            return int(count // args.rounds + (index < count % args.rounds))

        before, today, processes = Record(), Record(), []
        for index in range(args.rounds):
            # today first in the first round: its start registers the font (timed)
            for mode in ("today", "before") if index % 2 == 0 else ("before", "today"):
                if submit(share(args.jobs, index)):
                    record = run_worker(campaign, before=mode == "before")
                    (before if mode == "before" else today).extend(record)
            processes += run_processes(campaign, submit(share(args.processes, index)))
        print(f"load average (1, 5, 15 min): {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        report(today)
        compare(before, today, processes)
        if args.profile:
            submit(args.profile)
            profile = cProfile.Profile()
            run_worker(campaign, profile=profile)
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(40)
            print(f"cProfile of {args.profile} jobs in the worker today (own time):")
            print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
