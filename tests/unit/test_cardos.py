"""The generic card OS: SELECT, binary and record access in the three addressing forms,
status words for bad input, and persistence of its state across a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apdu.tlv import encode_simple, parse_ber
from simulator.cardfile import CardFileError, load_card, save_card
from simulator.cardos.card import CardOS
from simulator.samples import SAMPLE_AID, SAMPLE_BINARY, SAMPLE_RECORDS, sample_card


def run(card: CardOS, hexapdu: str) -> tuple[bytes, int]:
    raw = card.process(bytes.fromhex(hexapdu.replace(" ", "")))
    return raw[:-2], int.from_bytes(raw[-2:], "big")


@pytest.fixture
def card() -> CardOS:
    c = sample_card("T1")
    c.power_on()
    return c


SELECT_APP = "00A404000C" + SAMPLE_AID.hex() + "00"


def test_select_by_aid_returns_fci(card: CardOS) -> None:
    fci, sw = run(card, SELECT_APP)
    assert sw == 0x9000
    (template,) = parse_ber(fci)
    name = template.find(0x84)
    assert template.tag == 0x6F and name is not None and name.value == SAMPLE_AID


def test_select_by_partial_aid_and_by_fid(card: CardOS) -> None:
    assert run(card, "00A404000A" + SAMPLE_AID[:10].hex() + "00")[1] == 0x9000
    assert run(card, "00A4000C023F00") == (b"", 0x9000)
    assert run(card, "00A4000C021001") == (b"", 0x9000)  # the application DF
    assert run(card, "00A4020C020101") == (b"", 0x9000)  # its EF
    assert run(card, "00A4000C02EEEE")[1] == 0x6A82
    assert run(card, "00A4040C05A000000099")[1] == 0x6A82
    assert run(card, "00A4000C0101")[1] == 0x6700
    assert run(card, "00A4090C023F00")[1] == 0x6A86


def test_case_3_select_under_t0_answers_61xx(card: CardOS) -> None:
    t0 = sample_card("T0")
    t0.power_on()
    _, sw = run(t0, "00A404000C" + SAMPLE_AID.hex())
    assert sw >> 8 == 0x61
    data, sw = run(t0, f"00C00000{sw & 0xFF:02X}")
    assert sw == 0x9000 and data.startswith(b"\x6f")
    assert run(t0, "00C0000010")[1] == 0x6985  # nothing left


def test_read_and_update_binary(card: CardOS) -> None:
    assert run(card, "00B0810010")[1] == 0x6A82  # SFI 1 is not under the MF
    run(card, SELECT_APP)
    data, sw = run(card, "00B0810010")  # SFI 1, offset 0
    assert sw == 0x9000 and data == SAMPLE_BINARY[:16]
    run(card, SELECT_APP)
    assert run(card, "00A4020C020101")[1] == 0x9000
    assert run(card, "00D6000403C0FFEE")[1] == 0x9000
    assert run(card, "00B0000403")[0] == bytes.fromhex("C0FFEE")
    assert run(card, "00B07FFF01")[1] == 0x6B00  # offset beyond the file
    assert run(card, "00D60FFF020000")[1] == 0x6A84  # write past the end
    assert run(card, "00B0000000 1000")[0] == card.mf.children[0].children[0].data  # type: ignore[attr-defined]


def test_read_record_three_ways(card: CardOS) -> None:
    # docs/chip-application.md §1: select, by number (P2=04); select, by tag (P2=00); by SFI.
    rec1, rec2 = SAMPLE_RECORDS
    run(card, SELECT_APP)  # the DF; the EF itself is not selected
    assert run(card, "00B2011400") == (rec1, 0x9000)  # SFI 2, record number 1
    assert run(card, "00B2021000") == (rec2, 0x9000)  # SFI 2, identifier (tag) 02
    run(card, "00A4020C020102")
    assert run(card, "00B2020400") == (rec2, 0x9000)  # current EF, number 2
    assert run(card, "00B2010000") == (rec1, 0x9000)  # current EF, tag 01
    assert run(card, "00B2030400")[1] == 0x6A83
    assert run(card, "00B2090000")[1] == 0x6A83
    assert run(card, "00B2010500")[1] == 0x6A86  # unsupported addressing mode
    assert run(card, f"00B20104{len(rec1):02X}") == (rec1, 0x9000)
    # Le larger than the record: the record and 9000, as the real card answers
    # (docs/chip-application.md §1); shorter: 6Cxx with the record's length (ISO/IEC 7816-4
    # §5.1.3). The old answer, 6Cxx on any other Le, is the quirk strict-le.
    assert run(card, "00B2010420") == (rec1, 0x9000)
    assert run(card, f"00B20104{len(rec1) - 1:02X}")[1] == 0x6C00 | len(rec1)
    card.quirks = ("strict-le",)
    assert run(card, "00B2010420")[1] == 0x6C00 | len(rec1)


def test_update_and_append_record(card: CardOS) -> None:
    run(card, SELECT_APP)
    new = encode_simple(0x01, b"WORLD")
    assert run(card, f"00DC0114{len(new):02X}{new.hex()}")[1] == 0x9000
    assert run(card, "00B2011000")[0] == new
    wrong_tag = encode_simple(0x05, b"X")
    assert run(card, f"00DC0110{len(wrong_tag):02X}{wrong_tag.hex()}")[1] == 0x6A80
    big = encode_simple(0x03, bytes(100))
    assert run(card, f"00DC0114{len(big):02X}{big.hex()}")[1] == 0x6700
    third = encode_simple(0x03, b"!")
    assert run(card, f"00E20010{len(third):02X}{third.hex()}")[1] == 0x9000
    assert run(card, "00B2031400")[0] == third


def test_wrong_structure_and_no_current_ef(card: CardOS) -> None:
    assert run(card, "00B0000001")[1] == 0x6986  # nothing selected
    run(card, SELECT_APP)
    run(card, "00A4020C020102")
    assert run(card, "00B0000001")[1] == 0x6981  # record file read as binary


def test_bad_commands(card: CardOS) -> None:
    assert run(card, "00DC01")[1] == 0x6700  # malformed
    assert run(card, "00DC0104051122")[1] == 0x6700  # wrong Lc
    assert run(card, "0077000000")[1] == 0x6D00
    assert run(card, "B0B0000001")[1] == 0x6E00
    assert run(card, "0084000003")[1] == 0x6700
    challenge, sw = run(card, "0084000008")
    assert sw == 0x9000 and len(challenge) == 8 and card.challenge == challenge
    assert run(card, "00CA999900")[1] == 0x6A88


def test_extended_apdus_can_be_refused() -> None:
    card = sample_card("T1", extended_apdus=False)
    card.power_on()
    assert run(card, "00B0810000 0010")[1] == 0x6700


def test_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    save_card(sample_card("T0"), path)
    card = load_card(path)
    card.power_on()
    run(card, SELECT_APP)
    new = encode_simple(0x01, "张三".encode("gbk"))
    assert run(card, f"00DC0114{len(new):02X}{new.hex()}")[1] == 0x9000
    assert run(card, "00D6810003ABCDEF")[1] == 0x9000
    again = load_card(path)  # a new process would do just this
    again.power_on()
    run(again, SELECT_APP)
    assert run(again, "00B2011400")[0] == new
    assert run(again, "00B0810003")[0] == bytes.fromhex("ABCDEF")
    assert again.to_dict() == card.to_dict()
    assert json.loads(path.read_text())["kind"] == "iso7816"


def test_bad_card_files(tmp_path: Path) -> None:
    with pytest.raises(CardFileError, match="does not exist"):
        load_card(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CardFileError, match="not readable JSON"):
        load_card(tmp_path / "bad.json")
    (tmp_path / "alien.json").write_text('{"kind": "alien"}')
    with pytest.raises(CardFileError, match="unknown card kind"):
        load_card(tmp_path / "alien.json")
    (tmp_path / "broken.json").write_text('{"kind": "iso7816", "atr": "3B00"}')
    with pytest.raises(CardFileError, match="not a valid card"):
        load_card(tmp_path / "broken.json")
