"""Region policy: deadlines, lead times, fees, the card profile, PIN default and which
statuses allow what — one TOML file per region (docs/business-rules.md), never constants in code.
``load_policy("default")`` reads ``personalize/policies/default.toml``; a path works too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sscard.profile import read_named_toml

POLICY_DIR = Path(__file__).parent / "policies"
LapseUnit = Literal["working_days", "days", "hours"]


class PolicyError(ValueError):
    """A policy file is missing or inconsistent."""


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
    holidays: frozenset[date]
    valid_until: date | None = None
    time_zone: str = "Asia/Shanghai"
    fee_reissue: int = 0  # 补卡工本费 (yuan), printed on the 领卡证明
    service_phone: str = ""  # 服务电话 printed on the documents

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

    def check_date(self, day: date) -> None:
        """Date math past the policy's validity is refused: its deadlines and holiday
        calendar are no longer known to be right."""
        if self.valid_until is not None and day > self.valid_until:
            raise PolicyError(
                f"区域政策 {self.name} 有效期至 {self.valid_until}，无法计算 {day} 的日期 "
                f"(the region policy is valid until {self.valid_until}: update it)"
            )

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

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
        """When a provisional loss reported at ``reported_at`` lapses back to active."""
        if self.provisional_lapse_unit == "hours":
            deadline = reported_at + timedelta(hours=self.provisional_lapse)
            self.check_date(deadline.date())
            return deadline
        if self.provisional_lapse_unit == "days":
            deadline = reported_at + timedelta(days=self.provisional_lapse)
            self.check_date(deadline.date())
            return deadline
        day = self.add_working_days(reported_at.date(), self.provisional_lapse)
        return datetime.combine(day, reported_at.time(), reported_at.tzinfo)

    def collection_date(self, applied: date) -> date:
        return self.add_working_days(applied, self.reissue_working_days)

    def allows(self, action: str, status: str) -> bool:
        return status in self.statuses.get(action, ())


def policy_from_dict(d: dict[str, Any], name: str) -> RegionPolicy:
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
            holidays=frozenset(date.fromisoformat(h) for h in d.get("holidays", [])),
            valid_until=date.fromisoformat(d["valid_until"]) if "valid_until" in d else None,
            time_zone=str(d.get("time_zone", "Asia/Shanghai")),
            fee_reissue=int(d["fees"].get("reissue", 0)),
            service_phone=str(d.get("service_phone", "")),
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
