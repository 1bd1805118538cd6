"""The one normaliser of typed text (personalize/textinput.py) and the strict decoders of
text read from cards (sscard.codecs.Ascii) and encoders (printer.msr206)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from personalize import textinput
from personalize.textinput import TypedTextError
from printer.errors import DeviceProtocolError
from printer.msr206 import _parse_tracks
from sscard.codecs import Ascii
from sscard.errors import InvalidData
from sscard.identifiers import ssn_valid, validate_ssn

SSN = "11010519491231002X"
FULL_WIDTH_SSN = "１１０１０５１９４９１２３１００２Ｘ"  # typed by an IME, U+FF10…U+FF38


def test_full_width_id_number_becomes_ascii() -> None:
    assert textinput.id_number(FULL_WIDTH_SSN) == SSN
    assert textinput.id_number("\u3000" + SSN.lower() + " \n") == SSN
    assert textinput.same(textinput.id_number(FULL_WIDTH_SSN), SSN)


@pytest.mark.parametrize(
    "typed", ["", "1101051949123100", SSN + "1", "11010519491231002Y", "١١٠١٠٥١٩٤٩١٢٣١٠٠٢X"]
)
def test_id_numbers_of_the_wrong_form_are_refused_without_echo(typed: str) -> None:
    with pytest.raises(TypedTextError, match="身份证号码格式不正确") as info:
        textinput.id_number(typed)
    assert typed not in str(info.value) or not typed


def test_pin_digits_only_ascii_after_nfkc() -> None:
    assert textinput.pin("１２３４５６", 6) == "123456"
    for bad in ("12345", "12345a", "١٢٣٤٥٦", "１２３４５"):  # Arabic-Indic digits stay out
        with pytest.raises(TypedTextError, match="PIN 应为 6 位数字"):
            textinput.pin(bad, 6)


@given(st.text(max_size=30), st.text(max_size=30))
def test_same_never_raises_type_error(a: str, b: str) -> None:
    try:
        result = textinput.same(a, b)
    except TypedTextError:
        assert not (a.isascii() and b.isascii())
    else:
        assert result == (a == b)


def test_card_field_with_bytes_outside_ascii_is_invalid_data() -> None:
    codec = Ascii(18)
    assert codec.decode(SSN.encode()) == SSN
    for raw in (b"\xd5\xc5" + SSN[2:].encode(), SSN[:17].encode() + b"\x80", b"1\x07" + b"0" * 16):
        with pytest.raises(InvalidData, match="非可打印 ASCII"):
            codec.decode(raw)


def test_encoder_bytes_above_0x7f_are_a_protocol_error() -> None:
    good = b"\x1b\x01\x1b+\x1b\x02;6217=3611?\x1b\x03\x1b+"
    assert _parse_tracks(good)[1].data == "6217=3611"
    for body in (
        b"\x1b\x01\x1b+\x1b\x02;6217\xe9\xff=3611?\x1b\x03\x1b+",
        b"\x1b\x01%ZHANG\x80?\x1b\x02\x1b+\x1b\x03\x1b+",
        b"\x1b\x01\x1b+\x1b\x02;62A7?\x1b\x03\x1b+",  # 'A' is not a track-2 character
    ):
        with pytest.raises(DeviceProtocolError, match="磁道"):
            _parse_tracks(body)


def test_full_width_ssn_in_a_holder_is_refused_not_stored() -> None:
    """``int('１')`` is 1, so a check over ``\\d`` would accept a full-width SSN from a job or
    enroll file and store it, to differ later from the card's ASCII one."""
    assert not ssn_valid(FULL_WIDTH_SSN)
    with pytest.raises(InvalidData, match="前 17 位必须是数字"):
        validate_ssn(FULL_WIDTH_SSN)
    validate_ssn(textinput.id_number(FULL_WIDTH_SSN))
