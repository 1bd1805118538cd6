"""The Evolis driver against the printer emulator over a real pseudo-terminal: status, the
print job (pixel-exact K), magnetic encoding, every injected fault as its typed error
(eject/reject with no card among them), the contact station read through pcscd, and the
CLI's rule for front images of the wrong size."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from apdu.pcsc import wait_for_card, wait_for_removal
from printer.errors import DeviceTimeout
from printer.evolis import (
    BlankTrack,
    CommandRejected,
    CoverOpen,
    EvolisPrinter,
    FeederEmpty,
    HopperFull,
    Jam,
    MagError,
    NoCardInPrinter,
    RibbonError,
)
from printer.face import CardFace, build_panels, k_panel_image, render_png, render_text
from simulator.evolis_emulator import EvolisEmulator, VirtualCard
from simulator.factory import (
    SAMPLE_HOLDER,
    TEST_ROOTS,
    issue_blank_card,
    personalize_directly,
    sample_issuer,
    sample_photo,
)
from simulator.pcscd import Pcscd
from sscard.identifiers import serial_number
from sscard.profile import load_profile
from tests.card_read import card_read_json

FACE = CardFace(
    "张三",
    "11010519491231002X",
    "A00000011",
    date(2026, 11, 25),
    "济南市人力资源和社会保障局",
    sample_photo("printer"),
    load_profile("default").face,
)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EvolisEmulator]:
    emu = EvolisEmulator(
        [VirtualCard(label=f"card{i}") for i in range(3)], out_dir=tmp_path
    ).start()
    yield emu
    emu.stop()


def test_status(emulator: EvolisEmulator) -> None:
    with EvolisPrinter(emulator.path, timeout=5) as printer:
        status = printer.status()
    assert (status.model, status.serial_number, status.firmware) == (
        "Evolis Primacy",
        "PRI000123",
        "1.7.4",
    )
    assert (status.ribbon, status.feeder, status.card_position) == ("YMCKO", "ok", "none")


def test_printed_k_panel_is_pixel_exact(emulator: EvolisEmulator, tmp_path: Path) -> None:
    with EvolisPrinter(emulator.path, timeout=10) as printer:
        printer.print_panels(build_panels(FACE))
    (card,) = emulator.hopper
    assert card.printed is not None
    png = tmp_path / "printed-001.png"
    assert png.exists()
    # what the printer received in K, decoded, equals the rendered text layer exactly
    received_k = k_panel_image(build_panels(FACE).k)
    printed_black = card.printed.convert("L").point(lambda v: 0 if v == 0 else 255)
    assert (
        ImageChops.difference(render_text(FACE).convert("L"), received_k.convert("L")).getbbox()
        is None
    )
    text_black = render_text(FACE).convert("L")
    # every text dot is black on the printed card
    assert ImageChops.darker(printed_black, text_black) == printed_black
    diff = ImageChops.difference(card.printed, render_png(FACE))
    assert max(hi for _, hi in diff.getextrema()) <= 9


def test_magnetic_encoding(emulator: EvolisEmulator) -> None:
    with EvolisPrinter(emulator.path, timeout=5) as printer:
        printer.encode_mag({2: "6222021234567890123=3011120", 3: "996222=156156"})
        assert printer.read_mag(2) == "6222021234567890123=3011120"
        emulator.mag_write_error_next = True
        with pytest.raises(MagError) as info:
            printer.encode_mag({2: "1234"})
        assert info.value.recovery == "unknown"
        printer.reject()
    assert len(emulator.reject_bin) == 1


@pytest.mark.parametrize("ack_mode", [False, True], ids=["ERR", "NACK"])
def test_every_fault_is_typed(emulator: EvolisEmulator, ack_mode: bool) -> None:
    with EvolisPrinter(emulator.path, timeout=5) as printer:
        if ack_mode:
            assert printer.command("Pem;4") == "ACK"
        emulator.cover_open = True
        with pytest.raises(CoverOpen) as cover:
            printer.feed_to_contact()
        assert cover.value.recovery == "operator"
        emulator.cover_open = False
        emulator.jam_next = True
        with pytest.raises(Jam):
            printer.feed_to_contact()
        printer.reset()
        emulator.ribbon = None
        with pytest.raises(RibbonError):
            printer.print_panels(build_panels(FACE))
        emulator.ribbon = "YMCKO"
        with pytest.raises(CommandRejected):
            printer.command("Xyz")
        with pytest.raises(BlankTrack):
            printer.read_mag(1)  # the jammed card's stripe is blank
        emulator.hopper_capacity = 0
        with pytest.raises(HopperFull) as hopper:
            printer.eject()
        assert hopper.value.recovery == "operator"
        emulator.hopper_capacity = 100
        emulator.feeder.clear()
        printer.eject()  # the jammed card leaves
        with pytest.raises(FeederEmpty):
            printer.feed_to_contact()
        assert printer.status().feeder == "empty"


@pytest.mark.parametrize("ack_mode", [False, True], ids=["ERR", "NACK"])
def test_eject_or_reject_with_no_card_is_an_error(emulator: EvolisEmulator, ack_mode: bool) -> None:
    with EvolisPrinter(emulator.path, timeout=5) as printer:
        if ack_mode:
            assert printer.command("Pem;4") == "ACK"
        for move in (printer.eject, printer.reject):
            with pytest.raises(NoCardInPrinter) as info:
                move()
            assert info.value.recovery == "operator"
            assert str(info.value).startswith("打印机内没有卡")
        for raw in ("Se", "Ser"):  # the printer itself refuses, too
            with pytest.raises(NoCardInPrinter):
                printer.command(raw)
        printer.feed_to_contact()  # with a card it moves as before
        printer.reject()
    assert [c.label for c in emulator.reject_bin] == ["card0"] and emulator.hopper == []


def test_silent_printer_times_out(tmp_path: Path) -> None:
    emu = EvolisEmulator([])
    emu.pty.start(lambda: emu.pty.read(64, 0.1) and None)  # reads, never answers
    try:
        with EvolisPrinter(emu.path, timeout=0.5) as printer, pytest.raises(DeviceTimeout):
            printer.status()
    finally:
        emu.pty.stop()


def test_an_answer_left_by_a_dead_host_is_not_taken_for_the_next_ones(
    emulator: EvolisEmulator,
) -> None:
    """A host killed with ``Sis`` under way: its ``OK`` arrives after the next host has opened
    the port and sent its first command. Unsynchronized, that host read ``OK`` as the serial
    number (on which unsettled prints are matched) and every later answer one behind."""
    release = threading.Event()
    emulator.after_command = lambda command: command == "Sis" and release.wait(5) and None
    dead = EvolisPrinter(emulator.path, timeout=5)
    dead.port.write(b"\x1bSis\r")  # sent, never read: the host dies here
    dead.close()
    threading.Timer(0.3, release.set).start()  # the printer finishes the feed meanwhile
    with EvolisPrinter(emulator.path, timeout=5) as printer:
        answers = (printer.serial_number(), printer.card_position(), printer.printed_count())
    assert answers == ("PRI000123", "contact", 0)


def test_a_panel_left_half_sent_by_a_dead_host_is_waited_out(emulator: EvolisEmulator) -> None:
    """A host killed in the middle of a panel: the printer takes the next host's first probe
    as panel data until its download times out and refuses the panel; the next probe is
    answered, and the session is in step."""
    emulator.download_timeout = 1.0
    with EvolisPrinter(emulator.path, timeout=5) as first:
        first.command("Pr;ymcko")
        first.command("Ss")
        first.port.write(b"\x1bDb;k;2;" + bytes(100))  # of 81,288: the host dies here
    with EvolisPrinter(emulator.path, timeout=5) as printer:
        answers = (printer.serial_number(), printer.card_position())
    assert answers == ("PRI000123", "card")


def test_a_timed_out_command_resynchronizes_the_session(emulator: EvolisEmulator) -> None:
    """An answer that comes after its command timed out is not taken for the next one's."""
    release = threading.Event()
    emulator.after_command = lambda command: command == "Sis" and release.wait(5) and None
    with EvolisPrinter(emulator.path, timeout=0.5) as printer:
        printer.serial_number()
        with pytest.raises(DeviceTimeout):
            printer.feed_to_contact()
        threading.Timer(0.3, release.set).start()  # the feed's answer comes late
        assert printer.printed_count() == 0  # not the feed's late "OK"
        assert printer.card_position() == "contact"


def test_contact_station_card_read_through_pcscd(tmp_path: Path) -> None:
    profile = load_profile("default")
    chip = issue_blank_card(profile.name, "370100")
    issuer = sample_issuer(profile.name, "370100", serial_number(chip.atr), TEST_ROOTS)
    personalize_directly(chip, profile.name, issuer, SAMPLE_HOLDER)
    with Pcscd():
        emu = EvolisEmulator([VirtualCard(chip)], contact_slot=1, out_dir=tmp_path).start()
        try:
            with EvolisPrinter(emu.path, timeout=5) as printer:
                printer.feed_to_contact()
                assert printer.status().card_position == "contact"
                wait_for_card("Virtual PCD 00 01")
                data = card_read_json("Virtual PCD 00 01")
                assert data["card_number"] == issuer.card_number and data["name"] == "张三"
                printer.eject()
                wait_for_removal("Virtual PCD 00 01")
        finally:
            emu.stop()
    assert emu.hopper[0].chip is chip


def test_printer_cli(emulator: EvolisEmulator, tmp_path: Path) -> None:
    front = tmp_path / "front.png"
    render_png(FACE).save(front)

    def sscard(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "personalize.cli", "printer", *args, "--port", emulator.path],
            capture_output=True,
            text=True,
            timeout=60,
        )

    status = json.loads(sscard("status", "--json").stdout)
    assert status["ribbon"] == "YMCKO" and status["card_position"] == "none"
    printed = sscard("print", "--front", str(front))
    assert printed.returncode == 0, printed.stderr
    assert emulator.printed == 1
    for move in ("eject", "reject"):  # no card left in the printer: an error, exit 1
        refused = sscard(move)
        assert refused.returncode == 1 and refused.stdout == ""
        (line,) = refused.stderr.splitlines()
        assert "打印机内没有卡" in line and "no card in the printer" in line
    emulator.cover_open = True
    refused = sscard("print", "--front", str(front))
    assert refused.returncode == 1 and "CoverOpen" in refused.stderr


def test_printer_cli_front_image_sizes(emulator: EvolisEmulator, tmp_path: Path) -> None:
    def sscard(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "personalize.cli", "printer", *args, "--port", emulator.path],
            capture_output=True,
            text=True,
            timeout=60,
        )

    face = render_png(FACE)
    wrong = tmp_path / "800x600.png"
    face.resize((800, 600)).save(wrong)
    refused = sscard("print", "--front", str(wrong))
    assert refused.returncode == 1 and refused.stdout == ""
    (line,) = refused.stderr.splitlines()
    assert "正面图像须为 1016×648" in line and "800×600" in line
    assert emulator.printed == 0 and emulator.hopper == []  # nothing reached the printer

    double = tmp_path / "600dpi.png"
    face.resize((2032, 1296), Image.Resampling.NEAREST).save(double)
    scaled = sscard("print", "--front", str(double))
    assert scaled.returncode == 0, scaled.stderr
    (warning,) = scaled.stderr.splitlines()
    assert warning.startswith("警告 warning:") and "2032×1296" in warning
    assert emulator.printed == 1
    as_json = json.loads(sscard("print", "--front", str(double), "--json").stdout)
    assert as_json["result"] == "printed" and "2032×1296" in as_json["warning"]

    exact = tmp_path / "front.png"
    face.save(exact)
    printed = sscard("print", "--front", str(exact))
    assert printed.returncode == 0 and printed.stderr == ""
    assert emulator.printed == 3
    last = emulator.hopper[-1].printed
    assert last is not None
    assert max(hi for _, hi in ImageChops.difference(last, face).getextrema()) <= 9
