"""The 社保卡 card face: layout from holder data (CR80, 300 dpi, landscape 1016 × 648 dots),
rendered to a PDF proof (reportlab, Chinese text embedded), a PNG (Pillow), and the
printer's YMCKO panels in the byte format of docs/devices.md §2 — and back from panels to an
image, which is how the printer emulator shows what it printed.

Panels: 648 × 1016 dots, downloaded line by line in printing direction: line i is column i
of the landscape face (x = i), its dots run top to bottom (y = 0 … 647). K and O: 1 bit a
dot, MSB first, 81 bytes a line (82,296 bytes). Y, M, C: 32 levels, 5 bits a dot,
concatenated MSB first (411,480 bytes) [ours, from the guide's formula].

Geometry: the card profile's ``face`` (ISO/IEC 7810 ID-1 body, ISO/IEC 7816-2 contact field,
ISO/IEC 7811 stripe band, in mm) is mapped to dots by ``mm_box``. The layout keeps the photo
and every line of text off the contact keep-out and inside the safe area, and checks that it
did; a name is shrunk, then set on two lines, and refused (``FaceError``) when it still does
not fit — nothing is ever clipped. ``check_face_fits`` lets a job refuse such a name when it
is submitted.
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

from PIL import Image, ImageChops, ImageDraw, ImageFont, ImageOps

WIDTH, HEIGHT = 1016, 648  # landscape face in dots (CR80 at 300 dpi, printer geometry)
DPI = 300
LINE_DOTS = HEIGHT  # dots per panel line
LINES = WIDTH
MONO_BYTES = LINES * LINE_DOTS // 8  # 82,296
COLOR_BYTES = LINES * LINE_DOTS * 5 // 8  # 411,480
FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
PDF_FONT = "WQY"  # FONT_PATH's name in reportlab (the proofs and personalize/documents.py)

# Layout in dots [ours]. Sizes are font sizes in dots (300 dpi: 12 dots ≈ 1 mm ≈ 2.9 pt).
TITLE_BAND = 110  # the coloured band across the top, behind the title
TITLE_SIZE, LABEL_SIZE, VALUE_SIZE, AUTHORITY_SIZE = 56, 26, 40, 30
NAME_SIZE_MAX = 40  # 3.4 mm: the name's size when it fits on one line
NAME_SIZE_MIN = 28  # 2.4 mm ≈ 6.7 pt: the smallest name size; below it a name is refused
NAME_BREAKS = "·• "  # a two-line name breaks after one of these when it can
PHOTO_W, PHOTO_H = 220, 270  # 18.5 × 22.5 mm, the 358 × 441 ID-photo ratio (≈ 0.81)
GAP = 24  # between the chip's keep-out, the text column and the photo

Box = tuple[int, int, int, int]  # left, top, right (exclusive), bottom (exclusive), in dots


class FaceError(ValueError):
    """The face cannot be rendered (missing font, unreadable photo, a name or text that does
    not fit — never clipped silently)."""


class CardGeometry(Protocol):
    """The card body the face is laid out on, in mm from the front's top-left corner (chip
    on the left). ``sscard.profile.FaceGeometry`` is one; see it for the ISO/IEC 7810,
    7816-2 and 7811 figures."""

    @property
    def card_width(self) -> float: ...
    @property
    def card_height(self) -> float: ...
    @property
    def contacts(self) -> tuple[float, float, float, float]: ...
    @property
    def contact_margin(self) -> float: ...
    @property
    def stripe_bottom(self) -> float: ...
    @property
    def stripe_margin(self) -> float: ...
    @property
    def edge_margin(self) -> float: ...


def mm_box(geometry: CardGeometry, left: float, top: float, right: float, bottom: float) -> Box:
    """Millimetres on the card → dots on the panel, rounded outward and kept on the panel.

    The 1016 × 648 panel covers the card edge to edge (the printer prints with a small bleed),
    so each axis is scaled to the card: 1016 / 85.60 ≈ 11.87 dots/mm across, 648 / 53.98 ≈
    12.00 down — within 2 dots of a centred 300 dpi mapping, far inside the margins [ours].
    """
    sx, sy = WIDTH / geometry.card_width, HEIGHT / geometry.card_height
    return (
        max(0, math.floor(left * sx)),
        max(0, math.floor(top * sy)),
        min(WIDTH, math.ceil(right * sx)),
        min(HEIGHT, math.ceil(bottom * sy)),
    )


def contact_keepout(geometry: CardGeometry) -> Box:
    """The front's ISO/IEC 7816-2 contact field plus its margin: no ink, no overlay."""
    left, top, right, bottom = geometry.contacts
    m = geometry.contact_margin
    return mm_box(geometry, left - m, top - m, right + m, bottom + m)


def stripe_keepout(geometry: CardGeometry) -> Box:
    """The back's magnetic stripe band (ISO/IEC 7811) plus its margin: nothing printed."""
    return mm_box(
        geometry, 0, 0, geometry.card_width, geometry.stripe_bottom + geometry.stripe_margin
    )


def safe_area(geometry: CardGeometry) -> Box:
    """Where text and photo may go: the card less ``edge_margin`` on every side."""
    m = geometry.edge_margin
    return mm_box(geometry, m, m, geometry.card_width - m, geometry.card_height - m)


@dataclass(frozen=True)
class CardFace:
    name: str
    ssn: str
    card_number: str
    issue_date: date
    authority: str  # e.g. 深圳市人力资源和社会保障局
    photo: bytes  # JPEG
    geometry: CardGeometry  # the card profile's ``face``

    def fields(self) -> list[tuple[str, str]]:
        """The fields under the name, label and value."""
        return [
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
    return _load_font(str(FONT_PATH), size)


@functools.lru_cache(maxsize=64)
def _load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, index=0)


@functools.lru_cache(maxsize=4096)
def text_width(text: str, size: int) -> int:
    """Dots from the pen's start to the right of the last glyph's ink or advance."""
    return math.ceil(max(_font(size).getlength(text), _ink_bbox(text, size)[2]))


@functools.lru_cache(maxsize=4096)
def _ink_bbox(text: str, size: int) -> tuple[float, float, float, float]:
    """The ink's box from the pen position (FreeType measures it anew on every call: the
    layout asks the same fixed texts for every card)."""
    return _font(size).getbbox(text)


@dataclass(frozen=True)
class TextItem:
    x: int
    y: int  # top of the line (the font's ascender)
    size: int
    text: str


@dataclass(frozen=True)
class FaceLayout:
    """Where everything goes on the front, for one holder; every box checked clear of the
    contact keep-out and inside the safe area when it is made."""

    photo: Box
    name_lines: tuple[str, ...]
    name_size: int
    text: tuple[TextItem, ...]


def fit_name(name: str, width: int) -> tuple[tuple[str, ...], int]:
    """The name in ``width`` dots: one line, shrinking from NAME_SIZE_MAX to NAME_SIZE_MIN;
    else two lines broken after a separator (·, space), shrinking again; else two lines
    broken anywhere. FaceError (Chinese first) when even that does not fit — never clipped."""
    sizes = range(NAME_SIZE_MAX, NAME_SIZE_MIN - 1, -1)
    for size in sizes:
        if text_width(name, size) <= width:
            return (name,), size
    for at_separator in (True, False):
        for size in sizes:
            lines = _two_lines(name, size, width, at_separator=at_separator)
            if lines is not None:
                return lines, size
    raise FaceError(
        f"姓名在卡面上放不下：{len(name)} 个字符，最小字号 {NAME_SIZE_MIN} 点分两行仍超过 "
        f"{width} 点宽 (the name does not fit on the card face, even on two lines at the "
        "smallest size)"
    )


def _two_lines(name: str, size: int, width: int, *, at_separator: bool) -> tuple[str, str] | None:
    """The most even break that fits, or None."""
    best: tuple[int, tuple[str, str]] | None = None
    for k in range(1, len(name)):
        if at_separator and name[k - 1] not in NAME_BREAKS:
            continue
        first, second = name[:k].rstrip(" "), name[k:].lstrip(" ")
        if not first or not second or second[0] in NAME_BREAKS:
            continue
        widths = (text_width(first, size), text_width(second, size))
        if max(widths) <= width and (best is None or max(widths) < best[0]):
            best = (max(widths), (first, second))
    return None if best is None else best[1]


def check_face_fits(name: str, authority: str, geometry: CardGeometry) -> None:
    """Refuse (FaceError) a name or an issuing authority the face cannot show whole: the job
    calls this when it is submitted, before anything is written. (The other fields have
    fixed lengths that the layout was made for.)"""
    left, right = _name_column(geometry)
    fit_name(name, right - left)
    _check_authority(authority, geometry)


def _check_authority(authority: str, geometry: CardGeometry) -> None:
    safe = safe_area(geometry)
    if text_width(authority, AUTHORITY_SIZE) > safe[2] - safe[0]:
        raise FaceError("发卡机构名称在卡面上放不下 (the issuing authority does not fit the face)")


def _name_column(geometry: CardGeometry) -> tuple[int, int]:
    """The text column: right of the chip's keep-out, left of the photo."""
    left = contact_keepout(geometry)[2] + GAP
    right = _photo_box(geometry)[0] - GAP
    if right - left < NAME_SIZE_MAX * 6:
        raise FaceError(
            "卡面布局无法避开芯片触点区 (the profile's contact area leaves no room for the text)"
        )
    return left, right


def _photo_box(geometry: CardGeometry) -> Box:
    safe = safe_area(geometry)
    top = TITLE_BAND + GAP
    return (safe[2] - PHOTO_W, top, safe[2], top + PHOTO_H)


def layout(face: CardFace) -> FaceLayout:
    """The front's layout: title in the band, the name and fields in the column between the
    chip's keep-out and the photo, the authority along the bottom. Raises FaceError when
    anything would not fit whole or would touch the contact keep-out."""
    geometry = face.geometry
    left, right = _name_column(geometry)
    lines, name_size = fit_name(face.name, right - left)
    safe = safe_area(geometry)
    items = [TextItem(safe[0] + 36, 25, TITLE_SIZE, "中华人民共和国社会保障卡")]
    y = TITLE_BAND + 16
    items.append(TextItem(left, y, LABEL_SIZE, "姓名"))
    y += LABEL_SIZE + 6
    for line in lines:
        items.append(TextItem(left, y, name_size, line))
        y += name_size + 6
    y += 10
    for label, value in face.fields():
        items.append(TextItem(left, y, LABEL_SIZE, label))
        y += LABEL_SIZE + 6
        if text_width(value, VALUE_SIZE) > right - left:
            raise FaceError(f"卡面字段“{label}”放不下 (the field does not fit on the face)")
        items.append(TextItem(left, y, VALUE_SIZE, value))
        y += VALUE_SIZE + 16
    bottom = safe[3] - AUTHORITY_SIZE - 10
    if y > bottom:
        raise FaceError("卡面文字超出卡片下沿 (the face's text runs off the card)")
    _check_authority(face.authority, geometry)
    items.append(TextItem(safe[0], bottom, AUTHORITY_SIZE, face.authority))
    photo = _photo_box(geometry)
    for box in (photo, *(_ink_box(item) for item in items)):
        _check_clear(box, geometry)
    return FaceLayout(photo, lines, name_size, tuple(items))


def _ink_box(item: TextItem) -> Box:
    x0, y0, x1, y1 = _ink_bbox(item.text, item.size)
    return (item.x + int(x0), item.y + int(y0), item.x + math.ceil(x1), item.y + math.ceil(y1))


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _check_clear(box: Box, geometry: CardGeometry) -> None:
    safe = safe_area(geometry)
    if _overlaps(box, contact_keepout(geometry)):
        raise FaceError("卡面内容压到芯片触点区 (face content over the chip's contacts)")
    if box[0] < safe[0] or box[1] < safe[1] or box[2] > safe[2] or box[3] > safe[3]:
        raise FaceError("卡面内容超出卡片安全区 (face content beyond the card's safe area)")


def _photo(face: CardFace, size: tuple[int, int]) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(face.photo))
        img.load()
    except Exception as exc:
        raise FaceError(f"照片无法读取 (the photo cannot be read): {exc}") from None
    if img.format != "JPEG":
        raise FaceError("照片必须是 JPEG (the photo must be a JPEG)")
    return ImageOps.fit(img.convert("RGB"), size)  # keep the aspect: scale to cover, centre-crop


def render_color(face: CardFace) -> Image.Image:
    """The YMC layer: the title band, the photo."""
    photo = layout(face).photo
    img = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, WIDTH, TITLE_BAND), fill=(196, 224, 244))
    img.paste(_photo(face, (photo[2] - photo[0], photo[3] - photo[1])), photo[:2])
    return img


def render_text(face: CardFace) -> Image.Image:
    """The K layer (mode "1"): title, field labels and values, authority. Black = 0."""
    img = Image.new("1", (WIDTH, HEIGHT), 1)
    draw = ImageDraw.Draw(img)
    for item in layout(face).text:
        draw.text((item.x, item.y), item.text, font=_font(item.size), fill=0)
    return img


BACK_TITLE = "持卡须知"
BACK_NOTES = (
    "1. 本卡是持卡人享受社会保障待遇的凭证，限本人使用，不得转借。",
    "2. 请妥善保管，勿折叠、弯曲，远离磁场和高温。",
    "3. 如有遗失，请及时挂失；补卡请携带本人有效身份证件。",
    "服务电话 12333",
)
BACK_TITLE_SIZE, BACK_NOTE_SIZE = 34, 26


def back_layout(face: CardFace) -> tuple[TextItem, ...]:
    """The back's text: below the magnetic stripe's keep-out, inside the safe area, the
    authority last. FaceError when a line would not fit whole."""
    geometry = face.geometry
    safe = safe_area(geometry)
    y = max(stripe_keepout(geometry)[3], safe[1]) + GAP
    items = [TextItem(safe[0], y, BACK_TITLE_SIZE, BACK_TITLE)]
    y += BACK_TITLE_SIZE + 14
    for note in (*BACK_NOTES, face.authority):
        items.append(TextItem(safe[0], y, BACK_NOTE_SIZE, note))
        y += BACK_NOTE_SIZE + 12
    stripe = stripe_keepout(geometry)
    for item in items:
        box = _ink_box(item)
        if _overlaps(box, stripe) or box[2] > safe[2] or box[3] > safe[3]:
            raise FaceError(
                "卡背文字放不下或压到磁条 (the back's text does not fit below the stripe)"
            )
    return tuple(items)


def render_back(face: CardFace) -> Image.Image:
    """The back (for the proof; the printer job prints the front only): notes and authority
    in black, nothing on the magnetic stripe band."""
    img = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(img)
    for item in back_layout(face):
        draw.text((item.x, item.y), item.text, font=_font(item.size), fill=(0, 0, 0))
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


# Packing the dye levels [ours]: the level of a dot is (255 − v) >> 3 for its R, G or B
# value v (subtractive colour, 32 levels), 5 bits MSB first, so 8 dots make 5 bytes. Byte j
# of such a group gathers the bits of the 2 or 3 dots that overlap it; each dot's share of
# byte j is a table from v (``bytes.translate``) applied to every 8th byte at once, and the
# shares have disjoint bits, so adding them is OR-ing them. LINES × LINE_DOTS is a multiple
# of 8: no group straddles two panels and nothing pads the end. Byte for byte the output of
# the per-dot packer kept in printer/panel_reference.py (tests/unit/test_panel_packing.py).
def _level_shares() -> tuple[tuple[tuple[int, bytes], ...], ...]:
    """For each of the 5 bytes of a group: (dot of the group, table v → that dot's bits of
    the byte)."""
    shares = []
    for byte in range(5):
        parts = []
        for dot in range(8):
            first, last = 5 * dot, 5 * dot + 5  # the dot's bits, counted from the group's MSB
            if last <= 8 * byte or first >= 8 * byte + 8:
                continue
            left = 8 * byte + 8 - last  # shift into the byte; negative: the bits run over
            table = bytes(
                ((255 - v) >> 3 << left if left >= 0 else (255 - v) >> 3 >> -left) & 0xFF
                for v in range(256)
            )
            parts.append((dot, table))
        shares.append(tuple(parts))
    return tuple(shares)


_LEVEL_SHARES = _level_shares()


def _pack_levels(values: bytes) -> bytes:
    """R, G or B values (one byte a dot, ``len`` a multiple of 8) → their dye levels, 5 bits
    a dot, MSB first."""
    groups = len(values) // 8
    dots = [values[dot::8] for dot in range(8)]  # dot k of every group
    out = bytearray(groups * 5)
    for byte, parts in enumerate(_LEVEL_SHARES):
        shares = (
            Image.frombytes("L", (groups, 1), dots[dot].translate(table)) for dot, table in parts
        )
        out[byte::5] = functools.reduce(ImageChops.add_modulo, shares).tobytes()
    return bytes(out)


def _pack_color(color: Image.Image) -> tuple[bytes, bytes, bytes]:
    """The Y, M and C panels of an RGB layer (Y from B, M from G, C from R), lines =
    columns."""
    r, g, b = color.transpose(Image.Transpose.TRANSPOSE).split()
    packed = _pack_levels(b"".join(band.tobytes() for band in (b, g, r)))
    size = len(packed) // 3
    return packed[:size], packed[size : 2 * size], packed[2 * size :]


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
    contact keep-out."""
    return panels_from_layers(render_color(face), render_text(face), face.geometry)


FRONT_ASPECT_TOLERANCE = 0.02


def fit_front(image: Image.Image) -> tuple[Image.Image, str | None]:
    """A front image for the panels, by a fixed rule [ours]: exactly 1016 × 648 is used as
    it is; an image of the same proportions (within 2 %, e.g. 2032 × 1296 at 600 dpi, or
    the ID-1 card's own 85.60 : 53.98) is scaled to 1016 × 648 and a warning says so; any
    other shape is refused (FaceError) — it is never stretched or letterboxed, which would
    move its content onto the chip's contacts."""
    if image.size == (WIDTH, HEIGHT):
        return image.convert("RGB"), None
    w, h = image.size
    target = WIDTH / HEIGHT
    if h == 0 or abs(w / h - target) / target > FRONT_ASPECT_TOLERANCE:
        raise FaceError(
            f"正面图像须为 {WIDTH}×{HEIGHT} 点 (300 dpi) 或同比例，实为 {w}×{h} "
            f"(the front image must be {WIDTH} × {HEIGHT} dots or the same proportions)"
        )
    scaled = image.convert("RGB").resize((WIDTH, HEIGHT), Image.Resampling.LANCZOS)
    return scaled, (
        f"正面图像 {w}×{h} 已按比例缩放为 {WIDTH}×{HEIGHT} "
        f"(the front image was scaled from {w} × {h} to {WIDTH} × {HEIGHT})"
    )


def panels_from_image(image: Image.Image, geometry: CardGeometry) -> Panels:
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
    return panels_from_layers(rgb, text, geometry)


def panels_from_layers(color: Image.Image, text: Image.Image, geometry: CardGeometry) -> Panels:
    """Subtractive colour (C = 255 − R, M = 255 − G, Y = 255 − B) and a mode-"1" text layer;
    the overlay spares the contact keep-out."""
    y, m, c = _pack_color(color)
    return Panels(y=y, m=m, c=c, k=_pack_mono(text), o=_overlay_panel(contact_keepout(geometry)))


@functools.lru_cache(maxsize=8)
def _overlay_panel(keepout: Box) -> bytes:
    """The O panel: overlay everywhere but ``keepout`` (the same for every card of a profile)."""
    overlay = Image.new("1", (WIDTH, HEIGHT), 0)  # black = print overlay
    left, top, right, bottom = keepout
    ImageDraw.Draw(overlay).rectangle((left, top, right - 1, bottom - 1), fill=1)
    return _pack_mono(overlay)


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


def register_pdf_font() -> None:
    """``FONT_PATH`` registered with reportlab as ``PDF_FONT``, once per process: importing
    reportlab and parsing the TrueType collection cost about 100 ms of CPU, which a
    long-lived station pays when it starts (``sscard station run``), not in its first job
    (issue 14, "a station without fixed costs")."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if not FONT_PATH.exists():
        raise FaceError(f"{FONT_PATH} is missing: install Debian's fonts-wqy-microhei")
    if PDF_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(PDF_FONT, str(FONT_PATH), subfontIndex=0))


def render_pdf(face: CardFace, path: str | Path) -> None:
    """A CR80-sized PDF proof with the Chinese text embedded (docs/architecture.md,
    Conventions): page 1 the front, page 2 the back, laid out as the PNGs are."""
    from reportlab.lib.units import mm
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    register_pdf_font()
    page_w, page_h = 85.6 * mm, 54.0 * mm
    scale = page_w / WIDTH  # points per dot
    pdf = canvas.Canvas(str(path), pagesize=(page_w, page_h))
    pdf.setTitle(f"社会保障卡 卡面校样 {face.card_number}")
    # the image itself, not a PNG of it: reportlab would decode the PNG again (and without
    # rl_accel, issue 14, ASCII85-encode the stream in pure Python)
    pdf.drawImage(ImageReader(render_color(face)), 0, 0, page_w, page_h)

    def text(x: float, y_top: float, size: float, value: str) -> None:  # same layout as PNG
        pdf.setFont(PDF_FONT, size * scale)
        pdf.drawString(x * scale, page_h - (y_top + size * 0.8) * scale, value)

    for item in layout(face).text:
        text(item.x, item.y, item.size, item.text)
    pdf.showPage()
    for item in back_layout(face):  # page 2: the back, the stripe band left blank
        text(item.x, item.y, item.size, item.text)
    pdf.showPage()
    pdf.save()
