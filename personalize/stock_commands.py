"""``sscard stock receive|test-card|levels|report``: the card center's blank-card stock and
its daily reconciliation (docs/business-rules.md "Card stock", docs/service.md "Card
stock"). ``receive`` and ``test-card`` are operators' actions (``stock.receive``,
``stock.test_card``: a session, audited); ``levels`` and ``report`` only read."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from personalize.cli_types import positive_count
from personalize.operator_commands import acting
from personalize.outfiles import write_new
from personalize.registry_options import add_common_options, add_db_option, open_registry
from personalize.service_commands import _emit, _local
from personalize.stock import (
    StationDay,
    StockMove,
    day_report,
    day_report_pdf,
    receive_stock,
    stock_levels,
    take_test_card,
)
from personalize.stock_store import MoveKind


def report_day(text: str) -> date:
    """``--day``: a date as YYYY-MM-DD (the region's local day)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"日期格式须为 YYYY-MM-DD，如 2026-11-25 (a date as YYYY-MM-DD), not {text!r}"
        ) from None


def _move_text(move: StockMove, at: str | None) -> str:
    what = {
        MoveKind.RECEIVED: f"入库 {move.quantity} 张，批次 {move.batch}",
        MoveKind.TEST: f"领用测试卡 1 张，原因 {move.reason}",
    }.get(move.kind, f"{move.kind.label} {move.quantity} 张")
    return f"工位 {move.station}：{what}（{at}，经办人 {move.operator}）(stock move {move.id})"


def _move_dict(move: StockMove, at: str | None) -> dict[str, Any]:
    return {**asdict(move), "kind": str(move.kind), "at": at}


def cmd_stock_receive(args: argparse.Namespace) -> int:
    registry = open_registry(args)
    operator = acting(registry, "stock.receive").name
    move = receive_stock(registry, args.station, args.count, batch=args.batch, operator=operator)
    at = _local(registry, move.at)
    _emit(args, _move_dict(move, at), _move_text(move, at))
    return 0


def cmd_stock_test_card(args: argparse.Namespace) -> int:
    registry = open_registry(args)
    operator = acting(registry, "stock.test_card").name
    move = take_test_card(registry, args.station, reason=args.reason, operator=operator)
    at = _local(registry, move.at)
    _emit(args, _move_dict(move, at), _move_text(move, at))
    return 0


def cmd_stock_levels(args: argparse.Namespace) -> int:
    levels = stock_levels(open_registry(args))
    rows = [{**asdict(s), "on_hand": s.on_hand} for s in levels]
    head = "工位\t入库\t制成\t废卡\t测试卡\t在库"
    lines = [
        f"{s.station}\t{s.received}\t{s.personalized}\t{s.rejected}\t{s.test}\t{s.on_hand}"
        + ("\t库存为负 (below zero)" if s.on_hand < 0 else "")
        for s in levels
    ]
    _emit(
        args,
        {"stations": rows},
        "\n".join([head, *lines]) if lines else "没有库存记录 (no stock recorded)",
    )
    return 0


def _day_line(d: StationDay) -> str:
    reasons = "，".join(f"{r.reason} {r.count}" for r in d.rejected_by_reason)
    return (
        f"{d.station}\t{d.opening}\t{d.received}\t{d.personalized}\t{d.rejected}\t{d.test}"
        f"\t{d.closing}\t{d.jobs_personalized}\t{d.jobs_rejected}"
        + (f"\t废卡原因：{reasons}" if reasons else "")
    )


def cmd_stock_report(args: argparse.Namespace) -> int:
    """The day's reconciliation; exit status 0 when it reconciles, 1 when it lists a
    discrepancy (the report is printed, and the PDF written, either way)."""
    registry = open_registry(args)
    report = day_report(registry, args.day, args.station)
    written = None if args.pdf is None else write_new(Path(args.pdf), day_report_pdf(report))
    data = {
        "day": report.day.isoformat(),
        "time_zone": report.time_zone,
        "station": report.station,
        "stations": [asdict(s) for s in report.stations],
        "total": asdict(report.total),
        "rejects": [_move_dict(m, _local(registry, m.at)) for m in report.rejects],
        "discrepancies": list(report.discrepancies),
        "reconciled": report.reconciled,
        "pdf": None if written is None else str(written),
    }
    head = "工位\t期初\t入库\t制成\t废卡\t测试卡\t期末\t作业启用\t作业报废"
    lines = [
        f"{report.day.isoformat()} 空白卡库存日结对账 ({report.time_zone})",
        head,
        *(_day_line(d) for d in report.stations),
        _day_line(report.total),
        *(report.discrepancies or ["无差异：各项数量相符 (all counts reconcile)"]),
    ]
    if written is not None:
        lines.append(f"对账表已写入 report written to {written}")
    _emit(args, data, "\n".join(lines))
    return 0 if report.reconciled else 1


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stock = sub.add_parser(
        "stock",
        help="blank-card stock per station and the daily reconciliation (库存, 日结对账)",
        description="Blank cards are numbered stock: deliveries (入库) and test cards are "
        "recorded by card-center operators; personalized and rejected cards by the jobs. "
        "The daily report reconciles each station's counts and checks them against the jobs.",
    ).add_subparsers(dest="stock_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        add_db_option(p)
        add_common_options(p)

    p = stock.add_parser("receive", help="record blank cards delivered to a station (入库)")
    p.add_argument("--station", required=True, help="the station's name (工位)")
    p.add_argument("--count", required=True, type=positive_count, help="how many cards")
    p.add_argument(
        "--batch", required=True, help="the delivery's batch or card-serial range (批次/卡号段)"
    )
    common(p)
    p.set_defaults(func=cmd_stock_receive)

    p = stock.add_parser("test-card", help="record one blank card taken as a test card")
    p.add_argument("--station", required=True, help="the station's name (工位)")
    p.add_argument("--reason", required=True, help="why (领用原因)")
    common(p)
    p.set_defaults(func=cmd_stock_test_card)

    p = stock.add_parser("levels", help="each station's stock, all time, and on hand")
    common(p)
    p.set_defaults(func=cmd_stock_levels)

    p = stock.add_parser(
        "report",
        help="the day's reconciliation per station (exit status 1 when it does not reconcile)",
    )
    p.add_argument(
        "--day", required=True, type=report_day, help="the region's local day, YYYY-MM-DD"
    )
    p.add_argument("--station", help="only this station")
    p.add_argument(
        "--pdf", help="also write the report as a PDF (never over an existing file: the next name)"
    )
    common(p)
    p.set_defaults(func=cmd_stock_report)
