"""Card face: panel byte format, pixel-exact K round trip, colour round trip within the
5-bit quantisation, the PDF proof's text and size, clear errors — and the geometry checked on
the rendered image: the ISO/IEC 7816-2 contact area holds only background, names up to the
chip's 姓名 + 姓名扩展 capacity are shown whole inside the card, wider ones are refused."""

from __future__ import annotations

import io
import math
import subprocess
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops

from personalize.jobs import JobError, submit_job
from personalize.policy import load_policy
from personalize.registry import Registry
from personalize.trackvault import TrackVault
from printer import face as face_module
from printer.face import (
    COLOR_BYTES,
    HEIGHT,
    MONO_BYTES,
    NAME_SIZE_MIN,
    WIDTH,
    CardFace,
    FaceError,
    Panels,
    build_panels,
    check_face_fits,
    fit_front,
    k_panel_image,
    layout,
    panels_from_image,
    panels_to_image,
    render_back,
    render_color,
    render_pdf,
    render_png,
    render_text,
)
from simulator.factory import SAMPLE_HOLDER, sample_photo
from sscard.profile import load_profile
from sscard.records import NAME_EXT_LENGTH, NAME_LENGTH, HolderData
from tests.audit_key import AUDIT_KEY
from tests.conftest import NewDatabase

GEOMETRY = load_profile("default").face
FACE = CardFace(
    name="欧阳娜娜",
    ssn="11010519491231002X",
    card_number="A00000011",
    issue_date=date(2026, 11, 25),
    authority="深圳市人力资源和社会保障局",
    photo=sample_photo("face"),
    geometry=GEOMETRY,
)
UYGHUR = "阿卜杜热合曼·买买提艾力·阿不都克热木·吐尔逊"  # 23 characters, 46 bytes in GBK
# The chip holds 姓名 (30 bytes) + 姓名扩展 (20 bytes) of GBK: 25 two-byte characters.
FULL = ("阿卜杜热合曼买买提艾力阿不都克热木吐尔逊" * 2)[: (NAME_LENGTH + NAME_EXT_LENGTH) // 2]
NAMES = {"short": FACE.name, "uyghur": UYGHUR, "capacity": FULL}

# ISO/IEC 7810 ID-1 and ISO/IEC 7816-2 in mm, written here from the standards (not read from
# the profile), and mapped to the 1016 × 648 panel that covers the card edge to edge.
ID1 = (85.60, 53.98)
CONTACTS = (10.25, 19.23, 19.87, 28.55)  # C1–C8 field: left, top, right, bottom
STRIPE_BOTTOM = 15.82  # tracks 1–3 band on the back, from the top edge


def to_dots(left: float, top: float, right: float, bottom: float) -> tuple[int, int, int, int]:
    sx, sy = WIDTH / ID1[0], HEIGHT / ID1[1]
    return (
        math.floor(left * sx),
        math.floor(top * sy),
        math.ceil(right * sx),
        math.ceil(bottom * sy),
    )


def with_name(name: str) -> CardFace:
    return replace(FACE, name=name)


def ink_box(a: Image.Image, b: Image.Image) -> tuple[int, int, int, int]:
    box = ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox()
    assert box is not None
    return box


def test_profile_geometry_is_the_standards() -> None:
    for name in ("default", "pin-read"):
        g = load_profile(name).face
        assert (g.card_width, g.card_height) == ID1
        assert g.contacts == CONTACTS and g.stripe_bottom == STRIPE_BOTTOM
        assert g.contact_margin >= 1.0 and g.edge_margin >= 1.0


def test_capacity_name_is_what_the_chip_holds() -> None:
    assert len(FULL) == 25 and len(FULL.encode("gbk")) == NAME_LENGTH + NAME_EXT_LENGTH
    holder = HolderData("11010519491231002X", FULL, "2", "01", "110105", date(1949, 12, 31))
    holder.validate()  # fits 姓名 + 姓名扩展 exactly
    values = holder.values()
    assert values["name"] + values["name_ext"] == FULL


@pytest.mark.parametrize("which", NAMES)
def test_contact_area_holds_only_background(which: str) -> None:
    face = with_name(NAMES[which])
    left, top, right, bottom = to_dots(*CONTACTS)
    margin = math.ceil(1.0 * WIDTH / ID1[0])  # and 1 mm round it
    box = (left - margin, top - margin, right + margin, bottom + margin)
    for image in (render_png(face), panels_to_image(build_panels(face))):
        assert image.crop(box).getextrema() == ((255, 255),) * 3  # white card, no ink
    overlay = k_panel_image(build_panels(face).o).crop(box)
    assert overlay.getextrema() == (255, 255)  # no overlay varnish on the contacts


@pytest.mark.parametrize("which", NAMES)
def test_name_and_photo_are_whole_and_inside_the_card(which: str, tmp_path: Path) -> None:
    face = with_name(NAMES[which])
    name_box = ink_box(render_text(face), render_text(with_name("甲")))
    photo_box = ink_box(render_color(face), render_color(replace(face, photo=sample_photo("x"))))
    edge = math.ceil(1.0 * WIDTH / ID1[0])  # nothing within 1 mm of an edge
    for box in (name_box, photo_box):
        assert edge <= box[0] < box[2] <= WIDTH - edge
        assert edge <= box[1] < box[3] <= HEIGHT - edge
    assert name_box[2] < photo_box[0]  # the name stops short of the photo
    text_ink = render_text(face).convert("L").point(lambda v: 255 - v).getbbox()
    assert text_ink is not None and text_ink[2] <= WIDTH - edge and text_ink[3] <= HEIGHT - edge
    # every character is on the face: the proof's text layer carries the whole name
    render_pdf(face, tmp_path / "proof.pdf")
    text = subprocess.run(
        ["pdftotext", str(tmp_path / "proof.pdf"), "-"], capture_output=True, text=True
    ).stdout
    assert face.name in text.replace("\n", "")
    lines = layout(face).name_lines
    assert "".join(lines) == face.name and len(lines) == (1 if which == "short" else 2)
    assert layout(face).name_size >= NAME_SIZE_MIN


def test_the_back_leaves_the_magnetic_stripe_band_blank(tmp_path: Path) -> None:
    back = render_back(FACE)
    band = to_dots(0, 0, ID1[0], STRIPE_BOTTOM)
    assert back.crop(band).getextrema() == ((255, 255),) * 3
    ink = ImageChops.invert(back).getbbox()
    edge = math.ceil(1.0 * WIDTH / ID1[0])
    assert ink is not None and band[3] < ink[1] and ink[3] <= HEIGHT - edge
    assert edge <= ink[0] and ink[2] <= WIDTH - edge
    render_pdf(FACE, tmp_path / "proof.pdf")
    back_text = subprocess.run(
        ["pdftotext", "-f", "2", "-l", "2", str(tmp_path / "proof.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "持卡须知" in back_text and FACE.authority in back_text


HANZI = st.builds(
    lambda row, col: bytes((row, col)).decode("gbk"),
    st.integers(0xB0, 0xD6),  # GB 2312 level-1 hanzi rows (row D7 ends early)
    st.integers(0xA1, 0xFE),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(HANZI, st.just("·")), min_size=1, max_size=25))
def test_every_two_byte_name_the_chip_holds_fits(chars: list[str]) -> None:
    name = "".join(chars).strip("·") or "甲"
    assert len(name.encode("gbk")) <= NAME_LENGTH + NAME_EXT_LENGTH
    check_face_fits(name, FACE.authority, GEOMETRY)
    placed = layout(with_name(name))
    assert "".join(placed.name_lines) == name and placed.name_size >= NAME_SIZE_MIN


def test_a_name_too_wide_for_the_face_is_refused_not_clipped() -> None:
    wide = "W" * (NAME_LENGTH + NAME_EXT_LENGTH)  # 50 bytes: the chip takes it, the face cannot
    HolderData("11010519491231002X", wide, "2", "01", "110105", date(1949, 12, 31)).validate()
    with pytest.raises(FaceError, match=r"^姓名在卡面上放不下.*\(the name does not fit"):
        check_face_fits(wide, FACE.authority, GEOMETRY)
    with pytest.raises(FaceError, match="放不下"):
        render_png(with_name(wide))
    for name in NAMES.values():
        check_face_fits(name, FACE.authority, GEOMETRY)
    long_authority = "新疆维吾尔自治区伊犁哈萨克自治州人力资源和社会保障局社会保险事业管理中心"
    with pytest.raises(FaceError, match=r"^发卡机构名称在卡面上放不下"):
        check_face_fits(FACE.name, long_authority, GEOMETRY)
    with pytest.raises(FaceError, match=r"^发卡机构名称在卡面上放不下"):
        render_pdf(replace(FACE, authority=long_authority), Path("/nonexistent/never.pdf"))


def test_front_image_rule() -> None:
    exact = Image.new("RGB", (WIDTH, HEIGHT), "red")
    assert fit_front(exact) == (exact, None)
    scaled, warning = fit_front(Image.new("RGB", (2 * WIDTH, 2 * HEIGHT), "red"))
    assert scaled.size == (WIDTH, HEIGHT) and warning is not None and "缩放" in warning
    card_shaped, _ = fit_front(Image.new("RGB", (856, 540)))  # ID-1's own proportions
    assert card_shaped.size == (WIDTH, HEIGHT)
    with pytest.raises(FaceError, match=r"^正面图像须为 1016×648.*实为 800×600"):
        fit_front(Image.new("RGB", (800, 600)))


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
    k = panels_from_image(img, GEOMETRY).k
    assert k[3 * 81 + 1] == 0x20 and sum(k) == 0x20


def test_colour_round_trip_within_quantisation() -> None:
    printed = panels_to_image(build_panels(FACE))
    expected = render_png(FACE)
    diff = ImageChops.difference(printed, expected)
    assert max(hi for _, hi in diff.getextrema()) <= 255 // 31 + 1


def test_overlay_leaves_the_chip_plate_clear() -> None:
    o = k_panel_image(build_panels(FACE).o)
    left, top, right, bottom = to_dots(*CONTACTS)
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


def test_pdf_proof_carries_the_face_as_rendered(tmp_path: Path) -> None:
    """The proof's picture, taken out of the PDF by poppler (``pdfimages``), is pixel for
    pixel the colour face the printer is sent."""
    pdf = tmp_path / "proof.pdf"
    render_pdf(FACE, pdf)
    subprocess.run(["pdfimages", "-png", str(pdf), str(tmp_path / "img")], check=True)
    (picture,) = sorted(tmp_path.glob("img-*.png"))
    assert ImageChops.difference(
        Image.open(picture).convert("RGB"), render_color(FACE)
    ).getbbox() is None


def test_pdf_streams_use_reportlabs_c_accelerator() -> None:
    """rl_accel is installed: reportlab's ASCII85 and number formatting are its C functions,
    not the pure-Python fallback that cost a station ~60 ms per proof (issue 14)."""
    from reportlab.lib import rl_accel

    assert rl_accel.asciiBase85Encode.__module__ == "_rl_accel"


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


def test_a_job_whose_name_does_not_fit_is_refused_before_anything_is_written(
    tmp_path: Path,
    new_db: NewDatabase,
) -> None:
    moment = datetime(2026, 11, 25, 1, 30, tzinfo=UTC)
    registry = Registry(
        new_db("r"), load_policy("default"), clock=lambda: moment, audit_key=AUDIT_KEY
    )
    number = registry.allocate_card_number()
    registry.enroll(SAMPLE_HOLDER, number, operator="op")
    registry.formalize_loss(number, operator="op", evidence="ID")
    registry.request_reissue(number, operator="op")
    (tmp_path / "photo.jpg").write_bytes(sample_photo())
    holder = {
        "ssn": SAMPLE_HOLDER.ssn,
        "name": "W" * (NAME_LENGTH + NAME_EXT_LENGTH),
        "gender": SAMPLE_HOLDER.gender,
        "ethnicity": SAMPLE_HOLDER.ethnicity,
        "birthplace": SAMPLE_HOLDER.birthplace,
        "birth_date": SAMPLE_HOLDER.birth_date.isoformat(),
    }
    submission = {"old_card_number": number, "holder": holder, "photo": "photo.jpg"}
    vault = TrackVault.create(tmp_path / "tracks.key")
    profile = load_profile("default")
    audit_before = registry.db.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0]
    with pytest.raises(JobError, match=r"^姓名在卡面上放不下"):
        submit_job(registry, profile, vault, submission, base_dir=tmp_path, operator="op")
    assert registry.db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0
    assert registry.db.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0] == audit_before
    holder["name"] = UYGHUR  # the same request takes the long name that fits
    assert submit_job(registry, profile, vault, submission, base_dir=tmp_path, operator="op")
