"""Documents handed to the holder, in Chinese (reportlab, WenQuanYi Micro Hei embedded):
the 领卡证明 (collection certificate, docs/business-rules.md "Documents") with the request number as
a QR code and a Code 128 barcode."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from personalize.fees import fee_settlement, fee_state
from personalize.lifecycle import REQUEST_KIND_LABELS, RequestStatus
from personalize.outfiles import write_new
from personalize.registry import Agent, Registry, RegistryError, mask_id, request_number
from printer.face import PDF_FONT, register_pdf_font

FONT = PDF_FONT


@dataclass(frozen=True)
class CollectionCertificate:
    """What the 领卡证明 says (docs/business-rules.md "Documents the holder receives")."""

    request_no: str
    name: str
    ssn: str
    old_card_number: str
    applied_on: date
    collect_on: date
    place: str
    counter: str
    operator: str
    authority: str
    kind: str = "补卡"  # or 换卡, or 换领（身份信息变更）
    change: tuple[tuple[str, str], ...] = ()  # a 换领's rows: what changed, its certificates
    fee: int = 0  # 工本费, yuan
    fee_state: str = ""  # the fee and its settlement (personalize.fees.fee_state): 已收/免收/未收
    agent_name: str = ""  # 代办人 (委托代办), empty when the holder applied in person
    agent_id: str = ""
    agent_documents: str = ""  # what the agent showed (both ID cards and their copies)
    service_phone: str = ""
    reprinted_at: datetime | None = None  # local time of a 补打 (reprint)


def collection_certificate(
    registry: Registry, request_id: int, *, reprinted_at: datetime | None = None
) -> CollectionCertificate:
    """The 领卡证明 of a stored request, from the registry alone (so it can be printed
    again: ``reprinted_at`` marks it 补打, in the policy's zone). A withdrawn request's is
    never printed again: no card is to be collected on it."""
    request = registry.request(request_id)
    if reprinted_at is not None and request.status == RequestStatus.WITHDRAWN:
        raise RegistryError(
            f"申请 {request_number(request_id)} 已撤销，不补打领卡证明 (the request was "
            "withdrawn: its 领卡证明 is not reprinted)"
        )
    old = registry.card_by_id(request.old_card_id)
    person = registry.person(old.person_id)
    agent = Agent.from_text(request.agent)
    policy = registry.policy
    return CollectionCertificate(
        request_no=request_number(request_id),
        name=person.name,
        ssn=person.ssn,
        old_card_number=old.card_number,
        applied_on=date.fromisoformat(request.applied_on),
        collect_on=date.fromisoformat(request.collect_on),
        place=request.place,
        counter=request.counter or "",
        operator=request.operator,
        authority=policy.authority,
        kind=KIND_LABELS.get(request.kind, request.kind),
        change=_change_rows(registry, request_id),
        fee=request.fee,
        fee_state=fee_state(request, fee_settlement(registry, request.id)),
        agent_name="" if agent is None else agent.name,
        agent_id="" if agent is None else agent.id_number,
        agent_documents="" if agent is None else agent.documents,
        service_phone=policy.service_phone,
        reprinted_at=None if reprinted_at is None else policy.local_time(reprinted_at),
    )


# The 领卡证明's 业务类型 of each request kind: its name, a 换领 with its reason.
KIND_LABELS = {**REQUEST_KIND_LABELS, "change": "换领（身份信息变更）"}


def _change_rows(registry: Registry, request_id: int) -> tuple[tuple[str, str], ...]:
    """A 换领's rows on its 领卡证明 (docs/business-rules.md "换领 (identity data changed)"):
    what changed, old → new (ID numbers masked), and the two certificates; none for any
    other request. Each row short enough to stay clear of the codes beside it."""
    change = registry.identity_change(request_id)
    if change is None:
        return ()
    changed = tuple(
        (label, f"{shown(old)} → {shown(new)}")
        for label, old, new, shown in (
            ("姓名变更", change.old_name, change.new_name, str),
            ("号码变更", change.old_ssn, change.new_ssn, mask_id),
        )
        if old != new
    )
    return (
        *changed,
        ("公安变更证明", change.certificate),
        ("出具机关", change.authority),
        ("社保更改证明", change.bureau_certificate),
    )


def collection_certificate_bytes(cert: CollectionCertificate) -> bytes:
    """The 领卡证明 as a PDF (A5 landscape): the rows, the request number as a QR code and a
    Code 128 barcode, signature lines for the applicant (or agent) and the operator, the
    seal area, the service phone; title and author (the issuing authority) in its
    metadata. A reprint says 补打 with the reprint time."""
    from reportlab.graphics import renderPDF
    from reportlab.graphics.barcode import code128, qr
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib.colors import black, red
    from reportlab.lib.pagesizes import A5, landscape
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    register_pdf_font()
    width, height = landscape(A5)
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=(width, height))
    title = f"社会保障卡领卡证明 {cert.request_no}"
    pdf.setTitle(title + (" （补打）" if cert.reprinted_at else ""))
    pdf.setAuthor(cert.authority)
    pdf.setSubject(f"{cert.kind}申请 {cert.request_no}")
    pdf.setCreator("sscard")
    pdf.setFont(FONT, 18)
    pdf.drawCentredString(width / 2, height - 16 * mm, "社会保障卡领卡证明")
    if cert.reprinted_at is not None:
        pdf.setFillColor(red)
        pdf.setFont(FONT, 11)
        pdf.drawRightString(
            width - 12 * mm,
            height - 12 * mm,
            f"补打 {cert.reprinted_at.strftime('%Y年%m月%d日 %H:%M')}",
        )
        pdf.setFillColor(black)
    agent = (
        f"{cert.agent_name}（{mask_id(cert.agent_id)}）" if cert.agent_name else "无（本人办理）"
    )
    rows = [
        ("业务编号", cert.request_no),
        ("业务类型", cert.kind),
        *cert.change,
        ("姓名", cert.name),
        ("社会保障号码", mask_id(cert.ssn)),
        ("原社会保障卡号", cert.old_card_number),
        ("申请日期", cert.applied_on.strftime("%Y年%m月%d日")),
        ("领卡日期", f"{cert.collect_on.strftime('%Y年%m月%d日')} 起"),
        ("领卡地点", cert.place),
        ("工本费", cert.fee_state),
        ("代办人", agent),
        *([("代办所验证件", cert.agent_documents)] if cert.agent_documents else []),
        ("受理窗口", cert.counter or "—"),
        ("经办人", cert.operator),
    ]
    pdf.setFont(FONT, 10.5)
    y = height - 28 * mm
    step = min(6.2 * mm, (y - 34 * mm) / len(rows))  # above the signature lines
    for label, value in rows:
        pdf.drawString(14 * mm, y, f"{label}：")
        pdf.drawString(44 * mm, y, value)
        y -= step
    # the request number, machine-readable
    code = qr.QrCodeWidget(cert.request_no)
    x0, y0, x1, y1 = code.getBounds()
    size = 27 * mm
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(code)
    renderPDF.draw(drawing, pdf, width - 12 * mm - size, height - 52 * mm)
    barcode = code128.Code128(cert.request_no, barHeight=8 * mm, barWidth=0.22 * mm)
    barcode.drawOn(pdf, width - 12 * mm - barcode.width, height - 63 * mm)
    # the seal area (印章) of the issuing office
    seal = 30 * mm
    seal_x, seal_y = width - 12 * mm - seal - 8 * mm, 38 * mm
    pdf.setDash(2, 2)
    pdf.rect(seal_x, seal_y, seal, seal)
    pdf.setDash()
    pdf.setFont(FONT, 9)
    pdf.drawCentredString(seal_x + seal / 2, seal_y + seal / 2 - 1.5 * mm, "（印章）")
    pdf.drawCentredString(seal_x + seal / 2, seal_y - 4.5 * mm, cert.authority)
    # signatures
    pdf.setFont(FONT, 10.5)
    applicant = "代办人签字" if cert.agent_name else "申请人签字"
    pdf.drawString(14 * mm, 28 * mm, f"{applicant}：")
    pdf.line(36 * mm, 27 * mm, 80 * mm, 27 * mm)
    pdf.drawString(86 * mm, 28 * mm, "经办人签字：")
    pdf.line(108 * mm, 27 * mm, 145 * mm, 27 * mm)
    pdf.setFont(FONT, 8.5)
    pdf.drawString(
        14 * mm,
        16 * mm,
        "等候期间凭本证明就医，请保留票据，领卡后按规定报销。领卡时请携带本证明及身份证。",
    )
    phone = f"服务电话：{cert.service_phone}　" if cert.service_phone else ""
    pdf.drawString(14 * mm, 10 * mm, f"{phone}{cert.authority}")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def collection_certificate_pdf(cert: CollectionCertificate, path: str | Path) -> Path:
    """Write the 领卡证明 to ``path`` — or the next free name beside it, never over an
    earlier document — and return the path written."""
    return write_new(Path(path), collection_certificate_bytes(cert))


@dataclass(frozen=True)
class ReportLine:
    item: str
    result: str  # 通过 / 未通过 / 未检
    detail: str


@dataclass(frozen=True)
class VerificationReport:
    """验卡单 (docs/diagnosis.md "The 验卡单"): every check, the verdict, the fee and the next
    step; the replacement request and its 领卡日期 when one was opened. Times are the
    region's wall-clock time (``YYYY-MM-DD HH:MM``); ``reprinted_at`` marks a 补打."""

    report_no: str
    card_number: str
    sn: str
    holder: str
    lines: tuple[ReportLine, ...]
    verdict: str
    fee: int
    next_step: str
    operator: str
    at: str
    authority: str
    method: str = "读卡检测"  # or 仅外观检查 (visual inspection only)
    request_no: str = ""
    collect_on: date | None = None
    reprinted_at: str = ""


def wrap_text(text: str, font: str, size: float, width: float) -> list[str]:
    """``text`` cut into lines no wider than ``width`` points in ``font`` at ``size``, never
    dropping a character: Latin words break at a space when the line has one in its second
    half, anything else (Chinese has no spaces) between two characters."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines: list[str] = []
    current = ""
    for char in text:
        if current and stringWidth(current + char, font, size) > width:
            cut = current.rfind(" ")
            if not char.isspace() and cut > len(current) // 2:
                lines.append(current[:cut])
                current = current[cut + 1 :] + char
            else:
                lines.append(current.rstrip())
                current = char.lstrip()
        else:
            current += char
    if current or not lines:
        lines.append(current)
    return lines


def verification_report_pdf(report: VerificationReport) -> bytes:
    """The 验卡单 as a one-page A4 PDF (more pages when the checks do not fit): the report
    number as Code 128, every text wrapped to its column, signature lines for the operator
    and the holder, and a 补打 mark with the reprint time on a reprint."""
    from io import BytesIO

    from reportlab.graphics.barcode import code128
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    register_pdf_font()
    width, height = A4
    left, right, bottom = 20 * mm, width - 20 * mm, 30 * mm
    buffer = BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    title = f"社会保障卡验卡单 {report.report_no}"
    pdf.setTitle(title + (" 补打" if report.reprinted_at else ""))
    pdf.setAuthor(report.authority)
    pdf.setSubject("社会保障卡验卡单")

    def header() -> float:
        pdf.setFont(FONT, 18)
        pdf.drawCentredString(width / 2, height - 22 * mm, "社会保障卡验卡单")
        if report.reprinted_at:
            pdf.setFont(FONT, 14)
            pdf.drawString(left, height - 22 * mm, "【补打】")
            pdf.setFont(FONT, 9)
            pdf.drawString(left, height - 27 * mm, f"补打时间：{report.reprinted_at}")
        barcode = code128.Code128(report.report_no, barHeight=11 * mm, barWidth=0.3 * mm)
        barcode.drawOn(pdf, right - barcode.width, height - 36 * mm)
        pdf.setFont(FONT, 9)
        pdf.drawRightString(right, height - 40 * mm, report.report_no)
        return float(height - 48 * mm)

    y = header()
    collect = report.collect_on.strftime("%Y年%m月%d日") + " 起" if report.collect_on else "—"
    fields = (
        ("验卡编号", report.report_no),
        ("验卡时间", report.at),
        ("社会保障卡号", report.card_number or "—"),
        ("芯片序列号", report.sn or "—"),
        ("持卡人", report.holder or "—"),
        ("检测方式", report.method),
        ("换卡受理编号", report.request_no or "—"),
        ("领卡日期", collect),
        ("经办人", report.operator),
    )
    pdf.setFont(FONT, 10)
    column = (right - left) / 2
    for pair in (fields[i : i + 2] for i in range(0, len(fields), 2)):
        cells = [wrap_text(f"{label}：{value}", FONT, 10, column - 4 * mm) for label, value in pair]
        for x, texts in zip((left, left + column), cells, strict=False):
            for n, text in enumerate(texts):
                pdf.drawString(x, y - n * 5 * mm, text)
        y -= max(len(texts) for texts in cells) * 5 * mm + 1.5 * mm
    y -= 4 * mm
    item_x, result_x, detail_x = left, left + 62 * mm, left + 80 * mm

    def table_head(y: float) -> float:
        pdf.setFont(FONT, 11)
        pdf.drawString(item_x, y, "检测项目")
        pdf.drawString(result_x, y, "结果")
        pdf.drawString(detail_x, y, "说明")
        pdf.line(left, y - 2 * mm, right, y - 2 * mm)
        return float(y - 7 * mm)

    y = table_head(y)
    for line in report.lines:
        columns = (
            (item_x, wrap_text(line.item, FONT, 9.5, result_x - item_x - 3 * mm)),
            (result_x, [line.result]),
            (detail_x, wrap_text(line.detail or "—", FONT, 9.5, right - detail_x)),
        )
        rows = max(len(texts) for _, texts in columns)
        if y - rows * 4.8 * mm < bottom + 60 * mm:
            pdf.showPage()
            y = table_head(header())
        pdf.setFont(FONT, 9.5)
        for x, texts in columns:
            for n, piece in enumerate(texts):
                pdf.drawString(x, y - n * 4.8 * mm, piece)
        y -= rows * 4.8 * mm + 1.5 * mm
    pdf.line(left, y + 1 * mm, right, y + 1 * mm)
    y -= 6 * mm
    for label, value, size in (
        ("结论", report.verdict, 12.0),
        ("费用", f"{report.fee} 元", 12.0),
        ("下一步", report.next_step, 11.0),
    ):
        pdf.setFont(FONT, size)
        for text in wrap_text(f"{label}：{value}", FONT, size, right - left):
            pdf.drawString(left, y, text)
            y -= size * 0.5 * mm
        y -= 2.5 * mm
    y = max(y - 10 * mm, bottom + 10 * mm)
    pdf.setFont(FONT, 10.5)
    for x, label in ((left, "经办人签字"), (left + column, "持卡人签字")):
        pdf.drawString(x, y, f"{label}：")
        pdf.line(x + 22 * mm, y - 1 * mm, x + column - 10 * mm, y - 1 * mm)
        pdf.drawString(x, y - 9 * mm, "日期：")
        pdf.line(x + 12 * mm, y - 10 * mm, x + column - 10 * mm, y - 10 * mm)
    pdf.setFont(FONT, 10)
    pdf.drawRightString(right, bottom - 8 * mm, report.authority)
    pdf.setFont(FONT, 8)
    note = "本单一式两份，持卡人与经办机构各执一份。"
    if report.request_no:
        note += "请于领卡日期起凭本单及身份证领取新卡。"
    pdf.drawString(left, bottom - 16 * mm, note)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
