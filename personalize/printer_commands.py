"""``sscard printer …``: status, print a front image, eject or reject — an Evolis-protocol
printer at any ``serial_for_url`` address."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from PIL import Image

from printer.evolis import EvolisPrinter
from printer.face import fit_front, panels_from_image
from sscard.profile import load_profile


def cmd_status(args: argparse.Namespace) -> int:
    with EvolisPrinter(args.port, timeout=args.timeout) as printer:
        status = printer.status()
    if args.json:
        print(json.dumps(asdict(status), ensure_ascii=False))
        return 0
    print(
        f"型号 model: {status.model}  序列号 serial: {status.serial_number}  "
        f"固件 firmware: {status.firmware}"
    )
    print(
        f"色带 ribbon: {status.ribbon or '无 none'}  进卡器 feeder: {status.feeder}  "
        f"卡位置 card: {status.card_position}"
    )
    return 0


def cmd_print(args: argparse.Namespace) -> int:
    try:
        with Image.open(args.front) as opened:
            image = opened.convert("RGB")
    except OSError as exc:
        raise ValueError(
            f"正面图像无法读取 (cannot read the front image) {args.front}: {exc}"
        ) from None
    image, warning = fit_front(image)  # the documented rule: exact, same shape scaled, or refused
    panels = panels_from_image(image, load_profile(args.profile).face)
    if warning:
        print(f"警告 warning: {warning}", file=sys.stderr)
    with EvolisPrinter(args.port, timeout=args.timeout) as printer:
        if not args.json:
            print("打印中 printing…", flush=True)
        printer.print_panels(panels)
    if args.json:
        print(json.dumps({"result": "printed", "warning": warning}, ensure_ascii=False))
    else:
        print("已打印并出卡 printed and ejected")
    return 0


def cmd_move(args: argparse.Namespace) -> int:
    with EvolisPrinter(args.port, timeout=args.timeout) as printer:
        if args.printer_command == "eject":
            printer.eject()
        else:
            printer.reject()
    if args.json:
        print(json.dumps({"result": args.printer_command}))
    else:
        print(
            {"eject": "已出卡 ejected", "reject": "已退卡至废卡箱 rejected"}[args.printer_command]
        )
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    printer = sub.add_parser("printer", help="card printer (Evolis protocol)").add_subparsers(
        dest="printer_command", required=True
    )
    p_status = printer.add_parser("status", help="model, serial, firmware, ribbon, feeder, card")
    p_status.set_defaults(func=cmd_status)
    p_print = printer.add_parser(
        "print",
        help="print a front image (1016 × 648) and eject",
        description="Print a front image and eject the card. The image must be 1016 × 648 "
        "dots; one of the same proportions (within 2 %%) is scaled to it with a warning; any "
        "other size is refused. The overlay spares the profile's chip contacts.",
    )
    p_print.add_argument(
        "--front", required=True, type=Path, help="PNG/JPEG, 1016 × 648 (300 dpi, landscape)"
    )
    p_print.add_argument(
        "--profile", default="default", help="card profile whose chip geometry the overlay spares"
    )
    p_print.set_defaults(func=cmd_print)
    p_eject = printer.add_parser("eject", help="eject the card in the printer")
    p_eject.set_defaults(func=cmd_move)
    p_reject = printer.add_parser("reject", help="send the card to the reject bin")
    p_reject.set_defaults(func=cmd_move)
    for q in (p_status, p_print, p_eject, p_reject):
        q.add_argument("--port", required=True, help="device path or pyserial URL")
        q.add_argument(
            "--timeout", type=float, default=30.0, help="seconds to wait for the printer [30]"
        )
        q.add_argument("--json", action="store_true", help="output JSON (errors too)")
