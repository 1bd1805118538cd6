"""``sscard registry pay-fee|waive-fee|fees``: a request's 工本费 paid with a receipt number or
waived under dual control, and the day's fee report (docs/business-rules.md "Fees and
receipts", docs/service.md "Fees and receipts"). ``pay-fee`` and ``waive-fee`` are operators'
actions (``fee.pay``, ``fee.waive`` — the waiver confirmed by a second operator with
``--confirm-by`` / ``--confirm-session``); ``fees`` only reads."""

from __future__ import annotations

import argparse
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from personalize.fee_report import (
    FeeDayReport,
    KindDay,
    fee_day_report,
    fee_day_report_pdf,
    kind_cells,
    outstanding_line,
    settlement_line,
)
from personalize.fees import Settlement, pay_fee, waive_fee
from personalize.operator_commands import acting, add_confirm_options, confirmed
from personalize.outfiles import write_new
from personalize.registry import Registry, request_number
from personalize.registry_options import add_common_options, add_db_option, open_registry
from personalize.service_commands import _emit, _local
from personalize.stock_commands import report_day

REQUEST = re.compile(r"(?:SSCARD-REQ-)?(\d{1,9})", re.IGNORECASE)


def request_id(text: str) -> int:
    """A request as its 领卡证明 numbers it (SSCARD-REQ-000001) or its id (1)."""
    match = REQUEST.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"申请编号须如 SSCARD-REQ-000001 或 1 (a request number such as SSCARD-REQ-000001), "
            f"not {text!r}"
        )
    return int(match.group(1))


def yuan(text: str) -> int:
    """``--amount``: whole yuan."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"金额须为整数元 (the amount in whole yuan), not {text!r}"
        ) from None


def settlement_dict(registry: Registry, s: Settlement) -> dict[str, Any]:
    """A settlement as ``--json`` and the API give it (its time in the region's zone)."""
    return {
        **asdict(s),
        "outcome": str(s.outcome),
        "request_no": request_number(s.request_id),
        "at": _local(registry, s.at),
    }


def cmd_pay_fee(args: argparse.Namespace) -> int:
    registry = open_registry(args)
    operator = acting(registry, "fee.pay").name
    paid = pay_fee(
        registry, args.request, receipt_no=args.receipt, amount=args.amount, operator=operator
    )
    _emit(
        args,
        settlement_dict(registry, paid),
        f"{request_number(paid.request_id)} 工本费 {paid.amount} 元已收，收据号 {paid.receipt_no} "
        "(fee paid)",
    )
    return 0


def cmd_waive_fee(args: argparse.Namespace) -> int:
    """The approver is checked (``confirmed``: their password or session, a role that may
    confirm, not the acting operator) before the waiver's transaction."""
    registry = open_registry(args)
    actor = acting(registry, "fee.waive")
    approver = confirmed(registry, actor, args, "fee.waive")
    waived = waive_fee(
        registry, args.request, reason=args.reason, approved_by=approver, operator=actor.name
    )
    _emit(
        args,
        settlement_dict(registry, waived),
        f"{request_number(waived.request_id)} 工本费 {waived.amount} 元免收（{waived.reason}；"
        f"批准人 {waived.approved_by}）(fee waived)",
    )
    return 0


def _kind_line(d: KindDay) -> str:
    return "\t".join(kind_cells(d))


def report_text(registry: Registry, report: FeeDayReport) -> list[str]:
    zone = registry.policy.zone
    return [
        f"{report.day.isoformat()} 工本费日报 ({report.time_zone})",
        "业务类型\t已收笔数\t已收金额\t免收笔数\t免收金额\t未收笔数\t未收金额",
        *(_kind_line(d) for d in report.kinds),
        _kind_line(report.total),
        "收据与免收 (receipts and waivers):",
        *(f"  {settlement_line(s, zone)}" for s in report.settlements),
        "未收 (outstanding at the day's close):",
        *(f"  {outstanding_line(u)}" for u in report.outstanding),
        *(report.discrepancies or ["无差异：汇总与明细相符 (the sums match the rows)"]),
    ]


def report_dict(registry: Registry, report: FeeDayReport) -> dict[str, Any]:
    """The day's fee report as ``--json`` and the API give it."""
    return {
        "day": report.day.isoformat(),
        "time_zone": report.time_zone,
        "kinds": [asdict(d) for d in report.kinds],
        "total": asdict(report.total),
        "settlements": [settlement_dict(registry, s) for s in report.settlements],
        "outstanding": [
            {**asdict(u), "request_no": request_number(u.request_id)} for u in report.outstanding
        ],
        "discrepancies": list(report.discrepancies),
        "reconciled": report.reconciled,
    }


def cmd_fees(args: argparse.Namespace) -> int:
    """The day's fee report; exit status 0 when its sums match its rows, 1 when it lists a
    discrepancy (the report is printed, and the PDF written, either way)."""
    registry = open_registry(args)
    report = fee_day_report(registry, args.day)
    written = None if args.pdf is None else write_new(Path(args.pdf), fee_day_report_pdf(report))
    data = {**report_dict(registry, report), "pdf": None if written is None else str(written)}
    lines = report_text(registry, report)
    if written is not None:
        lines.append(f"日报已写入 report written to {written}")
    _emit(args, data, "\n".join(lines))
    return 0 if report.reconciled else 1


def add_registry_parsers(reg: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The fee commands under ``sscard registry``."""

    def common(p: argparse.ArgumentParser) -> None:
        add_db_option(p)
        add_common_options(p)

    request_help = "the request (SSCARD-REQ-000001 or 1, as on its 领卡证明)"
    p = reg.add_parser("pay-fee", help="工本费已收: the fee paid, with its receipt number")
    p.add_argument("request", type=request_id, help=request_help)
    p.add_argument("--receipt", required=True, help="收据号 (never used before)")
    p.add_argument("--amount", required=True, type=yuan, help="yuan received: the request's fee")
    common(p)
    p.set_defaults(func=cmd_pay_fee)
    p = reg.add_parser(
        "waive-fee", help="工本费免收: the request's fee waived, with a reason and an approver"
    )
    p.add_argument("request", type=request_id, help=request_help)
    p.add_argument("--reason", required=True, help="why the fee is waived (免收原因)")
    add_confirm_options(p)
    common(p)
    p.set_defaults(func=cmd_waive_fee)
    p = reg.add_parser(
        "fees",
        help="the day's fees: paid, waived and outstanding per kind, each receipt "
        "(exit status 1 when the sums do not match the rows)",
    )
    p.add_argument(
        "--day", required=True, type=report_day, help="the region's local day, YYYY-MM-DD"
    )
    p.add_argument(
        "--pdf", help="also write the report as a PDF (never over an existing file: the next name)"
    )
    common(p)
    p.set_defaults(func=cmd_fees)
