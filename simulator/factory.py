"""The card factory: issues blank pre-issued 社保卡 the way a card manufacturer does — file
tree created, per-card keys loaded (diversified from the root keys by the card's SN and
region, docs/chip-application.md §4), PIN set to the profile default, no holder data (§6) — and,
for tests and demos, personalizes or damages them directly.

``card_from_options`` (``sscard sim new-card``) gives every card a fresh random SN unless
one is given, and a personalized card a 卡号 derived from its SN unless one is given: two
runs make two different cards, the same ``--serial`` makes the same card again.
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from PIL import Image, ImageDraw

from apdu.atr import build_atr
from apdu.tlv import encode_simple
from hsm_stub import cryptograms
from hsm_stub.cryptograms import CardFactors
from hsm_stub.keystore import TEST_KEYS, Keystore
from hsm_stub.suites import suite_for
from simulator.cardos.card import CardOS, ProtocolName
from simulator.cardos.filesystem import MF_FID, DedicatedFile, RecordEF, TransparentEF
from simulator.samples import sample_card
from simulator.sscard_card import CardKey, PinState, SocialSecurityCardOS, SsseConfig
from sscard.errors import InvalidData
from sscard.identifiers import (
    RID,
    card_number_check,
    region_bcd,
    validate_card_number,
)
from sscard.profile import CardProfile, load_profile
from sscard.records import EF05, HolderData, IssuerData, encode_record

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


def issue_blank_card(
    profile: CardProfile,
    region_code: str,
    *,
    roots: Roots = TEST_ROOTS,
    serial: bytes | None = None,
    protocol: ProtocolName = "T0",
    forms: tuple[str, ...] = ("sfi", "tag", "number"),
    extended_apdus: bool = True,
) -> SocialSecurityCardOS:
    sn = serial or serial_for(f"{profile.name}/{region_code}")
    factors = CardFactors.for_card(sn, region_code, profile.diversification_levels)
    mf = DedicatedFile(MF_FID, "MF")
    ssse = DedicatedFile(
        None, "SSSE", aid=profile.ssse_aid, proprietary_fci=profile.ssse_fci_proprietary
    )
    mf.add(ssse)
    ef06 = profile.ef06_layout
    for ref, name, elements in ((profile.ef05, "EF05", EF05), (profile.ef06, "EF06", ef06)):
        ssse.add(
            RecordEF(
                ref.fid,
                name,
                sfi=ref.sfi,
                record_size=2 + max(e.length for e in elements),
                records=[bytearray(e.blank()) for e in elements],
            )
        )
    ssse.add(TransparentEF(profile.ef07.fid, "EF07", sfi=profile.ef07.sfi, size=512))
    ssse.add(TransparentEF(profile.ef08.fid, "EF08", sfi=profile.ef08.sfi, size=profile.photo_size))
    for df in profile.dfs:
        ssse.add(DedicatedFile(df.fid, df.name, aid=df.aid))
    keys: dict[int, CardKey] = {}
    for key_ref in profile.card_keys:
        if key_ref.id is None:
            continue
        algorithm, root = roots[key_ref.label]
        card_key = cryptograms.derive_card_key(suite_for(algorithm), root, factors)
        keys[key_ref.id] = CardKey(algorithm, card_key, key_ref.tries, key_ref.tries)
    assert profile.pin_key.id is not None and profile.update_key.id is not None
    config = SsseConfig(
        ssse_aid=profile.ssse_aid,
        update_keys={
            ref.fid: profile.update_key.id for ref in (profile.ef05, profile.ef06, profile.ef08)
        },
        pin_key=profile.pin_key.id,
        read_pin_fids=profile.read_pin_fids,
        forms=forms,
    )
    pin = PinState(bytes.fromhex(profile.pin.default), profile.pin.tries, profile.pin.tries)
    atr = build_atr(0 if protocol == "T0" else 1, b"\x86\x53\x53\x43" + sn)
    return SocialSecurityCardOS(
        mf,
        config=config,
        keys=keys,
        pin=pin,
        atr=atr,
        protocol=protocol,
        extended_apdus=extended_apdus,
    )


def card_number_for(sn: bytes) -> str:
    """A valid 卡号 (``A`` + 7 digits + GB 11714 check character) derived from the SN."""
    digits = int.from_bytes(hashlib.sha256(b"card-number/" + sn).digest()[:8], "big") % 10**7
    first8 = f"A{digits:07d}"
    return first8 + card_number_check(first8)


def sample_issuer(
    profile: CardProfile,
    region_code: str,
    sn: bytes,
    roots: Roots,
    *,
    number: int = 1,
    card_number: str | None = None,
) -> IssuerData:
    """Issuer data for a sample card: 卡号 ``card_number`` (validated) or ``A`` + ``number``."""
    body = region_bcd(region_code) + RID + sn[4:]
    algorithm, irk = roots[profile.card_id_key.label]
    card_id = body + cryptograms.card_id_mac(suite_for(algorithm), irk, sn, body)
    if card_number is not None:
        validate_card_number(card_number)
    first8 = f"A{number:07d}"
    return IssuerData(
        card_id=card_id,
        card_type=profile.card_type,
        spec_version=profile.spec_version,
        issuer_org=SAMPLE_ISSUER_ORG,
        issue_date=date(2026, 11, 25),
        expiry_date=date(2036, 11, 25),
        card_number=card_number or first8 + card_number_check(first8),
    )


def personalize_directly(
    card: SocialSecurityCardOS,
    profile: CardProfile,
    issuer: IssuerData,
    holder: HolderData,
    photo: bytes | None = None,
) -> None:
    """Write the records straight into the card's memory (a factory-personalized card)."""
    issuer.validate()
    holder.validate()
    ssse = card.mf.children[0]
    assert isinstance(ssse, DedicatedFile)
    files = {f.fid: f for f in ssse.children}
    for ref, elements, values in (
        (profile.ef05, EF05, issuer.values()),
        (profile.ef06, profile.ef06_layout, holder.values()),
    ):
        ef = files[ref.fid]
        assert isinstance(ef, RecordEF)
        for e in elements:
            ef.records[e.record - 1] = bytearray(encode_record(e, values[e.name]))
    if photo is not None:
        ef08 = files[profile.ef08.fid]
        assert isinstance(ef08, TransparentEF)
        ef08.data[: len(photo)] = photo


def damage_card(card: SocialSecurityCardOS, kind: Damage, profile: CardProfile) -> None:
    """Break a card the way worn cards break: a mute chip (its ATR is garbage), no SSSE
    application, or an EF05 whose first record is no longer valid TLV."""
    if kind == "mute":
        card.atr = b"\x00"
    elif kind == "no-ssse":
        card.mf.children.clear()
    elif kind == "corrupt-ef05":
        ssse = card.mf.children[0]
        assert isinstance(ssse, DedicatedFile)
        ef05 = next(f for f in ssse.children if f.fid == profile.ef05.fid)
        assert isinstance(ef05, RecordEF)
        ef05.records[0] = bytearray(encode_simple(0x01, b"\xde\xad")[:3])
    else:  # pragma: no cover - argparse restricts the choices
        raise ValueError(f"unknown damage {kind!r}")


def holder_from_json(d: dict[str, str]) -> HolderData:
    """A holder from JSON (``birth_date`` as YYYY-MM-DD), read field by field
    (:meth:`HolderData.from_mapping`) and validated."""
    try:
        holder = HolderData.from_mapping(d)
    except InvalidData as exc:
        raise ValueError(f"holder file: {exc}") from None
    holder.validate()
    return holder


@dataclass(frozen=True)
class IssuedCard:
    card: CardOS
    sn: bytes | None  # None for the generic sample card
    card_number: str | None  # None unless personalized


def card_from_options(
    *,
    kind: str,
    profile_name: str,
    region: str,
    protocol: ProtocolName,
    personalized: bool,
    holder_file: Path | None,
    damage: Damage | None,
    keystore: Path | None,
    serial: bytes | None,
    card_number: str | None = None,
) -> IssuedCard:
    """What ``sscard sim new-card`` issues: a fresh random SN unless ``serial`` is given; when
    personalized, the 卡号 ``card_number`` or one derived from the SN."""
    if kind == "iso-sample":
        if serial is not None or card_number is not None:
            raise ValueError("通用样卡没有 SN 和卡号 (the iso-sample card has no SN or 卡号)")
        return IssuedCard(sample_card(protocol), None, None)
    if card_number is not None and not personalized:
        raise ValueError("卡号只写入个人化的卡，请加 --personalized (a 卡号 needs --personalized)")
    profile = load_profile(profile_name)
    roots = roots_from_keystore(Keystore.open(keystore)) if keystore else TEST_ROOTS
    sn = serial if serial is not None else secrets.token_bytes(8)
    card = issue_blank_card(profile, region, roots=roots, serial=sn, protocol=protocol)
    if personalized:
        holder = SAMPLE_HOLDER
        if holder_file is not None:
            holder = holder_from_json(json.loads(holder_file.read_text(encoding="utf-8")))
        card_number = card_number or card_number_for(sn)
        issuer = sample_issuer(profile, region, sn, roots, card_number=card_number)
        personalize_directly(card, profile, issuer, holder, sample_photo())
    if damage is not None:
        damage_card(card, damage, profile)
    return IssuedCard(card, sn, card_number)
