"""Synthetic load for testers and capacity planning (issue 13, "Load"): ``sscard registry
seed --persons N`` fills a registry with valid persons and cards.

Every person has a GB 11643-1999 公民身份号码 (address code of a real GB/T 2260 region, birth
date, sequence whose parity is the gender, ISO 7064 MOD 11-2 check character), a GBK name and
one valid card whose 卡号 carries its check character (:func:`sscard.identifiers.
card_number_check`, numbers taken from the region's counter, which is moved past them).
Some are not plain: every 100 persons, one had a card replaced (the old one 注销 and
blacklisted, a new one active), one is 正式挂失, one 预挂失 (half of those past their deadline,
for ``registry sweep``).

The load is audited like any change, in bulk: each chunk is one write transaction with one
``registry.seed`` event whose ``rows`` record the digest of every row it wrote (the same
record :meth:`Registry._seal` makes), so ``sscard audit verify`` passes and a seeded row
changed later is still found. Rows go in with ``executemany`` and their ids given, so the
digests are computed without reading them back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from personalize.lifecycle import CardStatus
from personalize.registry import READ_ONLY, Registry, RegistryError, _iso, _row_state
from sscard.identifiers import card_number_check, ssn_check

# Address codes of the persons (GB/T 2260, all in the project's table): 大连 districts.
BIRTHPLACES = ("210202", "210203", "210204", "210211", "210212", "210213")
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红娥玲芬燕彬鑫波斌宇浩凯健俊"
    "帆帅旭宁龙林欣佳琳晨雪梅兰婷雯倩颖晶"
)
FIRST_BIRTH = date(1940, 1, 1)
PER_DAY = 500  # sequence numbers used per birth date and place (odd male, even female)
CHUNK = 20_000


@dataclass(frozen=True)
class SeedSummary:
    persons: int
    cards: int
    events: int


def synthetic_ssn(index: int) -> tuple[str, date, str]:
    """(公民身份号码, birth date, gender '1'/'2') of synthetic person ``index`` — distinct for
    every index below len(BIRTHPLACES) × PER_DAY × ~30,000 days."""
    place = BIRTHPLACES[index % len(BIRTHPLACES)]
    rest = index // len(BIRTHPLACES)
    born = FIRST_BIRTH + timedelta(days=rest // PER_DAY)
    sequence = rest % PER_DAY * 2 + 1  # 001 … 999
    first17 = f"{place}{born:%Y%m%d}{sequence:03d}"
    return first17 + ssn_check(first17), born, "1" if sequence % 2 else "2"


def synthetic_name(index: int) -> str:
    """A two- or three-character GBK name."""
    surname = SURNAMES[index % len(SURNAMES)]
    given = GIVEN[(index // len(SURNAMES)) % len(GIVEN)]
    if index % 3:
        return surname + given
    return surname + given + GIVEN[(index // 7) % len(GIVEN)]


def _next_id(registry: Registry, table: str) -> int:
    return int(registry.db.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").scalar()) + 1


def seed_registry(
    registry: Registry, persons: int, *, operator: str, chunk: int = CHUNK
) -> SeedSummary:
    """Add ``persons`` synthetic persons with their cards, ``chunk`` persons per audited
    write transaction. Refused on a read-only registry (no audit key)."""
    if persons < 1:
        raise RegistryError("人数须为正数 (--persons must be positive)")
    if registry.audit_key is None:
        raise RegistryError(READ_ONLY)
    total = SeedSummary(0, 0, 0)
    first = _next_id(registry, "persons") - 1  # synthetic index of the first new person
    for start in range(first, first + persons, chunk):
        done = _seed_chunk(registry, start, min(start + chunk, first + persons), operator)
        total = SeedSummary(
            total.persons + done.persons, total.cards + done.cards, total.events + 1
        )
    return total


def _seed_chunk(registry: Registry, start: int, stop: int, operator: str) -> SeedSummary:
    prefix = registry.policy.card_number_prefix
    now_at = registry.clock()
    now = _iso(now_at)
    today = registry.policy.local_date(now_at).isoformat()
    past, later = _iso(now_at - timedelta(hours=1)), _iso(now_at + timedelta(days=1))
    with registry.transaction() as db:
        event = registry.audit(operator, "registry.seed", "registry", {"persons": stop - start})
        person_id, card_id = _next_id(registry, "persons"), _next_id(registry, "cards")
        blacklist_id = _next_id(registry, "blacklist")
        counter = db.execute("SELECT next FROM card_numbers WHERE prefix = ?", (prefix,)).fetchone()
        serial = int(counter[0]) if counter else 1
        rows: dict[str, list[dict[str, Any]]] = {"persons": [], "cards": [], "blacklist": []}

        def card(person: int, status: str, lapse_at: str | None = None) -> str:
            nonlocal card_id, serial
            if serial > 9_999_999:
                raise RegistryError(f"卡号段 {prefix} 已用尽 (card numbers of {prefix} exhausted)")
            first8 = f"{prefix}{serial:07d}"
            number = first8 + card_number_check(first8)
            rows["cards"].append(
                {
                    "id": card_id,
                    "person_id": person,
                    "card_number": number,
                    "sn": None,
                    "card_id": None,
                    "region": registry.policy.region_code,
                    "status": status,
                    "status_since": now,
                    "lapse_at": lapse_at,
                    "issued_on": today,
                    "job_id": None,
                    "created_at": now,
                },
            )
            card_id, serial = card_id + 1, serial + 1
            return number

        for index in range(start, stop):
            ssn, born, gender = synthetic_ssn(index)
            rows["persons"].append(
                {
                    "id": person_id,
                    "ssn": ssn,
                    "name": synthetic_name(index),
                    "gender": gender,
                    "ethnicity": "01",
                    "birthplace": ssn[:6],
                    "birth_date": born.isoformat(),
                    "created_at": now,
                },
            )
            kind = index % 100
            if kind == 7:  # replaced: the old card void and blacklisted
                old = card(person_id, CardStatus.VOID.value)
                row = {"id": blacklist_id, "card_number": old, "sn": None, "card_id": None}
                rows["blacklist"].append(row | {"reason": "replaced", "at": now})
                blacklist_id += 1
                card(person_id, CardStatus.ACTIVE.value)
            elif kind == 13:
                card(person_id, CardStatus.FORMAL_LOSS.value)
            elif kind == 29:
                lapse = past if index % 200 == 29 else later
                card(person_id, CardStatus.PROVISIONAL_LOSS.value, lapse)
            else:
                card(person_id, CardStatus.ACTIVE.value)
            person_id += 1
        states: dict[str, dict[str, str] | None] = {}
        for table, table_rows in rows.items():
            if not table_rows:
                continue
            columns = [*table_rows[0], "audit_event_id"]
            db.executemany(
                f"INSERT INTO {table} ({', '.join(columns)})"
                f" VALUES ({', '.join('?' * len(columns))})",
                ([*r.values(), event] for r in table_rows),
            )
            db.follow_ids(table)  # PostgreSQL: the identity goes on after the explicit ids
            for r in table_rows:
                states[f"{table}/{r['id']}"] = _row_state(table, r)
        db.execute(
            "INSERT INTO card_numbers (prefix, next) VALUES (?, ?)"
            " ON CONFLICT (prefix) DO UPDATE SET next = excluded.next",
            (prefix, serial),
        )
        details = {"persons": stop - start, "first_person": start + 1, "rows": states}
        db.execute(
            "UPDATE audit_events SET details = ? WHERE id = ?",
            (json.dumps(details, ensure_ascii=False, sort_keys=True), event),
        )
        # the event above already records every row this chunk wrote
        db.forget_touched()
    return SeedSummary(stop - start, len(rows["cards"]), 1)
