"""MSR206/MSR605 magnetic-stripe encoder driver (docs/devices.md §3; libmsr ``msr206.c``, MSR605
Programmer's Manual).

Every command is ``ESC`` + a letter; answers end in ``ESC <status>`` (``0`` ok, ``1``
read/write error, ``2`` command format error, ``4`` invalid command, ``9`` invalid swipe in
write mode). ISO read/write carry data characters only; the device adds (and returns)
sentinels and LRC. A track's data block is its marker ``ESC 01|02|03`` followed by the
data, or by ``ESC +`` (empty) / ``ESC *`` (unreadable) on some firmware. Writes are always
read back and compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from printer.errors import (
    DeviceError,
    DeviceProtocolError,
    Recovery,
    TrackError,
)
from printer.serialport import Port
from printer.tracks import TRACKS, validate

ESC = 0x1B
FS = 0x1C
STATUS = {
    0x30: "ok",
    0x31: "read/write error",
    0x32: "command format error",
    0x34: "invalid command",
    0x39: "invalid card swipe in write mode",
}
TrackState = Literal["ok", "blank", "unreadable"]


class EncoderError(DeviceError):
    """The encoder answered a failure status (``status`` is the byte)."""

    def __init__(self, status: int) -> None:
        meaning = STATUS.get(status, f"unknown status {status:#04x}")
        recovery: Recovery = "operator" if status in (0x31, 0x39) else "reset"
        super().__init__(f"encoder: {meaning}", recovery=recovery)
        self.status = status


class VerifyMismatch(DeviceError):
    """A track read back differs from what was written."""

    recovery = "unknown"

    def __init__(self, tracks: list[int]) -> None:
        super().__init__(f"read-back differs on track(s) {', '.join(map(str, tracks))}")
        self.tracks = tracks


@dataclass(frozen=True)
class TrackRead:
    number: int
    state: TrackState
    data: str = ""

    def __repr__(self) -> str:  # track data is card data: never in a repr
        return f"TrackRead({self.number}, {self.state}, {len(self.data)} chars)"


@dataclass(frozen=True)
class StripeRead:
    tracks: tuple[TrackRead, TrackRead, TrackRead]

    def track(self, n: int) -> TrackRead:
        return self.tracks[n - 1]


class Msr206:
    def __init__(self, url: str, *, timeout: float = 5.0, swipe_timeout: float = 20.0) -> None:
        self.port = Port(url, baudrate=9600, timeout=timeout)
        self.swipe_timeout = swipe_timeout

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> Msr206:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- framing

    def _command(self, letter: bytes, payload: bytes = b"") -> None:
        self.port.drain()
        self.port.write(bytes((ESC,)) + letter + payload)

    def _status(self, timeout: float | None = None) -> None:
        esc, status = self.port.read_exact(2, timeout)
        if esc != ESC:
            self.port.drain()
            raise DeviceProtocolError(f"encoder: expected ESC before the status, got {esc:#04x}")
        if status != 0x30:
            raise EncoderError(status)

    # ----------------------------------------------------------------- commands

    def reset(self) -> None:
        self._command(b"a")

    def comm_test(self) -> None:
        self._command(b"e")
        if self.port.read_exact(2) != b"\x1by":
            raise DeviceProtocolError("encoder: communication test failed")

    def model(self) -> str:
        self._command(b"t")
        answer = self.port.read_until(b"?")
        if not answer.startswith(b"\x1bS"):
            raise DeviceProtocolError("encoder: malformed model answer")
        return answer[2:-1].decode("ascii", "replace")

    def firmware(self) -> str:
        self._command(b"v")
        answer = self.port.read_until(b"?")
        if not answer.startswith(b"\x1b"):
            raise DeviceProtocolError("encoder: malformed firmware answer")
        return answer[1:-1].decode("ascii", "replace")

    def set_coercivity(self, level: Literal["hi", "lo"]) -> None:
        self._command(b"x" if level == "hi" else b"y")
        self._status()

    def coercivity(self) -> Literal["hi", "lo"]:
        self._command(b"d")
        esc, value = self.port.read_exact(2)
        if esc != ESC or value not in b"HhLl":
            raise DeviceProtocolError("encoder: malformed coercivity answer")
        return "hi" if value in b"Hh" else "lo"

    def set_bpi(self, track: int, bpi: Literal[75, 210]) -> None:
        """Track density: ``ESC b`` with D2 (track 2 at 210), 4B (track 2 at 75), A1/A0
        (track 1), C1/C0 (track 3) — libmsr's table."""
        codes = {
            (1, 210): 0xA1,
            (1, 75): 0xA0,
            (2, 210): 0xD2,
            (2, 75): 0x4B,
            (3, 210): 0xC1,
            (3, 75): 0xC0,
        }
        if (track, bpi) not in codes:
            raise TrackError(f"no density {bpi} for track {track}")
        self._command(b"b", bytes((codes[(track, bpi)],)))
        self._status()

    def erase(self, tracks: set[int]) -> None:
        mask = {
            frozenset({1}): 0x00,
            frozenset({2}): 0x02,
            frozenset({3}): 0x04,
            frozenset({1, 2}): 0x03,
            frozenset({1, 3}): 0x05,
            frozenset({2, 3}): 0x06,
            frozenset({1, 2, 3}): 0x07,
        }.get(frozenset(tracks))
        if mask is None:
            raise TrackError(f"tracks to erase must be a non-empty subset of 1, 2, 3: {tracks}")
        self._command(b"c", bytes((mask,)))
        self._status(self.swipe_timeout)

    def read(self) -> StripeRead:
        """ISO read: ``ESC s [ESC 01 t1][ESC 02 t2][ESC 03 t3] ? FS ESC status``."""
        self._command(b"r")
        head = self.port.read_exact(2, self.swipe_timeout)
        if head != b"\x1bs":
            self.port.drain()
            raise DeviceProtocolError("encoder: ISO read answer does not start with ESC s")
        body = bytearray()
        while True:
            b = self.port.read_exact(1)
            body += b
            if body.endswith(b"?\x1c"):
                break
            if len(body) > 1024:
                raise DeviceProtocolError("encoder: ISO read answer too long")
        self._status()
        return StripeRead(_parse_tracks(bytes(body[:-2])))

    def read_raw(self) -> dict[int, bytes]:
        """Raw read ``ESC m``: ``ESC s`` then per track ``ESC n <len> <bytes>``, ``? FS`` and
        the status — the bit streams as recorded, for diagnosis of damaged tracks."""
        self._command(b"m")
        if self.port.read_exact(2, self.swipe_timeout) != b"\x1bs":
            self.port.drain()
            raise DeviceProtocolError("encoder: raw read answer does not start with ESC s")
        tracks: dict[int, bytes] = {}
        for n in (1, 2, 3):
            marker, length = self.port.read_exact(2), self.port.read_exact(1)[0]
            if marker != bytes((ESC, n)):
                raise DeviceProtocolError(f"encoder: raw track {n} marker missing")
            tracks[n] = self.port.read_exact(length)
        if self.port.read_exact(2) != b"?\x1c":
            raise DeviceProtocolError("encoder: raw read answer does not end with ? FS")
        self._status()
        return tracks

    def write_raw(self, tracks: dict[int, bytes]) -> None:
        """Raw write ``ESC n ESC s [ESC n <len> <bytes>]… ? FS``, then read back and compare."""
        block = bytearray(b"\x1bs")
        for n in (1, 2, 3):
            data = tracks.get(n, b"")
            if len(data) > 255:
                raise TrackError(f"raw track {n} holds at most 255 bytes")
            block += bytes((ESC, n, len(data))) + data
        block += b"?\x1c"
        self._command(b"n", bytes(block))
        self._status(self.swipe_timeout)
        read = self.read_raw()
        bad = [n for n, data in tracks.items() if read[n].rstrip(b"\0") != data.rstrip(b"\0")]
        if bad:
            raise VerifyMismatch(bad)

    def write(self, tracks: dict[int, str], *, verify: bool = True) -> StripeRead | None:
        """ISO write of the given tracks (others sent empty), then read back and compare."""
        for n, data in tracks.items():
            if n not in TRACKS:
                raise TrackError(f"no track {n}")
            validate(n, data)
        block = bytearray(b"\x1bs")
        for n in (1, 2, 3):
            block += bytes((ESC, n)) + tracks.get(n, "").encode("ascii")
        block += b"?\x1c"
        self._command(b"w", bytes(block))
        self._status(self.swipe_timeout)
        if not verify:
            return None
        read = self.read()
        bad = [
            n
            for n, data in tracks.items()
            if read.track(n).data != data or (data and read.track(n).state != "ok")
        ]
        if bad:
            raise VerifyMismatch(bad)
        return read


def bits_to_bytes(bits: list[int]) -> bytes:
    """Raw mode packs a track's bit stream 8 bits a byte, first bit in the MSB [ours]."""
    padded = bits + [0] * (-len(bits) % 8)
    return bytes(
        sum(bit << (7 - i) for i, bit in enumerate(padded[n : n + 8]))
        for n in range(0, len(padded), 8)
    )


def bytes_to_bits(raw: bytes) -> list[int]:
    return [(byte >> (7 - i)) & 1 for byte in raw for i in range(8)]


def _parse_tracks(body: bytes) -> tuple[TrackRead, TrackRead, TrackRead]:
    """Split ``ESC 01 …ESC 02 … ESC 03 …`` into three tracks; strip sentinels."""
    result: dict[int, TrackRead] = {}
    positions = []
    for n in (1, 2, 3):
        marker = bytes((ESC, n))
        pos = body.find(marker)
        if pos < 0:
            raise DeviceProtocolError(f"encoder: track {n} marker missing in the read answer")
        positions.append(pos)
    if positions != sorted(positions):
        raise DeviceProtocolError("encoder: track markers out of order")
    ends = [*positions[1:], len(body)]
    for n, start, end in zip((1, 2, 3), positions, ends, strict=True):
        raw = body[start + 2 : end]
        if raw in (b"", b"\x1b+"):
            result[n] = TrackRead(n, "blank")
        elif raw == b"\x1b*":
            result[n] = TrackRead(n, "unreadable")
        else:
            result[n] = TrackRead(n, "ok", _track_text(n, raw))
    return result[1], result[2], result[3]


def _track_text(n: int, raw: bytes) -> str:
    """A track's characters as the encoder returned them, sentinels stripped; every byte
    must be a character of the track's set (ISO/IEC 7811-2 §4 and -6: 0x20-0x5F on track 1,
    0x30-0x3F on tracks 2 and 3), so the text is ASCII and comparable — a byte ≥ 0x80 or
    outside the set is a protocol error, never a replacement character."""
    fmt = TRACKS[n]
    if not raw.isascii():
        raise DeviceProtocolError(
            f"encoder: 磁道 {n} 读出非 ASCII 字节 (track {n} read back bytes outside ASCII)"
        )
    text = raw.decode("ascii")
    if text.startswith(fmt.start):
        text = text[1:]
    if text.endswith(fmt.end):
        text = text[:-1]
    try:
        validate(n, text)
    except TrackError:
        raise DeviceProtocolError(
            f"encoder: 磁道 {n} 读出的字符不在该磁道字符集内 "
            f"(track {n} read back characters outside its character set)"
        ) from None
    return text
