"""Operations on a 社会保障卡 over an :class:`apdu.transport.Transport` and a
:class:`hsm_stub.module.SecurityModule` (docs/chip-application.md §1-§6).

The card is driven exactly as the public kiosk and reader code does: select SSSE by AID
(falling back to EF05 by FID when a card answers ``6A82``), select EFs as the real card's
trace does and accept a bare ``9000`` or an FCI, read records in any of the four forms of
docs/chip-application.md §1 — whichever the card accepts, in the profile's order, a record
number only trusted when the record carries the expected tag — authenticate with the file's
update key before writing, and never retry a failed external authentication: the card's key
counter is finite. Verification reads back everything written and authenticates with every
external-authentication key. Personalization and verification send nothing the card need not
answer (issue 14): SSSE without its FCI, files through their SFI where the profile allows it,
no second SELECT or authentication in one session, short APDUs decided once
(docs/chip-application.md "Card operations"). What the reader tolerates on real cards (no
4E, paddings, bytes GBK cannot decode, the photo's chunk size) is in
docs/chip-application.md "Reading real cards".
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apdu.command import Command, Response
from apdu.errors import TransportError
from apdu.status import (
    AuthenticationFailed,
    FileNotFound,
    FunctionNotSupported,
    IncompatibleFileStructure,
    InsNotSupported,
    PinBlocked,
    RecordNotFound,
    StatusError,
    WrongLength,
    WrongParameters,
    WrongPin,
)
from apdu.tlv import BerTlv, parse_ber, parse_simple
from apdu.transport import Transport
from hsm_stub.cryptograms import CardFactors
from hsm_stub.module import SecurityModule
from hsm_stub.suites import suite_for
from sscard.errors import (
    CardAuthenticationFailed,
    CardNotGenuine,
    InternalAuthenticationNotSupported,
    InvalidData,
    NotASocialSecurityCard,
    VerificationFailed,
)
from sscard.identifiers import serial_number
from sscard.profile import SFI_FORMS, CardProfile, FileRef, KeyRef, ReadForm
from sscard.records import (
    EF0D,
    EF05,
    EF19_RECORD,
    EF19_REGION,
    EF19_REGION_CODEC,
    NAME_LENGTH,
    Element,
    FieldWarning,
    HolderData,
    IssuerData,
    encode_record,
)

MF = bytes.fromhex("3F00")
JPEG_SOI = b"\xff\xd8"
JPEG_EOI = b"\xff\xd9"
# Status words by which a card refuses an addressing form rather than the record itself.
FORM_REFUSED = (
    WrongParameters,
    FunctionNotSupported,
    FileNotFound,
    IncompatibleFileStructure,
    RecordNotFound,
    InsNotSupported,
)

NUMBER_FORMS: tuple[ReadForm, ...] = ("number", "sfi-number")


def smaller_chunk(n: int) -> int:
    """The next chunk to try after ``6700``: the largest power of two below ``n``."""
    return 1 << ((n - 1).bit_length() - 1)


def pin_bcd(pin: str, length: int = 6) -> bytes:
    if not re.fullmatch(rf"[0-9]{{{length}}}", pin):  # ASCII digits: \d is any Unicode digit
        raise InvalidData(f"PIN 为 {length} 位数字 (a PIN is {length} digits)")
    return bytes.fromhex(pin)


@dataclass(frozen=True)
class Identity:
    atr: bytes
    sn: bytes
    fci: BerTlv | None


class SocialSecurityCard:
    """One connected card. ``region_code`` (6 digits) gives the diversification factors; for
    a personalized card it is read from the 卡识别码 when not given."""

    def __init__(
        self,
        transport: Transport,
        profile: CardProfile,
        hsm: SecurityModule | None = None,
        *,
        region_code: str | None = None,
        auth_factor: Callable[[bytes], bytes] | None = None,
        extended_apdus: bool | None = None,
    ) -> None:
        self.transport = transport
        self.profile = profile
        self.hsm = hsm
        self.region_code = region_code
        # A: some regions send the challenge, others a random block (docs/chip-application.md §4);
        # one cipher block: 8 bytes for 3DES, 16 for the SM4 suite.
        block = 16 if profile.algorithm == "SM4" else 8
        self.auth_factor = auth_factor or (lambda challenge: os.urandom(block))
        # short-APDU mode decided once: the caller's word (the reader), else the profile's;
        # a card refusing an extended APDU all the same (6700) is not sent another
        self.extended_apdus = profile.extended_apdus if extended_apdus is None else extended_apdus
        self.ef06 = profile.ef06_layout
        self._form: dict[int, ReadForm] = {}
        self._sn: bytes | None = None
        # the transport session in which SSSE was selected and is still current (None: not now)
        self._ssse_session: int | None = None
        # (ATR, key id) of every key that authenticated: the card holds it, proven once
        self._proven: set[tuple[bytes, int]] = set()

    # ----------------------------------------------------------------- basics

    def send(self, command: Command) -> Response:
        """One command; a SELECT, or a card lost or reset, ends what is known of SSSE being
        current."""
        if command.ins == 0xA4:
            self._ssse_session = None
        try:
            return self.transport.send(command)
        except TransportError:
            self._ssse_session = None
            raise

    @property
    def sn(self) -> bytes:
        if self._sn is None:
            self._sn = serial_number(self.transport.atr)
        return self._sn

    def identify(self, *, fci: bool = True) -> Identity:
        """ATR → SN, then SELECT SSSE (its FCI unless ``fci`` is False), or refuse a card
        without SSSE."""
        return Identity(self.transport.atr, self.sn, self.select_ssse(fci=fci))

    def select_ssse(self, *, fci: bool = True) -> BerTlv | None:
        """SELECT SSSE by AID — P2 ``00`` and its FCI as public readers do, or P2 ``0C`` and
        no FCI (nor its GET RESPONSE on T=0) when ``fci`` is False; on ``6A82`` fall back to
        EF05 by FID (one public reader does) before concluding this is not a social security
        card."""
        aid = self.profile.ssse_aid
        command = (
            Command(0x00, 0xA4, 0x04, 0x00, aid, le=256)
            if fci
            else Command(0x00, 0xA4, 0x04, 0x0C, aid)
        )
        try:
            data = self.send(command).data
        except FileNotFound:
            try:
                self.send(Command(0x00, 0xA4, 0x00, 0x0C, MF))
                self._select_ef(self.profile.ef05)
            except StatusError as exc:
                raise NotASocialSecurityCard(
                    "不是社会保障卡：卡片上没有 SSSE 应用 (not a social security card: SSSE "
                    f"not found, and no EF05 either — {exc.sw:04X})"
                ) from None
            return None
        self._ssse_session = self.transport.sessions
        objects = parse_ber(data) if data else []
        return objects[0] if objects else None

    def _select_ef(self, ef: FileRef) -> None:
        """SELECT by FID in the form of the real card's trace, ``00 A4 00 00 02 FID``
        (docs/chip-application.md §1): a bare ``9000`` and an FCI (``61xx`` under T=0, fetched
        by the transport) are both accepted; the FCI is not needed."""
        self.send(Command(0x00, 0xA4, 0x00, 0x00, ef.fid.to_bytes(2, "big")))

    def _sfi(self, ef: FileRef) -> int | None:
        """The SFI by which ``ef`` is written and read without a SELECT, where the profile
        allows it (:attr:`CardProfile.sfi_addressing`); None: SELECT it by FID first."""
        return ef.sfi if self.profile.sfi_addressing else None

    @staticmethod
    def _binary(
        ins: int, sfi: int | None, offset: int, data: bytes = b"", le: int | None = None
    ) -> Command:
        """READ/UPDATE BINARY at ``offset``: through the SFI (P1 = 80|SFI, ISO/IEC 7816-4
        §11.3.3) at offset 0 when one is given — which makes the EF current for the next
        offsets — else in the current EF (offset in P1-P2)."""
        if sfi is not None and offset == 0:
            return Command(0x00, ins, 0x80 | sfi, 0x00, data, le)
        return Command(0x00, ins, offset >> 8, offset & 0xFF, data, le)

    @property
    def factors(self) -> CardFactors:
        if self.region_code is None:
            self.region_code = self.read_element(self.profile.ef05, EF05[0])[:3].hex()
        return CardFactors.for_card(self.sn, self.region_code, self.profile.diversification_levels)

    def _hsm(self) -> SecurityModule:
        if self.hsm is None:
            raise InvalidData("this operation needs a security module")
        return self.hsm

    # ----------------------------------------------------------------- records

    def _read_form(self, form: ReadForm, ef: FileRef, element: Element) -> bytes:
        """One READ RECORD in ``form`` (docs/chip-application.md §1, the four forms), with Le the
        record's length as public readers send it; a card that wants another Le says so with
        ``6Cxx`` (the transport resends) or ``6700`` (resent here with Le ``00``)."""
        if form in SFI_FORMS:
            assert ef.sfi is not None
            p1, p2 = (
                (element.tag, ef.sfi << 3) if form == "sfi" else (element.record, ef.sfi << 3 | 4)
            )
        else:
            self._select_ef(ef)
            p1, p2 = (element.tag, 0x00) if form == "tag" else (element.record, 0x04)
        try:
            return self.send(Command(0x00, 0xB2, p1, p2, le=2 + element.length)).data
        except WrongLength:
            return self.send(Command(0x00, 0xB2, p1, p2, le=256)).data

    def read_record(self, ef: FileRef, element: Element) -> bytes:
        """The TLV record of ``element``, by the first addressing form the card accepts (the
        one that worked is remembered for the next reads of that file). A record read by
        number whose tag is not the element's means the card numbers its records otherwise:
        the next form is tried. RecordNotFound when the card says ``6A83`` in some form and
        no form finds the record."""
        forms = [f for f in self.profile.read_forms if ef.sfi is not None or f not in SFI_FORMS]
        if not forms:
            raise InvalidData(
                f"{element.name}: 读取方式均需 SFI，而该文件没有 (every read form of the "
                "profile needs an SFI this file lacks)"
            )
        known = self._form.get(ef.fid)
        if known is not None:
            forms.remove(known)
            forms.insert(0, known)
        errors: list[Exception] = []
        for form in forms:
            try:
                raw = self._read_form(form, ef, element)
            except FORM_REFUSED as exc:
                errors.append(exc)
                continue
            if form in NUMBER_FORMS and raw[:1] != bytes((element.tag,)):
                errors.append(
                    InvalidData(
                        f"{element.name}: 第 {element.record} 条记录的标签不是 "
                        f"{element.tag:02X} (record {element.record} does not hold tag "
                        f"{element.tag:02X}: the card numbers EF06 otherwise)"
                    )
                )
                continue
            self._form[ef.fid] = form
            return raw
        not_found = [e for e in errors if isinstance(e, RecordNotFound)]
        raise (not_found or errors)[-1]

    def read_element(self, ef: FileRef, element: Element) -> bytes:
        """The value of one element, its TLV checked (tag and length)."""
        raw = self.read_record(ef, element)
        try:
            objects = parse_simple(raw)
        except ValueError as exc:
            raise InvalidData(f"{element.name}: unreadable record ({exc})") from None
        if len(objects) != 1 or objects[0][0] != element.tag:
            raise InvalidData(f"{element.name}: record is not one TLV with tag {element.tag:02X}")
        value = objects[0][1]
        if len(value) != element.length:
            raise InvalidData(
                f"{element.name}: {len(value)} bytes where {element.length} are expected"
            )
        return value

    def read_values(
        self,
        ef: FileRef,
        elements: tuple[Element, ...],
        warnings: list[FieldWarning] | None = None,
    ) -> dict[str, Any]:
        """The decoded values of ``elements`` as a reader of real cards takes them (each
        codec's ``read``): what it tolerated is appended to ``warnings``, naming the field."""
        values: dict[str, Any] = {}
        for element in elements:
            value, notes = element.codec.read(self.read_element(ef, element))
            values[element.name] = value
            if warnings is not None:
                warnings.extend(FieldWarning(element.name, note) for note in notes)
        return values

    def read_issuer(self, warnings: list[FieldWarning] | None = None) -> IssuerData:
        return IssuerData(**self.read_values(self.profile.ef05, EF05, warnings))

    def read_holder(self, warnings: list[FieldWarning] | None = None) -> HolderData:
        """EF06 in the profile's layout. 姓名扩展 (4E) is read where the profile has it; a card
        that answers ``6A83`` there has none (second-generation cards, docs/chip-application.md
        §1) and the name is 姓名 alone."""
        present = tuple(e for e in self.ef06 if e.tag != 0x4E)
        values = self.read_values(self.profile.ef06, present, warnings)
        values["name"] += self._name_ext(warnings)
        return HolderData(**values)

    def _name_ext(self, warnings: list[FieldWarning] | None) -> str:
        element = next((e for e in self.ef06 if e.tag == 0x4E), None)
        if element is None:
            return ""
        try:
            return str(self.read_values(self.profile.ef06, (element,), warnings)["name_ext"])
        except RecordNotFound:
            return ""

    def read_ef0d(self, warnings: list[FieldWarning] | None = None) -> dict[str, Any] | None:
        """EF0D's 人员识别号 and 初次申请地代码 where the profile has EF0D (Jiangsu)."""
        if self.profile.ef0d is None:
            return None
        return self.read_values(self.profile.ef0d, EF0D, warnings)

    def read_insured_region(self, warnings: list[FieldWarning] | None = None) -> str | None:
        """参保地 (DF03/EF19, after VERIFY) where the profile has EF19 (Hunan), as HDOS_VC6
        ``ICCInter.cpp`` reads it: SELECT DF03 (``00A4010002DF03``), SELECT EF19, READ RECORD
        by tag 79; the code is bytes 7-9 of the value. SSSE is left; reselect it to go on. A
        card without the file (``6A82``/``6A83``) gives None and a warning, not an error."""
        ef = self.profile.ef19
        if ef is None:
            return None
        try:
            if ef.df is not None:
                self.send(Command(0x00, 0xA4, 0x01, 0x00, ef.df.to_bytes(2, "big")))
            self._select_ef(ef)
            raw = self.send(Command(0x00, 0xB2, EF19_RECORD.tag, 0x00, le=2 + EF19_RECORD.length))
        except (FileNotFound, RecordNotFound) as exc:  # a card of another layout: say so
            if warnings is not None:
                warnings.append(
                    FieldWarning(
                        "insured_region",
                        f"卡上没有参保地 (DF03/EF19)：{exc.sw:04X} (no 参保地 file on this card)",
                    )
                )
            return None
        objects = parse_simple(raw.data)
        if len(objects) != 1 or objects[0][0] != EF19_RECORD.tag or len(objects[0][1]) < 10:
            raise InvalidData("EF19：记录不是标签 79 (EF19 record is not tag 79)")
        digits, notes = EF19_REGION_CODEC.read(objects[0][1][EF19_REGION])
        if warnings is not None:
            warnings.extend(FieldWarning("insured_region", note) for note in notes)
        return str(digits)

    def write_records(
        self, ef: FileRef, elements: tuple[Element, ...], values: dict[str, Any]
    ) -> int:
        """UPDATE RECORD by number for each element, through the SFI where the profile allows
        it (P2 = SFI‖100), else in the EF selected first; returns the count."""
        sfi = self._sfi(ef)
        if sfi is None:
            self._select_ef(ef)
        p2 = 0x04 if sfi is None else sfi << 3 | 0x04
        for element in elements:
            record = encode_record(element, values[element.name])
            self.send(Command(0x00, 0xDC, element.record, p2, record))
        return len(elements)

    def write_issuer(self, issuer: IssuerData) -> None:
        issuer.validate()
        self.write_records(self.profile.ef05, EF05, issuer.values())

    def write_holder(self, holder: HolderData) -> None:
        """EF06 in the profile's layout; a name longer than 姓名 is refused on a profile
        without 姓名扩展 (4E)."""
        holder.validate()
        values = holder.values()
        if values["name_ext"] and not self.profile.has_name_ext:
            raise InvalidData(
                f"姓名超过 {NAME_LENGTH} 字节，而本地区卡片没有姓名扩展 (4E)，无法写入 "
                f"(the name needs more than {NAME_LENGTH} bytes and this profile has no 4E)"
            )
        self.write_records(self.profile.ef06, self.ef06, values)

    # ----------------------------------------------------------------- photo

    def write_photo(self, jpeg: bytes) -> None:
        """EF08 by UPDATE BINARY, through its SFI where the profile allows it (else SELECT by
        FID): one extended APDU when allowed, else short chunks (docs/chip-application.md §1,
        Z390Kylin)."""
        if not jpeg.startswith(JPEG_SOI):
            raise InvalidData("照片必须是 JPEG (the photo must be a JPEG)")
        if len(jpeg) > self.profile.photo_size:
            raise InvalidData(
                f"照片 {len(jpeg)} 字节，超过 {self.profile.photo_size} 字节上限 (photo too large)"
            )
        sfi = self._sfi(self.profile.ef08)
        if sfi is None:
            self._select_ef(self.profile.ef08)
        if self.extended_apdus and len(jpeg) > 255:
            try:
                self.send(self._binary(0xD6, sfi, 0, jpeg))
                return
            except (WrongLength, InsNotSupported):
                self.extended_apdus = False  # the card (or reader) takes none: chunk it
        step = self.profile.photo_chunk
        for offset in range(0, len(jpeg), step):
            self.send(self._binary(0xD6, sfi, offset, jpeg[offset : offset + step]))

    def read_photo(self) -> bytes:
        """EF08 up to the JPEG end marker (the whole file when it holds no JPEG): one extended
        READ BINARY where allowed, else chunks that adapt to what the card accepts
        (docs/chip-application.md "Reading real cards") — ``6700`` halves the chunk, ``6Cxx``
        (followed by the transport) gives the length the card names, and each read moves on
        by the bytes it returned. EF08 is read through its SFI where the profile allows it, and
        so is it on a card that cannot select it by FID."""
        ef = self.profile.ef08
        sfi = self._sfi(ef)
        if sfi is None:
            try:
                self._select_ef(ef)
            except FileNotFound:
                if ef.sfi is None:
                    raise
                sfi = ef.sfi
        size = self.profile.photo_size
        data = b""
        if self.extended_apdus and size > 256:
            try:
                data = self.send(self._binary(0xB0, sfi, 0, le=size)).data
            except (WrongLength, InsNotSupported):
                self.extended_apdus = False
        if not data:
            data = self._read_binary_chunks(sfi, size)
        if data.startswith(JPEG_SOI) and JPEG_EOI in data:
            return data[: data.index(JPEG_EOI) + 2]
        return data

    def _read_binary_chunks(self, sfi: int | None, size: int) -> bytes:
        chunk = self.profile.photo_chunk
        data = bytearray()
        while len(data) < size:
            offset = len(data)
            want = min(chunk, size - offset)
            try:
                got = self.send(self._binary(0xB0, sfi, offset, le=want)).data
            except WrongLength:
                if chunk == 1:
                    raise
                chunk = smaller_chunk(chunk)
                continue
            if not got:
                break
            if len(got) < want:  # 6Cxx: the card named what it gives; keep to it
                chunk = len(got)
            data += got
            if data.startswith(JPEG_SOI) and JPEG_EOI in data:
                break
        return bytes(data)

    # ----------------------------------------------------------------- keys and PIN

    def get_challenge(self) -> bytes:
        return self.send(Command(0x00, 0x84, 0x00, 0x00, le=8)).data

    def external_authenticate(self, key: KeyRef) -> None:
        """GET CHALLENGE, the cryptogram from the security module, EXTERNAL AUTHENTICATE.
        A refusal stops here (CardAuthenticationFailed with the tries the card reports)."""
        if key.id is None:
            raise InvalidData(f"key {key.label!r} is not held by the card")
        challenge = self.get_challenge()
        data = self._hsm().external_auth(
            key.label, self.factors, challenge, self.auth_factor(challenge)
        )
        try:
            self.send(Command(0x00, 0x82, 0x00, key.id, data))
            self._proven.add((self.transport.atr, key.id))
        except WrongPin as exc:
            raise CardAuthenticationFailed(
                f"外部认证失败：密钥 {key.id:02X} ({key.label}) 剩余 {exc.tries_left} 次 "
                f"(external authentication with key {key.id:02X} failed, "
                f"{exc.tries_left} tries left; not retried)",
                key_id=key.id,
                label=key.label,
                tries_left=exc.tries_left,
            ) from None
        except PinBlocked:
            raise CardAuthenticationFailed(
                f"密钥 {key.id:02X} ({key.label}) 已锁定 (key {key.id:02X} is locked)",
                key_id=key.id,
                label=key.label,
                tries_left=0,
            ) from None
        except AuthenticationFailed:
            raise CardAuthenticationFailed(
                f"外部认证失败：密钥 {key.id:02X} ({key.label}) (external authentication failed)",
                key_id=key.id,
                label=key.label,
                tries_left=None,
            ) from None

    def verify_pin(self, pin: str) -> None:
        """VERIFY; raises apdu's WrongPin (tries_left) or PinBlocked."""
        self.send(Command(0x00, 0x20, 0x00, 0x00, pin_bcd(pin, self.profile.pin.length)))

    def pin_tries_left(self) -> int:
        """VERIFY without data: the card answers 63Cx (or 9000 when already verified)."""
        response = self.transport.transmit(Command(0x00, 0x20, 0x00, 0x00))
        if response.sw & 0xFFF0 == 0x63C0:
            return response.sw & 0x0F
        if response.sw == 0x6983:
            return 0
        response.check()
        return self.profile.pin.tries

    def change_pin(self, old: str, new: str) -> None:
        """CHANGE PIN ``80 5E 01 00 07 old FF new`` (docs/chip-application.md §2)."""
        length = self.profile.pin.length
        data = pin_bcd(old, length) + b"\xff" + pin_bcd(new, length)
        self.send(Command(0x80, 0x5E, 0x01, 0x00, data))

    def unblock_pin(self) -> None:
        """PIN UNBLOCK ``84 24 00 00 04 MAC`` with the PIN key."""
        challenge = self.get_challenge()
        header = bytes.fromhex("8424000004")
        mac = self._hsm().command_mac(self.profile.pin_key.label, self.factors, challenge, header)
        self.send(Command(0x84, 0x24, 0x00, 0x00, mac))

    def reset_pin(self, new: str) -> None:
        """PIN RESET ``84 24 00 01 0C enc(PIN block) MAC`` with the PIN key."""
        pin_bcd(new, self.profile.pin.length)
        challenge = self.get_challenge()
        data = self._hsm().pin_reset_block(self.profile.pin_key.label, self.factors, challenge, new)
        self.send(Command(0x84, 0x24, 0x00, 0x01, data))

    # ----------------------------------------------------------------- verification

    def verify(
        self,
        issuer: IssuerData,
        holder: HolderData,
        photo: bytes | None = None,
        *,
        pin: str | None = None,
    ) -> list[str]:
        """Read back everything written and compare; then authenticate with every external-
        authentication key of the profile. Returns the list of checks done; raises
        VerificationFailed naming every mismatch.

        Nothing is sent twice that the card already answered in this session (issue 14):
        SSSE is selected (without its FCI) only when it is not current, and a key that
        authenticated on this card before — the update key that allowed the writes — is not
        authenticated again, unless the profile says the card keeps one key's security state
        at a time (``reselect_before_auth``): then SSSE is reselected and every key
        authenticated anew, as T514-generator ``Script_YK.cpp`` does."""
        checks: list[str] = []
        mismatches: list[str] = []
        if self._ssse_session != self.transport.sessions:
            self.select_ssse(fci=False)
        if pin is not None:
            self.verify_pin(pin)
            checks.append("PIN")
        for ef, elements, values in (
            (self.profile.ef05, EF05, issuer.values()),
            (self.profile.ef06, self.ef06, holder.values()),
        ):
            for element in elements:
                expected = encode_record(element, values[element.name])
                try:
                    got = self.read_record(ef, element)
                except StatusError as exc:
                    mismatches.append(f"{element.name}: unreadable ({exc.sw:04X})")
                    continue
                (mismatches if got != expected else checks).append(
                    f"{element.name}: {'differs' if got != expected else 'ok'}"
                )
        if photo is not None:
            if self.read_photo() != photo:
                mismatches.append("photo: differs")
            else:
                checks.append("photo: ok")
        if mismatches:
            raise VerificationFailed(
                "回读校验失败 (read-back differs): " + "; ".join(mismatches), mismatches=mismatches
            )
        fresh = self.profile.reselect_before_auth
        for key in self.profile.external_auth_keys:
            if fresh or (self.transport.atr, key.id) not in self._proven:
                if fresh:
                    self.select_ssse(fci=False)
                self.external_authenticate(key)
            checks.append(f"key {key.id:02X} ({key.label}): authenticated")
        if self.profile.internal_key is not None:
            self.check_internal_authentication(self.profile.internal_key)
            checks.append(f"internal authentication ({self.profile.internal_key.label}): ok")
        return checks

    def check_internal_authentication(self, key: KeyRef) -> None:
        """Is the card genuine? INTERNAL AUTHENTICATE ``00 88 00 <key id> Lc <random> 00``
        with a fresh random block; a genuine spec-3.00 card answers it enciphered under its
        internal-authentication key, which the issuer's security module computes as well
        (:meth:`SecurityModule.internal_auth`: the root key diversified by the card's
        factors). The answers are compared in constant time (docs/chip-application.md §4;
        the algorithm is [ours]). Raises :class:`CardNotGenuine` when they differ and
        :class:`InternalAuthenticationNotSupported` on ``6D00`` (a card before spec 3.00)."""
        factors = self.factors  # may read EF05 (the region in the 卡识别码): before the command
        challenge = os.urandom(suite_for(self.profile.algorithm).block)
        try:
            answer = self.send(Command(0x00, 0x88, 0x00, key.id or 0, challenge, le=256)).data
        except InsNotSupported:
            raise InternalAuthenticationNotSupported(
                "此卡不支持内部认证（6D00，规范版本 3.00 以前的卡） "
                "(the card does not support INTERNAL AUTHENTICATE: 6D00, a card before spec 3.00)"
            ) from None
        expected = self._hsm().internal_auth(key.label, factors, challenge)
        if not hmac.compare_digest(answer, expected):
            raise CardNotGenuine(
                "内部认证失败：卡片的应答与加密机不一致，卡片不是本发卡机构的真卡 "
                "(INTERNAL AUTHENTICATE: the card's answer differs from the security module's; "
                "the card is not genuine)"
            )
