"""The real 社保卡 of the public Z390Kylin log (leithergit/Z390Kylin,
``mw_kylin_ARM64(X3)1.6.0/demo/log/mwcard2021-10-12-13-00.txt``; docs/chip-application.md
§1): the APDUs a Zhejiang reader sent and the card's answers, byte for byte, and a virtual
card holding that card's records — so a test can replay the log and expect the very same
answers from the virtual card.

The answers are literals copied from the log ("[Slot]:Contact,[SEND] … [RECEIVE]" lines;
the ``61 18`` of the SSSE select and the GET RESPONSE it asks for are on the reader's
framing lines around them). Nothing here is computed by the code under test.
"""

from __future__ import annotations

from simulator.cardos.filesystem import DedicatedFile, RecordEF
from simulator.factory import issue_blank_card
from simulator.sscard_card import SocialSecurityCardOS
from sscard.profile import load_profile

H = bytes.fromhex

# (command, answer) in the order the log shows them.
EXCHANGES: tuple[tuple[str, str], ...] = (
    ("00A404000F7378312E73682EC9E7BBE1B1A3D5CF", "6118"),
    ("00C0000018", "6F16840F7378312E73682EC9E7BBE1B1A3D5CFA50388010B9000"),
    ("00B2012812", "0110330100D1560000050114F199D286DF7E9000"),
    ("00B2032806", "0304312E30309000"),
    ("00A4000002EF05", "9000"),
    ("00B207280E", "07094131353932313632329000"),  # Le 14 for an 11-byte record
    ("00A4000002EF06", "9000"),
    ("00B2083014", "08123333323630333139373931323232353431369000"),
    ("00B2093020", "091EB4F7C8FCD1C2" + "20" * 24 + "9000"),  # name padded with 0x20
    ("00B20A3003", "0A01319000"),
)

# The log card's records that the log shows (EF05 tags 01, 03, 07; EF06 08, 09, 0A): each
# READ RECORD answer without its status word, filed under the SFI of its P2.
RECORDS: dict[int, tuple[bytes, ...]] = {
    sfi: tuple(
        H(answer)[:-2]
        for command, answer in EXCHANGES
        if command[2:4] == "B2" and int(command[6:8], 16) >> 3 == sfi
    )
    for sfi in (5, 6)
}


def log_card(protocol: str = "T0") -> SocialSecurityCardOS:
    """A default-profile card from the card factory whose EF05/EF06 hold the log card's
    records (written over the factory's blank records with the same tags)."""
    card = issue_blank_card(load_profile("default"), "330100", protocol=protocol)  # type: ignore[arg-type]
    ssse = card.mf.children[0]
    assert isinstance(ssse, DedicatedFile)
    for sfi, records in RECORDS.items():
        ef = ssse.ef_by_sfi(sfi)
        assert isinstance(ef, RecordEF)
        for raw in records:
            index = ef.find_by_identifier(raw[0])
            assert index is not None, f"SFI {sfi} has no record with tag {raw[0]:02X}"
            ef.records[index] = bytearray(raw)
    return card
