"""The command line under misuse, run as an operator runs it (subprocesses, no pcscd): every
failure is one line on stderr, Chinese first with the English beside it, never a traceback,
a non-zero exit status; with ``--json`` the error is a JSON object on stdout. Read commands
never create a registry database; ``-v`` is accepted before or after the subcommand."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.audit_key import HSM_ENV

SSCARD = [sys.executable, "-m", "personalize.cli"]
CJK = re.compile(r"[\u4e00-\u9fff]")


def run(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SSCARD, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[2]), **HSM_ENV},
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("错误："), line
    first_ascii_letter = re.search(r"[A-Za-z]", line)
    first_cjk = CJK.search(line[3:])
    assert first_cjk is not None and first_ascii_letter is not None, line
    assert first_cjk.start() + 3 < first_ascii_letter.start(), f"Chinese first: {line}"
    return line


# (arguments, exit status, a fragment the line must contain); {tmp} is the test's directory
FAILURES: list[tuple[list[str], int, str]] = [
    (["registry", "show", "X00000019", "--db", "/nonexistent/dir/x.db"], 1, "/nonexistent/dir"),
    (["registry", "show", "X00000019", "--db", "{tmp}/missing.db"], 1, "missing.db"),
    (["job", "list", "--db", "{tmp}/missing.db"], 1, "missing.db"),
    (["job", "show", "1", "--db", "{tmp}/missing.db"], 1, "missing.db"),
    (["audit", "verify", "--db", "{tmp}/missing.db"], 1, "missing.db"),
    (["registry", "show", "X00000019", "--db", "{tmp}/not-a-db.txt"], 1, "not-a-db.txt"),
    (["sim", "serve", "{tmp}/none.json"], 1, "none.json"),
    (["sim", "encoder", "--tracks", "{{"], 1, "--tracks"),
    (["sim", "encoder", "--tracks", '{"4": "1"}'], 1, "--tracks"),
    (["sim", "new-card", "--serial", "zz", "--out", "{tmp}/c.json"], 2, "--serial"),
    (["sim", "new-card", "--personalized", "--card-number", "H00000030", "--out", "c.json"],
     1, "校验位"),
    (["sim", "new-card", "--quirk", "bogus", "--out", "{tmp}/c.json"], 2, "no-4e"),
    (["sim", "new-card", "--quirk", "max-le=999", "--out", "{tmp}/c.json"], 2, "1-255"),
    (["sim", "new-card", "--profile", "nowhere", "--out", "{tmp}/c.json"], 1, "jiangsu"),
    (["hsm", "list", "--keystore", "{tmp}/none.keystore"], 1, "none.keystore"),
    (["hsm", "new-track-key", "--out", "/nonexistent/dir/tracks.key"], 1, "tracks.key"),
    (["mag", "read", "--port", "/nonexistent/tty", "--timeout", "1"], 1, "/nonexistent/tty"),
    (["registry", "enroll", "{tmp}/no-card-number.json", "--db", "{tmp}/new.db"], 1, ""),
    (["registry", "enroll", "{tmp}/not-a-db.txt", "--db", "{tmp}/new.db"], 1, "JSON"),
    (["registry", "show"], 2, "card"),
    (["no-such-command"], 2, "no-such-command"),
    (["job", "show", "one", "--db", "{tmp}/missing.db"], 2, "one"),
    (["readers", "--no-such-option"], 2, "--no-such-option"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "code", "fragment"), FAILURES)
def test_every_failure_is_one_line_in_chinese_and_english(
    tmp_path: Path, argv: list[str], code: int, fragment: str
) -> None:
    (tmp_path / "not-a-db.txt").write_text("这不是数据库 not a database\n" * 100, encoding="utf-8")
    person = {"ssn": "110105194912310011", "name": "张三", "gender": "1", "ethnicity": "01",
              "birthplace": "110105", "birth_date": "1949-12-31"}  # fmt: skip
    (tmp_path / "no-card-number.json").write_text(json.dumps(person), encoding="utf-8")
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    result = run(*args, cwd=tmp_path)
    line = assert_one_line_error(result, code)
    assert fragment in line
    assert result.stdout == ""
    assert not (tmp_path / "sscard.db").exists()
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["registry", "show", "X00000019", "--db", "{tmp}/missing.db", "--json"], 1),
        (["job", "list", "--json", "--db", "/nonexistent/dir/x.db"], 1),
        (["hsm", "list", "--keystore", "{tmp}/none.keystore", "--json"], 1),
        (["registry", "show", "--json"], 2),
    ],
)
def test_with_json_the_error_is_json_on_stdout(tmp_path: Path, argv: list[str], code: int) -> None:
    result = run(*[a.replace("{tmp}", str(tmp_path)) for a in argv], cwd=tmp_path)
    line = assert_one_line_error(result, code)
    error = json.loads(result.stdout)["error"]
    assert set(error) == {"type", "message"}
    assert error["type"] and error["message"] in line


def test_verbose_is_accepted_anywhere_and_shows_the_traceback(tmp_path: Path) -> None:
    db = str(tmp_path / "missing.db")
    for argv in (
        ["-v", "registry", "show", "X00000019", "--db", db],
        ["registry", "-v", "show", "X00000019", "--db", db],
        ["registry", "show", "X00000019", "--db", db, "-v"],
        ["registry", "show", "--verbose", "X00000019", "--db", db],
    ):
        result = run(*argv, cwd=tmp_path)
        assert result.returncode == 1, (argv, result.stderr)
        assert "Traceback" in result.stderr, argv  # the details, on request
        assert result.stderr.strip().splitlines()[-1].startswith("错误：")
    quiet = run("registry", "show", "X00000019", "--db", db, cwd=tmp_path)
    assert_one_line_error(quiet, 1)


def test_read_commands_never_create_a_database_and_init_does(tmp_path: Path) -> None:
    for argv in (
        ["registry", "show", "X00000019"],
        ["job", "list"],
        ["job", "show", "1"],
        ["audit", "verify"],
        ["registry", "report-loss", "X00000019"],
        ["login", "op7"],
        ["operator", "add", "op7", "--role", "supervisor"],
    ):
        result = run(*argv, cwd=tmp_path)
        line = assert_one_line_error(result, 1)
        assert "sscard.db" in line and "sscard registry init" in line
        assert list(tmp_path.iterdir()) == [], argv
    made = run("registry", "init", "--json", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["db"] == "sscard.db"
    assert (tmp_path / "sscard.db").is_file()
    again = run("registry", "init", cwd=tmp_path)
    assert "已存在" in assert_one_line_error(again, 1)
    verified = run("audit", "verify", "--json", cwd=tmp_path)
    assert verified.returncode == 0 and json.loads(verified.stdout)["events"] == 0
    unknown = run("registry", "show", "X00000019", cwd=tmp_path)
    assert "X00000019" in assert_one_line_error(unknown, 1)
    empty = run("job", "list", cwd=tmp_path)
    assert empty.returncode == 0 and "没有作业" in empty.stdout
