"""The 验卡单: text wrapping (nothing cut, no line wider than its column) and report numbers."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from reportlab.pdfbase.pdfmetrics import stringWidth

from personalize.documents import FONT, wrap_text
from personalize.policy import load_policy
from personalize.registry import Registry
from printer.face import register_pdf_font
from tests.audit_key import AUDIT_KEY
from tests.conftest import NewDatabase

register_pdf_font()


@given(
    st.text(
        alphabet="张三阿卜杜热合曼·买提艾力 abcdefghijklmnopqrstuvwxyz0123456789:()", max_size=300
    ),
    st.floats(min_value=20, max_value=400),
)
def test_wrapping_keeps_every_character_and_the_width(text: str, width: float) -> None:
    lines = wrap_text(text, FONT, 9.5, width)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    for line in lines:
        assert len(line) <= 1 or stringWidth(line, FONT, 9.5) <= width


def test_report_numbers_come_from_the_registry_in_the_policy_zone(new_db: NewDatabase) -> None:
    moment = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)  # 2026-11-27 01:00 in Shanghai
    registry = Registry(
        new_db("r"), load_policy("default"), clock=lambda: moment, audit_key=AUDIT_KEY
    )
    with registry.transaction():
        first = registry.add_office_report(card_number="", operator="op", request_id=None, data={})
        second = registry.add_office_report(card_number="", operator="op", request_id=None, data={})
    assert (first.report_no, second.report_no) == ("YK-20261127-000001", "YK-20261127-000002")
    assert registry.office_report("YK-20261127-000002").at == "2026-11-26T17:00:00+00:00"
    assert registry.office_report("YK-NONE") is None
