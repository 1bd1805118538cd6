"""The ``sscard`` command line.

Every command prints human-readable text by default and JSON with ``--json``. Errors go to
stderr as one line and set a non-zero exit status: 1 for a card, reader or device problem,
2 for a usage error. The ``sim`` and ``demo`` commands are the composition root that may
start the simulator (ARCHITECTURE.md); they import it only when run.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from apdu.command import Command
from apdu.errors import ApduError
from apdu.pcsc import PcscTransport, reader_statuses
from apdu.status import describe
from apdu.trace import LoggingTrace
from hsm_stub.errors import SecurityModuleError
from personalize.card_commands import add_parser as add_card_parser
from personalize.card_commands import reader_spec
from personalize.hsm_commands import add_parser as add_hsm_parser
from personalize.jobs import JobError
from personalize.mag_commands import add_parser as add_mag_parser
from personalize.office import OfficeError
from personalize.office_commands import add_parser as add_office_parser
from personalize.printer_commands import add_parser as add_printer_parser
from personalize.registry import RegistryError, utc_now
from personalize.service_commands import add_parser as add_service_parser
from personalize.trackvault import VaultError
from printer.errors import DeviceError, TrackError
from sscard.errors import SocialSecurityCardError


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))


# ------------------------------------------------------------------ readers


def cmd_readers(args: argparse.Namespace) -> int:
    statuses = reader_statuses()
    if args.json:
        _print_json(
            [
                {
                    "reader": s.name,
                    "card_present": s.card_present,
                    "atr": s.atr.hex().upper() if s.atr else None,
                    "mute": s.mute,
                    "in_use": s.in_use,
                }
                for s in statuses
            ]
        )
        return 0
    if not statuses:
        print("没有读卡器 (no PC/SC readers)")
    for s in statuses:
        card = f"卡片 ATR {s.atr.hex().upper()}" if s.card_present else "无卡 (no card)"
        flags = " [占用 in use]" if s.in_use else ""
        flags += " [无响应 mute]" if s.mute else ""
        print(f"{s.name}: {card}{flags}")
    return 0


# ------------------------------------------------------------------ apdu


def cmd_apdu(args: argparse.Namespace) -> int:
    commands = [Command.from_hex(h) for h in args.apdus]
    results = []
    with PcscTransport(
        reader_spec(args.reader), exclusive=not args.shared, t0_handling=not args.no_t0
    ) as transport:
        if args.trace:
            trace = LoggingTrace(level=logging.INFO)
            trace.logger.setLevel(logging.INFO)  # shown even without --verbose
            transport.add_observer(trace)
        for command in commands:
            response = transport.transmit(command)
            results.append(
                {
                    "command": repr(command),
                    "data": response.data.hex().upper(),
                    "sw": f"{response.sw:04X}",
                    "meaning": describe(response.sw),
                }
            )
    if args.json:
        _print_json(results)
    else:
        for r in results:
            print(f"{r['command']} -> {r['data']} {r['sw']} ({r['meaning']})")
    return 0


# ------------------------------------------------------------------ sim


def cmd_sim_new_card(args: argparse.Namespace) -> int:
    from simulator.cardfile import save_card
    from simulator.factory import card_from_options

    card = card_from_options(
        kind=args.kind,
        profile_name=args.profile,
        region=args.region,
        protocol=args.protocol,
        personalized=args.personalized,
        holder_file=args.holder,
        damage=args.damage,
        keystore=args.keystore,
        serial=bytes.fromhex(args.serial) if args.serial else None,
    )
    save_card(card, args.out)
    print(f"{args.kind} card written to {args.out} (ATR {card.atr.hex().upper()})")
    return 0


def cmd_sim_new_psam(args: argparse.Namespace) -> int:
    from personalize.hsm_commands import open_keystore
    from simulator.cardfile import save_card
    from simulator.psam import new_psam

    psam = new_psam(open_keystore(args.keystore), protocol=args.protocol)
    save_card(psam, args.out)
    print(f"PSAM with {len(psam.keys)} keys written to {args.out}")
    return 0


def cmd_sim_encoder(args: argparse.Namespace) -> int:
    from simulator.msr206_emulator import Msr206Emulator, VirtualStripe

    stripe = VirtualStripe.with_tracks(json.loads(args.tracks)) if args.tracks else None
    emulator = Msr206Emulator(stripe).start()
    print(f"MSR206 encoder emulator on {emulator.path} (Ctrl-C stops it)", flush=True)
    _wait_for_signal()
    emulator.stop()
    return 0


def cmd_sim_printer(args: argparse.Namespace) -> int:
    from simulator.cardfile import load_card
    from simulator.evolis_emulator import EvolisEmulator, VirtualCard
    from simulator.factory import issue_blank_card
    from simulator.pcscd import Pcscd
    from sscard.profile import load_profile

    profile = load_profile(args.profile)
    if args.card:
        feeder = [VirtualCard(load_card(path)) for path in args.card]
    else:
        feeder = [
            VirtualCard(issue_blank_card(profile, args.region, serial=i.to_bytes(8, "big")))
            for i in range(1, args.cards + 1)
        ]
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with Pcscd():
        emulator = EvolisEmulator(feeder, contact_slot=args.slot, out_dir=out_dir).start()
        print(
            f"Evolis printer emulator on {emulator.path}: {len(feeder)} cards in the feeder, "
            f"contact station = Virtual PCD 00 {args.slot:02d}, prints to {out_dir}/ "
            "(Ctrl-C stops it)",
            flush=True,
        )
        _wait_for_signal()
        emulator.stop()
    return 0


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    stop.wait()


def cmd_sim_serve(args: argparse.Namespace) -> int:
    from simulator.cardfile import load_card
    from simulator.vpcd import VpcdBridge, reader_name

    card = load_card(args.cardfile)
    bridge = VpcdBridge(card, slot=args.slot)
    bridge.connect(timeout=args.timeout)

    def _stop(signum: int, frame: object) -> None:
        bridge.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(
        f"card {args.cardfile} inserted in {reader_name(args.slot)} (Ctrl-C removes it)", flush=True
    )
    bridge.serve_forever()
    print(f"card removed after {bridge.apdu_count} APDUs")
    return 0


# ------------------------------------------------------------------ demo

# The demo's default start: its documents are the same on any day it is run, and its dates
# stay inside the years the default policy's holiday calendar covers.
DEMO_AT = "2026-11-25T09:30+08:00"


def demo_instant(text: str) -> datetime | None:
    """``demo --at``: an ISO 8601 instant with its offset, or ``now`` (the system clock)."""
    if text == "now":
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"不是 ISO 8601 时刻 (not an ISO 8601 instant): {text!r}"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"时刻须带时区偏移，如 +08:00 (the instant needs its offset): {text!r}"
        )
    return moment


def cmd_demo(args: argparse.Namespace) -> int:
    from personalize.demo import run_demo, running_from

    return run_demo(Path(args.out), clock=utc_now if args.at is None else running_from(args.at))


# ------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sscard", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("readers", help="list PC/SC readers, card presence and ATR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_readers)

    p = sub.add_parser("apdu", help="send raw APDUs (hex) to the card in a reader")
    p.add_argument("--reader", default="0", help="index, exact name or regex (default 0)")
    p.add_argument("--shared", action="store_true", help="connect in shared mode")
    p.add_argument("--no-t0", action="store_true", help="do not follow 61xx / 6Cxx")
    p.add_argument("--trace", action="store_true", help="log the redacted APDU trace")
    p.add_argument("--json", action="store_true")
    p.add_argument("apdus", nargs="+", metavar="HEX")
    p.set_defaults(func=cmd_apdu)

    sim = sub.add_parser("sim", help="simulated cards and devices").add_subparsers(
        dest="sim_command", required=True
    )
    p = sim.add_parser("new-card", help="issue a simulated card file (card factory)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument(
        "--kind",
        choices=("sscard", "iso-sample"),
        default="sscard",
        help="a 社保卡 (default) or the generic sample ISO 7816 card",
    )
    p.add_argument("--profile", default="default", help="card profile name or TOML path")
    p.add_argument("--region", default="371700", help="6-digit region code")
    p.add_argument("--protocol", choices=("T0", "T1"), default="T0")
    p.add_argument("--personalized", action="store_true", help="with holder data written")
    p.add_argument("--holder", type=Path, help="holder JSON (default: a sample holder)")
    p.add_argument("--damage", choices=("mute", "no-ssse", "corrupt-ef05"))
    p.add_argument("--keystore", type=Path, help="root keys (default: the test keys)")
    p.add_argument("--serial", help="card serial number, 16 hex digits")
    p.set_defaults(func=cmd_sim_new_card)
    p = sim.add_parser("serve", help="serve a card file on a vpcd slot until stopped")
    p.add_argument("--slot", type=int, default=0, help="vpcd slot: 0 = port 35963, 1 = 35964")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for vpcd")
    p.add_argument("cardfile", type=Path)
    p.set_defaults(func=cmd_sim_serve)

    p = sim.add_parser("new-psam", help="write a PSAM card file loaded from a keystore")
    p.add_argument("--keystore", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--protocol", choices=("T0", "T1"), default="T0")
    p.set_defaults(func=cmd_sim_new_psam)

    p = sim.add_parser("printer", help="an Evolis printer emulator on a pseudo-terminal")
    p.add_argument("--cards", type=int, default=5, help="blank 社保卡 in the feeder")
    p.add_argument("--card", action="append", type=Path, help="card file(s) for the feeder")
    p.add_argument("--profile", default="default")
    p.add_argument("--region", default="371700")
    p.add_argument("--slot", type=int, default=0, help="vpcd slot of the contact station")
    p.add_argument("--out-dir", default="out/printed", help="where printed faces go (PNG)")
    p.set_defaults(func=cmd_sim_printer)

    p = sim.add_parser("encoder", help="an MSR206 encoder emulator on a pseudo-terminal")
    p.add_argument("--tracks", help='initial stripe as JSON, e.g. \'{"2": "123=4567"}\'')
    p.set_defaults(func=cmd_sim_encoder)

    add_hsm_parser(sub)
    add_card_parser(sub)
    add_mag_parser(sub)
    add_printer_parser(sub)
    add_service_parser(sub)
    add_office_parser(sub)

    p = sub.add_parser("demo", help="run the demo on the simulated station")
    p.add_argument("--out", default="out", help="directory for the demo's results")
    p.add_argument(
        "--at",
        type=demo_instant,
        default=DEMO_AT,
        help=f"演示开始的时刻 (ISO 8601，带时区偏移；默认 {DEMO_AT}，文档因此可复现；"
        "now 用系统时钟，须在区域政策收录的年份内) — the instant the demo starts at",
    )
    p.set_defaults(func=cmd_demo)
    return parser


# Errors an operator can act on: one line on stderr, exit status 1, never a traceback.
OPERATOR_ERRORS = (
    ApduError,
    SecurityModuleError,
    SocialSecurityCardError,
    DeviceError,
    TrackError,
    RegistryError,
    JobError,
    VaultError,
    OfficeError,
    OSError,
    ValueError,
    EOFError,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code: int = args.func(args)
    except OPERATOR_ERRORS as exc:
        print(f"错误 error ({type(exc).__name__}): {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
