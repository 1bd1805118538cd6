"""In-process transport: talks to a simulated card object directly, no PC/SC.

For unit tests of the layers above ``apdu``: the same Transport semantics (T=0 handling,
trace) with no daemon. The card is anything that satisfies :class:`CardEndpoint`, so this
module never imports the simulator.
"""

from __future__ import annotations

from typing import Protocol

from apdu.errors import CardRemoved, NoCard
from apdu.transport import DEFAULT_MAX_GET_RESPONSE, Transport


class CardEndpoint(Protocol):
    """What a card offers a reader: power control and one APDU at a time."""

    def power_on(self) -> bytes:
        """Cold reset; return the ATR."""
        ...

    def power_off(self) -> None: ...

    def process(self, apdu: bytes) -> bytes:
        """Answer one raw C-APDU with a raw R-APDU."""
        ...


class InProcessTransport(Transport):
    """A transport whose reader is a Python object; ``card=None`` is an empty reader."""

    def __init__(
        self,
        card: CardEndpoint | None,
        *,
        t0_handling: bool = True,
        max_get_response: int = DEFAULT_MAX_GET_RESPONSE,
    ) -> None:
        super().__init__(t0_handling=t0_handling, max_get_response=max_get_response)
        self.card = card
        self._atr = b""
        self._connected = False

    def connect(self) -> None:
        if self.card is None:
            raise NoCard("no card in the in-process reader")
        self._atr = self.card.power_on()
        self._connected = True
        self.sessions += 1

    def disconnect(self) -> None:
        if self._connected and self.card is not None:
            self.card.power_off()
        self._connected = False

    def reconnect(self, *, reset: bool = True) -> None:
        if reset and self.card is not None and self._connected:
            self.card.power_off()
        self.connect()

    def remove_card(self) -> None:
        """Take the card out of the reader (the next exchange raises CardRemoved)."""
        self.card = None

    @property
    def atr(self) -> bytes:
        return self._atr

    def _exchange(self, raw: bytes) -> bytes:
        if not self._connected:
            raise NoCard("not connected")
        if self.card is None:
            self._connected = False
            raise CardRemoved("card removed from the in-process reader")
        return self.card.process(raw)
