"""An Evolis-protocol card printer on a pseudo-terminal (docs/devices.md §2).

It holds a feeder of virtual cards (a chip — any simulated card OS, or none — and a magnetic
stripe), a ribbon and a cover; it parks a card at the contact station, where the chip is
served to pcscd through the vpcd bridge (the printer's coupler appears as a PC/SC reader);
it prints by decoding the received panels back into an image (kept, and written as a PNG
when ``out_dir`` is set); it encodes the stripe. Faults on demand: ribbon out, feeder empty,
cover open, jam, magnetic write error, and tearing — a print that stops part-way (the card
keeps a partial face and stays in the printer, the reply is a jam) and a stripe write that
stops part-way (some tracks written, the reply is a write error). ``printed`` is the
printer's own count of completed prints (``Rco;p``, the guide's counters), ``printed_log``
the cards it printed, in order, so a test can count the cards a job printed without asking
the registry. Replies are ``OK``/``ERR …``, or
``ACK``/``NACK <code>`` after ``Pem;4``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from printer.errors import TrackError
from printer.evolis import PANEL_BITS, panel_length
from printer.face import Panels, panels_to_image
from simulator.cardos.card import CardOS
from simulator.msr206_emulator import VirtualStripe
from simulator.pty_device import PtyDevice
from simulator.vpcd import VpcdBridge

DB_HEADER = re.compile(rb"^Db;([ymcko]);(\d+);$")
ERR_TEXT = {
    "1": "ERR CDE",
    "2": "ERR PARAM",
    "T": "ERR MECHANICAL JAM",
    "C": "ERR COVER OPEN",
    "F": "ERR FEEDER EMPTY",
    "R": "ERR RIBBON",
    "W": "ERR MAG WRITE",
    "B": "ERR BLANK TRACK",
    "H": "ERR HOPPER FULL",
    "N": "ERR NO CARD",
}


class Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class VirtualCard:
    chip: CardOS | None = None
    stripe: VirtualStripe = field(default_factory=VirtualStripe)
    printed: Image.Image | None = None
    label: str = ""


class EvolisEmulator:
    def __init__(
        self,
        feeder: list[VirtualCard] | None = None,
        *,
        contact_slot: int = 0,
        out_dir: Path | None = None,
        model: str = "Evolis Primacy",
        serial_number: str = "PRI000123",
        firmware: str = "1.7.4",
        ribbon: str | None = "YMCKO",
        ribbon_panels: int = 500,
        hopper_capacity: int = 100,
    ) -> None:
        self.feeder = list(feeder or [])
        self.contact_slot = contact_slot
        self.out_dir = out_dir
        self.model, self.serial_number, self.firmware = model, serial_number, firmware
        self.ribbon = ribbon
        self.ribbon_panels = ribbon_panels
        self.hopper_capacity = hopper_capacity
        self.cover_open = False
        self.jam_next = False
        self.mag_write_error_next = False
        self.tear_print_next = False
        self.tear_stripe_next = False
        self.printed_log: list[VirtualCard] = []
        # called with each command's text once it is done, before the reply goes out: a
        # test kills its host there to model "killed after sending ``Se``"
        self.after_command: Callable[[str], None] | None = None
        # how long a panel's data may take to arrive before the download is refused (a host
        # that died mid-panel): whatever comes meanwhile is taken as panel data
        self.download_timeout = 10.0
        self.ack_mode = False
        self.card: VirtualCard | None = None
        self.at_contact = False
        self.hopper: list[VirtualCard] = []
        self.reject_bin: list[VirtualCard] = []
        self.bridge: VpcdBridge | None = None
        self.panels: dict[str, bytes] = {}
        self.mag_buffer: dict[int, str] = {}
        self.in_sequence = False
        self.printed = 0
        self.pty = PtyDevice()

    @property
    def path(self) -> str:
        return self.pty.path

    def start(self) -> EvolisEmulator:
        self.pty.start(self._step)
        return self

    def stop(self) -> None:
        self._leave_contact()
        self.pty.stop()

    # ----------------------------------------------------------------- framing

    def _step(self) -> None:
        if self.pty.read(1, 0.1) != b"\x1b":
            return
        text = bytearray()
        while True:
            b = self.pty.read(1, 2.0)
            if not b:
                return  # the host went away mid-command
            if b == b"\r":
                break
            text += b
            match = DB_HEADER.match(bytes(text))
            if match:
                levels = int(match.group(2))
                try:
                    data = self.pty.read_exact(panel_length(levels), self.download_timeout)
                except Exception:
                    self._reply_refused("2")
                    return
                self.pty.read_exact(1, 2.0)  # the closing CR
                try:
                    self._reply(self._download(match.group(1).decode(), levels, data))
                except Refused as exc:
                    self._reply_refused(exc.code)
                return
        command = bytes(text).decode("ascii", "replace")
        try:
            reply = self._execute(command)
        except Refused as exc:
            self._reply_refused(exc.code)
            return
        if self.after_command is not None:
            self.after_command(command)
        self._reply(reply)

    def _reply(self, text: str) -> None:
        if self.ack_mode and text == "OK":
            text = "ACK"
        self.pty.send(text.encode("ascii") + b"\r")

    def _reply_refused(self, code: str) -> None:
        # blank track, hopper full and no card have no NACK code: they stay ERR texts [ours]
        nack = self.ack_mode and code not in ("B", "H", "N")
        self.pty.send((f"NACK {code}" if nack else ERR_TEXT[code]).encode() + b"\r")

    # ----------------------------------------------------------------- state helpers

    def _ready(self) -> None:
        if self.cover_open:
            raise Refused("C")

    def _take_card(self) -> VirtualCard:
        if self.card is None:
            if not self.feeder:
                raise Refused("F")
            self.card = self.feeder.pop(0)
        if self.jam_next:
            self.jam_next = False
            raise Refused("T")
        return self.card

    def _enter_contact(self) -> None:
        card = self._take_card()
        self.at_contact = True
        if card.chip is not None and self.bridge is None:
            self.bridge = VpcdBridge(card.chip, slot=self.contact_slot).start()

    def _leave_contact(self) -> None:
        if self.bridge is not None:
            self.bridge.stop()
            self.bridge = None
        self.at_contact = False

    def _out(self, bin_: list[VirtualCard]) -> None:
        self._leave_contact()
        if self.card is not None:
            bin_.append(self.card)
        self.card = None
        self.in_sequence = False

    # ----------------------------------------------------------------- commands

    def _execute(self, text: str) -> str:
        parts = text.split(";")
        cmd = parts[0]
        if cmd == "Rtp":
            return self.model
        if cmd == "Rsn":
            return self.serial_number
        if cmd == "Rfv":
            return self.firmware
        if cmd == "Rr":
            if self.ribbon is None or self.ribbon_panels <= 0:
                raise Refused("R")
            return self.ribbon
        if text == "Rse;f":
            return "EMPTY" if not self.feeder else "OK"
        if text == "Rlr;p":
            if self.card is None:
                return "NO CARD"
            return "SMART CARD" if self.at_contact else "CARD"
        if text == "Rco;p":
            return str(self.printed)
        if text == "Pem;4":
            self.ack_mode = True
            return "OK"
        if cmd == "Srs":
            self.jam_next = False
            return "OK"
        self._ready()
        if cmd == "Sis":
            self._enter_contact()
            return "OK"
        if cmd == "Ser":
            if self.card is None:
                raise Refused("N")
            self._out(self.reject_bin)
            return "OK"
        if cmd == "Se":
            if self.card is None:
                raise Refused("N")
            if len(self.hopper) >= self.hopper_capacity:
                raise Refused("H")
            if self.in_sequence:
                self._print()
            self._out(self.hopper)
            return "OK"
        if cmd == "Pr":
            if self.ribbon is None or self.ribbon_panels <= 0:
                raise Refused("R")
            if len(parts) != 2 or parts[1].upper() != self.ribbon:
                raise Refused("2")
            return "OK"
        if cmd == "Ss":
            self._leave_contact()
            self._take_card()
            self.in_sequence = True
            self.panels = {}
            return "OK"
        if cmd == "Sr":
            if not self.in_sequence:
                raise Refused("1")
            return "OK"
        if cmd == "Pmc" and len(parts) == 2 and parts[1] in ("h", "l"):
            return "OK"
        if cmd == "Dm" and len(parts) == 3 and parts[1] in ("1", "2", "3"):
            self.mag_buffer[int(parts[1])] = parts[2]
            return "OK"
        if cmd == "Smw":
            return self._write_mag()
        if cmd == "Smr" and len(parts) == 2 and parts[1] in ("1", "2", "3"):
            card = self._take_card()
            state, data = card.stripe.read(int(parts[1]))
            if state == "blank":
                raise Refused("B")
            if state != "ok":
                raise Refused("D")
            return data
        raise Refused("1")

    def _download(self, panel: str, levels: int, data: bytes) -> str:
        if not self.in_sequence or (1 << PANEL_BITS[panel]) != levels:
            raise Refused("2")
        self.panels[panel] = data
        return "OK"

    def _print(self) -> None:
        if self.ribbon is None or self.ribbon_panels <= 0:
            raise Refused("R")
        if self.jam_next:
            self.jam_next = False
            raise Refused("T")
        if set(self.panels) != set("ymcko"):
            raise Refused("2")
        image = panels_to_image(Panels(**self.panels))
        assert self.card is not None
        if self.tear_print_next:  # the print stops part-way: half a face, the card stays in
            self.tear_print_next = False
            image.paste("white", (0, image.height // 2, image.width, image.height))
            self.card.printed = image
            self.ribbon_panels -= 1
            self.in_sequence = False
            raise Refused("T")
        self.card.printed = image
        self.printed_log.append(self.card)
        self.ribbon_panels -= 1
        self.printed += 1
        if self.out_dir is not None:
            image.save(self.out_dir / f"printed-{self.printed:03d}.png")

    def _write_mag(self) -> str:
        card = self._take_card()
        if self.mag_write_error_next:
            self.mag_write_error_next = False
            raise Refused("W")
        try:
            written = VirtualStripe.with_tracks(self.mag_buffer)
        except TrackError:
            raise Refused("D") from None
        if self.tear_stripe_next:  # the write stops part-way: the first track only, cut short
            self.tear_stripe_next = False
            first = min(written.bits)
            card.stripe.bits[first] = written.bits[first][: len(written.bits[first]) // 2]
            raise Refused("W")
        card.stripe.bits.update(written.bits)
        for n, data in self.mag_buffer.items():  # the printer reads back and checks
            if card.stripe.read(n) != ("ok", data):
                raise Refused("W")
        self.mag_buffer = {}
        return "OK"
