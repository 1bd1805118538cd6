"""What the card center's pages show (issue 16, Deliver 4; docs/console.md "Card center"),
read from the jobs store (``registry.jobs``: ``page``, ``latest``, ``summary``, ``steps``,
``stations``, ``written_off``) — no SQL here, no device opened: a station's devices are
known only by what its jobs recorded.

A paused job shows its reason and the recovery the operator must do: the reason is what
the runner recorded (``JobRunner.run``: ``<error class>: <message>``), the recovery is that
error's recovery class (``printer.errors.Recovery``: operator action, reset, or card
position unknown), said in Chinese."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from apdu import errors as apdu_errors
from hsm_stub.errors import SecurityModuleUnavailable
from personalize.job_store import JobStep, JobSummary, StationSeen, StepResult, WrittenOff
from personalize.jobs import STEPS
from personalize.lifecycle import JobStatus
from personalize.registry import Registry, _iso, mask_id
from personalize.service_commands import JOB_STATUS_NAMES, mask_name
from personalize.stock import STEP_LABELS
from printer.errors import DeviceError, DeviceGone, DeviceProtocolError, DeviceTimeout, Recovery
from printer.evolis import NACK_CODES, PrinterError

QUEUE_LIMIT = 50  # jobs listed per live status; "more" is said when there are more
RECENT = 10  # finished jobs listed per status, newest first

STEP_NAMES = {**STEP_LABELS, "card": "废卡"}  # a job's steps, and its write-off records
RESULT_NAMES = {
    StepResult.OK: "完成",
    StepResult.INTENT: "已开始",
    StepResult.REJECTED: "进废卡箱",
    StepResult.LOST: "卡片丢失",
}

# The operator's next move by recovery class (printer/errors.py, docs/devices.md §2).
RECOVERY_TEXT: dict[Recovery, str] = {
    "operator": "请按原因处理设备（装好色带、关上机盖、补充空白卡、取出卡住的卡、清空出卡箱等）",
    "reset": "请先重置设备（复位或断电重启打印机）",
    "unknown": "卡片位置或介质状态不明：请先检查打印机内的卡片，取出的卡放入废卡箱",
    "none": "无需处理设备",
}


def _error_classes() -> dict[str, tuple[str, Recovery]]:
    """Each device error class name the runner can record → (the device, its recovery
    class): the printer's by its NACK codes (``evolis.error_for``), the serial line's by
    class, the reader's and the security module's as the runner classes them
    (``operator``)."""
    table: dict[str, tuple[str, Recovery]] = {
        cls.__name__: ("打印机", recovery) for cls, recovery, _ in NACK_CODES.values()
    }
    table[PrinterError.__name__] = ("打印机", "reset")  # an unknown NACK code
    serial: tuple[type[DeviceError], ...] = (
        DeviceError,
        DeviceTimeout,
        DeviceProtocolError,
        DeviceGone,
    )
    for device_error in serial:
        table[device_error.__name__] = ("设备串口", device_error.recovery)
    readers: list[type[Exception]] = [
        apdu_errors.TransportError,
        *apdu_errors.TransportError.__subclasses__(),
    ]
    table.update({cls.__name__: ("接触式读卡器", "operator") for cls in readers})
    table[SecurityModuleUnavailable.__name__] = ("安全模块", "operator")
    return table


ERROR_CLASSES = _error_classes()


@dataclass(frozen=True)
class Pause:
    """Why a job waits, and what the operator must do before resuming it."""

    reason: str
    device: str | None
    recovery: str


def pause_of(reason: str | None, station: str | None) -> Pause:
    """The recovery of a paused job's recorded ``reason``."""
    text = reason or "未记录原因 (no reason recorded)"
    device, recovery = ERROR_CLASSES.get(text.partition(":")[0].strip(), (None, None))
    first = "请查明原因并处理" if recovery is None else RECOVERY_TEXT[recovery]
    where = f"工位 {station}" if station else "工位"
    return Pause(
        text,
        device,
        f"{first}；然后点「恢复执行」，作业交还{where}，由其 sscard station run 续做"
        "（设备故障时该进程已退出，须重新启动）。",
    )


@dataclass(frozen=True)
class JobRow:
    """One job as the card center reads it (the holder masked, as ``sscard job list``)."""

    id: int
    status: JobStatus
    status_name: str
    step: str  # the step under way (running), or the last recorded
    holder: str
    ssn: str
    old_card: str
    new_card: str
    station: str | None
    attempts: int
    updated: str
    heartbeat: str
    lease: str  # for a running job: held until …, or run out (waiting for a station)
    pause: Pause | None
    error: str | None


class Clock:
    """Stored UTC instants as the region's wall-clock time (the policy's zone)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.now = _iso(registry.clock())

    def local(self, instant: str | None) -> str:
        if instant is None:
            return "-"
        moment = self.registry.policy.local_time(datetime.fromisoformat(instant))
        return moment.strftime("%Y-%m-%d %H:%M:%S")


def current_step(status: JobStatus, step: str | None) -> str:
    """The step a running job is at (the one after its last recorded), or the last one."""
    if status != JobStatus.RUNNING:
        return STEP_NAMES.get(step or "", "-") if step else "-"
    following = STEPS[STEPS.index(step) + 1 :] if step in STEPS else STEPS
    if not following:
        return "完成收尾"
    return f"{STEPS.index(following[0]) + 1}/{len(STEPS)} {STEP_NAMES[following[0]]}"


def job_row(summary: JobSummary, clock: Clock) -> JobRow:
    job = summary.job
    lease = "-"
    if job.status == JobStatus.RUNNING:
        if job.lease_until and job.lease_until > clock.now:
            lease = f"租约至 {clock.local(job.lease_until)}"
        else:
            lease = "租约已到期，待工位续做"
    return JobRow(
        id=job.id,
        status=job.status,
        status_name=JOB_STATUS_NAMES[job.status],
        step=current_step(job.status, job.step),
        holder=mask_name(summary.holder_name),
        ssn=mask_id(summary.holder_ssn),
        old_card=summary.old_card_number,
        new_card=summary.new_card_number or "-",
        station=job.station,
        attempts=job.attempts,
        updated=clock.local(job.updated_at),
        heartbeat=clock.local(job.heartbeat_at),
        lease=lease,
        pause=pause_of(job.last_error, job.station) if job.status == JobStatus.PAUSED else None,
        error=job.last_error,
    )


@dataclass(frozen=True)
class StationQueue:
    """The jobs a station holds (running or paused)."""

    station: str
    jobs: list[JobRow]


@dataclass(frozen=True)
class Queue:
    waiting: list[JobRow]  # queued: no station yet
    stations: list[StationQueue]
    finished: list[JobRow]  # the newest done, failed and cancelled
    more: list[str]  # the statuses with more jobs than listed
    at: str


def _page(registry: Registry, status: JobStatus, more: list[str]) -> list[JobSummary]:
    page = registry.jobs.page(status=status, limit=QUEUE_LIMIT + 1)
    if len(page) > QUEUE_LIMIT:
        more.append(JOB_STATUS_NAMES[status])
    return page[:QUEUE_LIMIT]


def queue(registry: Registry) -> Queue:
    """The queue by station: waiting jobs, each station's running and paused jobs, and the
    newest finished ones."""
    clock = Clock(registry)
    more: list[str] = []
    waiting = [job_row(s, clock) for s in _page(registry, JobStatus.QUEUED, more)]
    held = [
        job_row(s, clock)
        for status in (JobStatus.RUNNING, JobStatus.PAUSED)
        for s in _page(registry, status, more)
    ]
    by_station: dict[str, list[JobRow]] = {}
    for row in sorted(held, key=lambda r: r.id):
        by_station.setdefault(row.station or "-", []).append(row)
    finished = sorted(
        (
            job_row(s, clock)
            for status in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)
            for s in registry.jobs.latest(status, limit=RECENT)
        ),
        key=lambda r: r.id,
        reverse=True,
    )
    return Queue(
        waiting,
        [StationQueue(name, rows) for name, rows in sorted(by_station.items())],
        finished,
        more,
        clock.local(clock.now),
    )


@dataclass(frozen=True)
class StepRow:
    at: str
    step: str
    result: str
    bad: bool
    sn: str
    details: str


def step_rows(steps: list[JobStep], clock: Clock) -> list[StepRow]:
    """A job's step log (``job_steps``), oldest first."""
    return [
        StepRow(
            clock.local(s.at),
            STEP_NAMES.get(s.step, s.step),
            RESULT_NAMES[s.result],
            s.result in (StepResult.REJECTED, StepResult.LOST),
            s.sn or "-",
            "，".join(f"{k}={v}" for k, v in s.details.items()),
        )
        for s in steps
    ]


@dataclass(frozen=True)
class StationRow:
    """A station seen by the registry, what it holds now and its last known device fault."""

    name: str
    state: str
    jobs: list[JobRow]  # running or paused at this station
    last_heartbeat: str
    last_change: str
    jobs_total: int
    fault: Pause | None


def _station_state(rows: list[JobRow]) -> str:
    if any(r.pause for r in rows):
        return "暂停，待操作员处理"
    if any(r.lease.startswith("租约至") for r in rows):
        return "制卡中"
    if rows:
        return "租约已到期，待工位续做（工位已停止或失联？）"
    return "空闲"


def stations(registry: Registry) -> list[StationRow]:
    """Every station that has held a job, with its running and paused jobs."""
    clock = Clock(registry)
    held: dict[str, list[JobRow]] = {}
    for status in (JobStatus.RUNNING, JobStatus.PAUSED):
        for s in registry.jobs.page(status=status, limit=QUEUE_LIMIT):
            row = job_row(s, clock)
            held.setdefault(row.station or "-", []).append(row)
    seen: list[StationSeen] = registry.jobs.stations()
    return [
        StationRow(
            name=st.name,
            state=_station_state(held.get(st.name, [])),
            jobs=held.get(st.name, []),
            last_heartbeat=clock.local(st.last_heartbeat),
            last_change=clock.local(st.last_change),
            jobs_total=st.jobs,
            fault=next((r.pause for r in held.get(st.name, []) if r.pause), None),
        )
        for st in seen
    ]


@dataclass(frozen=True)
class RejectRow:
    job_id: int
    station: str
    sn: str
    kind: str
    reason: str
    at: str


def rejects(registry: Registry, limit: int = 100) -> list[RejectRow]:
    """The reject bin: cards written off by jobs, newest first, with their reasons."""
    clock = Clock(registry)
    found: list[WrittenOff] = registry.jobs.written_off(limit=limit)
    return [
        RejectRow(
            w.job_id,
            w.station or "-",
            w.sn or "-",
            RESULT_NAMES[w.result],
            w.reason,
            clock.local(w.at),
        )
        for w in found
    ]
