"""The day's fee report (工本费日报, issue 17; docs/business-rules.md "Fees and receipts"): for
the region's local day, per request kind, the fees paid (count and sum, each receipt listed),
waived (count and sum, each with its reason and approver) and outstanding at the day's close
(未收: requests applied for by then whose fee was not settled by then). The sums the database
makes are checked against the rows listed, every amount against its request's fee, and the
rows against the day's ``fee.paid``/``fee.waived`` audit events; every disagreement is
listed, never hidden. The PDF is laid out as the stock reconciliation (``personalize.stock``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from personalize.documents import FONT, wrap_text
from personalize.fee_store import Outcome, OutcomeSum, Settlement, Unsettled
from personalize.fees import fees
from personalize.lifecycle import REQUEST_KIND_LABELS
from personalize.registry import Registry, request_number
from personalize.stock import day_span
from printer.face import register_pdf_font

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
    from reportlab.lib.colors import black, red
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.pdfgen import canvas

    register_pdf_font()
    width, height = A4
    left, right, bottom = 18 * mm, width - 18 * mm, 22 * mm
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    day = report.day.strftime("%Y年%m月%d日")
    pdf.setTitle(f"社会保障卡工本费日报 {report.day.isoformat()}")
    pdf.setAuthor(report.authority)
    pdf.setSubject("社会保障卡工本费收取、免收与未收日报")
    pdf.setCreator("sscard")

    def header() -> float:
        pdf.setFont(FONT, 17)
        pdf.drawCentredString(width / 2, height - 20 * mm, "社会保障卡工本费日报")
        pdf.setFont(FONT, 10)
        pdf.drawString(left, height - 29 * mm, f"报表日期：{day}（{report.time_zone}）")
        pdf.drawRightString(right, height - 29 * mm, f"生成时间：{report.generated_at}")
        pdf.line(left, height - 32 * mm, right, height - 32 * mm)
        return float(height - 40 * mm)

    def room(y: float, needed: float) -> float:
        if y - needed >= bottom:
            return float(y)
        pdf.showPage()
        return header()

    def heading(y: float, text: str) -> float:
        y = room(y, 14 * mm)
        pdf.setFont(FONT, 12)
        pdf.drawString(left, y, text)
        return float(y - 7 * mm)

    def lines(y: float, texts: list[str], size: float, indent: float = 0) -> float:
        pdf.setFont(FONT, size)
        for line in texts:
            for piece in wrap_text(line, FONT, size, right - left - indent):
                y = room(y, 6 * mm)
                pdf.drawString(left + indent, y, piece)
                y -= size * 0.55 * mm
        return y

    y = heading(header(), "一、汇总（元）")
    first_w = 30 * mm
    step = (right - left - first_w) / (len(COLUMNS) - 1)

    def row(y: float, cells: tuple[str, ...], size: float) -> float:
        y = room(y, 7 * mm)
        pdf.setFont(FONT, size)
        pdf.drawString(left, y, cells[0])
        for i, text in enumerate(cells[1:]):
            pdf.drawRightString(left + first_w + (i + 1) * step - 3 * mm, y, text)
        return float(y - 6 * mm)

    y = row(y, COLUMNS, 9.5)
    pdf.line(left, y + 4 * mm, right, y + 4 * mm)
    for d in report.kinds:
        y = row(y, kind_cells(d), 9.5)
    pdf.line(left, y + 4 * mm, right, y + 4 * mm)
    y = row(y, kind_cells(report.total), 10)
    y = lines(y, ["未收：截至当日结束已申请而未收取、未免收的工本费。"], 8) - 6 * mm

    zone = ZoneInfo(report.time_zone)
    y = heading(y, "二、收据与免收明细")
    y = (
        lines(y, [settlement_line(s, zone) for s in report.settlements] or ["当日无收费记录"], 9)
        - 6 * mm
    )
    y = heading(y, "三、未收明细")
    y = lines(y, [outstanding_line(u) for u in report.outstanding] or ["无"], 9) - 6 * mm

    y = heading(y, "四、差异")
    if report.reconciled:
        y = lines(y, ["无差异：汇总与明细相符 (the sums match the rows)"], 10)
    else:
        pdf.setFillColor(red)
        y = lines(y, [f"{n}. {d}" for n, d in enumerate(report.discrepancies, 1)], 10)
        pdf.setFillColor(black)
    y = room(y - 12 * mm, 20 * mm)
    pdf.setFont(FONT, 10.5)
    half = (right - left) / 2
    for x, label in ((left, "收费经办人签字："), (left + half, "复核人签字：")):
        pdf.drawString(x, y, label)
        start = x + stringWidth(label, FONT, 10.5) + 2 * mm
        pdf.line(start, y - 1 * mm, x + half - 8 * mm, y - 1 * mm)
    pdf.setFont(FONT, 9)
    pdf.drawRightString(right, bottom - 8 * mm, report.authority)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
