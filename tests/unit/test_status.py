"""Status-word meanings (ISO/IEC 7816-4 §5.1.3) and the exception for each."""

from __future__ import annotations

import pytest

from apdu import status
from apdu.status import describe, exception_for


@pytest.mark.parametrize(
    ("sw", "cls", "meaning"),
    [
        (0x6300, status.AuthenticationFailed, "authentication failed"),
        (0x63C2, status.WrongPin, "2 tries left"),
        (0x63C0, status.WrongPin, "0 tries left"),
        (0x6983, status.PinBlocked, "blocked"),
        (0x6982, status.SecurityStatusNotSatisfied, "security status not satisfied"),
        (0x6A82, status.FileNotFound, "not found"),
        (0x6A83, status.RecordNotFound, "record not found"),
        (0x6700, status.WrongLength, "wrong length"),
        (0x6C12, status.WrongLe, "18 bytes available"),
        (0x6100, status.MoreDataAvailable, "256 response bytes"),
        (0x6D00, status.InsNotSupported, "instruction"),
        (0x6E00, status.ClaNotSupported, "class"),
        (0x6581, status.MemoryFailure, "memory failure"),
        (0x6985, status.ConditionsNotSatisfied, "conditions"),
        (0x6988, status.SecureMessagingError, "secure messaging"),
        (0x6A86, status.WrongParameters, "P1-P2"),
        (0x6B00, status.WrongParameters, "P1-P2"),
        (0x6F00, status.NoPreciseDiagnosis, "no precise diagnosis"),
        (0x6284, status.WarningStatus, "not formatted"),
        (0x6999, status.CommandNotAllowed, "command not allowed"),
        (0x6412, status.ExecutionError, "execution error"),
    ],
)
def test_exception_and_meaning(sw: int, cls: type[status.StatusError], meaning: str) -> None:
    exc = exception_for(sw)
    assert type(exc) is cls
    assert exc.sw == sw
    assert meaning in describe(sw)
    assert f"{sw:04X}" in str(exc)
    assert meaning in exc.meaning


def test_family_fields() -> None:
    wrong_pin = exception_for(0x63C1)
    assert isinstance(wrong_pin, status.WrongPin) and wrong_pin.tries_left == 1
    wrong_le = exception_for(0x6C00)
    assert isinstance(wrong_le, status.WrongLe) and wrong_le.correct_le == 256
    more = exception_for(0x6110)
    assert isinstance(more, status.MoreDataAvailable) and more.available == 16


def test_unknown_status_word_is_still_an_error() -> None:
    exc = exception_for(0x9F10)
    assert type(exc) is status.StatusError
    assert "unknown" in describe(0x7777)
