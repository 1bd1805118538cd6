"""The vpcd bridge: serves a simulated card to pcscd through vsmartcard's vpcd driver.

vpcd (Debian ``vsmartcard-vpcd``) listens on ``127.0.0.1:35963`` for slot 0 and ``35964``
for slot 1 and shows the readers ``Virtual PCD 00 00`` / ``Virtual PCD 00 01``; the virtual
card connects to it (vsmartcard ``vpcd.h``; docs/devices.md §1). Frames in both directions are a
2-byte big-endian length then the payload. A 1-byte payload from vpcd is a control code —
0 power off, 1 power on, 2 reset, 4 send ATR; anything longer is a C-APDU answered with the
R-APDU. Frames are read with a loop until complete (the reference card's single ``recv`` is a
known bug). ``TCP_NODELAY`` is set and ``TCP_QUICKACK`` re-armed before every read: with
delayed ACKs each exchange stalls ~40 ms (docs/devices.md §1).

Closing the socket makes pcscd see the card removed: :meth:`VpcdBridge.pull` does it at once
and :meth:`VpcdBridge.pull_on_next_apdu` does it mid-command (the APDU arrives and is never
answered), which is how tests tear a command.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time

from apdu.errors import CardRemoved
from simulator.cardos.card import CardOS

log = logging.getLogger(__name__)

VPCD_HOST = "127.0.0.1"
VPCD_BASE_PORT = 35963

CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0, 1, 2, 4


def slot_port(slot: int) -> int:
    if not 0 <= slot <= 9:
        raise ValueError(f"vpcd slot must be 0..9, got {slot}")
    return VPCD_BASE_PORT + slot


def reader_name(slot: int) -> str:
    """The PC/SC reader name pcscd gives vpcd's slot: Debian's config has one vpcd reader,
    slots 0 and 1 (``Virtual PCD 00 00`` / ``00 01``); each further reader of
    ``Pcscd(slots=N)`` is named ``Virtual PCD n`` and serves slots 2n and 2n+1."""
    reader, index = divmod(slot, 2)
    return f"{vpcd_reader(reader)} 00 {index:02d}"


def vpcd_reader(reader: int) -> str:
    """The FRIENDLYNAME of the n-th vpcd reader (its two slots' ports from ``slot_port``)."""
    return "Virtual PCD" if reader == 0 else f"Virtual PCD {reader}"


class BridgeClosed(Exception):
    """The connection to vpcd ended."""


class VpcdBridge:
    """Connects one card to one vpcd slot and answers vpcd until stopped."""

    def __init__(
        self, card: CardOS, *, slot: int = 0, host: str = VPCD_HOST, port: int | None = None
    ) -> None:
        self.card = card
        self.slot = slot
        self.host = host
        self.port = port if port is not None else slot_port(slot)
        self.apdu_count = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._pull_next = threading.Event()
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- connection

    def connect(self, timeout: float = 10.0) -> None:
        """Connect to vpcd, retrying until ``timeout`` (pcscd may still be starting)."""
        deadline = time.monotonic() + timeout
        last: OSError | None = None
        while time.monotonic() < deadline:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=1.0)
            except OSError as exc:
                last = exc
                time.sleep(0.05)
                continue
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            log.info("card connected to vpcd at %s:%d", self.host, self.port)
            return
        raise ConnectionError(
            f"vpcd is not listening on {self.host}:{self.port} "
            f"(is pcscd running with the vpcd driver?): {last}"
        )

    def _recv_exact(self, sock: socket.socket, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            if hasattr(socket, "TCP_QUICKACK"):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise BridgeClosed("vpcd closed the connection")
            buf += chunk
        return bytes(buf)

    def _send(self, sock: socket.socket, payload: bytes) -> None:
        sock.sendall(len(payload).to_bytes(2, "big") + payload)

    # ----------------------------------------------------------------- serving

    def serve_forever(self) -> None:
        """Answer vpcd until :meth:`stop`/:meth:`pull` or until vpcd goes away."""
        if self._sock is None:
            self.connect()
        sock = self._sock
        assert sock is not None
        try:
            while not self._stopping.is_set():
                length = int.from_bytes(self._recv_exact(sock, 2), "big")
                payload = self._recv_exact(sock, length) if length else b""
                reply = self._handle(payload)
                if reply is not None:
                    self._send(sock, reply)
        except (BridgeClosed, OSError) as exc:
            if not self._stopping.is_set():
                log.info("vpcd connection ended: %s", exc)
        finally:
            self._close()

    def _handle(self, payload: bytes) -> bytes | None:
        if len(payload) == 1:
            code = payload[0]
            if code == CTRL_ATR:
                return self.card.atr
            if code in (CTRL_ON, CTRL_RESET):
                self.card.power_on()
            elif code == CTRL_OFF:
                self.card.power_off()
            else:
                log.warning("unknown vpcd control code %d ignored", code)
            return None
        if self._pull_next.is_set():
            self._stopping.set()
            self._close()  # the APDU was received and will never be answered
            raise BridgeClosed("card pulled mid-command")
        self.apdu_count += 1
        try:
            return self.card.process(payload)
        except CardRemoved:  # the card lost power mid-command (tearing): it leaves the reader
            self._stopping.set()
            self._close()
            raise BridgeClosed("card lost power mid-command") from None

    def _close(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    # ----------------------------------------------------------------- control

    def start(self, timeout: float = 10.0) -> VpcdBridge:
        """Connect and serve in a background thread."""
        self.connect(timeout)
        self._thread = threading.Thread(
            target=self.serve_forever, name=f"vpcd-slot{self.slot}", daemon=True
        )
        self._thread.start()
        return self

    def pull(self) -> None:
        """Remove the card now (close the connection)."""
        self._stopping.set()
        self._close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    stop = pull

    def pull_on_next_apdu(self) -> None:
        """Tear the next command: receive it, then vanish without an answer."""
        self._pull_next.set()

    @property
    def connected(self) -> bool:
        return self._sock is not None
