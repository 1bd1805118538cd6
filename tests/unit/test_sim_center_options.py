"""``sscard sim center``'s options and holders (personalize/center_commands.py): how the
``--db`` location reaches the station files and the summary; which synthetic holders a run
on a seeded registry makes."""

from __future__ import annotations

from pathlib import Path

import pytest

from personalize.center_commands import (
    first_unenrolled,
    registry_location,
    synthetic_holders,
)
from personalize.registry import Registry
from personalize.seed import seed_registry, synthetic_ssn
from tests.audit_key import AUDIT_KEY
from tests.clock import pinned_clock
from tests.integration.crash_campaign import POLICY


def test_a_relative_path_is_made_absolute_a_url_passes_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert registry_location("r.db") == str(tmp_path / "r.db")
    assert registry_location("postgresql://u:pw@h/db") == "postgresql://u:pw@h/db"
    assert registry_location(None) is None


@pytest.mark.parametrize("seeded", [0, 1, 2, 37])
def test_holders_start_after_the_seeded_persons(tmp_path: Path, seeded: int) -> None:
    registry = Registry(tmp_path / "r.db", POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    try:
        if seeded:
            seed_registry(registry, seeded, operator="sup0")
        assert first_unenrolled(registry) == seeded
        holders = list(synthetic_holders(registry, 2))
        assert [h.ssn for h in holders] == [synthetic_ssn(seeded + i)[0] for i in range(2)]
        assert all(registry.person_by_ssn(h.ssn) is None for h in holders)
    finally:
        registry.close()
