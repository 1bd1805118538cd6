"""``sscard mag …``: read, write (with read-back) and erase a magnetic stripe through an
MSR206-class encoder at any ``serial_for_url`` address. Track data is card data: it is
printed only by ``mag read``, which exists to show it, and never logged."""

from __future__ import annotations

import argparse
import json

from printer.msr206 import Msr206, StripeRead


def _show(read: StripeRead, as_json: bool) -> None:
    if as_json:
        print(
            json.dumps(
                {f"track{t.number}": {"state": t.state, "data": t.data} for t in read.tracks},
                ensure_ascii=False,
            )
        )
        return
    labels = {"ok": "", "blank": "(空白 blank)", "unreadable": "(无法读取 unreadable)"}
    for t in read.tracks:
        print(f"磁道 track {t.number}: {t.data}{labels[t.state]}")


def cmd_read(args: argparse.Namespace) -> int:
    with Msr206(args.port, timeout=args.timeout, swipe_timeout=args.timeout) as encoder:
        read = encoder.read()
    _show(read, args.json)
    return 0


def cmd_write(args: argparse.Namespace) -> int:
    tracks = {n: s for n, s in ((1, args.track1), (2, args.track2), (3, args.track3)) if s}
    if not tracks:
        raise ValueError("nothing to write: give --track1, --track2 and/or --track3")
    with Msr206(args.port, timeout=args.timeout, swipe_timeout=args.timeout) as encoder:
        if args.coercivity:
            encoder.set_coercivity(args.coercivity)
        encoder.write(tracks)
    if args.json:
        print(json.dumps({"result": "ok", "written": sorted(tracks), "verified": True}))
    else:
        print(
            f"写入并校验成功 written and verified: track(s) {', '.join(map(str, sorted(tracks)))}"
        )
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    try:
        tracks = {int(t) for t in args.tracks.split(",")}
    except ValueError:
        raise ValueError("--tracks is a comma-separated list of 1, 2, 3") from None
    with Msr206(args.port, timeout=args.timeout, swipe_timeout=args.timeout) as encoder:
        encoder.erase(tracks)
    if args.json:
        print(json.dumps({"result": "ok", "erased": sorted(tracks)}))
    else:
        print(f"已擦除 erased: track(s) {', '.join(map(str, sorted(tracks)))}")
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mag = sub.add_parser("mag", help="magnetic-stripe encoder (MSR206 protocol)").add_subparsers(
        dest="mag_command", required=True
    )
    p = mag.add_parser("read", help="read the three tracks")
    p.set_defaults(func=cmd_read)
    p_write = mag.add_parser("write", help="write tracks (data characters only), read back")
    for n in (1, 2, 3):
        p_write.add_argument(f"--track{n}", metavar="S", help=f"track {n} data characters")
    p_write.add_argument("--coercivity", choices=("hi", "lo"), help="set hi-co or lo-co first")
    p_write.set_defaults(func=cmd_write)
    p_erase = mag.add_parser("erase", help="erase tracks")
    p_erase.add_argument("--tracks", required=True, help="e.g. 1,2,3")
    p_erase.set_defaults(func=cmd_erase)
    for q in (p, p_write, p_erase):
        q.add_argument("--port", required=True, help="device path or pyserial URL")
        q.add_argument("--timeout", type=float, default=20.0, help="seconds (a swipe included)")
        q.add_argument("--json", action="store_true", help="output JSON (errors too)")
