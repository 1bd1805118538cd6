"""A webhook receiver as the card-management system (卡管) or the bank would run one
(docs/outbox.md "Receiving"): a real stdlib HTTP server on 127.0.0.1 in a thread that checks
each request's signature with its own HMAC code (not sscard's), refuses a stale timestamp,
and deduplicates by event id. It can be taken down (its port closed) and brought back on the
same port, or made to answer an error while up."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import json
import ssl
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# The test destinations' shared secrets (tests/test_secrets_never_leak.py looks for them).
KAGUAN_SECRET = "kaguan-webhook-test-secret-7f3a"
BANK_SECRET = "bank-webhook-test-secret-c41d9e"
TOLERANCE = 300  # seconds a signed timestamp may be off the receiver's clock


class Receiver:
    """``received``: the events accepted, first deliveries only, in arrival order;
    ``deliveries``: how often each event id was accepted (a repeat is answered 200 and not
    kept twice); ``tries``: every request; ``refused``: why requests were refused."""

    def __init__(
        self,
        secret: str,
        *,
        now: Callable[[], float] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.secret = secret.encode()
        self.tls = tls  # serve https with this context
        self.now = now  # the receiver's clock (Unix seconds); None: no freshness check
        self.answer = 200  # what an up receiver's application answers
        self.received: list[dict[str, Any]] = []
        self.deliveries: Counter[str] = Counter()
        self.tries = 0
        self.refused: list[str] = []
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        scheme = "http" if self.tls is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}/sscard/events"

    def up(self) -> Receiver:
        """Listen (again, on the same port once it had one)."""
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def down(self) -> None:
        """Close the port: a connection is refused until ``up()``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _verdict(self, headers: Any, body: bytes) -> tuple[int, str]:
        """The receiver's own check: HMAC-SHA256 over "<timestamp>." + body, a fresh
        timestamp, the body's id the header's; then deduplication by id."""
        timestamp = headers.get("SSCard-Timestamp", "")
        expected = hmac.new(self.secret, timestamp.encode() + b"." + body, hashlib.sha256)
        given = headers.get("SSCard-Signature", "")
        if not hmac.compare_digest("v1=" + expected.hexdigest(), given):
            return 401, "bad signature"
        if self.now is not None and abs(self.now() - int(timestamp)) > TOLERANCE:
            return 401, "stale timestamp"
        event = json.loads(body)
        if event["id"] != headers.get("SSCard-Event-Id") or str(event["seq"]) != headers.get(
            "SSCard-Event-Seq"
        ):
            return 400, "headers do not match the body"
        if self.answer != 200:
            return self.answer, "application error"
        if self.deliveries[event["id"]] == 0:
            self.received.append(event)
        self.deliveries[event["id"]] += 1
        return 200, "ok"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.tries += 1
                    status, why = receiver._verdict(self.headers, body)
                    if status != 200:
                        receiver.refused.append(why)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test reads the receiver's lists

        return Handler


def self_signed_tls(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A private CA's certificate for 127.0.0.1 (as a card center's 卡管 might have): the
    receiver's server context, and the certificate file a client trusts it by."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kaguan test receiver")])
    start = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=365 * 30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "receiver.pem", directory / "receiver.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file
