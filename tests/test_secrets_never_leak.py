"""Runs last (tests/conftest.py): no test key, test LMK or client secret — and no card
number of the test stripes (the PANs every track-data test uses) — appears in any log, APDU
trace or exception message the suite produced, nor any test operator's password or test
webhook secret."""

from __future__ import annotations

from hsm_stub.keystore import TEST_CLIENTS, TEST_KEYS, TEST_LMK
from tests.conftest import WATCH
from tests.operators import PASSWORD as OPERATOR_PASSWORD
from tests.unit.test_operators import PASSWORD as UNIT_OPERATOR_PASSWORD
from tests.webhook_receiver import BANK_SECRET, KAGUAN_SECRET

# The PANs of the issuer track images used across the suite (encoder, printer, reissue and
# street-office tests).
TEST_PANS = ("6217991234567890123", "6222021234567890123")


def secret_forms() -> dict[str, str]:
    secrets = {label: value for label, (_, _, value) in TEST_KEYS.items()}
    secrets |= {"LMK": TEST_LMK}
    secrets |= {f"client secret of {c}": secret for c, (_, secret) in TEST_CLIENTS.items()}
    forms = {}
    for name, value in secrets.items():
        forms[value.hex()] = name
        forms[value.hex().upper()] = name
        forms[" ".join(f"{b:02X}" for b in value)] = name
        forms[value.decode("ascii")] = name
        forms[repr(value)] = name
    for pan in TEST_PANS:  # track data: the PAN is in every test stripe
        forms[pan] = "track data"
    for password in (OPERATOR_PASSWORD, UNIT_OPERATOR_PASSWORD):
        forms[password] = "operator password"
    for webhook_secret in (KAGUAN_SECRET, BANK_SECRET):
        forms[webhook_secret] = "webhook secret"
    return forms


def test_no_secret_in_any_log_trace_or_exception() -> None:
    # the watch saw the suite: it is not vacuous
    assert len(WATCH.traces) > 200, "the suite produced too few APDU events to judge"
    assert len(WATCH.exceptions) > 100, "the suite produced too few exceptions to judge"
    assert WATCH.logs, "the suite produced no log records to judge"
    forms = secret_forms()
    # the detector itself finds a leak when there is one
    planted = f"key loaded: {TEST_KEYS['update'][2].hex().upper()}"
    assert any(form in planted for form in forms)
    leaks = []
    for kind, texts in (
        ("log", WATCH.logs),
        ("trace", WATCH.traces),
        ("exception", WATCH.exceptions),
    ):
        for text in texts:
            for form, name in forms.items():
                if form in text:
                    leaks.append(f"{kind} shows the {name}: {text[:120]!r}")
    assert not leaks, "\n".join(leaks[:20])
