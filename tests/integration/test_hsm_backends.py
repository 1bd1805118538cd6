"""The three SecurityModule backends — in-process, TCP server, PSAM in a reader through
pcscd — give byte-identical results, equal to the cryptograms computed directly from the
documented test keys."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest

from apdu.pcsc import PcscTransport
from apdu.trace import RecordingTrace
from hsm_stub import cryptograms
from hsm_stub.cryptograms import CardFactors
from hsm_stub.errors import Forbidden, KeyUsageError, UnknownKey
from hsm_stub.keystore import TEST_CLIENTS, TEST_KEYS, Keystore
from hsm_stub.local import LocalSecurityModule
from hsm_stub.module import SecurityModule
from hsm_stub.psam import PsamSecurityModule
from hsm_stub.suites import TDES
from simulator.psam import new_psam
from tests.integration.conftest import RunningServer, ServeCard

H = bytes.fromhex
CARDS = [
    CardFactors.for_card(H("0102030405060708"), "371700"),
    CardFactors.for_card(H("8877665544332211"), "110105"),
]
CHALLENGE = H("A1B2C3D4E5F60718")
AUTH_FACTOR = H("1122334455667788")
ROOT = {label: value for label, (_, usage, value) in TEST_KEYS.items() if usage != "audit-mac"}
AUDIT_ROOT = TEST_KEYS["audit"][2]  # the registry's audit-chain key: never in a PSAM


def reference() -> dict[str, bytes]:
    """What every backend must answer, from the pure functions and the test keys."""
    out: dict[str, bytes] = {}
    for i, f in enumerate(CARDS):
        for label in ("update", "read", "mk"):
            key = cryptograms.derive_card_key(TDES, ROOT[label], f)
            out[f"auth/{label}/{i}"] = cryptograms.external_auth_data(
                TDES, key, CHALLENGE, AUTH_FACTOR
            )
        pin_key = cryptograms.derive_card_key(TDES, ROOT["pin"], f)
        out[f"mac/{i}"] = cryptograms.command_mac(TDES, pin_key, CHALLENGE, H("8424000004"))
        out[f"pin/{i}"] = cryptograms.pin_reset_data(TDES, pin_key, CHALLENGE, "654321")
        data12 = H("371700D156000005") + f.card[4:]
        out[f"id/{i}"] = cryptograms.card_id_mac(TDES, ROOT["irk"], f.card, data12)
        internal_key = cryptograms.derive_card_key(TDES, ROOT["internal"], f)
        for n, data in enumerate((CHALLENGE, CHALLENGE + AUTH_FACTOR)):
            out[f"internal/{n}/{i}"] = cryptograms.internal_auth_response(TDES, internal_key, data)
    for label in ROOT:
        out[f"kcv/{label}"] = TDES.kcv(ROOT[label])
    return out


def ask(module: SecurityModule) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for i, f in enumerate(CARDS):
        for label in ("update", "read", "mk"):
            out[f"auth/{label}/{i}"] = module.external_auth(label, f, CHALLENGE, AUTH_FACTOR)
        out[f"mac/{i}"] = module.command_mac("pin", f, CHALLENGE, H("8424000004"))
        out[f"pin/{i}"] = module.pin_reset_block("pin", f, CHALLENGE, "654321")
        out[f"id/{i}"] = module.card_id_mac("irk", f.card, H("371700D156000005") + f.card[4:])
        for n, data in enumerate((CHALLENGE, CHALLENGE + AUTH_FACTOR)):
            out[f"internal/{n}/{i}"] = module.internal_auth("internal", f, data)
    for label in ROOT:
        out[f"kcv/{label}"] = module.kcv(label)
    return out


@pytest.fixture(params=["in-process", "tcp", "psam"])
def backend(
    request: pytest.FixtureRequest,
    test_keystore: Keystore,
    hsm_server: RunningServer,
) -> Iterator[SecurityModule]:
    if request.param == "in-process":
        yield LocalSecurityModule(test_keystore)
    elif request.param == "tcp":
        with hsm_server.client() as client:
            yield client
    else:
        serve_card: ServeCard = request.getfixturevalue("serve_card")
        served = serve_card(new_psam(test_keystore, role="card-center"), slot=1)
        with PcscTransport(served.reader) as transport:
            trace = RecordingTrace()
            transport.add_observer(trace)
            yield PsamSecurityModule(transport)
        # the PIN never crosses the reader in clear: its block is redacted in the trace
        assert not any("654321" in e.command + e.response for e in trace.events)


def test_backends_give_identical_results(backend: SecurityModule) -> None:
    assert ask(backend) == reference()


def test_internal_auth_matches_an_independent_implementation(backend: SecurityModule) -> None:
    """The expected INTERNAL AUTHENTICATE answer for card 0102030405060708 of region 371700
    under the test root ``internal`` ("SSCARD TEST INT1"), by openssl alone — each
    diversification step Div(K, D) = 3DES_K(D) ‖ 3DES_K(~D), province then city then card:
      enc() { printf $2 | xxd -r -p | openssl enc -des-ede-ecb -nopad -K $1 | xxd -p; }
      K1 = enc(root, 3337303030307368) ‖ enc(root, CCC8CFCFCFCF8C97)        # "370000sh"
      K2 = enc(K1, 3337313730307378) ‖ enc(K1, CCC8CEC8CFCF8C87)            # "371700sx"
      K3 = enc(K2, 0102030405060708) ‖ enc(K2, FEFDFCFBFAF9F8F7)            # the SN
         = DF3D26718D5B790D12218A1DFEBA46AD
      enc(K3, A1B2C3D4E5F607181122334455667788) = 896BC1EC9176781E84E6B4F22C5832DB"""
    data = CHALLENGE + AUTH_FACTOR
    assert backend.internal_auth("internal", CARDS[0], data) == H(
        "896BC1EC9176781E84E6B4F22C5832DB"
    )
    assert backend.internal_auth("internal", CARDS[0], CHALLENGE) == H("896BC1EC9176781E")
    if not isinstance(backend, PsamSecurityModule):  # a PSAM's slots are typed, not checked
        with pytest.raises(KeyUsageError):
            backend.internal_auth("update", CARDS[0], CHALLENGE)


def test_backends_refuse_alike(backend: SecurityModule) -> None:
    with pytest.raises(UnknownKey):
        backend.external_auth("nope", CARDS[0], CHALLENGE, AUTH_FACTOR)
    if isinstance(backend, PsamSecurityModule):
        return  # a PSAM's key table has no usage to refuse by: its slots are typed
    with pytest.raises(KeyUsageError):
        backend.card_id_mac("update", CARDS[0].card, bytes(12))
    with pytest.raises(KeyUsageError):
        backend.pin_reset_block("irk", CARDS[0], CHALLENGE, "123456")


def test_audit_mac_is_the_hmac_of_the_audit_key(backend: SecurityModule) -> None:
    """The registry's audit chain: HMAC-SHA256 (RFC 2104) under the ``audit`` key, the same
    through every backend that holds it; a PSAM holds none and says so."""
    data = "审计事件 event 1".encode()
    if isinstance(backend, PsamSecurityModule):
        with pytest.raises(KeyUsageError, match="audit_hsm"):
            backend.audit_mac(data)
        return
    assert backend.audit_mac(data) == hmac.new(AUDIT_ROOT, data, hashlib.sha256).digest()
    with pytest.raises(KeyUsageError):
        backend.audit_mac(data, "irk")  # a card key is not an audit key


def test_internal_auth_over_tcp_is_audited_without_data(hsm_server: RunningServer) -> None:
    """Operation 16 (docs/security-module.md): one audit line per use — client, op, label,
    the card's SN — and a refusal for an office asking with a key its role may not use."""
    _, office_secret = TEST_CLIENTS["test-office"]
    with hsm_server.client(client_id="test-office", secret=office_secret) as office:
        office.internal_auth("internal", CARDS[1], CHALLENGE)  # an office may check a card
        with pytest.raises(Forbidden):
            office.internal_auth("update", CARDS[1], CHALLENGE)
    entries = [json.loads(line) for line in hsm_server.audit_path.read_text().splitlines()]
    assert [(e["op"], e["label"], e["sn"], e["result"]) for e in entries] == [
        ("internal-auth", "internal", "8877665544332211", "ok"),
        ("internal-auth", "update", "8877665544332211", "Forbidden"),
    ]
    assert CHALLENGE.hex() not in hsm_server.audit_path.read_text().lower()
