"""The fast panel packing (printer/face.py) against the per-dot packing it replaced
(printer/panel_reference.py): byte-identical Y, M, C, K and O panels for faces that differ in
name (short, two-line, the chip's full capacity), photo, issuing authority and card profile,
and for images that use every R, G and B value at every position of an 8-dot group."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date

import pytest
from PIL import Image

from printer.face import HEIGHT, WIDTH, CardFace, build_panels, panels_from_image, render_text
from printer.panel_reference import build_panels_per_dot, panels_from_layers_per_dot
from simulator.factory import sample_photo
from sscard.profile import load_profile

FACE = CardFace(
    name="张三",
    ssn="11010519491231002X",
    card_number="A00000011",
    issue_date=date(2026, 11, 25),
    authority="深圳市人力资源和社会保障局",
    photo=sample_photo("packing"),
    geometry=load_profile("default").face,
)
FACES = {
    "short name": FACE,
    "two-line name": replace(FACE, name="阿卜杜热合曼·买买提艾力·阿不都克热木·吐尔逊"),
    "capacity name": replace(FACE, name="阿卜杜热合曼买买提艾力阿不都克热木吐尔逊阿卜杜热合"),
    "other photo": replace(FACE, name="欧阳娜娜", photo=sample_photo("another holder")),
    "other region": replace(
        FACE, authority="长沙市人力资源和社会保障局", geometry=load_profile("hunan").face
    ),
    "wider chip margin": replace(
        FACE, geometry=replace(load_profile("default").face, contact_margin=3.5)
    ),
}


@pytest.mark.parametrize("which", FACES)
def test_panels_are_byte_identical_to_the_per_dot_packing(which: str) -> None:
    face = FACES[which]
    assert build_panels(face) == build_panels_per_dot(face)


def test_every_value_at_every_dot_of_a_group_packs_as_before() -> None:
    # A ramp shifted per channel and per line puts each of the 256 values at each of the 8
    # positions of a 5-byte group (648 dots a line, 81 groups); noise mixes them freely.
    ramp = bytes(
        (x + 3 * y + 85 * c) % 256 for y in range(HEIGHT) for x in range(WIDTH) for c in range(3)
    )
    noise = random.Random(14).randbytes(WIDTH * HEIGHT * 3)
    text = render_text(FACE)
    for pixels in (ramp, noise):
        image = Image.frombytes("RGB", (WIDTH, HEIGHT), pixels)
        fast, per_dot = (
            panels_from_image(image, FACE.geometry),
            panels_from_layers_per_dot(image, text, FACE.geometry),
        )
        assert (fast.y, fast.m, fast.c) == (per_dot.y, per_dot.m, per_dot.c)
