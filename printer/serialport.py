"""Opening serial devices: a URL (``socket://``, ``loop://``, ``spy://…``) goes through
pyserial's ``serial_for_url`` and a path (``/dev/ttyUSB0``, a pty from an emulator) opens as
``serial_for_url`` would open it, plus an exclusive lock — so both work alike (docs/devices.md
§5). Reads are exact-length with a deadline: pyserial reports a timeout as a short read,
which becomes :class:`DeviceTimeout`; a vanished port (``SerialException``) becomes
:class:`DeviceGone`.
"""

from __future__ import annotations

import contextlib
import time

import serial

from printer.errors import DeviceGone, DeviceTimeout


class Port:
    def __init__(self, url: str, *, baudrate: int = 9600, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout
        self._partial = bytearray()  # read_until: an answer begun, not yet ended
        # A device path is locked for this program alone (flock): two programs talking to one
        # printer or encoder would steal each other's answers. URLs (socket://, loop://) are
        # shared as they are.
        try:
            if "://" in url:
                self.serial = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05)
            else:
                self.serial = serial.Serial(url, baudrate=baudrate, timeout=0.05, exclusive=True)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise DeviceGone(f"cannot open {url}: {exc}") from None

    def write(self, data: bytes) -> None:
        try:
            self.serial.write(data)
            self.serial.flush()
        except (serial.SerialException, OSError) as exc:
            raise DeviceGone(f"{self.url}: write failed: {exc}") from None

    def _read(self, n: int) -> bytes:
        try:
            return bytes(self.serial.read(n))
        except (serial.SerialException, OSError) as exc:
            raise DeviceGone(f"{self.url}: {exc}") from None

    def read_exact(self, n: int, timeout: float | None = None) -> bytes:
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        buf = bytearray()
        while len(buf) < n:
            buf += self._read(n - len(buf))
            if len(buf) < n and time.monotonic() > deadline:
                raise DeviceTimeout(
                    f"{self.url}: {len(buf)} of {n} bytes before the "
                    f"{timeout if timeout is not None else self.timeout:.1f} s deadline"
                )
        return bytes(buf)

    def read_until(
        self, terminators: bytes, timeout: float | None = None, limit: int = 1 << 20
    ) -> bytes:
        """Bytes up to and including the first byte that is in ``terminators``. A read that
        times out keeps what it had: the next one goes on from it (an answer cut by a short
        wait is not read as two), unless :meth:`drain` discards it."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        buf = self._partial  # what a timed-out read had of an answer still coming
        while True:
            b = self._read(1)
            if b:
                buf += b
                if b[0] in terminators:
                    self._partial = bytearray()
                    return bytes(buf)
                if len(buf) > limit:
                    self._partial = bytearray()
                    raise DeviceTimeout(f"{self.url}: no terminator within {limit} bytes")
            elif time.monotonic() > deadline:
                raise DeviceTimeout(
                    f"{self.url}: no complete answer within "
                    f"{timeout if timeout is not None else self.timeout:.1f} s"
                )

    def drain(self) -> bytes:
        """Discard what is waiting (after garbage or a timeout)."""
        self._partial = bytearray()
        with contextlib.suppress(serial.SerialException, OSError):
            self.serial.reset_input_buffer()
        return b""

    def close(self) -> None:
        self.serial.close()
