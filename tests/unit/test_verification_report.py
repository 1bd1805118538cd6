"""The 验卡单's text wrapping: nothing is cut, no line is wider than its column."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from reportlab.pdfbase.pdfmetrics import stringWidth

from personalize.documents import FONT, _register_font, wrap_text

_register_font()


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
