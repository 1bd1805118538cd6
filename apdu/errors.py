"""Exception hierarchy of the ``apdu`` layer.

Three families, so callers can catch what they can act on:

* :class:`ApduFormatError` — bytes that are not a well-formed C-APDU, R-APDU or TLV
  (ISO/IEC 7816-4 §5.1, §5.2); raised before anything reaches a card, or when a card's
  answer cannot be parsed.
* :class:`StatusError` (in :mod:`apdu.status`) — the card answered with a status word that
  is not success; carries the SW and its ISO 7816-4 meaning.
* :class:`TransportError` — the path to the card failed (PC/SC errors of pcsc-lite
  ``src/winscard.c`` mapped to a few types an operator can act on).

Messages never contain APDU data bytes: a command may carry a PIN or a cryptogram.
"""

from __future__ import annotations


class ApduError(Exception):
    """Base of every error raised by :mod:`apdu`."""


class ApduFormatError(ApduError, ValueError):
    """Bytes do not form a valid APDU or TLV structure."""


class MalformedCommand(ApduFormatError):
    """A C-APDU is malformed: wrong Lc, trailing bytes, Le out of range, bad header."""


class MalformedResponse(ApduFormatError):
    """An R-APDU is malformed (for example shorter than the two status bytes)."""


class TlvError(ApduFormatError):
    """A TLV structure is truncated or otherwise invalid."""


class TransportError(ApduError):
    """The exchange with the card failed below the APDU level.

    ``hresult`` keeps the PC/SC code when there is one (0 when pyscard gave none).
    """

    def __init__(self, message: str, *, hresult: int = 0) -> None:
        super().__init__(message)
        self.hresult = hresult


class CardRemoved(TransportError):
    """The card was removed (or pulled during a command: its outcome is unknown)."""


class CardReset(TransportError):
    """The card was reset by another application; reconnect to acknowledge."""


class NoCard(TransportError):
    """No card is present in the reader."""


class CardMute(TransportError):
    """A card is present but does not answer (no ATR or no response): a diagnosis signal."""


class ReaderUnavailable(TransportError):
    """The reader (or the PC/SC service itself) is gone, unknown or busy."""


class ProtocolError(TransportError):
    """The T=0 procedure went wrong (for example an endless GET RESPONSE chain)."""
