"""The reader against the variants real cards show (docs/chip-application.md "Reading real
cards"), in process. Each card here is built by the test from literal record bytes written
from the tables of docs/chip-application.md §1 — not by the card factory nor from the host's
profile — so what is checked is the host's reading of bytes a real card holds."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from apdu.atr import build_atr
from apdu.command import Command
from apdu.inprocess import InProcessTransport
from apdu.trace import RecordingTrace
from simulator.cardos.card import SwError
from simulator.cardos.filesystem import MF_FID, DedicatedFile, RecordEF, TransparentEF
from simulator.sscard_card import PinState, SocialSecurityCardOS, SsseConfig
from sscard import card as card_module
from sscard.card import SocialSecurityCard
from sscard.errors import InvalidData
from sscard.profile import CardProfile, load_profile
from sscard.public import read_public

SSSE_AID = bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")  # GBK "sx1.sh.社会保障"
SN = bytes.fromhex("00000000024575A7")
# EF05 of the public sample (docs/chip-application.md §1), one simple TLV per record.
EF05_RECORDS = [
    "0110341200D156000005024575A7AEB8AF87",  # 卡识别码
    "020133",  # 卡类别 '3'
    "0304322E3030",  # 规范版本 "2.00"
    "040C915600000234120034010A0C",  # 初始化机构编号
    "050420150711",  # 发卡日期
    "060420250711",  # 有效期
    "07094B4435353738393034",  # 卡号 "KD5578904"
]
SSN = "0812" + "313130313035313934393132333130303258"  # "11010519491231002X"
NAME_FF = "091E" + "D5C5C8FD" + "FF" * 26  # 张三, FF padding
NAME_00 = "091E" + "D5C5C8FD" + "00" * 26
NAME_EXT_00 = "4E14" + "00" * 20
GENDER = "0A0132"  # '2'
ETHNICITY = "0B0101"  # 汉族
BIRTHPLACE = "0C03110105"
BIRTH_DATE = "0D0419491231"
ZHEJIANG_EF06 = [SSN, NAME_FF, NAME_EXT_00, GENDER, ETHNICITY, BIRTHPLACE, BIRTH_DATE]
# A second-generation card without 4E: the other records are 1-6 (HDOS_VC6 WAPP.CPP).
NO_4E_EF06 = [SSN, NAME_00, GENDER, ETHNICITY, BIRTHPLACE, BIRTH_DATE]
DEFAULT = load_profile("default")


class BareSelectCard(SocialSecurityCardOS):
    """SELECT of an EF answers a bare 9000 whatever P2 asks, as the card of the Z390Kylin
    log does; the virtual card of this branch answers the FCI when P2 asks for it."""

    def cmd_select(self, c: Command) -> bytes:
        fci = super().cmd_select(c)
        return b"" if self.current_ef is not None and c.p1 != 0x04 else fci


class MaxLeCard(BareSelectCard):
    """A card that answers at most ``max_le`` bytes per READ BINARY: above it ``6700``, or
    ``6Cxx`` naming its limit when ``name_limit``."""

    max_le = 128
    name_limit = False

    def cmd_read_binary(self, c: Command) -> bytes:
        if c.le is not None and c.le > self.max_le:
            raise SwError(0x6C00 | self.max_le if self.name_limit else 0x6700)
        return super().cmd_read_binary(c)


def card_with(
    ef06: list[str],
    *,
    kind: type[SocialSecurityCardOS] = BareSelectCard,
    forms: tuple[str, ...] = ("sfi", "tag", "number"),
    photo: bytes = b"",
    read_pin_fids: tuple[int, ...] = (),
    protocol: str = "T0",
    ef0d: list[str] | None = None,
) -> SocialSecurityCardOS:
    mf = DedicatedFile(MF_FID, "MF")
    ssse = DedicatedFile(None, "SSSE", aid=SSSE_AID, proprietary_fci=bytes.fromhex("88010B"))
    mf.add(ssse)
    for fid, name, sfi, records in ((0xEF05, "EF05", 5, EF05_RECORDS), (0xEF06, "EF06", 6, ef06)):
        rows = [bytearray.fromhex(r) for r in records]
        ssse.add(RecordEF(fid, name, sfi=sfi, record_size=32, records=rows))
    ssse.add(TransparentEF(0xEF08, "EF08", sfi=8, data=bytearray(photo.ljust(4096, b"\0"))))
    if ef0d is not None:
        rows = [bytearray.fromhex(r) for r in ef0d]
        ssse.add(RecordEF(0xEF0D, "EF0D", sfi=0x0D, record_size=14, records=rows))
    return kind(
        mf,
        config=SsseConfig(
            SSSE_AID, update_keys={}, pin_key=1, read_pin_fids=read_pin_fids, forms=forms
        ),
        keys={},
        pin=PinState(bytes.fromhex("888888"), 3, 3),
        atr=build_atr(0 if protocol == "T0" else 1, b"\x86\x53\x53\x43" + SN),
        protocol=protocol,  # type: ignore[arg-type]
        extended_apdus=False,
    )


def reader(
    card: SocialSecurityCardOS, profile: CardProfile = DEFAULT
) -> tuple[SocialSecurityCard, RecordingTrace]:
    transport = InProcessTransport(card)
    trace = RecordingTrace()
    transport.add_observer(trace)
    transport.connect()
    card = SocialSecurityCard(transport, profile)
    card.identify()
    return card, trace


def test_the_public_sample_reads_with_ff_padding_trimmed() -> None:
    data = read_public(reader(card_with(ZHEJIANG_EF06))[0])
    assert data["name"] == "张三"
    assert data["card_number"] == "KD5578904" and data["spec_version"] == "2.00"
    assert data["card_id"] == "341200D156000005024575A7AEB8AF87"
    assert (data["ssn"], data["gender"], data["birthplace"]) == (
        "11010519491231002X",
        "2",
        "110105",
    )
    assert data["birth_date"] == "1949-12-31" and data["issue_date"] == "2015-07-11"
    assert data["warnings"] == [] and data["profile"] == "default"


@pytest.mark.parametrize("pad", ["00", "20", "FF"])
def test_every_name_padding_is_trimmed(pad: str) -> None:
    ef06 = list(ZHEJIANG_EF06)
    ef06[1] = "091E" + "D5C5C8FD" + pad * 26
    ef06[2] = "4E14" + pad * 20
    card, _ = reader(card_with(ef06))
    assert card.read_holder().name == "张三"


def test_a_card_without_4e_reads_with_the_default_profile() -> None:
    """6A83 on 4E, and 0A where the default profile numbers 4E: the name is 姓名 alone."""
    card, trace = reader(card_with(NO_4E_EF06, forms=("tag", "number")))
    holder = card.read_holder()
    assert (
        holder.name == "张三" and holder.gender == "2" and holder.birth_date == date(1949, 12, 31)
    )
    assert any(e.command.startswith("00B24E00") and e.sw == 0x6A83 for e in trace.events)


def test_a_card_numbering_ef06_otherwise_is_read_by_tag_not_misread() -> None:
    """Read by number only where the record holds the expected tag: record 4 of a card
    without 4E is 0B (民族), not 0A (性别)."""
    card, _ = reader(card_with(NO_4E_EF06, forms=("number", "tag")))
    card.profile = replace(DEFAULT, read_forms=("number", "tag"))
    holder = card.read_holder()
    assert (holder.gender, holder.ethnicity, holder.birthplace) == ("2", "01", "110105")


def test_the_hunan_profile_reads_records_1_to_6_by_number() -> None:
    hunan = replace(load_profile("hunan"), read_forms=("number",))
    card, trace = reader(card_with(NO_4E_EF06, forms=("number",)), hunan)
    holder = card.read_holder()
    assert holder.name == "张三" and holder.birth_date == date(1949, 12, 31)
    sent = [e.command for e in trace.events if e.command.startswith("00B2")]
    # HDOS_VC6 WAPP.CPP: 08, 09, 0A, 0B, 0C, 0D are records 1-6 (Le = record length)
    assert sent[-6:] == ["00B2010414", "00B2020420", "00B2030403", "00B2040403",
                         "00B2050405", "00B2060406"]  # fmt: skip


def test_a_byte_gbk_cannot_decode_is_flagged_never_replaced() -> None:
    ef06 = list(ZHEJIANG_EF06)
    ef06[1] = "091E" + "D5C580C8FD" + "00" * 25  # 张 0x80 三
    data = read_public(reader(card_with(ef06))[0])
    assert data["name"] == "张\\x80三" and "\ufffd" not in data["name"]
    assert [w["field"] for w in data["warnings"]] == ["name"]
    assert "80" in data["warnings"][0]["message"]


def test_birthplace_padded_with_ff_is_four_digits_with_a_warning() -> None:
    ef06 = list(ZHEJIANG_EF06)
    ef06[5] = "0C033301FF"
    data = read_public(reader(card_with(ef06))[0])
    assert data["birthplace"] == "3301"
    assert [w["field"] for w in data["warnings"]] == ["birthplace"]
    assert "4" in data["warnings"][0]["message"]


def test_sfi_and_record_number_form() -> None:
    """The fourth read form, ``00 B2 <rec> <SFI·8+4> <Le>`` (HDOS_VC6 ``00B2072C0B``)."""
    profile = replace(DEFAULT, read_forms=("sfi-number",))
    card, trace = reader(card_with(ZHEJIANG_EF06), profile)
    assert card.read_issuer().card_number == "KD5578904"
    sent = [e.command for e in trace.events if e.command.startswith("00B2")]
    assert sent[0] == "00B2012C12" and sent[-1] == "00B2072C0B"
    assert not any(e.command.startswith("00A4000002") for e in trace.events)


@pytest.mark.parametrize("form", ["sfi", "tag", "number", "sfi-number"])
def test_each_read_form_alone(form: str) -> None:
    profile = replace(DEFAULT, read_forms=(form,))
    card, _ = reader(card_with(ZHEJIANG_EF06), profile)
    assert card.read_holder().name == "张三"


@pytest.mark.parametrize("kind", [BareSelectCard, SocialSecurityCardOS])
@pytest.mark.parametrize("protocol", ["T0", "T1"])
def test_select_ef_bare_9000_or_fci(kind: type[SocialSecurityCardOS], protocol: str) -> None:
    """The real card's ``00A4000002EF05`` answers a bare 9000; a card that sends the FCI
    (``61xx`` under T=0) is read alike."""
    profile = replace(DEFAULT, read_forms=("number",))
    card, trace = reader(card_with(ZHEJIANG_EF06, kind=kind, protocol=protocol), profile)
    assert card.read_issuer().card_number == "KD5578904"
    assert "00A4000002EF05" in [e.command for e in trace.events]


JPEG = b"\xff\xd8" + bytes(range(256)) * 3 + b"\xff\xd9"


@pytest.mark.parametrize("name_limit", [False, True])
def test_photo_chunks_adapt_to_a_card_whose_max_le_is_128(name_limit: bool) -> None:
    card_os = card_with(ZHEJIANG_EF06, kind=MaxLeCard, photo=JPEG)
    card_os.name_limit = name_limit  # type: ignore[attr-defined]
    card, trace = reader(card_os)
    assert card.read_photo() == JPEG
    # short READ BINARY commands (the extended attempt before them is refused: 6700), the
    # first through EF08's SFI (the profile allows SFI addressing: no SELECT)
    reads = [e for e in trace.events if e.command[2:4] == "B0" and len(e.command) == 10]
    refused = 0x6C80 if name_limit else 0x6700
    assert reads[0].command == "00B08800FF" and reads[0].sw == refused
    assert all(e.sw == 0x9000 and int(e.command[-2:], 16) <= 128 for e in reads[1:])
    assert len(reads) == 1 + -(-len(JPEG) // 128)


def test_photo_by_sfi_when_ef08_cannot_be_selected() -> None:
    class SfiOnly(BareSelectCard):
        def cmd_select(self, c: Command) -> bytes:
            if c.p1 != 0x04:
                raise SwError(0x6A82)
            return super().cmd_select(c)

    card, trace = reader(card_with(ZHEJIANG_EF06, kind=SfiOnly, photo=JPEG))
    assert card.read_photo() == JPEG
    assert any(e.command.startswith("00B08800") for e in trace.events)


def test_smaller_chunks_are_powers_of_two() -> None:
    assert [card_module.smaller_chunk(n) for n in (255, 128, 100, 2)] == [128, 64, 64, 1]


def test_pin_read_locks_ef06_not_ef05() -> None:
    card_os = card_with(ZHEJIANG_EF06, read_pin_fids=(0xEF06, 0xEF08))
    card, trace = reader(card_os, load_profile("pin-read"))
    assert card.read_issuer().card_number == "KD5578904"  # no VERIFY sent before EF05
    assert not any(e.command.startswith("0020") for e in trace.events)
    with pytest.raises(InvalidData, match="PIN"):
        read_public(card)
    first = len(trace.events)
    assert read_public(card, pin="888888")["name"] == "张三"
    sent = [e.command[:4] for e in trace.events[first:]]
    assert sent.index("0020") > sent.index("00B2")  # EF05 read before VERIFY, as readers do


def test_sfi_forms_are_skipped_for_a_file_without_sfi() -> None:
    no_sfi = replace(DEFAULT, ef06=replace(DEFAULT.ef06, sfi=None))
    card, trace = reader(card_with(ZHEJIANG_EF06), replace(no_sfi, read_forms=("sfi", "tag")))
    assert card.read_holder().name == "张三"
    assert not any(e.command.startswith("00B20930") for e in trace.events)
    card, _ = reader(card_with(ZHEJIANG_EF06), replace(no_sfi, read_forms=("sfi",)))
    with pytest.raises(InvalidData, match="SFI"):
        card.read_holder()


def test_a_card_without_ef19_gives_no_insured_region_and_a_warning() -> None:
    """A card numbered as Hunan's but without DF03/EF19 (a default-layout card without 4E is
    detected as ``hunan``): 参保地 is None with a warning, the rest is read."""
    card, _ = reader(card_with(NO_4E_EF06), load_profile("hunan"))
    data = read_public(card, pin="888888")
    assert data["name"] == "张三" and data["insured_region"] is None
    assert [w["field"] for w in data["warnings"]] == ["insured_region"]
    assert "6A82" in data["warnings"][0]["message"]
