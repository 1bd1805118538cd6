"""A card's printed validity and its initial-PIN mark in the registry (issue 17; docs/
business-rules.md "Validity" and "PINs"): the rule on its boundaries, the policy setting, the
mark's writes and what they leave in the audit, an upgraded registry saying "not known"."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from datetime import date
from pathlib import Path

import pytest

from personalize import registry as registry_module
from personalize.card_standing import INITIAL_PIN_NAMES, standing
from personalize.policy import POLICY_DIR, PolicyError, load_policy, policy_from_dict
from personalize.registry import INITIAL_PIN_MIGRATION, MIGRATIONS, Registry, RegistryError
from personalize.validity import PAST_REPLACE, PAST_USABLE, WITHIN, card_validity
from simulator.factory import SAMPLE_HOLDER
from tests.audit_key import AUDIT_KEY
from tests.clock import pinned_clock
from tests.conftest import NewDatabase
from tests.stores import before_changes, behind_its_back

POLICY = load_policy("default")
REPLACING = dataclasses.replace(POLICY, usable_past_validity=False)
NUMBER = "H00000012"


def test_validity_is_the_issue_date_plus_the_policy_years_and_its_last_day_is_within() -> None:
    # 上海《社会保障卡管理办法》第十条: 有效使用期限为10年 — the shipped policy's 10 years
    assert POLICY.card_validity_years == 10
    on_last_day = card_validity(POLICY, "2016-05-20", date(2026, 5, 20))
    assert on_last_day is not None
    assert (on_last_day.valid_until, on_last_day.past, on_last_day.label) == (
        date(2026, 5, 20),
        False,
        WITHIN,
    )
    day_after = card_validity(POLICY, "2016-05-20", date(2026, 5, 21))
    assert day_after is not None and day_after.past and day_after.usable
    assert day_after.label == PAST_USABLE == "过有效期 (仍可使用)"


def test_a_region_that_has_old_cards_replaced_refuses_them_past_validity() -> None:
    past = card_validity(REPLACING, "2016-05-20", date(2026, 11, 25))
    assert past is not None and past.past and not past.usable and past.label == PAST_REPLACE
    assert "换卡" in past.label
    within = card_validity(REPLACING, "2020-01-01", date(2026, 11, 25))
    assert within is not None and within.usable and within.label == WITHIN


def test_no_issue_date_no_validity_and_a_leap_day_issue_expires_on_28_february() -> None:
    assert card_validity(POLICY, None, date(2026, 11, 25)) is None
    assert POLICY.card_expiry(date(2024, 2, 29)) == date(2034, 2, 28)
    assert POLICY.card_expiry(date(2026, 11, 25)) == date(2036, 11, 25)


@pytest.mark.parametrize("value", ["no", 0, "false"])
def test_the_policy_setting_is_true_or_false(value: object) -> None:
    data = tomllib.loads((POLICY_DIR / "default.toml").read_text(encoding="utf-8"))
    assert policy_from_dict(data, "x").usable_past_validity is True  # 上海: the default
    with pytest.raises(PolicyError, match="usable_past_validity 须为 true 或 false"):
        policy_from_dict({**data, "usable_past_validity": value}, "x")


def test_standing_names_an_unknown_mark_as_unknown() -> None:
    fields = standing(None, None)
    assert fields["initial_pin"] is None and fields["valid_until"] is None
    assert (
        fields["initial_pin_name"] == INITIAL_PIN_NAMES[None] and "未知" in INITIAL_PIN_NAMES[None]
    )


def audit_events(registry: Registry) -> list[tuple[str, str, str]]:
    rows = registry.db.execute("SELECT action, subject, details FROM audit_events ORDER BY id")
    return [(r["action"], r["subject"], r["details"]) for r in rows]


def test_the_mark_is_written_with_its_audit_event_and_never_a_pin(new_db: NewDatabase) -> None:
    registry = Registry(new_db("r"), POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    card = registry.enroll(SAMPLE_HOLDER, NUMBER, operator="op", issued_on=date(2016, 5, 20))
    assert registry.initial_pin(card) is None  # an enrolled card was issued elsewhere: not known
    validity = registry.validity(card)
    assert validity is not None and validity.label == PAST_USABLE  # pinned 2026-11-25
    registry.mark_initial_pin(NUMBER, False, operator="holder", via="card change-pin")
    assert registry.initial_pin(registry.card(NUMBER)) is False
    registry.mark_initial_pin(NUMBER, True, operator="op-office", via="office pin reset")
    assert registry.initial_pin(registry.card(NUMBER)) is True
    marks = [e for e in audit_events(registry) if e[0] == "card.initial_pin"]
    assert [json.loads(d)["initial_pin"] for _, _, d in marks] == [False, True]
    assert [json.loads(d)["from"] for _, _, d in marks] == [None, False]
    assert all(POLICY.default_pin not in d for _, _, d in audit_events(registry))
    assert registry.verify_audit()[1] == []


def test_an_unknown_card_is_refused_with_nothing_written(new_db: NewDatabase) -> None:
    registry = Registry(new_db("r"), POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    registry.enroll(SAMPLE_HOLDER, NUMBER, operator="op")
    before = audit_events(registry)
    with pytest.raises(RegistryError, match="不在登记库中"):
        registry.mark_initial_pin("H00000020", False, operator="holder", via="card change-pin")
    assert audit_events(registry) == before


def test_cards_from_before_the_migration_keep_an_unknown_mark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    before = MIGRATIONS[: MIGRATIONS.index(INITIAL_PIN_MIGRATION)]
    with monkeypatch.context() as m:
        m.setattr(registry_module, "MIGRATIONS", before)
        old = before_changes(Registry(path, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY), m)
        old.enroll(SAMPLE_HOLDER, NUMBER, operator="op")
        assert old.verify_audit()[1] == []  # the older schema's audit, without the marks
        old.close()
    upgraded = Registry(path, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    assert upgraded.schema_version == len(MIGRATIONS)
    assert upgraded.initial_pin(upgraded.card(NUMBER)) is None  # not guessed
    assert upgraded.verify_audit()[1] == []


@pytest.mark.parametrize("sql", ["UPDATE {marks} SET initial_pin = 0", "DELETE FROM {marks}"])
def test_a_mark_changed_outside_sscard_is_found_by_the_audit(new_db: NewDatabase, sql: str) -> None:
    """A hospital refuses a medical payment on the mark: setting it behind sscard's back (so
    a card with the initial PIN could pay) breaks ``audit verify``."""
    db = new_db("r")
    registry = Registry(db, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    registry.enroll(SAMPLE_HOLDER, NUMBER, operator="op")
    registry.mark_initial_pin(NUMBER, True, operator="op-office", via="office pin reset")
    assert registry.verify_audit()[1] == []
    behind_its_back(db, sql.format(marks="card_pin_marks"))
    problems = registry.verify_audit()[1]
    assert problems and all("card_pin_marks/1" in p for p in problems)
