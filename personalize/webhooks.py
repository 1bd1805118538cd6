"""Webhook destinations of the outbox (回盘, issue 15 Deliver 5; docs/outbox.md): their
configuration (``outbox.toml``), the signature scheme and one delivery over HTTP(S) with the
standard library.

The signature (docs/outbox.md "Signature"): ``SSCard-Signature: v1=<hex>``, the HMAC-SHA256
under the destination's shared secret of ``<SSCard-Timestamp>.<body>`` — the Unix time of
the attempt in decimal, a full stop, then the body's bytes exactly as sent — as Stripe's
webhook signatures sign a timestamp with the body, so a receiver can refuse a replayed old
request, and a retried event is still recognised by its id (in the body, so signed, and in
``SSCard-Event-Id``).
The secret is read from an environment variable or a file (never from ``outbox.toml``), and
is never logged, shown or stored.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import os
import re
import ssl
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from personalize.outbox_store import OutboxEvent

SIGNATURE_HEADER = "SSCard-Signature"
TIMESTAMP_HEADER = "SSCard-Timestamp"
EVENT_ID_HEADER = "SSCard-Event-Id"
EVENT_SEQ_HEADER = "SSCard-Event-Seq"
NAME = re.compile(r"[\w.\-]{1,32}")
MIN_SECRET = 16
DESTINATION_KEYS = frozenset(
    {"name", "url", "secret_env", "secret_file", "timeout_seconds", "ca_file", "retry"}
)
RETRY_KEYS = frozenset({"first_seconds", "max_seconds", "max_attempts"})
RESPONSE_LIMIT = 64 * 1024  # bytes of a receiver's answer read before the connection closes


class WebhookConfigError(Exception):
    """``outbox.toml`` or a destination's secret is missing or wrong."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff, capped: after the n-th failed try of an event the next is
    ``min(max_seconds, first_seconds * 2**(n-1))`` later; after ``max_attempts`` tries the
    dispatcher gives up (``failed``, until ``sscard outbox retry``); 0: never gives up. The
    defaults keep trying a receiver that is down for an hour and more (30 tries ≈ 2 h)."""

    first_seconds: float = 1.0
    max_seconds: float = 300.0
    max_attempts: int = 30

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed try."""
        return float(min(self.max_seconds, self.first_seconds * 2 ** (attempts - 1)))

    def gives_up(self, attempts: int) -> bool:
        return self.max_attempts > 0 and attempts >= self.max_attempts


@dataclass(frozen=True)
class Webhook:
    """A configured destination: where events go and the secret they are signed with."""

    name: str
    url: str
    secret: bytes = field(repr=False)  # never in a repr, a log or an error
    retry: RetryPolicy = RetryPolicy()
    timeout_seconds: float = 10.0
    ca_file: str | None = None  # the CA of a private https receiver (default: the system's)


@dataclass(frozen=True)
class Attempt:
    """One delivery try: acknowledged (a 2xx) or the one-line reason it was not."""

    ok: bool
    error: str = ""


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`` (module docstring)."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def signed_headers(webhook: Webhook, event: OutboxEvent, now: datetime) -> dict[str, str]:
    """The headers of one try of ``event`` at ``now``."""
    timestamp = int(now.timestamp())
    return {
        "Content-Type": "application/json; charset=utf-8",
        EVENT_ID_HEADER: event.event_id,
        EVENT_SEQ_HEADER: str(event.seq),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(webhook.secret, timestamp, event.body.encode()),
    }


def post(webhook: Webhook, event: OutboxEvent, now: datetime) -> Attempt:
    """POST ``event`` to the webhook (http.client: no redirect followed, no proxy); a 2xx
    acknowledges it, anything else — another status, a refused or timed-out connection — is
    a failed try."""
    url = urlsplit(webhook.url)
    connection: http.client.HTTPConnection
    if url.scheme == "https":
        connection = http.client.HTTPSConnection(
            url.hostname or "",
            url.port,
            timeout=webhook.timeout_seconds,
            context=ssl.create_default_context(cafile=webhook.ca_file),
        )
    else:
        connection = http.client.HTTPConnection(
            url.hostname or "", url.port, timeout=webhook.timeout_seconds
        )
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    try:
        connection.request(
            "POST", path, body=event.body.encode(), headers=signed_headers(webhook, event, now)
        )
        response = connection.getresponse()
        response.read(RESPONSE_LIMIT)  # the answer's body is not used: its status is
    except (OSError, http.client.HTTPException) as exc:
        return Attempt(False, f"连接失败 (connection failed: {type(exc).__name__}: {exc})")
    finally:
        connection.close()
    if 200 <= response.status < 300:
        return Attempt(True)
    return Attempt(False, f"HTTP {response.status} {response.reason}")


# ------------------------------------------------------------------ outbox.toml


def _refuse(where: str, chinese: str, english: str) -> WebhookConfigError:
    return WebhookConfigError(f"{where}：{chinese} ({english})")


def _seconds(table: dict[str, Any], key: str, default: float, where: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise _refuse(where, f"{key} 须为正数秒", f"{key} must be a positive number of seconds")
    return float(value)


def _secret(entry: dict[str, Any], where: str) -> bytes:
    """The secret named by ``secret_env`` or ``secret_file`` (exactly one); a file others
    may read is refused, as a session file is."""
    env, path = entry.get("secret_env"), entry.get("secret_file")
    if (env is None) == (path is None):
        raise _refuse(
            where, "须给出 secret_env 或 secret_file 之一", "give one of secret_env, secret_file"
        )
    if env is not None:
        text = os.environ.get(str(env), "")
        if not text:
            raise _refuse(where, f"环境变量 {env} 未设置", f"${env} is not set")
    else:
        file = Path(str(path))
        try:
            if file.stat().st_mode & 0o077:
                raise _refuse(
                    where, f"密钥文件 {file} 权限过宽", "the secret file is readable by others"
                )
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise _refuse(
                where, f"无法读取密钥文件 {file}", f"cannot read it: {exc.strerror}"
            ) from None
    secret = text.strip().encode()
    if len(secret) < MIN_SECRET:
        raise _refuse(
            where, f"密钥至少 {MIN_SECRET} 个字符", f"the secret needs {MIN_SECRET} characters"
        )
    return secret


def _known_keys(table: dict[str, Any], known: frozenset[str], where: str) -> None:
    """A key this file does not have (a typo, or a secret written into it) is refused,
    named but never its value."""
    unknown = sorted(set(table) - known)
    if unknown:
        raise _refuse(
            where,
            f"未知的设置 {', '.join(unknown)}（密钥只能来自 secret_env 或 secret_file）",
            "unknown keys; secrets come only from secret_env or secret_file",
        )


def _webhook(entry: dict[str, Any], where: str) -> Webhook:
    name = entry.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise _refuse(where, "name 须为字母、数字、_ . -，至多 32 个", "name is not valid")
    where = f"{where} {name}"
    _known_keys(entry, DESTINATION_KEYS, where)
    url = str(entry.get("url", ""))
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refuse(where, "url 须为 http:// 或 https:// 地址", "url must be http(s)://HOST/…")
    try:
        parts.port  # noqa: B018 (parsed on access: a port that is not a number raises)
    except ValueError:
        raise _refuse(where, "url 的端口无效", "the url's port is not valid") from None
    if parts.username is not None or parts.password is not None:
        raise _refuse(
            where, "url 中不得含用户名或口令", "no credentials in the url: use secret_env/file"
        )
    retry = entry.get("retry", {})
    if not isinstance(retry, dict):
        raise _refuse(where, "retry 须为表", "retry must be a table")
    _known_keys(retry, RETRY_KEYS, f"{where} retry")
    attempts = retry.get("max_attempts", RetryPolicy.max_attempts)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
        raise _refuse(where, "max_attempts 须为非负整数", "max_attempts must be an integer ≥ 0")
    policy = RetryPolicy(
        first_seconds=_seconds(retry, "first_seconds", RetryPolicy.first_seconds, where),
        max_seconds=_seconds(retry, "max_seconds", RetryPolicy.max_seconds, where),
        max_attempts=attempts,
    )
    timeout = _seconds(entry, "timeout_seconds", Webhook.timeout_seconds, where)
    ca_file = entry.get("ca_file")
    if ca_file is not None and (parts.scheme != "https" or not Path(str(ca_file)).is_file()):
        raise _refuse(
            where, f"ca_file {ca_file} 须为 https 地址的 CA 证书文件", "ca_file: no such CA file"
        )
    return Webhook(
        name, url, _secret(entry, where), policy, timeout, None if ca_file is None else str(ca_file)
    )


def load_webhooks(path: Path) -> list[Webhook]:
    """The ``[[destination]]`` tables of ``outbox.toml`` (docs/outbox.md), each with its
    secret read, names unique; refused with a one-line reason naming the file."""
    where = f"回盘配置 {path}"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _refuse(where, "无法读取", f"cannot read the file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise _refuse(where, "不是有效的 TOML", f"not valid TOML: {exc}") from None
    entries = data.get("destination")
    if not isinstance(entries, list) or not entries:
        raise _refuse(where, "没有 [[destination]]", "no [[destination]] table")
    webhooks = [_webhook(e, where) for e in entries if isinstance(e, dict)]
    names = [w.name for w in webhooks]
    if len(webhooks) != len(entries) or len(set(names)) != len(names):
        raise _refuse(where, "目的地须为表且名称不重复", "destinations are tables, names unique")
    return webhooks
