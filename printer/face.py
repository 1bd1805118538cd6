"""The 社保卡 card face: layout from holder data (CR80, 300 dpi, landscape 1016 × 648 dots),
rendered to a PDF proof (reportlab, Chinese text embedded), a PNG (Pillow), and the
printer's YMCKO panels in the byte format of docs/devices.md §2 — and back from panels to an
image, which is how the printer emulator shows what it printed.

Panels: 648 × 1016 dots, downloaded line by line in printing direction: line i is column i
of the landscape face (x = i), its dots run top to bottom (y = 0 … 647). K and O: 1 bit a
dot, MSB first, 81 bytes a line (82,296 bytes). Y, M, C: 32 levels, 5 bits a dot,
concatenated MSB first (411,480 bytes) [ours, from the guide's formula].
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFont

WIDTH, HEIGHT = 1016, 648  # landscape face in dots (CR80 at 300 dpi, printer geometry)
DPI = 300
LINE_DOTS = HEIGHT  # dots per panel line
LINES = WIDTH
MONO_BYTES = LINES * LINE_DOTS // 8  # 82,296
COLOR_BYTES = LINES * LINE_DOTS * 5 // 8  # 411,480
FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")

PHOTO_BOX = (60, 150, 60 + 270, 150 + 330)  # left, top, right, bottom
CHIP_BOX = (380, 240, 380 + 150, 240 + 120)  # the contact plate: no overlay, no text
TEXT_X = 560


class FaceError(ValueError):
    """The face cannot be rendered (missing font, unreadable photo)."""


@dataclass(frozen=True)
class CardFace:
    name: str
    ssn: str
    card_number: str
    issue_date: date
    authority: str  # e.g. 深圳市人力资源和社会保障局
    photo: bytes  # JPEG

    def lines(self) -> list[tuple[str, str]]:
        return [
            ("姓名", self.name),
            ("社会保障号码", self.ssn),
            ("社会保障卡号", self.card_number),
            ("发卡日期", f"{self.issue_date.year}年{self.issue_date.month:02d}月"),
        ]


@dataclass(frozen=True)
class Panels:
    y: bytes
    m: bytes
    c: bytes
    k: bytes
    o: bytes

    def __post_init__(self) -> None:
        for name in ("y", "m", "c"):
            if len(getattr(self, name)) != COLOR_BYTES:
                raise FaceError(f"panel {name} must be {COLOR_BYTES} bytes")
        for name in ("k", "o"):
            if len(getattr(self, name)) != MONO_BYTES:
                raise FaceError(f"panel {name} must be {MONO_BYTES} bytes")


def _font(size: int) -> ImageFont.FreeTypeFont:
    if not FONT_PATH.exists():
        raise FaceError(f"{FONT_PATH} is missing: install Debian's fonts-wqy-microhei")
    return ImageFont.truetype(str(FONT_PATH), size, index=0)


def _photo(face: CardFace) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(face.photo))
        img.load()
    except Exception as exc:
        raise FaceError(f"照片无法读取 (the photo cannot be read): {exc}") from None
    if img.format != "JPEG":
        raise FaceError("照片必须是 JPEG (the photo must be a JPEG)")
    box_w, box_h = PHOTO_BOX[2] - PHOTO_BOX[0], PHOTO_BOX[3] - PHOTO_BOX[1]
    return img.convert("RGB").resize((box_w, box_h))


def render_color(face: CardFace) -> Image.Image:
    """The YMC layer: a light background band, the title band, the photo."""
    img = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, WIDTH, 110), fill=(196, 224, 244))
    img.paste(_photo(face), PHOTO_BOX[:2])
    return img


def render_text(face: CardFace) -> Image.Image:
    """The K layer (mode "1"): title, field labels and values, authority. Black = 0."""
    img = Image.new("1", (WIDTH, HEIGHT), 1)
    draw = ImageDraw.Draw(img)
    draw.text((60, 25), "中华人民共和国社会保障卡", font=_font(56), fill=0)
    y = 150
    small, big = _font(30), _font(40)
    for label, value in face.lines():
        draw.text((TEXT_X, y), label, font=small, fill=0)
        draw.text((TEXT_X, y + 36), value, font=big, fill=0)
        y += 100
    draw.text((60, HEIGHT - 70), face.authority, font=small, fill=0)
    return img


def render_png(face: CardFace) -> Image.Image:
    """What the printed card looks like: colour layer with the text printed over it."""
    img = render_color(face)
    black = Image.new("RGB", img.size, "black")
    img.paste(black, mask=_invert1(render_text(face)))
    return img


def _invert1(img: Image.Image) -> Image.Image:
    """Swap black and white of a mode-"1" image, exactly (no dithering)."""
    return img.convert("L").point(lambda v: 255 - v).convert("1", dither=Image.Dither.NONE)


def _pack_mono(img: Image.Image) -> bytes:
    """1 bit a dot (1 = print), lines = columns of the landscape image, MSB first."""
    columns = img.transpose(Image.Transpose.TRANSPOSE)  # now 648 wide, 1016 tall: row = line
    return _invert1(columns).tobytes()  # print where the face is black; PIL packs MSB first


def _unpack_mono(data: bytes) -> Image.Image:
    columns = Image.frombytes("1", (LINE_DOTS, LINES), data)
    return _invert1(columns).transpose(Image.Transpose.TRANSPOSE)


def _pack_levels(channel: Image.Image) -> bytes:
    """32 levels, 5 bits a dot, MSB first, lines = columns."""
    columns = channel.transpose(Image.Transpose.TRANSPOSE).tobytes()
    acc, nbits, out = 0, 0, bytearray()
    for value in columns:
        acc = (acc << 5) | (value >> 3)
        nbits += 5
        while nbits >= 8:
            nbits -= 8
            out.append((acc >> nbits) & 0xFF)
        acc &= (1 << nbits) - 1
    if nbits:
        out.append((acc << (8 - nbits)) & 0xFF)
    return bytes(out)


def _unpack_levels(data: bytes) -> Image.Image:
    values = bytearray()
    acc, nbits = 0, 0
    for byte in data:
        acc = (acc << 8) | byte
        nbits += 8
        while nbits >= 5:
            nbits -= 5
            values.append(((acc >> nbits) & 0x1F) * 255 // 31)
        acc &= (1 << nbits) - 1
    values = values[: LINES * LINE_DOTS]
    return Image.frombytes("L", (LINE_DOTS, LINES), bytes(values)).transpose(
        Image.Transpose.TRANSPOSE
    )


def build_panels(face: CardFace) -> Panels:
    """Y, M, C from the colour layer, K from the text layer, O everywhere but the chip's
    contact plate."""
    return panels_from_layers(render_color(face), render_text(face))


def panels_from_image(image: Image.Image) -> Panels:
    """Panels for any landscape RGB front: K where the image is pure black, colour
    elsewhere."""
    if image.size != (WIDTH, HEIGHT):
        raise FaceError(f"a front image is {WIDTH} × {HEIGHT} dots, got {image.size}")
    rgb = image.convert("RGB")
    text = (
        rgb.convert("L")
        .point(lambda v: 0 if v == 0 else 255)
        .convert("1", dither=Image.Dither.NONE)
    )
    return panels_from_layers(rgb, text)


def panels_from_layers(color: Image.Image, text: Image.Image) -> Panels:
    """Subtractive colour (C = 255 − R, M = 255 − G, Y = 255 − B) and a mode-"1" text layer."""
    r, g, b = color.split()
    overlay = Image.new("1", (WIDTH, HEIGHT), 0)  # black = print overlay
    ImageDraw.Draw(overlay).rectangle(CHIP_BOX, fill=1)
    return Panels(
        y=_pack_levels(ImageChops.invert(b)),
        m=_pack_levels(ImageChops.invert(g)),
        c=_pack_levels(ImageChops.invert(r)),
        k=_pack_mono(text),
        o=_pack_mono(overlay),
    )


def k_panel_image(k: bytes) -> Image.Image:
    """The K panel back as a landscape mode-"1" image (black where printed)."""
    return _unpack_mono(k)


def panels_to_image(panels: Panels) -> Image.Image:
    """What a printer makes of the panels: CMY dyes on white, K on top."""
    c, m, y = (_unpack_levels(p) for p in (panels.c, panels.m, panels.y))
    rgb = Image.merge("RGB", tuple(ImageChops.invert(ch) for ch in (c, m, y)))
    black = Image.new("RGB", rgb.size, "black")
    rgb.paste(black, mask=_invert1(k_panel_image(panels.k)))
    return rgb


def render_pdf(face: CardFace, path: str | Path) -> None:
    """A CR80-sized PDF proof with the Chinese text embedded (docs/architecture.md, Conventions)."""
    from reportlab.lib.units import mm
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    if not FONT_PATH.exists():
        raise FaceError(f"{FONT_PATH} is missing: install Debian's fonts-wqy-microhei")
    if "WQY" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("WQY", str(FONT_PATH), subfontIndex=0))
    page_w, page_h = 85.6 * mm, 54.0 * mm
    scale = page_w / WIDTH  # points per dot
    pdf = canvas.Canvas(str(path), pagesize=(page_w, page_h))
    pdf.setTitle(f"社会保障卡 卡面校样 {face.card_number}")
    photo = io.BytesIO()
    render_color(face).save(photo, format="PNG")
    pdf.drawImage(ImageReader(photo), 0, 0, page_w, page_h)

    def text(x: float, y_top: float, size: float, value: str) -> None:
        pdf.setFont("WQY", size * scale)
        pdf.drawString(x * scale, page_h - (y_top + size * 0.8) * scale, value)

    text(60, 25, 56, "中华人民共和国社会保障卡")
    y = 150
    for label, value in face.lines():
        text(TEXT_X, y, 30, label)
        text(TEXT_X, y + 36, 40, value)
        y += 100
    text(60, HEIGHT - 70, 30, face.authority)
    pdf.showPage()
    pdf.save()
