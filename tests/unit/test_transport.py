"""Transport semantics on the in-process backend: T=0 procedure handling (61xx chaining,
6Cxx resend), its bound, card removal — no daemon involved."""

from __future__ import annotations

import pytest

from apdu.command import Command
from apdu.errors import CardRemoved, NoCard, ProtocolError
from apdu.inprocess import InProcessTransport
from apdu.status import FileNotFound, MoreDataAvailable, WrongLe
from apdu.trace import RecordingTrace
from simulator.samples import LARGE_OBJECT, LARGE_OBJECT_TAG, SAMPLE_AID, sample_card

GET_LARGE = Command(0x00, 0xCA, LARGE_OBJECT_TAG >> 8, LARGE_OBJECT_TAG & 0xFF, le=256)
SELECT_APP = Command(0x00, 0xA4, 0x04, 0x00, SAMPLE_AID, le=256)


def connected(protocol: str = "T0", **kwargs: object) -> tuple[InProcessTransport, RecordingTrace]:
    transport = InProcessTransport(sample_card(protocol), **kwargs)  # type: ignore[arg-type]
    trace = RecordingTrace()
    transport.add_observer(trace)
    transport.connect()
    return transport, trace


def test_600_byte_response_arrives_in_61xx_pieces() -> None:
    transport, trace = connected()
    response = transport.send(GET_LARGE)
    assert response.data == LARGE_OBJECT
    # 256 with the command, then GET RESPONSE 256 (61 00) and 88 (61 58).
    assert [e.ins for e in trace.events] == [0xCA, 0xC0, 0xC0]
    assert [e.sw for e in trace.events] == [0x6100, 0x6158, 0x9000]


def test_case_4_under_t0_is_fetched_with_get_response() -> None:
    transport, trace = connected("T0")
    fci = transport.send(SELECT_APP).data
    assert fci.startswith(b"\x6f")
    assert [e.sw for e in trace.events] == [0x6100 | len(fci), 0x9000]


def test_case_4_under_t1_answers_directly() -> None:
    transport, trace = connected("T1")
    assert transport.send(SELECT_APP).data.startswith(b"\x6f")
    assert len(trace.events) == 1


def test_wrong_le_is_resent_once_with_the_right_one() -> None:
    transport, trace = connected()
    transport.send(SELECT_APP)
    # Le shorter than the 7-byte record: 6C07 (a larger Le gets the record and 9000, as the
    # real card answers — docs/chip-application.md §1)
    record = transport.send(Command(0x00, 0xB2, 0x01, 0x14, le=0x05)).data
    assert record == bytes.fromhex("010548454C4C4F")
    assert [e.sw for e in trace.events[-2:]] == [0x6C07, 0x9000]
    assert trace.events[-1].command.endswith("07")


def test_without_t0_handling_the_caller_sees_61xx_and_6cxx() -> None:
    transport, _ = connected(t0_handling=False)
    with pytest.raises(MoreDataAvailable):
        transport.send(SELECT_APP)
    transport.send(Command(0x00, 0xA4, 0x04, 0x0C, SAMPLE_AID))
    with pytest.raises(WrongLe) as info:
        transport.send(Command(0x00, 0xB2, 0x01, 0x14, le=0x05))  # shorter than the record
    assert info.value.correct_le == 7


class EndlessCard:
    """A broken card that always claims more data (OpenSC #1731's failure mode)."""

    def power_on(self) -> bytes:
        return b"\x3b\x00"

    def power_off(self) -> None:
        pass

    def process(self, apdu: bytes) -> bytes:
        return b"\xaa" * 4 + b"\x61\x00"


def test_get_response_loop_is_bounded() -> None:
    transport = InProcessTransport(EndlessCard(), max_get_response=10)
    transport.connect()
    with pytest.raises(ProtocolError, match="after 10 GET RESPONSE"):
        transport.transmit(Command(0x00, 0xCA, 0x00, 0x00, le=256))


def test_status_errors_are_typed() -> None:
    transport, _ = connected()
    with pytest.raises(FileNotFound) as info:
        transport.send(Command(0x00, 0xA4, 0x00, 0x00, b"\xee\xee"))
    assert info.value.sw == 0x6A82


def test_empty_reader_and_removed_card() -> None:
    with pytest.raises(NoCard):
        InProcessTransport(None).connect()
    transport, trace = connected()
    transport.remove_card()
    with pytest.raises(CardRemoved):
        transport.transmit(SELECT_APP)
    assert trace.events[-1].sw is None and trace.events[-1].error == "CardRemoved"


def test_reconnect_resets_the_card_state() -> None:
    transport, _ = connected()
    transport.send(Command(0x00, 0xA4, 0x04, 0x0C, SAMPLE_AID))
    assert transport.send(Command(0x00, 0xB2, 0x01, 0x14, le=256)).ok
    transport.reconnect()
    with pytest.raises(FileNotFound):  # SFI 2 is not under the MF
        transport.send(Command(0x00, 0xB2, 0x01, 0x14, le=256))
