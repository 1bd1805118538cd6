"""The A4 page machinery of the center's daily reports (日报/日结对账表): the stock
reconciliation (``personalize.stock``) and the fee report (``personalize.fee_report``) are
laid out alike — a centred title, the report date and generation time under it, numbered
headings, a table of counts, wrapped lines, the discrepancies in red (or that there are
none), signature lines and the issuing authority at the foot; a new page, with the header
again, whenever the next piece does not fit. The font and ``wrap_text`` are the 验卡单's
(``personalize.documents``)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from personalize.documents import FONT, wrap_text
from printer.face import register_pdf_font

if TYPE_CHECKING:
    from reportlab.pdfgen.canvas import Canvas


class ReportPdf:
    """One report being drawn, top to bottom: each method takes the current height ``y``
    (points from the page's foot) and returns where the next piece goes."""

    def __init__(
        self, *, title: str, subject: str, heading: str, dated: str, generated_at: str,
        authority: str,
    ) -> None:  # fmt: skip
        """``title``/``subject``: the PDF's metadata; ``heading``: the title on each page;
        ``dated``: the line under it (the report's date, time zone, scope)."""
        from reportlab.lib.pagesizes import A4
        from reportlab.lib.units import mm
        from reportlab.pdfgen import canvas

        register_pdf_font()
        self.mm = mm
        self.width, self.height = A4
        self.left, self.right, self.bottom = 18 * mm, self.width - 18 * mm, 22 * mm
        self._buffer = io.BytesIO()
        self.pdf: Canvas = canvas.Canvas(self._buffer, pagesize=A4)
        self.pdf.setTitle(title)
        self.pdf.setAuthor(authority)
        self.pdf.setSubject(subject)
        self.pdf.setCreator("sscard")
        self._heading, self._dated, self._generated_at = heading, dated, generated_at
        self.authority = authority

    def header(self) -> float:
        """The page's title, date line and rule; where the page's content starts."""
        pdf, mm = self.pdf, self.mm
        pdf.setFont(FONT, 17)
        pdf.drawCentredString(self.width / 2, self.height - 20 * mm, self._heading)
        pdf.setFont(FONT, 10)
        pdf.drawString(self.left, self.height - 29 * mm, self._dated)
        pdf.drawRightString(self.right, self.height - 29 * mm, f"生成时间：{self._generated_at}")
        pdf.line(self.left, self.height - 32 * mm, self.right, self.height - 32 * mm)
        return float(self.height - 40 * mm)

    def room(self, y: float, needed: float) -> float:
        """``y``, or the top of a new page when ``needed`` points do not fit."""
        if y - needed >= self.bottom:
            return float(y)
        self.pdf.showPage()
        return self.header()

    def heading(self, y: float, text: str) -> float:
        y = self.room(y, 14 * self.mm)
        self.pdf.setFont(FONT, 12)
        self.pdf.drawString(self.left, y, text)
        return float(y - 7 * self.mm)

    def lines(
        self, y: float, texts: list[str], size: float, *, indent: float = 0,
        leading: float | None = None, needed: float | None = None,
    ) -> float:  # fmt: skip
        """Each text wrapped to the width left of ``indent``, ``leading`` apart (default
        0.55 mm a point of ``size``), a new page when ``needed`` (default 6 mm) does not fit."""
        step = size * 0.55 * self.mm if leading is None else leading
        self.pdf.setFont(FONT, size)
        for line in texts:
            for piece in wrap_text(line, FONT, size, self.right - self.left - indent):
                y = self.room(y, 6 * self.mm if needed is None else needed)
                self.pdf.drawString(self.left + indent, y, piece)
                y -= step
        return y

    def row(
        self, y: float, cells: tuple[str, ...], size: float, first: float, bad: bool = False
    ) -> float:
        """A table row: the first cell left in a column ``first`` wide (cut to it), the
        others right-aligned in equal columns; red when ``bad``."""
        from reportlab.lib.colors import black, red

        pdf, mm = self.pdf, self.mm
        y = self.room(y, 7 * mm)
        step = (self.right - self.left - first) / (len(cells) - 1)
        pdf.setFont(FONT, size)
        pdf.setFillColor(red if bad else black)
        pdf.drawString(self.left, y, wrap_text(cells[0], FONT, size, first - 2 * mm)[0])
        for i, text in enumerate(cells[1:]):
            pdf.drawRightString(self.left + first + (i + 1) * step - 3 * mm, y, text)
        pdf.setFillColor(black)
        return float(y - 6 * mm)

    def rule(self, y: float) -> None:
        """The line between a table's rows, under the row drawn last."""
        self.pdf.line(self.left, y + 4 * self.mm, self.right, y + 4 * self.mm)

    def findings(self, y: float, found: tuple[str, ...], none: str) -> float:
        """The discrepancies, numbered, in red; or ``none`` (that there are none)."""
        from reportlab.lib.colors import black, red

        if not found:
            return self.lines(y, [none], 10)
        self.pdf.setFillColor(red)
        y = self.lines(y, [f"{n}. {d}" for n, d in enumerate(found, 1)], 10)
        self.pdf.setFillColor(black)
        return y

    def finish(self, y: float, signers: tuple[str, str]) -> bytes:
        """Two signature lines side by side and the authority at the foot; the PDF."""
        from reportlab.pdfbase.pdfmetrics import stringWidth

        pdf, mm = self.pdf, self.mm
        y = self.room(y - 12 * mm, 20 * mm)
        pdf.setFont(FONT, 10.5)
        half = (self.right - self.left) / 2
        for x, label in zip((self.left, self.left + half), signers, strict=True):
            pdf.drawString(x, y, label)
            start = x + stringWidth(label, FONT, 10.5) + 2 * mm
            pdf.line(start, y - 1 * mm, x + half - 8 * mm, y - 1 * mm)
        pdf.setFont(FONT, 9)
        pdf.drawRightString(self.right, self.bottom - 8 * mm, self.authority)
        pdf.showPage()
        pdf.save()
        return self._buffer.getvalue()
