"""``sscard sim new-card --profile IMAGE --quirk Q``, run as a tester runs it (subprocesses):
a personalized card of every card image, with image quirks shaping its records and answer
quirks stored for the card OS; the card file read back with raw APDUs whose answers are
written out here (docs/chip-application.md, "Card images")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.cardfile import load_card

SSCARD = [sys.executable, "-m", "personalize.cli"]
SELECT_SSSE = "00A404000F7378312E73682EC9E7BBE1B1A3D5CF"
ZHANG_SAN = "D5C5C8FD"  # GBK of 张三, the sample holder


def new_card(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SSCARD, "sim", "new-card", "--personalized", "--serial", "0102030405060708",
         "--out", str(path), *args],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip


def answers(path: Path, *apdus: str) -> list[str]:
    card = load_card(path, persist=False)
    card.power_on()
    return [card.process(bytes.fromhex(a)).hex().upper() for a in apdus]


@pytest.mark.parametrize(
    ("image", "name_pad", "pin"),
    [("default", "00", "123456"), ("hunan", "00", "123456"), ("jiangsu", "00", "123456"),
     ("pin-read", "20", "888888")],
)  # fmt: skip
def test_a_personalized_card_of_every_image(
    tmp_path: Path, image: str, name_pad: str, pin: str
) -> None:
    out = tmp_path / f"{image}.json"
    result = new_card(out, "--profile", image, "--region", "320100")
    assert "SN 0102030405060708" in result.stdout
    sel, fci, ef05, verify, name = answers(
        out, SELECT_SSSE, "00C0000018", "00B2012812", "0020000003" + pin, "00B2093020"
    )
    assert (sel, fci[-10:]) == ("6118", "88010B9000")
    assert ef05.startswith("0110320100D156000005") and ef05.endswith("9000")
    assert verify == "9000"
    assert name == "091E" + ZHANG_SAN + name_pad * 26 + "9000"


def test_quirks_shape_the_records_and_are_kept_in_the_card_file(tmp_path: Path) -> None:
    out = tmp_path / "quirky.json"
    result = new_card(
        out, "--profile", "default", "--quirk", "pad-ff", "--quirk", "no-4e",
        "--quirk", "strict-le", "--quirk", "max-le=64",
    )  # fmt: skip
    assert "quirks pad-ff no-4e strict-le max-le=64" in result.stdout
    assert json.loads(out.read_text("utf-8"))["quirks"] == ["pad-ff", "no-4e", "strict-le",
                                                           "max-le=64"]  # fmt: skip
    _, name, ext, birthplace, gender = answers(
        out, SELECT_SSSE, "00B2093020", "00B24E3016", "00B20C3005", "00B2033400"
    )
    assert name == "091E" + ZHANG_SAN + "FF" * 26 + "9000"
    assert ext == "6A83"  # no 姓名扩展
    assert birthplace == "0C03" + "1101FF" + "9000"  # 110105 → 4 digits, then FF
    assert gender == "0A0132" + "9000"  # record 3 once 4E is gone


def test_an_image_file_by_path(tmp_path: Path) -> None:
    image = Path(__file__).parents[2] / "simulator" / "images" / "jiangsu.toml"
    out = tmp_path / "js.json"
    new_card(out, "--profile", str(image), "--region", "320100")
    _, _, ea = answers(out, SELECT_SSSE, "00A4000002EF0D", "00B201040E")
    assert ea == "EA0C" + "333230313030" + "333130303258" + "9000"  # "320100" ‖ "31002X"
