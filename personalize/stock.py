"""Card stock (库存) and the daily reconciliation (日结对账), docs/business-rules.md "Card
stock": blank cards are numbered stock; a card center accounts each day, per station, for
cards received, personalized, rejected (with the reason), used as test cards, and on hand,
and the counts must reconcile.

The ledger is :mod:`personalize.stock_store`. Deliveries and test cards are recorded here
(an operator's action, ``stock.receive`` / ``stock.test_card``); a personalized card is
recorded by ``Registry.activate`` and a rejected one by the job's write-off
(``JobRunner._write_off``, ``end_job``), each in the transaction of what it records. Days
are the region policy's local days (docs/business-rules.md "Time"). A station going below
zero is not refused — the cards are physically there or not — but the day's report flags
it, and every count the ledger and the job records disagree on is listed, never hidden.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from personalize.registry import Registry, _iso
from personalize.report_pdf import ReportPdf
from personalize.stock_store import JobCount, MoveKind, MoveSum, StockMove

__all__ = [
    "MoveKind",
    "ReasonCount",
    "StationDay",
    "StationStock",
    "StockDayReport",
    "StockError",
    "StockMove",
    "day_report",
    "day_report_pdf",
    "ended_job_reason",
    "receive_stock",
    "stock_levels",
    "take_test_card",
    "write_off_reason",
]

MAX_TEXT = 200  # a station name, batch or reason longer than this is refused

# Where in a job a card was written off (personalize/jobs.py STEPS): the reason a rejected
# card is counted under; the job's own words are kept beside it (``StockMove.detail``).
STEP_LABELS = {
    "feed": "进卡",
    "chip_write": "写芯片",
    "chip_verify": "芯片校验",
    "encode_stripe": "写磁条",
    "stripe_verify": "磁条校验",
    "print_face": "打印卡面",
    "activate": "启用",
}


class StockError(ValueError):
    """Stock input refused: nothing was written."""


def write_off_reason(step: str | None, *, lost: bool) -> str:
    """The reason a card written off by a job's runner is counted under: the step it failed
    at, and whether it went to the reject bin (不合格) or was lost (丢失)."""
    return f"{STEP_LABELS.get(step or '', '作业')}{'丢失' if lost else '不合格'}"


def ended_job_reason(action: str) -> str:
    """The reason a fed card released by a cancelled or failed job is counted under."""
    return "作业取消" if action == "cancel" else "作业失败"


def _text(value: str, what: str, english: str) -> str:
    text = value.strip()
    if not text:
        raise StockError(f"{what}不能为空 ({english} is required)")
    if len(text) > MAX_TEXT:
        raise StockError(f"{what}过长，最多 {MAX_TEXT} 字 ({english} too long)")
    return text


def receive_stock(
    registry: Registry, station: str, count: int, *, batch: str, operator: str
) -> StockMove:
    """Record a delivery of ``count`` blank cards to ``station`` (入库), with its batch or
    card-serial range, audited as ``operator``'s ``stock.received``."""
    where = _text(station, "工位", "the station")
    what = _text(batch, "批次或卡号段", "the batch or serial range")
    if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
        raise StockError(f"入库数量须为正整数 (the count must be a whole number ≥ 1): {count!r}")
    with registry.transaction():
        return registry.record_stock(MoveKind.RECEIVED, where, count, operator=operator, batch=what)


def take_test_card(registry: Registry, station: str, *, reason: str, operator: str) -> StockMove:
    """Record one blank card of ``station`` taken out as a test card (领用测试卡), with the
    reason, audited as ``operator``'s ``stock.test``."""
    where = _text(station, "工位", "the station")
    why = _text(reason, "领用原因", "the reason")
    with registry.transaction():
        return registry.record_stock(MoveKind.TEST, where, 1, operator=operator, reason=why)


# --------------------------------------------------------------------- levels


@dataclass(frozen=True)
class StationStock:
    """A station's stock, all time: what came in, what left and why, and what is on hand."""

    station: str
    received: int
    personalized: int
    rejected: int
    test: int

    @property
    def on_hand(self) -> int:
        return self.received - self.personalized - self.rejected - self.test


def _by_kind(sums: Iterable[MoveSum], station: str) -> dict[MoveKind, int]:
    totals = dict.fromkeys(MoveKind, 0)
    for s in sums:
        if s.station == station:
            totals[s.kind] += s.quantity
    return totals


def _balance(sums: Iterable[MoveSum], station: str) -> int:
    return sum(kind.sign * n for kind, n in _by_kind(sums, station).items())


def stock_levels(registry: Registry) -> list[StationStock]:
    """Every station's stock, all time, by station name."""
    sums = registry.stock.sums()
    levels = []
    for station in sorted({s.station for s in sums}):
        totals = _by_kind(sums, station)
        levels.append(
            StationStock(
                station,
                received=totals[MoveKind.RECEIVED],
                personalized=totals[MoveKind.PERSONALIZED],
                rejected=totals[MoveKind.REJECTED],
                test=totals[MoveKind.TEST],
            )
        )
    return levels


# --------------------------------------------------------------------- the day's report


@dataclass(frozen=True)
class ReasonCount:
    reason: str
    count: int


@dataclass(frozen=True)
class StationDay:
    """One station's day: the ledger's counts, what the job records say, and every
    disagreement (``discrepancies``, Chinese with English)."""

    station: str
    opening: int
    received: int
    personalized: int
    rejected: int
    rejected_by_reason: tuple[ReasonCount, ...]
    test: int
    closing: int
    jobs_personalized: int  # cards the station's jobs activated that day
    jobs_rejected: int  # cards the station's jobs wrote off that day
    lowest: int  # the lowest on hand the day reached
    discrepancies: tuple[str, ...]

    @property
    def adds_up(self) -> bool:
        """closing = opening + received − personalized − rejected − test."""
        return self.closing == (
            self.opening + self.received - self.personalized - self.rejected - self.test
        )


@dataclass(frozen=True)
class StockDayReport:
    """The daily reconciliation (日结对账) of ``day`` (the region's local day) for every
    station, or the one asked for, with the totals and the day's rejected cards."""

    day: date
    station: str | None  # the one station asked for, or None: all
    authority: str
    time_zone: str
    stations: tuple[StationDay, ...]
    total: StationDay
    rejects: tuple[StockMove, ...]  # the day's rejected cards, with the job's reason
    generated_at: str  # local wall-clock time, YYYY-MM-DD HH:MM

    @property
    def discrepancies(self) -> tuple[str, ...]:
        return tuple(d for s in self.stations for d in s.discrepancies)

    @property
    def reconciled(self) -> bool:
        return not self.discrepancies


def day_span(registry: Registry, day: date) -> tuple[str, str]:
    """The region's local ``day`` as [start, end) in stored (UTC ISO 8601) form."""
    zone = registry.policy.zone
    start = datetime.combine(day, time(), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
    return _iso(start), _iso(end)


def _lowest(opening: int, moves: Iterable[StockMove]) -> int:
    """The lowest balance over the day's movements, in order, from ``opening``."""
    balance = lowest = opening
    for move in moves:
        balance += move.kind.sign * move.quantity
        lowest = min(lowest, balance)
    return lowest


def _station_day(
    station: str,
    opening: list[MoveSum],
    moves: list[StockMove],
    closing: list[MoveSum],
    jobs: JobCount,
) -> StationDay:
    mine = [m for m in moves if m.station == station]
    counts = dict.fromkeys(MoveKind, 0)
    reasons: dict[str, int] = {}
    for m in mine:
        counts[m.kind] += m.quantity
        if m.kind == MoveKind.REJECTED:
            reason = m.reason or "未说明"
            reasons[reason] = reasons.get(reason, 0) + m.quantity
    start = _balance(opening, station)
    day = StationDay(
        station=station,
        opening=start,
        received=counts[MoveKind.RECEIVED],
        personalized=counts[MoveKind.PERSONALIZED],
        rejected=counts[MoveKind.REJECTED],
        rejected_by_reason=tuple(ReasonCount(r, n) for r, n in sorted(reasons.items())),
        test=counts[MoveKind.TEST],
        closing=_balance(closing, station),
        jobs_personalized=jobs.activated,
        jobs_rejected=jobs.written_off,
        lowest=_lowest(start, mine),
        discrepancies=(),
    )
    return replace(day, discrepancies=_discrepancies(day))


def _discrepancies(day: StationDay) -> tuple[str, ...]:
    """Every way ``day`` does not reconcile, in words."""
    s = day.station
    found = []
    if not day.adds_up:
        found.append(
            f"工位 {s}：期末 {day.closing} ≠ 期初 {day.opening} + 入库 {day.received} − 制成 "
            f"{day.personalized} − 废卡 {day.rejected} − 测试卡 {day.test} "
            "(the closing stock is not opening + received − personalized − rejected − test)"
        )
    if day.personalized != day.jobs_personalized:
        found.append(
            f"工位 {s}：台账制成 {day.personalized} 张，作业记录启用 {day.jobs_personalized} 张 "
            f"(the ledger has {day.personalized} personalized, the jobs activated "
            f"{day.jobs_personalized})"
        )
    if day.rejected != day.jobs_rejected:
        found.append(
            f"工位 {s}：台账废卡 {day.rejected} 张，作业记录报废 {day.jobs_rejected} 张 "
            f"(the ledger has {day.rejected} rejected, the jobs wrote off {day.jobs_rejected})"
        )
    if day.lowest < 0:
        found.append(
            f"工位 {s}：库存曾为负（最低 {day.lowest}），领用多于入库，请核对入库登记 "
            f"(stock went below zero, lowest {day.lowest}: more cards used than received)"
        )
    return tuple(found)


def _total(days: list[StationDay]) -> StationDay:
    reasons: dict[str, int] = {}
    for d in days:
        for r in d.rejected_by_reason:
            reasons[r.reason] = reasons.get(r.reason, 0) + r.count
    return StationDay(
        station="合计",
        opening=sum(d.opening for d in days),
        received=sum(d.received for d in days),
        personalized=sum(d.personalized for d in days),
        rejected=sum(d.rejected for d in days),
        rejected_by_reason=tuple(ReasonCount(r, n) for r, n in sorted(reasons.items())),
        test=sum(d.test for d in days),
        closing=sum(d.closing for d in days),
        jobs_personalized=sum(d.jobs_personalized for d in days),
        jobs_rejected=sum(d.jobs_rejected for d in days),
        lowest=min((d.lowest for d in days), default=0),
        discrepancies=tuple(x for d in days for x in d.discrepancies),
    )


def day_report(registry: Registry, day: date, station: str | None = None) -> StockDayReport:
    """The reconciliation of the region's local ``day``, per station (every station with a
    movement up to the day's end or a job record that day; or only ``station``): opening
    and closing stock are each summed from the whole ledger, the day's counts from its
    movements, and the personalized and rejected counts are checked against what the
    station's jobs recorded that day (cards activated, cards written off)."""
    since, until = day_span(registry, day)
    store = registry.stock
    opening, closing = store.sums(until=since), store.sums(until=until)
    moves = store.moves(since=since, until=until)
    jobs = {j.station: j for j in store.job_counts(since, until)}
    names = sorted({s.station for s in closing} | jobs.keys())
    if station is not None:
        names = [station]
    days = [
        _station_day(name, opening, moves, closing, jobs.get(name, JobCount(name, 0, 0)))
        for name in names
    ]
    policy = registry.policy
    return StockDayReport(
        day=day,
        station=station,
        authority=policy.authority,
        time_zone=policy.time_zone,
        stations=tuple(days),
        total=_total(days),
        rejects=tuple(m for m in moves if m.kind == MoveKind.REJECTED and m.station in names),
        generated_at=policy.local_time(registry.clock()).strftime("%Y-%m-%d %H:%M"),
    )


# --------------------------------------------------------------------- the PDF

COLUMNS = ("工位", "期初", "入库", "制成", "废卡", "测试卡", "期末", "作业启用", "作业报废")


def _cells(d: StationDay) -> tuple[str, ...]:
    numbers = (
        d.opening,
        d.received,
        d.personalized,
        d.rejected,
        d.test,
        d.closing,
        d.jobs_personalized,
        d.jobs_rejected,
    )
    return (d.station, *(str(n) for n in numbers))


def day_report_pdf(report: StockDayReport) -> bytes:
    """The daily reconciliation as an A4 PDF (more pages when it does not fit): per station
    opening, received, personalized, rejected, test cards and closing beside what the jobs
    recorded, the totals, the rejected cards by reason and one by one, every discrepancy
    (or that the counts reconcile), and signature lines (``personalize.report_pdf``)."""
    where = f"工位 {report.station}" if report.station else "全部工位"
    doc = ReportPdf(
        title=f"空白卡库存日结对账表 {report.day.isoformat()} {where}",
        subject="社会保障卡空白卡库存日结对账",
        heading="社会保障卡空白卡库存日结对账表",
        dated=f"对账日期：{report.day.strftime('%Y年%m月%d日')}（{report.time_zone}）　{where}",
        generated_at=report.generated_at,
        authority=report.authority,
    )
    mm = doc.mm
    y = doc.heading(doc.header(), "一、各工位收发存（张）")
    y = doc.row(y, COLUMNS, 9.5, 34 * mm)
    doc.rule(y)
    for d in report.stations:
        y = doc.row(y, _cells(d), 9.5, 34 * mm, bad=bool(d.discrepancies))
    if not report.stations:
        y = doc.row(y, ("（当日无库存记录）", *("0" for _ in COLUMNS[1:])), 9.5, 34 * mm)
    doc.rule(y)
    y = doc.row(y, _cells(report.total), 10, 34 * mm, bad=bool(report.total.discrepancies))
    note = (
        "期末 = 期初 + 入库 − 制成 − 废卡 − 测试卡；"
        "作业启用/作业报废取自制卡作业记录，须与制成/废卡相符。"
    )
    y = doc.lines(y, [note], 8) - 5.6 * mm

    y = doc.heading(y, "二、废卡原因（张）")
    reasons = [
        f"{d.station}：" + "，".join(f"{r.reason} {r.count}" for r in d.rejected_by_reason)
        for d in report.stations
        if d.rejected_by_reason
    ] or ["当日无废卡"]
    y = doc.lines(y, reasons, 10)
    zone = ZoneInfo(report.time_zone)
    rejects = [
        f"{m.station} 作业 {m.job_id or '—'} 芯片 {m.sn or '—'} "
        f"{datetime.fromisoformat(m.at).astimezone(zone).strftime('%H:%M')}："
        f"{m.reason}；{m.detail or ''}"
        for m in report.rejects
    ]
    y = doc.lines(y, rejects, 8.5, indent=6 * mm, leading=4.3 * mm, needed=5 * mm) - 6 * mm

    y = doc.heading(y, "三、差异")
    y = doc.findings(y, report.discrepancies, "无差异：各项数量相符 (all counts reconcile)")
    return doc.finish(y, ("制卡中心经办人签字：", "复核人签字："))
