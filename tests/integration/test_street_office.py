"""Street-office work through real pcscd + vpcd and a real pty: 加磁, 验卡 verdicts with
the 验卡单, PIN unblock and reset — with the security module in process, over TCP, and as a
PSAM in a second reader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from apdu.pcsc import wait_for_removal
from hsm_stub.audit import AuditLog
from hsm_stub.keystore import Keystore
from hsm_stub.local import LocalSecurityModule
from hsm_stub.server import HsmServer
from personalize.policy import POLICY_DIR, load_policy
from personalize.registry import Registry
from personalize.roles import Role
from personalize.trackvault import TrackVault
from printer.tracks import Track2, Track3
from simulator.cardos.filesystem import DedicatedFile, RecordEF
from simulator.factory import (
    SAMPLE_HOLDER,
    TEST_ROOTS,
    damage_card,
    issue_blank_card,
    personalize_directly,
    sample_issuer,
)
from simulator.msr206_emulator import Msr206Emulator, VirtualStripe
from simulator.psam import new_psam
from simulator.sscard_card import SocialSecurityCardOS
from sscard.identifiers import serial_number
from sscard.profile import load_profile
from tests.audit_key import AUDIT_KEY
from tests.clock import FAKETIME, pinned_clock
from tests.conftest import NewDatabase
from tests.integration.conftest import ServeCard, Served
from tests.operators import login

pytestmark = pytest.mark.pcsc
POLICY = load_policy("default")
PROFILE = load_profile("default")
PAN = "6217991234567890123"
TRACKS = {2: Track2(PAN, "3611", "120", "0000").build(), 3: Track3(PAN, rest="000000").build()}


@dataclass
class Office:
    root: Path
    station: Path
    registry: Registry
    card: SocialSecurityCardOS
    number: str
    encoder: Msr206Emulator
    served: Served
    session: dict[str, str]  # op-office's (role office)

    @property
    def reader(self) -> str:
        return self.served.reader


def make_card(
    *, roots: dict[str, tuple[str, bytes]] = TEST_ROOTS
) -> tuple[SocialSecurityCardOS, str]:
    card = issue_blank_card(
        PROFILE.name, POLICY.region_code, roots=roots, serial=bytes.fromhex("0FF1CE0000000001")
    )
    issuer = sample_issuer(PROFILE.name, POLICY.region_code, serial_number(card.atr), roots)
    personalize_directly(card, PROFILE.name, issuer, SAMPLE_HOLDER)
    return card, issuer.card_number


@pytest.fixture(params=["keystore", "tcp", "psam"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def office(
    tmp_path: Path, serve_card: ServeCard, backend: str, new_db: NewDatabase
) -> Iterator[Office]:
    """A street office's station file and its registry (SQLite or PostgreSQL) with a card
    enrolled, its tracks sealed, in reader slot 0 and on the encoder."""
    db = new_db("registry")
    keystore = Keystore.create_test(tmp_path / "keystore.json")
    server: HsmServer | None = None
    audit = AuditLog(tmp_path / "hsm-audit.log")
    if backend == "keystore":
        hsm = f"keystore:{keystore.path}"
    elif backend == "tcp":
        server = HsmServer(LocalSecurityModule(keystore), audit=audit).start()
        hsm = f"tcp://{server.host}:{server.port}"
    else:
        psam = serve_card(new_psam(keystore), slot=1)  # an office PSAM
        hsm = f"psam:{psam.reader}"
    vault = TrackVault.create(tmp_path / "tracks.key")
    (tmp_path / "office.toml").write_text(
        # a street office's own client id: role office, no update or master key
        f'name = "office-7"\nhsm = "{hsm}"\nhsm_client = "test-office"\n'
        f'track_key = "tracks.key"\nregistry = "{db}"\npolicy = "default"\n'
        # the registry's audit key is the card center's, never in a PSAM
        + (f'audit_hsm = "keystore:{keystore.path}"\n' if hsm.startswith("psam:") else ""),
        encoding="utf-8",
    )
    registry = Registry(db, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    card, number = make_card()
    record = registry.enroll(
        SAMPLE_HOLDER, number, operator="op", sn=serial_number(card.atr).hex().upper()
    )
    registry.set_tracks(
        record.id, vault.seal(TRACKS, f"card-{record.id}"), source="bank", operator="op"
    )
    encoder = Msr206Emulator(VirtualStripe.with_tracks(TRACKS)).start()
    served = serve_card(card, slot=0)
    session = login(db, "op-office", Role.OFFICE)
    yield Office(
        tmp_path, tmp_path / "office.toml", registry, card, number, encoder, served, session
    )
    encoder.stop()
    if server is not None:
        server.stop()
    audit.close()


def sscard(
    o: Office, *args: str, stdin: str = "", reader: str | None = None
) -> subprocess.CompletedProcess[str]:
    reader_args = [] if reader == "" else ["--reader", o.reader if reader is None else reader]
    return subprocess.run(
        [
            *FAKETIME,
            sys.executable,
            "-m",
            "personalize.cli",
            *args,
            *reader_args,
            "--station",
            str(o.station),
        ],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **o.session},
        cwd=o.root,
    )


def pdf_text(path: str | Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def diagnose(o: Office, *extra: str, reader: str | None = None) -> tuple[dict[str, Any], str]:
    pdf = o.root / "report.pdf"
    result = sscard(
        o,
        "diagnose",
        "--encoder",
        o.encoder.path,
        "--out",
        str(pdf),
        "--json",
        *extra,
        reader=reader,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    return data, pdf_text(data["report"])


def test_card_ok_and_reencode_verdicts(office: Office) -> None:
    data, text = diagnose(office)
    assert (data["verdict"], data["fee"]) == ("card_ok", 0)
    assert "社会保障卡验卡单" in text and "卡片正常" in text and office.number in text
    office.encoder.stripe.demagnetize()
    data, text = diagnose(office)
    assert (data["verdict"], data["fee"]) == ("reencode", 0)
    assert "磁条失效，现场重新加磁" in text and "空白 (消磁)" in text


def test_reencode_restores_a_demagnetized_card(office: Office) -> None:
    office.encoder.stripe.demagnetize()
    result = sscard(office, "reencode", "--encoder", office.encoder.path)
    assert result.returncode == 0, result.stderr
    assert "[2/5]" in result.stdout and "加磁完成" in result.stdout
    for n, data in TRACKS.items():
        assert office.encoder.stripe.read(n) == ("ok", data)
    events = [r["action"] for r in office.registry.db.execute("SELECT action FROM audit_events")]
    assert events[-1] == "reencode.done"
    for data in TRACKS.values():  # track data never printed
        assert data not in result.stdout + result.stderr


def test_reencode_refuses_a_lost_card(office: Office) -> None:
    office.encoder.stripe.demagnetize()
    office.registry.report_loss(office.number, operator="op")
    result = sscard(office, "reencode", "--encoder", office.encoder.path)
    assert result.returncode == 1 and "拒绝加磁" in result.stderr
    assert office.encoder.writes == 0 and office.encoder.stripe.bits == {}  # untouched
    last = office.registry.db.execute(
        "SELECT action, details FROM audit_events ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert last["action"] == "reencode.refused" and "预挂失" in last["details"]


@pytest.mark.parametrize("backend", ["keystore"])  # the retry is the encoder's business
def test_reencode_stops_after_one_retry(office: Office) -> None:
    office.encoder.stripe.demagnetize()
    office.encoder.corrupt_next_write = True
    ok = sscard(office, "reencode", "--encoder", office.encoder.path)
    assert ok.returncode == 0 and "重试一次" in ok.stdout
    original = office.encoder._write

    def always_corrupt() -> None:
        office.encoder.corrupt_next_write = True
        original()

    office.encoder._write = always_corrupt  # type: ignore[method-assign]
    failed = sscard(office, "reencode", "--encoder", office.encoder.path)
    assert failed.returncode == 1 and "两次回读不一致" in failed.stderr


def test_unblock_pin_verdict_and_unblock(office: Office) -> None:
    office.card.pin.tries = 0
    data, text = diagnose(office)
    assert data["verdict"] == "unblock_pin" and "PIN 已锁定" in text
    wrong_id = sscard(office, "pin", "unblock", stdin="y\n110105194912310011\n")
    assert wrong_id.returncode == 1 and "不符" in wrong_id.stderr
    done = sscard(office, "pin", "unblock", stdin=f"y\n{SAMPLE_HOLDER.ssn}\n")
    assert done.returncode == 0, done.stderr
    assert "剩余尝试次数 tries left: 3" in done.stderr
    assert office.card.pin.tries == 3
    assert SAMPLE_HOLDER.ssn not in done.stdout + done.stderr


def test_pin_reset(office: Office) -> None:
    no_id = sscard(office, "pin", "reset", stdin="n\n")
    assert no_id.returncode == 1 and "身份证" in no_id.stderr
    differ = sscard(office, "pin", "reset", stdin=f"y\n{SAMPLE_HOLDER.ssn}\n246813\n246814\n")
    assert differ.returncode == 1 and "不一致" in differ.stderr
    reset = sscard(office, "pin", "reset", stdin=f"y\n{SAMPLE_HOLDER.ssn}\n246813\n246813\n")
    assert reset.returncode == 0, reset.stderr
    for text in (reset.stdout + reset.stderr, differ.stdout + differ.stderr):
        assert "246813" not in text and "246814" not in text
    check = subprocess.run(
        [sys.executable, "-m", "personalize.cli", "card", "verify-pin", "--reader", office.reader],
        input="123456\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 1  # the old PIN no longer works
    check = subprocess.run(
        [sys.executable, "-m", "personalize.cli", "card", "verify-pin", "--reader", office.reader],
        input="246813\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0


def initial_pin(o: Office) -> bool | None:
    return o.registry.initial_pin(o.registry.card(o.number))


def test_the_initial_pin_mark_follows_what_the_office_leaves_on_the_card(office: Office) -> None:
    """An unblock leaves the PIN and the mark; a reset to another PIN clears the mark, a reset
    to the policy's initial PIN sets it again (docs/business-rules.md "PINs")."""
    assert initial_pin(office) is None  # enrolled: not known
    office.card.pin.tries = 0
    unblock = sscard(office, "pin", "unblock", stdin=f"y\n{SAMPLE_HOLDER.ssn}\n")
    assert unblock.returncode == 0, unblock.stderr
    assert initial_pin(office) is None
    for pin, initial in (("246813", False), (POLICY.default_pin, True)):
        reset = sscard(office, "pin", "reset", stdin=f"y\n{SAMPLE_HOLDER.ssn}\n{pin}\n{pin}\n")
        assert reset.returncode == 0, reset.stderr
        assert initial_pin(office) is initial
        assert pin not in reset.stdout + reset.stderr
    marks = office.registry.db.execute(
        "SELECT operator, details FROM audit_events WHERE action = 'card.initial_pin' ORDER BY id"
    ).fetchall()
    details = [(m["operator"], json.loads(m["details"])) for m in marks]
    assert [(op, d["from"], d["initial_pin"], d["via"]) for op, d in details] == [
        ("op-office", None, False, "office pin reset"),
        ("op-office", False, True, "office pin reset"),
    ]


def expired_office(office: Office, db: str, setting: str) -> Office:
    """``office`` on registry ``db`` under the shipped policy with ``usable_past_validity =
    setting`` and ``[fees] expired = 10``."""
    text = (POLICY_DIR / "default.toml").read_text(encoding="utf-8")
    for key, value in (("usable_past_validity", setting), ("expired", "10")):
        line = next(x for x in text.splitlines() if x.startswith(f"{key} ="))
        text = text.replace(line, f"{key} = {value}")
    policy = office.root / f"region-{setting}.toml"
    policy.write_text(text, encoding="utf-8")
    lines = office.station.read_text(encoding="utf-8").splitlines()
    moved = {"registry": f'registry = "{db}"', "policy": f'policy = "{policy}"'}
    station = office.root / f"office-{setting}.toml"
    station.write_text(
        "\n".join(moved.get(x.split(" =")[0], x) for x in lines) + "\n", encoding="utf-8"
    )
    registry = Registry(db, load_policy(policy), clock=pinned_clock, audit_key=AUDIT_KEY)
    return replace(
        office, station=station, registry=registry, session=login(db, "op-office", Role.OFFICE)
    )


def test_an_expired_card_is_replaced_where_the_region_says_so(
    office: Office, new_db: NewDatabase
) -> None:
    """Review 17, finding 4 (docs/diagnosis.md verdict 5; 上海: "过了有效期限的社保卡若无损坏
    仍可继续使用" is the default): an undamaged card past its validity — issued 2001-06-01,
    valid until 2011-06-01, the clock pinned to 2026-11-25 — is 卡片正常 where the policy keeps
    it usable, and 过有效期须换卡 — a replacement opened at the policy's fee — where it does
    not."""
    db = new_db("expired")
    usable = expired_office(office, db, "true")
    usable.registry.enroll(
        SAMPLE_HOLDER,
        office.number,
        operator="op",
        sn=serial_number(office.card.atr).hex().upper(),
        issued_on=date(2001, 6, 1),
    )
    data, _ = diagnose(usable)
    assert (data["verdict"], data["replacement_request"]) == ("card_ok", None)
    replacing = expired_office(office, db, "false")
    data, text = diagnose(replacing)
    assert (data["verdict"], data["fee"]) == ("expired", 10)
    assert "过有效期须换卡" in text and "10 元" in text
    assert data["replacement_request"] is not None
    assert replacing.registry.card(office.number).status == "replacement_pending"


def test_human_damage_opens_a_paid_replacement(office: Office) -> None:
    data, text = diagnose(office, "--damage", "cracked,bent")
    assert (data["verdict"], data["fee"]) == ("human_damage", 20)
    assert "人为损坏，收费换卡" in text and "20 元" in text and "断裂、弯折" in text
    assert data["replacement_request"] is not None
    assert office.registry.card(office.number).status == "replacement_pending"


def test_refused_for_a_void_or_lost_card(office: Office) -> None:
    office.registry.formalize_loss(office.number, operator="op", evidence="ID")
    data, text = diagnose(office)
    assert data["verdict"] == "refused" and "拒绝受理" in text


def ef05_records(card: SocialSecurityCardOS) -> list[bytearray]:
    ssse = card.mf.children[0]
    assert isinstance(ssse, DedicatedFile)
    ef05 = ssse.children[0]
    assert isinstance(ef05, RecordEF)
    return ef05.records


def test_counterfeit_is_retained(office: Office) -> None:
    records = ef05_records(office.card)
    records[0][-1] ^= 0xFF  # the 卡识别码 MAC no longer verifies
    data, text = diagnose(office)
    assert data["verdict"] == "counterfeit" and "疑似伪卡，暂扣并上报" in text
    assert office.registry.card(office.number).status == "active"  # nothing opened


def reinsert(office: Office, serve_card: ServeCard) -> None:
    office.served.bridge.stop()
    wait_for_removal(office.reader)
    office.served = serve_card(office.card, slot=0)


def test_usage_fault_on_a_mute_chip(office: Office, serve_card: ServeCard) -> None:
    damage_card(office.card, "mute")  # worn contacts: garbage instead of an ATR
    reinsert(office, serve_card)
    data, text = diagnose(office, "--card-number", office.number)
    assert (data["verdict"], data["fee"]) == ("usage_fault", 0)
    assert "使用性故障，免费换卡" in text and "0 元" in text
    # the mute chip told nothing: SN and holder on the 验卡单 are the registry's, and say so
    assert "0FF1CE0000000001（登记）" in text and f"{SAMPLE_HOLDER.name}（登记）" in text
    chip = next(c for c in data["checks"] if c["code"] == "chip")  # type: ignore[union-attr]
    assert chip["ok"] is False
    assert office.registry.card(office.number).status == "replacement_pending"


def test_usage_fault_on_an_unreadable_ef05(office: Office, serve_card: ServeCard) -> None:
    damage_card(office.card, "corrupt-ef05")
    data, text = diagnose(office, "--card-number", office.number)
    assert data["verdict"] == "usage_fault" and "EF05" in text


# ------------------------------------------------------------ a reader fault is no verdict


def pdfs(o: Office) -> list[Path]:
    return sorted(o.root.rglob("*.pdf"))


def audit_actions(o: Office) -> list[str]:
    return [r["action"] for r in o.registry.db.execute("SELECT action FROM audit_events")]


@pytest.mark.parametrize("backend", ["keystore"])
def test_reader_zero_is_the_first_reader_not_a_pattern(office: Office) -> None:
    # "0" occurs in both "Virtual PCD 00 00" and "… 00 01": as a pattern it matched both.
    data, _ = diagnose(office, reader="0")
    assert (data["verdict"], data["fee"]) == ("card_ok", 0)
    assert office.registry.card(office.number).status == "active"


def no_verdict(stdout: str) -> bool:
    """With ``--json`` a refused diagnose prints only the error object (docs: CLI errors)."""
    data = json.loads(stdout)
    return set(data) == {"error"} and "verdict" not in data["error"]


@pytest.mark.parametrize("backend", ["keystore"])
@pytest.mark.parametrize("reader", ["No Such Reader", "Virtual PCD", "7", "Virtual PCD 00 01", " "])
def test_a_reader_fault_is_never_a_verdict(office: Office, reader: str) -> None:
    before = audit_actions(office)
    result = sscard(
        office,
        "diagnose",
        "--card-number",
        office.number,
        "--damage",
        "none",
        "--json",
        reader=reader,
    )
    assert result.returncode == 1, result.stdout
    assert no_verdict(result.stdout)
    assert len(result.stderr.strip().splitlines()) == 1 and "读卡器" in result.stderr
    assert "Traceback" not in result.stderr
    assert pdfs(office) == []  # no 验卡单
    assert office.registry.card(office.number).status == "active"  # healthy card untouched
    assert audit_actions(office) == before


@pytest.mark.parametrize("backend", ["psam"])
def test_a_card_that_is_not_the_one_named_gives_no_verdict(office: Office) -> None:
    # The operator points at the PSAM's reader: a chip answers, but it is not card 卡号.
    before = audit_actions(office)
    result = sscard(
        office, "diagnose", "--card-number", office.number, "--json", reader="Virtual PCD 00 01"
    )
    assert result.returncode == 1, result.stdout
    assert no_verdict(result.stdout) and pdfs(office) == []
    assert office.registry.card(office.number).status == "active"
    assert audit_actions(office) == before


@pytest.mark.parametrize("backend", ["keystore"])
def test_damage_codes_are_checked_and_printed_in_chinese(office: Office) -> None:
    refused = sscard(office, "diagnose", "--damage", "cracked,dropped")
    assert refused.returncode == 2
    assert "dropped" in refused.stderr and "cracked 断裂" in refused.stderr
    assert "none 无外观损坏" in refused.stderr
    assert pdfs(office) == [] and office.registry.card(office.number).status == "active"
    data, text = diagnose(office, "--damage", "none")
    assert data["verdict"] == "card_ok" and "无外观损坏" in text
    data, text = diagnose(office, "--damage", "soaked,punched")
    assert data["verdict"] == "human_damage" and "浸水、打孔" in text
    assert "soaked" not in text and "punched" not in text


@pytest.mark.parametrize("backend", ["keystore"])
def test_every_report_is_kept_under_its_own_number(office: Office) -> None:
    first, _ = diagnose(office)
    second, _ = diagnose(office)  # same second on the pinned clock, same --out
    assert first["report_no"] != second["report_no"]
    assert first["report"] != second["report"]
    assert len(pdfs(office)) == 2
    assert first["report_no"] in pdf_text(first["report"])
    assert second["report_no"] in pdf_text(second["report"])


def barcode(pdf: str | Path, out: Path) -> str:
    subprocess.run(["pdftoppm", "-png", "-r", "200", "-singlefile", str(pdf), str(out)], check=True)
    decoded = subprocess.run(
        ["zbarimg", "--quiet", "--raw", f"{out}.png"], capture_output=True, text=True, check=True
    )
    return decoded.stdout.strip()


@pytest.mark.parametrize("backend", ["keystore"])
def test_report_holds_request_collection_date_holder_sn_barcode_and_signatures(
    office: Office,
) -> None:
    data, text = diagnose(office, "--damage", "cracked,bent")
    request = office.registry.db.execute(
        "SELECT * FROM reissue_requests WHERE id = ?", (data["replacement_request"],)
    ).fetchone()
    collect = request["collect_on"]  # the registry's date, as stored
    flat = " ".join(text.split())
    assert f"SSCARD-REQ-{request['id']:06d}" in flat
    assert f"{collect[:4]}年{collect[5:7]}月{collect[8:10]}日" in flat
    assert SAMPLE_HOLDER.name in flat and "0FF1CE0000000001" in flat
    assert "2026-11-25 17:30" in flat  # the pinned clock, in the policy's zone
    assert "经办人签字" in flat and "持卡人签字" in flat
    assert data["report_no"] in flat
    assert barcode(data["report"], office.root / "page") == data["report_no"]


@pytest.mark.parametrize("backend", ["keystore"])
def test_long_details_are_wrapped_not_cut(office: Office, serve_card: ServeCard) -> None:
    damage_card(office.card, "corrupt-ef05")
    data, text = diagnose(office, "--card-number", office.number)
    detail = next(c["detail"] for c in data["checks"] if c["code"] == "ef05")
    assert len(detail) > 60
    assert " ".join(detail.split()).replace(" ", "") in text.replace(" ", "").replace("\n", "")


@pytest.mark.parametrize("backend", ["keystore"])
def test_a_stored_report_is_reprinted_marked_补打(office: Office) -> None:
    from personalize.office import OfficeError, office_report_pdf

    data, original = diagnose(office, "--damage", "cracked")
    assert "补打" not in original
    reprint_at = datetime(2026, 12, 1, 2, 5, tzinfo=UTC)  # 10:05 in Shanghai
    again = office.root / "again.pdf"
    again.write_bytes(office_report_pdf(office.registry, data["report_no"], reprint_at=reprint_at))
    text = " ".join(pdf_text(again).split())
    assert "补打" in text and "2026-12-01 10:05" in text
    assert data["report_no"] in text and "人为损坏，收费换卡" in text and "断裂" in text
    assert barcode(again, office.root / "again") == data["report_no"]
    with pytest.raises(OfficeError, match="YK-NONE"):
        office_report_pdf(office.registry, "YK-NONE", reprint_at=reprint_at)


@pytest.mark.parametrize("backend", ["keystore"])
def test_visual_only_verdict_is_explicit_and_recorded(office: Office) -> None:
    no_damage = sscard(
        office, "diagnose", "--visual-only", "--card-number", office.number, reader=""
    )
    assert no_damage.returncode != 0 and "外观" in no_damage.stderr
    no_reader = sscard(office, "diagnose", "--card-number", office.number, reader="")
    assert no_reader.returncode != 0 and "--reader" in no_reader.stderr
    assert pdfs(office) == [] and office.registry.card(office.number).status == "active"
    result = sscard(
        office,
        "diagnose",
        "--visual-only",
        "--card-number",
        office.number,
        "--damage",
        "cracked",
        "--json",
        reader="",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["verdict"] == "human_damage" and data["visual_only"] is True
    assert "仅外观检查" in " ".join(pdf_text(office.root / data["report"]).split())
    assert office.registry.card(office.number).status == "replacement_pending"
    last = office.registry.db.execute(
        "SELECT details FROM audit_events WHERE action = 'diagnose'"
    ).fetchone()
    assert json.loads(last["details"])["visual_only"] is True


@pytest.mark.parametrize("backend", ["keystore"])
def test_a_mistyped_card_number_is_refused(office: Office) -> None:
    wrong = office.number[:-1] + ("1" if office.number[-1] != "1" else "2")
    before = audit_actions(office)
    for reader, extra in (("", ("--visual-only", "--damage", "cracked")), (None, ())):
        result = sscard(office, "diagnose", "--card-number", wrong, *extra, reader=reader)
        assert result.returncode == 1 and "校验位" in result.stderr, result.stderr
    assert pdfs(office) == [] and audit_actions(office) == before
    assert office.registry.card(office.number).status == "active"


@pytest.mark.parametrize("backend", ["keystore"])
def test_an_unwritable_report_is_kept_to_be_reprinted(office: Office) -> None:
    (office.root / "file").write_bytes(b"")
    result = sscard(office, "diagnose", "--out", str(office.root / "file" / "x.pdf"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    stored = office.registry.db.execute("SELECT report_no FROM office_reports").fetchall()
    assert len(stored) == 1 and stored[0]["report_no"] in result.stderr
    assert "补打" in result.stderr


# ------------------------------------------------------------ agents (委托代办)

AGENT_ID = "110105198001010016"  # 李四, a valid GB 11643 number
AGENT = ("--agent-name", "李四", "--agent-id", AGENT_ID)


@pytest.mark.parametrize("backend", ["keystore"])
def test_an_agent_brings_a_damaged_card_and_the_replacement_is_theirs(office: Office) -> None:
    """换卡 by an agent (docs/business-rules.md "Agents (委托代办)"): the verdict's request
    records who brought the card and what they showed; its 领卡证明 prints them, masked."""
    apdus = office.served.bridge.apdu_count
    bad = sscard(office, "diagnose", "--damage", "cracked", *AGENT[:3], AGENT_ID[:-1] + "9")
    assert bad.returncode == 1 and "代办人证件号码" in bad.stderr
    assert office.served.bridge.apdu_count == apdus and pdfs(office) == []  # refused unread
    data, _ = diagnose(office, "--damage", "cracked", *AGENT, "--agent-documents", "双方身份证原件")
    assert data["verdict"] == "human_damage" and data["replacement_request"] is not None
    text = " ".join(pdf_text(data["certificate"]).split())
    assert "换卡" in text and "李四（110105********0016）" in text and "双方身份证原件" in text
    assert "代办人签字" in text and AGENT_ID not in text
    request = office.registry.request(data["replacement_request"])
    assert json.loads(request.agent or "")["documents"] == "双方身份证原件"
    [details] = [r["details"] for r in office.registry.db.execute(
        "SELECT details FROM audit_events WHERE action = 'request.replacement'")]  # fmt: skip
    assert AGENT_ID not in details and json.loads(details)["agent"] is True


@pytest.mark.parametrize("backend", ["keystore"])
def test_an_agent_is_refused_the_pin_services_and_the_card_hears_nothing(office: Office) -> None:
    """PIN unblock, reset and change are the holder's (珠海: "(不可代办)"): with an agent named,
    refused before a prompt — no APDU reaches the card, its PIN stays blocked, nothing is
    written; the holder in person is then served (the refusal was the agent's)."""
    office.card.pin.tries = 0
    events, apdus = audit_actions(office), office.served.bridge.apdu_count
    pins = f"y\n{SAMPLE_HOLDER.ssn}\n246813\n246813\n"
    for command in (("pin", "unblock"), ("pin", "reset")):
        refused = sscard(office, *command, *AGENT, stdin=pins)
        assert refused.returncode == 1, refused.stderr
        assert "须持卡人本人办理，不能委托代办" in refused.stderr
        assert "身份证号码" not in refused.stderr  # no prompt was shown
    change = subprocess.run(
        [sys.executable, "-m", "personalize.cli", "card", "change-pin", "--reader",
         office.reader, *AGENT], input="123456\n246813\n246813\n", capture_output=True,
        text=True, timeout=60)  # fmt: skip
    assert change.returncode == 1 and "修改密码须持卡人本人办理" in change.stderr
    assert "PIN" not in change.stderr.split("修改密码")[0]  # refused before a PIN prompt
    assert office.served.bridge.apdu_count == apdus
    assert office.card.pin.tries == 0 and audit_actions(office) == events
    done = sscard(office, "pin", "unblock", stdin=f"y\n{SAMPLE_HOLDER.ssn}\n")
    assert done.returncode == 0, done.stderr
    assert office.card.pin.tries == 3
