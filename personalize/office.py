"""Street-office work on a desktop PC/SC reader and an MSR206-class encoder: re-magnetize
(加磁), verify a damaged card (验卡), unblock or reset the PIN (docs/business-rules.md; the
decision table is docs/diagnosis.md). The security module is whatever the station file
names — the card center's service over TCP, or a PSAM in a second reader.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from apdu.errors import CardMute, CardRemoved, CardReset, NoCard, ReaderUnavailable, TransportError
from apdu.pcsc import PcscTransport
from apdu.status import StatusError
from hsm_stub.module import SecurityModule
from personalize import textinput
from personalize.documents import ReportLine, VerificationReport, verification_report_pdf
from personalize.policy import RegionPolicy
from personalize.registry import (
    STATUS_NAMES,
    Agent,
    Card,
    Registry,
    RegistryError,
    _iso,
    request_number,
)
from personalize.trackvault import TrackVault
from printer.errors import DeviceError
from printer.msr206 import Msr206, StripeRead, VerifyMismatch
from sscard.card import SocialSecurityCard
from sscard.errors import (
    CardAuthenticationFailed,
    InvalidData,
    NotASocialSecurityCard,
    SocialSecurityCardError,
)
from sscard.identifiers import (
    canonical_ssn,
    card_number_valid,
    same_person_ssn,
    serial_number,
    ssn_valid,
    verify_card_id,
)
from sscard.profile import CardProfile
from sscard.records import HolderData, IssuerData

Progress = Callable[[str], None]

# ``--damage`` codes (docs/diagnosis.md): what the operator saw, with the label printed.
NO_DAMAGE = "none"
DAMAGE_CODES = {
    NO_DAMAGE: "无外观损坏",
    "cracked": "断裂",
    "bent": "弯折",
    "burnt": "烧损",
    "scratched": "划伤",
    "soaked": "浸水",
    "punched": "打孔",
}

# A fault of the reader or of the operator's handling is never a finding about the card.
READER_FAULTS: dict[type[TransportError], str] = {
    NoCard: "读卡器中没有卡片",
    ReaderUnavailable: "读卡器不可用或无法确定",
    CardRemoved: "读卡过程中卡片被取出（读卡器）",
    CardReset: "卡片被其他程序复位（读卡器）",
}


def parse_damage(text: str) -> tuple[str, ...]:
    """``--damage cracked,bent``: known codes only; ``none`` stands alone. The codes in the
    order given, without ``none`` (an empty tuple is "no damage seen")."""
    codes = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in codes if c not in DAMAGE_CODES]
    listing = ", ".join(f"{code} {label}" for code, label in DAMAGE_CODES.items())
    if unknown or not codes:
        raise ValueError(
            f"未知的外观损坏代码 {', '.join(unknown) or '(空)'} (unknown damage code); "
            f"可用 codes: {listing}"
        )
    if NO_DAMAGE in codes and len(codes) > 1:
        raise ValueError(f"{NO_DAMAGE} 不能与其他损坏代码并列 (none stands alone)")
    return tuple(dict.fromkeys(c for c in codes if c != NO_DAMAGE))


class OfficeError(Exception):
    """The operation was refused or could not be completed; nothing else was changed."""


@dataclass(frozen=True)
class Verdict:
    code: str
    text: str
    next_step: str


VERDICTS = {
    "card_ok": Verdict("card_ok", "卡片正常", "交还持卡人，无需处理"),
    "reencode": Verdict("reencode", "磁条失效，现场重新加磁", "执行 sscard reencode 重新加磁"),
    "unblock_pin": Verdict(
        "unblock_pin", "PIN 已锁定，现场解锁", "核验身份证后执行 sscard pin unblock"
    ),
    "usage_fault": Verdict(
        "usage_fault", "使用性故障，免费换卡", "已受理换卡申请，按领卡日期凭身份证领取新卡"
    ),
    "human_damage": Verdict(
        "human_damage", "人为损坏，收费换卡", "收取换卡费后受理换卡申请，按领卡日期领取新卡"
    ),
    # an undamaged card past its validity where the policy has such cards replaced
    # (``usable_past_validity = false``; docs/business-rules.md "Validity")
    "expired": Verdict("expired", "过有效期须换卡", "已受理换卡申请，按领卡日期凭身份证领取新卡"),
    "counterfeit": Verdict(
        "counterfeit", "疑似伪卡，暂扣并上报", "暂扣卡片，填写上报单，报社保稽核部门"
    ),
    "refused": Verdict(
        "refused", "拒绝受理：卡片已挂失或注销", "告知持卡人卡片状态；找回的挂失卡须先办理解挂"
    ),
}
# the verdicts that open a replacement (换卡) request, with their fee
REPLACING = ("human_damage", "usage_fault", "expired")


@dataclass
class Check:
    code: str
    item: str
    ok: bool | None  # None: not checked (an earlier failure made it impossible)
    detail: str = ""

    @property
    def result(self) -> str:
        return {True: "通过", False: "未通过", None: "未检"}[self.ok]


@dataclass
class Diagnosis:
    checks: list[Check] = field(default_factory=list)
    verdict: Verdict = VERDICTS["card_ok"]
    fee: int = 0
    card_number: str = ""
    sn: str = ""
    holder: str = ""
    request: int | None = None
    collect_on: str = ""
    damage: tuple[str, ...] = ()
    visual_only: bool = False
    report_no: str = ""
    sn_from_registry: bool = False
    holder_from_registry: bool = False

    def add(self, code: str, item: str, ok: bool | None, detail: str = "") -> bool | None:
        self.checks.append(Check(code, item, ok, detail))
        return ok

    def failed(self, code: str) -> bool:
        return any(c.code == code and c.ok is False for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "card_number": self.card_number,
            "sn": self.sn,
            "checks": [
                {"code": c.code, "item": c.item, "result": c.result, "ok": c.ok, "detail": c.detail}
                for c in self.checks
            ],
            "verdict": self.verdict.code,
            "verdict_text": self.verdict.text,
            "fee": self.fee,
            "next_step": self.verdict.next_step,
            "replacement_request": self.request,
            "collect_on": self.collect_on or None,
            "damage": [{"code": c, "label": DAMAGE_CODES[c]} for c in self.damage],
            "visual_only": self.visual_only,
            "report_no": self.report_no,
        }

    def report(self, *, operator: str, authority: str) -> dict[str, Any]:
        """What the 验卡单 shows, as stored in the registry (its number and time are the
        stored row's)."""
        return {
            "card_number": self.card_number,
            "sn": self.sn + ("（登记）" if self.sn_from_registry else ""),
            "holder": self.holder + ("（登记）" if self.holder_from_registry else ""),
            "lines": [[c.item, c.result, c.detail] for c in self.checks],
            "verdict": self.verdict.text,
            "fee": self.fee,
            "next_step": self.verdict.next_step,
            "operator": operator,
            "authority": authority,
            "method": "仅外观检查（未读卡）" if self.visual_only else "读卡检测",
            "request_no": request_number(self.request) if self.request else "",
            "collect_on": self.collect_on or None,
        }


def office_report_pdf(
    registry: Registry, report_no: str, *, reprint_at: datetime | None = None
) -> bytes:
    """The stored 验卡单 ``report_no`` rendered again; with ``reprint_at`` it is marked 补打
    with that time (in the region's zone) — for ``sscard registry reprint``."""
    report = registry.office_report(report_no)
    if report is None:
        raise OfficeError(f"没有验卡单 {report_no} (no such verification report)")
    data = report.data
    policy = registry.policy
    stamp = "%Y-%m-%d %H:%M"
    return verification_report_pdf(
        VerificationReport(
            report_no=report.report_no,
            card_number=data["card_number"],
            sn=data["sn"],
            holder=data["holder"],
            lines=tuple(ReportLine(*line) for line in data["lines"]),
            verdict=data["verdict"],
            fee=int(data["fee"]),
            next_step=data["next_step"],
            operator=data["operator"],
            at=policy.local_time(datetime.fromisoformat(report.at)).strftime(stamp),
            authority=data["authority"],
            method=data["method"],
            request_no=data["request_no"],
            collect_on=date.fromisoformat(data["collect_on"]) if data["collect_on"] else None,
            reprinted_at=policy.local_time(reprint_at).strftime(stamp) if reprint_at else "",
        )
    )


@dataclass(frozen=True)
class ChipData:
    issuer: IssuerData
    holder: HolderData
    sn: bytes


class Office:
    def __init__(
        self,
        registry: Registry,
        policy: RegionPolicy,
        profile: CardProfile,
        hsm: SecurityModule,
        vault: TrackVault | None,
        *,
        operator: str,
        progress: Progress = print,
    ) -> None:
        self.registry = registry
        self.policy = policy
        self.profile = profile
        self.hsm = hsm
        self.vault = vault
        self.operator = operator
        self.progress = progress

    # ----------------------------------------------------------------- shared steps

    def _card(self, transport: PcscTransport) -> SocialSecurityCard:
        return SocialSecurityCard(
            transport, self.profile, self.hsm, region_code=self.policy.region_code
        )

    def _genuine(self, card: SocialSecurityCard, issuer: IssuerData) -> list[str]:
        """卡识别码 MAC and an authentication with the read key; the failures, if any."""
        problems = []
        if not verify_card_id(self.hsm, self.profile.card_id_key.label, issuer.card_id, card.sn):
            problems.append("卡识别码校验失败 (card identifier MAC)")
        card.select_ssse()
        try:
            card.external_authenticate(self.profile.read_key)
        except CardAuthenticationFailed as exc:
            problems.append(f"读密钥认证失败 (read-key authentication): tries {exc.tries_left}")
        return problems

    def _registry_card(self, number: str) -> Card | None:
        try:
            return self.registry.card(number)
        except RegistryError:
            return None

    def _tracks(self, card: Card) -> dict[int, str]:
        sealed = self.registry.sealed_tracks(card.id)
        if sealed is None or self.vault is None:
            return {}
        return self.vault.open(sealed, f"card-{card.id}")

    def _refuse(self, action: str, number: str, reason: str) -> OfficeError:
        with self.registry.transaction():
            self.registry.audit(self.operator, f"{action}.refused", number, {"reason": reason})
        return OfficeError(reason)

    # ----------------------------------------------------------------- 加磁

    def reencode(self, reader: str, encoder_url: str) -> dict[str, Any]:
        self.progress("[1/5] 读取芯片 reading the chip")
        with PcscTransport(reader) as transport:
            card = self._card(transport)
            card.identify()
            issuer = card.read_issuer()
            number = issuer.card_number
            self.progress(f"      卡号 {number}")
            self.progress("[2/5] 验证卡片真伪 proving the card genuine")
            problems = self._genuine(card, issuer)
        if problems:
            raise self._refuse("reencode", number, "疑似伪卡，拒绝加磁: " + "; ".join(problems))
        self.progress("[3/5] 核对登记状态 checking the registry")
        record = self._registry_card(number)
        if record is None:
            raise self._refuse("reencode", number, "卡号不在登记库中，拒绝加磁 (unknown card)")
        if record.sn and record.sn != card.sn.hex().upper():
            raise self._refuse("reencode", number, "芯片序列号与登记不符，拒绝加磁 (SN mismatch)")
        if not self.policy.allows("reencode", record.status):
            raise self._refuse(
                "reencode",
                number,
                f"卡片状态为{STATUS_NAMES[record.status]}，拒绝加磁 (only active cards are "
                "re-encoded)",
            )
        tracks = self._tracks(record)
        if not tracks:
            raise self._refuse("reencode", number, "没有该卡的发卡方磁道数据 (no track images)")
        self.progress(f"[4/5] 写磁道 {sorted(tracks)} 并回读校验 writing and verifying")
        attempts = 0
        with Msr206(encoder_url) as encoder:
            encoder.set_coercivity("hi")
            while True:
                attempts += 1
                try:
                    encoder.write(tracks)
                    break
                except VerifyMismatch as exc:
                    if attempts >= 2:
                        seen = encoder.read()
                        states = {t.number: t.state for t in seen.tracks}
                        with self.registry.transaction():
                            self.registry.audit(
                                self.operator,
                                "reencode.failed",
                                number,
                                {"tracks": exc.tracks, "states": states},
                            )
                        raise OfficeError(
                            f"加磁两次回读不一致，已停止 (read-back differs twice on tracks "
                            f"{exc.tracks}); 磁道状态 tracks now: {states}"
                        ) from None
                    self.progress("      回读不一致，重试一次 (read-back differs: one retry)")
        self.progress("[5/5] 记录 recording")
        with self.registry.transaction():
            self.registry.audit(
                self.operator,
                "reencode.done",
                number,
                {"tracks": sorted(tracks), "attempts": attempts},
            )
        return {
            "card_number": number,
            "tracks": sorted(tracks),
            "attempts": attempts,
            "result": "ok",
        }

    # ----------------------------------------------------------------- 验卡

    def diagnose(
        self,
        reader: str | None,
        encoder_url: str | None,
        damage: tuple[str, ...] = (),
        *,
        card_number: str | None = None,
        visual_only: bool = False,
        agent: Agent | None = None,
    ) -> Diagnosis:
        """验卡 (docs/diagnosis.md): a verdict only from a card the reader talked to — or,
        when the operator says so (``visual_only``), from what they saw on the card whose
        卡号 they typed. A reader fault, an empty reader or a card that is not the one named
        raises :class:`OfficeError` before anything is recorded. ``agent``: who brought the
        card for the holder (委托代办), checked before the card is read and recorded on the
        replacement request a damage verdict opens (docs/business-rules.md "Agents (委托代办)")."""
        if agent is not None:
            agent.check()
        if card_number is not None and not card_number_valid(card_number):
            raise OfficeError(f"卡号 {card_number} 格式或校验位错误 (invalid card number)")
        if visual_only and (not card_number or not damage):
            raise OfficeError(
                "仅外观检查须填写卡面卡号并记录外观损坏 (--visual-only needs --card-number "
                "and --damage with what was seen)"
            )
        if not visual_only and not reader:
            raise OfficeError("请指定读卡器 --reader，或声明仅外观检查 --visual-only")
        d = Diagnosis(damage=damage, visual_only=visual_only)
        chip: ChipData | None = None
        pin_blocked = False
        genuine_problems: list[str] = []
        if reader is None:
            d.add("chip", "芯片应答 (ATR)", None, "未读卡：仅外观检查 (visual inspection only)")
        else:
            chip, pin_blocked, genuine_problems = self._check_chip(d, reader)
        if chip is not None:
            d.card_number, d.holder = chip.issuer.card_number, chip.holder.name
            if card_number and card_number != d.card_number:
                raise OfficeError(
                    f"读卡器中的卡是 {d.card_number}，不是 {card_number}，未作结论 "
                    "(the card in the reader is another card; no verdict)"
                )
        number = d.card_number or card_number or ""
        d.card_number = number
        record = self._registry_card(number) if number else None
        if visual_only and record is None:
            raise OfficeError(f"卡号 {number} 不在登记库中，不能仅凭外观作结论 (unknown card)")
        if chip is None and d.sn and record is not None and record.sn and record.sn != d.sn:
            raise OfficeError(
                f"读卡器中的芯片序列号 {d.sn} 与卡号 {number} 的登记不符，未作结论 "
                "(the chip in the reader is not this card; no verdict)"
            )
        if chip is not None and record is not None:
            self._check_holder(chip.holder, record)
        if number:
            detail = "未登记" if record is None else STATUS_NAMES[record.status]
            status_ok = record is not None and record.status in ("active", "provisional_loss")
            d.add("registry", "登记状态", status_ok, detail)
            if record is not None and chip is not None and record.sn and record.sn != d.sn:
                d.add("registry_sn", "芯片序列号与登记一致", False, "不一致")
                genuine_problems.append("SN differs from the registry")
        else:
            d.add("registry", "登记状态", None, "无法读取卡号")
        stripe = self._check_stripe(d, encoder_url, record)
        observed = "、".join(DAMAGE_CODES[x] for x in damage) or DAMAGE_CODES[NO_DAMAGE]
        d.add("physical", "外观检查", not damage, observed)
        # the decision (docs/diagnosis.md)
        if record is not None and record.status not in ("active", "provisional_loss"):
            d.verdict = VERDICTS["refused"]
        elif genuine_problems or (chip is not None and record is None):
            d.verdict = VERDICTS["counterfeit"]
        elif damage:
            d.verdict, d.fee = VERDICTS["human_damage"], self.policy.fee_damage_human
        elif (
            d.failed("chip")
            or d.failed("ssse")
            or d.failed("ef05")
            or d.failed("ef06")
            or d.failed("card_number")
            or d.failed("ssn")
        ):
            d.verdict, d.fee = VERDICTS["usage_fault"], self.policy.fee_damage_usage
        elif record is not None and self._must_be_replaced_for_validity(record):
            d.verdict, d.fee = VERDICTS["expired"], self.policy.fee_expired
        elif pin_blocked:
            d.verdict = VERDICTS["unblock_pin"]
        elif stripe is False:
            d.verdict, d.fee = VERDICTS["reencode"], self.policy.fee_remagnetize
        else:
            d.verdict = VERDICTS["card_ok"]
        if record is not None:  # what the registry knows, where the chip said nothing
            d.sn_from_registry = not d.sn and bool(record.sn)
            d.holder_from_registry = not d.holder
            d.sn = d.sn or record.sn or ""
            d.holder = d.holder or self.registry.person(record.person_id).name
        if d.verdict.code in REPLACING and record is not None:
            request = self.registry.request_reissue(
                number, operator=self.operator, kind="replacement", fee=d.fee, agent=agent
            )
            d.request, d.collect_on = request.id, request.collect_on
        with self.registry.transaction():
            stored = self.registry.add_office_report(
                card_number=number,
                operator=self.operator,
                request_id=d.request,
                data=d.report(operator=self.operator, authority=self.policy.authority),
            )
            d.report_no = stored.report_no
            self.registry.audit(
                self.operator,
                "diagnose",
                number or "unknown",
                {
                    "verdict": d.verdict.code,
                    "fee": d.fee,
                    "failed": [c.code for c in d.checks if c.ok is False],
                    "damage": list(damage),
                    "visual_only": visual_only,
                    "report": d.report_no,
                    "agent": agent is not None,
                },
            )
        return d

    def _must_be_replaced_for_validity(self, record: Card) -> bool:
        """The card is past its printed validity and the policy does not keep such a card
        usable (``Registry.validity``: an unknown issue date is never past it)."""
        validity = self.registry.validity(record)
        return validity is not None and not validity.usable

    def _check_chip(self, d: Diagnosis, reader: str) -> tuple[ChipData | None, bool, list[str]]:
        """The chip checks: (chip data if readable, PIN blocked, genuineness problems). A
        mute chip in the reader is a finding; any other reader or transport fault (no
        reader, several matching, empty, busy, card pulled) raises OfficeError."""
        chip: ChipData | None = None
        pin_blocked = False
        genuine_problems: list[str] = []
        try:
            with PcscTransport(reader) as transport:
                d.add("chip", "芯片应答 (ATR)", True, transport.atr.hex().upper())
                try:
                    d.sn = serial_number(transport.atr).hex().upper()
                except InvalidData:
                    d.sn = ""
                card = self._card(transport)
                try:
                    card.identify()
                    d.add("ssse", "社保应用 SSSE", True)
                except NotASocialSecurityCard as exc:
                    d.add("ssse", "社保应用 SSSE", False, str(exc))
                else:
                    chip = self._read_chip(d, card)
                    if chip is not None:
                        genuine_problems = self._genuine(card, chip.issuer)
                        d.add(
                            "genuine",
                            "卡识别码与密钥认证",
                            not genuine_problems,
                            "; ".join(genuine_problems),
                        )
                        card.select_ssse()
                        tries = card.pin_tries_left()
                        pin_blocked = tries == 0
                        d.add("pin", "PIN 状态", not pin_blocked, f"剩余 {tries} 次")
        except CardMute as exc:
            d.checks = [c for c in d.checks if c.code != "chip"]
            d.add("chip", "芯片应答 (ATR)", False, f"芯片无响应 (mute): {exc}")
        except TransportError as exc:
            what = READER_FAULTS.get(type(exc), "读卡器故障")
            raise OfficeError(f"{what}，未作结论 (no verdict): {exc}") from None
        return chip, pin_blocked, genuine_problems

    def _read_chip(self, d: Diagnosis, card: SocialSecurityCard) -> ChipData | None:
        try:
            issuer = card.read_issuer()
            d.add("ef05", "发卡机构数据 EF05", True)
        except (InvalidData, StatusError, SocialSecurityCardError) as exc:
            d.add("ef05", "发卡机构数据 EF05", False, f"无法读取: {exc}")
            return None
        try:
            holder = card.read_holder()
            d.add("ef06", "持卡人信息 EF06", True)
        except (InvalidData, StatusError, SocialSecurityCardError) as exc:
            d.add("ef06", "持卡人信息 EF06", False, f"无法读取: {exc}")
            return None
        d.add(
            "card_number", "卡号校验位", card_number_valid(issuer.card_number), issuer.card_number
        )
        first_generation = len(holder.ssn) == 15
        d.add(
            "ssn",
            "社会保障号码校验位",
            ssn_valid(holder.ssn, first_generation=True),
            "第一代卡 15 位号码，按升位比对，无须换卡" if first_generation else "",
        )
        return ChipData(issuer, holder, card.sn)

    def _check_holder(self, holder: HolderData, record: Card) -> None:
        """The chip's 社会保障号码 must be the registered holder's — a first-generation card's
        15-digit number by its GB 11643-1999 upgrade, which is no reason for a replacement
        (珠海: "如果是属于身份证号从15位升位到18位的可不用办理换卡手续"; docs/business-rules.md).
        Any other number: OfficeError, no verdict, nothing written."""
        if not same_person_ssn(holder.ssn, self.registry.person(record.person_id).ssn):
            raise OfficeError(
                f"卡内社会保障号码与卡号 {record.card_number} 登记的持卡人不符"
                f"{'（15 位号码升位后亦不符）' if len(holder.ssn) == 15 else ''}，未作结论 "
                "(the chip's ID number is not the registered holder's; no verdict)"
            )

    def _check_stripe(
        self, d: Diagnosis, encoder_url: str | None, record: Card | None
    ) -> bool | None:
        if encoder_url is None:
            d.add("stripe", "磁条", None, "未接磁条读写器")
            return None
        try:
            with Msr206(encoder_url) as encoder:
                read: StripeRead = encoder.read()
        except DeviceError as exc:
            d.add("stripe", "磁条", None, f"读写器故障: {type(exc).__name__}")
            return None
        expected = self._tracks(record) if record is not None else {}
        ok = True
        for track in read.tracks:
            want = expected.get(track.number)
            if track.state == "blank":
                good = want is None
                detail = "空白 (消磁)" if want else "空白"
            elif track.state == "unreadable":
                good, detail = False, "损坏 (无法读取)"
            elif want is not None and not textinput.same(track.data, want):
                good, detail = False, "与发卡数据不一致"
            else:
                good, detail = True, "正常"
            d.add(f"track{track.number}", f"磁道 {track.number}", good, detail)
            ok = ok and good
        return ok

    # ----------------------------------------------------------------- PIN

    def holder_only(self, action: str, agent: Agent | None) -> None:
        """Who is at the counter for a PIN service (``unblock``, ``reset``): the transition
        table's ``pin`` rows refuse an agent (珠海: "…服务网点办理(不可代办)") —
        ``RegistryError`` before anything is typed, read from or sent to the card, and
        nothing is written."""
        self.registry.rule("pin", None, f"{action}_pin", agent=agent)

    def pin_service(
        self,
        reader: str,
        action: str,
        *,
        id_number: str,
        new_pin: str | None = None,
        agent: Agent | None = None,
    ) -> dict[str, Any]:
        self.holder_only(action, agent)
        typed_id = textinput.id_number(id_number)
        if new_pin is not None:
            new_pin = textinput.pin(new_pin, self.profile.pin.length)
        with PcscTransport(reader) as transport:
            card = self._card(transport)
            card.identify()
            issuer, holder = card.read_issuer(), card.read_holder()
            number = issuer.card_number
            if not textinput.same(typed_id, _upgraded(holder.ssn)):
                raise self._refuse(
                    f"pin.{action}",
                    number,
                    "身份证号码与卡内信息不符，拒绝办理 (the ID does not match)",
                )
            record = self._registry_card(number)
            if record is None or not self.policy.allows("pin_service", record.status):
                status = "未登记" if record is None else STATUS_NAMES[record.status]
                raise self._refuse(f"pin.{action}", number, f"卡片状态为{status}，拒绝办理")
            problems = self._genuine(card, issuer)
            if problems:
                raise self._refuse(f"pin.{action}", number, "疑似伪卡: " + "; ".join(problems))
            card.select_ssse()
            try:
                if action == "unblock":
                    card.unblock_pin()
                elif new_pin is None:
                    raise OfficeError("a new PIN is needed to reset")
                else:
                    card.reset_pin(new_pin)
            except CardRemoved:  # torn: the card may hold the old state or the new one
                with self.registry.transaction():
                    self.registry.audit(
                        self.operator,
                        f"pin.{action}.unknown",
                        number,
                        {"at": _iso(self.registry.clock())},
                    )
                raise OfficeError(
                    "办理中卡片离开读卡器，结果未知：请重新插卡后再办理一次 (the card left "
                    f"the reader during the PIN {action}: the outcome is unknown; reinsert "
                    "the card and do it again)"
                ) from None
            tries = card.pin_tries_left()
        with self.registry.transaction():  # the card answered 9000: now the registry
            if action == "reset":  # an unblock leaves the PIN, and so the mark, as it was
                self.registry.mark_initial_pin(
                    number,
                    new_pin == self.policy.default_pin,
                    operator=self.operator,
                    via="office pin reset",
                )
            self.registry.audit(  # the PIN service's own event closes the transaction
                self.operator,
                f"pin.{action}",
                number,
                {"tries_left": tries, "at": _iso(self.registry.clock())},
            )
        return {"card_number": number, "action": action, "pin_tries_left": tries}


def _upgraded(chip_ssn: str) -> str:
    """The number the holder's ID card carries now: a first-generation chip's 15-digit number
    upgraded (an invalid one as it is: it matches no typed number)."""
    try:
        return canonical_ssn(chip_ssn)
    except InvalidData:
        return chip_ssn
