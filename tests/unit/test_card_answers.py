"""How the virtual 社保卡 answers, in process: by default as the real card of the public
Z390Kylin log (docs/chip-application.md §1, tests/z390_log.py), with each answer quirk of
simulator/quirks.py changing one thing; and INTERNAL AUTHENTICATE on spec-3.00 cards.

Expected bytes are literals: from the public log, or computed by ``openssl enc`` (the
command is in a comment next to each)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.cardfile import CardFileError, load_card, save_card
from simulator.sscard_card import CardKey, SocialSecurityCardOS
from tests.z390_log import EXCHANGES, log_card

H = bytes.fromhex
SELECT_SSSE = "00A404000F7378312E73682EC9E7BBE1B1A3D5CF"
# A fixed internal-authentication key and the card's answers under it, by an independent
# implementation:
#   printf 1122334455667788 | xxd -r -p \
#     | openssl enc -des-ede-ecb -nopad -K 0123456789ABCDEFFEDCBA9876543210 | xxd -p
#   → 3eb3b72576bbbe83
#   printf A1B2C3D4E5F607181122334455667788 | xxd -r -p | openssl enc … (same key)
#   → fd7af640961cdb8b3eb3b72576bbbe83
INTERNAL_KEY = H("0123456789ABCDEFFEDCBA9876543210")
ONE_BLOCK = ("1122334455667788", "3EB3B72576BBBE83")
TWO_BLOCKS = ("A1B2C3D4E5F607181122334455667788", "FD7AF640961CDB8B3EB3B72576BBBE83")


def answer(card: SocialSecurityCardOS, command: str) -> str:
    return card.process(H(command)).hex().upper()


def powered(protocol: str = "T0", quirks: tuple[str, ...] = ()) -> SocialSecurityCardOS:
    card = log_card(protocol)
    card.quirks = quirks
    card.power_on()
    return card


def in_ssse(protocol: str = "T0", quirks: tuple[str, ...] = ()) -> SocialSecurityCardOS:
    card = powered(protocol, quirks)
    sw = answer(card, SELECT_SSSE)[-4:]
    if sw.startswith("61"):
        answer(card, "00C00000" + sw[2:])
    return card


# ----------------------------------------------------------------- defaults: the real card


def test_the_public_log_replays_byte_for_byte() -> None:
    card = powered("T0")
    for command, expected in EXCHANGES:
        assert answer(card, command) == expected, command


@pytest.mark.parametrize("select", ["00A4000002EF05", "00A4020002EF05", "00A4020C02EF05"])
def test_select_ef_by_fid_answers_a_bare_9000(select: str) -> None:
    # P1 00 (the log), P1 02 P2 00 (SI_3rdCard SELECT_FILE_SSSE_YH), P2 0C: no FCI, no 61xx
    for protocol in ("T0", "T1"):
        assert answer(in_ssse(protocol), select) == "9000"


def test_select_of_a_df_still_answers_its_fci() -> None:
    card = powered("T0")
    assert answer(card, SELECT_SSSE) == "6118"  # the log
    t1 = powered("T1")
    assert answer(t1, SELECT_SSSE + "00") == (
        "6F16840F7378312E73682EC9E7BBE1B1A3D5CFA50388010B9000"
    )


def test_read_record_with_a_larger_le_answers_the_record() -> None:
    card = in_ssse("T1")
    assert answer(card, "00B207280E") == "07094131353932313632329000"  # the log: Le 14, 11 bytes
    assert answer(card, "00B2072800") == "07094131353932313632329000"  # Le 00: up to 256


def test_read_record_with_a_shorter_le_answers_6cxx() -> None:
    # ISO/IEC 7816-4 §5.1.3: 6Cxx = wrong Le, xx the exact length; a record is not cut
    for protocol in ("T0", "T1"):
        card = in_ssse(protocol)
        assert answer(card, "00B2012810") == "6C12"
        assert answer(card, "00B2012812")[-4:] == "9000"


# ----------------------------------------------------------------- answer quirks


def test_quirk_fci_on_select_ef() -> None:
    card = in_ssse("T0", ("fci-on-select-ef",))
    sw = answer(card, "00A4000002EF05")
    assert sw[:2] == "61"
    fci = answer(card, "00C00000" + sw[2:])
    # 6F 0A: 82 01 04 (a record EF), 83 02 EF05, 88 01 05 (its SFI)
    assert fci == "6F0A820104" + "8302EF05" + "880105" + "9000"


def test_quirk_strict_le() -> None:
    card = in_ssse("T1", ("strict-le",))
    assert answer(card, "00B207280E") == "6C0B"
    assert answer(card, "00B207280B") == "07094131353932313632329000"


def test_quirk_always_61xx() -> None:
    card = in_ssse("T0", ("always-61xx",))
    assert answer(card, "00B2012812") == "6112"  # a case-2 command with the right Le
    assert answer(card, "00C0000012") == "0110330100D1560000050114F199D286DF7E9000"
    assert answer(card, "00A4000002EF05") == "9000"  # no data, nothing to hold


def test_quirk_sfi_only() -> None:
    card = in_ssse("T0", ("sfi-only",))
    assert answer(card, "00A4000002EF05") == "6A82"
    assert answer(card, "00A4020002EF06") == "6A82"
    assert answer(card, "00B2012812") == "0110330100D1560000050114F199D286DF7E9000"


def test_quirk_max_le() -> None:
    card = in_ssse("T1", ("max-le=16",))
    assert answer(card, "00B2012812") == "6700"  # 18 bytes asked, 16 at most
    assert answer(card, "00B2012800") == "6700"  # Le 00 asks for 256
    assert answer(card, "00B2032806") == "0304312E30309000"
    assert answer(card, "00B0880011") == "6700"
    assert answer(card, "00B0880010")[-4:] == "9000"
    assert answer(card, "00B08800000010") == "6700"  # no extended APDU


# ----------------------------------------------------------------- INTERNAL AUTHENTICATE


def with_internal_key(protocol: str) -> SocialSecurityCardOS:
    card = in_ssse(protocol)
    card.internal_key = CardKey("3DES", INTERNAL_KEY, 3, 3)
    return card


def test_internal_authenticate_is_not_supported_without_the_key() -> None:
    card = in_ssse("T0")
    card.internal_key = None  # as on a spec-2.00 card (the default image is 3.00)
    assert answer(card, "0088000008" + ONE_BLOCK[0]) == "6D00"


def test_internal_authenticate_one_block_t1() -> None:
    card = with_internal_key("T1")
    data, expected = ONE_BLOCK
    assert answer(card, "0088000008" + data + "00") == expected + "9000"


def test_internal_authenticate_henan_flow_t0() -> None:
    """SI_3rdCard ``SSCARDCtrl.cpp`` (iReadCardBas_HSM_Step1): GET CHALLENGE twice, then
    ``00 88 00 00 10`` with the two challenges (second ‖ first), no Le; the answer waits
    for GET RESPONSE under T=0. Here the 16 data bytes are fixed to check the answer."""
    card = with_internal_key("T0")
    assert answer(card, "0084000008")[-4:] == "9000"
    assert answer(card, "0084000008")[-4:] == "9000"
    data, expected = TWO_BLOCKS
    assert answer(card, "0088000010" + data) == "6110"
    assert answer(card, "00C0000010") == expected + "9000"


def test_internal_authenticate_refuses_bad_input() -> None:
    card = with_internal_key("T1")
    assert answer(card, "0088000007" + "11" * 7) == "6700"
    assert answer(card, "0088000018" + "11" * 24) == "6700"
    assert answer(card, "0088010008" + ONE_BLOCK[0]) == "6A86"
    assert answer(card, "8088000008" + ONE_BLOCK[0]) == "6E00"


def test_quirks_and_the_internal_key_persist_and_unknown_quirks_are_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "card.json"
    card = log_card("T1")
    card.quirks = ("strict-le", "max-le=64")
    card.internal_key = CardKey("3DES", INTERNAL_KEY, 3, 3)
    save_card(card, path)
    again = load_card(path)
    assert isinstance(again, SocialSecurityCardOS)
    assert again.quirks == ("strict-le", "max-le=64") and again.max_le == 64
    again.power_on()
    answer(again, SELECT_SSSE + "00")
    assert answer(again, "00B207280E") == "6C0B"
    data, expected = ONE_BLOCK
    assert answer(again, "0088000008" + data + "00") == expected + "9000"
    raw = json.loads(path.read_text())
    raw["quirks"] = ["no-such-quirk"]
    path.write_text(json.dumps(raw))
    with pytest.raises(CardFileError, match="未知的卡片特性"):
        load_card(path)


def test_read_record_without_le_under_t0_answers_the_record() -> None:
    # HDOS_VC6 ICCInter.cpp sends `00B20104` (no Le). A T=0 reader sends it as P3 = 00,
    # which the card takes as Ne = 256 (ISO/IEC 7816-3 §12.2.2): the record, not a bare 9000.
    card = in_ssse("T0")
    assert answer(card, "00A4000002EF05") == "9000"
    record = answer(card, "00B20104")
    assert record[-4:] == "9000" and record.startswith("0110") and len(record) == 2 * (18 + 2)
    assert answer(card, "00B20104") == answer(card, "00B2010400")  # P3 = 00 is the same command
