"""ISO/IEC 7811 magnetic tracks: character sets, odd parity, sentinels, LRC, F2F recording
(docs/devices.md §4), and the ISO 7813 (track 2) and ISO 4909 (track 3) layouts.

* Track 1: 6-bit characters, ASCII 0x20-0x5F (value = code − 0x20), start ``%``, end ``?``.
* Tracks 2 and 3: 4-bit characters, ASCII 0x30-0x3F (value = code − 0x30), start ``;``,
  end ``?``.
* Each character: its bits least significant first, then an odd-parity bit.
* LRC: XOR of the data bits of every character from start to end sentinel; its parity bit is
  odd parity over its own bits.
* Maximum characters including start, end and LRC: 79, 40, 107.
* F2F (Aiken biphase): a flux reversal at every bit-cell boundary, another mid-cell for a 1;
  leading and trailing zeros clock the reader.
"""

from __future__ import annotations

from dataclasses import dataclass

from printer.errors import TrackDamaged, TrackError


@dataclass(frozen=True)
class TrackFormat:
    number: int
    bits: int  # data bits per character (parity not counted)
    base: int  # ASCII code of value 0
    start: str
    end: str
    max_chars: int  # including start, end and LRC

    @property
    def max_data(self) -> int:
        return self.max_chars - 3

    def value(self, ch: str) -> int:
        v = ord(ch) - self.base
        if not 0 <= v < (1 << self.bits):
            raise TrackError(f"character {ch!r} is not in track {self.number}'s character set")
        return v


TRACKS = {
    1: TrackFormat(1, 6, 0x20, "%", "?", 79),
    2: TrackFormat(2, 4, 0x30, ";", "?", 40),
    3: TrackFormat(3, 4, 0x30, ";", "?", 107),
}
CLOCK_ZEROS = 16


def _odd_parity(value: int) -> int:
    return 1 - bin(value).count("1") % 2


def _char_bits(value: int, bits: int) -> list[int]:
    return [(value >> i) & 1 for i in range(bits)] + [_odd_parity(value)]


def validate(track: int, data: str) -> None:
    """Refuse data that cannot be recorded on ``track`` (sentinels, charset, length)."""
    fmt = TRACKS[track]
    if len(data) > fmt.max_data:
        raise TrackError(f"track {track} holds {fmt.max_data} data characters, got {len(data)}")
    for ch in data:
        if ch in (fmt.start, fmt.end):
            raise TrackError(f"track {track} data must not contain the sentinel {ch!r}")
        fmt.value(ch)


def encode_bits(track: int, data: str, *, clock_zeros: int = CLOCK_ZEROS) -> list[int]:
    """The bit stream of a track: clocking zeros, start sentinel, data, end sentinel, LRC,
    clocking zeros."""
    validate(track, data)
    fmt = TRACKS[track]
    values = [fmt.value(c) for c in fmt.start + data + fmt.end]
    lrc = 0
    for v in values:
        lrc ^= v
    bits = [0] * clock_zeros
    for v in [*values, lrc]:
        bits += _char_bits(v, fmt.bits)
    return bits + [0] * clock_zeros


def decode_bits(track: int, bits: list[int]) -> str:
    """The data characters of a bit stream, or TrackDamaged saying where it is damaged:
    ``blank``, ``no-start-sentinel``, ``parity`` (character index), ``no-end-sentinel``,
    ``lrc``. Reads forward only."""
    fmt = TRACKS[track]
    width = fmt.bits + 1
    if not any(bits):
        raise TrackDamaged("blank", None, f"track {track} is blank")
    start = bits.index(1)
    first = bits[start : start + width]
    if (
        len(first) < width
        or _value(first, fmt.bits) != fmt.value(fmt.start)
        or not _parity_ok(first)
    ):
        raise TrackDamaged(
            "no-start-sentinel", start, f"track {track}: no start sentinel at bit {start}"
        )
    lrc = 0
    out: list[str] = []
    pos = start
    index = 0
    while True:
        chunk = bits[pos : pos + width]
        if len(chunk) < width:
            raise TrackDamaged(
                "no-end-sentinel", index, f"track {track}: no end sentinel before the end"
            )
        if not _parity_ok(chunk):
            raise TrackDamaged("parity", index, f"track {track}: parity error at character {index}")
        value = _value(chunk, fmt.bits)
        lrc ^= value
        pos += width
        ch = chr(value + fmt.base)
        if index > 0 and ch == fmt.end:
            break
        if index > 0:
            out.append(ch)
        index += 1
        if index > fmt.max_chars:
            raise TrackDamaged(
                "no-end-sentinel", index, f"track {track}: no end sentinel within its length"
            )
    chunk = bits[pos : pos + width]
    if len(chunk) < width or not _parity_ok(chunk) or _value(chunk, fmt.bits) != lrc:
        raise TrackDamaged("lrc", index + 1, f"track {track}: LRC mismatch")
    return "".join(out)


def _value(chunk: list[int], bits: int) -> int:
    return sum(b << i for i, b in enumerate(chunk[:bits]))


def _parity_ok(chunk: list[int]) -> bool:
    return sum(chunk) % 2 == 1


def to_flux(bits: list[int]) -> list[int]:
    """F2F: two half-cell levels (+1/−1) per bit; the level flips at every cell boundary and
    again mid-cell for a 1."""
    level = 1
    out: list[int] = []
    for b in bits:
        level = -level
        out.append(level)
        if b:
            level = -level
        out.append(level)
    return out


def from_flux(flux: list[int]) -> list[int]:
    """Inverse of :func:`to_flux`; a missing cell-boundary reversal is a clocking error."""
    if len(flux) % 2:
        raise TrackDamaged("clock", len(flux), "flux ends in the middle of a bit cell")
    bits = []
    previous = -flux[0] if flux else 1  # the level before the first boundary
    for i in range(0, len(flux), 2):
        first, second = flux[i], flux[i + 1]
        if first == previous:
            raise TrackDamaged("clock", i // 2, f"no flux reversal at bit cell {i // 2}")
        bits.append(1 if second != first else 0)
        previous = second
    return bits


# ------------------------------------------------------------------ layouts


@dataclass(frozen=True)
class Track2:
    """ISO/IEC 7813 track 2: ``PAN = YYMM service-code discretionary``."""

    pan: str
    expiry: str  # YYMM
    service_code: str
    discretionary: str = ""

    def build(self) -> str:
        if not (self.pan.isdigit() and 1 <= len(self.pan) <= 19):
            raise TrackError("a PAN is 1 to 19 digits")
        if not (self.expiry.isdigit() and len(self.expiry) == 4):
            raise TrackError("the expiry date is YYMM")
        if not (self.service_code.isdigit() and len(self.service_code) == 3):
            raise TrackError("the service code is 3 digits")
        data = f"{self.pan}={self.expiry}{self.service_code}{self.discretionary}"
        validate(2, data)
        return data

    @classmethod
    def parse(cls, data: str) -> Track2:
        pan, sep, rest = data.partition("=")
        if not sep or len(rest) < 7 or not pan.isdigit():
            raise TrackError("not an ISO 7813 track 2")
        return cls(pan, rest[:4], rest[4:7], rest[7:])


@dataclass(frozen=True)
class Track3:
    """ISO 4909 track 3 as Chinese bank cards use it: format code 99, PAN, then country and
    currency 156 (GB/T 19584 blog copies, not normative), then the rest of the issuer's
    data."""

    pan: str
    country: str = "156"
    currency: str = "156"
    rest: str = ""
    format_code: str = "99"

    def build(self) -> str:
        if not (self.pan.isdigit() and 1 <= len(self.pan) <= 19):
            raise TrackError("a PAN is 1 to 19 digits")
        data = f"{self.format_code}{self.pan}={self.country}{self.currency}{self.rest}"
        validate(3, data)
        return data

    @classmethod
    def parse(cls, data: str) -> Track3:
        head, sep, rest = data.partition("=")
        if not sep or len(head) < 3 or len(rest) < 6:
            raise TrackError("not an ISO 4909 track 3")
        return cls(head[2:], rest[:3], rest[3:6], rest[6:], head[:2])
