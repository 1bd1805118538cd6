"""Card face: panel byte format, pixel-exact K round trip, colour round trip within the
5-bit quantisation, the PDF proof's text and size, clear errors."""

from __future__ import annotations

import io
import subprocess
from datetime import date
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from printer import face as face_module
from printer.face import (
    COLOR_BYTES,
    HEIGHT,
    MONO_BYTES,
    WIDTH,
    CardFace,
    FaceError,
    Panels,
    build_panels,
    k_panel_image,
    panels_from_image,
    panels_to_image,
    render_color,
    render_pdf,
    render_png,
    render_text,
)
from simulator.factory import sample_photo

FACE = CardFace(
    name="欧阳娜娜",
    ssn="11010519491231002X",
    card_number="A00000011",
    issue_date=date(2026, 11, 25),
    authority="深圳市人力资源和社会保障局",
    photo=sample_photo("face"),
)


def test_panel_sizes_follow_the_guide() -> None:
    # docs/devices.md §2: 648 × 1016 dots; K/O 1 bit (82,296 B), Y/M/C 5 bits (411,480 B).
    assert MONO_BYTES == 82_296 and COLOR_BYTES == 411_480
    panels = build_panels(FACE)
    assert len(panels.k) == MONO_BYTES and len(panels.y) == COLOR_BYTES
    with pytest.raises(FaceError, match="82296"):
        Panels(panels.y, panels.m, panels.c, panels.k[:-1], panels.o)


def test_k_panel_round_trip_is_pixel_exact() -> None:
    text = render_text(FACE)
    back = k_panel_image(build_panels(FACE).k)
    assert back.size == (WIDTH, HEIGHT)
    assert ImageChops.difference(text.convert("L"), back.convert("L")).getbbox() is None
    assert text.getbbox() is not None  # there is text to compare


def test_k_panel_line_order() -> None:
    # one black dot at x = 3, y = 10: line 3, dot 10 -> byte 3 * 81 + 1, bit 0x20 (MSB first)
    img = Image.new("RGB", (WIDTH, HEIGHT), "white")
    img.putpixel((3, 10), (0, 0, 0))
    k = panels_from_image(img).k
    assert k[3 * 81 + 1] == 0x20 and sum(k) == 0x20


def test_colour_round_trip_within_quantisation() -> None:
    printed = panels_to_image(build_panels(FACE))
    expected = render_png(FACE)
    diff = ImageChops.difference(printed, expected)
    assert max(hi for _, hi in diff.getextrema()) <= 255 // 31 + 1


def test_overlay_leaves_the_chip_plate_clear() -> None:
    o = k_panel_image(build_panels(FACE).o)
    left, top, right, bottom = face_module.CHIP_BOX
    assert o.getpixel(((left + right) // 2, (top + bottom) // 2)) != 0  # not printed
    assert o.getpixel((5, 5)) == 0  # overlay printed elsewhere


def test_pdf_proof(tmp_path: Path) -> None:
    pdf = tmp_path / "proof.pdf"
    render_pdf(FACE, pdf)
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    for words in (
        "中华人民共和国社会保障卡",
        "欧阳娜娜",
        "11010519491231002X",
        "A00000011",
        "2026年11月",
        "深圳市人力资源和社会保障局",
    ):
        assert words in text
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "242.646 x 153.071 pts" in info  # 85.6 × 54 mm
    fonts = subprocess.run(
        ["pdffonts", str(pdf)], capture_output=True, text=True, check=True
    ).stdout
    chinese = [line.split() for line in fonts.splitlines() if "WenQuanYi" in line]
    assert chinese and all(cols[3] == "yes" for cols in chinese)  # embedded (emb column)


def test_bad_photo_and_missing_font(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FaceError, match=r"JPEG|读取"):
        render_color(CardFace(**{**FACE.__dict__, "photo": b"GIF89a not an image"}))
    png = Image.new("RGB", (10, 10))
    buf = io.BytesIO()
    png.save(buf, format="PNG")
    with pytest.raises(FaceError, match="JPEG"):
        render_color(CardFace(**{**FACE.__dict__, "photo": buf.getvalue()}))
    monkeypatch.setattr(face_module, "FONT_PATH", Path("/nonexistent/font.ttc"))
    with pytest.raises(FaceError, match="fonts-wqy-microhei"):
        render_text(FACE)
