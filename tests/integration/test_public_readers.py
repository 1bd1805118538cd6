"""Other people's reader software against the virtual 社保卡: the APDU sequences of the public
社保卡 readers, replayed through pyscard → pcscd → vpcd, and judged the way each public
reader judges the answers (docs/testing-with-virtual-cards.md, docs/chip-application.md §1).

Each sequence is data in ``tests/integration/data/public_readers/`` — our own transcription
of the public source file it names, with how that code judges each answer and, per card
profile and quirk, whether the public reader gets through (``pass``) or where it gives up
(``abort`` at a step, with the status word it saw). Those outcomes come from the public code
and the real card's log, never from running our card.

The replay talks to pcscd with pyscard directly (``smartcard.System.readers()``,
``connection.transmit``), as third-party software does — not through the project's apdu layer.
Then ``sscard card read --json`` reads the holder off a card of every profile and every quirk.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from smartcard.CardConnection import CardConnection
from smartcard.System import readers

from hsm_stub.cryptograms import CardFactors
from hsm_stub.keystore import Keystore
from hsm_stub.local import LocalSecurityModule
from simulator.cardfile import load_card
from tests.card_read import card_read_json
from tests.cli import run_sscard
from tests.integration.conftest import ServeCard

pytestmark = pytest.mark.pcsc

DATA = Path(__file__).parent / "data" / "public_readers"
SERIAL = "0102030405060708"  # every replayed card gets this SN: 卡识别码 carries 05060708
# Per profile: the region the card is issued for and the 规范版本 the profile's card carries
# (docs/chip-application.md, "The agreed profiles").
REGION = {"default": "330100", "hunan": "430100", "jiangsu": "320100", "pin-read": "440300"}
SPEC_VERSION = {"default": "3.00", "hunan": "2.00", "jiangsu": "3.00", "pin-read": "2.00"}
LEVELS = {"default": 3, "hunan": 3, "jiangsu": 2, "pin-read": 3}  # key diversification levels
IMAGE_DIR = Path(__file__).parents[2] / "simulator" / "images"
# Every quirk of simulator/quirks.py (the names are the contract of `sim new-card --quirk`).
QUIRKS = (
    "pad-20",
    "pad-ff",
    "no-4e",
    "fci-on-select-ef",
    "strict-le",
    "always-61xx",
    "sfi-only",
    "max-le=128",
    "id-15",
)
PROFILES = ("default", "hunan", "jiangsu", "pin-read")


# --- the replayed sequences, as data ---------------------------------------------------------


def card_pin(profile: str) -> str:
    """The PIN a new card of ``profile`` carries: its card image's ``[pin] default``."""
    with open(IMAGE_DIR / f"{profile}.toml", "rb") as f:
        return str(tomllib.load(f)["pin"]["default"])


@dataclass(frozen=True)
class Step:
    apdu: str  # hex; {pin} stands for the card's PIN
    what: str
    accept: dict[str, Any]
    data: dict[str, Any] | None = None
    only_if_spec: str | None = None
    only_if_previous_sw1_not: str | None = None
    capture: str | None = None  # keep the answer's data as {name} for later APDUs


@dataclass(frozen=True)
class Sequence:
    name: str
    source: str
    get_response: bool  # the public reader's driver fetches 61xx answers with 00C0
    steps: tuple[Step, ...]
    outcomes: tuple[dict[str, Any], ...]


def load_sequences() -> list[Sequence]:
    out = []
    for path in sorted(DATA.glob("*.json")):
        d = json.loads(path.read_text(encoding="utf-8"))
        steps = tuple(
            Step(
                apdu=s["apdu"],
                what=s["what"],
                accept=s["accept"],
                data=s.get("data"),
                only_if_spec=s.get("only_if_spec"),
                only_if_previous_sw1_not=s.get("only_if_previous_sw1_not"),
                capture=s.get("capture"),
            )
            for s in d["steps"]
        )
        source = f"{d['source']['repository']} {d['source']['file']} ({d['source']['function']})"
        transport = {"raw": False, "get-response": True}[d["transport"]]
        out.append(Sequence(d["name"], source, transport, steps, tuple(d["outcomes"])))
    return out


SEQUENCES = load_sequences()


# --- cards: issued with the tester's command, served on vpcd -------------------------------


def sscard(*args: str) -> subprocess.CompletedProcess[str]:
    return run_sscard(*args)


@pytest.fixture(scope="session")
def issued_cards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``issue(profile, quirks)`` → a fresh copy of a personalized card file issued by
    ``sscard sim new-card --profile … --quirk …`` (one issue per combination per session)."""
    root = tmp_path_factory.mktemp("issued")
    cache: dict[tuple[str, tuple[str, ...]], Path] = {}

    def issue(profile: str, quirks: tuple[str, ...], dest: Path) -> Path:
        key = (profile, quirks)
        if key not in cache:
            path = root / f"{profile}-{'-'.join(quirks) or 'plain'}.json"
            args = ["sim", "new-card", "--personalized", "--profile", profile]
            args += ["--region", REGION[profile], "--serial", SERIAL, "--out", str(path)]
            for quirk in quirks:
                args += ["--quirk", quirk]
            result = sscard(*args)
            assert result.returncode == 0, result.stderr
            cache[key] = path
        shutil.copy(cache[key], dest)
        return dest

    yield issue


def serve(
    issued_cards: Any, serve_card: ServeCard, tmp_path: Path, profile: str, quirks: tuple[str, ...]
) -> str:
    path = issued_cards(profile, quirks, tmp_path / "card.json")
    return serve_card(load_card(path)).reader


# --- the replay driver ------------------------------------------------------------------------


@dataclass
class Replay:
    """What the public reader saw: where it gave up (1-based step and the status word of the
    command's own answer), and the exchange, for the failure message."""

    aborted_step: int | None = None
    aborted_sw: str | None = None
    log: list[str] = field(default_factory=list)


def connect(reader_name: str) -> CardConnection:
    (reader,) = [r for r in readers() if str(r) == reader_name]
    connection = reader.createConnection()
    connection.connect()
    return connection


def exchange(
    connection: CardConnection, apdu: bytes, get_response: bool, log: list[str]
) -> tuple[str, bytes, str]:
    """Send ``apdu``; → (SW of its own answer, final data, final SW). A driver that fetches
    61xx answers sends ``00 C0 00 00 xx`` as often as the card asks
    (docs/chip-application.md §2)."""
    data, sw1, sw2 = connection.transmit(list(apdu))
    first_sw = f"{sw1:02X}{sw2:02X}"
    log.append(f">> {apdu.hex().upper()}  << {bytes(data).hex().upper()} {first_sw}")
    body = bytes(data)
    while get_response and sw1 == 0x61:
        get = [0x00, 0xC0, 0x00, 0x00, sw2]
        more, sw1, sw2 = connection.transmit(get)
        log.append(
            f">> {bytes(get).hex().upper()}  << {bytes(more).hex().upper()} {sw1:02X}{sw2:02X}"
        )
        body += bytes(more)
    return first_sw, body, f"{sw1:02X}{sw2:02X}"


def accepted(accept: dict[str, Any], first_sw: str, data: bytes, sw: str) -> bool:
    """How the public code judges an answer (the ``accept`` rule of the step)."""
    if accept.get("any"):
        return True
    if "sw" in accept:
        return sw in accept["sw"]
    if "sw1" in accept:
        return sw[:2] in accept["sw1"]
    if "bare" in accept:
        return not data and sw == accept["bare"]
    raise ValueError(f"unknown accept rule {accept}")


def card_number_check_valid(number: str) -> bool:
    """卡号 check character, GB 11714 scheme (docs/chip-application.md §3) — written here
    again on purpose, not imported from the code under test."""
    values = [int(c) if c.isdigit() else ord(c) - ord("A") + 10 for c in number[:8]]
    r = 11 - sum(v * w for v, w in zip(values, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    return number[8] == {10: "X", 11: "0"}.get(r, str(r))


def sample_ssn_record(quirks: tuple[str, ...]) -> str:
    """The 18 bytes of tag 08 on a sample card: the holder's number, or on a first-generation
    card (``id-15``) its 15-digit form 110105491231002 padded with three NULs — what C readers
    copying the record into a string see as the 15 digits."""
    return "110105491231002\0\0\0" if "id-15" in quirks else "11010519491231002X"


def check_data(rule: dict[str, Any], data: bytes, values: dict[str, str], where: str) -> None:
    """The data the public code takes from the answer, against the sample holder's literals."""

    def v(text: str) -> str:
        return text.format(**values)

    if "length" in rule:
        assert len(data) == rule["length"], f"{where}: {len(data)} bytes, wanted {rule['length']}"
    if "starts_hex" in rule:
        assert data.hex().upper().startswith(rule["starts_hex"]), where
    for part in rule.get("contains_hex", ()):
        assert part in data.hex().upper(), f"{where}: {part} not in {data.hex().upper()}"
    if "bytes_at" in rule:
        at, want = rule["bytes_at"]["offset"], bytes.fromhex(v(rule["bytes_at"]["hex"]))
        assert data[at : at + len(want)] == want, f"{where}: {data.hex().upper()}"
    if rule.get("internal_auth_matches_hsm"):
        # SI_3rdCard's step 2 compares the card's answer (its first 16 hex digits) with the
        # security module's: our test security module, with the card's key factors.
        with tempfile.TemporaryDirectory() as tmp:
            hsm = LocalSecurityModule(Keystore.create_test(Path(tmp) / "keystore.json"))
            factors = CardFactors.for_card(
                bytes.fromhex(SERIAL), values["region"], int(values["levels"])
            )
            expected = hsm.internal_auth("internal", factors, bytes.fromhex(v(rule["data"])))
        assert data[:8] == expected[:8], f"{where}: {data.hex()} ≠ HSM {expected.hex()}"
    if "tag" not in rule:
        return
    assert len(data) >= 2 and data[0] == int(rule["tag"], 16), f"{where}: {data.hex().upper()}"
    value = data[2:]
    assert data[1] == len(value), f"{where}: TLV length {data[1]} for {len(value)} bytes"
    if "len" in rule:
        assert len(value) == rule["len"], f"{where}: {len(value)} bytes, wanted {rule['len']}"
    if "ascii" in rule:
        assert value == v(rule["ascii"]).encode("ascii"), f"{where}: {value!r}"
    if "hex" in rule:
        assert value.hex().upper() == v(rule["hex"]), f"{where}: {value.hex().upper()}"
    if "hex_prefix" in rule:
        assert value.hex().upper().startswith(v(rule["hex_prefix"])), f"{where}: {value.hex()}"
    if rule.get("card_number_check"):
        number = value.decode("ascii")
        assert re.fullmatch(r"[0-9A-Z]{8}[0-9X]", number) and card_number_check_valid(number), (
            f"{where}: 卡号 {number!r}"
        )


def replay(
    sequence: Sequence, reader_name: str, profile: str, quirks: tuple[str, ...] = ()
) -> Replay:
    values = {
        "ssn": sample_ssn_record(quirks),
        "region": REGION[profile],
        "spec_version": SPEC_VERSION[profile],
        "sn4": SERIAL[8:],
        "pin": card_pin(profile),
        "levels": str(LEVELS[profile]),
    }
    result = Replay()
    connection = connect(reader_name)
    previous_sw = ""
    try:
        for number, step in enumerate(sequence.steps, start=1):
            if step.only_if_spec and not values["spec_version"].startswith(step.only_if_spec):
                continue
            if step.only_if_previous_sw1_not and previous_sw[:2] == step.only_if_previous_sw1_not:
                continue
            apdu = bytes.fromhex(step.apdu.format(**values))
            first_sw, data, sw = exchange(connection, apdu, sequence.get_response, result.log)
            previous_sw = sw
            if step.capture:
                values[step.capture] = data.hex().upper()
            if not accepted(step.accept, first_sw, data, sw):
                result.aborted_step, result.aborted_sw = number, first_sw
                return result
            if step.data is not None:
                try:
                    check_data(step.data, data, values, f"step {number} {step.what}")
                except AssertionError as exc:
                    log = "\n".join(result.log)
                    raise AssertionError(f"{sequence.source}: wrong data, {exc}\n{log}") from None
    finally:
        connection.disconnect()
        connection.release()
    return result


def outcome_params() -> list[Any]:
    params = []
    for sequence in SEQUENCES:
        for outcome in sequence.outcomes:
            quirks = tuple(outcome["quirks"])
            name = f"{sequence.name}-{outcome['profile']}-{'+'.join(quirks) or 'plain'}"
            params.append(pytest.param(sequence, outcome, id=name))
    return params


def test_every_quirk_and_profile_meets_a_public_reader() -> None:
    """The replay covers every profile and every quirk at least once."""
    seen = {(o["profile"], q) for s in SEQUENCES for o in s.outcomes for q in o["quirks"]}
    assert {q for _, q in seen} == set(QUIRKS)
    assert {o["profile"] for s in SEQUENCES for o in s.outcomes} == set(PROFILES)


@pytest.mark.parametrize(("sequence", "outcome"), outcome_params())
def test_public_reader_sequence(
    sequence: Sequence,
    outcome: dict[str, Any],
    issued_cards: Any,
    serve_card: ServeCard,
    tmp_path: Path,
) -> None:
    profile, quirks = outcome["profile"], tuple(outcome["quirks"])
    reader = serve(issued_cards, serve_card, tmp_path, profile, quirks)
    seen = replay(sequence, reader, profile, quirks)
    transcript = "\n".join(seen.log)
    if outcome["result"] == "pass":
        assert seen.aborted_step is None, (
            f"{sequence.source} gives up at step {seen.aborted_step} "
            f"({sequence.steps[seen.aborted_step - 1].what}) on SW {seen.aborted_sw}, "
            f"where a real card gets through:\n{transcript}"
        )
        return
    step, sw = outcome["step"], outcome["sw"]
    assert seen.aborted_step == step, (
        f"{sequence.source} should give up at step {step} "
        f"({sequence.steps[step - 1].what}; {outcome.get('why', '')}) but "
        f"{'got through' if seen.aborted_step is None else f'gave up at {seen.aborted_step}'}"
        f":\n{transcript}"
    )
    assert re.fullmatch(sw.replace("?", "[0-9A-F]"), seen.aborted_sw or ""), (
        f"step {step}: SW {seen.aborted_sw}, wanted {sw}:\n{transcript}"
    )


# --- sscard card read against every profile and quirk ----------------------------------------


def assert_sample_holder(out: dict[str, Any], profile: str, quirks: tuple[str, ...]) -> None:
    """The sample holder of every issued card (simulator/factory.py SAMPLE_HOLDER), as
    literals; the region-specific files as the card factory fills them."""
    region = REGION[profile]
    warned = {w["field"] for w in out["warnings"]}
    if "id-15" in quirks:  # a first-generation card: the 15-digit form, named in a warning
        assert out["ssn"] == "110105491231002" and "ssn" in warned, out["warnings"]
    else:
        assert out["ssn"] == "11010519491231002X" and "ssn" not in warned, out["warnings"]
    assert out["name"] == "张三"  # no padding left, whichever byte the card pads with
    assert out["gender"] == "2"
    assert out["ethnicity"] == "01"
    assert out["birth_date"] == "1949-12-31"
    assert out["spec_version"] == SPEC_VERSION[profile]
    assert out["card_id"].startswith(region + "D156000005" + SERIAL[8:])
    assert out["sn"] == SERIAL
    assert card_number_check_valid(out["card_number"])
    assert all(out["checks"].values()), out["checks"]
    if "pad-ff" in quirks:
        # 出生地 holds 4 digits padded with FF: read as 1101 and flagged, never "1101ff"
        assert out["birthplace"] == "1101"
        assert "birthplace" in warned, out["warnings"]
    else:
        assert out["birthplace"] == "110105"
        assert "birthplace" not in warned, out["warnings"]
    assert "name" not in warned, out["warnings"]  # padding is not a fault
    if profile == "jiangsu":
        assert (out["person_id"], out["first_region"]) == (region + "31002X", region)
    else:
        assert (out["person_id"], out["first_region"]) == (None, None)


READ_CASES = [(p, ()) for p in PROFILES] + [("default", (q,)) for q in QUIRKS]


@pytest.mark.parametrize(
    ("profile", "quirks"),
    READ_CASES,
    ids=[f"{p}-{'+'.join(q) or 'plain'}" for p, q in READ_CASES],
)
def test_card_read_reads_the_holder(
    profile: str,
    quirks: tuple[str, ...],
    issued_cards: Any,
    serve_card: ServeCard,
    tmp_path: Path,
) -> None:
    reader = serve(issued_cards, serve_card, tmp_path, profile, quirks)
    out = card_read_json(reader, "--profile", profile, pin=card_pin(profile))
    assert out["profile"] == profile
    assert_sample_holder(out, profile, quirks)


@pytest.mark.parametrize("profile", PROFILES)
def test_card_read_detects_the_profile(
    profile: str, issued_cards: Any, serve_card: ServeCard, tmp_path: Path
) -> None:
    """``--profile auto``: the layout is told from the card itself; the Hunan card's 参保地
    is read from DF03/EF19 after VERIFY (``--ask-pin``)."""
    reader = serve(issued_cards, serve_card, tmp_path, profile, ())
    out = card_read_json(reader, "--profile", "auto", "--ask-pin", pin=card_pin(profile))
    assert out["profile"] == profile
    assert_sample_holder(out, profile, ())
    assert out["insured_region"] == (REGION[profile] if profile == "hunan" else None)
