"""The host's card profile and record tables against the bytes of a real card: the public
Z390Kylin APDU log (leithergit/Z390Kylin, ``mw_kylin_ARM64(X3)1.6.0/demo/log/
mwcard2021-10-12-13-00.txt``; docs/chip-application.md §1, §3).

The host (``sscard.profile``, ``sscard.records``, ``sscard.codecs``, ``sscard.card``) and the
virtual card share nothing with this file: the commands and answers below are the log's, as
hex literals. Where an answer carries a person's data (卡号, 社会保障号码, 姓名) the value is
replaced by a test value of the same length and the log's tag, length and padding are kept;
every other byte is the log's.
"""

from __future__ import annotations

from datetime import date

import pytest

from apdu.command import Command
from apdu.inprocess import InProcessTransport
from apdu.tlv import parse_ber, parse_simple
from apdu.trace import RecordingTrace
from sscard.card import SocialSecurityCard
from sscard.identifiers import card_id_matches_sn, card_number_check, card_number_valid
from sscard.profile import load_profile
from sscard.records import EF05, Element, ef06_elements
from sscard.regions import region_name

H = bytes.fromhex
PROFILE = load_profile("default")
EF06 = ef06_elements(PROFILE.name_padding)

# ----------------------------------------------------------------- the log, as it is

ATR = H("3B6D00000081008843866533010114F199")
SELECT_SSSE = H("00A404000F7378312E73682EC9E7BBE1B1A3D5CF")  # answered 61 18
GET_RESPONSE = H("00C0000018")
FCI = H("6F16840F7378312E73682EC9E7BBE1B1A3D5CFA50388010B")
READ_CARD_ID = H("00B2012812")  # EF05 tag 01 through SFI 5, Le = 0x12
CARD_ID_RECORD = H("0110330100D1560000050114F199D286DF7E")
READ_SPEC_VERSION = H("00B2032806")
SPEC_VERSION_RECORD = H("0304312E3030")  # "1.00"
SELECT_EF05 = H("00A4000002EF05")  # answered a bare 90 00
READ_CARD_NUMBER = H("00B207280E")  # Le 0x0E for an 11-byte record: answered record + 9000
SELECT_EF06 = H("00A4000002EF06")  # answered a bare 90 00
READ_SSN = H("00B2083014")  # EF06 tag 08 through SFI 6, Le = 0x14
READ_NAME = H("00B2093020")
READ_GENDER = H("00B20A3003")
GENDER_RECORD = H("0A0131")

# ----------------------------------------------------------------- the log's shape, test values

# 07 09 <卡号, 9 ASCII bytes>: the sample 卡号 of docs/chip-application.md §1 in its place.
CARD_NUMBER_RECORD = H("0709") + b"KD5578904"
# 08 12 <社会保障号码, 18 ASCII bytes>: GB 11643's own example number in its place.
SSN_RECORD = H("0812") + b"11010519491231002X"
# 09 1E <姓名: 6 GBK bytes, then 24 × 0x20 as on the logged card>: 张三丰 in its place.
NAME_RECORD = H("091E") + "张三丰".encode("gbk") + b"\x20" * 24

RECORDS = {  # (P1, P2) of READ RECORD → the record; the card ignores a too-large Le
    (0x01, 0x28): CARD_ID_RECORD,
    (0x03, 0x28): SPEC_VERSION_RECORD,
    (0x07, 0x28): CARD_NUMBER_RECORD,
    (0x08, 0x30): SSN_RECORD,
    (0x09, 0x30): NAME_RECORD,
    (0x0A, 0x30): GENDER_RECORD,
}
OK = H("9000")


def _header_and_data(raw: bytes) -> tuple[int, int, int, int, bytes]:
    c = Command.from_bytes(raw)
    return c.cla, c.ins, c.p1, c.p2, c.data


class LoggedCard:
    """A card that answers what the logged card answered. What the log does not show gets the
    ISO/IEC 7816-4 refusal (6A83 no such record, 6A82 no such file, 6D00 otherwise); the
    records it served are kept in ``served`` as (P1, P2)."""

    def __init__(self) -> None:
        self.waiting = b""
        self.served: list[tuple[int, int]] = []

    def power_on(self) -> bytes:
        return ATR

    def power_off(self) -> None:
        self.waiting = b""

    def process(self, apdu: bytes) -> bytes:
        header = _header_and_data(apdu)
        if header == _header_and_data(SELECT_SSSE):
            self.waiting = FCI
            return H("6118")
        if apdu == GET_RESPONSE and self.waiting:
            data, self.waiting = self.waiting, b""
            return data + OK
        if header in (_header_and_data(SELECT_EF05), _header_and_data(SELECT_EF06)):
            return OK
        if header[1] == 0xB2:
            if (header[2], header[3]) not in RECORDS:
                return H("6A83")
            self.served.append((header[2], header[3]))
            return RECORDS[header[2], header[3]] + OK
        return H("6A82") if header[1] == 0xA4 else H("6D00")


Host = tuple[SocialSecurityCard, RecordingTrace, LoggedCard]


@pytest.fixture
def host() -> Host:
    logged = LoggedCard()
    transport = InProcessTransport(logged)
    trace = RecordingTrace()
    transport.add_observer(trace)
    transport.connect()
    return SocialSecurityCard(transport, PROFILE), trace, logged


def _element(table: tuple[Element, ...], name: str) -> Element:
    return next(e for e in table if e.name == name)


# ----------------------------------------------------------------- SSSE


def test_host_selects_ssse_as_the_logged_reader(host: Host) -> None:
    card, trace, _ = host
    identity = card.identify()
    select, get_response = (H(e.command) for e in trace.events[:2])
    # The same header and AID; a case-4 Le (00) is not sent on T=0, hence its absence in the log.
    assert _header_and_data(select) == _header_and_data(SELECT_SSSE)
    assert Command.from_bytes(select).le in (None, 256)
    assert trace.events[0].sw == 0x6118
    assert get_response == GET_RESPONSE
    assert identity.fci is not None and identity.fci.to_bytes() == FCI


def test_fci_names_the_profile_aid_and_the_dir_sfi() -> None:
    (fci,) = parse_ber(FCI)
    assert fci.tag == 0x6F
    df_name, proprietary = fci.find(0x84), fci.find(0xA5)
    assert df_name is not None and df_name.value == PROFILE.ssse_aid
    assert PROFILE.ssse_aid == "sx1.sh.社会保障".encode("gbk")
    assert proprietary is not None and proprietary.value == PROFILE.ssse_fci_proprietary
    dir_sfi = proprietary.find(0x88) if proprietary.constructed else None
    assert dir_sfi is not None and dir_sfi.value == H("0B")


# ----------------------------------------------------------------- the read commands


@pytest.mark.parametrize(
    ("logged", "ef", "name", "length"),
    [
        (READ_CARD_ID, "ef05", "card_id", 16),
        (READ_SPEC_VERSION, "ef05", "spec_version", 4),
        (READ_SSN, "ef06", "ssn", 18),
        (READ_NAME, "ef06", "name", 30),
        (READ_GENDER, "ef06", "gender", 1),
    ],
    ids=lambda v: v.hex().upper() if isinstance(v, bytes) else str(v),
)
def test_logged_reads_are_the_profile_tags_sfis_and_lengths(
    logged: bytes, ef: str, name: str, length: int
) -> None:
    """``00 B2 <tag> <SFI·8> <2 + value length>``: the log's reader asked for whole records."""
    element = _element(EF05 if ef == "ef05" else EF06, name)
    sfi = getattr(PROFILE, ef).sfi
    assert element.length == length
    assert Command(0x00, 0xB2, element.tag, sfi << 3, le=element.length + 2).to_bytes() == logged


def test_card_number_read_with_a_larger_le() -> None:
    # 00 B2 07 28 0E: EF05 tag 07 through SFI 5 with Le 14; the record is 2 + 9 = 11 bytes.
    element = _element(EF05, "card_number")
    command = Command.from_bytes(READ_CARD_NUMBER)
    assert (command.p1, command.p2 >> 3, command.p2 & 7) == (element.tag, PROFILE.ef05.sfi, 0)
    assert element.length == 9 and len(CARD_NUMBER_RECORD) == 11 < (command.le or 0)


def test_logged_ef_selects_are_the_profile_fids() -> None:
    for logged, ef in ((SELECT_EF05, PROFILE.ef05), (SELECT_EF06, PROFILE.ef06)):
        assert Command(0x00, 0xA4, 0x00, 0x00, ef.fid.to_bytes(2, "big")).to_bytes() == logged
    assert (PROFILE.ef05.fid, PROFILE.ef05.sfi, PROFILE.ef06.fid, PROFILE.ef06.sfi) == (
        0xEF05,
        5,
        0xEF06,
        6,
    )


def test_host_reads_the_logged_answers(host: Host) -> None:
    card, trace, logged = host
    identity = card.identify()
    ef05 = {e.name: e for e in EF05}
    card_id = ef05["card_id"].codec.decode(card.read_element(PROFILE.ef05, ef05["card_id"]))
    spec = ef05["spec_version"].codec.decode(card.read_element(PROFILE.ef05, ef05["spec_version"]))
    number = ef05["card_number"].codec.decode(card.read_element(PROFILE.ef05, ef05["card_number"]))
    values = {e.name: e.codec.decode(card.read_element(PROFILE.ef06, e)) for e in EF06[:2]}
    gender = _element(EF06, "gender")
    values["gender"] = gender.codec.decode(card.read_element(PROFILE.ef06, gender))
    assert (card_id, spec, number) == (CARD_ID_RECORD[2:], "1.00", "KD5578904")
    assert values == {"ssn": "11010519491231002X", "name": "张三丰", "gender": "1"}
    # §3: SN = the last 8 ATR bytes; the 卡识别码 = region ‖ D156000005 ‖ SN[4:8] ‖ MAC.
    assert identity.sn == H("866533010114F199")
    assert card_id_matches_sn(card_id, identity.sn)
    assert region_name(card_id[:3].hex()) == "杭州市"
    # The host found every one of these records where the logged reader did.
    assert set(logged.served) == set(RECORDS)
    assert all(e.sw != 0x6D00 for e in trace.events), [e.command for e in trace.events]


# ----------------------------------------------------------------- the published EF05 sample


def test_sample_ef05_decodes_with_the_host_codecs() -> None:
    # docs/chip-application.md §1: 341200D156000005024575A7AEB8AF87 | 3 | 2.00 |
    # 915600000234120034010A0C | 20150711 | 20250711 | KD5578904, as the records tag 01-07.
    records = [
        "0110341200D156000005024575A7AEB8AF87",
        "020133",
        "0304322E3030",
        "040C915600000234120034010A0C",
        "050420150711",
        "060420250711",
        "07094B4435353738393034",
    ]
    decoded = {}
    for element, record in zip(EF05, records, strict=True):
        ((tag, value),) = parse_simple(H(record))
        assert (tag, len(value)) == (element.tag, element.length)
        decoded[element.name] = element.codec.decode(value)
    assert decoded == {
        "card_id": H("341200D156000005024575A7AEB8AF87"),
        "card_type": "3",
        "spec_version": "2.00",
        "issuer_org": H("915600000234120034010A0C"),
        "issue_date": date(2015, 7, 11),
        "expiry_date": date(2025, 7, 11),
        "card_number": "KD5578904",
    }
    assert [e.record for e in EF05] == [1, 2, 3, 4, 5, 6, 7]


def test_gb11714_check_character() -> None:
    # docs/chip-application.md §3: X0000001 → 9 (s = 33·3 + 1·2 = 101, 11 − 101 mod 11 = 9).
    assert card_number_check("X0000001") == "9"
    assert card_number_valid("X00000019") and not card_number_valid("X00000018")
    assert card_number_valid("KD5578904")
