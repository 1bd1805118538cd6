"""``sscard registry …``, ``sscard audit verify`` and ``sscard job …``: the card center's
counter and workshop commands. Every command that changes something acts as the logged-in
operator (``sscard login``; ``personalize.operator_commands.acting``) whose role allows it;
write-offs (``job cancel``) and reprints also need a second operator's confirmation
(``--confirm-by`` / ``--confirm-session``). Every command has ``--json``.

Only ``registry init`` creates the database (``--db``, default ``$SSCARD_DB`` or
``./sscard.db``); every other command opens an existing one and stops with an error naming
the path when it is missing — a command run in the wrong folder never leaves an empty
``sscard.db`` behind."""

from __future__ import annotations

import argparse
import json
import re
import time
import unicodedata
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from apdu.pcsc import PcscReader
from personalize.agent_options import add_agent_options, agent_of
from personalize.auditverify import FULL_EVERY, FULL_REASONS
from personalize.card_standing import standing
from personalize.database import display, registry_exists
from personalize.documents import (
    collection_certificate,
    collection_certificate_bytes,
)
from personalize.enrollment import read_enrollment
from personalize.identity_change import ChangeCertificate
from personalize.job_store import JobSummary
from personalize.jobs import (
    JobPaused,
    JobRunner,
    StationDevices,
    cancel_job,
    claim_job,
    pause_job,
    submit_job,
)
from personalize.lifecycle import JobStatus
from personalize.medical_balance import transfer_view
from personalize.office import office_report_pdf
from personalize.operator_commands import acting, add_confirm_options, confirmed
from personalize.outfiles import write_new
from personalize.policy import load_policy
from personalize.registry import (
    STATUS_NAMES,
    Registry,
    RegistryError,
    mask_id,
    request_number,
)
from personalize.registry_options import add_common_options, add_db_option, open_registry
from personalize.registry_records import ReissueRequest
from personalize.seed import seed_registry
from personalize.station import StationConfig
from personalize.trackvault import TrackVault
from printer.evolis import EvolisPrinter
from sscard.profile import load_profile


def _registry(args: argparse.Namespace, *, create: bool = False) -> Registry:
    """The registry named by ``--db`` (existing unless ``create``: init, enroll)."""
    return open_registry(args, create=create)


def cmd_registry_init(args: argparse.Namespace) -> int:
    """A new registry: a new SQLite file, or the schema in an empty PostgreSQL database
    (made beforehand by its administrator: ``createdb -O sscard sscard``)."""
    where = display(args.db)
    if registry_exists(args.db):
        raise RegistryError(f"登记库已存在，未改动：{where} (a registry database exists there)")
    registry = _registry(args, create=True)
    data = {"db": where, "schema_version": registry.schema_version}
    _emit(
        args, data, f"已新建登记库 created the registry {where} (schema {data['schema_version']})"
    )
    return 0


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2) if args.json else text)


def _card_dict(registry: Registry, number: str) -> dict[str, Any]:
    card = registry.card(number)
    person = registry.person(card.person_id)
    return {
        "card_number": card.card_number,
        "status": card.status,
        "status_name": STATUS_NAMES[card.status],
        "since": _local(registry, card.status_since),
        "lapse_at": _local(registry, card.lapse_at),
        "name": person.name,
        "sn": card.sn,
        "blacklisted": registry.blacklisted(card.card_number),
        "issued_on": card.issued_on,
        **standing(registry.validity(card), registry.initial_pin(card)),
        "medical_balance": [
            transfer_view(registry, t, lambda at: _local(registry, at))
            for t in registry.balance_transfers(card)
        ],
        "history": [
            {
                "from": h.from_status,
                "to": h.to_status,
                "at": _local(registry, h.at),
                "operator": h.operator,
                "reason": h.reason,
            }
            for h in registry.history(card.id)
        ],
    }


def cmd_enroll(args: argparse.Namespace) -> int:
    enrollment = read_enrollment(Path(args.file))
    registry = _registry(args)
    operator = acting(registry, "card.enroll").name
    card = registry.enroll(
        enrollment.holder,
        enrollment.card_number,
        operator=operator,
        sn=enrollment.sn,
        issued_on=enrollment.issued_on,
    )
    _emit(args, _card_dict(registry, card.card_number), f"已登记 enrolled {card.card_number}")
    return 0


def cmd_transition(args: argparse.Namespace) -> int:
    registry = _registry(args)
    action = args.registry_command
    operator = acting(registry, f"card.{action.replace('-', '_')}").name
    if action == "report-loss":
        registry.report_loss(args.card, operator=operator, channel=args.channel)
    elif action == "formalize-loss":
        registry.formalize_loss(
            args.card, operator=operator, evidence=args.evidence, agent=agent_of(args)
        )
    elif action == "unreport":
        registry.unreport(
            args.card, operator=operator, evidence=args.evidence, agent=agent_of(args)
        )
    data = _card_dict(registry, args.card)
    _emit(args, data, f"{args.card}: {data['status_name']} ({data['status']})")
    return 0


def _request_with_certificate(
    registry: Registry, args: argparse.Namespace, make: Callable[[], ReissueRequest]
) -> tuple[ReissueRequest, Path]:
    """The request ``make`` opens and its 领卡证明 succeed or fail together: the PDF is
    written inside the request's transaction, and a document that cannot be written rolls
    the request back (nothing changes; ``sscard registry reprint`` prints a lost document
    again)."""
    written: list[Path] = []
    try:
        with registry.transaction():
            request = make()
            pdf = collection_certificate_bytes(collection_certificate(registry, request.id))
            written.append(write_new(Path(args.out or f"领卡证明-{request.id:06d}.pdf"), pdf))
    except BaseException:
        for path in written:  # the commit failed after the document was written
            path.unlink(missing_ok=True)
        raise
    return request, written[0]


def cmd_request_reissue(args: argparse.Namespace) -> int:
    """补卡申请 and its 领卡证明 (:func:`_request_with_certificate`)."""
    registry = _registry(args)
    operator = acting(registry, "request.reissue").name
    request, out = _request_with_certificate(
        registry,
        args,
        lambda: registry.request_reissue(
            args.card, operator=operator, counter=args.counter, agent=agent_of(args)
        ),
    )
    number = request_number(request.id)
    _emit(
        args,
        {
            "request": request.id,
            "request_no": number,
            "collect_on": request.collect_on,
            "fee": request.fee,
            "certificate": str(out),
        },
        f"补卡申请 {number} 已受理；领卡日期 {request.collect_on}；工本费 {request.fee} 元；"
        f"领卡证明 {out}",
    )
    return 0


def cmd_request_change(args: argparse.Namespace) -> int:
    """换领 (identity data changed, docs/business-rules.md) and its 领卡证明, on the change
    certificates (:meth:`Registry.request_change`)."""
    registry = _registry(args)
    operator = acting(registry, "request.change").name
    certificate = ChangeCertificate(
        number=args.certificate,
        authority=args.authority,
        bureau_number=args.bureau_certificate,
        old_name=args.old_name,
        old_id=args.old_id,
        new_name=args.new_name or "",
        new_id=args.new_id or "",
    )
    request, out = _request_with_certificate(
        registry,
        args,
        lambda: registry.request_change(
            args.card, certificate, operator=operator, counter=args.counter, agent=agent_of(args)
        ),
    )
    change = registry.identity_change(request.id)
    assert change is not None
    number = request_number(request.id)
    _emit(
        args,
        {
            "request": request.id,
            "request_no": number,
            "kind": request.kind,
            "collect_on": request.collect_on,
            "fee": request.fee,
            "old_name": change.old_name,
            "new_name": change.new_name,
            "old_ssn": mask_id(change.old_ssn),
            "new_ssn": mask_id(change.new_ssn),
            "certificate": str(out),
        },
        f"换领申请 {number} 已受理（{change.old_name} {mask_id(change.old_ssn)} → "
        f"{change.new_name} {mask_id(change.new_ssn)}）；领卡日期 {request.collect_on}；"
        f"领卡证明 {out}",
    )
    return 0


@dataclass(frozen=True)
class Reprint:
    """A document ``sscard registry reprint`` reproduces, recognised by its number's form."""

    pattern: re.Pattern[str]
    canonical: Callable[[re.Match[str]], str]  # the number as the document prints it
    file_name: str  # default output file, ``{number}`` is the canonical number
    render: Callable[[Registry, str, datetime], bytes]  # (registry, number, reprinted_at)


def _reprint_certificate(registry: Registry, number: str, at: datetime) -> bytes:
    request_id = int(number.rsplit("-", 1)[1])
    return collection_certificate_bytes(
        collection_certificate(registry, request_id, reprinted_at=at)
    )


# The 验卡单 joins here as one more entry (``office_report_pdf(registry, report_no,
# reprint_at=...)`` of the street-office branch), with its number's pattern.
def _reprint_report(registry: Registry, number: str, at: datetime) -> bytes:
    return office_report_pdf(registry, number, reprint_at=at)


REPRINTS: list[Reprint] = [
    Reprint(
        re.compile(r"(?:SSCARD-REQ-)?(\d{1,9})"),
        lambda m: request_number(int(m.group(1))),
        "领卡证明-{number}-补打.pdf",
        _reprint_certificate,
    ),
    Reprint(
        re.compile(r"YK-\d{8}-\d{6,}", re.IGNORECASE),
        lambda m: m.group(0).upper(),
        "验卡单-{number}-补打.pdf",
        _reprint_report,
    ),
]


def cmd_reprint(args: argparse.Namespace) -> int:
    """Produce a document again from the registry, marked 补打 with the reprint time; the
    reprint is an audit event naming both the operator and the one who confirmed it (dual
    control)."""
    registry = _registry(args)
    actor = acting(registry, "document.reprint")
    for kind in REPRINTS:
        match = kind.pattern.fullmatch(args.number.strip())
        if match is None:
            continue
        number = kind.canonical(match)
        confirmer = confirmed(registry, actor, args, "document.reprint")
        at = registry.clock()
        pdf = kind.render(registry, number, at)
        with registry.transaction():
            out = write_new(Path(args.out or kind.file_name.format(number=number)), pdf)
            registry.audit(
                actor.name,
                "document.reprint",
                number,
                {"file": out.name, "confirmed_by": confirmer},
            )
        _emit(
            args,
            {
                "number": number,
                "file": str(out),
                "reprinted_at": registry.policy.local_time(at).isoformat(),
            },
            f"已补打 reprinted {number}: {out}",
        )
        return 0
    raise RegistryError(
        f"无法识别的单据编号 {args.number} (not a document number such as SSCARD-REQ-000001)"
    )


def cmd_show(args: argparse.Namespace) -> int:
    registry = _registry(args)
    data = _card_dict(registry, args.card)
    lines = [f"{data['card_number']} {data['name']}: {data['status_name']} since {data['since']}"]
    if data["valid_until"] is not None:
        lines.append(f"  有效期 valid until {data['valid_until']}: {data['validity']}")
    lines.append(f"  初始密码 initial PIN: {data['initial_pin_name']}")
    lines += [
        f"  医保个人账户余额 medical balance {b['from_card']} → {b['to_card'] or '(新卡未启用)'}: "
        f"{'待报' if b['amount'] is None else b['amount'] + ' 元'}, {b['status_name']}"
        for b in data["medical_balance"]
    ]
    lines += [
        f"  {h['at']} {h['from']} → {h['to']} by {h['operator']}: {h['reason']}"
        for h in data["history"]
    ]
    _emit(args, data, "\n".join(lines))
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    result = _registry(args).check_audit(
        full=args.full, full_every=timedelta(days=args.full_every)
    )
    mode = (
        f"完整核验 full ({FULL_REASONS[result.reason]})"
        if result.reason is not None
        else f"增量核验 incremental, from event {result.from_event}"
    )
    _emit(
        args,
        {
            "mode": result.mode,
            "from_event": result.from_event,
            "reason": result.reason,
            "head": result.head,
            "events": result.events,
            "rows": result.rows,
            "problems": result.problems,
        },
        f"审计链 audit chain: {mode}: {result.events} events, {result.rows} rows checked "
        f"up to event {result.head}, "
        + ("intact 完整" if not result.problems else "BROKEN:\n" + "\n".join(result.problems)),
    )
    return 0 if not result.problems else 1


def _days(text: str) -> float:
    """``--full-every DAYS``: a number of days, 0 or more."""
    try:
        days = float(text)
    except ValueError:
        days = -1.0
    if not 0 <= days <= 36500:
        raise argparse.ArgumentTypeError(
            f"天数应为 0 到 36500 之间的数 (days must be a number from 0 to 36500): {text!r}"
        )
    return days


JOB_STATUS_NAMES = {
    "queued": "排队",
    "running": "制作中",
    "paused": "已暂停",
    "done": "已完成",
    "failed": "失败",
    "cancelled": "已取消",
}


def mask_name(name: str) -> str:
    """The surname's first character shown, the rest starred: 张三 → 张*."""
    return name[:1] + "*" * (len(name) - 1)


def _local(registry: Registry, instant: str | None) -> str | None:
    """A stored UTC instant as ISO 8601 wall-clock time in the policy's zone (with offset)."""
    if instant is None:
        return None
    return registry.policy.local_time(datetime.fromisoformat(instant)).isoformat()


def _job_summary(registry: Registry, summary: JobSummary) -> dict[str, Any]:
    job = summary.job
    return {
        "job": job.id,
        "status": str(job.status),
        "status_name": JOB_STATUS_NAMES[job.status],
        "step": job.step,
        "holder": mask_name(summary.holder_name),
        "ssn": mask_id(summary.holder_ssn),
        "old_card_number": summary.old_card_number,
        "new_card_number": summary.new_card_number,
        "sn": job.sn,
        "attempts": job.attempts,
        "station": job.station,
        "heartbeat_at": _local(registry, job.heartbeat_at),  # station run's last beat
        "created_at": _local(registry, job.created_at),
        "updated_at": _local(registry, job.updated_at),
        "reason": job.last_error,
        "last_error": job.last_error,
    }


def _job_dict(registry: Registry, job_id: int) -> dict[str, Any]:
    summary = registry.jobs.summary(job_id)
    if summary is None:
        raise ValueError(f"没有作业 {job_id} (no job {job_id})")
    return {
        **_job_summary(registry, summary),
        "steps": [
            {"step": s.step, "result": str(s.result), "sn": s.sn, "at": _local(registry, s.at)}
            for s in registry.jobs.steps(job_id)
        ],
    }


def _shown(value: object) -> str:
    """A value as the operator reads it: ``-`` for nothing (never ``None``)."""
    return "-" if value is None or value == "" else str(value)


def _minutes(local_iso: str | None) -> str:
    """A local ISO time (from ``_local``) to the minute, as the operator reads it."""
    if local_iso is None:
        return "-"
    return datetime.fromisoformat(local_iso).strftime("%Y-%m-%d %H:%M")


def _pad(text: str, width: int) -> str:
    """Left-aligned in ``width`` terminal columns (CJK characters take two)."""
    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(width - used, 0)


JOB_COLUMNS: tuple[tuple[str, str, int, Callable[[Any], str]], ...] = (
    # header, key, width, how the value is shown
    ("作业", "job", 5, _shown),
    ("状态", "status_name", 7, _shown),
    ("步骤", "step", 14, _shown),
    ("持卡人", "holder", 10, _shown),
    ("社会保障号码", "ssn", 19, _shown),
    ("旧卡号", "old_card_number", 10, _shown),
    ("新卡号", "new_card_number", 10, _shown),
    ("工作站", "station", 10, _shown),
    ("创建时间", "created_at", 17, _minutes),
    ("更新时间", "updated_at", 17, _minutes),
    ("原因", "reason", 0, _shown),
)


def cmd_job_submit(args: argparse.Namespace) -> int:
    station = StationConfig.load(args.station)
    registry = station.open_registry(load_policy(station.policy))
    operator = acting(registry, "job.submit").name
    path = Path(args.file)
    try:
        submission = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"job file {path}: {exc}") from None
    profile = load_profile(registry.policy.profile)
    job_id = submit_job(
        registry,
        profile,
        TrackVault.from_file(station.track_key),
        submission,
        base_dir=path.parent,
        operator=operator,
    )
    _emit(args, {"job": job_id}, f"作业 {job_id} 已提交 (job submitted)")
    return 0


def cmd_job_run(args: argparse.Namespace) -> int:
    station = StationConfig.load(args.station)
    if station.printer is None or station.contact_reader is None:
        raise ValueError(f"{args.station} names no printer and contact reader: not a card center")
    policy = load_policy(station.policy)
    registry = station.open_registry(policy)
    operator = acting(registry, "job.run").name
    claim_job(registry, args.job, station.name, lease=station.lease)  # before any device
    with ExitStack() as stack:
        try:  # a device that cannot be opened pauses the job with the reason
            vault = TrackVault.from_file(station.track_key)
            hsm = station.security_module()
            stack.callback(hsm.close)
            printer = stack.enter_context(EvolisPrinter(station.printer))
            reader = stack.enter_context(PcscReader(station.contact_reader))
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            pause_job(registry, args.job, operator=operator, reason=reason)
            raise JobPaused(f"作业暂停 (job paused): {reason}") from None
        devices = StationDevices(
            printer,
            reader,
            hsm,
            vault,
            station.out_dir,
            station.name,
        )
        runner = JobRunner(
            registry,
            policy,
            load_profile(policy.profile),
            devices,
            operator=operator,
            progress=(lambda s: None) if args.json else (lambda s: print(s, flush=True)),
            lease=station.lease,
        )
        runner.run(args.job)
    _emit(args, _job_dict(registry, args.job), f"作业 {args.job} 完成 (job done)")
    return 0


def _cursor(args: argparse.Namespace) -> int:
    """``--after CURSOR``: the last id of the page before (``0``: from the start); and
    ``--limit`` checked."""
    if args.limit < 1:
        raise ValueError("--limit 须为正数 (the page size must be positive)")
    text = str(args.after or "0")
    if not text.isdigit():
        raise ValueError(
            f"--after 须为上一页给出的游标 (--after takes the cursor a page printed): {text}"
        )
    return int(text)


def _page(
    args: argparse.Namespace,
    key: str,
    items: list[dict[str, Any]],
    id_key: str,
    lines: Callable[[list[dict[str, Any]]], list[str]],
    empty: str,
) -> None:
    """A page of a list (``items`` holds one more than ``--limit`` when there is more) and
    the cursor of the next page: ``{key: [...], "next": CURSOR or null}`` in JSON; in text,
    ``lines`` of the page, then how to get the next one."""
    more = len(items) > args.limit
    items = items[: args.limit]
    cursor = str(items[-1][id_key]) if more else None
    if args.json:
        _emit(args, {key: items, "next": cursor}, "")
        return
    print("\n".join(lines(items)) if items else empty)
    if cursor is not None:
        print(f"下一页 next page: --after {cursor}")


def _status_option(p: argparse.ArgumentParser, choices: list[str]) -> None:
    p.add_argument("--status", choices=choices, help="only this status")
    p.add_argument("--limit", type=int, default=50, help="rows per page (default 50)")
    p.add_argument("--after", help="the cursor a page printed: the next page")


def cmd_job_list(args: argparse.Namespace) -> int:
    """One page of jobs in id order (keyset pagination: ``--after`` the last id shown)."""
    registry = _registry(args)
    status = None if args.status is None else JobStatus(args.status)
    page = registry.jobs.page(status=status, after=_cursor(args), limit=args.limit + 1)
    jobs = [_job_summary(registry, j) for j in page]
    _page(args, "jobs", jobs, "job", _job_lines, "没有作业 (no jobs)")
    return 0


def _job_lines(jobs: list[dict[str, Any]]) -> list[str]:
    """The jobs under a header, one line each, in columns."""
    header = " ".join(_pad(title, width) for title, _, width, _ in JOB_COLUMNS).rstrip()
    rows = (
        " ".join(_pad(show(job[key]), width) for _, key, width, show in JOB_COLUMNS).rstrip()
        for job in jobs
    )
    return [header, *rows]


def cmd_registry_list(args: argparse.Namespace) -> int:
    """One page of cards in id order with their status and masked holder (name and ID
    number masked, never shown whole), ``--after`` the cursor of the page before."""
    registry = _registry(args)
    page = registry.card_page(status=args.status, after=_cursor(args), limit=args.limit + 1)
    cards: list[dict[str, Any]] = [
        {
            "id": listed.card.id,
            "card_number": listed.card.card_number,
            "status": listed.card.status,
            "status_name": STATUS_NAMES[listed.card.status],
            "holder": mask_name(listed.holder_name),
            "ssn": mask_id(listed.holder_ssn),
        }
        for listed in page
    ]
    _page(args, "cards", cards, "id", _card_lines, "没有卡 (no cards)")
    return 0


def _card_lines(cards: list[dict[str, Any]]) -> list[str]:
    return [
        f"{c['card_number']}  {_pad(c['status_name'], 8)} {_pad(c['holder'], 8)} {c['ssn']}"
        for c in cards
    ]


def cmd_registry_sweep(args: argparse.Namespace) -> int:
    """Record the lapse of every 预挂失 past its deadline (a periodic task), audited as now."""
    registry = _registry(args)
    operator = acting(registry, "card.sweep").name
    lapsed = registry.lapse_expired()  # each lapse its own event, by "system", at now
    registry.audit(operator, "card.sweep", "registry", {"lapsed": lapsed})
    _emit(args, {"lapsed": lapsed}, f"已解除逾期预挂失 lapsed {lapsed} provisional losses")
    return 0


def cmd_registry_seed(args: argparse.Namespace) -> int:
    """Synthetic persons and cards for testers and capacity planning (personalize.seed)."""
    registry = _registry(args)
    operator = acting(registry, "registry.seed").name
    start = time.perf_counter()
    done = seed_registry(registry, args.persons, operator=operator)
    seconds = round(time.perf_counter() - start, 1)
    _emit(
        args,
        {"persons": done.persons, "cards": done.cards, "events": done.events, "seconds": seconds},
        f"已生成 seeded {done.persons} persons, {done.cards} cards "
        f"({done.events} audit events) in {seconds} s",
    )
    return 0


def cmd_job_show(args: argparse.Namespace) -> int:
    data = _job_dict(_registry(args), args.job)
    lines = [
        f"作业 job {data['job']}：{data['status_name']} ({data['status']})，"
        f"步骤 step {_shown(data['step'])}，尝试 attempts {data['attempts']}",
        f"  持卡人 holder：{data['holder']} {data['ssn']}",
        f"  旧卡号 old card：{data['old_card_number']}，新卡号 new card："
        f"{_shown(data['new_card_number'])}，SN {_shown(data['sn'])}",
        f"  工作站 station：{_shown(data['station'])}，"
        f"创建 created {_minutes(data['created_at'])}，更新 updated {_minutes(data['updated_at'])}",
        f"  原因 reason：{_shown(data['reason'])}",
    ]
    lines += [
        f"  {_minutes(s['at'])} {s['step']}: {s['result']} {_shown(s['sn'])}" for s in data["steps"]
    ]
    _emit(args, data, "\n".join(lines))
    return 0


def cmd_job_cancel(args: argparse.Namespace) -> int:
    """Cancel a queued, paused or crashed job: its request is open again for a new job.
    Cancelling writes off the job's unfinished card, so a second operator confirms (dual
    control); the confirmation is an audit event in the cancel's transaction."""
    registry = _registry(args)
    actor = acting(registry, "job.cancel")
    confirmer = confirmed(registry, actor, args, "job.cancel")
    cancel_job(
        registry,
        args.job,
        operator=actor.name,
        confirmed_by=confirmer,
        reason=args.reason,
        station=args.station_name,
    )
    _emit(
        args,
        _job_dict(registry, args.job),
        f"作业 {args.job} 已取消 (cancelled)；补/换卡申请重新待制卡，可再次提交作业",
    )
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def common(p: argparse.ArgumentParser, creates: bool = False) -> None:
        add_db_option(p, creates=creates)
        add_common_options(p)

    reg = sub.add_parser(
        "registry",
        help="card statuses (loss, reissue …)",
        description="The card registry. Only `registry init` and `registry enroll` create the "
        "database; every other command needs an existing one (--db).",
    ).add_subparsers(dest="registry_command", required=True)
    p = reg.add_parser(
        "init", help="create an empty registry database (--db); refuses an existing one"
    )
    common(p, creates=True)
    p.set_defaults(func=cmd_registry_init)
    p = reg.add_parser("enroll", help="register a person and their existing card (JSON)")
    p.add_argument("file", help="the person and card as JSON (see docs)")
    common(p)
    p.set_defaults(func=cmd_enroll)
    for name, text in (
        ("report-loss", "预挂失 provisional loss"),
        ("formalize-loss", "正式挂失 formal loss"),
        ("unreport", "解挂"),
    ):
        p = reg.add_parser(name, help=text)
        p.add_argument("card", help="card number (卡号)")
        if name == "report-loss":
            p.add_argument("--channel", default="counter", help="how it was reported")
        else:
            p.add_argument("--evidence", required=True, help="ID document checked")
            add_agent_options(p)
        common(p)
        p.set_defaults(func=cmd_transition)
    p = reg.add_parser(
        "request-reissue",
        help="补卡申请 and the 领卡证明 PDF (both or neither: an unwritable --out changes nothing)",
    )
    p.add_argument("card", help="the lost card's number (卡号), formally reported lost")
    p.add_argument("--counter", default="", help="受理窗口")
    p.add_argument("--out", help="where the 领卡证明 PDF goes (never overwritten: -2, -3 …)")
    add_agent_options(p)
    common(p)
    p.set_defaults(func=cmd_request_reissue)
    p = reg.add_parser(
        "change",
        help="换领: a new card for a holder whose name or ID number changed, and its 领卡证明",
        description="换领 (identity data changed): on the 公安部门变更证明 and the "
        "社保经办机构更改证明; the person's record takes the new name/ID number when the new card "
        "is activated.",
    )
    p.add_argument("card", help="the holder's active card (卡号)")
    p.add_argument("--new-name", help="变更后的姓名 (omit when the name did not change)")
    p.add_argument("--new-id", help="变更后的身份证号码 (omit when the number did not change)")
    p.add_argument("--old-name", required=True, help="变更证明上的原姓名 (checked: the holder's)")
    p.add_argument("--old-id", required=True, help="变更证明上的原身份证号码 (checked)")
    p.add_argument("--certificate", required=True, help="公安部门变更证明编号")
    p.add_argument("--authority", required=True, help="出具变更证明的公安机关")
    p.add_argument("--bureau-certificate", required=True, help="社保经办机构更改证明编号")
    p.add_argument("--counter", default="", help="受理窗口")
    p.add_argument("--out", help="where the 领卡证明 PDF goes (never overwritten: -2, -3 …)")
    add_agent_options(p)
    common(p)
    p.set_defaults(func=cmd_request_change)
    p = reg.add_parser("reprint", help="补打: a 领卡证明 or 验卡单 again from the registry")
    p.add_argument(
        "number",
        help="request number (SSCARD-REQ-000001 or 1) or 验卡单 number (YK-20261125-000001)",
    )
    p.add_argument("--out", help="where the PDF goes (never overwritten: -2, -3 …)")
    add_confirm_options(p)
    common(p)
    p.set_defaults(func=cmd_reprint)
    p = reg.add_parser("show", help="a card's status and history")
    p.add_argument("card", help="card number (卡号)")
    common(p)
    p.set_defaults(func=cmd_show)
    p = reg.add_parser(
        "list", help="a page of cards: number, status, masked holder (--status, --after)"
    )
    _status_option(p, list(STATUS_NAMES))
    common(p)
    p.set_defaults(func=cmd_registry_list)
    p = reg.add_parser(
        "sweep", help="record the lapse of every 预挂失 past its deadline (periodic task)"
    )
    common(p)
    p.set_defaults(func=cmd_registry_sweep)
    p = reg.add_parser("seed", help="fill the registry with synthetic persons and cards (testing)")
    p.add_argument("--persons", type=int, required=True, help="how many persons to add")
    common(p)
    p.set_defaults(func=cmd_registry_seed)
    from personalize.fee_commands import add_registry_parsers  # uses this module's helpers

    add_registry_parsers(reg)  # pay-fee, waive-fee, fees
    from personalize.withdraw_commands import add_registry_parsers as add_withdraw_parser

    add_withdraw_parser(reg)  # withdraw (撤销申请)

    audit = sub.add_parser("audit", help="the audit log").add_subparsers(
        dest="audit_command", required=True
    )
    p = audit.add_parser(
        "verify",
        help="check the keyed chain, its checkpoints and every state row against it",
        description="Check the audit chain with the audit key (--hsm): ids, links and keyed "
        "hashes; every checkpoint of the log (truncation, deleted tail, rewritten chain); every "
        "card, status-history, blacklist, request and job row against the event that explains "
        "it. Exit 1 and each problem named when anything does not hold. By default only what "
        "is new since the last verification (its checkpoint of verification); the whole chain "
        "with --full, on the first run, and when the last full walk is --full-every days old.",
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="walk the whole chain and every state row (not only what is new)",
    )
    p.add_argument(
        "--full-every",
        type=_days,
        default=FULL_EVERY.days,
        metavar="DAYS",
        help=f"walk the whole chain when the last full walk is this old "
        f"(default {FULL_EVERY.days}; 0: always)",
    )
    common(p)
    p.set_defaults(func=cmd_audit_verify)

    job = sub.add_parser("job", help="personalization jobs").add_subparsers(
        dest="job_command", required=True
    )
    station_help = "the station's configuration (TOML)"
    p = job.add_parser("submit", help="validate and queue a job (JSON file)")
    p.add_argument("file", help="the job as JSON (see docs)")
    p.add_argument("--station", required=True, help=station_help)
    p.add_argument("--json", action="store_true", help="output JSON (errors too)")
    p.set_defaults(func=cmd_job_submit)
    p = job.add_parser("run", help="run (or resume) a job on this station")
    p.add_argument("job", type=int, help="job number")
    p.add_argument("--station", required=True, help=station_help)
    p.add_argument("--json", action="store_true", help="output JSON (errors too)")
    p.set_defaults(func=cmd_job_run)
    for name, func, text in (
        ("list", cmd_job_list, "a page of jobs: holder (masked), cards, station, times, reason"),
        ("show", cmd_job_show, "one job with its reason and step log"),
        ("cancel", cmd_job_cancel, "cancel a queued or paused job"),
    ):
        p = job.add_parser(name, help=text, description=f"{text[0].upper()}{text[1:]}.")
        if name != "list":
            p.add_argument("job", type=int, help="job number")
        else:
            _status_option(p, list(JOB_STATUS_NAMES))
        common(p)
        if name == "cancel":
            p.add_argument("--reason", required=True, help="why (recorded and audited)")
            p.add_argument(
                "--station-name",
                help="the station cancelling: it may cancel a job it holds the lease of",
            )
            add_confirm_options(p)
        p.set_defaults(func=func)
