"""The panel packing as it was before issue 14: one ``bytearray.append`` a byte, ~195 ms a
card. Kept as the oracle the fast packing of :mod:`printer.face` must equal byte for byte
(tests/unit/test_panel_packing.py) and as the "old" figure of bench/print_job.py."""

from __future__ import annotations

from PIL import Image, ImageChops, ImageDraw

from printer.face import (
    HEIGHT,
    WIDTH,
    CardFace,
    CardGeometry,
    Panels,
    _pack_mono,
    contact_keepout,
    render_color,
    render_text,
)


def pack_levels_per_dot(channel: Image.Image) -> bytes:
    """32 levels, 5 bits a dot, MSB first, lines = columns — one dot at a time."""
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


def panels_from_layers_per_dot(
    color: Image.Image, text: Image.Image, geometry: CardGeometry
) -> Panels:
    """:func:`printer.face.panels_from_layers` as it was: invert each channel, pack per dot,
    draw and pack the overlay for every card."""
    r, g, b = color.split()
    overlay = Image.new("1", (WIDTH, HEIGHT), 0)  # black = print overlay
    left, top, right, bottom = contact_keepout(geometry)
    ImageDraw.Draw(overlay).rectangle((left, top, right - 1, bottom - 1), fill=1)
    return Panels(
        y=pack_levels_per_dot(ImageChops.invert(b)),
        m=pack_levels_per_dot(ImageChops.invert(g)),
        c=pack_levels_per_dot(ImageChops.invert(r)),
        k=_pack_mono(text),
        o=_pack_mono(overlay),
    )


def build_panels_per_dot(face: CardFace) -> Panels:
    """:func:`printer.face.build_panels` as it was."""
    return panels_from_layers_per_dot(render_color(face), render_text(face), face.geometry)
