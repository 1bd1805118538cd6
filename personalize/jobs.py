"""Personalization jobs with checkpoints (docs/architecture.md "How a reissued card flows").

A reissue job runs these steps; each records its result before the next begins:

    feed → chip_write → chip_verify → encode_stripe → stripe_verify → print_face → activate

(magnetic encoding comes before printing because the Evolis print sequence ends with ``Se``,
which prints *and ejects* — guide p. 69 — so the stripe is written while the card is still
in the printer). A job resumes from the last **verified** step, never from the last step
sent: a recorded ``chip_write`` without ``chip_verify`` is written again.

Which card is there is proven before every step that touches it: the printer's card
position (``Rlr;p``; a card moved on to the print position is brought back with ``Sis``)
and the chip SN read at the contact station must be the job's; otherwise the job's card is
written off as lost and the job goes on with a new card. A card that fails verification goes
to the reject bin (three rejected cards at most per job). A write-off releases the card in the
registry (废卡: number never reused, SN blacklisted) and any card the registry has seen that
is still in the printer goes to the reject bin before the next feed — a leftover is never
taken as a blank.

Steps that can be repeated on the same card (chip write, stripe) are simply repeated. The
print is not: it is recorded as begun (``intent``, with the printer's serial number and its
print count ``Rco;p``) before ``Se`` is sent, and a print begun without a recorded outcome is
settled from the printer's own evidence, never by printing again — count up by one and the
card gone: printed and ejected; otherwise the card in doubt is written off (reject bin, SN
blacklisted, number released) and a new card is made for the same request.

Running takes a lease with a fencing token (each claim increments it): every write of the
job — step records, card updates, write-offs, activation — checks the token in its own
transaction, and the runner checks it before every device action, so a station that lost
its lease records nothing and stops (``LeaseLost``). The registry activates a card only when
the job's records show it fed, written, verified, encoded, stripe-verified and printed in
this job (``Registry.activate``).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image

from apdu.errors import CardMute, CardRemoved, NoCard, TransportError
from apdu.pcsc import PcscReader, PcscTransport
from hsm_stub.errors import SecurityModuleUnavailable
from hsm_stub.module import SecurityModule
from personalize.fees import settled_or_free
from personalize.job_store import Job, StepResult
from personalize.jobpaths import JobPathError, confined_file
from personalize.lifecycle import JOB_STATUS_LABELS, CardStatus, JobStatus, RequestStatus
from personalize.policy import RegionPolicy
from personalize.registry import LeaseLost, Registry, RegistryError, _iso, request_number
from personalize.stock import MoveKind, ended_job_reason, write_off_reason
from personalize.trackvault import TrackVault
from printer.errors import DeviceError
from printer.evolis import EvolisPrinter
from printer.face import CardFace, FaceError, build_panels, check_face_fits, render_pdf
from printer.tracks import validate as validate_track
from sscard.card import SocialSecurityCard
from sscard.errors import InvalidData, SocialSecurityCardError, VerificationFailed
from sscard.identifiers import build_card_id, serial_number
from sscard.profile import CardProfile
from sscard.records import EF05, HolderData, IssuerData

STEPS = (
    "feed",
    "chip_write",
    "chip_verify",
    "encode_stripe",
    "stripe_verify",
    "print_face",
    "activate",
)
MAX_ATTEMPTS = 3
LEASE = timedelta(minutes=10)
CARD_WAIT = 15.0  # seconds for a chip to answer at the contact station (pcscd polls ~400 ms)

Progress = Callable[[str], None]
AfterStep = Callable[[str], None]  # told each step's name once its ``ok`` is recorded


class JobError(Exception):
    """A job cannot be submitted or run as asked."""


class JobFailed(JobError):
    """The job gave up (too many cards written off)."""


class JobPaused(JobError):
    """A device, the reader or the security module failed; the job waits to be run again."""


class JobStopped(JobError):
    """The station was told to stop (SIGTERM): the last step is recorded, the job is still
    running under this runner's token and is to be released (``release_job``)."""


class CardRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CardLost(Exception):
    """The card at the contact station is not (or no longer) the job's card."""


# --------------------------------------------------------------------- submission


def _holder(d: dict[str, Any]) -> HolderData:
    """The job's holder, read field by field (:meth:`HolderData.from_mapping`)."""
    try:
        return HolderData.from_mapping(d)
    except InvalidData as exc:
        raise JobError(f"持卡人信息：{exc}") from None


def check_photo(photo: bytes, profile: CardProfile) -> None:
    if len(photo) > profile.photo_size:
        raise JobError(
            f"照片 {len(photo)} 字节，超过 {profile.photo_size} 字节上限 (photo too large)"
        )
    try:
        with Image.open(io.BytesIO(photo)) as img:
            kind = img.format
            img.verify()
    except Exception:
        raise JobError("照片无法读取，须为 JPEG (the photo is not a readable JPEG)") from None
    if kind != "JPEG":
        raise JobError(f"照片须为 JPEG，实为 {kind} (the photo must be a JPEG)")


def submit_job(
    registry: Registry,
    profile: CardProfile,
    vault: TrackVault,
    submission: dict[str, Any],
    *,
    base_dir: Path,
    operator: str,
) -> int:
    """Validate everything up front; write the job only when all of it is good."""
    holder = _holder(submission.get("holder") or {})
    try:
        holder.validate(today=registry.policy.local_date(registry.clock()))
    except InvalidData as exc:
        raise JobError(str(exc)) from None
    try:  # the card face must show the whole name: refuse now, before anything is written
        check_face_fits(holder.name, registry.policy.authority, profile.face)
    except FaceError as exc:
        raise JobError(str(exc)) from None
    photo_field = submission.get("photo")
    if not isinstance(photo_field, str):
        raise JobError("photo: a JPEG file path (relative to the job file) or base64: data")
    if photo_field.startswith("base64:"):
        try:
            photo = base64.b64decode(photo_field[7:], validate=True)
        except ValueError:
            raise JobError("photo: invalid base64") from None
    else:
        try:
            path = confined_file(base_dir, photo_field, field="photo", label="照片")
        except JobPathError as exc:
            raise JobError(str(exc)) from None
        photo = path.read_bytes()
    check_photo(photo, profile)
    tracks = {int(n): str(v) for n, v in (submission.get("tracks") or {}).items()}
    for n, data in tracks.items():
        if n not in (1, 2, 3):
            raise JobError(f"track {n}: tracks are 1, 2, 3")
        try:
            validate_track(n, data)
        except ValueError as exc:
            raise JobError(f"磁道 {n} 数据无效 (track {n} invalid): {exc}") from None
    old_number = str(submission.get("old_card_number", ""))
    now = _iso(registry.clock())
    # One write transaction from the checks to the insert: of two stations submitting for
    # one request, the second sees the first's job and is refused (docs/service.md
    # "Concurrency"); the one_live_job_per_request index says it again.
    with registry.transaction():
        try:
            old = registry.card_for_update(old_number)
        except RegistryError as exc:
            raise JobError(str(exc)) from None
        request = registry.open_request(old.id)
        if request is not None and registry.identity_change(request.id) is not None:
            # 换领: the new card carries the changed name and ID number, nothing else
            new = registry.holder_of(request)
            if (holder.ssn, holder.name) != (new.ssn, new.name):
                raise JobError(
                    "换领的新卡须载明变更后的姓名和身份证号码 (a 换领's new card carries the "
                    "new name and ID number of the change certificate)"
                )
        elif registry.person(old.person_id).ssn != holder.ssn:
            raise JobError("原卡不属于该持卡人 (the old card belongs to someone else)")
        if old.status not in (CardStatus.REISSUE_PENDING, CardStatus.REPLACEMENT_PENDING):
            raise JobError(
                f"原卡 {old_number} 状态为 {old.status}：须先正式挂失并申请补卡，或验卡后申请换卡 "
                "(the old card must be formally lost with a reissue request, or have a "
                "replacement request)"
            )
        if request is None:
            live = registry.jobs.live_for_card(old.id)
            hint = (
                ""
                if live is None
                else f"：作业 {live.id} 仍为 {live.status}，须先执行完或取消 "
                f"(job {live.id} is {live.status}: run or cancel it first)"
            )
            raise JobError(f"没有待制卡的补/换卡申请 (no open reissue request for that card){hint}")
        if registry.policy.fee_settle_before_job and not settled_or_free(registry, request):
            raise JobError(
                f"申请 {request_number(request.id)} 的工本费 {request.fee} 元未收：须先收费或免收 "
                "(the fee is not settled: pay or waive it first, policy fees.settle_before_job)"
            )
        job_id = registry.jobs.insert(
            request_id=request.id,
            person_id=old.person_id,
            old_card_id=old.id,
            holder=json.dumps(
                {**asdict(holder), "birth_date": holder.birth_date.isoformat(), "extra": None},
                ensure_ascii=False,
            ),
            status=str(registry.rule("job", None, "submit").target),
            operator=operator,
            now=now,
            photo=photo,
        )
        if tracks:
            registry.jobs.set_tracks(job_id, vault.seal(tracks, f"job-{job_id}"))
        registry.attach_job(request.id, job_id)
        registry._move_request(request.id, "submit", operator, job=job_id)
        registry.audit(
            operator,
            "job.submit",
            f"job-{job_id}",
            {"request": request.id, "old_card": old_number, "tracks": sorted(tracks)},
        )
    return job_id


# --------------------------------------------------------------------- running


@dataclass(frozen=True)
class StationDevices:
    printer: EvolisPrinter
    contact_reader: PcscReader  # kept open by the station: one PC/SC context for every job
    hsm: SecurityModule
    vault: TrackVault
    out_dir: Path
    name: str


def next_step(done: set[str]) -> str | None:
    """Where a job resumes: after the last *verified* step of its current card."""
    if "feed" not in done:
        return "feed"
    if "chip_verify" not in done:
        return "chip_write"  # a write that was not verified is done again
    if "stripe_verify" not in done:
        return "encode_stripe"
    if "print_face" not in done:
        return "print_face"
    if "activate" not in done:
        return "activate"
    return None


def step_time(moment: datetime) -> str:
    """A step's start or end (``job_steps.started_at``/``ended_at``): ISO 8601 UTC to the
    millisecond, so that steps of a fraction of a second get a duration."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def find_job(registry: Registry, job_id: int) -> Job:
    """The job, or ``JobError`` when there is none."""
    job = registry.jobs.get(job_id)
    if job is None:
        raise JobError(f"没有作业 {job_id} (no job {job_id})")
    return job


def unsettled_print(registry: Registry, job: Job) -> dict[str, Any] | None:
    """The job card's print that was begun (``Se`` may have been sent) and has no recorded
    outcome: its details (the printer and its count before), or None. Only that printer can
    settle it (``JobRunner._settle_print``)."""
    if job.sn is None:
        return None
    last = registry.jobs.last_step(job.id, job.sn, "print_face")
    if last is None or last.result != StepResult.INTENT:
        return None
    return last.details


def _job_rule(registry: Registry, job: Job, action: str) -> str:
    """The job's next status by the transition table, or ``JobError``."""
    try:
        return str(registry.rule("job", job.status, action).target)
    except RegistryError as exc:
        raise JobError(f"作业 {job.id}: {exc}") from None


def _held_elsewhere(job: Job, station: str | None, now: str) -> bool:
    """Another station holds a live lease on the running job."""
    return bool(
        job.status == JobStatus.RUNNING
        and job.station != station
        and job.lease_until
        and job.lease_until > now
    )


def _lease_refusal(job: Job) -> str:
    return (
        f"作业 {job.id} 正由工位 {job.station} 执行，租约至 {job.lease_until} "
        f"(job is being run by station {job.station} until {job.lease_until})"
    )


def claim_job(registry: Registry, job_id: int, station: str, *, lease: timedelta = LEASE) -> int:
    """Take the job's lease for ``station`` (renewed at every step) and return its new
    fencing token, or refuse: a finished job, or one another station holds. Done before any
    device is opened. Each claim increments the token, so whoever ran the job before —
    a crashed process, or a station whose lease ran out — can record nothing more."""
    now = registry.clock()
    with registry.transaction():
        job = find_job(registry, job_id)
        target = _job_rule(registry, job, "claim")
        if _held_elsewhere(job, station, _iso(now)):
            raise JobError(_lease_refusal(job))
        return registry.claim(job_id, station, until=now + lease, target=target)


def pause_job(
    registry: Registry, job_id: int, *, operator: str, reason: str, fence: int | None = None
) -> None:
    """A running job stops and waits with the reason (a device, reader or module fault);
    ``job run`` resumes it, ``job cancel`` ends it. A job no longer running, or (with
    ``fence``) one another station has claimed since, is left as is."""
    with registry.transaction():
        job = find_job(registry, job_id)
        if job.status != JobStatus.RUNNING or fence not in (None, job.fence):
            return
        target = _job_rule(registry, job, "pause")
        registry.jobs.set_status(job_id, target, last_error=reason, now=_iso(registry.clock()))
        registry.audit(operator, f"job.{target}", f"job-{job_id}", {"error": reason})


def end_job(
    registry: Registry,
    job_id: int,
    action: str,
    *,
    operator: str,
    reason: str,
    station: str | None = None,
    fence: int | None = None,
) -> Job:
    """Cancel or fail a job, and say where that leads (one transaction): its unfinished new
    card is released (废卡, the number never reused), its request is open again (the old
    card stays 补卡中/换卡中) and a new job can be submitted for it. A running job is
    refused while another station holds a live lease; ``station`` names the station asking
    (it may end its own job, e.g. after a crash); a runner passes its ``fence``."""
    if not reason.strip():
        raise JobError("须说明原因 (a reason is required)")
    now = _iso(registry.clock())
    with registry.transaction():
        job = find_job(registry, job_id) if fence is None else registry.check_fence(job_id, fence)
        target = _job_rule(registry, job, action)
        if action == "cancel" and _held_elsewhere(job, station, now):
            raise JobError(
                _lease_refusal(job) + "；待租约到期或由该工位取消 (wait or cancel there)"
            )
        if job.new_card_id is not None:
            new = registry.card_by_id(job.new_card_id)
            if new.status == CardStatus.ACTIVE:
                raise JobError(
                    f"作业 {job_id} 的新卡 {new.card_number} 已启用，请再次执行作业以完成 "
                    "(the new card is active: run the job again to finish it)"
                )
            registry.release_card(new.id, operator=operator, reason=f"作业{action}: {reason}")
            if new.sn is not None and job.station is not None:  # a fed card leaves the stock
                registry.record_stock(
                    MoveKind.REJECTED,
                    job.station,
                    1,
                    operator=operator,
                    reason=ended_job_reason(action),
                    detail=reason,
                    job_id=job_id,
                    sn=new.sn,
                )
        registry.jobs.set_status(job_id, target, last_error=reason, now=now)
        request = registry.request(job.request_id)
        if request.job_id == job_id and request.status == RequestStatus.IN_JOB:
            registry._move_request(request.id, "reopen", operator, job=job_id)
        registry.audit(
            operator,
            f"job.{target}",
            f"job-{job_id}",
            {"reason": reason, "from": job.status, "station": station},
        )
    return find_job(registry, job_id)


def cancel_job(
    registry: Registry,
    job_id: int,
    *,
    operator: str,
    confirmed_by: str,
    reason: str,
    station: str | None = None,
) -> Job:
    """``job cancel`` under dual control (roles.DUAL_CONTROL): ``confirmed_by`` — a second
    operator already authenticated and allowed to confirm (``operators.confirm``) — is
    audited ``dual_control.confirm`` in the cancel's own transaction (``end_job``)."""
    with registry.transaction():
        registry.audit(
            operator,
            "dual_control.confirm",
            f"job-{job_id}",
            {"action": "job.cancel", "operator": operator, "confirmed_by": confirmed_by},
        )
        return end_job(
            registry, job_id, "cancel", operator=operator, reason=reason, station=station
        )


def resume_job(registry: Registry, job_id: int, *, operator: str) -> Job:
    """A paused job given back to the stations once its device is seen to (恢复执行, the
    console): the job's ``claim`` transition (paused → running) for the station it paused
    at, with a lease that has already run out — how a station told to stop leaves its job
    (``station_worker.release_job``) — so that station's worker takes it first (its own
    running jobs), any other of the region once it does not, and it resumes after the last
    verified step. A print begun and unsettled still waits for its printer
    (``station_worker.claim_next_job``). Audited ``job.resume``."""
    with registry.transaction():
        job = find_job(registry, job_id)
        if job.status != JobStatus.PAUSED or job.station is None:
            raise JobError(
                f"作业 {job_id} 状态为{JOB_STATUS_LABELS[job.status]}，只有暂停的作业可以恢复执行 "
                "(only a paused job can be resumed)"
            )
        claim_job(registry, job_id, job.station, lease=timedelta(0))
        registry.audit(
            operator,
            "job.resume",
            f"job-{job_id}",
            {"station": job.station, "error": job.last_error},
        )
        return find_job(registry, job_id)


class JobRunner:
    def __init__(
        self,
        registry: Registry,
        policy: RegionPolicy,
        profile: CardProfile,
        devices: StationDevices,
        *,
        operator: str,
        progress: Progress = print,
        after_step: AfterStep | None = None,
        lease: timedelta = LEASE,
        stop_requested: Callable[[], bool] = lambda: False,
    ) -> None:
        """``after_step``, when given, is called with a step's name right after its ``ok``
        is committed (docs/service.md, Jobs) — the crash tests install one that kills the
        process there. ``lease`` is how long each claim and step record holds the job;
        ``stop_requested`` is asked before each step (a station told to stop, SIGTERM:
        ``JobStopped`` there, the job still running and fenced for the caller to release)."""
        self.registry = registry
        self.policy = policy
        self.profile = profile
        self.dev = devices
        self.operator = operator
        self.progress = progress
        self.after_step = after_step
        self.lease = lease
        self.stop_requested = stop_requested
        self.fence: int | None = None  # the token of this runner's claim
        self.step_started: datetime | None = None  # when the step under way began
        self.step_name: str | None = None  # the step under way (a write-off's reason says it)

    # ----------------------------------------------------------------- bookkeeping

    def job(self, job_id: int) -> Job:
        return find_job(self.registry, job_id)

    def done_steps(self, job: Job) -> set[str]:
        if job.sn is None:
            return set()
        return self.registry.jobs.done_steps(job.id, job.sn)

    def record(
        self,
        job_id: int,
        step: str,
        result: StepResult,
        sn: str | None,
        details: dict[str, Any],
        *,
        job_fields: dict[str, str | None] | None = None,
        card_fields: dict[str, str | None] | None = None,
    ) -> None:
        """Record a step's ``intent`` (begun) or outcome, with what it changed in the job and
        its new card, in one transaction that first checks this runner's fencing token
        (``LeaseLost`` when another station has claimed the job since)."""
        ended = self.registry.clock()
        now = _iso(ended)
        with self.registry.transaction():
            job = self.registry.check_fence(job_id, self.fence)
            jobs = self.registry.jobs
            jobs.add_step(
                job_id,
                step,
                result,
                sn,
                at=now,
                details=details,
                fence=self.fence,
                started_at=step_time(self.step_started or ended),
                ended_at=step_time(ended),
            )
            jobs.set_fields(job_id, job_fields or {})
            if card_fields:
                assert job.new_card_id is not None
                self.registry.set_card_chip(job.new_card_id, card_fields)
            jobs.advance(
                job_id, step, result, now=now, lease_until=_iso(self.registry.clock() + self.lease)
            )
            self.registry.audit(
                self.operator, f"job.{step}.{result}", f"job-{job_id}", {"sn": sn, **details}
            )
        if result == StepResult.OK and self.after_step is not None:
            self.after_step(step)

    def guard(self, job_id: int) -> None:
        """Before a device action: this runner still holds the job (its token is the job's),
        else ``LeaseLost`` — a station that lost its lease stops here."""
        self.registry.check_fence(job_id, self.fence)

    def _claim(self, job_id: int) -> None:
        self.fence = claim_job(self.registry, job_id, self.dev.name, lease=self.lease)

    def _finish(self, job_id: int) -> None:
        with self.registry.transaction():
            job = self.registry.check_fence(job_id, self.fence)
            target = _job_rule(self.registry, job, "finish")
            self.registry.jobs.set_status(
                job_id, target, last_error=None, now=_iso(self.registry.clock())
            )
            self.registry.audit(self.operator, f"job.{target}", f"job-{job_id}", {})

    def _pause(self, job_id: int, reason: str) -> None:
        pause_job(self.registry, job_id, operator=self.operator, reason=reason, fence=self.fence)

    # ----------------------------------------------------------------- the loop

    def run(self, job_id: int, *, fence: int | None = None) -> Job:
        """Run the job to its end from where it stands; ``fence``: the token of a claim
        already made (``station_worker.claim_next_job``), else the job is claimed here."""
        if fence is None:
            self._claim(job_id)
        else:
            self.fence = fence
        try:
            while True:
                job = self.job(job_id)
                step = next_step(self.done_steps(job))
                if step is None:
                    self._finish(job_id)
                    return self.job(job_id)
                try:
                    for name in STEPS[STEPS.index(step) :]:
                        self.guard(job_id)
                        if self.stop_requested():
                            raise JobStopped(
                                f"作业 {job_id} 停于 {name} 前 (stopped before {name})"
                            )
                        self.progress(f"[{STEPS.index(name) + 1}/{len(STEPS)}] {name}")
                        self.step_started = self.registry.clock()
                        self.step_name = name
                        getattr(self, f"step_{name}")(self.job(job_id))
                except CardLost as exc:
                    self._write_off(job_id, StepResult.LOST, str(exc))
                except CardRejected as exc:
                    self._reject(job_id, exc.reason)
        except (LeaseLost, JobStopped):
            raise  # another station's now, or left running for the caller to release
        except (DeviceError, TransportError, SecurityModuleUnavailable) as exc:
            message = f"{type(exc).__name__}: {exc}"
            self._pause(job_id, message)
            recovery = getattr(exc, "recovery", "operator")
            raise JobPaused(f"作业暂停 (job paused): {message} [recovery: {recovery}]") from None
        except JobFailed as exc:
            end_job(
                self.registry,
                job_id,
                "fail",
                operator=self.operator,
                reason=str(exc),
                fence=self.fence,
            )
            raise
        except BaseException as exc:  # whatever stops the run, the job is not left running
            self._pause(job_id, f"{type(exc).__name__}: {exc}")
            raise

    def _write_off(self, job_id: int, result: StepResult, reason: str) -> None:
        """The card at hand leaves the job (rejected or lost), in one fenced transaction: the
        write-off is recorded against its SN, its registry card is released (废卡: the number
        is never reused, the SN blacklisted, the holder's data no longer the job's) and the
        next card gets a fresh number; the request stays with the job for that card. The card
        leaves the station's stock (a ``rejected`` movement, docs/business-rules.md "Card
        stock") in the same transaction."""
        job = self.job(job_id)
        with self.registry.transaction():
            self.record(job_id, "card", result, job.sn, {"reason": reason})
            if job.new_card_id is not None:
                self.registry.release_card(
                    job.new_card_id, operator=self.operator, reason=f"{result}: {reason}"
                )
            # only a rejected card counts towards the limit: a lost one (cleared printer, a
            # takeover at another station) says nothing about the cards being bad
            self.registry.jobs.drop_card(job_id, rejected=result == StepResult.REJECTED)
            self.registry.record_stock(  # the card has left the station's blank stock
                MoveKind.REJECTED,
                self.dev.name,
                1,
                operator=self.operator,
                reason=write_off_reason(self.step_name, lost=result == StepResult.LOST),
                detail=reason,
                job_id=job_id,
                sn=job.sn,
            )
        if self.job(job_id).attempts >= MAX_ATTEMPTS:
            raise JobFailed(
                f"作业失败：已报废 {MAX_ATTEMPTS} 张卡 (job failed: {MAX_ATTEMPTS} cards "
                f"written off), last: {reason}"
            )

    def _reject(self, job_id: int, reason: str) -> None:
        self.progress(f"    废卡 rejected: {reason}")
        if self.dev.printer.card_position() != "none":
            self.dev.printer.reject()
        self._write_off(job_id, StepResult.REJECTED, reason)

    # ----------------------------------------------------------------- data

    def holder(self, job: Job) -> HolderData:
        d = json.loads(job.holder)
        d.pop("extra", None)
        return _holder(d)

    def _new_card_id(self, job: Job) -> int:
        """The job's new card, which every step after ``feed`` has."""
        if job.new_card_id is None:
            raise JobError(f"作业 {job.id} 没有新卡 (the job has no new card)")
        return job.new_card_id

    def new_card_number(self, job: Job) -> tuple[int, str]:
        current = self.job(job.id).new_card_id
        if current is not None:
            card = self.registry.card_by_id(int(current))
            return card.id, card.card_number
        with self.registry.transaction():
            self.registry.check_fence(job.id, self.fence)
            card = self.registry.start_card(job.id, operator=self.operator)
        return card.id, card.card_number

    def issuer(self, job: Job, sn: bytes, issued: date) -> IssuerData:
        _, number = self.new_card_number(job)
        card_id = build_card_id(
            self.dev.hsm, self.profile.card_id_key.label, self.policy.region_code, sn
        )
        return IssuerData(
            card_id=card_id,
            card_type=self.profile.card_type,
            spec_version=self.profile.spec_version,
            issuer_org=self.policy.issuer_org,
            issue_date=issued,
            expiry_date=self.policy.card_expiry(issued),
            card_number=number,
        )

    # ----------------------------------------------------------------- which card is there

    def _sn_at_contact(self, timeout: float = CARD_WAIT) -> str | None:
        """The SN of the chip at the contact station, or None when no chip answers."""
        try:
            return (
                serial_number(self.dev.contact_reader.wait_for_card(timeout=timeout)).hex().upper()
            )
        except (NoCard, CardMute):
            return None

    def prove_card(self, job: Job) -> None:
        """Before a step touches the card: the printer holds a card, it is (back) at the
        contact station, and its chip's SN is the job's — else ``CardLost``."""
        position = self.dev.printer.card_position()
        if position == "none":
            raise CardLost(f"打印机内没有卡 (no card in the printer; the job's card {job.sn})")
        if position != "contact":
            self.dev.printer.feed_to_contact()  # ``Sis`` brings the card back to the station
        sn = self._sn_at_contact()
        if sn != job.sn:
            raise CardLost(f"the card at the contact station is {sn}, not the job's {job.sn}")

    def _chip(self, job: Job) -> tuple[PcscTransport, SocialSecurityCard]:
        self.prove_card(job)
        try:
            transport = self.dev.contact_reader.connect()
        except (NoCard, CardRemoved) as exc:
            raise CardLost(f"no card at the contact station ({exc})") from None
        except CardMute as exc:
            raise CardRejected(f"mute chip: {exc}") from None
        sn = serial_number(transport.atr).hex().upper()
        if sn != job.sn:
            transport.disconnect()
            raise CardLost(f"the card at the contact station is {sn}, not the job's {job.sn}")
        return transport, SocialSecurityCard(
            transport, self.profile, self.dev.hsm, region_code=self.policy.region_code
        )

    # ----------------------------------------------------------------- steps

    def step_feed(self, job: Job) -> None:
        """A blank card to the contact station. A card already in the printer is taken only
        when its chip is one the registry has never seen (a feed whose record was lost to a
        crash); anything else — a card written off, another job's, a torn or mute one — goes
        to the reject bin first."""
        printer = self.dev.printer
        sn: str | None = None
        if printer.card_position() == "contact":
            sn = self._sn_at_contact(timeout=2.0)
        if sn is None or self.registry.sn_seen(sn):
            if printer.card_position() != "none":
                printer.reject()
            # the previous card must have left the reader first: pcscd notices a removal
            # within ~400 ms, and its stale ATR is not the new card's
            self.dev.contact_reader.wait_for_removal(timeout=CARD_WAIT)
            printer.feed_to_contact()
            sn = self._sn_at_contact()
            if sn is None:
                raise CardRejected("进卡后芯片无应答 (no chip answers at the contact station)")
            if self.registry.sn_seen(sn):
                raise CardRejected(
                    f"进卡器中的卡 {sn} 已登记或已列入黑名单 (the fed card is known to the "
                    "registry: not a blank)"
                )
        self.new_card_number(job)
        self.record(
            job.id,
            "feed",
            StepResult.OK,
            sn,
            {},
            job_fields={"sn": sn},
            card_fields={"sn": sn, "card_id": None},
        )

    def step_chip_write(self, job: Job) -> None:
        transport, card = self._chip(job)
        try:
            card.identify(fci=False)  # nothing reads the FCI (issue 14)
            sn = card.sn
            issuer = self.issuer(job, sn, self.policy.local_date(self.registry.clock()))
            present = card.read_element(self.profile.ef05, EF05[0])
            if any(present) and present != issuer.card_id:
                raise CardRejected("the chip holds another card's data (not a blank card)")
            card.external_authenticate(self.profile.update_key)
            card.write_issuer(issuer)
            card.write_holder(self.holder(job))
            card.write_photo(self.registry.job_photo(job.id))
            card.reset_pin(self.policy.default_pin)
        except CardRemoved as exc:
            raise CardLost(f"card pulled during the chip write ({exc})") from None
        except (SocialSecurityCardError, InvalidData) as exc:
            raise CardRejected(f"chip write failed: {exc}") from None
        finally:
            transport.disconnect()
        self.record(
            job.id,
            "chip_write",
            StepResult.OK,
            job.sn,
            {"card_number": issuer.card_number, "issue_date": issuer.issue_date.isoformat()},
            card_fields={"card_id": issuer.card_id.hex().upper()},
        )

    def _issue_date(self, job: Job) -> date:
        written = (
            None
            if job.sn is None
            else self.registry.jobs.last_step(job.id, job.sn, "chip_write", StepResult.OK)
        )
        if written is None:
            raise JobError("no recorded chip_write for the job's card")
        return date.fromisoformat(written.details["issue_date"])

    def step_chip_verify(self, job: Job) -> None:
        issued = self._issue_date(job)
        transport, card = self._chip(job)
        try:
            checks = card.verify(
                self.issuer(job, card.sn, issued),
                self.holder(job),
                self.registry.job_photo(job.id),
                pin=self.policy.default_pin,
            )
        except VerificationFailed as exc:
            raise CardRejected(f"chip verification: {'; '.join(exc.mismatches)}") from None
        except CardRemoved as exc:
            raise CardLost(f"card pulled during verification ({exc})") from None
        except SocialSecurityCardError as exc:
            raise CardRejected(f"chip verification: {exc}") from None
        finally:
            transport.disconnect()
        self.record(job.id, "chip_verify", StepResult.OK, job.sn, {"checks": len(checks)})

    def _tracks(self, job: Job) -> dict[int, str]:
        if job.tracks is None:
            return {}
        return self.dev.vault.open(bytes(job.tracks), f"job-{job.id}")

    def step_encode_stripe(self, job: Job) -> None:
        tracks = self._tracks(job)
        if tracks:
            self.prove_card(job)
            try:
                self.dev.printer.encode_mag(tracks)
            except DeviceError as exc:
                if exc.recovery == "unknown":
                    raise CardRejected(f"magnetic encoding: {exc}") from None
                raise
        self.record(job.id, "encode_stripe", StepResult.OK, job.sn, {"tracks": sorted(tracks)})

    def step_stripe_verify(self, job: Job) -> None:
        tracks = self._tracks(job)
        if tracks:
            self.prove_card(job)
        bad = []
        for n, data in sorted(tracks.items()):
            try:
                if self.dev.printer.read_mag(n) != data:
                    bad.append(n)
            except DeviceError as exc:
                if exc.recovery != "unknown":
                    raise
                bad.append(n)
        if bad:
            raise CardRejected(f"stripe read-back differs on track(s) {bad}")
        self.record(job.id, "stripe_verify", StepResult.OK, job.sn, {"tracks": sorted(tracks)})

    def step_print_face(self, job: Job) -> None:
        intent = unsettled_print(self.registry, job)
        if intent is not None:
            self._settle_print(job, intent)
            return
        holder = self.holder(job)
        card = self.registry.card_by_id(self._new_card_id(job))
        face = CardFace(
            holder.name,
            holder.ssn,
            card.card_number,
            self._issue_date(job),
            self.policy.authority,
            self.registry.job_photo(job.id),
            self.profile.face,
        )
        job_dir = self.dev.out_dir / f"job-{job.id}"
        job_dir.mkdir(parents=True, exist_ok=True)
        render_pdf(face, job_dir / "卡面校样.pdf")
        panels = build_panels(face)
        self.prove_card(job)
        printer = self.dev.printer
        printer.load_panels(panels)
        intent = {"printer": printer.serial_number(), "count": printer.printed_count()}
        self.record(job.id, "print_face", StepResult.INTENT, job.sn, intent)
        self.guard(job.id)
        try:
            printer.print_and_eject()
        except DeviceError as exc:  # a jam or a torn print: what is on the card is unknown
            self.progress(f"    打印中断 print interrupted: {exc}")
        self._settle_print(job, intent)

    def _settle_print(self, job: Job, intent: dict[str, Any]) -> None:
        """Settle a print whose outcome was not recorded, from the printer's own evidence —
        never by printing again: its count went up by one and the card has left (printed and
        ejected) → ``print_face`` ok; otherwise the card in doubt is written off (to the
        reject bin when still in the printer, lost when not) and the job goes on with a new
        card. Only the printer that was printing can tell: elsewhere the job waits."""
        printer = self.dev.printer
        if printer.serial_number() != intent["printer"]:
            raise JobError(
                f"作业 {job.id} 的卡 {job.sn} 打印结果未知，须在打印机 {intent['printer']} "
                f"所在工位执行作业以核查 (the print's outcome is unknown: run the job at the "
                f"station of printer {intent['printer']} to settle it)"
            )
        count = printer.printed_count()
        position = printer.card_position()
        if count == int(intent["count"]) + 1 and position == "none":
            self.record(
                job.id, "print_face", StepResult.OK, job.sn, {**intent, "settled": "printed"}
            )
            return
        reason = (
            f"打印结果未知 (print outcome unknown: printer count {intent['count']} → {count},"
            f" card {'still in the printer' if position != 'none' else 'gone'})"
        )
        if position != "none":
            raise CardRejected(reason)
        raise CardLost(reason)

    def step_activate(self, job: Job) -> None:
        done = self.done_steps(job)
        missing = {"chip_verify", "stripe_verify", "print_face"} - done
        if missing:
            raise JobError(f"refusing to activate an unverified card (missing {sorted(missing)})")
        new_id = self._new_card_id(job)
        tracks = self._tracks(job)
        if tracks:  # on file for the card, for re-encoding at a street office
            sealed = self.dev.vault.seal(tracks, f"card-{new_id}")
            with self.registry.transaction():
                self.guard(job.id)
                self.registry.set_tracks(
                    new_id, sealed, source=f"job-{job.id}", operator=self.operator
                )
        card = self.registry.card_by_id(new_id)
        if card.status == CardStatus.PERSONALIZING:
            card = self.registry.activate(
                new_id, operator=self.operator, job_id=job.id, fence=self.fence
            )
        elif card.status != CardStatus.ACTIVE:  # active: a crash fell between activation and record
            raise JobError(f"the new card {card.card_number} is {card.status}")
        self.record(job.id, "activate", StepResult.OK, job.sn, {"card_number": card.card_number})
