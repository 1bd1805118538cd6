"""A card pulled in the middle of a PIN reset or unblock at the street office, through real
pcscd + vpcd: the station reports the outcome as unknown (one clear error, audited), and the
card holds the old PIN state or the new one, never a mix; redoing the operation completes it
(simulator/sscard_card.py models tearing on every write the card takes)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from simulator.factory import SAMPLE_HOLDER
from simulator.sscard_card import Tearing
from tests.integration import test_street_office as street
from tests.integration.conftest import ServeCard
from tests.integration.test_street_office import Office, sscard

office = street.office  # the street office's fixtures: station file, registry, card, encoder
backend = street.backend
pytestmark = [pytest.mark.pcsc, pytest.mark.parametrize("backend", ["keystore"])]
OLD_PIN, NEW_PIN = "123456", "246813"


def verify_pin(o: Office, pin: str) -> bool:
    check = subprocess.run(
        [sys.executable, "-m", "personalize.cli", "card", "verify-pin", "--reader", o.reader],
        input=f"{pin}\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    return check.returncode == 0


def last_action(o: Office) -> str:
    row = o.registry.db.execute("SELECT action FROM audit_events ORDER BY id DESC LIMIT 1")
    return str(row.fetchone()["action"])


@pytest.mark.parametrize(
    ("mode", "after"), [("old", OLD_PIN), ("partial", OLD_PIN), ("new", NEW_PIN)]
)
def test_card_pulled_mid_pin_reset(
    office: Office, serve_card: ServeCard, mode: str, after: str
) -> None:
    office.card.tearing = Tearing(mode, kind="pin")  # type: ignore[arg-type]
    stdin = f"y\n{SAMPLE_HOLDER.ssn}\n{NEW_PIN}\n{NEW_PIN}\n"
    torn = sscard(office, "pin", "reset", stdin=stdin)
    assert torn.returncode == 1
    assert "结果未知" in torn.stderr and "outcome is unknown" in torn.stderr
    assert "Traceback" not in torn.stderr and NEW_PIN not in torn.stdout + torn.stderr
    assert last_action(office) == "pin.reset.unknown"
    assert office.card.pin.value == bytes.fromhex(after)  # old or new, never a mix
    assert office.card.pin.tries == office.card.pin.max_tries
    office.served = serve_card(office.card, slot=0)  # the operator puts the card back
    assert verify_pin(office, after)
    redo = sscard(office, "pin", "reset", stdin=stdin)
    assert redo.returncode == 0, redo.stderr
    assert last_action(office) == "pin.reset"
    assert verify_pin(office, NEW_PIN)


@pytest.mark.parametrize(("mode", "tries"), [("old", 0), ("new", 3)])
def test_card_pulled_mid_pin_unblock(
    office: Office, serve_card: ServeCard, mode: str, tries: int
) -> None:
    office.card.pin.tries = 0
    office.card.tearing = Tearing(mode, kind="pin")  # type: ignore[arg-type]
    torn = sscard(office, "pin", "unblock", stdin=f"y\n{SAMPLE_HOLDER.ssn}\n")
    assert torn.returncode == 1 and "结果未知" in torn.stderr
    assert last_action(office) == "pin.unblock.unknown"
    assert office.card.pin.tries == tries
    office.served = serve_card(office.card, slot=0)
    assert sscard(office, "pin", "unblock", stdin=f"y\n{SAMPLE_HOLDER.ssn}\n").returncode == 0
    assert office.card.pin.tries == 3


@pytest.mark.parametrize(("mode", "after"), [("partial", OLD_PIN), ("new", NEW_PIN)])
def test_card_pulled_mid_pin_change(
    office: Office, serve_card: ServeCard, mode: str, after: str
) -> None:
    office.card.tearing = Tearing(mode, kind="pin")  # type: ignore[arg-type]
    torn = subprocess.run(
        [sys.executable, "-m", "personalize.cli", "card", "change-pin", "--reader", office.reader],
        input=f"{OLD_PIN}\n{NEW_PIN}\n{NEW_PIN}\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert torn.returncode == 1 and "结果未知" in torn.stderr, torn.stderr
    assert office.card.pin.value == bytes.fromhex(after)
    office.served = serve_card(office.card, slot=0)
    assert verify_pin(office, after)
