"""Status words SW1-SW2: meanings from ISO/IEC 7816-4:2013 §5.1.3 (tables 5 and 6) and one
exception class per kind of outcome an application acts on.

Families are matched by pattern: ``61xx`` (xx more bytes available), ``6Cxx`` (wrong Le,
xx is the right one), ``63Cx`` (verification failed, x tries left). :func:`describe` gives
the meaning of any SW; :func:`raise_for_sw` raises the exception that fits it.
"""

from __future__ import annotations

from typing import NoReturn

from apdu.errors import ApduError

SW_OK = 0x9000

# Exact status words (ISO/IEC 7816-4 §5.1.3, tables 5-6).
MEANINGS: dict[int, str] = {
    0x9000: "normal processing",
    0x6200: "warning: no information given (non-volatile memory unchanged)",
    0x6281: "warning: part of returned data may be corrupted",
    0x6282: "warning: end of file or record reached before reading Ne bytes",
    0x6283: "warning: selected file deactivated",
    0x6284: "warning: file control information not formatted correctly",
    0x6300: "warning: verification or authentication failed (non-volatile memory changed)",
    0x6381: "warning: file filled up by the last write",
    0x6400: "execution error: non-volatile memory unchanged",
    0x6500: "execution error: non-volatile memory changed",
    0x6581: "execution error: memory failure",
    0x6700: "wrong length",
    0x6800: "functions in CLA not supported",
    0x6881: "logical channel not supported",
    0x6882: "secure messaging not supported",
    0x6900: "command not allowed",
    0x6981: "command incompatible with file structure",
    0x6982: "security status not satisfied",
    0x6983: "authentication method blocked",
    0x6984: "reference data not usable",
    0x6985: "conditions of use not satisfied",
    0x6986: "command not allowed (no current EF)",
    0x6987: "expected secure messaging data objects missing",
    0x6988: "incorrect secure messaging data objects",
    0x6A00: "wrong parameters P1-P2",
    0x6A80: "incorrect parameters in the command data field",
    0x6A81: "function not supported",
    0x6A82: "file or application not found",
    0x6A83: "record not found",
    0x6A84: "not enough memory space in the file",
    0x6A85: "Nc inconsistent with TLV structure",
    0x6A86: "incorrect parameters P1-P2",
    0x6A87: "Nc inconsistent with parameters P1-P2",
    0x6A88: "referenced data or reference data not found",
    0x6A89: "file already exists",
    0x6A8A: "DF name already exists",
    0x6B00: "wrong parameters P1-P2",
    0x6D00: "instruction code not supported or invalid",
    0x6E00: "class not supported",
    0x6F00: "no precise diagnosis",
}


def describe(sw: int) -> str:
    """The ISO/IEC 7816-4 meaning of a status word, families included."""
    if sw in MEANINGS:
        return MEANINGS[sw]
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw1 == 0x61:
        return f"{sw2 or 256} response bytes still available"
    if sw1 == 0x6C:
        return f"wrong Le field: {sw2 or 256} bytes available"
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        return f"verification failed, {sw2 & 0x0F} tries left"
    if sw1 == 0x62:
        return "warning: state of non-volatile memory unchanged"
    if sw1 == 0x63:
        return "warning: state of non-volatile memory changed"
    if sw1 == 0x64:
        return "execution error: state of non-volatile memory unchanged"
    if sw1 == 0x65:
        return "execution error: state of non-volatile memory changed"
    if sw1 == 0x66:
        return "security-related issue"
    if sw1 == 0x68:
        return "functions in CLA not supported"
    if sw1 == 0x69:
        return "command not allowed"
    if sw1 == 0x6A:
        return "wrong parameters P1-P2"
    if sw1 == 0x90 or sw1 == 0x91:
        return "normal processing (proprietary qualifier)"
    return "unknown status word"


class StatusError(ApduError):
    """The card answered a status word other than ``9000``.

    ``sw`` is the status word, ``meaning`` its ISO/IEC 7816-4 description.
    """

    def __init__(self, sw: int, meaning: str | None = None) -> None:
        self.sw = sw
        self.meaning = meaning if meaning is not None else describe(sw)
        super().__init__(f"card answered {sw:04X}: {self.meaning}")


class WarningStatus(StatusError):
    """62xx / 63xx: processed with a warning."""


class ExecutionError(StatusError):
    """64xx / 65xx / 66xx: execution error."""


class MemoryFailure(ExecutionError):
    """6581: the card's memory failed."""


class WrongLength(StatusError):
    """6700: wrong Lc or Le."""


class ClassFunctionNotSupported(StatusError):
    """68xx: a function signalled in CLA is not supported."""


class CommandNotAllowed(StatusError):
    """69xx not covered by a more specific class."""


class IncompatibleFileStructure(CommandNotAllowed):
    """6981: the command does not fit the file's structure."""


class SecurityStatusNotSatisfied(CommandNotAllowed):
    """6982: the access condition (PIN, external authentication) is not met."""


class AuthenticationFailed(WarningStatus):
    """6300: verification or authentication failed, no retry counter given."""


class WrongPin(WarningStatus):
    """63Cx: the PIN (or key) was wrong; ``tries_left`` = x."""

    def __init__(self, sw: int, meaning: str | None = None) -> None:
        super().__init__(sw, meaning)
        self.tries_left = sw & 0x0F


class PinBlocked(CommandNotAllowed):
    """6983: the authentication method (PIN or key) is blocked."""


class ReferenceDataNotUsable(CommandNotAllowed):
    """6984: reference data (a key, a PIN) is not usable."""


class ConditionsNotSatisfied(CommandNotAllowed):
    """6985: conditions of use not satisfied (for example no challenge requested first)."""


class NoCurrentEF(CommandNotAllowed):
    """6986: no EF selected."""


class SecureMessagingError(CommandNotAllowed):
    """6987 / 6988: secure-messaging objects missing or wrong (bad MAC)."""


class WrongParameters(StatusError):
    """6Axx / 6B00 not covered by a more specific class."""


class IncorrectData(WrongParameters):
    """6A80: incorrect parameters in the data field."""


class FunctionNotSupported(WrongParameters):
    """6A81: function not supported."""


class FileNotFound(WrongParameters):
    """6A82: file or application not found."""


class RecordNotFound(WrongParameters):
    """6A83: record not found."""


class NotEnoughMemory(WrongParameters):
    """6A84: not enough memory space in the file."""


class ReferencedDataNotFound(WrongParameters):
    """6A88: referenced data (a key id, a tag) not found."""


class WrongLe(StatusError):
    """6Cxx: wrong Le; ``correct_le`` = xx (00 means 256)."""

    def __init__(self, sw: int, meaning: str | None = None) -> None:
        super().__init__(sw, meaning)
        self.correct_le = (sw & 0xFF) or 256


class MoreDataAvailable(StatusError):
    """61xx surfaced to a caller that disabled T=0 procedure handling."""

    def __init__(self, sw: int, meaning: str | None = None) -> None:
        super().__init__(sw, meaning)
        self.available = (sw & 0xFF) or 256


class InsNotSupported(StatusError):
    """6D00: instruction not supported."""


class ClaNotSupported(StatusError):
    """6E00: class not supported."""


class NoPreciseDiagnosis(StatusError):
    """6Fxx: the card gives no precise diagnosis."""


_EXACT: dict[int, type[StatusError]] = {
    0x6300: AuthenticationFailed,
    0x6581: MemoryFailure,
    0x6700: WrongLength,
    0x6981: IncompatibleFileStructure,
    0x6982: SecurityStatusNotSatisfied,
    0x6983: PinBlocked,
    0x6984: ReferenceDataNotUsable,
    0x6985: ConditionsNotSatisfied,
    0x6986: NoCurrentEF,
    0x6987: SecureMessagingError,
    0x6988: SecureMessagingError,
    0x6A80: IncorrectData,
    0x6A81: FunctionNotSupported,
    0x6A82: FileNotFound,
    0x6A83: RecordNotFound,
    0x6A84: NotEnoughMemory,
    0x6A88: ReferencedDataNotFound,
    0x6D00: InsNotSupported,
    0x6E00: ClaNotSupported,
}

_BY_SW1: dict[int, type[StatusError]] = {
    0x61: MoreDataAvailable,
    0x62: WarningStatus,
    0x63: WarningStatus,
    0x64: ExecutionError,
    0x65: ExecutionError,
    0x66: ExecutionError,
    0x67: WrongLength,
    0x68: ClassFunctionNotSupported,
    0x69: CommandNotAllowed,
    0x6A: WrongParameters,
    0x6B: WrongParameters,
    0x6C: WrongLe,
    0x6D: InsNotSupported,
    0x6E: ClaNotSupported,
    0x6F: NoPreciseDiagnosis,
}


def exception_for(sw: int) -> StatusError:
    """The exception instance that describes ``sw`` (which must not be 9000)."""
    if sw in _EXACT:
        return _EXACT[sw](sw)
    if sw & 0xFFF0 == 0x63C0:
        return WrongPin(sw)
    return _BY_SW1.get(sw >> 8, StatusError)(sw)


def raise_for_sw(sw: int) -> NoReturn:
    """Raise the exception that fits ``sw``."""
    raise exception_for(sw)
