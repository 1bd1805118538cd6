"""Documents handed to the holder, in Chinese (reportlab, WenQuanYi Micro Hei embedded):
the 领卡证明 (collection certificate, docs/business-rules.md "Documents") with the request number as
a QR code and a Code 128 barcode."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from printer.face import FONT_PATH, FaceError

FONT = "WQY"


def mask_id(ssn: str) -> str:
    """First 6 and last 4 characters shown: 110105********002X."""
    return ssn[:6] + "*" * (len(ssn) - 10) + ssn[-4:]


@dataclass(frozen=True)
class CollectionCertificate:
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
    kind: str = "补卡"  # or 换卡


def _register_font() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if not FONT_PATH.exists():
        raise FaceError(f"{FONT_PATH} is missing: install Debian's fonts-wqy-microhei")
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT, str(FONT_PATH), subfontIndex=0))


def collection_certificate_pdf(cert: CollectionCertificate, path: str | Path) -> None:
    from reportlab.graphics import renderPDF
    from reportlab.graphics.barcode import code128, qr
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib.pagesizes import A5, landscape
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    _register_font()
    width, height = landscape(A5)
    pdf = canvas.Canvas(str(path), pagesize=(width, height))
    pdf.setTitle(f"社会保障卡领卡证明 {cert.request_no}")
    pdf.setFont(FONT, 20)
    pdf.drawCentredString(width / 2, height - 22 * mm, "社会保障卡领卡证明")
    pdf.setFont(FONT, 11)
    rows = [
        ("业务编号", cert.request_no),
        ("业务类型", cert.kind),
        ("姓名", cert.name),
        ("社会保障号码", mask_id(cert.ssn)),
        ("原社会保障卡号", cert.old_card_number),
        ("申请日期", cert.applied_on.strftime("%Y年%m月%d日")),
        ("领卡日期", f"{cert.collect_on.strftime('%Y年%m月%d日')} 起"),
        ("领卡地点", cert.place),
        ("受理窗口", cert.counter or "—"),
        ("经办人", cert.operator),
    ]
    y = height - 38 * mm
    for label, value in rows:
        pdf.drawString(20 * mm, y, f"{label}：")
        pdf.drawString(58 * mm, y, value)
        y -= 7.5 * mm
    pdf.setFont(FONT, 9)
    pdf.drawString(
        20 * mm,
        14 * mm,
        "等候期间凭本证明就医，请保留票据，领卡后按规定报销。领卡时请携带本证明及身份证。",
    )
    pdf.drawRightString(width - 15 * mm, 22 * mm, cert.authority)
    code = qr.QrCodeWidget(cert.request_no)
    x0, y0, x1, y1 = code.getBounds()
    size = 32 * mm
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(code)
    renderPDF.draw(drawing, pdf, width - 50 * mm, height - 75 * mm)
    barcode = code128.Code128(cert.request_no, barHeight=10 * mm, barWidth=0.25 * mm)
    barcode.drawOn(pdf, width - 15 * mm - barcode.width, height - 92 * mm)
    pdf.showPage()
    pdf.save()


@dataclass(frozen=True)
class ReportLine:
    item: str
    result: str  # 通过 / 未通过 / 未检
    detail: str


@dataclass(frozen=True)
class VerificationReport:
    """验卡单: every check, the verdict, the fee and the next step."""

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


def verification_report_pdf(report: VerificationReport, path: str | Path) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    _register_font()
    width, height = A4
    pdf = canvas.Canvas(str(path), pagesize=A4)
    pdf.setTitle(f"社会保障卡验卡单 {report.report_no}")
    pdf.setFont(FONT, 18)
    pdf.drawCentredString(width / 2, height - 25 * mm, "社会保障卡验卡单")
    pdf.setFont(FONT, 10)
    y = height - 38 * mm
    for label, value in (
        ("验卡编号", report.report_no),
        ("社会保障卡号", report.card_number or "—"),
        ("芯片序列号", report.sn or "—"),
        ("持卡人", report.holder or "—"),
        ("验卡时间", report.at),
        ("经办人", report.operator),
    ):
        pdf.drawString(20 * mm, y, f"{label}：{value}")
        y -= 6 * mm
    y -= 4 * mm
    pdf.setFont(FONT, 11)
    pdf.drawString(20 * mm, y, "检测项目")
    pdf.drawString(85 * mm, y, "结果")
    pdf.drawString(105 * mm, y, "说明")
    pdf.line(20 * mm, y - 2 * mm, width - 20 * mm, y - 2 * mm)
    pdf.setFont(FONT, 9.5)
    y -= 8 * mm
    for line in report.lines:
        pdf.drawString(20 * mm, y, line.item)
        pdf.drawString(85 * mm, y, line.result)
        pdf.drawString(105 * mm, y, line.detail[:48])
        y -= 6 * mm
    y -= 6 * mm
    pdf.setFont(FONT, 12)
    pdf.drawString(20 * mm, y, f"结论：{report.verdict}")
    y -= 8 * mm
    pdf.drawString(20 * mm, y, f"费用：{report.fee} 元")
    y -= 8 * mm
    pdf.drawString(20 * mm, y, f"下一步：{report.next_step}")
    pdf.setFont(FONT, 10)
    pdf.drawRightString(width - 20 * mm, 25 * mm, report.authority)
    pdf.showPage()
    pdf.save()
