"""A generic ISO/IEC 7816-4 card OS: file tree, SELECT, READ/UPDATE BINARY, READ/UPDATE/
APPEND RECORD (by number, by identifier = TLV tag, by SFI), GET CHALLENGE, GET DATA and
GET RESPONSE, behind an INS → handler table (the shape of vsmartcard's
``VirtualSmartcard.py``; its code is not used).

Personalities (the 社保卡, the PSAM) subclass :class:`CardOS`, extend ``INS_TABLE`` and
override the hooks :meth:`check_access` and :meth:`on_select`.

T=0 behaviour (``protocol="T0"``) follows ISO/IEC 7816-3 §10.3.4 as seen from the
application: a case-3 or case-4 command that produces data answers ``61xx`` and the data
waits for GET RESPONSE; a case-2 command gets at most Ne bytes at once, the rest by ``61xx``.
Under T=1 a case-4 command answers its data directly.

Default answers follow the real card of the public Z390Kylin log (docs/chip-application.md
§1): SELECT of an EF by FID answers a bare ``9000`` (no FCI, no ``61xx``), whatever P2 asks;
SELECT of a DF answers its FCI (``61xx`` under T=0); READ RECORD with an Le larger than the
record answers the record and ``9000``. ``6Cxx`` is kept where ISO/IEC 7816-4 §5.1.3 wants
it — an Le *shorter* than a record (a record is never cut), and GET RESPONSE asking more than
is held (ISO/IEC 7816-3 §12.2.2). READ BINARY keeps its ISO behaviour: Le bytes from the
offset, or ``6282`` with the bytes up to the end of the file. Each card may depart from these
defaults by its answer quirks (``self.quirks``, simulator/quirks.py): ``fci-on-select-ef``,
``strict-le``, ``always-61xx``, ``sfi-only``, ``max-le=N``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar, Literal

from apdu.command import Case, Command
from apdu.errors import MalformedCommand
from apdu.tlv import encode_ber
from simulator.cardos.filesystem import (
    MF_FID,
    DedicatedFile,
    ElementaryFile,
    File,
    RecordEF,
    TransparentEF,
    from_dict,
    to_dict,
)
from simulator.quirks import parse_quirks

ProtocolName = Literal["T0", "T1"]
Access = Literal["read", "update"]


class SwError(Exception):
    """Raised by a handler to answer a status word (with optional data for warnings)."""

    def __init__(self, sw: int, data: bytes = b"") -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw
        self.data = data


def fit_le(command: Command, data: bytes) -> bytes:
    """Apply Ne to a response: all of it when Ne is absent or the maximum (``00``), exactly
    Ne bytes when Ne equals the length, otherwise ``6Cxx`` with the right length."""
    le = command.le
    if le is None or le in (256, 65_536) or le == len(data):
        return data
    if le > len(data):
        raise SwError(0x6C00 | len(data)) if len(data) < 256 else SwError(0x6700)
    raise SwError(0x6C00 | (len(data) & 0xFF)) if len(data) <= 256 else SwError(0x6700)


class CardOS:
    """A card operating system answering raw APDUs."""

    kind: ClassVar[str] = "iso7816"

    INS_TABLE: ClassVar[dict[int, str]] = {
        0xA4: "cmd_select",
        0xB0: "cmd_read_binary",
        0xD6: "cmd_update_binary",
        0xB2: "cmd_read_record",
        0xDC: "cmd_update_record",
        0xE2: "cmd_append_record",
        0x84: "cmd_get_challenge",
        0xCA: "cmd_get_data",
        0xC0: "cmd_get_response",
    }
    CLASSES: ClassVar[frozenset[int]] = frozenset({0x00})

    def __init__(
        self,
        mf: DedicatedFile,
        *,
        atr: bytes,
        protocol: ProtocolName = "T0",
        extended_apdus: bool = False,
        data_objects: dict[int, bytes] | None = None,
        quirks: tuple[str, ...] = (),
    ) -> None:
        if mf.fid != MF_FID:
            raise ValueError("the root of the file tree must be the MF (3F00)")
        self.mf = mf
        self.atr = atr
        self.protocol: ProtocolName = protocol
        self.extended_apdus = extended_apdus
        self.data_objects: dict[int, bytes] = dict(data_objects or {})
        self.quirks = quirks  # simulator/quirks.py: NAME or NAME=N, as given to sim new-card
        self.on_change: Callable[[], None] | None = None
        self.powered = False
        self._reset_state()

    @property
    def quirks(self) -> tuple[str, ...]:
        """The card's quirks (simulator/quirks.py), ``NAME`` or ``NAME=N``."""
        return self._quirks

    @quirks.setter
    def quirks(self, quirks: tuple[str, ...]) -> None:
        self._quirk_values = parse_quirks(quirks)  # ValueError on an unknown quirk
        self._quirks = tuple(quirks)

    def has_quirk(self, name: str) -> bool:
        return name in self._quirk_values

    @property
    def max_le(self) -> int | None:
        """The most bytes one READ BINARY / READ RECORD may ask (quirk ``max-le=N``)."""
        return self._quirk_values.get("max-le")

    def _check_max_le(self, c: Command) -> None:
        """``6700`` when the command asks more than ``max-le`` bytes (no Le: 256)."""
        limit = self.max_le
        if limit is not None and (c.le if c.le is not None else 256) > limit:
            raise SwError(0x6700)

    # ----------------------------------------------------------------- power

    def _reset_state(self) -> None:
        self.current_df: DedicatedFile = self.mf
        self.current_ef: ElementaryFile | None = None
        self.pending: bytes = b""  # data waiting for GET RESPONSE
        self.challenge: bytes | None = None

    def power_on(self) -> bytes:
        """Cold or warm reset: volatile state is cleared, the ATR returned."""
        self._reset_state()
        self.powered = True
        return self.atr

    def power_off(self) -> None:
        self._reset_state()
        self.powered = False

    # ----------------------------------------------------------------- dispatch

    def process(self, raw: bytes) -> bytes:
        """Answer one C-APDU (raw bytes) with an R-APDU (raw bytes)."""
        try:
            command = Command.from_bytes(raw)
        except MalformedCommand:
            self.pending = b""
            return b"\x67\x00"
        if command.ins != 0xC0:
            self.pending = b""
        if self.protocol == "T0" and command.case == Case.NO_DATA_NO_LE:
            # A T=0 reader sends a 4-byte command with P3 = 00, which the card cannot tell
            # from Ne = 256 (ISO/IEC 7816-3 §12.2.2): a command that has data answers it.
            command = replace(command, le=256)
        try:
            data = self.dispatch(command)
        except SwError as exc:
            return exc.data + exc.sw.to_bytes(2, "big")
        return self._deliver(command, data)

    def dispatch(self, command: Command) -> bytes:
        if command.cla not in self.CLASSES and command.ins not in (0xC0,):
            raise SwError(0x6E00)
        if command.is_extended and (not self.extended_apdus or self.max_le is not None):
            raise SwError(0x6700)
        name = self.INS_TABLE.get(command.ins)
        if name is None:
            raise SwError(0x6D00)
        handler: Callable[[Command], bytes] = getattr(self, name)
        return handler(command)

    def _deliver(self, command: Command, data: bytes) -> bytes:
        if not data:
            return b"\x90\x00"
        if command.ins == 0xC0:
            return data  # GET RESPONSE builds its own status word
        if self.has_quirk("always-61xx"):
            return self._hold(data)
        if self.protocol == "T0" and command.case in (Case.DATA_ONLY, Case.DATA_AND_LE):
            return self._hold(data)  # the reader never passed Le to a T=0 card
        if command.le is None:
            return b"\x90\x00"  # T=1 case 3: no response data expected
        if len(data) > command.le:
            self.pending = data[command.le :]
            return data[: command.le] + self._more_sw()
        return data + b"\x90\x00"

    def _hold(self, data: bytes) -> bytes:
        self.pending = data
        return self._more_sw()

    def _more_sw(self) -> bytes:
        n = len(self.pending)
        return bytes((0x61, n if n < 256 else 0x00))

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # ----------------------------------------------------------------- hooks

    def check_access(self, op: Access, f: File) -> None:
        """Raise ``SwError(0x6982)`` when ``op`` on ``f`` is not allowed now."""

    def on_select(self, df: DedicatedFile) -> None:
        """Called when a DF becomes current (personalities clear security state here)."""

    # ----------------------------------------------------------------- SELECT

    def cmd_select(self, c: Command) -> bytes:
        """SELECT (ISO/IEC 7816-4 §11.2.2): P1 00 FID, 01 child DF, 02 EF, 03 parent, 04 by
        DF name; P2 00 FCI, 04 FCP, 0C no data; first occurrence only (P2's occurrence bits
        matter by DF name only: a FID names one file).

        An EF selected by FID answers a bare ``9000`` whatever P2 asks, as the real card
        does (docs/chip-application.md §1) — its FCI with quirk ``fci-on-select-ef``, and
        ``6A82`` with quirk ``sfi-only``. A DF answers its FCI unless P2 is ``0C``."""
        if c.p1 == 0x04 and c.p2 & 0x03:
            raise SwError(0x6A86)
        target: File | None
        if c.p1 == 0x00:
            target = self._select_fid(c.data)
        elif c.p1 in (0x01, 0x02):
            if len(c.data) != 2:
                raise SwError(0x6700)
            target = self.current_df.child_by_fid(int.from_bytes(c.data, "big"))
            want = DedicatedFile if c.p1 == 0x01 else ElementaryFile
            if target is not None and not isinstance(target, want):
                target = None
        elif c.p1 == 0x03:
            target = self.current_df.parent or self.mf
        elif c.p1 == 0x04:
            target = self._select_aid(c.data)
        else:
            raise SwError(0x6A86)
        if target is None or (isinstance(target, ElementaryFile) and self.has_quirk("sfi-only")):
            raise SwError(0x6A82)
        if isinstance(target, DedicatedFile):
            self.current_df, self.current_ef = target, None
            self.on_select(target)
        else:
            assert isinstance(target, ElementaryFile)
            self.current_ef = target
            if target.parent is not None:
                self.current_df = target.parent
        if c.p2 & 0x0C == 0x0C:
            return b""
        if isinstance(target, ElementaryFile) and not self.has_quirk("fci-on-select-ef"):
            return b""
        return self.fci(target)

    def _select_fid(self, data: bytes) -> File | None:
        if not data:
            return self.mf
        if len(data) != 2:
            raise SwError(0x6700)
        fid = int.from_bytes(data, "big")
        if fid == MF_FID:
            return self.mf
        if self.current_df.fid == fid:
            return self.current_df
        found = self.current_df.child_by_fid(fid)
        if found is None and self.current_df.parent is not None:
            parent = self.current_df.parent
            found = parent if parent.fid == fid else parent.child_by_fid(fid)
        return found

    def _select_aid(self, aid: bytes) -> File | None:
        if not aid:
            raise SwError(0x6700)
        dfs = [f for f in self.mf.walk() if isinstance(f, DedicatedFile) and f.aid]
        exact = next((f for f in dfs if f.aid == aid), None)
        return exact or next((f for f in dfs if f.aid and f.aid.startswith(aid)), None)

    def fci(self, f: File) -> bytes:
        """FCI template ``6F`` (ISO/IEC 7816-4 §5.3.3): 84 DF name or 83 FID, A5 proprietary
        for a DF; 82 descriptor, 83 FID, 80 size, 88 SFI for an EF."""
        parts = b""
        if isinstance(f, DedicatedFile):
            if f.aid:
                parts += encode_ber(0x84, f.aid)
            elif f.fid is not None:
                parts += encode_ber(0x83, f.fid.to_bytes(2, "big"))
            if f.proprietary_fci:
                parts += encode_ber(0xA5, f.proprietary_fci)
        else:
            descriptor = b"\x01" if isinstance(f, TransparentEF) else b"\x04"
            parts += encode_ber(0x82, descriptor)
            if f.fid is not None:
                parts += encode_ber(0x83, f.fid.to_bytes(2, "big"))
            if isinstance(f, TransparentEF):
                parts += encode_ber(0x80, f.size.to_bytes(2, "big"))
            if isinstance(f, ElementaryFile) and f.sfi is not None:
                parts += encode_ber(0x88, bytes((f.sfi,)))
        return encode_ber(0x6F, parts)

    # ----------------------------------------------------------------- binary

    def _ef_for(self, sfi: int, kind: type[ElementaryFile]) -> ElementaryFile:
        if sfi:
            ef = self.current_df.ef_by_sfi(sfi)
            if ef is None:
                raise SwError(0x6A82)
            self.current_ef = ef
        elif self.current_ef is None:
            raise SwError(0x6986)
        if not isinstance(self.current_ef, kind):
            raise SwError(0x6981)
        return self.current_ef

    def _binary_target(self, c: Command) -> tuple[TransparentEF, int]:
        if c.p1 & 0x80:
            ef = self._ef_for(c.p1 & 0x1F, TransparentEF)
            offset = c.p2
        else:
            ef = self._ef_for(0, TransparentEF)
            offset = (c.p1 << 8) | c.p2
        assert isinstance(ef, TransparentEF)
        return ef, offset

    def cmd_read_binary(self, c: Command) -> bytes:
        """READ BINARY (§11.3.3), offset in P1-P2 or SFI in P1 with offset P2."""
        ef, offset = self._binary_target(c)
        self.check_access("read", ef)
        if c.le is None:
            raise SwError(0x6700)
        self._check_max_le(c)
        if offset >= ef.size:
            raise SwError(0x6B00)
        chunk = bytes(ef.data[offset : offset + c.le])
        if len(chunk) < c.le and c.le not in (256, 65_536):
            raise SwError(0x6282, chunk)
        return chunk

    def cmd_update_binary(self, c: Command) -> bytes:
        """UPDATE BINARY (§11.3.5)."""
        ef, offset = self._binary_target(c)
        self.check_access("update", ef)
        if not c.data:
            raise SwError(0x6700)
        if offset > ef.size:
            raise SwError(0x6B00)
        if offset + len(c.data) > ef.size:
            raise SwError(0x6A84)
        self.write_binary(ef, offset, c.data)
        return b""

    def write_binary(self, ef: TransparentEF, offset: int, data: bytes) -> None:
        """The memory write of UPDATE BINARY (a tearing model overrides this)."""
        ef.data[offset : offset + len(data)] = data
        self._changed()

    # ----------------------------------------------------------------- records

    def _record_index(self, c: Command, ef: RecordEF) -> int:
        mode = c.p2 & 0x07
        if mode == 0x04:  # record number P1
            if c.p1 == 0 or c.p1 > len(ef.records):
                raise SwError(0x6A83)
            return c.p1 - 1
        if mode == 0x00:  # first record with identifier P1 (the simple-TLV tag)
            index = ef.find_by_identifier(c.p1)
            if index is None:
                raise SwError(0x6A83)
            return index
        raise SwError(0x6A86)

    def _record_ef(self, c: Command) -> RecordEF:
        ef = self._ef_for(c.p2 >> 3, RecordEF)
        assert isinstance(ef, RecordEF)
        return ef

    def cmd_read_record(self, c: Command) -> bytes:
        """READ RECORD (§11.3.4): P2 low bits 100 = number P1, 000 = identifier P1; P2 high
        5 bits = SFI (0: current EF). Le: :meth:`fit_record`."""
        ef = self._record_ef(c)
        self.check_access("read", ef)
        record = bytes(ef.records[self._record_index(c, ef)])
        self._check_max_le(c)
        return self.fit_record(c, record)

    def fit_record(self, c: Command, record: bytes) -> bytes:
        """Le against a whole record. No Le, Le ``00`` or an Le at least the record's length:
        the record (a larger Le is what the real card answers with the record and ``9000``,
        docs/chip-application.md §1 — Ne is a maximum, ISO/IEC 7816-4 §5.1). A shorter Le:
        ``6Cxx`` with the record's length (§5.1.3, wrong Le field: a record is read whole,
        never cut). With quirk ``strict-le``, any Le other than the length: :func:`fit_le`."""
        if self.has_quirk("strict-le"):
            return fit_le(c, record)
        le = c.le
        if le is None or le in (256, 65_536) or le >= len(record):
            return record
        raise SwError(0x6C00 | len(record)) if len(record) < 256 else SwError(0x6700)

    def cmd_update_record(self, c: Command) -> bytes:
        """UPDATE RECORD (§11.3.6) by number or identifier; a record by identifier must keep
        its tag."""
        ef = self._record_ef(c)
        self.check_access("update", ef)
        index = self._record_index(c, ef)
        if not c.data:
            raise SwError(0x6700)
        if len(c.data) > ef.record_size:
            raise SwError(0x6700)
        if c.p2 & 0x07 == 0x00 and c.data[0] != c.p1:
            raise SwError(0x6A80)
        self.write_record(ef, index, c.data)
        return b""

    def cmd_append_record(self, c: Command) -> bytes:
        """APPEND RECORD (§11.3.7)."""
        if c.p1 != 0 or c.p2 & 0x07:
            raise SwError(0x6A86)
        ef = self._record_ef(c)
        self.check_access("update", ef)
        if not c.data or len(c.data) > ef.record_size:
            raise SwError(0x6700)
        ef.records.append(bytearray())
        self.write_record(ef, len(ef.records) - 1, c.data)
        return b""

    def write_record(self, ef: RecordEF, index: int, data: bytes) -> None:
        """The memory write of UPDATE/APPEND RECORD (a tearing model overrides this)."""
        ef.records[index] = bytearray(data)
        self._changed()

    # ----------------------------------------------------------------- misc

    def cmd_get_challenge(self, c: Command) -> bytes:
        """GET CHALLENGE (§11.5.3): 4, 8 or 16 random bytes, remembered for authentication."""
        if c.p1 or c.p2:
            raise SwError(0x6A86)
        if c.le not in (4, 8, 16):
            raise SwError(0x6700)
        self.challenge = os.urandom(c.le)
        return self.challenge

    def cmd_get_data(self, c: Command) -> bytes:
        """GET DATA (§11.4.3) of a data object held by the card, tag in P1-P2."""
        tag = (c.p1 << 8) | c.p2
        if tag not in self.data_objects:
            raise SwError(0x6A88)
        return self.data_objects[tag]

    def cmd_get_response(self, c: Command) -> bytes:
        """GET RESPONSE (§11.6.2): hands out data held by a ``61xx`` answer. Ne larger than
        what is held answers ``6Cxx`` with the length held (ISO/IEC 7816-3 §12.2.2); when
        more than 255 bytes are held SW2 cannot say it, and the answer is ``6700`` (§5.1.3)."""
        if c.p1 or c.p2:
            raise SwError(0x6A86)
        if not self.pending:
            raise SwError(0x6985)
        ne = c.le or 256
        available = len(self.pending)
        if ne > available and ne not in (256, 65_536):
            raise SwError(0x6C00 | available if available < 256 else 0x6700)
        chunk, self.pending = self.pending[:ne], self.pending[ne:]
        return chunk + (self._more_sw() if self.pending else b"\x90\x00")

    # ----------------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form of the card's persistent state."""
        return {
            "kind": self.kind,
            "atr": self.atr.hex().upper(),
            "protocol": self.protocol,
            "extended_apdus": self.extended_apdus,
            "data_objects": {f"{t:04X}": v.hex().upper() for t, v in self.data_objects.items()},
            "quirks": list(self.quirks),
            "mf": to_dict(self.mf),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CardOS:
        mf = from_dict(d["mf"])
        if not isinstance(mf, DedicatedFile):
            raise ValueError("the card file's root is not a DF")
        return cls(
            mf,
            atr=bytes.fromhex(d["atr"]),
            protocol=d.get("protocol", "T0"),
            extended_apdus=d.get("extended_apdus", False),
            data_objects={
                int(t, 16): bytes.fromhex(v) for t, v in d.get("data_objects", {}).items()
            },
            quirks=tuple(d.get("quirks", ())),
        )
