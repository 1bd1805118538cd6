"""The audit key of tests that open a registry in-process: the ``audit`` key of a test
keystore (``Keystore.create_test``) in a local security module — the same HMAC the
``sscard`` subprocesses get through ``$SSCARD_HSM`` (tests/integration/conftest.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hsm_stub.keystore import Keystore
from hsm_stub.local import LocalSecurityModule
from personalize.auditlog import AuditKey

KEYSTORE = Path(tempfile.mkdtemp(prefix="sscard-test-audit-")) / "keystore.json"
AUDIT_KEY: AuditKey = LocalSecurityModule(Keystore.create_test(KEYSTORE)).audit_mac
# what `sscard` subprocesses are given (tests/conftest.py sets it for the whole run)
HSM_ENV = {"SSCARD_HSM": f"keystore:{KEYSTORE}"}
