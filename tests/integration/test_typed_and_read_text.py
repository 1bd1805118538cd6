"""Text typed at the street office (an IME's full-width forms) and text read from a card or
an encoder that is not what it should be: normalised and validated before any comparison —
a clear one-line error, never a ``TypeError`` (personalize/textinput.py)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from simulator.cardos.filesystem import DedicatedFile, RecordEF
from simulator.factory import SAMPLE_HOLDER
from tests.integration import test_street_office as street
from tests.integration.test_street_office import PROFILE, Office, diagnose, sscard

office = street.office  # the street office's fixtures: station file, registry, card, encoder
backend = street.backend

pytestmark = [pytest.mark.pcsc, pytest.mark.parametrize("backend", ["keystore"])]


def full_width(text: str) -> str:
    """What a Chinese IME in full-width mode types: U+FF10-U+FF19, U+FF38 for X."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


def ef06_records(o: Office) -> RecordEF:
    ssse = o.card.mf.children[0]
    assert isinstance(ssse, DedicatedFile)
    ef06 = next(f for f in ssse.children if f.fid == PROFILE.ef06.fid)
    assert isinstance(ef06, RecordEF)
    return ef06


def test_full_width_id_number_typed_at_pin_unblock_is_accepted(office: Office) -> None:
    office.card.pin.tries = 0
    typed = "\u3000" + full_width(SAMPLE_HOLDER.ssn.lower()) + " "
    assert not typed.strip().isascii()
    done = sscard(office, "pin", "unblock", stdin=f"y\n{typed}\n")
    assert done.returncode == 0, done.stderr
    assert office.card.pin.tries == 3
    assert "TypeError" not in done.stderr


def test_full_width_pin_typed_at_reset_and_verify_is_the_ascii_pin(office: Office) -> None:
    reset = sscard(
        office,
        "pin",
        "reset",
        stdin=f"y\n{SAMPLE_HOLDER.ssn}\n{full_width('246813')}\n246813\n",
    )
    assert reset.returncode == 0, reset.stderr
    assert office.card.pin.value == bytes.fromhex("246813")


def test_id_number_of_the_wrong_form_is_refused_before_the_card_is_touched(
    office: Office,
) -> None:
    office.card.pin.tries = 0
    result = sscard(office, "pin", "unblock", stdin="y\n１２３４５\n")
    assert result.returncode == 1
    assert "身份证号码格式不正确" in result.stderr and "TypeError" not in result.stderr
    assert office.card.pin.tries == 0


def test_card_whose_ssn_is_not_ascii_is_a_clear_error(office: Office) -> None:
    office.card.pin.tries = 0
    ef06 = ef06_records(office)
    record = ef06.records[0]
    assert record[0] == 0x08  # 社会保障号码
    ef06.records[0] = bytearray(record[:2] + "张三".encode("gbk") + record[6:])
    result = sscard(office, "pin", "unblock", stdin=f"y\n{SAMPLE_HOLDER.ssn}\n")
    assert result.returncode == 1
    assert "非可打印 ASCII" in result.stderr and "TypeError" not in result.stderr
    assert [line for line in result.stderr.splitlines() if "错误" in line] == [
        result.stderr.strip().splitlines()[-1]
    ]  # one error line after the prompts
    assert office.card.pin.tries == 0  # nothing done


def test_encoder_returning_bytes_above_0x7f_is_a_clear_error(office: Office) -> None:
    def high_bytes() -> bytes:
        return b"\x1b\x01\x1b+\x1b\x02;6217\xe9\xff\x80=3611?\x1b\x03\x1b+"

    office.encoder._read_block = high_bytes  # type: ignore[method-assign]
    data, _ = diagnose(office)
    stripe = next(c for c in data["checks"] if c["code"] == "stripe")
    assert stripe["ok"] is None and "DeviceProtocolError" in stripe["detail"]


def test_office_outputs_are_private(office: Office) -> None:
    data, _ = diagnose(office)
    files = [office.root / "report.pdf"]
    if office.registry.db.dialect == "sqlite":  # a PostgreSQL registry is no file of ours
        files.append(office.root / "registry.db")
    for path in files:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    for suffix in ("-wal", "-shm"):
        wal = office.root / f"registry.db{suffix}"
        if wal.exists():
            assert stat.S_IMODE(os.stat(wal).st_mode) == 0o600, wal
    assert json.dumps(data)
