"""``sscard reencode``, ``sscard diagnose`` and ``sscard pin unblock|reset``: the street-office
counter. Each names its station file (registry, security module or PSAM, track key) and
acts as the logged-in operator (``sscard login``, role office or supervisor); the holder's
ID number and PINs are read from prompts, never from arguments, and never printed."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from personalize.agent_options import add_agent_options, agent_of
from personalize.card_commands import READER_HELP
from personalize.documents import collection_certificate, collection_certificate_bytes
from personalize.office import (
    DAMAGE_CODES,
    Diagnosis,
    Office,
    OfficeError,
    office_report_pdf,
    parse_damage,
)
from personalize.operator_commands import acting
from personalize.outfiles import OutputError, write_new
from personalize.policy import load_policy
from personalize.prompts import confirm, read_id_number, read_secret, say
from personalize.registry import request_number
from personalize.station import StationConfig
from personalize.textinput import normalize
from personalize.trackvault import TrackVault
from sscard.profile import load_profile


def _office(args: argparse.Namespace, action: str) -> Office:
    """The office of ``--station``, acting as the logged-in operator allowed ``action``
    (checked before the security module is opened)."""
    station = StationConfig.load(args.station)
    policy = load_policy(station.policy)
    registry = station.open_registry(policy)
    operator = acting(registry, action).name
    vault = TrackVault.from_file(station.track_key) if station.track_key.exists() else None
    quiet = getattr(args, "json", False)
    return Office(
        registry,
        policy,
        load_profile(policy.profile),
        station.security_module(),
        vault,
        operator=operator,
        progress=(lambda s: None) if quiet else (lambda s: print(s, flush=True)),
    )


def cmd_reencode(args: argparse.Namespace) -> int:
    office = _office(args, "office.reencode")
    try:
        result = office.reencode(args.reader, args.encoder)
    finally:
        office.hsm.close()
    print(
        json.dumps(result, ensure_ascii=False)
        if args.json
        else f"加磁完成 re-encoded: {result['card_number']} 磁道 {result['tracks']}"
    )
    return 0


def cmd_diagnose(args: argparse.Namespace) -> int:
    if args.visual_only and args.reader is not None:
        raise OfficeError("仅外观检查不读卡，请不要同时指定 --reader (--visual-only reads no card)")
    office = _office(args, "office.diagnose")
    try:
        d = office.diagnose(
            args.reader,
            args.encoder,
            args.damage,
            card_number=args.card_number,
            visual_only=args.visual_only,
            agent=agent_of(args),
        )
    finally:
        office.hsm.close()
    try:
        out = write_new(
            Path(args.out or f"验卡单-{d.report_no}.pdf"),
            office_report_pdf(office.registry, d.report_no),
        )
    except OutputError as exc:
        raise OutputError(
            f"验卡单 {d.report_no} 已登记（结论 {d.verdict.text}），但未能写出，请补打 "
            f"(the report is stored; reprint it): {exc}"
        ) from None
    data = {**d.as_dict(), "report": str(out), "certificate": _certificate(office, args, d)}
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        for c in d.checks:
            print(f"  {c.item:<16} {c.result:<4} {c.detail}")
        print(
            f"结论 verdict: {d.verdict.text}；费用 fee: {d.fee} 元；下一步: {d.verdict.next_step}"
        )
        if d.request is not None:
            print(
                f"换卡受理 request: {request_number(d.request)}；领卡日期 {d.collect_on}；"
                f"领卡证明 {data['certificate']}"
            )
        print(f"验卡单 report: {d.report_no} → {out}")
    return 0


def _certificate(office: Office, args: argparse.Namespace, d: Diagnosis) -> str | None:
    """The 领卡证明 of the replacement request a damage verdict opened (with its agent, if
    one brought the card), written as ``request-reissue`` writes a reissue's; None when no
    request was opened."""
    if d.request is None:
        return None
    pdf = collection_certificate_bytes(collection_certificate(office.registry, d.request))
    number = request_number(d.request)
    try:
        return str(write_new(Path(args.certificate_out or f"领卡证明-{d.request:06d}.pdf"), pdf))
    except OutputError as exc:
        raise OutputError(
            f"换卡申请 {number} 已受理，但领卡证明未能写出，请补打 (the request is stored; "
            f"reprint its 领卡证明): {exc}"
        ) from None


def _damage(text: str) -> tuple[str, ...]:
    try:
        return parse_damage(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_pin(args: argparse.Namespace) -> int:
    office = _office(args, "office.pin")  # the operator first: no PIN typed for a refusal
    agent = agent_of(args)
    try:
        office.holder_only(args.pin_command, agent)  # an agent: refused before any prompt
        if not confirm("已核验持卡人身份证原件？(holder's ID card checked?) [y/N] "):
            raise OfficeError("未核验身份证，不能办理 (the holder's ID must be checked first)")
        id_number = read_id_number("请输入持卡人身份证号码 (holder's ID number): ")
        new_pin = None
        if args.pin_command == "reset":
            new_pin = normalize(read_secret("请持卡人输入新 PIN (new PIN, holder types): "))
            if normalize(read_secret("请再次输入新 PIN (new PIN again): ")) != new_pin:
                raise OfficeError("两次输入的新 PIN 不一致，未办理 (the PINs differ; nothing done)")
        result = office.pin_service(
            args.reader, args.pin_command, id_number=id_number, new_pin=new_pin, agent=agent
        )
    finally:
        office.hsm.close()
    done = {"unblock": "PIN 已解锁 (unblocked)", "reset": "PIN 已重置 (reset)"}
    say(f"{done[args.pin_command]}；剩余尝试次数 tries left: {result['pin_tries_left']}")
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def common(p: argparse.ArgumentParser, *, reader: bool = True) -> None:
        if reader:
            p.add_argument("--reader", required=True, help=READER_HELP)
        p.add_argument("--station", required=True, help="station file (registry, HSM/PSAM)")
        p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser("reencode", help="加磁: re-magnetize a genuine, active card")
    p.add_argument("--encoder", required=True, help="MSR206 encoder port or URL")
    common(p)
    p.set_defaults(func=cmd_reencode)
    codes = ", ".join(f"{code} {label}" for code, label in DAMAGE_CODES.items())
    p = sub.add_parser("diagnose", help="验卡: verify a damaged card, verdict and 验卡单")
    p.add_argument("--reader", help=READER_HELP + "; required unless --visual-only")
    p.add_argument("--encoder", help="MSR206 encoder port or URL (stripe checks)")
    p.add_argument(
        "--damage",
        type=_damage,
        default=(),
        metavar="CODE[,CODE…]",
        help=f"外观损坏 observed damage, comma-separated: {codes}",
    )
    p.add_argument("--card-number", help="卡号 from the card face when the chip is unreadable")
    p.add_argument(
        "--visual-only",
        action="store_true",
        help="仅外观检查: no reader; a verdict from --damage on the card --card-number names",
    )
    p.add_argument("--out", help="where the 验卡单 PDF goes (never over an earlier file)")
    p.add_argument(
        "--certificate-out",
        help="where the 领卡证明 of a replacement request goes [领卡证明-NNNNNN.pdf]",
    )
    add_agent_options(p)
    common(p, reader=False)
    p.set_defaults(func=cmd_diagnose)
    pin = sub.add_parser("pin", help="PIN unblock / reset").add_subparsers(
        dest="pin_command", required=True
    )
    for name, text in (("unblock", "unblock a blocked PIN"), ("reset", "set a new PIN")):
        p = pin.add_parser(name, help=text)
        add_agent_options(p)  # given: refused, PIN services are the holder's (不可代办)
        common(p)
        p.set_defaults(func=cmd_pin)
