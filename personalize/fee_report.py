"""The day's fee report (工本费日报, issue 17; docs/business-rules.md "Fees and receipts"): for
the region's local day, per request kind, the fees paid (count and sum, each receipt listed),
waived (count and sum, each with its reason and approver) and outstanding at the day's close
(未收: requests applied for by then whose fee was not settled by then). The sums the database
makes are checked against the rows listed, every amount against its request's fee, and the
rows against the day's ``fee.paid``/``fee.waived`` audit events; every disagreement is
listed, never hidden. The PDF is drawn as the stock reconciliation (``personalize.report_pdf``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from personalize.fee_store import Outcome, OutcomeSum, Settlement, Unsettled
from personalize.fees import fees
from personalize.lifecycle import REQUEST_KIND_LABELS
from personalize.registry import Registry, request_number
from personalize.report_pdf import ReportPdf
from personalize.stock import day_span

FEE_ACTIONS = ("fee.paid", "fee.waived")


def kind_label(kind: str) -> str:
    return REQUEST_KIND_LABELS.get(kind, kind)


@dataclass(frozen=True)
class KindDay:
    """One request kind's day (or the total, ``kind`` 合计): counts and sums in yuan."""

    kind: str
    paid: int
    paid_sum: int
    waived: int
    waived_sum: int
    outstanding: int
    outstanding_sum: int


@dataclass(frozen=True)
class FeeDayReport:
    day: date
    authority: str
    time_zone: str
    kinds: tuple[KindDay, ...]
    total: KindDay
    settlements: tuple[Settlement, ...]  # the day's receipts and waivers, in order
    outstanding: tuple[Unsettled, ...]  # unsettled at the day's close
    discrepancies: tuple[str, ...]
    generated_at: str  # local wall-clock time, YYYY-MM-DD HH:MM

    @property
    def reconciled(self) -> bool:
        return not self.discrepancies


def _kind_day(kind: str, rows: list[Settlement], open_: list[Unsettled]) -> KindDay:
    paid = [s.amount for s in rows if s.kind == kind and s.outcome == Outcome.PAID]
    waived = [s.amount for s in rows if s.kind == kind and s.outcome == Outcome.WAIVED]
    owed = [u.fee for u in open_ if u.kind == kind]
    return KindDay(kind, len(paid), sum(paid), len(waived), sum(waived), len(owed), sum(owed))


def _total(days: list[KindDay]) -> KindDay:
    return KindDay(
        "合计",
        *(sum(getattr(d, f) for d in days) for f in (
            "paid", "paid_sum", "waived", "waived_sum", "outstanding", "outstanding_sum"
        )),
    )  # fmt: skip


def _discrepancies(sums: list[OutcomeSum], rows: list[Settlement], events: int) -> tuple[str, ...]:
    """Every way the day's settlements do not add up, in words (Chinese, English)."""
    found = []
    for s in sums:
        mine = [r for r in rows if r.kind == s.kind and r.outcome == s.outcome]
        if (s.count, s.total) != (len(mine), sum(r.amount for r in mine)):
            found.append(
                f"{kind_label(s.kind)}{s.outcome.label}：汇总 {s.count} 笔 {s.total} 元，明细 "
                f"{len(mine)} 笔 {sum(r.amount for r in mine)} 元 (the sum does not match "
                "the rows)"
            )
    counted = {(s.kind, s.outcome) for s in sums}
    for r in rows:
        if (r.kind, r.outcome) not in counted:
            found.append(
                f"{request_number(r.request_id)}：明细未计入汇总 (a row missing from the sums)"
            )
        if r.amount != r.fee:
            found.append(
                f"{request_number(r.request_id)}：{r.outcome.label} {r.amount} 元，工本费 "
                f"{r.fee} 元 (the amount is not the request's fee)"
            )
    if events != len(rows):
        found.append(
            f"当日收费/免收审计事件 {events} 条，明细 {len(rows)} 笔 "
            f"({events} fee events in the audit chain, {len(rows)} settlements)"
        )
    return tuple(found)


def fee_day_report(registry: Registry, day: date) -> FeeDayReport:
    """The fee report of the region's local ``day``."""
    since, until = day_span(registry, day)
    store = fees(registry)
    rows = store.settled(since, until)
    open_ = store.unsettled(day.isoformat(), until)
    sums = store.sums(since, until)
    names = dict.fromkeys([*REQUEST_KIND_LABELS, *(r.kind for r in rows), *(u.kind for u in open_)])
    days = [_kind_day(k, rows, open_) for k in names]
    policy = registry.policy
    return FeeDayReport(
        day=day,
        authority=policy.authority,
        time_zone=policy.time_zone,
        kinds=tuple(days),
        total=_total(days),
        settlements=tuple(rows),
        outstanding=tuple(open_),
        discrepancies=_discrepancies(sums, rows, store.events(since, until, FEE_ACTIONS)),
        generated_at=policy.local_time(registry.clock()).strftime("%Y-%m-%d %H:%M"),
    )


def settlement_line(s: Settlement, zone: ZoneInfo) -> str:
    """One receipt or waiver as the report lists it."""
    at = datetime.fromisoformat(s.at).astimezone(zone).strftime("%H:%M")
    what = (
        f"收据号 {s.receipt_no}"
        if s.outcome == Outcome.PAID
        else f"免收：{s.reason}（批准人 {s.approved_by}）"
    )
    return (
        f"{at} {request_number(s.request_id)} {kind_label(s.kind)} {s.outcome.label} "
        f"{s.amount} 元 {what} 经办人 {s.operator}"
    )


def outstanding_line(u: Unsettled) -> str:
    return (
        f"{request_number(u.request_id)} {kind_label(u.kind)} 原卡 {u.card_number} "
        f"申请日 {u.applied_on} 未收 {u.fee} 元"
    )


COLUMNS = ("业务类型", "已收笔数", "已收金额", "免收笔数", "免收金额", "未收笔数", "未收金额")


def kind_cells(d: KindDay) -> tuple[str, ...]:
    numbers = (d.paid, d.paid_sum, d.waived, d.waived_sum, d.outstanding, d.outstanding_sum)
    return (kind_label(d.kind), *(str(n) for n in numbers))


def fee_day_report_pdf(report: FeeDayReport) -> bytes:
    """The day's fee report as an A4 PDF (more pages when it does not fit): the counts and
    sums per kind and their total, every receipt and waiver, every fee outstanding, every
    discrepancy (or that the sums match the rows), and signature lines."""
    doc = ReportPdf(
        title=f"社会保障卡工本费日报 {report.day.isoformat()}",
        subject="社会保障卡工本费收取、免收与未收日报",
        heading="社会保障卡工本费日报",
        dated=f"报表日期：{report.day.strftime('%Y年%m月%d日')}（{report.time_zone}）",
        generated_at=report.generated_at,
        authority=report.authority,
    )
    mm = doc.mm
    y = doc.heading(doc.header(), "一、汇总（元）")
    y = doc.row(y, COLUMNS, 9.5, 30 * mm)
    doc.rule(y)
    for d in report.kinds:
        y = doc.row(y, kind_cells(d), 9.5, 30 * mm)
    doc.rule(y)
    y = doc.row(y, kind_cells(report.total), 10, 30 * mm)
    y = doc.lines(y, ["未收：截至当日结束已申请而未收取、未免收的工本费。"], 8) - 6 * mm

    zone = ZoneInfo(report.time_zone)
    y = doc.heading(y, "二、收据与免收明细")
    settled = [settlement_line(s, zone) for s in report.settlements] or ["当日无收费记录"]
    y = doc.lines(y, settled, 9) - 6 * mm
    y = doc.heading(y, "三、未收明细")
    y = doc.lines(y, [outstanding_line(u) for u in report.outstanding] or ["无"], 9) - 6 * mm

    y = doc.heading(y, "四、差异")
    y = doc.findings(y, report.discrepancies, "无差异：汇总与明细相符 (the sums match the rows)")
    return doc.finish(y, ("收费经办人签字：", "复核人签字："))
