"""``sscard sim center --db``: how the registry location reaches the station files and the
summary (personalize/center_commands.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from personalize.center_commands import registry_location, shown_location


def test_a_relative_path_is_made_absolute_a_url_passes_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert registry_location("r.db") == str(tmp_path / "r.db")
    assert registry_location("postgresql://u:pw@h/db") == "postgresql://u:pw@h/db"
    assert registry_location(None) is None


def test_the_summary_never_shows_a_password() -> None:
    shown = shown_location("postgresql://sscard:s3cret@db.example:5432/sscard")
    assert shown == "postgresql://sscard:***@db.example:5432/sscard"
    assert shown_location("postgresql://sscard@db/sscard") == "postgresql://sscard@db/sscard"
    assert shown_location("/srv/registry.db") == "/srv/registry.db"
