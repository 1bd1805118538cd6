"""An MSR206-protocol encoder on a pseudo-terminal, holding one virtual stripe.

The stripe's tracks are data strings, ``None`` (blank, as a demagnetized card) or damaged
(unreadable). Faults on demand: the next write fails (status ``1``), the next answer is
garbage, the device goes silent. Protocol as in :mod:`printer.msr206`; the emulator keeps the
bit-level truth too — each written track is encoded with :mod:`printer.tracks` and decoded
again on read, so a damaged bit stream reads as ``ESC *``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from printer.errors import TrackDamaged
from printer.msr206 import bits_to_bytes, bytes_to_bits
from printer.tracks import decode_bits, encode_bits
from simulator.pty_device import PtyDevice

ESC = 0x1B


@dataclass
class VirtualStripe:
    bits: dict[int, list[int]] = field(default_factory=dict)  # absent = blank
    coercivity: str = "hi"

    @classmethod
    def with_tracks(cls, tracks: dict[int, str]) -> VirtualStripe:
        return cls({n: encode_bits(n, data) for n, data in tracks.items()})

    @classmethod
    def from_json(cls, text: str) -> VirtualStripe:
        """A stripe from a JSON object of track number to data, e.g. ``{"2": "123=4567"}``
        (JSON keys are strings); ValueError naming what is wrong."""
        try:
            tracks = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"不是有效的 JSON (not valid JSON: {exc.msg})") from None
        if not isinstance(tracks, dict) or not all(
            key in ("1", "2", "3") and isinstance(data, str) for key, data in tracks.items()
        ):
            raise ValueError(
                '应为磁道号 1–3 到磁道数据的 JSON 对象，如 {"2": "123=4567"} '
                "(a JSON object from track number 1, 2 or 3 to the track's data)"
            )
        return cls.with_tracks({int(key): data for key, data in tracks.items()})

    def demagnetize(self) -> None:
        self.bits.clear()

    def damage(self, track: int, at_bit: int = 40) -> None:
        """Flip one bit of a recorded track."""
        self.bits[track][at_bit] ^= 1

    def read(self, track: int) -> tuple[str, str]:
        """(state, data): ``ok``, ``blank`` or ``unreadable``."""
        if track not in self.bits:
            return "blank", ""
        try:
            return "ok", decode_bits(track, self.bits[track])
        except TrackDamaged as exc:
            return ("blank", "") if exc.kind == "blank" else ("unreadable", "")


class Msr206Emulator:
    def __init__(
        self,
        stripe: VirtualStripe | None = None,
        *,
        model: str = "MSR206-3HL",
        firmware: str = "REV2.31",
        plus_markers: bool = True,
    ) -> None:
        self.stripe = stripe or VirtualStripe()
        self.model_name = model
        self.firmware_version = firmware
        self.plus_markers = plus_markers  # ESC + for blank tracks (some firmware)
        self.fail_next_write = False
        self.corrupt_next_write = False  # reports success but records something else
        self.garbage_next = False
        self.silent = False
        self.writes = 0
        self.pty = PtyDevice()

    @property
    def path(self) -> str:
        return self.pty.path

    def start(self) -> Msr206Emulator:
        self.pty.start(self._step)
        return self

    def stop(self) -> None:
        self.pty.stop()

    def _answer(self, data: bytes) -> None:
        if self.silent:
            return
        if self.garbage_next:
            self.garbage_next = False
            self.pty.send(b"\x00\xff\x13garbage")
            return
        self.pty.send(data)

    def _step(self) -> None:
        b = self.pty.read(1, 0.1)
        if b != b"\x1b":
            return
        cmd = self.pty.read_exact(1, 1.0)
        ok = b"\x1b0"
        if cmd == b"a":
            return
        if cmd == b"e":
            self._answer(b"\x1by")
        elif cmd == b"t":
            self._answer(b"\x1bS" + self.model_name.encode() + b"?")
        elif cmd == b"v":
            self._answer(b"\x1b" + self.firmware_version.encode() + b"?")
        elif cmd in (b"x", b"y"):
            self.stripe.coercivity = "hi" if cmd == b"x" else "lo"
            self._answer(ok)
        elif cmd == b"d":
            self._answer(b"\x1bH" if self.stripe.coercivity == "hi" else b"\x1bL")
        elif cmd == b"b":
            self.pty.read_exact(1, 1.0)
            self._answer(ok)
        elif cmd == b"c":
            mask = self.pty.read_exact(1, 1.0)[0]
            tracks = {
                0x00: {1},
                0x02: {2},
                0x04: {3},
                0x03: {1, 2},
                0x05: {1, 3},
                0x06: {2, 3},
                0x07: {1, 2, 3},
            }.get(mask)
            if tracks is None:
                self._answer(b"\x1bA")
                return
            for n in tracks:
                self.stripe.bits.pop(n, None)
            self._answer(ok)
        elif cmd == b"r":
            self._answer(b"\x1bs" + self._read_block() + b"?\x1c\x1b0")
        elif cmd == b"w":
            self._write()
        elif cmd == b"m":
            raw = bytearray(b"\x1bs")
            for n in (1, 2, 3):
                data = bits_to_bytes(self.stripe.bits.get(n, []))[:255]
                raw += bytes((ESC, n, len(data))) + data
            self._answer(bytes(raw) + b"?\x1c\x1b0")
        elif cmd == b"n":
            self._write_raw()
        else:
            self._answer(b"\x1b4")

    def _read_block(self) -> bytes:
        out = bytearray()
        for n, (start, end) in ((1, ("%", "?")), (2, (";", "?")), (3, (";", "?"))):
            out += bytes((ESC, n))
            state, data = self.stripe.read(n)
            if state == "ok":
                out += f"{start}{data}{end}".encode("ascii")
            elif state == "unreadable":
                out += b"\x1b*"
            elif self.plus_markers:
                out += b"\x1b+"
        return bytes(out)

    def _write_raw(self) -> None:
        if self.pty.read_exact(2, 1.0) != b"\x1bs":
            self._answer(b"\x1b2")
            return
        tracks: dict[int, bytes] = {}
        for n in (1, 2, 3):
            head = self.pty.read_exact(3, 1.0)
            if len(head) != 3 or head[:2] != bytes((ESC, n)):
                self._answer(b"\x1b2")
                return
            tracks[n] = self.pty.read_exact(head[2], 1.0)
        if self.pty.read_exact(2, 1.0) != b"?\x1c":
            self._answer(b"\x1b2")
            return
        for n, data in tracks.items():
            if data:
                self.stripe.bits[n] = bytes_to_bits(data)
        self.writes += 1
        self._answer(b"\x1b0")

    def _write(self) -> None:
        body = bytearray()
        while not body.endswith(b"?\x1c"):
            chunk = self.pty.read(1, 1.0)
            if not chunk:
                self._answer(b"\x1b2")  # command format error: the block never ended
                return
            body += chunk
            if len(body) > 1024:
                self._answer(b"\x1b2")
                return
        if not body.startswith(b"\x1bs"):
            self._answer(b"\x1b2")
            return
        if self.fail_next_write:
            self.fail_next_write = False
            self._answer(b"\x1b1")
            return
        payload = bytes(body[2:-2])
        tracks: dict[int, str] = {}
        for n in (1, 2, 3):
            start = payload.find(bytes((ESC, n)))
            if start < 0:
                self._answer(b"\x1b2")
                return
            nxt = payload.find(b"\x1b", start + 2)
            raw = payload[start + 2 : nxt if nxt >= 0 else len(payload)]
            tracks[n] = raw.decode("ascii", "replace")
        if self.corrupt_next_write:
            self.corrupt_next_write = False
            tracks = {n: data[::-1] for n, data in tracks.items()}
        try:
            for n, data in tracks.items():
                if data:
                    self.stripe.bits[n] = encode_bits(n, data)
        except ValueError:
            self._answer(b"\x1b2")
            return
        self.writes += 1
        self._answer(b"\x1b0")
