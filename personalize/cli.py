"""The ``sscard`` command line.

Every command prints human-readable text by default and JSON with ``--json``. Errors go to
stderr as one line, Chinese first with the English beside it, and set a non-zero exit
status: 1 for a card, reader, device, file or registry problem, 2 for a usage error; with
``--json`` the error is also a JSON object on stdout (:mod:`personalize.cli_errors`).
``-v``/``--verbose`` is accepted before or after any subcommand. The ``sim`` and ``demo``
commands are the composition root that may start the simulator (docs/architecture.md); they
import it only when run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from apdu.command import Command
from apdu.pcsc import PcscTransport, reader_statuses
from apdu.status import describe
from apdu.trace import LoggingTrace
from personalize.api_commands import add_parser as add_api_parser
from personalize.card_commands import READER_HELP
from personalize.card_commands import add_parser as add_card_parser
from personalize.center_commands import add_parser as add_center_parser
from personalize.cli_errors import UsageError, report
from personalize.hsm_commands import add_parser as add_hsm_parser
from personalize.mag_commands import add_parser as add_mag_parser
from personalize.office_commands import add_parser as add_office_parser
from personalize.operator_commands import add_parser as add_operator_parser
from personalize.outbox_commands import add_parser as add_outbox_parser
from personalize.outfiles import PRIVATE_UMASK, OutputError
from personalize.printer_commands import add_parser as add_printer_parser
from personalize.registry import utc_now
from personalize.service_commands import add_parser as add_service_parser
from personalize.station_commands import add_parser as add_station_parser
from personalize.stock_commands import add_parser as add_stock_parser


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
        args.reader, exclusive=not args.shared, t0_handling=not args.no_t0
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


def refuse_overwrite(path: Path, force: bool) -> None:
    """Files the ``sim`` commands write are refused over an existing file unless ``--force``
    (a card file is a card: replacing it silently loses that card's state)."""
    if path.exists() and not force:
        raise OutputError(
            f"文件已存在，未覆盖：{path}；确需替换请加 --force "
            "(the file exists and is not overwritten without --force)"
        )


def serial_argument(text: str) -> bytes:
    """``--serial``: the card's 8-byte serial number as 16 hex digits."""
    try:
        serial = bytes.fromhex(text)
    except ValueError:
        serial = b""
    if len(serial) != 8:
        raise argparse.ArgumentTypeError(
            f"--serial 应为 16 位十六进制数字 (16 hex digits), not {text!r}"
        )
    return serial


def quirk_argument(text: str) -> str:
    """``--quirk``: a quirk name of simulator/quirks.py, or NAME=N for a parameterised one."""
    from simulator.quirks import parse_quirk

    try:
        parse_quirk(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def cmd_sim_new_card(args: argparse.Namespace) -> int:
    from simulator.cardfile import save_card
    from simulator.factory import card_from_options

    refuse_overwrite(args.out, args.force)
    issued = card_from_options(
        kind=args.kind,
        image=args.profile,
        region=args.region,
        protocol=args.protocol,
        personalized=args.personalized,
        holder_file=args.holder,
        damage=args.damage,
        keystore=args.keystore,
        serial=args.serial,
        card_number=args.card_number,
        quirks=tuple(args.quirk),
    )
    save_card(issued.card, args.out)
    facts = [args.kind]
    if issued.sn is not None:
        facts.append(f"SN {issued.sn.hex().upper()}")
    if issued.card_number is not None:
        facts.append(f"卡号 {issued.card_number}")
    facts.append(f"ATR {issued.card.atr.hex().upper()}")
    if args.quirk:
        facts.append(f"quirks {' '.join(args.quirk)}")
    print(f"模拟卡已写入 card written to {args.out} ({', '.join(facts)})")
    return 0


def cmd_sim_new_psam(args: argparse.Namespace) -> int:
    from personalize.hsm_commands import open_keystore
    from simulator.cardfile import save_card
    from simulator.psam import new_psam

    refuse_overwrite(args.out, args.force)
    psam = new_psam(open_keystore(args.keystore), role=args.role, protocol=args.protocol)
    save_card(psam, args.out)
    print(f"PSAM 卡已写入 PSAM with {len(psam.keys)} keys written to {args.out}")
    return 0


def cmd_sim_encoder(args: argparse.Namespace) -> int:
    from simulator.msr206_emulator import Msr206Emulator, VirtualStripe

    stripe = None
    if args.tracks:
        try:
            stripe = VirtualStripe.from_json(args.tracks)
        except ValueError as exc:
            raise ValueError(f"参数 --tracks：{exc}") from None
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

    if args.card:
        feeder = [VirtualCard(load_card(path)) for path in args.card]
    else:
        feeder = [  # a fresh batch from the manufacturer: random, unique SNs
            VirtualCard(issue_blank_card(args.profile, args.region, serial=secrets.token_bytes(8)))
            for _ in range(args.cards)
        ]
    out_dir = Path(args.out_dir)
    if any(out_dir.glob("printed-*.png")) and not args.force:
        raise OutputError(
            f"目录里已有打印结果，未覆盖：{out_dir}；请换 --out-dir 或加 --force "
            "(the directory holds earlier prints; not overwritten without --force)"
        )
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


class SscardParser(argparse.ArgumentParser):
    """Usage errors become :class:`UsageError` (one line, exit 2) instead of usage + exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; see: {self.prog} --help")


VERBOSE_HELP = "显示调试日志和出错时的详细信息 (log debug messages; tracebacks on errors)"


def accept_verbose_everywhere(parser: argparse.ArgumentParser) -> None:
    """``-v`` after any subcommand too. SUPPRESS keeps a subcommand from resetting a ``-v``
    given before it (the top-level parser's default is False)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                sub.add_argument(
                    "-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                    help=VERBOSE_HELP,
                )  # fmt: skip
                accept_verbose_everywhere(sub)


def build_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = SscardParser(
        prog="sscard",
        description="社保卡制卡与服务 (social security card personalization and service): "
        "readers, cards, security module, devices, registry, jobs, street office, simulators.",
        epilog="出错时只输出一行错误信息，退出码 1；用法错误退出码 2；加 --json 时错误也以 JSON "
        "输出到 stdout；-v 可放在任何位置。(Errors are one line, exit status 1, usage errors 2; "
        "with --json the error is JSON on stdout; -v works anywhere and adds the details.)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("readers", help="list PC/SC readers, card presence and ATR")
    p.add_argument("--json", action="store_true", help="output JSON")
    p.set_defaults(func=cmd_readers)

    p = sub.add_parser("apdu", help="send raw APDUs (hex) to the card in a reader")
    p.add_argument("--reader", default="0", help=READER_HELP + " [0]")
    p.add_argument("--shared", action="store_true", help="connect in shared mode")
    p.add_argument("--no-t0", action="store_true", help="do not follow 61xx / 6Cxx")
    p.add_argument("--trace", action="store_true", help="log the redacted APDU trace")
    p.add_argument("--json", action="store_true", help="output JSON")
    p.add_argument("apdus", nargs="+", metavar="HEX", help="command APDUs in hex, sent in order")
    p.set_defaults(func=cmd_apdu)

    sim = sub.add_parser("sim", help="simulated cards and devices").add_subparsers(
        dest="sim_command", required=True, metavar="SIM_COMMAND"
    )
    force_help = "replace an existing file (default: refuse)"
    p = sim.add_parser(
        "new-card",
        help="issue a simulated card file (card factory)",
        description="Issue a simulated card file. Each card gets a fresh random SN and, "
        "when personalized, a fresh 卡号 derived from it; --serial pins the SN (and so the "
        "卡号), --card-number pins the 卡号. An existing file is refused unless --force.",
    )
    p.add_argument("--out", required=True, type=Path, help="the card file to write (JSON)")
    p.add_argument("--force", action="store_true", help=force_help)
    p.add_argument(
        "--kind",
        choices=("sscard", "iso-sample"),
        default="sscard",
        help="a 社保卡 (default) or the generic sample ISO 7816 card",
    )
    p.add_argument(
        "--profile",
        default="default",
        help="card image: a name (default, hunan, jiangsu, pin-read) or a TOML path "
        "(simulator/images/)",
    )
    p.add_argument("--region", default="371700", help="6-digit region code")
    p.add_argument("--protocol", choices=("T0", "T1"), default="T0", help="T=0 (default) or T=1")
    p.add_argument("--personalized", action="store_true", help="with holder data written")
    p.add_argument(
        "--quirk",
        action="append",
        default=[],
        type=quirk_argument,
        metavar="QUIRK",
        help="a documented departure from the real card's behaviour, repeatable "
        "(simulator/quirks.py: fci-on-select-ef, strict-le, always-61xx, sfi-only, pad-20, "
        "pad-ff, no-4e, max-le=N)",
    )
    p.add_argument("--holder", type=Path, help="holder JSON (default: a sample holder)")
    p.add_argument(
        "--damage",
        choices=("mute", "no-ssse", "corrupt-ef05"),
        help="break the card: mute chip, no SSSE application, or a corrupt EF05 record",
    )
    p.add_argument("--keystore", type=Path, help="root keys (default: the test keys)")
    p.add_argument(
        "--serial", type=serial_argument, help="card serial number, 16 hex digits (default: random)"
    )
    p.add_argument(
        "--card-number",
        help="卡号 with its check character, with --personalized (default: derived from the SN)",
    )
    p.set_defaults(func=cmd_sim_new_card)
    p = sim.add_parser("serve", help="serve a card file on a vpcd slot until stopped")
    p.add_argument("--slot", type=int, default=0, help="vpcd slot: 0 = port 35963, 1 = 35964")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for vpcd")
    p.add_argument("cardfile", type=Path, help="the card file (changes are written back)")
    p.set_defaults(func=cmd_sim_serve)

    p = sim.add_parser("new-psam", help="write a PSAM card file loaded from a keystore")
    p.add_argument("--keystore", required=True, type=Path, help="the keystore to load from")
    p.add_argument("--out", required=True, type=Path, help="the card file to write (JSON)")
    p.add_argument("--force", action="store_true", help=force_help)
    p.add_argument("--protocol", choices=("T0", "T1"), default="T0", help="T=0 (default) or T=1")
    p.add_argument(
        "--role",
        choices=("office", "card-center"),
        default="office",
        help="office (default: no update or master key) or card-center (every key)",
    )
    p.set_defaults(func=cmd_sim_new_psam)

    p = sim.add_parser("printer", help="an Evolis printer emulator on a pseudo-terminal")
    p.add_argument("--cards", type=int, default=5, help="blank 社保卡 in the feeder")
    p.add_argument("--card", action="append", type=Path, help="card file(s) for the feeder")
    p.add_argument(
        "--profile", default="default", help="card image of the blank cards (name or TOML path)"
    )
    p.add_argument("--region", default="371700", help="region code of the blank cards")
    p.add_argument("--slot", type=int, default=0, help="vpcd slot of the contact station")
    p.add_argument("--out-dir", default="out/printed", help="where printed faces go (PNG)")
    p.add_argument(
        "--force", action="store_true", help="print into an --out-dir that holds earlier prints"
    )
    p.set_defaults(func=cmd_sim_printer)

    p = sim.add_parser("encoder", help="an MSR206 encoder emulator on a pseudo-terminal")
    p.add_argument(
        "--tracks",
        help='initial stripe as JSON, track number to data, e.g. \'{"2": "123=4567"}\'',
    )
    p.set_defaults(func=cmd_sim_encoder)
    add_center_parser(sim)

    add_hsm_parser(sub)
    add_card_parser(sub)
    add_mag_parser(sub)
    add_printer_parser(sub)
    add_service_parser(sub)
    add_station_parser(sub)
    add_office_parser(sub)
    add_operator_parser(sub)
    add_outbox_parser(sub)
    add_api_parser(sub)
    add_stock_parser(sub)

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
    accept_verbose_everywhere(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)  # personal data: files 0600, directories 0700 (outfiles.py)
    arguments = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in arguments or "--verbose" in arguments
    try:
        args = build_parser().parse_args(arguments)
    except UsageError as exc:
        return report(exc, as_json="--json" in arguments, verbose=verbose)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print("已中断 (interrupted)", file=sys.stderr)
        return 130
    except Exception as exc:  # every error ends here: one line, never a bare traceback
        return report(exc, as_json=getattr(args, "json", False), verbose=args.verbose)
    return code


if __name__ == "__main__":
    sys.exit(main())
