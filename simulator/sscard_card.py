"""The virtual 社会保障卡: the card OS with the SSSE personality (docs/chip-application.md §1-§5).

* Access: UPDATE of EF05/EF06/EF08 needs a successful EXTERNAL AUTHENTICATE with the update
  key since SSSE was last selected; reads need VERIFY first where the profile says so. The
  security state is cleared on reselecting SSSE or the MF and on reset.
* Keys are per card (diversified by the card factory from the root keys); each has an error
  counter: a wrong cryptogram answers ``63Cx``, the last one locks the key (``6983``), a good
  one restores the counter. GET CHALLENGE is single-use.
* PIN: VERIFY (``63Cx``/``6983``; no data = ask the tries left), CHANGE PIN ``80 5E``,
  PIN UNBLOCK / RESET ``84 24 00 00|01`` with the MAC and PIN block checked.
* INTERNAL AUTHENTICATE ``00 88 00 00 Lc <1 or 2 blocks> [Le]`` (spec-3.00 cards, those
  given an ``internal_key``): the data enciphered ECB under the card's internal-
  authentication key ([ours], docs/chip-application.md §4); ``6D00`` on a card without one.
  The data is the terminal's: the card neither needs nor spends a GET CHALLENGE. The Henan
  reader (SI_3rdCard ``SSCARDCtrl.cpp``, ``iReadCardBas_HSM_Step1``) sends GET CHALLENGE
  twice and then ``00 88 00 00 10`` with the two challenges (second ‖ first) and no Le — a
  case-3 command, so under T=0 the 16-byte answer waits behind ``61 10`` — and keeps the
  first 8 bytes of the answer to compare with its security module's.
* Record forms: the card can be made to refuse some addressing forms (``6A86``), as some
  regions' cards do.
* Tearing: power lost during the N-th next write — of EF data, of the PIN (change, reset,
  unblock) or of an error counter — and the card leaves the reader (``CardRemoved``). EF
  data (non-atomic memory) is left old, new, or half of each; the PIN and the counters are
  written atomically, so they are left old or new, never a mix. Error counters are counted
  down before a PIN or a cryptogram is compared and restored after a match, so pulling the
  card mid-command never saves a try.

All cryptography is :mod:`hsm_stub` code, shared with the service.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

from apdu.command import Command
from apdu.errors import CardRemoved
from hsm_stub import cryptograms
from hsm_stub.errors import BadInput
from hsm_stub.mac import unpad_method2
from hsm_stub.suites import suite_for
from simulator.cardfile import register_kind
from simulator.cardos.card import Access, CardOS, SwError
from simulator.cardos.filesystem import DedicatedFile, File, RecordEF, TransparentEF

TearMode = Literal["none", "old", "new", "partial"]


@dataclass
class CardKey:
    algorithm: str
    value: bytes
    tries: int
    max_tries: int


@dataclass
class PinState:
    value: bytes
    tries: int
    max_tries: int


WriteKind = Literal["ef", "pin", "counter"]


@dataclass
class Tearing:
    """Power lost during the ``after_writes + 1``-th next write of the given ``kind`` (any
    kind when None): EF data (``ef``), the PIN value (``pin``: change, reset, unblock), or an
    error counter (``counter``: PIN and key tries)."""

    mode: TearMode = "none"
    after_writes: int = 0  # writes that succeed before the torn one
    kind: WriteKind | None = None


@dataclass
class SsseConfig:
    """The card's access rules: which external-authentication key guards the update of each
    file (``update_keys``: FID → key id), which files a VERIFY must precede reading
    (``read_pin_fids``), the PIN's key for unblock/reset, and the record-addressing forms
    the card accepts."""

    ssse_aid: bytes
    update_keys: dict[int, int]
    pin_key: int
    read_pin_fids: tuple[int, ...] = ()
    forms: tuple[str, ...] = ("sfi", "tag", "number")


@register_kind
class SocialSecurityCardOS(CardOS):
    kind: ClassVar[str] = "sscard"
    INS_TABLE: ClassVar[dict[int, str]] = {
        **CardOS.INS_TABLE,
        0x82: "cmd_external_authenticate",
        0x20: "cmd_verify",
        0x5E: "cmd_change_pin",
        0x24: "cmd_pin_unblock_or_reset",
        0x88: "cmd_internal_authenticate",
    }
    CLASSES: ClassVar[frozenset[int]] = frozenset({0x00, 0x80, 0x84})

    def __init__(
        self,
        mf: DedicatedFile,
        *,
        config: SsseConfig,
        keys: dict[int, CardKey],
        pin: PinState,
        internal_key: CardKey | None = None,
        tearing: Tearing | None = None,
        **kwargs: Any,
    ) -> None:
        self.config = config
        self.keys = keys
        self.pin = pin
        self.internal_key = internal_key  # INTERNAL AUTHENTICATE (spec-3.00 cards); None: 6D00
        self.tearing = tearing or Tearing()
        super().__init__(mf, **kwargs)

    def _reset_state(self) -> None:
        super()._reset_state()
        self.authenticated: set[int] = set()
        self.pin_verified = False

    def on_select(self, df: DedicatedFile) -> None:
        if df is self.mf or df.aid == self.config.ssse_aid:
            self.authenticated.clear()
            self.pin_verified = False

    def check_access(self, op: Access, f: File) -> None:
        if f.fid is None:
            return
        key = self.config.update_keys.get(f.fid)
        if op == "update" and key is not None and key not in self.authenticated:
            raise SwError(0x6982)
        if op == "read" and f.fid in self.config.read_pin_fids and not self.pin_verified:
            raise SwError(0x6982)

    # ----------------------------------------------------------------- records

    def cmd_read_record(self, c: Command) -> bytes:
        form = "sfi" if c.p2 >> 3 else ("tag" if c.p2 & 0x07 == 0 else "number")
        if form not in self.config.forms:
            raise SwError(0x6A86)
        return super().cmd_read_record(c)

    def _tear(self, kind: WriteKind) -> bool:
        """True when this write is the torn one."""
        if self.tearing.mode == "none" or self.tearing.kind not in (None, kind):
            return False
        if self.tearing.after_writes > 0:
            self.tearing.after_writes -= 1
            return False
        return True

    def _power_lost(self) -> None:
        self.tearing = Tearing()
        self._changed()
        raise CardRemoved("simulated power loss during a write")

    def write_record(self, ef: RecordEF, index: int, data: bytes) -> None:
        if not self._tear("ef"):
            super().write_record(ef, index, data)
            return
        old = bytes(ef.records[index])
        if self.tearing.mode == "new":
            ef.records[index] = bytearray(data)
        elif self.tearing.mode == "partial":
            half = len(data) // 2
            ef.records[index] = bytearray(data[:half] + old[half:])
        self._power_lost()

    def write_binary(self, ef: TransparentEF, offset: int, data: bytes) -> None:
        if not self._tear("ef"):
            super().write_binary(ef, offset, data)
            return
        if self.tearing.mode == "new":
            ef.data[offset : offset + len(data)] = data
        elif self.tearing.mode == "partial":
            half = len(data) // 2
            ef.data[offset : offset + half] = data[:half]
        self._power_lost()

    def write_secret(self, kind: WriteKind, apply: Callable[[], None]) -> None:
        """One write of the card's secret state — the PIN value with its counter, or an
        error counter. Such objects are written atomically (the anti-tearing of a card's PIN
        and key objects: a shadow copy committed in one step), so a torn write leaves the old
        state (modes ``old`` and ``partial``) or the new one (``new``), never a mix."""
        if self._tear(kind):
            if self.tearing.mode == "new":
                apply()
            self._power_lost()
        apply()
        self._changed()

    # ----------------------------------------------------------------- authentication

    def _take_challenge(self) -> bytes:
        challenge = self.challenge
        self.challenge = None  # single use
        if challenge is None or len(challenge) != 8:
            raise SwError(0x6985)
        return challenge

    def cmd_external_authenticate(self, c: Command) -> bytes:
        """00 82 00 KID Lc E ‖ A (docs/chip-application.md §4)."""
        if c.cla != 0x00 or c.p1 != 0x00:
            raise SwError(0x6A86)
        key = self.keys.get(c.p2)
        if key is None:
            raise SwError(0x6A88)
        if key.tries == 0:
            raise SwError(0x6983)
        suite = suite_for(key.algorithm)
        if len(c.data) != 2 * suite.block:
            raise SwError(0x6700)
        challenge = self._take_challenge()
        auth_factor = c.data[suite.block :]
        expected = cryptograms.external_auth_data(suite, key.value, challenge, auth_factor)
        tries = key.tries - 1  # counted down before the comparison, restored after a match
        self.write_secret("counter", lambda: setattr(key, "tries", tries))
        if hmac.compare_digest(expected, c.data):
            self.write_secret("counter", lambda: setattr(key, "tries", key.max_tries))
            self.authenticated.add(c.p2)
            return b""
        raise SwError(0x63C0 | key.tries if key.tries else 0x6983)

    def cmd_internal_authenticate(self, c: Command) -> bytes:
        """00 88 00 00 Lc data [Le]: ECB-encrypt(K_internal, data), data 1 or 2 blocks
        (:func:`hsm_stub.cryptograms.internal_auth_response`); 6D00 without the key."""
        key = self.internal_key
        if key is None:
            raise SwError(0x6D00)
        if c.cla != 0x00:
            raise SwError(0x6E00)
        if c.p1 != 0x00 or c.p2 != 0x00:
            raise SwError(0x6A86)
        try:
            return cryptograms.internal_auth_response(suite_for(key.algorithm), key.value, c.data)
        except BadInput:
            raise SwError(0x6700) from None

    # ----------------------------------------------------------------- PIN

    def _check_pin(self, candidate: bytes) -> None:
        if self.pin.tries == 0:
            raise SwError(0x6983)
        self.pin_verified = False
        tries = self.pin.tries - 1  # counted down first: pulling the card cannot save a try
        self.write_secret("counter", lambda: setattr(self.pin, "tries", tries))
        if hmac.compare_digest(candidate, self.pin.value):
            self.write_secret("counter", lambda: setattr(self.pin, "tries", self.pin.max_tries))
            self.pin_verified = True
            return
        raise SwError(0x63C0 | self.pin.tries if self.pin.tries else 0x6983)

    def cmd_verify(self, c: Command) -> bytes:
        """00 20 00 00 03 PIN; without data, the tries left (ISO/IEC 7816-4 §11.5.6)."""
        if c.cla != 0x00:
            raise SwError(0x6E00)
        if not c.data:
            if self.pin.tries == 0:
                raise SwError(0x6983)
            if self.pin_verified:
                return b""
            raise SwError(0x63C0 | self.pin.tries)
        if len(c.data) != len(self.pin.value):
            raise SwError(0x6700)
        self._check_pin(c.data)
        return b""

    def cmd_change_pin(self, c: Command) -> bytes:
        """80 5E 01 00 07 old FF new (docs/chip-application.md §2)."""
        n = len(self.pin.value)
        if c.cla != 0x80 or c.p1 != 0x01:
            raise SwError(0x6A86)
        if len(c.data) != 2 * n + 1 or c.data[n] != 0xFF:
            raise SwError(0x6700)
        self._check_pin(c.data[:n])
        self.write_secret("pin", lambda: setattr(self.pin, "value", c.data[n + 1 :]))
        return b""

    def cmd_pin_unblock_or_reset(self, c: Command) -> bytes:
        """84 24 00 00 04 MAC (unblock), 84 24 00 01 Lc enc(03 ‖ PIN ‖ 80…) ‖ MAC (reset)."""
        if c.cla != 0x84 or c.p1 != 0x00 or c.p2 not in (0x00, 0x01):
            raise SwError(0x6A86)
        key = self.keys.get(self.config.pin_key)
        if key is None:
            raise SwError(0x6A88)
        suite = suite_for(key.algorithm)
        challenge = self._take_challenge()
        if not cryptograms.MAC_LENGTH <= len(c.data) <= 255:  # its MAC input has a 1-byte Lc
            raise SwError(0x6700)
        body, mac = c.data[: -cryptograms.MAC_LENGTH], c.data[-cryptograms.MAC_LENGTH :]
        mac_input = c.header + bytes((len(c.data),)) + body
        expected = cryptograms.command_mac(suite, key.value, challenge, mac_input)
        if not hmac.compare_digest(expected, mac):
            raise SwError(0x6988)
        if c.p2 == 0x01:
            if len(body) != suite.block:
                raise SwError(0x6700)
            try:  # 03 ‖ PIN ‖ 80 00… : a length byte, the PIN, padding method 2
                plain = unpad_method2(suite.decrypt(key.value, body), suite.block)
            except BadInput:
                raise SwError(0x6A80) from None
            n = len(self.pin.value)
            if len(plain) != 1 + n or plain[0] != n:
                raise SwError(0x6A80)
        value = plain[1:] if c.p2 == 0x01 else self.pin.value
        self.write_secret("pin", lambda: self._set_pin(value, self.pin.max_tries))
        return b""

    def _set_pin(self, value: bytes, tries: int) -> None:
        self.pin.value, self.pin.tries = value, tries

    # ----------------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["ssse"] = {
            "ssse_aid": self.config.ssse_aid.hex().upper(),
            "update_keys": {f"{f:04X}": k for f, k in self.config.update_keys.items()},
            "pin_key": self.config.pin_key,
            "read_pin_fids": [f"{f:04X}" for f in self.config.read_pin_fids],
            "forms": list(self.config.forms),
        }
        d["keys"] = {f"{kid:02X}": _key_to_dict(k) for kid, k in self.keys.items()}
        d["pin"] = {**asdict(self.pin), "value": self.pin.value.hex().upper()}
        if self.internal_key is not None:
            d["internal_key"] = _key_to_dict(self.internal_key)
        d["tearing"] = asdict(self.tearing)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SocialSecurityCardOS:
        base = CardOS.from_dict(d)
        s = d["ssse"]
        config = SsseConfig(
            ssse_aid=bytes.fromhex(s["ssse_aid"]),
            update_keys={int(f, 16): int(k) for f, k in s["update_keys"].items()},
            pin_key=int(s["pin_key"]),
            read_pin_fids=tuple(int(f, 16) for f in s.get("read_pin_fids", [])),
            forms=tuple(s["forms"]),
        )
        keys = {int(kid, 16): _key_from_dict(k) for kid, k in d["keys"].items()}
        internal = d.get("internal_key")
        p = d["pin"]
        pin = PinState(bytes.fromhex(p["value"]), int(p["tries"]), int(p["max_tries"]))
        return cls(
            base.mf,
            config=config,
            keys=keys,
            pin=pin,
            internal_key=_key_from_dict(internal) if internal else None,
            tearing=Tearing(**d.get("tearing", {})),
            atr=base.atr,
            protocol=base.protocol,
            extended_apdus=base.extended_apdus,
            data_objects=base.data_objects,
            quirks=base.quirks,
        )


def _key_to_dict(k: CardKey) -> dict[str, Any]:
    return {**asdict(k), "value": k.value.hex().upper()}


def _key_from_dict(k: dict[str, Any]) -> CardKey:
    return CardKey(k["algorithm"], bytes.fromhex(k["value"]), int(k["tries"]), int(k["max_tries"]))
