"""The APDU trace keeps headers, lengths and SWs, and never a PIN or a key."""

from __future__ import annotations

import logging

import pytest

from apdu.command import Command
from apdu.inprocess import InProcessTransport
from apdu.trace import SECRET_INS, LoggingTrace, RecordingTrace, make_event, redact_command
from simulator.samples import sample_card

PIN = "135790"
KEY = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"


def test_secret_commands_are_redacted_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    transport = InProcessTransport(sample_card())
    transport.add_observer(LoggingTrace(level=logging.INFO))
    recorder = RecordingTrace()
    transport.add_observer(recorder)
    transport.connect()
    secrets = [
        Command(0x00, 0x20, 0x00, 0x00, bytes.fromhex(PIN)),  # VERIFY
        Command(0x80, 0x5E, 0x01, 0x00, bytes.fromhex(PIN + "FF" + PIN)),  # CHANGE PIN
        Command(0x84, 0x24, 0x00, 0x01, bytes.fromhex(KEY)),  # PIN reset block
        Command(0x00, 0x2C, 0x00, 0x00, bytes.fromhex(PIN)),  # RESET RETRY COUNTER
        Command(0x00, 0x82, 0x00, 0x04, bytes.fromhex(KEY)),  # EXTERNAL AUTHENTICATE
        Command(0x80, 0xD4, 0x01, 0x00, bytes.fromhex(KEY)),  # key load
        Command(0x80, 0xD8, 0x00, 0x00, bytes.fromhex(KEY), extended=True),
    ]
    with caplog.at_level(logging.DEBUG):
        for command in secrets:
            transport.transmit(command)
    text = caplog.text + "".join(repr(e) for e in recorder.events)
    assert PIN not in text and KEY not in text
    assert KEY[:12] not in text
    # what stays: header, length, SW
    assert "0020000003 <3 bytes redacted>" in caplog.text
    assert "0082000410 <16 bytes redacted>" in caplog.text
    assert "80D80000000010 <16 bytes redacted>" in caplog.text
    assert len(recorder.events) == len(secrets)
    assert all(e.sw is not None for e in recorder.events)


def test_ordinary_commands_are_traced_in_full() -> None:
    assert redact_command(bytes.fromhex("00A4040002AABB00")) == "00A4040002AABB00"
    event = make_event(bytes.fromhex("00B0000002"), bytes.fromhex("12349000"), 0.001)
    assert event.response == "1234" and event.sw == 0x9000
    assert "1234 [9000]" in event.render()


def test_response_data_of_a_secret_command_is_redacted_too() -> None:
    event = make_event(bytes.fromhex("0082000004") + bytes(4), bytes.fromhex("CAFE9000"), 0.0)
    assert "CAFE" not in event.render()


def test_the_secret_instruction_set() -> None:
    assert {0x20, 0x24, 0x2C, 0x5E, 0x82, 0xD4, 0xD8, 0xFA} == SECRET_INS
