"""``sscard station run``: a station that pulls its own work (issue 13, Deliver 5;
docs/service.md "Stations that pull work").

The worker opens its registry, security module, track key, printer and contact reader once
and loads the face proof's font (kept warm for every job: issue 14), then repeats: claim the
next job it can do (``claim_next_job``: one write transaction, ordered by an index), run it
with the :class:`JobRunner` under the claim's fencing token, and go on. While a step runs,
a heartbeat thread with its own registry connection renews the job's lease
(``jobs.lease_until``, ``jobs.heartbeat_at``, ``jobs.station``; an audited ``job.heartbeat``
event), so a station that stops heartbeating — killed, frozen, cut off — loses the job
once the lease expires, and another station claims it and resumes from the last verified
step; the fencing of :mod:`personalize.jobs` makes the old holder record nothing more.

SIGTERM or SIGINT: the current step is finished, the lease released (the job stays
``running`` with an expired lease: resumable by any station, not failed) and the worker
exits 0. A second signal aborts at once (the job is paused, as any interrupted run).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from types import FrameType

from apdu.pcsc import PcscReader
from personalize.job_store import EXPIRED_QUERY, OWN_QUERY, QUEUED_QUERY
from personalize.jobs import (
    JobError,
    JobPaused,
    JobRunner,
    JobStopped,
    Progress,
    StationDevices,
    unsettled_print,
)
from personalize.lifecycle import JobStatus
from personalize.policy import load_policy
from personalize.registry import LeaseLost, Registry, RegistryError, _iso
from personalize.station import StationConfig
from personalize.trackvault import TrackVault
from printer.evolis import EvolisPrinter
from printer.face import register_pdf_font
from sscard.profile import load_profile

log = logging.getLogger(__name__)

# The claim's row lock (``Database.lock_skipping``): none on SQLite, whose
# ``Registry.transaction`` is BEGIN IMMEDIATE and holds the write lock from the first read;
# ``FOR UPDATE OF j SKIP LOCKED`` on PostgreSQL. There every registry write transaction also
# takes the writers' advisory lock (the audit chain stays one chain), so claims are
# serialized by it today; the row locks keep a claim correct on their own should that lock
# ever be narrowed to the audit seal.
CLAIM_CANDIDATES = 8  # rows looked at per claim (only a bound print can make one unfit)

# First the station's own running jobs, left by a previous process of it (a crash: its
# printer may hold a begun print, settled only from a print count no other job has moved
# yet); then jobs whose holder stopped heartbeating; then the queue in submission order
# (the queries and their indexes: personalize.job_store).


@dataclass(frozen=True)
class Claim:
    job_id: int
    fence: int  # the token every write of this run carries (Registry.check_fence)


def claim_next_job(
    registry: Registry,
    station: str,
    *,
    region: str,
    printer: str,
    lease: timedelta,
    operator: str,
) -> Claim | None:
    """Claim the next job ``station`` can do, in one write transaction: a running job it
    holds itself (left by a previous process of this station: one worker per station), else
    a running job whose lease has expired (oldest lease first), else the oldest queued job —
    of the station's ``region``, and not one whose card has a begun, unsettled print on
    another printer than ``printer`` (only that printer can settle it). Paused jobs wait
    for an operator (``job run``). None when there is nothing to do."""
    now = registry.clock()
    with registry.transaction():
        for status, query, params in (
            (JobStatus.RUNNING, OWN_QUERY, (station,)),
            (JobStatus.RUNNING, EXPIRED_QUERY, (_iso(now),)),
            (JobStatus.QUEUED, QUEUED_QUERY, ()),
        ):
            candidates = registry.jobs.claimable(
                query, (str(status), region, *params, CLAIM_CANDIDATES)
            )
            for job in candidates:
                intent = unsettled_print(registry, job)
                if intent is not None and intent["printer"] != printer:
                    continue
                target = str(registry.rule("job", job.status, "claim").target)
                job_id = job.id
                fence = registry.claim(job_id, station, until=now + lease, target=target)
                registry.jobs.heartbeat(job_id, now=_iso(now))
                registry.audit(
                    operator,
                    "job.claim",
                    f"job-{job_id}",
                    {"station": station, "from": job.status, "fence": fence},
                )
                return Claim(job_id, fence)
    return None


def release_job(registry: Registry, claim: Claim, *, station: str, operator: str) -> None:
    """Give the job back (a station told to stop): still ``running``, its lease expired
    now, so any station may claim and resume it; ``LeaseLost`` when the token is no longer
    the job's (another station has it)."""
    now = _iso(registry.clock())
    with registry.transaction():
        registry.check_fence(claim.job_id, claim.fence)
        registry.jobs.release(claim.job_id, now=now)
        registry.audit(operator, "job.release", f"job-{claim.job_id}", {"station": station})


def renew_lease(
    registry: Registry, claim: Claim, *, station: str, operator: str, lease: timedelta
) -> None:
    """One heartbeat: the job's lease until now + ``lease``, the time and station
    recorded, if ``claim`` still holds the job (else ``LeaseLost``)."""
    now = registry.clock()
    with registry.transaction():
        registry.check_fence(claim.job_id, claim.fence)
        registry.jobs.heartbeat(claim.job_id, now=_iso(now), lease_until=_iso(now + lease))
        registry.audit(operator, "job.heartbeat", f"job-{claim.job_id}", {"station": station})


class Heartbeat(threading.Thread):
    """Renews the lease of the job being run every third of the lease, from its own
    registry connection (a SQLite connection belongs to the thread that opened it)."""

    def __init__(
        self,
        open_registry: Callable[[], Registry],
        *,
        station: str,
        operator: str,
        lease: timedelta,
    ) -> None:
        super().__init__(name=f"heartbeat-{station}", daemon=True)
        self.open_registry = open_registry
        self.station = station
        self.operator = operator
        self.lease = lease
        self.claim: Claim | None = None
        self._done = threading.Event()

    @contextmanager
    def watching(self, claim: Claim) -> Iterator[None]:
        self.claim = claim
        try:
            yield
        finally:
            self.claim = None

    def run(self) -> None:
        registry = self.open_registry()
        try:
            while not self._done.wait(self.lease.total_seconds() / 3):
                claim = self.claim
                if claim is None:
                    continue
                try:
                    renew_lease(
                        registry,
                        claim,
                        station=self.station,
                        operator=self.operator,
                        lease=self.lease,
                    )
                except LeaseLost:
                    self.claim = None  # the runner finds out at its next write
                except RegistryError as exc:  # busy: the next beat tries again
                    log.warning("heartbeat of job %s: %s", claim.job_id, exc)
        finally:
            registry.close()

    def stop(self) -> None:
        self._done.set()
        self.join()


class StopSignals:
    """SIGTERM/SIGINT: the first asks the worker to stop after the current step, a second
    aborts (``KeyboardInterrupt``)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.requested = threading.Event()

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested.is_set():
            raise KeyboardInterrupt
        self.requested.set()
        self.progress(
            f"收到 {signal.Signals(signum).name}：完成当前步骤后停止，再次发送则立即中止 "
            "(stopping after the current step; a second signal aborts)"
        )


@dataclass(frozen=True)
class WorkerOptions:
    once: bool = False  # stop after one job
    idle_exit: bool = False  # stop when no job can be claimed
    poll: float = 2.0  # seconds between claims when idle


def run_station(
    config: StationConfig, operator: str, options: WorkerOptions, progress: Progress
) -> int:
    """The worker loop (module docstring). Exit status 0 when told to stop or done as
    asked; 1 when a device fault paused a job (the station needs its operator)."""
    if config.printer is None or config.contact_reader is None:
        raise ValueError(
            f"工作站 {config.name} 没有打印机和接触式读卡器 (not a card center station)"
        )
    signals = StopSignals(progress)
    signals.install()
    policy = load_policy(config.policy)
    with ExitStack() as stack:
        registry = config.open_registry(policy)
        stack.callback(registry.close)
        hsm = config.security_module()
        stack.callback(hsm.close)
        printer = stack.enter_context(EvolisPrinter(config.printer))
        devices = StationDevices(
            printer,
            stack.enter_context(PcscReader(config.contact_reader)),
            hsm,
            TrackVault.from_file(config.track_key),
            config.out_dir,
            config.name,
        )
        runner = JobRunner(
            registry,
            policy,
            load_profile(policy.profile),
            devices,
            operator=operator,
            progress=progress,
            lease=config.lease,
            stop_requested=signals.requested.is_set,
        )
        heartbeat = Heartbeat(
            lambda: config.open_registry(policy),
            station=config.name,
            operator=operator,
            lease=config.lease,
        )
        heartbeat.start()
        stack.callback(heartbeat.stop)
        serial = printer.serial_number()
        register_pdf_font()  # the face proof's font, before the first job, not in it
        progress(f"工位 {config.name} 开始接单 (station {config.name} pulling jobs)")
        while not signals.requested.is_set():
            claim = claim_next_job(
                registry,
                config.name,
                region=policy.region_code,
                printer=serial,
                lease=config.lease,
                operator=operator,
            )
            if claim is None:
                if options.idle_exit:
                    break
                signals.requested.wait(options.poll)
                continue
            progress(f"作业 {claim.job_id} (job {claim.job_id}, token {claim.fence})")
            try:
                with heartbeat.watching(claim):
                    runner.run(claim.job_id, fence=claim.fence)
                progress(f"作业 {claim.job_id} 完成 (job done)")
            except JobStopped:
                try:
                    release_job(registry, claim, station=config.name, operator=operator)
                    progress(f"作业 {claim.job_id} 已释放，可续做 (job released, resumable)")
                except LeaseLost as exc:  # taken over meanwhile: nothing of it to release
                    progress(f"作业 {claim.job_id}: {exc}")
            except JobPaused as exc:
                progress(f"作业 {claim.job_id}: {exc}")
                return 1
            except (LeaseLost, JobError) as exc:  # taken over, failed, or refused: go on
                progress(f"作业 {claim.job_id}: {exc}")
            if options.once:
                break
    progress(f"工位 {config.name} 已停止 (station stopped)")
    return 0
