"""``sscard hsm`` and ``sscard sim new-psam`` as an operator runs them: the ceremony over
piped answers, components never echoed, wrong components refused with nothing changed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hsm_stub.keystore import Keystore
from hsm_stub.suites import TDES
from simulator.cardfile import load_card
from simulator.psam import PsamCard

SSCARD = [sys.executable, "-m", "personalize.cli"]
LMK_1 = "00112233445566778899AABBCCDDEEFF"
LMK_2 = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"
KEY_1 = "1111111111111111AAAAAAAAAAAAAAAA"
KEY_2 = "2222222222222222BBBBBBBBBBBBBBBB"
SECRETS = [LMK_1, LMK_2, KEY_1, KEY_2]


def run(*args: str, answers: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SSCARD, *args],
        input="\n".join(answers) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )


def xor(a: str, b: str) -> bytes:
    return bytes(x ^ y for x, y in zip(bytes.fromhex(a), bytes.fromhex(b), strict=True))


def test_ceremony_import_list_and_wrong_components(tmp_path: Path) -> None:
    ks = tmp_path / "prod.json"
    outputs = []
    init = run("hsm", "init", "--keystore", str(ks), answers=[LMK_1, "y", LMK_2, "y"])
    assert init.returncode == 0, init.stderr
    outputs.append(init)
    assert TDES.kcv(bytes.fromhex(LMK_1)).hex().upper() in init.stderr
    assert TDES.kcv(xor(LMK_1, LMK_2)).hex().upper() in init.stderr

    imp = run(
        "hsm",
        "import-key",
        "--keystore",
        str(ks),
        "--label",
        "update",
        "--usage",
        "external-auth",
        "--components",
        "2",
        answers=[LMK_1, "y", LMK_2, "y", KEY_1, "y", KEY_2, "y"],
    )
    assert imp.returncode == 0, imp.stderr
    outputs.append(imp)
    key_kcv = TDES.kcv(xor(KEY_1, KEY_2)).hex().upper()
    assert json.loads(imp.stdout)["kcv"] == key_kcv

    listing = run("hsm", "list", "--keystore", str(ks), "--json", answers=[LMK_1, "y", LMK_2, "y"])
    outputs.append(listing)
    assert json.loads(listing.stdout)["keys"][0] == {
        "label": "update",
        "algorithm": "3DES",
        "usage": "external-auth",
        "version": 1,
        "kcv": key_kcv,
    }

    before = ks.read_bytes()
    wrong = run("hsm", "list", "--keystore", str(ks), answers=[LMK_1, "y", KEY_1, "y"])
    outputs.append(wrong)
    assert wrong.returncode == 1
    assert "WrongComponents" in wrong.stderr and "nothing was changed" in wrong.stderr
    assert ks.read_bytes() == before

    refused = run("hsm", "init", "--keystore", str(tmp_path / "x.json"), answers=[LMK_1, "n"])
    outputs.append(refused)
    assert refused.returncode == 1 and "did not confirm" in refused.stderr
    assert not (tmp_path / "x.json").exists()

    for out in outputs:  # no component, key or LMK is ever echoed or printed
        for secret in [*SECRETS, xor(LMK_1, LMK_2).hex().upper(), xor(KEY_1, KEY_2).hex().upper()]:
            assert secret not in out.stdout + out.stderr
            assert secret.lower() not in (out.stdout + out.stderr).lower()


def test_test_keystore_and_psam_card_file(tmp_path: Path) -> None:
    ks = tmp_path / "test.json"
    assert run("hsm", "init", "--keystore", str(ks), "--test-keys", answers=[]).returncode == 0
    again = run("hsm", "init", "--keystore", str(ks), "--test-keys", answers=[])
    assert again.returncode == 1 and "refusing to overwrite" in again.stderr
    out = tmp_path / "psam.json"
    made = run(
        "sim", "new-psam", "--keystore", str(ks), "--out", str(out), "--role", "card-center",
        answers=[],
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    psam = load_card(out, persist=False)
    # mk, update, read, pin, irk and internal (INTERNAL AUTHENTICATE of spec-3.00 cards)
    assert isinstance(psam, PsamCard) and len(psam.keys) == 6
    store = Keystore.open(ks)
    kcvs = {TDES.kcv(value) for _, value in psam.keys.values()}
    # every card key; never the registry's audit key (the card center's module keeps it)
    assert kcvs == {k.kcv for k in store.list() if k.usage != "audit-mac"}
