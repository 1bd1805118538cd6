"""``sscard registry seed``, ``registry list`` and ``registry sweep`` as a tester and a
periodic task run them: subprocesses on a real SQLite file, a logged-in supervisor, the
audit chain verified by ``sscard audit verify`` afterwards."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

from personalize.roles import Role
from tests.audit_key import HSM_ENV
from tests.cli import run_sscard
from tests.clock import FAKETIME_ENV
from tests.operators import login


def sscard(*args: str, db: Path, session: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_sscard(
        *args,
        env={"PATH": "/usr/bin:/bin", "SSCARD_DB": str(db), **FAKETIME_ENV, **HSM_ENV, **session},
    )


def test_seed_list_sweep_and_verify_from_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    supervisor = login(db, "sup1", Role.SUPERVISOR)
    seeded = sscard("registry", "seed", "--persons", "500", "--json", db=db, session=supervisor)
    assert seeded.returncode == 0, seeded.stderr
    assert json.loads(seeded.stdout) | {"seconds": 0} == {
        "persons": 500,
        "cards": 505,
        "events": 1,
        "seconds": 0,
    }

    seen: list[str] = []
    after: str | None = None
    while True:
        page_args = ["registry", "list", "--limit", "120", "--json"]
        page = sscard(*page_args, *(["--after", after] if after else []), db=db, session={})
        assert page.returncode == 0, page.stderr
        data = json.loads(page.stdout)
        seen += [c["card_number"] for c in data["cards"]]
        for card in data["cards"]:
            assert "*" in card["ssn"] and "*" in card["holder"]
        after = data["next"]
        if after is None:
            break
    assert len(seen) == len(set(seen)) == 505
    with sqlite3.connect(db) as raw:
        ssns = [r[0] for r in raw.execute("SELECT ssn FROM persons")]
    text = sscard("registry", "list", "--limit", "3", db=db, session={})
    assert text.returncode == 0 and "下一页 next page: --after 3" in text.stdout
    assert not any(ssn in text.stdout for ssn in ssns)  # never a whole ID number

    lost = sscard("registry", "list", "--status", "formal_loss", "--json", db=db, session={})
    assert [c["status_name"] for c in json.loads(lost.stdout)["cards"]] == ["正式挂失"] * 5

    counter = login(db, "op7", Role.COUNTER)
    swept = sscard("registry", "sweep", "--json", db=db, session=counter)
    assert swept.returncode == 0, swept.stderr
    assert json.loads(swept.stdout) == {"lapsed": 3}
    again = sscard("registry", "sweep", db=db, session=counter)
    assert "lapsed 0" in again.stdout

    refused = sscard("registry", "seed", "--persons", "5", db=db, session=counter)
    assert refused.returncode != 0 and "生成测试数据" in refused.stderr

    verified = sscard("audit", "verify", "--json", db=db, session={})
    assert verified.returncode == 0, verified.stdout
    assert json.loads(verified.stdout)["problems"] == []
