"""``outbox.toml`` (docs/outbox.md "Destinations"): each destination's name, url, secret (from
an environment variable or a private file, never the file itself) and retry policy; every
mistake is one clear refusal, Chinese first, that never shows the secret; and the signature
is the documented HMAC-SHA256 over "<timestamp>." + body."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import pytest

from personalize.outbox_store import OutboxEvent
from personalize.webhooks import (
    RetryPolicy,
    Webhook,
    WebhookConfigError,
    load_webhooks,
    signed_headers,
)
from tests.clock import PINNED
from tests.webhook_receiver import BANK_SECRET, KAGUAN_SECRET

ENV = "SSCARD_TEST_KAGUAN_SECRET"


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(ENV, KAGUAN_SECRET)
    return ENV


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "outbox.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_destinations_with_a_secret_from_the_environment_or_a_file(
    tmp_path: Path, secret_env: str
) -> None:
    secret_file = tmp_path / "bank.secret"
    secret_file.write_text(BANK_SECRET + "\n", encoding="utf-8")
    os.chmod(secret_file, 0o600)
    path = config(
        tmp_path,
        f"""
[[destination]]
name = "kaguan"
url = "https://kaguan.example:8443/sscard/events"
secret_env = "{secret_env}"
[destination.retry]
first_seconds = 5
max_seconds = 600
max_attempts = 0

[[destination]]
name = "bank"
url = "http://bank.example/hooks?from=sscard"
secret_file = "{secret_file}"
timeout_seconds = 3
""",
    )
    kaguan, bank = load_webhooks(path)
    assert kaguan == Webhook(
        "kaguan",
        "https://kaguan.example:8443/sscard/events",
        KAGUAN_SECRET.encode(),
        RetryPolicy(first_seconds=5, max_seconds=600, max_attempts=0),
    )
    assert (bank.secret, bank.retry, bank.timeout_seconds) == (
        BANK_SECRET.encode(),
        RetryPolicy(),
        3,
    )
    assert KAGUAN_SECRET not in repr(kaguan) and BANK_SECRET not in repr(bank)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("", "没有 [[destination]]"),
        ("[[destination\n", "不是有效的 TOML"),
        ('[[destination]]\nname = "卡 管!"\nurl = "http://h/"', "name 须为"),
        ('[[destination]]\nname = "k"\nurl = "ftp://h/"\nsecret_env = "X"', "url 须为"),
        ('[[destination]]\nname = "k"\nurl = "http://h:port/"\nsecret_env = "X"', "端口无效"),
        (
            '[[destination]]\nname = "k"\nurl = "http://u:pw@h/"\nsecret_env = "X"',
            "url 中不得含用户名或口令",
        ),
        ('[[destination]]\nname = "k"\nurl = "http://h/"', "须给出 secret_env 或 secret_file"),
        (
            '[[destination]]\nname = "k"\nurl = "http://h/"\nsecret_env = "SSCARD_NO_SUCH_VAR"',
            "环境变量 SSCARD_NO_SUCH_VAR 未设置",
        ),
        (
            '[[destination]]\nname = "k"\nurl = "http://h/"\nsecret_env = "{env}"\n'
            "[destination.retry]\nmax_seconds = 0",
            "max_seconds 须为正数秒",
        ),
        (
            '[[destination]]\nname = "k"\nurl = "http://h/"\nsecret_env = "{env}"\n'
            "[destination.retry]\nmax_attempts = -1",
            "max_attempts 须为非负整数",
        ),
        (
            '[[destination]]\nname = "k"\nurl = "http://h/"\nsecret_env = "{env}"\n'
            f'secret = "{KAGUAN_SECRET}"',
            "未知的设置 secret（密钥只能来自 secret_env 或 secret_file）",
        ),
        (
            '[[destination]]\nname = "k"\nurl = "http://h/"\nsecret_env = "{env}"\n'
            "[destination.retry]\nmax_tries = 3",
            "k retry：未知的设置 max_tries",
        ),
        (
            '[[destination]]\nname = "k"\nurl = "https://h/"\nsecret_env = "{env}"\n'
            'ca_file = "/nonexistent/ca.pem"',
            "ca_file /nonexistent/ca.pem 须为 https 地址的 CA 证书文件",
        ),
        (
            '[[destination]]\nname = "k"\nurl = "http://h/"\nsecret_env = "{env}"\n'
            '[[destination]]\nname = "k"\nurl = "http://h/"\nsecret_env = "{env}"',
            "名称不重复",
        ),
    ],
    ids=[
        "empty",
        "not-toml",
        "name",
        "scheme",
        "port",
        "credentials",
        "no-secret",
        "unset-env",
        "cap",
        "attempts",
        "inline-secret",
        "retry-key",
        "ca-file",
        "duplicate",
    ],
)
def test_a_wrong_file_is_refused_in_one_line(
    tmp_path: Path, secret_env: str, body: str, words: str
) -> None:
    path = config(tmp_path, body.replace("{env}", secret_env))
    with pytest.raises(WebhookConfigError) as refused:
        load_webhooks(path)
    message = str(refused.value)
    assert message.startswith(f"回盘配置 {path}") and words in message, message
    assert "\n" not in message and "(" in message  # English beside it
    assert KAGUAN_SECRET not in message


def test_a_secret_file_others_may_read_or_a_short_secret_is_refused(tmp_path: Path) -> None:
    secret_file = tmp_path / "kaguan.secret"
    secret_file.write_text(KAGUAN_SECRET, encoding="utf-8")
    os.chmod(secret_file, 0o644)
    text = f'[[destination]]\nname = "k"\nurl = "http://h/"\nsecret_file = "{secret_file}"'
    with pytest.raises(WebhookConfigError, match="权限过宽"):
        load_webhooks(config(tmp_path, text))
    os.chmod(secret_file, 0o600)
    assert load_webhooks(config(tmp_path, text))[0].secret == KAGUAN_SECRET.encode()
    secret_file.write_text("short", encoding="utf-8")
    with pytest.raises(WebhookConfigError, match="密钥至少 16 个字符"):
        load_webhooks(config(tmp_path, text))
    secret_file.unlink()
    with pytest.raises(WebhookConfigError, match="无法读取密钥文件"):
        load_webhooks(config(tmp_path, text))


def test_the_signature_is_hmac_sha256_over_the_timestamp_and_the_body() -> None:
    """The documented scheme, computed here independently of sscard's code."""
    body = '{"id": "e1", "seq": 1}'
    event = OutboxEvent(1, "e1", "card.frozen", "H00000012", "provisional_loss", "t", body)
    headers = signed_headers(Webhook("k", "http://h/", b"s" * 16), event, PINNED)
    timestamp = str(int(PINNED.timestamp()))
    mac = hmac.new(b"s" * 16, f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    assert headers == {
        "Content-Type": "application/json; charset=utf-8",
        "SSCard-Event-Id": "e1",
        "SSCard-Event-Seq": "1",
        "SSCard-Timestamp": timestamp,
        "SSCard-Signature": f"v1={mac}",
    }
