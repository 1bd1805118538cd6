"""The MSR206 driver against the encoder emulator over a real pseudo-terminal (pyserial on
the slave path)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from printer.errors import (
    DeviceGone,
    DeviceProtocolError,
    DeviceTimeout,
    TrackDamaged,
    TrackError,
)
from printer.msr206 import (
    EncoderError,
    Msr206,
    VerifyMismatch,
    bits_to_bytes,
    bytes_to_bits,
)
from printer.tracks import decode_bits, encode_bits
from simulator.msr206_emulator import Msr206Emulator, VirtualStripe

T1 = "B6222021234567890123^ZHANG/SAN^30111200000000"
T2 = "6222021234567890123=30111200000"
T3 = "996222021234567890123=1561560000000000"


@pytest.fixture
def emulator() -> Iterator[Msr206Emulator]:
    emu = Msr206Emulator().start()
    yield emu
    emu.stop()


def test_identity_and_coercivity(emulator: Msr206Emulator) -> None:
    with Msr206(emulator.path, timeout=2) as encoder:
        encoder.comm_test()
        assert encoder.model() == "MSR206-3HL"
        assert encoder.firmware() == "REV2.31"
        encoder.set_coercivity("lo")
        assert encoder.coercivity() == "lo"
        encoder.set_coercivity("hi")
        assert encoder.coercivity() == "hi"
        encoder.set_bpi(2, 75)
        encoder.reset()


def test_write_read_verify(emulator: Msr206Emulator) -> None:
    with Msr206(emulator.path, timeout=2) as encoder:
        read = encoder.write({1: T1, 2: T2, 3: T3})
        assert read is not None
        assert [t.data for t in read.tracks] == [T1, T2, T3]
        assert [t.state for t in read.tracks] == ["ok", "ok", "ok"]
        again = encoder.read()
        assert again.track(2).data == T2
        assert T2 not in repr(again)  # track data never in a repr
    assert emulator.writes == 1


@pytest.mark.parametrize("plus_markers", [True, False])
def test_blank_and_damaged_tracks(plus_markers: bool) -> None:
    stripe = VirtualStripe.with_tracks({2: T2, 3: T3})
    stripe.damage(3)
    emu = Msr206Emulator(stripe, plus_markers=plus_markers).start()
    try:
        with Msr206(emu.path, timeout=2) as encoder:
            read = encoder.read()
            assert [t.state for t in read.tracks] == ["blank", "ok", "unreadable"]
            stripe.demagnetize()
            assert [t.state for t in encoder.read().tracks] == ["blank"] * 3
    finally:
        emu.stop()


def test_erase(emulator: Msr206Emulator) -> None:
    with Msr206(emulator.path, timeout=2) as encoder:
        encoder.write({2: T2, 3: T3})
        encoder.erase({3})
        read = encoder.read()
        assert read.track(2).data == T2 and read.track(3).state == "blank"
        with pytest.raises(TrackError):
            encoder.erase(set())


def test_injected_faults_are_typed(emulator: Msr206Emulator) -> None:
    with Msr206(emulator.path, timeout=1) as encoder:
        emulator.fail_next_write = True
        with pytest.raises(EncoderError) as info:
            encoder.write({2: T2})
        assert info.value.status == 0x31 and info.value.recovery == "operator"
        emulator.corrupt_next_write = True
        with pytest.raises(VerifyMismatch) as mismatch:
            encoder.write({2: T2, 3: T3})
        assert mismatch.value.tracks == [2, 3]
        emulator.garbage_next = True
        with pytest.raises(DeviceProtocolError):
            encoder.comm_test()
        encoder.comm_test()  # the driver recovers after garbage
        with pytest.raises(TrackError):
            encoder.write({2: "12AB"})  # refused before anything is sent


def test_a_port_is_one_program_s(emulator: Msr206Emulator) -> None:
    with Msr206(emulator.path, timeout=2) as encoder:
        with pytest.raises(DeviceGone, match="exclusively lock") as info:
            Msr206(emulator.path)
        assert info.value.recovery == "operator"
        encoder.comm_test()  # the first program is undisturbed


def test_silent_port_times_out_within_its_deadline(emulator: Msr206Emulator) -> None:
    emulator.silent = True
    with Msr206(emulator.path, timeout=0.5) as encoder:
        started = time.monotonic()
        with pytest.raises(DeviceTimeout):
            encoder.comm_test()
        assert time.monotonic() - started < 1.5


def test_mag_cli(emulator: Msr206Emulator) -> None:
    def sscard(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "personalize.cli", "mag", *args, "--port", emulator.path],
            capture_output=True,
            text=True,
            timeout=60,
        )

    wrote = sscard("write", "--track2", T2, "--track3", T3, "--coercivity", "hi")
    assert wrote.returncode == 0, wrote.stderr
    read = json.loads(sscard("read", "--json").stdout)
    assert read["track2"] == {"state": "ok", "data": T2}
    assert read["track1"]["state"] == "blank"
    erased = sscard("erase", "--tracks", "2,3", "--json")
    assert json.loads(erased.stdout) == {"result": "ok", "erased": [2, 3]}
    assert json.loads(sscard("read", "--json").stdout)["track2"]["state"] == "blank"
    bad = sscard("write", "--track2", "not digits")
    assert bad.returncode == 1 and "character set" in bad.stderr
    emulator.silent = True
    slow = subprocess.run(
        [
            sys.executable,
            "-m",
            "personalize.cli",
            "mag",
            "read",
            "--port",
            emulator.path,
            "--timeout",
            "0.5",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert slow.returncode == 1 and "DeviceTimeout" in slow.stderr


def test_raw_read_and_write(emulator: Msr206Emulator) -> None:
    with Msr206(emulator.path, timeout=2) as encoder:
        encoder.write({2: T2})
        raw = encoder.read_raw()
        assert raw[2] == bits_to_bytes(encode_bits(2, T2))
        assert raw[1] == b"" and raw[3] == b""
        damaged = bytearray(raw[2])
        damaged[5] ^= 0x10
        encoder.write_raw({2: bytes(damaged)})
        read = encoder.read()
        assert read.track(2).state == "unreadable"
        with pytest.raises(TrackDamaged):
            decode_bits(2, bytes_to_bits(encoder.read_raw()[2]))
