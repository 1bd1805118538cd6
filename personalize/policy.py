"""Region policy: deadlines, lead times, fees, the card profile, PIN default, which statuses
allow what, the time zone and the holiday calendar — one TOML file per region
(docs/business-rules.md), never constants in code. ``load_policy("default")`` reads
``personalize/policies/default.toml``; a path works too.

The holiday calendar is kept per year, as the State Council publishes it each autumn
(国务院办公厅关于 YYYY 年部分节假日安排的通知): ``[calendar.YYYY]`` lists the statutory
``holidays`` (every day off, weekends inside a holiday period included) and the make-up
``workdays`` (调休: Saturdays or Sundays that are working days). Working-day math that reaches
a year without a calendar is refused (``PolicyError`` naming the year): a deadline computed
with a guessed calendar would be printed on a document and promised to a person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from personalize.medical_balance import fen_of_yuan
from sscard.errors import InvalidData
from sscard.profile import read_named_toml

POLICY_DIR = Path(__file__).parent / "policies"
LapseUnit = Literal["working_days", "days", "hours"]


class PolicyError(ValueError):
    """A policy file is missing or inconsistent, or date math it cannot answer."""


@dataclass(frozen=True)
class YearCalendar:
    """One year of the State Council's holiday notice: the days off (``holidays``, weekend
    days inside a holiday period included) and the make-up working days (``workdays``, 调休:
    weekend days that are worked)."""

    holidays: frozenset[date]
    workdays: frozenset[date]


@dataclass(frozen=True)
class RegionPolicy:
    name: str
    region_code: str
    city: str
    authority: str
    issuer_org: bytes
    profile: str
    collection_place: str
    card_validity_years: int
    card_number_prefix: str
    provisional_lapse: int
    provisional_lapse_unit: LapseUnit
    unreport_after_formal_loss: bool
    reissue_working_days: int
    fee_damage_human: int
    fee_damage_usage: int
    fee_remagnetize: int
    default_pin: str
    statuses: dict[str, tuple[str, ...]]
    calendar: dict[int, YearCalendar]
    valid_until: date | None = None
    time_zone: str = "Asia/Shanghai"
    fee_reissue: int = 0  # 补卡工本费 (yuan), printed on the 领卡证明
    # 换领's fee (yuan; 上海: "再次办理社会保障卡需支付全额费用"), 0: free
    fee_change: int = 0
    # 换卡 of an undamaged card past its validity where ``usable_past_validity`` is False
    # (验卡 verdict 过有效期须换卡), 0: free
    fee_expired: int = 0
    service_phone: str = ""  # 服务电话 printed on the documents
    # a card past its printed validity stays usable if undamaged (上海: "过了有效期限的社保卡
    # 若无损坏仍可继续使用"); False: it must be replaced (换卡) and terminals refuse it
    usable_past_validity: bool = True
    # a job may be submitted only for a request whose fee is paid or waived (docs/business-rules.md
    # "Fees and receipts"); False: the fee may be collected when the card is collected (领卡时)
    fee_settle_before_job: bool = False
    # the medical-account balance carried to the new card (莱西; docs/business-rules.md "The
    # medical-account balance"): activation refused until the business system reported it
    # (True), or the transfer left pending until it does (False); the ceiling (fen) of a
    # reported balance, above which it is refused as absurd
    balance_required_before_activation: bool = False
    balance_max_fen: int = 9_999_999_999

    @property
    def zone(self) -> ZoneInfo:
        """The region's time zone: every date a person sees is a date here (docs/business-rules.md
        "Time"); instants are stored in UTC."""
        return ZoneInfo(self.time_zone)

    def local_time(self, moment: datetime) -> datetime:
        """``moment`` (aware) as wall-clock time in the region's zone."""
        if moment.tzinfo is None:
            raise ValueError("naive datetime: instants carry their offset")
        return moment.astimezone(self.zone)

    def local_date(self, moment: datetime) -> date:
        """The calendar date in the region's zone at ``moment``."""
        return self.local_time(moment).date()

    def card_expiry(self, issued: date) -> date:
        """The validity (有效期) written to EF05 and printed: the issue date plus
        ``card_validity_years`` (a 29 February issue date expires on 28 February)."""
        year = issued.year + self.card_validity_years
        try:
            return issued.replace(year=year)
        except ValueError:
            return issued.replace(year=year, day=28)

    def check_date(self, day: date) -> None:
        """Date math past ``valid_until`` (optional: a date by which the region reviews its
        policy) is refused."""
        if self.valid_until is not None and day > self.valid_until:
            raise PolicyError(
                f"区域政策 {self.name} 有效期至 {self.valid_until}，无法计算 {day} 的日期 "
                f"(the region policy is valid until {self.valid_until}: update it)"
            )

    def year_calendar(self, year: int) -> YearCalendar:
        """The holiday calendar of ``year``; a year the policy does not cover is refused."""
        try:
            return self.calendar[year]
        except KeyError:
            covered = "、".join(str(y) for y in sorted(self.calendar)) or "无"
            raise PolicyError(
                f"区域政策 {self.name} 未收录 {year} 年的节假日安排（已收录：{covered}），"
                f"无法计算工作日；请按国务院办公厅通知补充 [calendar.{year}] "
                f"(the region policy has no holiday calendar for {year}: add [calendar.{year}] "
                "from the State Council's notice)"
            ) from None

    def is_working_day(self, day: date) -> bool:
        """Monday to Friday unless a statutory holiday, plus the 调休 weekend days."""
        self.check_date(day)
        year = self.year_calendar(day.year)
        if day in year.workdays:
            return True
        return day.weekday() < 5 and day not in year.holidays

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th working day after ``start`` (start itself not counted)."""
        day, left = start, n
        while left > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                left -= 1
        self.check_date(day)
        return day

    def lapse_deadline(self, reported_at: datetime) -> datetime:
        """When a provisional loss reported at ``reported_at`` lapses back to active, as a
        UTC instant. Working days are counted on the region's local dates: the deadline is
        the same local wall-clock time on the n-th working day after the local report date."""
        if self.provisional_lapse_unit != "working_days":
            hours = self.provisional_lapse * (24 if self.provisional_lapse_unit == "days" else 1)
            deadline = reported_at + timedelta(hours=hours)
            self.check_date(self.local_date(deadline))
            return deadline.astimezone(UTC)
        local = self.local_time(reported_at)
        day = self.add_working_days(local.date(), self.provisional_lapse)
        return datetime.combine(day, local.timetz()).astimezone(UTC)

    def collection_date(self, applied: date) -> date:
        """领卡 date: ``reissue_working_days`` working days after the (local) application date."""
        return self.add_working_days(applied, self.reissue_working_days)

    def allows(self, action: str, status: str) -> bool:
        return status in self.statuses.get(action, ())


def _dates(values: Any, what: str) -> frozenset[date]:
    if not isinstance(values, list):
        raise PolicyError(f"{what} 须为日期列表 ({what} is a list of dates)")
    try:
        days = [date.fromisoformat(str(v)) for v in values]
    except ValueError as exc:
        raise PolicyError(f"{what} 含无效日期 ({what} is malformed: {exc})") from None
    if len(set(days)) != len(days):
        raise PolicyError(f"{what} 含重复日期 ({what} lists a date twice)")
    return frozenset(days)


def calendar_from_dict(d: Any) -> dict[int, YearCalendar]:
    """``[calendar.YYYY]`` tables: ``holidays`` and ``workdays``, dates of that year only;
    make-up working days are weekend days, and no day is both."""
    if not isinstance(d, dict) or not d:
        raise PolicyError(
            "区域政策缺少节假日安排 [calendar.YYYY] (the policy has no holiday calendar)"
        )
    calendar: dict[int, YearCalendar] = {}
    for key, table in d.items():
        where = f"calendar.{key}"
        if not re.fullmatch(r"\d{4}", str(key)):
            raise PolicyError(f"{where}：年份须为四位数字 (calendar keys are years)")
        if not isinstance(table, dict) or set(table) - {"holidays", "workdays"}:
            raise PolicyError(
                f"{where} 只含 holidays 与 workdays ({where} holds holidays and workdays only)"
            )
        year = int(key)
        holidays = _dates(table.get("holidays", []), f"{where}.holidays")
        workdays = _dates(table.get("workdays", []), f"{where}.workdays")
        stray = sorted(day for day in holidays | workdays if day.year != year)
        if stray:
            raise PolicyError(f"{where} 含其他年份的日期 {stray[0]} ({stray[0]} is not in {year})")
        weekday = sorted(day for day in workdays if day.weekday() < 5)
        if weekday:
            raise PolicyError(
                f"{where}.workdays：{weekday[0]} 不是周末，调休上班日须为周六或周日 "
                f"(a make-up working day is a Saturday or Sunday; {weekday[0]} is not)"
            )
        both = sorted(holidays & workdays)
        if both:
            raise PolicyError(
                f"{where}：{both[0]} 既是假日又是调休上班日 ({both[0]} is both a holiday "
                "and a make-up working day)"
            )
        calendar[year] = YearCalendar(holidays, workdays)
    return calendar


def _balance_fields(table: Any) -> dict[str, Any]:
    """``[medical_balance]``: ``required_before_activation`` (true or false, default false)
    and ``max`` (yuan as a decimal string, default "99999999.99")."""
    if not isinstance(table, dict) or set(table) - {"required_before_activation", "max"}:
        raise PolicyError(
            "[medical_balance] 只含 required_before_activation 与 max "
            "([medical_balance] holds required_before_activation and max only)"
        )
    required = table.get("required_before_activation", False)
    if not isinstance(required, bool):
        raise PolicyError(
            "medical_balance.required_before_activation 须为 true 或 false "
            "(medical_balance.required_before_activation is true or false)"
        )
    try:
        ceiling = fen_of_yuan(str(table.get("max", "99999999.99")))
    except InvalidData as exc:
        raise PolicyError(f"medical_balance.max：{exc}") from None
    return {"balance_required_before_activation": required, "balance_max_fen": ceiling}


def policy_from_dict(d: dict[str, Any], name: str) -> RegionPolicy:
    if "holidays" in d:
        raise PolicyError(
            "顶层 holidays 已改为按年份的 [calendar.YYYY] holidays / workdays "
            "(top-level holidays is replaced by [calendar.YYYY] holidays and workdays)"
        )
    calendar = calendar_from_dict(d.get("calendar"))
    try:
        policy = RegionPolicy(
            name=name,
            region_code=str(d["region_code"]),
            city=str(d["city"]),
            authority=str(d["authority"]),
            issuer_org=bytes.fromhex(d["issuer_org"]),
            profile=str(d["profile"]),
            collection_place=str(d["collection_place"]),
            card_validity_years=int(d["card_validity_years"]),
            card_number_prefix=str(d["card_number_prefix"]),
            provisional_lapse=int(d["loss"]["provisional_lapse"]),
            provisional_lapse_unit=d["loss"]["provisional_lapse_unit"],
            unreport_after_formal_loss=bool(d["loss"]["unreport_after_formal_loss"]),
            reissue_working_days=int(d["lead_times"]["reissue_working_days"]),
            fee_damage_human=int(d["fees"]["damage_human"]),
            fee_damage_usage=int(d["fees"]["damage_usage"]),
            fee_remagnetize=int(d["fees"]["remagnetize"]),
            default_pin=str(d["pin"]["default"]),
            statuses={k: tuple(v) for k, v in d["statuses"].items()},
            calendar=calendar,
            valid_until=date.fromisoformat(d["valid_until"]) if "valid_until" in d else None,
            time_zone=str(d.get("time_zone", "Asia/Shanghai")),
            fee_reissue=int(d["fees"].get("reissue", 0)),
            fee_change=int(d["fees"].get("change", 0)),
            fee_expired=int(d["fees"].get("expired", 0)),
            service_phone=str(d.get("service_phone", "")),
            usable_past_validity=d.get("usable_past_validity", True),
            fee_settle_before_job=d["fees"].get("settle_before_job", False),
            **_balance_fields(d.get("medical_balance", {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyError(f"policy {name!r} is incomplete or malformed: {exc}") from None
    try:
        policy.zone  # noqa: B018 — an unknown zone name is refused when the policy loads
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(f"time_zone {policy.time_zone!r} is not a known IANA zone") from None
    if not re.fullmatch(r"\d{6}", policy.region_code):
        raise PolicyError("region_code is 6 digits")
    if len(policy.issuer_org) != 12:
        raise PolicyError("issuer_org is 12 bytes (24 hex digits)")
    if policy.provisional_lapse_unit not in ("working_days", "days", "hours"):
        raise PolicyError("provisional_lapse_unit is working_days, days or hours")
    if not re.fullmatch(r"[0-9A-Z]", policy.card_number_prefix):
        raise PolicyError("card_number_prefix is one character 0-9 or A-Z")
    if not re.fullmatch(r"\d{6}", policy.default_pin):
        raise PolicyError("the default PIN is 6 digits")
    if not isinstance(policy.usable_past_validity, bool):
        raise PolicyError(
            "usable_past_validity 须为 true 或 false (usable_past_validity is true or false)"
        )
    if not isinstance(policy.fee_settle_before_job, bool):
        raise PolicyError(
            "fees.settle_before_job 须为 true 或 false (fees.settle_before_job is true or false)"
        )
    if policy.card_validity_years < 1:
        raise PolicyError("card_validity_years is at least 1")
    if policy.reissue_working_days < 0 or policy.provisional_lapse < 0:
        raise PolicyError("deadlines and lead times are not negative")
    return policy


def load_policy(name_or_path: str | Path) -> RegionPolicy:
    """A shipped policy by name (``default``) or a TOML file by path."""
    try:
        path, data = read_named_toml(name_or_path, POLICY_DIR, "policy")
    except FileNotFoundError as exc:
        raise PolicyError(str(exc)) from None
    return policy_from_dict(data, path.stem)
