"""The virtual card's own card images (simulator/images/*.toml) and the card factory that
issues them, checked with raw APDUs against bytes written out here by hand: the public
Z390Kylin log's answers (docs/chip-application.md §1), each image's tree, record layout and
access rules, personalized records (GBK of 张三 = D5 C5 C8 FD), and each image quirk."""

from __future__ import annotations

import ast
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from hsm_stub import cryptograms
from hsm_stub.suites import suite_for
from simulator import factory
from simulator.card_image import ImageError, load_image, shipped_images
from simulator.cardfile import load_card, save_card
from simulator.factory import (
    SAMPLE_HOLDER,
    TEST_ROOTS,
    issue_blank_card,
    personalize_directly,
    sample_issuer,
)
from simulator.image_values import ValueEncodingError, encode_value, split_gbk
from simulator.sscard_card import SocialSecurityCardOS

REGION = "330100"  # 杭州市
SN = bytes.fromhex("0102030405060708")
SELECT_SSSE = "00A404000F7378312E73682EC9E7BBE1B1A3D5CF"
SSSE_FCI = "6F16840F7378312E73682EC9E7BBE1B1A3D5CFA50388010B"  # Z390Kylin log
SSN_ASCII = "313130313035313934393132333130303258"  # "11010519491231002X"
ZHANG_SAN = "D5C5C8FD"  # GBK of 张三
DIR_RECORD = "610E4F06D156000005035004D2BDC1C6"  # 61 L 4F <DF04 AID> 50 "医疗" (GBK)
IMAGES = ("default", "hunan", "jiangsu", "pin-read")


def card_of(image: str, *quirks: str, personalized: bool = True) -> SocialSecurityCardOS:
    card = issue_blank_card(image, REGION, serial=SN, quirks=quirks)
    if personalized:
        issuer = sample_issuer(image, REGION, SN, TEST_ROOTS, card_number="X00000019")
        personalize_directly(card, image, issuer, SAMPLE_HOLDER, b"\xff\xd8\xff\xe0JPEG")
    card.power_on()
    return card


def tx(card: SocialSecurityCardOS, apdu: str) -> str:
    return card.process(bytes.fromhex(apdu.replace(" ", ""))).hex().upper()


def in_ssse(card: SocialSecurityCardOS) -> None:
    assert tx(card, SELECT_SSSE) == "6118"


# ----------------------------------------------------------------- Z390Kylin bytes


@pytest.mark.parametrize("image", IMAGES)
def test_ssse_select_and_fci_are_the_z390kylin_bytes(image: str) -> None:
    card = card_of(image, personalized=False)
    assert tx(card, SELECT_SSSE) == "6118"
    assert tx(card, "00C0000018") == SSSE_FCI + "9000"


def test_default_records_have_the_z390kylin_lengths() -> None:
    card = card_of("default")
    in_ssse(card)
    ef05_tag01 = tx(card, "00B2012812")  # 0x12 bytes: 01 10 <16-byte 卡识别码>
    assert len(ef05_tag01) == 2 * 0x12 + 4 and ef05_tag01.startswith("0110330100D156000005")
    assert ef05_tag01.endswith("9000") and ef05_tag01[20:28] == "05060708"  # SN[4:8]
    assert tx(card, "00B2083014") == "0812" + SSN_ASCII + "9000"  # 0x14 bytes
    # EF05 record 7 is 11 bytes: 07 09 "X00000019" (SFI + record number, HDOS_VC6)
    assert tx(card, "00B2072C0B") == "0709" + "583030303030303139" + "9000"
    assert tx(card, "00B2032806") == "0304" + "332E3030" + "9000"  # 规范版本 "3.00"
    assert tx(card, "00B2052806") == "0504" + "20261125" + "9000"  # 发卡日期 BCD


@pytest.mark.parametrize("image", IMAGES)
def test_the_dir_file_the_fci_names_exists(image: str) -> None:
    card = card_of(image, personalized=False)
    in_ssse(card)
    assert tx(card, "00B2015C00") == DIR_RECORD + "9000"  # 00 B2 0n 5C 00: SFI 0B, record n
    assert tx(card, "00B2025C00") == "6A83"


# ----------------------------------------------------------------- layouts


def test_default_ef06_numbering_has_4e_at_record_3() -> None:
    card = card_of("default")
    in_ssse(card)
    expected = {
        1: "0812" + SSN_ASCII,
        2: "091E" + ZHANG_SAN + "00" * 26,
        3: "4E14" + "00" * 20,
        4: "0A0132",
        5: "0B0101",
        6: "0C03110105",
        7: "0D0419491231",
    }
    for record, answer in expected.items():
        assert tx(card, f"00B2{record:02X}3400") == answer + "9000"


def test_hunan_ef06_is_six_records_without_4e() -> None:
    card = card_of("hunan")
    in_ssse(card)
    expected = ["0812" + SSN_ASCII, "091E" + ZHANG_SAN + "00" * 26, "0A0132", "0B0101"]
    expected += ["0C03110105", "0D0419491231"]
    for record, answer in enumerate(expected, 1):
        assert tx(card, f"00B2{record:02X}3400") == answer + "9000"
    assert tx(card, "00B2073400") == "6A83"
    assert tx(card, "00B24E3000") == "6A83"
    assert tx(card, "00B2032806") == "0304" + "322E3030" + "9000"  # "2.00"


def test_hunan_ef19_in_df03_is_read_after_verify() -> None:
    card = card_of("hunan")
    in_ssse(card)
    assert tx(card, "00A4010002DF03")[:2] in ("61", "90")
    assert tx(card, "00B201CC00") == "6982"  # EF19 by SFI 0x19, record 1
    assert tx(card, "0020000003123456") == "9000"
    assert tx(card, "00B201CC00") == "7927" + "00" * 7 + "330100" + "00" * 29 + "9000"
    # as HDOS_VC6 ICCInter.cpp reads it: SELECT EF19 in DF03, then the tag-79 record, 0x29 bytes
    assert tx(card, "00A4000002EF19") == "9000"
    assert tx(card, "00B2790029") == "7927" + "00" * 7 + "330100" + "00" * 29 + "9000"


def test_jiangsu_ef0d_holds_ea_and_eb_and_is_updated_with_key_0d() -> None:
    card = card_of("jiangsu")
    in_ssse(card)
    assert tx(card, "00A4000002EF0D")[:2] in ("61", "90")
    person_id = "333330313030" + "333130303258"  # "330100" ‖ "31002X"
    assert tx(card, "00B201040E") == "EA0C" + person_id + "9000"
    assert tx(card, "00B2020405") == "EB03" + "330100" + "9000"
    write = "00DC020405EB03320100"
    assert tx(card, write) == "6982"
    authenticate(card, 0x04)
    assert tx(card, write) == "6982"  # the update key of EF05/EF06 is not EF0D's
    authenticate(card, 0x0D)
    assert tx(card, write) == "9000"
    assert tx(card, "00B2020405") == "EB03" + "320100" + "9000"


def authenticate(card: SocialSecurityCardOS, key_id: int) -> None:
    challenge = bytes.fromhex(tx(card, "0084000008")[:16])
    key = card.keys[key_id]
    data = cryptograms.external_auth_data(suite_for(key.algorithm), key.value, challenge, challenge)
    assert tx(card, f"008200{key_id:02X}10" + data.hex()) == "9000"


def test_jiangsu_keys_are_diversified_on_two_levels_the_others_on_three() -> None:
    algorithm, root = TEST_ROOTS["update"]
    suite = suite_for(algorithm)
    for image, levels in (("jiangsu", 2), ("default", 3), ("hunan", 3), ("pin-read", 3)):
        factors = cryptograms.CardFactors.for_card(SN, REGION, levels)
        card = card_of(image, personalized=False)
        assert card.keys[0x04].value == cryptograms.derive_card_key(suite, root, factors), image


def test_pin_read_protects_ef06_and_ef08_and_nothing_else() -> None:
    card = card_of("pin-read")
    in_ssse(card)
    assert tx(card, "00B2012812").endswith("9000")  # EF05: free
    assert tx(card, "00B2083014") == "6982"  # EF06
    assert tx(card, "00B0880004") == "6982"  # EF08 by SFI 8
    assert tx(card, "0020000003888888") == "9000"  # the image's default PIN
    assert tx(card, "00B2093020") == "091E" + ZHANG_SAN + "20" * 26 + "9000"  # padded 0x20
    assert tx(card, "00B0880004") == "FFD8FFE0" + "9000"


@pytest.mark.parametrize(
    ("image", "update_keys", "read_pin_fids"),
    [
        ("default", {0xEF05: 4, 0xEF06: 4, 0xEF07: 4, 0xEF08: 4, 0xEF0B: 0}, ()),
        ("pin-read", {0xEF05: 4, 0xEF06: 4, 0xEF07: 4, 0xEF08: 4, 0xEF0B: 0}, (0xEF06, 0xEF08)),
        ("hunan", {0xEF05: 4, 0xEF06: 4, 0xEF07: 4, 0xEF08: 4, 0xEF0B: 0, 0xEF19: 4}, (0xEF19,)),
        ("jiangsu", {0xEF05: 4, 0xEF06: 4, 0xEF07: 4, 0xEF08: 4, 0xEF0D: 0x0D, 0xEF0B: 0}, ()),
    ],
)
def test_access_rules_of_each_image(
    image: str, update_keys: dict[int, int], read_pin_fids: tuple[int, ...]
) -> None:
    card = card_of(image, personalized=False)
    assert card.config.update_keys == update_keys
    assert card.config.read_pin_fids == read_pin_fids
    assert card.config.pin_key == 0x01
    assert set(card.keys) == {0x00, 0x01, 0x04, 0x0A} | ({0x0D} if image == "jiangsu" else set())


@pytest.mark.parametrize(
    ("image", "internal", "extended"),
    [("default", True, True), ("jiangsu", True, True), ("hunan", False, False),
     ("pin-read", False, True)],
)  # fmt: skip
def test_only_spec_300_images_carry_the_internal_authentication_key(
    image: str, internal: bool, extended: bool
) -> None:
    card = card_of(image, personalized=False)
    assert (card.internal_key is not None) == internal
    assert card.extended_apdus == extended
    if internal:
        algorithm, root = TEST_ROOTS["internal"]
        levels = 2 if image == "jiangsu" else 3
        factors = cryptograms.CardFactors.for_card(SN, REGION, levels)
        assert card.internal_key is not None
        assert card.internal_key.value == cryptograms.derive_card_key(
            suite_for(algorithm), root, factors
        )


def test_blank_records_hold_tag_length_and_zeros() -> None:
    card = card_of("default", personalized=False)
    in_ssse(card)
    assert tx(card, "00B2012812") == "0110" + "00" * 16 + "9000"
    assert tx(card, "00B2093020") == "091E" + "00" * 30 + "9000"
    assert tx(card, "0020000003123456") == "9000"


# ----------------------------------------------------------------- quirks


def test_quirk_pad_20_pads_the_names_with_spaces() -> None:
    card = card_of("default", "pad-20")
    in_ssse(card)
    assert tx(card, "00B2093020") == "091E" + ZHANG_SAN + "20" * 26 + "9000"
    assert tx(card, "00B24E3016") == "4E14" + "20" * 20 + "9000"
    assert tx(card, "00B20C3005") == "0C03110105" + "9000"


def test_quirk_pad_ff_pads_names_4e_and_birthplace_with_ff() -> None:
    card = card_of("default", "pad-ff")
    in_ssse(card)
    assert tx(card, "00B2093020") == "091E" + ZHANG_SAN + "FF" * 26 + "9000"
    assert tx(card, "00B24E3016") == "4E14" + "FF" * 20 + "9000"
    assert tx(card, "00B20C3005") == "0C03" + "1101FF" + "9000"  # 4 digits, then FF


def test_quirk_no_4e_drops_the_record_and_renumbers_the_rest() -> None:
    card = card_of("default", "no-4e")
    in_ssse(card)
    assert tx(card, "00B24E3016") == "6A83"
    assert tx(card, "00B2033400") == "0A0132" + "9000"
    assert tx(card, "00B2063400") == "0D0419491231" + "9000"
    assert tx(card, "00B2073400") == "6A83"
    blank = card_of("default", "no-4e", personalized=False)
    in_ssse(blank)
    assert tx(blank, "00B24E3016") == "6A83"


def test_a_long_name_needs_4e() -> None:
    long_name = replace(SAMPLE_HOLDER, name="欧阳" * 7 + "娜张")  # 32 GBK bytes
    card = issue_blank_card("default", REGION, serial=SN, quirks=("no-4e",))
    issuer = sample_issuer("default", REGION, SN, TEST_ROOTS)
    with pytest.raises(ValueError, match="姓名扩展"):
        personalize_directly(card, "default", issuer, long_name)
    card = issue_blank_card("default", REGION, serial=SN)
    personalize_directly(card, "default", issuer, long_name)
    card.power_on()
    in_ssse(card)
    assert tx(card, "00B24E3016") == "4E14" + "D5C5" + "00" * 18 + "9000"  # 张 continues


def test_answer_quirks_pass_to_the_card_and_persist(tmp_path: Path) -> None:
    card = card_of("hunan", "strict-le", "max-le=64", "pad-20")
    assert card.quirks == ("strict-le", "max-le=64", "pad-20")
    save_card(card, tmp_path / "c.json")
    again = load_card(tmp_path / "c.json", persist=False)
    assert again.quirks == ("strict-le", "max-le=64", "pad-20")


def test_unknown_quirk_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"未知的卡片特性 'bogus'.*no-4e.*unknown quirk"):
        issue_blank_card("default", REGION, quirks=("bogus",))


# ----------------------------------------------------------------- images as data


def test_shipped_images_are_the_agreed_profile_names() -> None:
    assert shipped_images() == ["default", "hunan", "jiangsu", "pin-read"]


def test_unknown_image_names_the_shipped_ones() -> None:
    with pytest.raises(
        ImageError, match=r"没有卡片映像 'nowhere'.*default, hunan, jiangsu, pin-read"
    ):
        load_image("nowhere")


def test_an_image_file_by_path_and_its_rules_are_checked(tmp_path: Path) -> None:
    text = (Path(factory.__file__).parent / "images" / "default.toml").read_text("utf-8")
    ok = tmp_path / "mine.toml"
    ok.write_text(text.replace('name = "default"', 'name = "mine"'), encoding="utf-8")
    assert load_image(ok).name == "mine"
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('spec_version = "3.00"', 'spec_version = "2.00"'), "utf-8")
    with pytest.raises(ImageError, match=r"internal_key is on spec-3\.00 images"):
        load_image(bad)
    bad.write_text(text.replace("record = 7", "record = 8"), encoding="utf-8")
    with pytest.raises(ImageError, match="EF05: records are numbered"):
        load_image(bad)


def test_the_factory_does_not_take_layout_or_encoding_from_the_host() -> None:
    # Independent truth (docs/chip-application.md, "Card images"): from the host's sscard
    # package the card side takes only the data classes it is given (and the 卡号 rules).
    allowed = {
        "sscard.records": {"HolderData", "IssuerData"},
        "sscard.errors": {"InvalidData"},
        "sscard.identifiers": {"card_number_check", "validate_card_number"},
    }
    for module in ("factory.py", "card_image.py", "image_values.py"):
        tree = ast.parse((Path(factory.__file__).parent / module).read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("sscard") for a in node.names), module
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sscard"):
                names = {a.name for a in node.names}
                assert names <= allowed.get(node.module or "", set()), (module, node.module)


# ----------------------------------------------------------------- the image's encoder


@pytest.mark.parametrize(
    ("encoding", "length", "value", "kwargs", "expected"),
    [
        ("ascii", 4, "3.00", {}, "332E3030"),
        ("bcd", 3, "110105", {}, "110105"),
        ("bcd", 3, "110105", {"digits": 4, "pad": 0xFF}, "1101FF"),
        ("bcd-date", 4, date(1949, 12, 31), {}, "19491231"),
        ("gbk", 6, "张三", {"pad": 0x20}, "D5C5C8FD2020"),
        ("binary", 2, b"\x12\x34", {}, "1234"),
        # a first-generation card's number: GB 11643-1999's example without 19 and X, NULs
        ("id15", 18, "11010519491231002X", {}, "313130313035343931323331303032000000"),
        ("id15", 18, "110105491231002", {"pad": 0x20}, "313130313035343931323331303032202020"),
    ],
)
def test_encoder_values(
    encoding: str, length: int, value: object, kwargs: dict[str, int], expected: str
) -> None:
    assert encode_value(encoding, length, value, **kwargs).hex().upper() == expected


@pytest.mark.parametrize(
    ("encoding", "length", "value"),
    [("ascii", 9, "X0000001"), ("bcd", 3, "11010"), ("gbk", 3, "张三"), ("gbk", 30, "𪚥"),
     ("binary", 16, b"\x00"), ("bcd-date", 4, "19491231"),
     ("id15", 18, "11010520001231002X"), ("id15", 18, "11010549123100")],
)  # fmt: skip
def test_encoder_refuses_values_that_do_not_fit(encoding: str, length: int, value: object) -> None:
    with pytest.raises(ValueEncodingError):
        encode_value(encoding, length, value)


def test_names_are_cut_between_characters() -> None:
    assert split_gbk("欧阳" * 7 + "娜张", 30) == ("欧阳" * 7 + "娜", "张")
    assert split_gbk("A" + "张" * 15, 30) == ("A" + "张" * 14, "张")  # 29 bytes, not 31
