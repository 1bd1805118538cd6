"""Runs last (tests/conftest.py): no test key, test LMK or client secret appears in any
log, APDU trace or exception message the suite produced."""

from __future__ import annotations

from hsm_stub.keystore import TEST_CLIENT_SECRET, TEST_KEYS, TEST_LMK
from tests.conftest import WATCH


def secret_forms() -> dict[str, str]:
    secrets = {label: value for label, (_, _, value) in TEST_KEYS.items()}
    secrets |= {"LMK": TEST_LMK, "client secret": TEST_CLIENT_SECRET}
    forms = {}
    for name, value in secrets.items():
        forms[value.hex()] = name
        forms[value.hex().upper()] = name
        forms[" ".join(f"{b:02X}" for b in value)] = name
        forms[value.decode("ascii")] = name
        forms[repr(value)] = name
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
                    leaks.append(f"{kind} shows the {name} key: {text[:120]!r}")
    assert not leaks, "\n".join(leaks[:20])
