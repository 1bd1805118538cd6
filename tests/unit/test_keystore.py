"""Keystore at rest: LMK from components, tamper detection, usage rules, no clear keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hsm_stub.errors import (
    Forbidden,
    KeystoreError,
    KeystoreTampered,
    KeyUsageError,
    UnknownKey,
    WrongComponents,
)
from hsm_stub.keystore import TEST_KEYS, TEST_LMK, Keystore
from hsm_stub.suites import TDES

LMK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


@pytest.fixture
def store(tmp_path: Path) -> Keystore:
    s = Keystore.create(tmp_path / "ks.json", LMK, custodians=3)
    s.put("update", "3DES", "external-auth", KEY)
    return s


def test_round_trip_and_listing(store: Keystore) -> None:
    again = Keystore.open(store.path, LMK)
    (info,) = again.list()
    assert (info.label, info.algorithm, info.usage, info.version) == (
        "update",
        "3DES",
        "external-auth",
        1,
    )
    assert info.kcv == bytes.fromhex("08D7B4")
    assert again.custodians == 3 and not again.test
    suite, value = again.use("update", "external-auth")
    assert suite is TDES and value == KEY


def test_no_clear_key_in_file_repr_or_listing(store: Keystore) -> None:
    text = store.path.read_text()
    shown = repr(store) + json.dumps([k.as_dict() for k in store.list()])
    for form in (KEY.hex(), KEY.hex().upper(), LMK.hex(), LMK.hex().upper()):
        assert form not in text and form not in shown


def test_wrong_components_change_nothing(store: Keystore) -> None:
    before = store.path.read_bytes()
    with pytest.raises(WrongComponents, match="nothing was changed"):
        Keystore.open(store.path, bytes(16))
    with pytest.raises(WrongComponents, match="production keystore"):
        Keystore.open(store.path)
    assert store.path.read_bytes() == before


@pytest.mark.parametrize("field", ["ciphertext", "nonce", "salt", "test", "custodians"])
def test_tampering_is_detected(store: Keystore, field: str) -> None:
    header = json.loads(store.path.read_text())
    value = header[field]
    if isinstance(value, bool):
        header[field] = not value
    elif isinstance(value, int):
        header[field] = value + 1
    else:
        header[field] = ("0" if value[0] != "0" else "1") + value[1:]
    store.path.write_text(json.dumps(header))
    with pytest.raises((KeystoreTampered, WrongComponents)):
        Keystore.open(store.path, LMK)
    if field == "test":  # a production keystore made to look like a test one
        with pytest.raises(KeystoreTampered):
            Keystore.open(store.path)


def test_truncated_or_foreign_files(tmp_path: Path, store: Keystore) -> None:
    store.path.write_text(store.path.read_text()[:100])
    with pytest.raises(KeystoreTampered):
        Keystore.open(store.path, LMK)
    other = tmp_path / "other.json"
    other.write_text('{"format": "something-else"}')
    with pytest.raises(KeystoreTampered, match="not a sscard-keystore"):
        Keystore.open(other, LMK)
    with pytest.raises(KeystoreError, match="does not exist"):
        Keystore.open(tmp_path / "missing.json", LMK)


def test_usage_and_algorithm_rules(store: Keystore) -> None:
    with pytest.raises(UnknownKey, match="'nope'"):
        store.use("nope", "external-auth")
    with pytest.raises(KeyUsageError, match="does not allow card-id-mac"):
        store.use("update", "card-id-mac")
    with pytest.raises(KeyUsageError, match="cannot have usage 'card-id-mac'"):
        store.put("irk", "3DES", "card-id-mac", bytes(range(24)))
    with pytest.raises(KeyUsageError, match="cannot have usage"):
        store.put("weak", "3DES", "master", bytes(8))
    with pytest.raises(KeyUsageError, match="unknown usage"):
        store.put("x", "3DES", "everything", KEY)
    with pytest.raises(KeystoreError, match="label"):
        store.put("Bad Label", "3DES", "master", KEY)
    info = store.put("irk", "SM4", "card-id-mac", KEY)
    assert info.algorithm == "SM4"


def test_new_version_replaces(store: Keystore) -> None:
    info = store.put("update", "3DES", "external-auth", bytes(range(16)))
    assert info.version == 2
    assert Keystore.open(store.path, LMK).info("update").version == 2


def test_refuses_to_overwrite(store: Keystore) -> None:
    with pytest.raises(KeystoreError, match="refusing to overwrite"):
        Keystore.create(store.path, LMK)


def test_test_keystore_opens_without_components(tmp_path: Path) -> None:
    store = Keystore.create_test(tmp_path / "test.json")
    again = Keystore.open(store.path)
    assert again.test
    assert {k.label for k in again.list()} == set(TEST_KEYS)
    for label, (_, _, value) in TEST_KEYS.items():
        assert again.info(label).kcv == TDES.kcv(value)
    assert len(TEST_LMK) == 16


def test_a_component_wrong_only_in_parity_bits_is_a_wrong_component(tmp_path: Path) -> None:
    """DES ignores the low bit of every byte, so the KCV cannot see a parity-only error;
    the keystore still must not call it tampering."""
    store = Keystore.create(tmp_path / "p.json", LMK)
    store.put("update", "3DES", "external-auth", KEY)
    before = store.path.read_bytes()
    parity_only = bytes([LMK[0] ^ 0x01]) + LMK[1:]
    assert TDES.kcv(parity_only) == TDES.kcv(LMK)
    with pytest.raises(WrongComponents, match="parity"):
        Keystore.open(store.path, parity_only)
    assert store.path.read_bytes() == before
    assert Keystore.open(store.path, LMK).info("update").kcv == bytes.fromhex("08D7B4")


def test_clients_are_kept_encrypted_with_their_role(store: Keystore) -> None:
    secret = store.add_client("office-01", "office")
    assert len(secret) == 32
    again = Keystore.open(store.path, LMK)
    client = again.client("office-01")
    assert client is not None and client.role == "office"
    assert client.secret.value == secret
    assert again.client("nobody") is None
    text = store.path.read_text()
    assert secret.hex() not in text and secret.hex().upper() not in text
    assert "office-01" not in text  # the registry is inside the encrypted table
    with pytest.raises(KeystoreError, match="exists"):
        again.add_client("office-01", "office")
    with pytest.raises(KeystoreError, match="role"):
        again.add_client("office-02", "janitor")
    with pytest.raises(KeystoreError, match="16"):
        again.add_client("office-03", "office", secret=b"short")
    assert [(c.id, c.role) for c in again.clients()] == [("office-01", "office")]


def test_roles_allow_usages_offices_never_update_or_master(tmp_path: Path) -> None:
    store = Keystore.create_test(tmp_path / "t.json")
    for label in ("read", "pin", "irk"):
        store.use(label, "card-id-mac" if label == "irk" else "command-mac" if label == "pin"
                  else "external-auth", role="office")  # fmt: skip
    for label in ("update", "mk"):
        with pytest.raises(Forbidden, match="office"):
            store.use(label, "external-auth", role="office")
        store.use(label, "external-auth", role="card-center")
    assert {c.id: c.role for c in store.clients()} == {
        "test-center": "card-center",
        "test-office": "office",
    }


def test_production_keys_are_never_exported_in_clear(store: Keystore, tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="production"):
        store.export_for_issuance("update")
    test = Keystore.create_test(tmp_path / "t.json")
    assert test.export_for_issuance("update") == ("3DES", TEST_KEYS["update"][2])
