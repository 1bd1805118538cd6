"""The vpcd bridge's framing against a stand-in for vpcd on a loopback port: frames split
into single bytes are reassembled, control codes handled, a pulled card closes the socket."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from simulator.samples import SAMPLE_AID, sample_card
from simulator.vpcd import VpcdBridge, reader_name, slot_port


@pytest.fixture
def vpcd_standin() -> Iterator[socket.socket]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)
    yield server
    server.close()


def send_fragmented(conn: socket.socket, payload: bytes) -> None:
    for b in len(payload).to_bytes(2, "big") + payload:
        conn.sendall(bytes((b,)))
        time.sleep(0.001)


def recv_frame(conn: socket.socket) -> bytes:
    def exact(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    return exact(int.from_bytes(exact(2), "big"))


def test_fragmented_frames_and_control_codes(vpcd_standin: socket.socket) -> None:
    card = sample_card("T1")
    port = vpcd_standin.getsockname()[1]
    bridge = VpcdBridge(card, port=port).start(timeout=5)
    conn, _ = vpcd_standin.accept()
    conn.settimeout(5)
    try:
        send_fragmented(conn, b"\x04")  # ATR request
        assert recv_frame(conn) == card.atr
        send_fragmented(conn, b"\x01")  # power on: no answer expected
        select = bytes.fromhex("00A404000C") + SAMPLE_AID + b"\x00"
        send_fragmented(conn, select)
        reply = recv_frame(conn)
        assert reply[-2:] == b"\x90\x00" and reply[0] == 0x6F
        assert card.powered
        send_fragmented(conn, b"\x00")  # power off
        send_fragmented(conn, b"\x04")
        assert recv_frame(conn) == card.atr
        assert not card.powered
        bridge.pull_on_next_apdu()
        send_fragmented(conn, select)
        with pytest.raises(ConnectionError):
            recv_frame(conn)  # the command is never answered: the card left
        assert bridge.apdu_count == 1
    finally:
        conn.close()
        bridge.stop()


def test_connect_fails_clearly_when_vpcd_is_absent() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    with pytest.raises(ConnectionError, match="is pcscd running"):
        VpcdBridge(sample_card(), port=port).connect(timeout=0.3)


def test_slot_ports_and_reader_names() -> None:
    assert slot_port(0) == 35963 and slot_port(1) == 35964
    assert reader_name(1) == "Virtual PCD 00 01"
    with pytest.raises(ValueError):
        slot_port(10)
