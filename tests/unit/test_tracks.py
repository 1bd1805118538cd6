"""ISO 7811 track codec: sentinels, parity, LRC, F2F; every single-bit error is found and
located; ISO 7813 / ISO 4909 layouts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from printer.errors import TrackDamaged, TrackError
from printer.tracks import (
    CLOCK_ZEROS,
    TRACKS,
    Track2,
    Track3,
    decode_bits,
    encode_bits,
    from_flux,
    to_flux,
)


def charset(track: int) -> str:
    fmt = TRACKS[track]
    chars = (chr(fmt.base + v) for v in range(1 << fmt.bits))
    return "".join(c for c in chars if c not in (fmt.start, fmt.end))


def test_start_sentinel_bits() -> None:
    # ISO/IEC 7811-2: ';' is 1011 LSB first = 1,1,0,1 with parity 0 (odd count already).
    bits = encode_bits(2, "")
    assert bits[CLOCK_ZEROS : CLOCK_ZEROS + 5] == [1, 1, 0, 1, 0]
    # track 1 '%' = 0x25 - 0x20 = 5 = 000101 -> 1,0,1,0,0,0 and parity 1
    assert encode_bits(1, "")[CLOCK_ZEROS : CLOCK_ZEROS + 7] == [1, 0, 1, 0, 0, 0, 1]


def test_lrc_of_a_short_track_2() -> None:
    # ;12? -> values B,1,2,F; LRC = B^1^2^F = 7 = 0111 -> 1,1,1,0 and parity 0
    bits = encode_bits(2, "12", clock_zeros=0)
    assert bits[-5:] == [1, 1, 1, 0, 0]
    assert decode_bits(2, bits) == "12"


@pytest.mark.parametrize("track", [1, 2, 3])
def test_maximum_lengths(track: int) -> None:
    fmt = TRACKS[track]
    data = charset(track)[1] * fmt.max_data
    assert decode_bits(track, encode_bits(track, data)) == data
    with pytest.raises(TrackError, match="holds"):
        encode_bits(track, data + charset(track)[1])


@pytest.mark.parametrize(
    ("track", "data", "reason"),
    [
        (2, "12a", "character set"),
        (1, "abc", "character set"),
        (2, "1?2", "sentinel"),
        (1, "A%B", "sentinel"),
    ],
)
def test_refused_data(track: int, data: str, reason: str) -> None:
    with pytest.raises(TrackError, match=reason):
        encode_bits(track, data)


@st.composite
def track_data(draw: st.DrawFn) -> tuple[int, str]:
    track = draw(st.sampled_from([1, 2, 3]))
    text = draw(st.text(alphabet=charset(track), max_size=TRACKS[track].max_data))
    return track, text


@given(track_data())
def test_round_trip(item: tuple[int, str]) -> None:
    track, data = item
    bits = encode_bits(track, data)
    assert decode_bits(track, bits) == data
    assert from_flux(to_flux(bits)) == bits


@given(track_data(), st.data())
def test_every_single_bit_flip_is_detected(item: tuple[int, str], draw: st.DataObject) -> None:
    track, data = item
    bits = encode_bits(track, data)
    width = TRACKS[track].bits + 1
    coded = (len(data) + 3) * width  # start, data, end, LRC
    position = draw.draw(st.integers(CLOCK_ZEROS, CLOCK_ZEROS + coded - 1))
    bits[position] ^= 1
    with pytest.raises(TrackDamaged) as info:
        decode_bits(track, bits)
    assert info.value.kind in ("parity", "lrc", "no-start-sentinel", "no-end-sentinel")


def test_damage_is_located() -> None:
    bits = encode_bits(2, "1234567890")
    bits[CLOCK_ZEROS + 5 * 4 + 2] ^= 1  # inside the 4th character (index 4 counts the SS)
    with pytest.raises(TrackDamaged) as info:
        decode_bits(2, bits)
    assert (info.value.kind, info.value.position) == ("parity", 4)
    with pytest.raises(TrackDamaged) as info:
        decode_bits(2, [0] * 100)
    assert info.value.kind == "blank"
    truncated = encode_bits(2, "1234", clock_zeros=0)[:-12]
    with pytest.raises(TrackDamaged) as info:
        decode_bits(2, truncated)
    assert info.value.kind == "no-end-sentinel"


def test_flux_without_a_reversal_is_a_clocking_error() -> None:
    flux = to_flux(encode_bits(2, "42"))
    flux[40] = flux[39]  # remove the reversal at a cell boundary
    with pytest.raises(TrackDamaged) as info:
        from_flux(flux)
    assert info.value.kind == "clock"


def test_track2_and_track3_layouts() -> None:
    t2 = Track2("6222021234567890123", "3011", "120", "00000")
    assert t2.build() == "6222021234567890123=301112000000"
    assert Track2.parse(t2.build()) == t2
    t3 = Track3("6222021234567890123", rest="0000000000")
    assert t3.build() == "996222021234567890123=1561560000000000"
    assert Track3.parse(t3.build()) == t3
    with pytest.raises(TrackError):
        Track2("12ab", "3011", "120").build()
    with pytest.raises(TrackError):
        Track3.parse("99123")
