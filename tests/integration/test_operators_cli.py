"""Operators as the CLI knows them (issue 11, deliverable 4): accounts with scrypt-hashed
passwords read from standard input, roles, login sessions in a 0600 file that expire, dual
control. Every ``sscard`` is a subprocess with its clock pinned (faketime)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

from personalize.policy import load_policy
from personalize.registry import Registry
from simulator.factory import SAMPLE_HOLDER
from tests.audit_key import AUDIT_KEY, HSM_ENV
from tests.cli import run_sscard
from tests.clock import faketime_env, pinned_clock

POLICY = load_policy("default")
NOW = "2026-11-25 09:30:00"  # the login instant of these tests (Shanghai 17:30)
BOSS_PW = "主管口令-2026-boss"  # non-ASCII on purpose: it must never leak in any spelling
CLERK_PW = "clerk-password-7"


def sscard(
    root: Path, *args: str, stdin: str = "", at: str = NOW, session: str | None = "session"
) -> subprocess.CompletedProcess[str]:
    """``sscard ARGS`` at ``at`` on ``root/registry.db``, the session file ``root/<session>``
    (``None``: ``$SSCARD_SESSION`` unset)."""
    where = {} if session is None else {"SSCARD_SESSION": str(root / session)}
    return run_sscard(
        *args,
        stdin=stdin,
        timeout=60,
        env={
            **faketime_env(at),
            "PATH": "/usr/bin:/bin",
            "HOME": str(root / "home"),
            "SSCARD_DB": str(root / "registry.db"),
            **HSM_ENV,
            **where,
        },
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def refused(result: subprocess.CompletedProcess[str], words: str) -> str:
    """A one-line refusal, Chinese first, naming ``words``."""
    assert result.returncode == 1, result.stdout + result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("错误：") and "\u4e00" <= line[3] <= "\u9fff", line
    assert "Traceback" not in result.stderr and words in line, line
    return line


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A registry with 张三's card H00000012 formally lost and a reissue requested, and no
    operator yet."""
    registry = Registry(tmp_path / "registry.db", POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    registry.enroll(SAMPLE_HOLDER, "H00000012", operator="migration")
    registry.formalize_loss("H00000012", operator="migration", evidence="居民身份证")
    registry.close()
    return tmp_path


def boss(root: Path) -> None:
    """The first operator, a supervisor, logged in (session file ``session``)."""
    ok(sscard(root, "operator", "add", "boss", "--role", "supervisor", stdin=BOSS_PW + "\n"))
    ok(sscard(root, "login", "boss", stdin=BOSS_PW + "\n"))


def clerk(root: Path, name: str = "clerk", role: str = "counter") -> str:
    """Another operator added by boss and logged in; the name of their session file."""
    ok(sscard(root, "operator", "add", name, "--role", role, stdin=CLERK_PW + "\n"))
    ok(sscard(root, "login", name, stdin=CLERK_PW + "\n", session=f"session-{name}"))
    return f"session-{name}"


def audit(root: Path, action: str) -> list[tuple[str, str, dict[str, object]]]:
    with sqlite3.connect(root / "registry.db") as db:
        rows = db.execute(
            "SELECT operator, subject, details FROM audit_events WHERE action = ? ORDER BY id",
            (action,),
        ).fetchall()
    return [(r[0], r[1], json.loads(r[2])) for r in rows]


def test_the_first_operator_is_a_supervisor_added_without_a_session(root: Path) -> None:
    first = sscard(root, "operator", "add", "clerk", "--role", "counter", stdin="x" * 12 + "\n")
    refused(first, "第一个操作员须为主管")
    short = sscard(root, "operator", "add", "boss", "--role", "supervisor", stdin="short\n")
    refused(short, "口令至少 8 个字符")
    added = json.loads(
        ok(
            sscard(
                root,
                "operator",
                "add",
                "boss",
                "--role",
                "supervisor",
                "--json",
                stdin=BOSS_PW + "\n",
            )
        )
    )
    assert added == {"operator": "boss", "role": "supervisor", "by": None}
    assert audit(root, "operator.add") == [("bootstrap", "boss", {"role": "supervisor"})]
    listed = json.loads(ok(sscard(root, "operator", "list", "--json")))
    assert listed == {"operators": [{"operator": "boss", "role": "supervisor", "enabled": True}]}


def test_later_operators_need_a_supervisors_session(root: Path) -> None:
    ok(sscard(root, "operator", "add", "boss", "--role", "supervisor", stdin=BOSS_PW + "\n"))
    alone = sscard(root, "operator", "add", "mallory", "--role", "supervisor", stdin="x" * 9)
    refused(alone, "未登录")
    ok(sscard(root, "login", "boss", stdin=BOSS_PW + "\n"))
    session = clerk(root)
    by_clerk = sscard(
        root, "operator", "add", "eve", "--role", "counter", stdin="y" * 9, session=session
    )
    refused(by_clerk, "无权新增操作员")
    names = [o["operator"] for o in json.loads(ok(sscard(root, "operator", "list", "--json")))[
        "operators"]]  # fmt: skip
    assert names == ["boss", "clerk"]
    assert [(who, subject) for who, subject, _ in audit(root, "operator.add")] == [
        ("bootstrap", "boss"),
        ("boss", "clerk"),
    ]
    assert [who for who, _, _ in audit(root, "operator.add.refused")] == ["-", "clerk"]


def test_a_wrong_password_is_refused_and_audited(root: Path) -> None:
    boss(root)
    (root / "session").unlink()
    wrong = sscard(root, "login", "boss", stdin="not-the-password\n")
    refused(wrong, "操作员名或口令错误")
    nobody = sscard(root, "login", "nobody", stdin=BOSS_PW + "\n")
    assert (
        refused(nobody, "操作员名或口令错误").split("：", 1)[1]
        == (refused(wrong, "操作员名或口令错误").split("：", 1)[1])
    )  # an unknown name and a wrong password read the same
    assert not (root / "session").exists()
    assert [who for who, _, _ in audit(root, "operator.login.refused")] == ["boss", "nobody"]
    # the password typed full-width with an IME is the same password (NFKC)
    ok(sscard(root, "login", "boss", stdin="主管口令－２０２６－ｂｏｓｓ\n"))


def test_the_session_file_is_the_operators_alone(root: Path) -> None:
    ok(sscard(root, "operator", "add", "boss", "--role", "supervisor", stdin=BOSS_PW + "\n"))
    nested = "config/sscard/session"
    shown = json.loads(
        ok(sscard(root, "login", "boss", "--json", stdin=BOSS_PW + "\n", session=nested))
    )
    path = root / nested
    assert shown["session_file"] == str(path)
    assert shown["expires_at"].startswith("2026-11-26T01:3")  # 8 hours, in Shanghai time
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    os.chmod(path, 0o644)
    loose = sscard(root, "registry", "report-loss", "H00000012", session=nested)
    refused(loose, "权限过宽")
    # the default is under ~/.config/sscard/
    ok(sscard(root, "login", "boss", stdin=BOSS_PW + "\n", session=None))
    assert stat.S_IMODE((root / "home/.config/sscard/session").stat().st_mode) == 0o600


def test_an_expired_session_is_refused(root: Path) -> None:
    boss(root)
    change = ("registry", "report-loss", "H00000012")
    late = sscard(root, *change, at="2026-11-25 17:31:00")  # 8 hours and a minute later
    refused(late, "会话已于")
    assert (
        Registry(root / "registry.db", POLICY, audit_key=AUDIT_KEY).card("H00000012").status
        == "formal_loss"
    )
    still = sscard(root, "whoami", "--json", at="2026-11-25 17:29:00")
    assert json.loads(ok(still))["operator"] == "boss"
    assert [d["reason"][:4] for _, _, d in audit(root, "card.report_loss.refused")] == ["会话已于"]


def test_a_role_may_do_only_what_the_table_allows(root: Path) -> None:
    boss(root)
    office = clerk(root, "office1", "office")
    asked = sscard(root, "registry", "request-reissue", "H00000012", session=office)
    refused(asked, "街道网点 office1 无权补卡申请")
    registry = Registry(root / "registry.db", POLICY, audit_key=AUDIT_KEY)
    assert registry.card("H00000012").status == "formal_loss"
    assert registry.db.execute("SELECT COUNT(*) FROM reissue_requests").fetchone()[0] == 0
    assert audit(root, "request.reissue.refused")[0][0] == "office1"
    auditor = clerk(root, "aud1", "auditor")
    refused(sscard(root, "registry", "unreport", "H00000012", "--evidence", "ID",
                   session=auditor), "审计员 aud1 无权解挂")  # fmt: skip
    shown = json.loads(ok(sscard(root, "registry", "show", "H00000012", "--json", session=auditor)))
    assert shown["status"] == "formal_loss"  # reads need no particular role


def test_logout_and_disabling_end_a_session(root: Path) -> None:
    boss(root)
    session = clerk(root)
    kept = (root / session).read_bytes()
    ok(sscard(root, "logout", session=session))
    assert not (root / session).exists()
    (root / session).write_bytes(kept)
    os.chmod(root / session, 0o600)
    refused(sscard(root, "whoami", session=session), "会话无效或已注销")
    ok(sscard(root, "login", "clerk", stdin=CLERK_PW + "\n", session=session))
    ok(sscard(root, "operator", "disable", "clerk"))
    refused(sscard(root, "registry", "report-loss", "H00000012", session=session), "会话无效")
    refused(sscard(root, "login", "clerk", stdin=CLERK_PW + "\n", session=session), "已停用")
    last = sscard(root, "operator", "disable", "boss")
    refused(last, "不能停用最后一位主管")


def test_a_reprint_needs_a_second_supervisor(root: Path) -> None:
    boss(root)
    session = clerk(root)
    ok(sscard(root, "registry", "request-reissue", "H00000012", "--out", str(root / "c.pdf"),
              session=session))  # fmt: skip
    reprint = ("registry", "reprint", "1", "--out", str(root / "again.pdf"))
    refused(sscard(root, *reprint, session=session), "须由另一位主管复核")
    own = sscard(root, *reprint, "--confirm-by", "clerk", stdin=CLERK_PW + "\n", session=session)
    refused(own, "复核人须为另一位操作员")
    ok(sscard(root, "operator", "add", "clerk2", "--role", "counter", stdin=CLERK_PW + "\n"))
    peer = sscard(root, *reprint, "--confirm-by", "clerk2", stdin=CLERK_PW + "\n", session=session)
    refused(peer, "柜员 clerk2 无权复核")
    wrong = sscard(root, *reprint, "--confirm-by", "boss", stdin="guess-guess\n", session=session)
    refused(wrong, "操作员名或口令错误")
    assert not (root / "again.pdf").exists()
    done = sscard(root, *reprint, "--confirm-by", "boss", stdin=BOSS_PW + "\n", session=session)
    ok(done)
    assert [(w, s, d["confirmed_by"]) for w, s, d in audit(root, "document.reprint")] == [
        ("clerk", "SSCARD-REQ-000001", "boss")
    ]
    by_session = sscard(root, *reprint, "--confirm-session", str(root / "session"),
                        session=session)  # fmt: skip
    ok(by_session)
    assert [d["confirmed_by"] for _, _, d in audit(root, "document.reprint")] == ["boss", "boss"]


def test_passwords_and_tokens_never_leave_standard_input(root: Path) -> None:
    """Not in the database (any table, the audit log included), not in any output, and
    there is no option that would put one in argv."""
    boss(root)
    session = clerk(root)
    outputs = [
        sscard(root, "login", "boss", stdin="wrong-" + BOSS_PW + "\n"),
        sscard(root, "whoami", "--json", session=session),
        sscard(root, "-v", "registry", "report-loss", "H00000012", session=session),
        sscard(
            root,
            "-v",
            "registry",
            "reprint",
            "1",
            "--confirm-by",
            "boss",
            stdin=BOSS_PW + "\n",
            session=session,
        ),
    ]
    token = json.loads((root / session).read_text())["token"]
    database = b"".join(p.read_bytes() for p in root.glob("registry.db*"))
    for secret in (BOSS_PW, CLERK_PW, token):
        assert secret.encode() not in database
        for result in outputs:
            assert secret not in result.stdout + result.stderr
    for help_of in (("operator", "add"), ("login",), ("registry", "reprint"), ("job", "cancel")):
        assert "--password" not in ok(sscard(root, *help_of, "--help"))
    with sqlite3.connect(root / "registry.db") as db:
        stored = db.execute("SELECT password_hash FROM operators WHERE name = 'boss'").fetchone()
    assert stored[0].startswith("scrypt$131072$8$1$")


def test_a_new_login_ends_the_session_it_replaces(root: Path) -> None:
    boss(root)
    earlier = (root / "session").read_bytes()
    ok(sscard(root, "login", "boss", stdin=BOSS_PW + "\n"))
    (root / "old-session").write_bytes(earlier)
    os.chmod(root / "old-session", 0o600)
    refused(sscard(root, "whoami", session="old-session"), "会话无效或已注销")
    assert json.loads(ok(sscard(root, "whoami", "--json")))["operator"] == "boss"
