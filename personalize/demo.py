"""``make demo`` / ``sscard demo``: the simulated station end to end, as far as it exists.

Today: start pcscd (with vpcd) if needed, put a sample card in ``Virtual PCD 00 00``, list
the readers, and read the card through pcscd with the ``apdu`` transport — SELECT by AID,
READ BINARY by SFI, READ RECORD by number and by tag, a 600-byte GET DATA answered in
``61xx`` pieces — writing the redacted APDU trace and a JSON summary to ``out/``. The
personalization workflow replaces the card part when it lands (issue 6).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from apdu.command import Command
from apdu.pcsc import PcscTransport, reader_statuses, wait_for_card
from apdu.tlv import parse_ber, parse_simple
from apdu.trace import RecordingTrace
from simulator.cardfile import load_card, save_card
from simulator.pcscd import Pcscd
from simulator.samples import LARGE_OBJECT_TAG, SAMPLE_AID, sample_card
from simulator.vpcd import VpcdBridge, reader_name

DEMO_SLOT = 0


def _step(n: int, text: str) -> None:
    print(f"[{n}] {text}", flush=True)


def run_demo(out: Path) -> int:
    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    card_path = out / "demo-card.json"
    with Pcscd(log_path=out / "pcscd.log") as pcscd:
        _step(
            1,
            "PC/SC 服务 pcscd " + ("已启动 started" if pcscd.started_here else "已在运行 running"),
        )
        save_card(sample_card("T0"), card_path)
        bridge = VpcdBridge(load_card(card_path), slot=DEMO_SLOT).start()
        try:
            reader = reader_name(DEMO_SLOT)
            atr = wait_for_card(reader)
            _step(2, f"模拟卡已插入 simulated card inserted in {reader}, ATR {atr.hex().upper()}")
            for s in reader_statuses():
                state = f"ATR {s.atr.hex().upper()}" if s.card_present else "无卡 no card"
                print(f"      {s.name}: {state}")
            trace = RecordingTrace()
            with PcscTransport(reader) as transport:
                transport.add_observer(trace)
                _step(3, f"已连接 connected ({transport.active_protocol})")
                fci = transport.send(Command(0x00, 0xA4, 0x04, 0x00, SAMPLE_AID, le=256)).data
                aid = parse_ber(fci)[0].find(0x84)
                _step(4, f"选择应用 SELECT AID -> FCI {fci.hex().upper()}")
                binary = transport.send(Command(0x00, 0xB0, 0x81, 0x00, le=40)).data
                text = binary.rstrip(b"\0").decode("utf-8", errors="replace")
                _step(5, f"读二进制 READ BINARY (SFI 1): {text!r}")
                rec1 = transport.send(Command(0x00, 0xB2, 0x01, 0x14, le=256)).data
                rec2 = transport.send(Command(0x00, 0xB2, 0x02, 0x10, le=256)).data
                records = parse_simple(rec1) + parse_simple(rec2)
                shown = ", ".join(
                    f"{t:02X}={v.decode('gbk', errors='replace')}" for t, v in records
                )
                _step(6, f"读记录 READ RECORD (by number, by tag via SFI 2): {shown}")
                before = len(trace.events)
                big = transport.send(
                    Command(0x00, 0xCA, LARGE_OBJECT_TAG >> 8, LARGE_OBJECT_TAG & 0xFF, le=256)
                ).data
                pieces = len(trace.events) - before
                _step(7, f"GET DATA: {len(big)} bytes in {pieces} pieces (61xx → GET RESPONSE)")
        finally:
            bridge.stop()
    (out / "apdu-trace.txt").write_text(
        "\n".join(e.render() for e in trace.events) + "\n", encoding="utf-8"
    )
    summary = {
        "reader": reader,
        "atr": atr.hex().upper(),
        "aid": aid.value.hex().upper() if aid else None,
        "records": {f"{t:02X}": v.hex().upper() for t, v in records},
        "large_object_bytes": len(big),
        "apdus": len(trace.events),
        "median_latency_ms": sorted(e.latency_ms for e in trace.events)[len(trace.events) // 2],
        "seconds": round(time.monotonic() - started, 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    _step(8, f"完成 done in {summary['seconds']} s: {out}/apdu-trace.txt, {out}/summary.json")
    return 0
