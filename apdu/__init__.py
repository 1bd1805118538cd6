"""ISO/IEC 7816 host side, card-agnostic: APDU codec, status words, TLV, ATR, transports
(PC/SC, in-process) with T=0 procedure handling, and the redacting APDU trace."""

from apdu.command import Case, Command, Response
from apdu.errors import (
    ApduError,
    ApduFormatError,
    CardMute,
    CardRemoved,
    CardReset,
    MalformedCommand,
    MalformedResponse,
    NoCard,
    ProtocolError,
    ReaderUnavailable,
    TlvError,
    TransportError,
)
from apdu.status import StatusError
from apdu.transport import Transport

__all__ = [
    "ApduError",
    "ApduFormatError",
    "CardMute",
    "CardRemoved",
    "CardReset",
    "Case",
    "Command",
    "MalformedCommand",
    "MalformedResponse",
    "NoCard",
    "ProtocolError",
    "ReaderUnavailable",
    "Response",
    "StatusError",
    "TlvError",
    "Transport",
    "TransportError",
]
