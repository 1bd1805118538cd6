"""The transport interface: send a :class:`Command`, get a :class:`Response`.

T=0 procedure handling (ISO/IEC 7816-3 §10.3.4 as seen by applications, and the PC/SC
convention that leaves it to the caller — docs/devices.md §1, pySim ``transport/__init__.py``) is
built in and on by default:

* ``61xx`` → GET RESPONSE (``00 C0 00 00 xx``), data appended, repeated while ``61xx`` comes
  back, bounded by ``max_get_response`` (OpenSC #1731 shows what an unbounded loop does);
* ``6Cxx`` → the same command once more with Le = xx.

Every raw exchange, GET RESPONSE included, is reported to the observers as a redacted
:class:`~apdu.trace.TraceEvent`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

from apdu.command import Command, Response
from apdu.errors import ProtocolError, TransportError
from apdu.trace import TraceObserver, make_event

DEFAULT_MAX_GET_RESPONSE = 256  # 256 × 256 bytes covers the largest extended response


class Transport(ABC):
    """A connection to one card. Subclasses implement :meth:`_exchange` and the lifecycle."""

    def __init__(
        self, *, t0_handling: bool = True, max_get_response: int = DEFAULT_MAX_GET_RESPONSE
    ) -> None:
        self.t0_handling = t0_handling
        self.max_get_response = max_get_response
        # Connections opened so far (connect, reconnect): what a card holds in volatile state
        # (the current DF, its security state) is only known within one of them.
        self.sessions = 0
        self._observers: list[TraceObserver] = []

    # ----------------------------------------------------------------- lifecycle

    @abstractmethod
    def connect(self) -> None:
        """Power the card (if needed) and open the connection."""

    @abstractmethod
    def disconnect(self) -> None:
        """Close the connection; safe to call twice."""

    @abstractmethod
    def reconnect(self, *, reset: bool = True) -> None:
        """Re-open the connection, resetting the card when ``reset`` (clears its security
        state) — also how a ``CardReset`` is acknowledged."""

    @property
    @abstractmethod
    def atr(self) -> bytes:
        """The answer-to-reset of the connected card."""

    @abstractmethod
    def _exchange(self, raw: bytes) -> bytes:
        """Send one raw C-APDU, return the raw R-APDU; raise a TransportError on failure."""

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.disconnect()

    # ----------------------------------------------------------------- observers

    def add_observer(self, observer: TraceObserver) -> None:
        self._observers.append(observer)

    def remove_observer(self, observer: TraceObserver) -> None:
        self._observers.remove(observer)

    # ----------------------------------------------------------------- exchanges

    def transmit_raw(self, raw: bytes) -> bytes:
        """One exchange on the wire, observed; no T=0 handling."""
        if not self._observers:
            return self._exchange(raw)
        start = time.perf_counter()
        try:
            reply = self._exchange(raw)
        except TransportError as exc:
            self._notify(raw, None, time.perf_counter() - start, type(exc).__name__)
            raise
        self._notify(raw, reply, time.perf_counter() - start, None)
        return reply

    def _notify(self, raw: bytes, reply: bytes | None, latency: float, err: str | None) -> None:
        event = make_event(raw, reply, latency, err)
        for observer in self._observers:
            observer(event)

    def transmit(self, command: Command) -> Response:
        """Send ``command``; with T=0 handling, follow ``61xx``/``6Cxx`` to the final answer.

        Returns the response whatever its SW; see :meth:`send` for a checked call.
        """
        response = Response.from_bytes(self.transmit_raw(command.to_bytes()))
        if not self.t0_handling:
            return response
        if response.sw1 == 0x6C:
            response = Response.from_bytes(
                self.transmit_raw(command.with_le(response.sw2 or 256).to_bytes())
            )
        if response.sw1 != 0x61:
            return response
        data = bytearray(response.data)
        cla = command.cla & 0x03 if not command.cla & 0x80 else 0x00
        for _ in range(self.max_get_response):
            get_response = Command(cla, 0xC0, 0x00, 0x00, le=response.sw2 or 256)
            response = Response.from_bytes(self.transmit_raw(get_response.to_bytes()))
            data += response.data
            if response.sw1 != 0x61:
                return Response(bytes(data), response.sw)
        raise ProtocolError(
            f"card still answered 61xx after {self.max_get_response} GET RESPONSE commands"
        )

    def send(self, command: Command) -> Response:
        """:meth:`transmit` and raise the matching StatusError unless the SW is ``9000``."""
        return self.transmit(command).check()
