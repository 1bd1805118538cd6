"""The apdu transport through the real PC/SC stack: pyscard → pcscd → vpcd → the bridge →
the simulated card."""

from __future__ import annotations

import re
import threading

import pytest
from smartcard import scard
from smartcard.System import readers as pyscard_readers

from apdu.command import Command
from apdu.errors import (
    CardMute,
    CardRemoved,
    CardReset,
    NoCard,
    ReaderUnavailable,
    TransportError,
)
from apdu.pcsc import PcscReader, PcscTransport, reader_statuses, wait_for_card, wait_for_removal
from apdu.status import FileNotFound, RecordNotFound
from apdu.trace import RecordingTrace
from simulator.pcscd import Pcscd
from simulator.samples import (
    LARGE_OBJECT,
    LARGE_OBJECT_TAG,
    SAMPLE_AID,
    SAMPLE_BINARY,
    SAMPLE_RECORDS,
    sample_card,
)
from tests.integration.conftest import ServeCard

pytestmark = pytest.mark.pcsc

SELECT_APP = Command(0x00, 0xA4, 0x04, 0x00, SAMPLE_AID, le=256)
GET_LARGE = Command(0x00, 0xCA, LARGE_OBJECT_TAG >> 8, LARGE_OBJECT_TAG & 0xFF, le=256)


def test_pyscard_sees_the_virtual_reader_and_the_card(serve_card: ServeCard) -> None:
    served = serve_card(sample_card("T0"))
    names = [str(r) for r in pyscard_readers()]
    assert "Virtual PCD 00 00" in names
    connection = next(r for r in pyscard_readers() if str(r) == served.reader).createConnection()
    connection.connect()
    try:
        data, sw1, sw2 = connection.transmit(list(bytes.fromhex("00A404000C") + SAMPLE_AID))
        assert (sw1, data) == (0x61, [])  # a T=0 card: the FCI waits for GET RESPONSE
        data, sw1, sw2 = connection.transmit([0x00, 0xC0, 0x00, 0x00, sw2])
        assert (sw1, sw2) == (0x90, 0x00) and data[0] == 0x6F
        assert bytes(connection.getATR()) == served.card.atr
    finally:
        connection.disconnect()
    status = next(s for s in reader_statuses() if s.name == served.reader)
    assert status.card_present and status.atr == served.card.atr


@pytest.mark.parametrize("protocol", ["T0", "T1"])
def test_select_and_read_in_both_protocols(serve_card: ServeCard, protocol: str) -> None:
    served = serve_card(sample_card(protocol))  # type: ignore[arg-type]
    trace = RecordingTrace()
    with PcscTransport(served.reader) as transport:
        transport.add_observer(trace)
        assert transport.atr == served.card.atr
        assert transport.active_protocol == protocol
        fci = transport.send(SELECT_APP).data
        assert SAMPLE_AID in fci
        assert transport.send(Command(0x00, 0xB0, 0x81, 0x00, le=16)).data == SAMPLE_BINARY[:16]
        assert transport.send(Command(0x00, 0xB2, 0x01, 0x14, le=256)).data == SAMPLE_RECORDS[0]
        assert transport.send(Command(0x00, 0xB2, 0x02, 0x10, le=256)).data == SAMPLE_RECORDS[1]
        with pytest.raises(RecordNotFound):
            transport.send(Command(0x00, 0xB2, 0x09, 0x10, le=256))
    get_responses = [e for e in trace.events if e.ins == 0xC0]
    assert len(get_responses) == (1 if protocol == "T0" else 0)


def test_600_byte_response_chained_through_pcscd(serve_card: ServeCard) -> None:
    served = serve_card(sample_card("T0"))
    trace = RecordingTrace()
    with PcscTransport(served.reader) as transport:
        transport.add_observer(trace)
        assert transport.send(GET_LARGE).data == LARGE_OBJECT
    assert [e.sw for e in trace.events] == [0x6100, 0x6158, 0x9000]
    assert [e.ins for e in trace.events] == [0xCA, 0xC0, 0xC0]


def test_6cxx_is_resent_with_the_right_le(serve_card: ServeCard) -> None:
    served = serve_card(sample_card("T0"))
    trace = RecordingTrace()
    with PcscTransport(served.reader) as transport:
        transport.send(Command(0x00, 0xA4, 0x04, 0x0C, SAMPLE_AID))
        transport.add_observer(trace)
        # an Le shorter than the record: 6Cxx (a larger one gets the record and 9000, as the
        # real card answers — docs/chip-application.md §1)
        record = transport.send(Command(0x00, 0xB2, 0x01, 0x14, le=0x02)).data
    assert record == SAMPLE_RECORDS[0]
    assert [e.sw for e in trace.events] == [0x6C00 | len(record), 0x9000]


def test_extended_apdus_through_pcscd(serve_card: ServeCard) -> None:
    served = serve_card(sample_card("T1"))
    with PcscTransport(served.reader) as transport:
        transport.send(SELECT_APP)
        photo = bytes(i % 256 for i in range(3000))
        transport.send(Command(0x00, 0xD6, 0x81, 0x00, photo))
        assert transport.send(Command(0x00, 0xB0, 0x81, 0x00, le=3000)).data == photo


def test_card_pulled_mid_command_raises_card_removed(serve_card: ServeCard) -> None:
    served = serve_card(sample_card("T0"))
    with PcscTransport(served.reader) as transport:
        transport.send(SELECT_APP)
        served.bridge.pull_on_next_apdu()
        with pytest.raises(CardRemoved, match="outcome is unknown"):
            transport.send(Command(0x00, 0xB2, 0x01, 0x14, le=256))
        with pytest.raises(CardRemoved) as info:
            transport.send(Command(0x00, 0xB2, 0x01, 0x14, le=256))
        assert info.value.hresult == 0x80100069  # SCARD_W_REMOVED_CARD
        # the card comes back: reconnect and go on
        again = serve_card(served.card)
        transport.reconnect()
        assert transport.atr == again.atr
        assert transport.send(SELECT_APP).ok


def test_empty_reader_raises_no_card(pcscd: Pcscd) -> None:
    wait_for_removal("Virtual PCD 00 01")
    with pytest.raises(NoCard):
        PcscTransport("Virtual PCD 00 01").connect()


def test_card_with_a_garbage_atr_is_mute(serve_card: ServeCard) -> None:
    # A chip that answers reset with nonsense: pcsc-lite says "protocol mismatch"; the
    # transport reports what an operator needs to know — the chip does not work.
    broken = sample_card("T0")
    broken.atr = b"\x00"
    served = serve_card(broken)
    transport = PcscTransport(served.reader)
    try:
        with pytest.raises(CardMute, match="invalid ATR"):
            transport.connect()
    finally:
        transport.disconnect()


def test_reset_by_another_application_then_reconnect(serve_card: ServeCard) -> None:
    served = serve_card(sample_card("T0"))
    with PcscTransport(served.reader, exclusive=False) as ours:
        ours.send(Command(0x00, 0xA4, 0x04, 0x0C, SAMPLE_AID))
        with PcscTransport(served.reader, exclusive=False) as other:
            other.reconnect(reset=True)
        with pytest.raises(CardReset):
            ours.send(Command(0x00, 0xB2, 0x01, 0x14, le=256))
        ours.reconnect(reset=False)
        # the card was reset: the application is no longer selected
        with pytest.raises(FileNotFound):
            ours.send(Command(0x00, 0xB2, 0x01, 0x14, le=256))
        ours.send(Command(0x00, 0xA4, 0x04, 0x0C, SAMPLE_AID))
        assert ours.send(Command(0x00, 0xB2, 0x01, 0x14, le=256)).data == SAMPLE_RECORDS[0]


def test_exclusive_by_default(serve_card: ServeCard) -> None:
    served = serve_card(sample_card("T0"))
    with (
        PcscTransport(served.reader),
        pytest.raises(ReaderUnavailable, match="in use by another application"),
    ):
        PcscTransport(served.reader).connect()


def test_reader_selection(serve_card: ServeCard) -> None:
    served = serve_card(sample_card("T1"), slot=1)
    by_regex = PcscTransport(re.compile(r"PCD 00 01$"))
    by_regex.connect()
    try:
        assert by_regex.reader == served.reader
    finally:
        by_regex.disconnect()
    names = [s.name for s in reader_statuses()]
    by_index = PcscTransport(names.index(served.reader))
    by_index.connect()
    by_index.disconnect()
    assert by_index.reader == served.reader
    with pytest.raises(ReaderUnavailable, match="2 readers match"):
        PcscTransport("Virtual PCD").connect()
    with pytest.raises(ReaderUnavailable, match="no reader matches"):
        PcscTransport("No Such Reader").connect()
    with pytest.raises(ReaderUnavailable, match="no reader at index"):
        PcscTransport(99).connect()


def test_two_cards_on_two_slots_answer_independently(serve_card: ServeCard) -> None:
    first = serve_card(sample_card("T0"), slot=0)
    second = serve_card(sample_card("T1"), slot=1)
    results: dict[str, bytes] = {}

    def read(reader: str) -> None:
        with PcscTransport(reader) as transport:
            transport.send(SELECT_APP)
            for _ in range(50):
                results[reader] = transport.send(GET_LARGE).data

    threads = [threading.Thread(target=read, args=(s.reader,)) for s in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == {first.reader: LARGE_OBJECT, second.reader: LARGE_OBJECT}


def test_a_kept_reader_waits_and_connects_on_one_context(
    serve_card: ServeCard, pcsc_contexts: list[int]
) -> None:
    served = serve_card(sample_card("T0"))
    made = pcsc_contexts
    made.clear()  # serving the card waited on a context of its own
    with PcscReader(served.reader) as reader:
        for _ in range(3):  # as a station's jobs do: wait for the card, talk to it, again
            assert reader.wait_for_card(timeout=5) == served.card.atr
            transport = reader.connect()
            try:
                assert SAMPLE_AID in transport.send(SELECT_APP).data
            finally:
                transport.disconnect()
    assert len(made) == 1
    wait_for_card(served.reader, timeout=5)  # the functions: a context of their own each
    assert len(made) == 2


def test_a_kept_reader_replaces_a_context_pcscd_no_longer_knows(serve_card: ServeCard) -> None:
    served = serve_card(sample_card("T0"))
    with PcscReader(served.reader) as reader:
        assert reader.wait_for_card(timeout=5) == served.card.atr
        assert reader._ctx is not None
        scard.SCardReleaseContext(reader._ctx.handle)  # what a pcscd restart leaves it with
        with pytest.raises(TransportError):
            reader.wait_for_card(timeout=5)
        assert reader.wait_for_card(timeout=5) == served.card.atr  # on a new context
