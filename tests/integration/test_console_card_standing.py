"""The counter's person page says what a terminal's card status says (issue 17; docs/console.md
"Counter", docs/business-rules.md "Validity" and "PINs"): each card's 有效期 and where it
stands against it, and whether it still holds the initial PIN — in chromium against a real
``sscard serve`` on a registry whose cards were given those states through the registry."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from playwright.sync_api import Browser

from personalize.roles import Role
from tests.conftest import NewDatabase
from tests.integration.api_fixture import POLICY, card_number, holder, open_registry
from tests.integration.console import add_operators, desk, serve_console

# The server's clock is pinned to 2026-11-25 (tests/clock.py). A card issued 2001-06-01 (上海's
# first cards) is long past a validity of ``card_validity_years``; one issued 2026-01-05 is
# within it.
OLD_ISSUE, NEW_ISSUE = date(2001, 6, 1), date(2026, 1, 5)


def test_the_person_page_shows_validity_and_the_initial_pin_mark(
    new_db: NewDatabase, tmp_path: Path, browser: Browser
) -> None:
    db = new_db("standing")
    registry = open_registry(db)
    try:
        registry.enroll(holder(0), card_number(0), operator="setup", issued_on=OLD_ISSUE)
        registry.enroll(holder(1), card_number(1), operator="setup", issued_on=NEW_ISSUE)
        registry.enroll(holder(2), card_number(2), operator="setup", issued_on=NEW_ISSUE)
        registry.enroll(holder(3), card_number(3), operator="setup")  # its issue date not given
        registry.mark_initial_pin(card_number(1), True, operator="setup", via="test")
        registry.mark_initial_pin(card_number(2), False, operator="setup", via="test")
        persons = [registry.card(card_number(i)).person_id for i in range(4)]
        last_day = POLICY.card_expiry(NEW_ISSUE).isoformat()
    finally:
        registry.close()
    add_operators(db)
    assert POLICY.usable_past_validity  # the default policy keeps such a card usable (上海)
    with serve_console(db) as base, desk(browser, base, tmp_path) as d:
        d.login(Role.COUNTER)

        def line(i: int) -> tuple[str, str]:
            page = d.go(f"/counter/persons/{persons[i]}")
            card = page.locator(f"#card-{card_number(i)}")
            return (
                card.locator("[data-field=validity]").inner_text(),
                card.locator("[data-field=initial-pin]").inner_text(),
            )

        old_validity, old_pin = line(0)
        assert "过有效期 (仍可使用)" in old_validity
        assert old_validity.startswith(f"有效期至 {POLICY.card_expiry(OLD_ISSUE).isoformat()}")
        assert old_pin.startswith("未知")  # enrolled: the registry never knew its PIN
        new_validity, new_pin = line(1)
        assert new_validity == f"有效期至 {last_day}（有效期内）"
        assert new_pin.startswith("初始密码未修改，医保账户不能消费")
        assert line(2)[1].startswith("已修改初始密码")
        assert line(3)[0] == "有效期：未知（发卡日期未登记）"  # never guessed from the enrolment
        d.shot("standing")
