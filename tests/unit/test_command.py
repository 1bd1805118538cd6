"""C-APDU / R-APDU codec: every case both ways, short and extended (ISO/IEC 7816-4 §5.2),
and strict rejection of malformed bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.command import Case, Command, Response
from apdu.errors import MalformedCommand, MalformedResponse
from apdu.status import PinBlocked, WrongPin

D3 = bytes.fromhex("112233")
D300 = bytes(range(256)) + bytes(44)

# (command, encoding, case, extended) — encodings written out by hand from §5.2 table 3.
VECTORS = [
    (Command(0x00, 0x84, 0x00, 0x00), "00840000", Case.NO_DATA_NO_LE, False),
    (Command(0x00, 0xB0, 0x00, 0x00, le=8), "00B0000008", Case.LE_ONLY, False),
    (Command(0x00, 0xB0, 0x00, 0x00, le=256), "00B0000000", Case.LE_ONLY, False),
    (Command(0x00, 0xDC, 0x01, 0x04, D3), "00DC010403112233", Case.DATA_ONLY, False),
    (Command(0x00, 0xA4, 0x04, 0x00, D3, le=256), "00A404000311223300", Case.DATA_AND_LE, False),
    (Command(0x00, 0xB0, 0x00, 0x00, le=4096), "00B00000001000", Case.LE_ONLY, True),
    (Command(0x00, 0xB0, 0x00, 0x00, le=65536), "00B00000000000", Case.LE_ONLY, True),
    (Command(0x00, 0xB0, 0x00, 0x00, le=8, extended=True), "00B00000000008", Case.LE_ONLY, True),
    (Command(0x00, 0xD6, 0x00, 0x00, D300), "00D6000000012C" + D300.hex(), Case.DATA_ONLY, True),
    (
        Command(0x00, 0xD6, 0x00, 0x00, D300, le=2),
        "00D6000000012C" + D300.hex() + "0002",
        Case.DATA_AND_LE,
        True,
    ),
    (
        Command(0x00, 0xA4, 0x04, 0x00, D3, le=65536, extended=True),
        "00A404000000031122330000",
        Case.DATA_AND_LE,
        True,
    ),
]


@pytest.mark.parametrize(("command", "encoded", "case", "extended"), VECTORS)
def test_encode_and_decode_every_case(
    command: Command, encoded: str, case: Case, extended: bool
) -> None:
    raw = bytes.fromhex(encoded)
    assert command.case is case
    assert command.is_extended is extended
    assert command.to_bytes() == raw
    decoded = Command.from_bytes(raw)
    assert decoded == command
    assert decoded.is_extended is extended
    assert decoded.to_bytes() == raw


@given(
    cla=st.integers(0, 0xFE),
    ins=st.integers(0, 255),
    p1=st.integers(0, 255),
    p2=st.integers(0, 255),
    data=st.binary(max_size=600),
    le=st.none() | st.integers(1, 65536),
    force_extended=st.booleans(),
)
def test_round_trip_any_command(
    cla: int, ins: int, p1: int, p2: int, data: bytes, le: int | None, force_extended: bool
) -> None:
    extended = True if force_extended and (data or le) else None
    command = Command(cla, ins, p1, p2, data, le, extended)
    again = Command.from_bytes(command.to_bytes())
    assert again == command
    assert again.to_bytes() == command.to_bytes()


@pytest.mark.parametrize(
    ("encoded", "reason"),
    [
        ("", "shorter than its 4-byte header"),
        ("00A404", "shorter than its 4-byte header"),
        ("00DC01040511223344", "wrong Lc"),  # Lc 5, 4 bytes follow
        ("00DC0104031122334455", "wrong Lc"),  # Lc 3, 5 bytes follow: trailing bytes
        ("00DC01040311", "wrong Lc"),  # truncated data
        ("00B000000010", "truncated"),  # extended marker then one byte
        ("00D6000000000011", "Lc of 0"),  # extended Lc 0000 with a body
        ("00D600000000051122", "wrong extended Lc"),
        ("00D60000000002112233445566", "wrong extended Lc"),
    ],
)
def test_malformed_commands_are_refused(encoded: str, reason: str) -> None:
    with pytest.raises(MalformedCommand, match=reason):
        Command.from_bytes(bytes.fromhex(encoded))


def test_zero_length_fields_mean_the_maximum() -> None:
    # §5.1: Le 00 (short) is Ne 256; Le 0000 (extended, case 2E) is Ne 65 536.
    assert Command.from_bytes(bytes.fromhex("00B0000000")).le == 256
    assert Command.from_bytes(bytes.fromhex("00B00000000000")).le == 65536


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"le": 0}, "Le"),
        ({"le": 65537}, "Le"),
        ({"data": bytes(65536)}, "exceeds 65535"),
        ({"p1": 256}, "P1"),
        ({"cla": 0xFF}, "CLA FF"),
        ({"data": bytes(300), "extended": False}, "short"),
        ({"le": 257, "extended": False}, "short"),
    ],
)
def test_invalid_fields_are_refused(kwargs: dict[str, object], reason: str) -> None:
    base: dict[str, object] = {"cla": 0, "ins": 0xB0}
    base.update(kwargs)
    with pytest.raises(MalformedCommand, match=reason):
        Command(**base)  # type: ignore[arg-type]


def test_error_messages_and_repr_never_show_data() -> None:
    pin = bytes.fromhex("123456")
    command = Command(0x00, 0x20, 0x00, 0x00, pin)
    assert "123456" not in repr(command)
    with pytest.raises(MalformedCommand) as info:
        Command.from_bytes(bytes.fromhex("0020000004123456"))
    assert "123456" not in str(info.value)


def test_from_hex_accepts_spaces_and_refuses_garbage() -> None:
    assert Command.from_hex("00 A4 04 00 02 3F 00").data == b"\x3f\x00"
    with pytest.raises(MalformedCommand, match="hexadecimal"):
        Command.from_hex("00A4ZZ")


def test_with_le_keeps_the_rest() -> None:
    command = Command(0x00, 0xB2, 0x01, 0x04, le=256)
    assert command.with_le(0x12) == Command(0x00, 0xB2, 0x01, 0x04, le=0x12)


def test_response_parsing_and_check() -> None:
    response = Response.from_bytes(bytes.fromhex("0102039000"))
    assert (response.data, response.sw, response.ok) == (b"\x01\x02\x03", 0x9000, True)
    assert response.check() is response
    assert Response.from_bytes(b"\x63\xc2").sw2 == 0xC2
    with pytest.raises(WrongPin) as info:
        Response.from_bytes(b"\x63\xc2").check()
    assert info.value.tries_left == 2
    with pytest.raises(PinBlocked):
        Response(b"", 0x6983).check()


@pytest.mark.parametrize("raw", ["", "90", "1234", "0000", "6000", "A000"])
def test_malformed_responses_are_refused(raw: str) -> None:
    with pytest.raises(MalformedResponse):
        Response.from_bytes(bytes.fromhex(raw))
