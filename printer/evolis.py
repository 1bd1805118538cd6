"""Evolis card-printer driver: the escape protocol of the *Evolis Card Printers Programming
Guide* A5013 Rev E (docs/devices.md §2), over any ``serial_for_url`` address.

Framing: ``ESC command;p1;…;pn CR``; the reply is ASCII ending in CR (or NUL, as USB drivers
read it). Binary panel data follows its ``Db`` header and its length comes from the
parameters, never from scanning for CR. One command at a time; 30 s default timeout, 5 min
for printing (Evolis SDK). Errors — ``ERR …`` replies and ``NACK <code>`` in ACK/NACK mode —
become typed errors with a recovery class.

A session starts by synchronizing with the printer (:meth:`EvolisPrinter.synchronize`): the
replies on the line are not tagged with the command they answer, and a host that died with a
command under way (a print, a feed, a panel half sent) leaves the printer to answer it after
the next host has opened the port — read as the answer to that host's first command, it shifts
every answer by one (a print's ``OK`` taken for the serial number on which unsettled prints
are matched). The same happens after a command timed out, so a timeout ends the session's
synchronization too.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from printer.errors import DeviceError, DeviceProtocolError, DeviceTimeout, Recovery
from printer.face import COLOR_BYTES, MONO_BYTES, Panels
from printer.serialport import Port
from printer.tracks import validate

ESC, CR, NUL = b"\x1b", b"\r", b"\x00"
DEFAULT_TIMEOUT = 30.0
PRINT_TIMEOUT = 300.0
# Synchronization: how long the line must stay silent after a serial-number answer before it
# is taken as the answer to this session's probe, and how often the probe is repeated while
# nothing answers it (a probe sent while the printer still takes a dead host's panel data is
# swallowed as data).
SYNC_QUIET = 0.3
SYNC_PROBE_EVERY = 1.0
# A serial number (``Rsn``): letters and digits, at least one of each, nothing else. No other
# answer a dead host can have left has that shape — ``OK``/``ACK``, ``ERR …``/``NACK n``, a
# count (digits), a card position (``CARD``, ``NO CARD``, ``SMART CARD``), a ribbon
# (``YMCKO``), the model (``Evolis Primacy``), the firmware (``1.7.4``) — except a dead host's
# own ``Rsn``, whose answer is the same.
SERIAL_SHAPE = re.compile(r"(?=[0-9A-Za-z]*[0-9])(?=[0-9A-Za-z]*[A-Za-z])[0-9A-Za-z]+")


class PrinterError(DeviceError):
    """The printer refused or failed a command; ``code`` is its NACK code or ERR text."""

    def __init__(self, message: str, *, code: str, recovery: Recovery) -> None:
        super().__init__(message, recovery=recovery)
        self.code = code


class CommandRejected(PrinterError):
    """NACK 1 / 2, ERR CDE / ERR PARAM: the command or a parameter is wrong."""


class CoverOpen(PrinterError):
    """NACK C: close the cover, then retry."""


class FeederEmpty(PrinterError):
    """NACK F: load cards in the feeder, then retry."""


class RibbonError(PrinterError):
    """NACK R: no ribbon, wrong ribbon or ribbon ended — replace it, then retry."""


class Jam(PrinterError):
    """NACK T: time-out or mechanical error (card jam): the card's position is unknown."""


class MagError(PrinterError):
    """NACK K / D / W: magnetic checksum, data or write error — reject the card."""


class BlankTrack(MagError):
    """A magnetic read found the track blank (SDK status "blank track")."""


class HopperFull(PrinterError):
    """The output hopper is full (SDK status): empty it, then retry."""


class NoCardInPrinter(PrinterError):
    """Eject or reject with no card in the printer: nothing moved, so the card the operator
    meant is elsewhere (the SDK's "no card" position; ``ERR NO CARD`` reply [ours])."""


NACK_CODES: dict[str, tuple[type[PrinterError], Recovery, str]] = {
    "1": (CommandRejected, "reset", "command error"),
    "2": (CommandRejected, "reset", "parameter error"),
    "T": (Jam, "operator", "time-out or mechanical error (jam)"),
    "C": (CoverOpen, "operator", "cover open"),
    "F": (FeederEmpty, "operator", "feeder empty"),
    "R": (RibbonError, "operator", "ribbon error"),
    "K": (MagError, "unknown", "magnetic checksum error"),
    "D": (MagError, "unknown", "magnetic data error"),
    "W": (MagError, "unknown", "magnetic write error"),
    "B": (BlankTrack, "unknown", "blank magnetic track"),
    "H": (HopperFull, "operator", "output hopper full"),
    "N": (NoCardInPrinter, "operator", "no card in the printer"),
}
# Chinese first for what an operator reads [ours]; the English meaning follows.
NACK_CHINESE = {
    "C": "打印机盖未关",
    "F": "进卡器无卡",
    "R": "色带缺失或已用完",
    "T": "卡片卡住或机械故障",
    "H": "出卡箱已满",
    "N": "打印机内没有卡",
}

# ERR texts seen in the guide and the SDK status names, by keyword → NACK code ("B" blank
# track and "H" hopper full have no NACK code in the guide: they come from the SDK's status
# bits, as ERR texts [ours]).
ERR_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("CDE", "1"),
    ("PARAM", "2"),
    ("COVER", "C"),
    ("FEEDER", "F"),
    ("RIBBON", "R"),
    ("JAM", "T"),
    ("MECHANICAL", "T"),
    ("TIMEOUT", "T"),
    ("BLANK", "B"),
    ("HOPPER", "H"),
    ("NO CARD", "N"),
    ("MAG", "W"),
)

PANEL_BITS = {"y": 5, "m": 5, "c": 5, "k": 1, "o": 1}


def error_for(reply: str) -> PrinterError:
    if reply.startswith("NACK"):
        code = reply[4:].strip()[:1]
    else:
        code = next((c for word, c in ERR_KEYWORDS if word in reply.upper()), "1")
    cls, recovery, meaning = NACK_CODES.get(code, (PrinterError, "reset", "unknown error"))
    chinese = NACK_CHINESE.get(code)
    text = (
        f"{chinese} (printer: {meaning}; {reply})" if chinese else f"printer: {meaning} ({reply})"
    )
    return cls(text, code=code, recovery=recovery)


def panel_length(levels: int) -> int:
    """Bytes of a ``Db`` panel with ``levels`` (2 or 32) intensity levels."""
    if levels == 2:
        return MONO_BYTES
    if levels == 32:
        return COLOR_BYTES
    raise DeviceProtocolError(f"panels have 2 or 32 levels, not {levels}")


@dataclass(frozen=True)
class PrinterStatus:
    model: str
    serial_number: str
    firmware: str
    ribbon: str | None  # ribbon type, None when there is none
    feeder: str  # "ok" or "empty"
    card_position: str  # "none", "card" or "contact"


class EvolisPrinter:
    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.port = Port(url, baudrate=9600, timeout=timeout)
        self.timeout = timeout
        self._serial: str | None = None  # set by synchronize(): the session is in step

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> EvolisPrinter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def command(self, text: str, binary: bytes = b"", *, timeout: float | None = None) -> str:
        """Send ``ESC text [binary] CR``; return the reply or raise its typed error. The
        session's first command synchronizes it first (module docstring)."""
        if self._serial is None:
            self.synchronize()
        self.port.drain()
        self.port.write(ESC + text.encode("ascii") + binary + CR)
        try:
            raw = self.port.read_until(CR + NUL, timeout if timeout is not None else self.timeout)
        except DeviceTimeout:
            self._serial = None  # its answer may still come: the next command resynchronizes
            raise
        reply = _text(raw)
        if reply.startswith(("ERR", "NACK")):
            raise error_for(reply)
        return reply

    # ----------------------------------------------------------------- status

    def status(self) -> PrinterStatus:
        ribbon: str | None
        try:
            ribbon = self.command("Rr")
        except RibbonError:
            ribbon = None
        feeder = self.command("Rse;f")
        position = self.card_position()
        return PrinterStatus(
            model=self.command("Rtp"),
            serial_number=self.serial_number(),
            firmware=self.command("Rfv"),
            ribbon=ribbon,
            feeder="empty" if "EMPTY" in feeder.upper() else "ok",
            card_position=position,
        )

    def synchronize(self) -> str:
        """Bring the session in step with the printer and return its serial number: send the
        ``Rsn`` probe every ``SYNC_PROBE_EVERY`` seconds and read every answer until one of a
        serial number's shape (``SERIAL_SHAPE``) is followed by ``SYNC_QUIET`` seconds of
        silence. Whatever a dead host's command left comes before it (the printer answers one
        command at a time, in order); a probe sent while the printer still takes a dead
        host's panel data is swallowed as data, and a later one is answered; every probe that
        is answered is answered with the serial number. ``DeviceTimeout`` when no serial
        number came within the session's timeout."""
        self._serial = None
        self.port.drain()
        start = time.monotonic()
        deadline = start + self.timeout
        next_probe = start
        serial: str | None = None
        while True:
            now = time.monotonic()
            if serial is None and now >= next_probe:
                if now > deadline:
                    raise DeviceTimeout(
                        f"{self.port.url}: no serial-number answer within {self.timeout:.1f} s "
                        "(printer busy or not an Evolis printer)"
                    )
                self.port.write(ESC + b"Rsn" + CR)
                next_probe = now + SYNC_PROBE_EVERY
            wait = SYNC_QUIET if serial is not None else max(0.01, next_probe - now)
            try:
                answer = _text(self.port.read_until(CR + NUL, wait))
            except DeviceTimeout:
                if serial is not None:  # quiet after a serial number: in step
                    self._serial = serial
                    return serial
                continue
            if SERIAL_SHAPE.fullmatch(answer):
                serial = answer

    def serial_number(self) -> str:
        """``Rsn``: the printer's serial number (which printer a recorded print was on), as
        the session's synchronization read it."""
        if self._serial is None:
            return self.synchronize()
        return self._serial

    def card_position(self) -> str:
        """``Rlr;p``: ``"contact"`` (at the smart-card station), ``"card"`` (elsewhere in
        the printer) or ``"none"``."""
        position = self.command("Rlr;p").upper()
        return "contact" if "SMART" in position else "none" if "NO CARD" in position else "card"

    def printed_count(self) -> int:
        """``Rco;p`` (the guide's counters): the cards this printer has printed so far. A
        print whose outcome is unknown is settled by comparing it with the count before."""
        reply = self.command("Rco;p")
        try:
            return int(reply.split(";")[-1])
        except ValueError:
            raise DeviceProtocolError(f"printer counter reply {reply!r} is not a number") from None

    def reset(self) -> None:
        self.command("Srs")

    # ----------------------------------------------------------------- card movement

    def feed_to_contact(self) -> None:
        """Take a card from the feeder and park it at the contact station (``Sis``)."""
        self.command("Sis")

    def eject(self) -> None:
        """``Se``: the card in the printer to the output hopper; NoCardInPrinter if none."""
        self._require_card()
        self.command("Se")

    def reject(self) -> None:
        """``Ser``: the card in the printer to the reject bin; NoCardInPrinter if none."""
        self._require_card()
        self.command("Ser")

    def _require_card(self) -> None:
        """Ask where the card is (``Rlr;p``) first: a printer that acknowledges a move with
        no card must not make the operator believe a card left."""
        if "NO CARD" in self.command("Rlr;p").upper():
            raise error_for("ERR NO CARD")

    # ----------------------------------------------------------------- printing

    def print_panels(self, panels: Panels, *, ribbon: str = "ymcko") -> None:
        """``Pr`` ``Ss`` ``Sr`` ``Db`` × 5 ``Se`` (guide p. 69): print the front, eject."""
        self.load_panels(panels, ribbon=ribbon)
        self.print_and_eject()

    def load_panels(self, panels: Panels, *, ribbon: str = "ymcko") -> None:
        """``Pr`` ``Ss`` ``Sr`` ``Db`` × 5: the print sequence up to, not including, ``Se``.
        Nothing is on the card yet: the card is moved to the print position and can go back
        to the contact station (``Sis``)."""
        self.command(f"Pr;{ribbon}")
        self.command("Ss")
        self.command("Sr")
        for name, levels in (("y", 32), ("m", 32), ("c", 32), ("k", 2), ("o", 2)):
            data = getattr(panels, name)
            if len(data) != panel_length(levels):
                raise DeviceProtocolError(f"panel {name} has {len(data)} bytes")
            self.command(f"Db;{name};{levels};", data)

    def print_and_eject(self) -> None:
        """``Se`` after :meth:`load_panels`: the printer prints the face and ejects the card
        — the one irreversible step; once sent, its outcome is the printer's to tell."""
        self.command("Se", timeout=PRINT_TIMEOUT)

    # ----------------------------------------------------------------- magnetic

    def encode_mag(self, tracks: dict[int, str], *, coercivity: str = "h") -> None:
        """``Pmc`` coercivity, ``Dm`` per track, ``Smw`` (the printer reads back and checks)."""
        for n, data in tracks.items():
            validate(n, data)
        self.command(f"Pmc;{coercivity}")
        for n, data in sorted(tracks.items()):
            self.command(f"Dm;{n};{data}")
        self.command("Smw", timeout=PRINT_TIMEOUT)

    def read_mag(self, track: int) -> str:
        return self.command(f"Smr;{track}")


def _text(raw: bytes) -> str:
    """A reply without its terminator."""
    return raw[:-1].decode("ascii", "replace").strip()
