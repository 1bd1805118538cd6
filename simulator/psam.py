"""The simulated PSAM: a card OS personality holding root keys and computing with them as
:mod:`hsm_stub.psam` expects (docs/chip-application.md §5) — BF DE key init with diversification and
session key, 80 FA encrypt / MAC, GET DATA for a key's KCV. All cryptography is
:mod:`hsm_stub` code; the PSAM never exports a key. An office PSAM holds only the keys an
office may use.
"""

from __future__ import annotations

from typing import Any, ClassVar

from apdu.atr import build_atr
from apdu.command import Command
from hsm_stub.cryptograms import MAC_LENGTH
from hsm_stub.errors import KeystoreError
from hsm_stub.keystore import ROLE_USAGES, Keystore
from hsm_stub.psam import PSAM_AID, PSAM_KEYS
from hsm_stub.suites import CipherSuite, suite_for
from simulator.cardfile import register_kind
from simulator.cardos.card import CardOS, SwError
from simulator.cardos.filesystem import MF_FID, DedicatedFile

PsamKeys = dict[tuple[int, int], tuple[str, bytes]]


@register_kind
class PsamCard(CardOS):
    kind: ClassVar[str] = "psam"
    INS_TABLE: ClassVar[dict[int, str]] = {
        **CardOS.INS_TABLE,
        0xDE: "cmd_init_key",
        0xFA: "cmd_crypt",
        0xCA: "cmd_key_check_value",
    }
    CLASSES: ClassVar[frozenset[int]] = frozenset({0x00, 0x80, 0xBF})

    def __init__(self, mf: DedicatedFile, *, keys: PsamKeys, **kwargs: Any) -> None:
        super().__init__(mf, **kwargs)
        self.keys = dict(keys)

    def _reset_state(self) -> None:
        super()._reset_state()
        self.working: tuple[CipherSuite, bytes] | None = None

    def _in_psam_app(self) -> None:
        if self.current_df.aid != PSAM_AID:
            raise SwError(0x6985)

    def cmd_init_key(self, c: Command) -> bytes:
        """BF DE: P1 = levels << 5 | key type, P2 = key id, data = factors [‖ R]."""
        self._in_psam_app()
        if c.cla != 0xBF:
            raise SwError(0x6E00)
        levels, key_type = c.p1 >> 5, c.p1 & 0x1F
        if not 1 <= levels <= 3 or len(c.data) not in (8 * levels, 8 * levels + 8):
            raise SwError(0x6700)
        entry = self.keys.get((key_type, c.p2))
        if entry is None:
            raise SwError(0x6A88)
        suite = suite_for(entry[0])
        key = entry[1]
        factors = [c.data[i : i + 8] for i in range(0, 8 * levels, 8)]  # card first
        for factor in reversed(factors):  # derivation runs from the root down
            key = suite.diversify(key, factor)
        if len(c.data) > 8 * levels:
            key = suite.session_key(key, c.data[8 * levels :])
        self.working = (suite, key)
        return b""

    def cmd_crypt(self, c: Command) -> bytes:
        """80 FA: P1 00 encrypt (ECB, whole blocks); P1 05 MAC of IV ‖ padded data."""
        if c.cla != 0x80:
            raise SwError(0x6E00)
        if self.working is None:
            raise SwError(0x6985)
        suite, key = self.working
        if not c.data or len(c.data) % suite.block:
            raise SwError(0x6700)
        if c.p1 == 0x00:
            return suite.encrypt(key, c.data)
        if c.p1 == 0x05:
            iv, padded = c.data[: suite.block], c.data[suite.block :]
            if not padded:
                raise SwError(0x6700)
            return suite.mac_padded(key, padded, iv)[:MAC_LENGTH]
        raise SwError(0x6A86)

    def cmd_key_check_value(self, c: Command) -> bytes:
        """GET DATA P1 = key type, P2 = key id: the key's KCV."""
        self._in_psam_app()
        entry = self.keys.get((c.p1, c.p2))
        if entry is None:
            raise SwError(0x6A88)
        return suite_for(entry[0]).kcv(entry[1])

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["keys"] = [
            {"type": t, "id": i, "algorithm": alg, "value": value.hex().upper()}
            for (t, i), (alg, value) in sorted(self.keys.items())
        ]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PsamCard:
        base = CardOS.from_dict(d)
        keys = {
            (int(k["type"]), int(k["id"])): (str(k["algorithm"]), bytes.fromhex(k["value"]))
            for k in d.get("keys", [])
        }
        return cls(
            base.mf,
            keys=keys,
            atr=base.atr,
            protocol=base.protocol,
            extended_apdus=base.extended_apdus,
        )


def new_psam(
    keystore: Keystore,
    *,
    role: str = "office",
    protocol: str = "T0",
    serial: bytes | None = None,
) -> PsamCard:
    """A PSAM loaded with the keystore's root keys that ``role`` may use (``ROLE_USAGES``):
    an office PSAM — the default — holds no update or master key. Test keystores only: a
    production key is never written in clear into a card file
    (:meth:`Keystore.check_exportable`)."""
    if role not in ROLE_USAGES:
        raise KeystoreError(f"unknown role {role!r}; known: {', '.join(ROLE_USAGES)}")
    keystore.check_exportable()
    mf = DedicatedFile(MF_FID, "MF")
    mf.add(DedicatedFile(0x1001, "PSAM", aid=PSAM_AID))
    keys: PsamKeys = {}
    usable = {info.label for info in keystore.list() if info.usage in ROLE_USAGES[role]}
    for label, slot in PSAM_KEYS.items():
        if label in usable:
            keys[slot] = keystore.export_for_issuance(label)
    serial = serial or bytes.fromhex("5053414D00000001")
    atr = build_atr(0 if protocol == "T0" else 1, b"\x86\x53\x41" + serial)
    return PsamCard(mf, keys=keys, atr=atr, protocol="T0" if protocol == "T0" else "T1")
