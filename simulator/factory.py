"""The card factory: issues blank pre-issued 社保卡 the way a card manufacturer does — file
tree created from a card image (simulator/card_image.py, ``simulator/images/*.toml``),
per-card keys loaded (diversified from the root keys by the card's SN and region,
docs/chip-application.md §4), PIN set to the image's default, no holder data (§6) — and,
for tests and demos, personalizes or damages them directly, with the image's own encoder
(simulator/image_values.py), never the host's record tables.

``card_from_options`` (``sscard sim new-card``) gives every card a fresh random SN unless
one is given, and a personalized card a 卡号 derived from its SN unless one is given: two
runs make two different cards, the same ``--serial`` makes the same card again.
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Literal

from PIL import Image, ImageDraw

from apdu.atr import build_atr
from hsm_stub import cryptograms
from hsm_stub.cryptograms import CardFactors
from hsm_stub.keystore import TEST_KEYS, Keystore
from hsm_stub.suites import suite_for
from simulator.card_image import CardImage, DfImage, EfImage, KeyImage, load_image, with_quirks
from simulator.cardos.card import CardOS, ProtocolName
from simulator.cardos.filesystem import MF_FID, DedicatedFile, File, RecordEF, TransparentEF
from simulator.image_values import bcd, encode_value, split_gbk
from simulator.quirks import parse_quirk
from simulator.samples import sample_card
from simulator.sscard_card import CardKey, PinState, SocialSecurityCardOS, SsseConfig
from sscard.errors import InvalidData
from sscard.identifiers import card_number_check, validate_card_number
from sscard.records import HolderData, IssuerData

Damage = Literal["mute", "no-ssse", "corrupt-ef05"]
DAMAGES: tuple[Damage, ...] = ("mute", "no-ssse", "corrupt-ef05")
Roots = dict[str, tuple[str, bytes]]  # label → (algorithm, root key)

TEST_ROOTS: Roots = {label: (alg, value) for label, (alg, _, value) in TEST_KEYS.items()}

# GB 11643's own example number; the holder of every sample card. Its sequence code 002 is
# even: the holder is a woman (gender '2').
SAMPLE_HOLDER = HolderData(
    ssn="11010519491231002X",
    name="张三",
    gender="2",
    ethnicity="01",
    birthplace="110105",
    birth_date=date(1949, 12, 31),
)
SAMPLE_ISSUER_ORG = bytes.fromhex("915600000234120034010A0C")  # docs/chip-application.md §1 sample


def roots_from_keystore(keystore: Keystore) -> Roots:
    return {info.label: keystore.export_for_issuance(info.label) for info in keystore.list()}


def serial_for(seed: str) -> bytes:
    """A reproducible 8-byte card serial number."""
    return hashlib.sha256(seed.encode()).digest()[:8]


def sample_photo(seed: str = "sample", size: int | None = None) -> bytes:
    """A real 150 × 180 JPEG portrait (a drawn silhouette, colours from ``seed``); with
    ``size``, padded to exactly that many bytes with a JPEG comment segment (COM)."""
    digest = hashlib.sha256(seed.encode()).digest()
    img = Image.new("RGB", (150, 180), (200 + digest[0] % 56, 210 + digest[1] % 46, 230))
    draw = ImageDraw.Draw(img)
    skin = (230, 190 - digest[2] % 30, 160)
    draw.ellipse((45, 30, 105, 105), fill=skin)
    draw.rectangle((30, 115, 120, 180), fill=(40 + digest[3] % 80, 60, 110))
    draw.ellipse((45, 100, 105, 135), fill=(40 + digest[3] % 80, 60, 110))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=60)
    jpeg = buf.getvalue()
    if size is None:
        return jpeg
    need = size - len(jpeg)
    if need < 4 or need > 65_537:
        raise ValueError(f"a sample photo cannot be padded from {len(jpeg)} to {size} bytes")
    comment = b"\xff\xfe" + (need - 2).to_bytes(2, "big") + b"S" * (need - 4)
    return jpeg[:2] + comment + jpeg[2:]


ImageRef = CardImage | str | Path  # an image, or its name / TOML path (load_image)
MINISTRY_RID = bytes.fromhex("D156000005")  # docs/chip-application.md §1 and §3


def image_of(ref: ImageRef) -> CardImage:
    return ref if isinstance(ref, CardImage) else load_image(ref)


def issue_blank_card(
    image: ImageRef,
    region_code: str,
    *,
    roots: Roots = TEST_ROOTS,
    serial: bytes | None = None,
    protocol: ProtocolName = "T0",
    forms: tuple[str, ...] = ("sfi", "tag", "number"),
    extended_apdus: bool | None = None,
    quirks: tuple[str, ...] = (),
) -> SocialSecurityCardOS:
    """A blank card of ``image`` (records holding their tag, length and zeros), its keys
    diversified for ``serial`` and ``region_code``; ``quirks`` (simulator/quirks.py, each
    checked with :func:`parse_quirk`) go to the card, whose image quirks shape its records
    when it is personalized. ``extended_apdus`` overrides the image's setting."""
    image = image_of(image)
    names = quirk_names(quirks)
    image = with_quirks(image, names)
    sn = serial or serial_for(f"{image.name}/{region_code}")
    factors = CardFactors.for_card(sn, region_code, image.diversification_levels)
    config = SsseConfig(
        ssse_aid=image.ssse_aid,
        update_keys=image.update_keys(),
        pin_key=image.pin_key,
        read_pin_fids=image.read_pin_fids(),
        forms=forms,
    )
    internal = image.internal_key
    return SocialSecurityCardOS(
        file_tree(image),
        config=config,
        keys={k.id: _card_key(k, roots, factors) for k in image.keys},
        pin=PinState(bcd(image.pin_default), image.pin_tries, image.pin_tries),
        internal_key=_card_key(internal, roots, factors) if internal is not None else None,
        atr=build_atr(0 if protocol == "T0" else 1, b"\x86\x53\x53\x43" + sn),
        protocol=protocol,
        extended_apdus=image.extended_apdus if extended_apdus is None else extended_apdus,
        quirks=quirks,
    )


def quirk_names(quirks: tuple[str, ...]) -> tuple[str, ...]:
    """The names of ``quirks`` (``max-le=64`` → ``max-le``); ValueError on an unknown one."""
    return tuple(parse_quirk(q)[0] for q in quirks)


def _card_key(key: KeyImage, roots: Roots, factors: CardFactors) -> CardKey:
    if key.label not in roots:
        raise ValueError(
            f"密钥库中没有根密钥 {key.label!r} (no root key {key.label!r} for key {key.id:02X})"
        )
    algorithm, root = roots[key.label]
    value = cryptograms.derive_card_key(suite_for(algorithm), root, factors)
    return CardKey(algorithm, value, key.tries, key.tries)


def _tlv(tag: int, value: bytes) -> bytes:
    """One TLV with a one-byte length (simple TLV, and BER for values under 128 bytes)."""
    return bytes((tag, len(value))) + value


def file_tree(image: CardImage) -> DedicatedFile:
    """MF → SSSE (AID, FCI proprietary part) → the image's EFs and DFs."""
    mf = DedicatedFile(MF_FID, "MF")
    ssse = DedicatedFile(None, "SSSE", aid=image.ssse_aid, proprietary_fci=image.fci_proprietary)
    mf.add(ssse)
    for f in image.files:
        ssse.add(_elementary_file(f, image))
    for df_image in image.dfs:
        df = DedicatedFile(df_image.fid, df_image.name, aid=df_image.aid)
        ssse.add(df)
        for f in df_image.files:
            df.add(_elementary_file(f, image))
    return mf


def _elementary_file(f: EfImage, image: CardImage) -> File:
    if f.kind == "binary":
        return TransparentEF(f.fid, f.name, sfi=f.sfi, size=f.size)
    if f.kind == "dir":
        records = [dir_record(df) for df in image.dfs if df.aid]
        size = max((len(r) for r in records), default=0)
        return RecordEF(f.fid, f.name, sfi=f.sfi, record_size=size, records=records)
    blank = [bytearray(_tlv(s.tag, bytes(s.length))) for s in f.slots]
    return RecordEF(f.fid, f.name, sfi=f.sfi, record_size=f.record_size, records=blank)


def dir_record(df: DfImage) -> bytearray:
    """The DIR file's application template of one DF [ours]:
    ``61 L 4F <AID> 50 <label, GBK>`` (ISO/IEC 7816-4 application template, AID, label)."""
    assert df.aid is not None
    return bytearray(_tlv(0x61, _tlv(0x4F, df.aid) + _tlv(0x50, df.label.encode("gbk"))))


def card_number_for(sn: bytes) -> str:
    """A valid 卡号 (``A`` + 7 digits + GB 11714 check character) derived from the SN."""
    digits = int.from_bytes(hashlib.sha256(b"card-number/" + sn).digest()[:8], "big") % 10**7
    first8 = f"A{digits:07d}"
    return first8 + card_number_check(first8)


def sample_issuer(
    image: ImageRef,
    region_code: str,
    sn: bytes,
    roots: Roots,
    *,
    number: int = 1,
    card_number: str | None = None,
) -> IssuerData:
    """Issuer data for a sample card: 卡号 ``card_number`` (validated) or ``A`` + ``number``;
    the 卡识别码 = region BCD ‖ RID ‖ SN[4:8] ‖ MAC under the image's IRK (§3)."""
    image = image_of(image)
    body = bcd(region_code) + MINISTRY_RID + sn[4:]
    algorithm, irk = roots[image.card_id_key]
    card_id = body + cryptograms.card_id_mac(suite_for(algorithm), irk, sn, body)
    if card_number is not None:
        validate_card_number(card_number)
    first8 = f"A{number:07d}"
    return IssuerData(
        card_id=card_id,
        card_type=image.card_type,
        spec_version=image.spec_version,
        issuer_org=SAMPLE_ISSUER_ORG,
        issue_date=date(2026, 11, 25),
        expiry_date=date(2036, 11, 25),
        card_number=card_number or first8 + card_number_check(first8),
    )


def personalization_values(
    image: CardImage,
    issuer: IssuerData,
    holder: HolderData,
    extra: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """The value of every slot ``field``: the issuer's and holder's fields, the name cut
    into 姓名 and 姓名扩展 at the 姓名 slot's length (never inside a character), and the
    region files' values — 参保地 and 初次申领地 = the card's region (the 卡识别码's first 3
    bytes), 人员识别号 = region ‖ the last 6 characters of the 社会保障号码 [ours, sample
    data] — unless ``extra`` gives them."""
    region = issuer.card_id[:3].hex()
    values: dict[str, object] = {f.name: getattr(issuer, f.name) for f in fields(issuer)}
    values |= {f.name: getattr(holder, f.name) for f in fields(holder) if f.name != "extra"}
    name_length = next(s.length for f in image.all_files() for s in f.slots if s.field == "name")
    values["name"], values["name_ext"] = split_gbk(holder.name, name_length)
    has_ext = any(s.field == "name_ext" for f in image.all_files() for s in f.slots)
    if values["name_ext"] and not has_ext:
        raise ValueError(
            f"姓名超过 {name_length} 字节，而卡片映像 {image.name} 没有姓名扩展 (4E) "
            "(the name does not fit a card without 姓名扩展)"
        )
    values |= {
        "insured_region": region,
        "first_region": region,
        "person_id": region + holder.ssn[-6:],
    }
    values |= dict(extra or {})
    return values


def personalize_directly(
    card: SocialSecurityCardOS,
    image: ImageRef,
    issuer: IssuerData,
    holder: HolderData,
    photo: bytes | None = None,
    *,
    extra: Mapping[str, object] | None = None,
) -> None:
    """Write the records straight into the card's memory (a factory-personalized card), each
    slot encoded as the image says, shaped by the card's image quirks."""
    issuer.validate()
    holder.validate(first_generation=True)  # a factory makes first-generation cards too
    image = with_quirks(image_of(image), quirk_names(card.quirks))
    values = personalization_values(image, issuer, holder, extra)
    files = {f.fid: f for f in card.mf.walk() if f.fid is not None}
    for f in image.all_files():
        target = files[f.fid]
        if isinstance(target, RecordEF):
            for s in f.slots:
                value = bytes((s.pad,)) * s.offset + encode_value(
                    s.encoding, s.length - s.offset, values[s.field], pad=s.pad, digits=s.digits
                )
                target.records[s.record - 1] = bytearray(_tlv(s.tag, value))
        elif isinstance(target, TransparentEF) and f.content == "photo" and photo is not None:
            target.data[: len(photo)] = photo


def damage_card(card: SocialSecurityCardOS, kind: Damage) -> None:
    """Break a card the way worn cards break: a mute chip (its ATR is garbage), no SSSE
    application, or an EF05 whose first record is no longer valid TLV."""
    if kind == "mute":
        card.atr = b"\x00"
    elif kind == "no-ssse":
        card.mf.children.clear()
    elif kind == "corrupt-ef05":
        ef05 = next(f for f in card.mf.walk() if f.name == "EF05")
        assert isinstance(ef05, RecordEF)
        ef05.records[0] = bytearray.fromhex("0102DE")  # says 2 bytes, holds 1
    else:  # pragma: no cover - argparse restricts the choices
        raise ValueError(f"unknown damage {kind!r}")


def holder_from_json(d: dict[str, str]) -> HolderData:
    """A holder from JSON (``birth_date`` as YYYY-MM-DD), read field by field
    (:meth:`HolderData.from_mapping`) and validated."""
    try:
        holder = HolderData.from_mapping(d)
    except InvalidData as exc:
        raise ValueError(f"holder file: {exc}") from None
    holder.validate(first_generation=True)
    return holder


@dataclass(frozen=True)
class IssuedCard:
    card: CardOS
    sn: bytes | None  # None for the generic sample card
    card_number: str | None  # None unless personalized


def card_from_options(
    *,
    kind: str,
    image: str,
    region: str,
    protocol: ProtocolName,
    personalized: bool,
    holder_file: Path | None,
    damage: Damage | None,
    keystore: Path | None,
    serial: bytes | None,
    card_number: str | None = None,
    quirks: tuple[str, ...] = (),
) -> IssuedCard:
    """What ``sscard sim new-card`` issues: a card of ``image`` (a name or a TOML path) with
    ``quirks``; a fresh random SN unless ``serial`` is given; when personalized, the 卡号
    ``card_number`` or one derived from the SN."""
    if kind == "iso-sample":
        if serial is not None or card_number is not None or quirks:
            raise ValueError(
                "通用样卡没有 SN、卡号和卡片特性 (the iso-sample card has no SN, 卡号 or quirks)"
            )
        return IssuedCard(sample_card(protocol), None, None)
    if card_number is not None and not personalized:
        raise ValueError("卡号只写入个人化的卡，请加 --personalized (a 卡号 needs --personalized)")
    card_image = load_image(image)
    roots = roots_from_keystore(Keystore.open(keystore)) if keystore else TEST_ROOTS
    sn = serial if serial is not None else secrets.token_bytes(8)
    card = issue_blank_card(
        card_image, region, roots=roots, serial=sn, protocol=protocol, quirks=quirks
    )
    if personalized:
        holder = SAMPLE_HOLDER
        if holder_file is not None:
            holder = holder_from_json(json.loads(holder_file.read_text(encoding="utf-8")))
        card_number = card_number or card_number_for(sn)
        issuer = sample_issuer(card_image, region, sn, roots, card_number=card_number)
        personalize_directly(card, card_image, issuer, holder, sample_photo())
    if damage is not None:
        damage_card(card, damage)
    return IssuedCard(card, sn, card_number)
