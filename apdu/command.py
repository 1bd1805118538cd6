"""C-APDU and R-APDU codec, ISO/IEC 7816-4:2013 §5.1 (command-response pairs) and §5.2
(body encodings: cases 1, 2S, 3S, 4S, 2E, 3E, 4E).

``Command.le`` is *Ne*, the maximum number of bytes expected, not the raw Le byte: Ne = 256
is encoded as ``00`` in short form and Ne = 65 536 as ``0000`` in extended form (§5.1).
Parsing is strict: any byte count that does not match one of the seven cases is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from apdu.errors import MalformedCommand, MalformedResponse
from apdu.status import raise_for_sw

SHORT_MAX_NC = 255
SHORT_MAX_NE = 256
EXTENDED_MAX_NC = 65_535
EXTENDED_MAX_NE = 65_536


class Case(IntEnum):
    """The four command cases of ISO/IEC 7816-4 §5.1, table 2."""

    NO_DATA_NO_LE = 1
    LE_ONLY = 2
    DATA_ONLY = 3
    DATA_AND_LE = 4


def _check_byte(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise MalformedCommand(f"{name} must be one byte (0..255), got {value}")


@dataclass(frozen=True)
class Command:
    """A command APDU.

    ``le`` is Ne: ``None`` when no response data is expected, else 1..256 (short) or
    1..65 536 (extended). ``extended`` forces the form; ``None`` picks short whenever the
    lengths fit, as §5.1 recommends.
    """

    cla: int
    ins: int
    p1: int = 0
    p2: int = 0
    data: bytes = b""
    le: int | None = None
    extended: bool | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            _check_byte(name.upper(), getattr(self, name))
        if self.cla == 0xFF:
            raise MalformedCommand("CLA FF is invalid (ISO/IEC 7816-4 §5.4.1)")
        if len(self.data) > EXTENDED_MAX_NC:
            raise MalformedCommand(f"command data of {len(self.data)} bytes exceeds 65535")
        if self.le is not None and not 1 <= self.le <= EXTENDED_MAX_NE:
            raise MalformedCommand(f"Le (Ne) must be 1..65536 or absent, got {self.le}")
        if self.extended is False and not self.fits_short:
            raise MalformedCommand("lengths do not fit a short APDU (Nc <= 255, Ne <= 256)")

    @property
    def case(self) -> Case:
        """The command case, from the presence of data and Le."""
        if self.data:
            return Case.DATA_AND_LE if self.le is not None else Case.DATA_ONLY
        return Case.LE_ONLY if self.le is not None else Case.NO_DATA_NO_LE

    @property
    def fits_short(self) -> bool:
        """True when Nc <= 255 and Ne <= 256, so the short form can carry the command."""
        return len(self.data) <= SHORT_MAX_NC and (self.le is None or self.le <= SHORT_MAX_NE)

    @property
    def is_extended(self) -> bool:
        """Whether :meth:`to_bytes` uses the extended form."""
        if self.extended is not None:
            return self.extended
        return not self.fits_short

    @property
    def header(self) -> bytes:
        return bytes((self.cla, self.ins, self.p1, self.p2))

    def with_le(self, le: int | None) -> Command:
        """The same command with another Ne (used for the ``6Cxx`` resend)."""
        return Command(self.cla, self.ins, self.p1, self.p2, self.data, le, self.extended)

    def to_bytes(self) -> bytes:
        """Encode per ISO/IEC 7816-4 §5.2."""
        out = bytearray(self.header)
        nc, ne = len(self.data), self.le
        if not self.is_extended:
            if nc:
                out.append(nc)
                out += self.data
            if ne is not None:
                out.append(ne & 0xFF)  # 256 -> 00
            return bytes(out)
        if self.case is Case.NO_DATA_NO_LE:
            return bytes(out)  # case 1 has no extended form
        out.append(0x00)
        if nc:
            out += nc.to_bytes(2, "big")
            out += self.data
        if ne is not None:
            out += (ne & 0xFFFF).to_bytes(2, "big")  # 65536 -> 0000
        return bytes(out)

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    @classmethod
    def from_hex(cls, text: str) -> Command:
        """Parse a hex string (spaces allowed) — for the CLI and fixtures."""
        try:
            raw = bytes.fromhex(text)
        except ValueError as exc:
            raise MalformedCommand("APDU is not valid hexadecimal") from exc
        return cls.from_bytes(raw)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Command:
        """Strictly decode a C-APDU (ISO/IEC 7816-4 §5.2).

        Raises :class:`MalformedCommand` naming the inconsistency; the message gives lengths
        only, never data bytes.
        """
        n = len(raw)
        if n < 4:
            raise MalformedCommand(f"C-APDU of {n} bytes is shorter than its 4-byte header")
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        if n == 4:
            return cls(cla, ins, p1, p2)
        body = raw[4:]
        b1 = body[0]
        if n == 5:  # case 2S
            return cls(cla, ins, p1, p2, le=b1 or SHORT_MAX_NE, extended=False)
        if b1 != 0:  # short Lc
            nc = b1
            if len(body) == 1 + nc:
                return cls(cla, ins, p1, p2, body[1:], extended=False)
            if len(body) == 2 + nc:
                le = body[-1] or SHORT_MAX_NE
                return cls(cla, ins, p1, p2, body[1:-1], le, extended=False)
            raise MalformedCommand(
                f"wrong Lc: Lc={nc} but the body after Lc has {len(body) - 1} bytes "
                f"(expected {nc} or {nc + 1})"
            )
        # b1 == 0 and more than one body byte: extended form
        if len(body) < 3:
            raise MalformedCommand(
                f"extended APDU body of {len(body)} bytes is truncated (need 3 at least)"
            )
        if len(body) == 3:  # case 2E
            le = int.from_bytes(body[1:3], "big") or EXTENDED_MAX_NE
            return cls(cla, ins, p1, p2, le=le, extended=True)
        nc = int.from_bytes(body[1:3], "big")
        if nc == 0:
            raise MalformedCommand("extended Lc of 0 is invalid")
        rest = len(body) - 3
        if rest == nc:
            return cls(cla, ins, p1, p2, body[3:], extended=True)
        if rest == nc + 2:
            le = int.from_bytes(body[-2:], "big") or EXTENDED_MAX_NE
            return cls(cla, ins, p1, p2, body[3:-2], le, extended=True)
        raise MalformedCommand(
            f"wrong extended Lc: Lc={nc} but {rest} bytes follow (expected {nc} or {nc + 2})"
        )

    def __repr__(self) -> str:
        # Data is summarised by length: a command may carry a PIN or a key.
        le = "" if self.le is None else f", le={self.le}"
        return (
            f"Command({self.cla:02X} {self.ins:02X} {self.p1:02X} {self.p2:02X}, "
            f"nc={len(self.data)}{le})"
        )


@dataclass(frozen=True)
class Response:
    """A response APDU: data field and the status word SW1-SW2 (ISO/IEC 7816-4 §5.1)."""

    data: bytes
    sw: int

    def __post_init__(self) -> None:
        if not 0 <= self.sw <= 0xFFFF:
            raise MalformedResponse(f"status word must be two bytes, got {self.sw}")

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    @property
    def ok(self) -> bool:
        """True for ``9000`` only."""
        return self.sw == 0x9000

    def to_bytes(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Response:
        if len(raw) < 2:
            raise MalformedResponse(
                f"R-APDU of {len(raw)} bytes is shorter than its 2-byte status word"
            )
        sw1 = raw[-2]
        if sw1 == 0x60 or sw1 >> 4 not in (0x6, 0x9):
            raise MalformedResponse(
                f"SW1 {sw1:02X} is not a valid status byte (ISO/IEC 7816-4 §5.1.3: 6X but 60, 9X)"
            )
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))

    def check(self) -> Response:
        """Return ``self`` when the SW is ``9000``; raise the matching StatusError otherwise."""
        if not self.ok:
            raise_for_sw(self.sw)
        return self

    def __repr__(self) -> str:
        return f"Response(sw={self.sw:04X}, nr={len(self.data)})"
