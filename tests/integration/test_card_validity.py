"""A card past its printed validity (issue 17; docs/business-rules.md "Validity", 上海: "过了
有效期限的社保卡若无损坏仍可继续使用"), through ``sscard registry show`` and the API's card
status (a real ``sscard serve``), under both settings of the region policy's
``usable_past_validity``, with the clock set by faketime — on either side of the last day of
validity in the region's zone. SQLite and PostgreSQL (``new_db``)."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date
from pathlib import Path

import httpx
import pytest

from personalize.api.clients import add_client
from personalize.policy import POLICY_DIR, load_policy
from personalize.registry import Registry
from personalize.roles import ApiRole
from personalize.validity import PAST_REPLACE
from tests.api_serve import serve_api
from tests.audit_key import AUDIT_KEY
from tests.cli import run_sscard
from tests.clock import FAKETIME_ENV, faketime_env, pinned_clock
from tests.conftest import NewDatabase
from tests.integration.api_fixture import SUPERVISOR, card_number, holder

OLD, FRESH = card_number(0), card_number(1)
ISSUED_OLD = date(2016, 5, 20)  # valid until 2026-05-20: past on the pinned 2026-11-25


def region_policy(tmp_path: Path, setting: str) -> Path:
    """The shipped policy with ``usable_past_validity`` set to ``setting`` (TOML text)."""
    text = (POLICY_DIR / "default.toml").read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith("usable_past_validity"))
    path = tmp_path / f"region-{len(list(tmp_path.glob('region-*')))}.toml"
    path.write_text(text.replace(line, f"usable_past_validity = {setting}"), encoding="utf-8")
    return path


def sscard(*args: str, clock: dict[str, str] = FAKETIME_ENV) -> subprocess.CompletedProcess[str]:
    return run_sscard(*args, env={**os.environ, **clock})


def show(db: str, policy: Path, number: str, **clock: str) -> dict[str, object]:
    run = sscard("registry", "show", number, "--db", db, "--policy", str(policy), "--json",
                 **({"clock": faketime_env(clock["at"])} if clock else {}))  # fmt: skip
    assert run.returncode == 0, run.stderr
    data: dict[str, object] = json.loads(run.stdout)
    return data


@pytest.mark.parametrize("usable", [True, False], ids=["usable-上海", "replace"])
def test_a_card_past_its_validity_under_the_region_policy(
    tmp_path: Path, new_db: NewDatabase, usable: bool
) -> None:
    db = new_db("registry")
    policy = region_policy(tmp_path, "true" if usable else "false")
    registry = Registry(db, load_policy(policy), clock=pinned_clock, audit_key=AUDIT_KEY)
    registry.enroll(holder(0), OLD, operator="setup", issued_on=ISSUED_OLD)
    registry.enroll(holder(1), FRESH, operator="setup", issued_on=date(2020, 1, 2))
    token = add_client(registry, "hospital-1", ApiRole.TERMINAL, by=SUPERVISOR)[1]
    events = registry.verify_audit()[0]

    past = "过有效期 (仍可使用)" if usable else PAST_REPLACE
    data = show(db, policy, OLD)
    assert (data["status"], data["valid_until"], data["past_validity"]) == (
        "active",
        "2026-05-20",
        True,
    )
    assert data["validity"] == past
    text = sscard("registry", "show", OLD, "--db", db, "--policy", str(policy)).stdout
    assert f"有效期 valid until 2026-05-20: {past}" in text and "换卡" in PAST_REPLACE
    fresh = show(db, policy, FRESH)
    assert (fresh["validity"], fresh["past_validity"]) == ("有效期内", False)
    # the last day of validity is a day in Shanghai: 23:00 there is within, 00:30 past
    assert show(db, policy, OLD, at="2026-05-20 15:00:00")["validity"] == "有效期内"
    assert show(db, policy, OLD, at="2026-05-20 16:30:00")["validity"] == past

    with (
        serve_api(db, extra=("--policy", str(policy))) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as terminal,
    ):
        old = terminal.get(f"/v1/cards/{OLD}/status").json()
        new = terminal.get(f"/v1/cards/{FRESH}/status").json()
    assert (old["status"], old["validity"], old["past_validity"]) == ("active", past, True)
    assert old["refuse"] is (not usable)  # 换卡: a terminal sees the card as not usable
    assert (new["refuse"], new["validity"], new["valid_until"]) == (False, "有效期内", "2030-01-02")
    assert old["initial_pin"] is None and "未知" in old["initial_pin_name"]

    reread = Registry(db, load_policy(policy), clock=pinned_clock, audit_key=AUDIT_KEY)
    assert reread.card(OLD).status == "active"  # nothing changes a status for validity
    later = reread.db.execute("SELECT action FROM audit_events WHERE id > ?", (events,))
    assert {r["action"] for r in later} == {"api.read"}  # the API's reads: nothing else
    assert reread.verify_audit()[1] == []


def test_a_policy_setting_that_is_not_true_or_false_is_refused(
    tmp_path: Path, new_db: NewDatabase
) -> None:
    db = new_db("registry")
    good = region_policy(tmp_path, "true")
    Registry(db, load_policy(good), clock=pinned_clock, audit_key=AUDIT_KEY).enroll(
        holder(0), OLD, operator="setup", issued_on=ISSUED_OLD
    )
    bad = region_policy(tmp_path, '"yes"')
    run = sscard("registry", "show", OLD, "--db", db, "--policy", str(bad))
    assert run.returncode == 1
    assert "usable_past_validity 须为 true 或 false" in run.stderr and OLD not in run.stdout
