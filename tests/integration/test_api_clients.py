"""``sscard api-client add|list|revoke`` as a supervisor types them (issue 15, Deliver 3):
the token is printed once and only its SHA-256 kept; only a supervisor manages clients; a
revoked client's next call is refused by the running server."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from personalize.roles import Role
from tests.api_serve import serve_api
from tests.clock import FAKETIME_ENV
from tests.conftest import NewDatabase
from tests.integration.api_fixture import card_number, open_registry, prepare
from tests.operators import login


def sscard(db: str | Path, session: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "personalize.cli", *args, "--db", str(db), "--json"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, **FAKETIME_ENV, **session},
    )  # fmt: skip


def test_a_client_is_added_listed_used_and_revoked(new_db: NewDatabase) -> None:
    db = new_db("clients")
    prepare(db, persons=1)
    supervisor = login(db)
    added = sscard(db, supervisor, "api-client", "add", "hospital-7", "--role", "terminal")
    assert added.returncode == 0, added.stderr
    token = json.loads(added.stdout)["token"]
    assert len(token) >= 43
    again = sscard(db, supervisor, "api-client", "add", "hospital-7", "--role", "terminal")
    assert again.returncode == 1 and "已存在" in again.stderr
    clerk = login(db, "op1", Role.COUNTER)
    refused = sscard(db, clerk, "api-client", "add", "x-1", "--role", "auditor")
    assert refused.returncode == 1 and "无权" in refused.stderr

    listed = sscard(db, supervisor, "api-client", "list")
    assert token not in listed.stdout
    names = [c["client"] for c in json.loads(listed.stdout)["clients"]]
    assert "hospital-7" in names
    registry = open_registry(db)
    try:
        stored = [tuple(r) for r in registry.db.execute("SELECT * FROM api_clients")]
    finally:
        registry.close()
    assert token not in repr(stored)
    assert hashlib.sha256(token.encode()).hexdigest() in repr(stored)

    path = f"/v1/cards/{card_number(0)}/status"
    headers = {"Authorization": f"Bearer {token}"}
    with serve_api(db) as base:
        assert httpx.get(base + path, headers=headers, timeout=30).status_code == 200
        revoked = sscard(db, supervisor, "api-client", "revoke", "hospital-7")
        assert revoked.returncode == 0, revoked.stderr
        answer = httpx.get(base + path, headers=headers, timeout=30)
        assert answer.status_code == 401 and answer.json()["title"] == "未认证的客户端"
    listed = json.loads(sscard(db, supervisor, "api-client", "list").stdout)
    assert [
        c["revoked_at"] is not None for c in listed["clients"] if c["client"] == "hospital-7"
    ] == [True]
