"""The card center's stock page (库存, issue 16 Deliver 4; docs/console.md "Card stock"):
each station's blank cards on hand, the day's reconciliation (日结对账) with its PDF opened
in the browser, and the forms that receive a delivery and take a test card — the stock
domain's own calls (``personalize.stock``: ``stock_levels``, ``day_report``,
``day_report_pdf``, ``receive_stock``, ``take_test_card``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from personalize.registry import Registry
from personalize.roles import Role
from personalize.stock import (
    day_report,
    day_report_pdf,
    receive_stock,
    stock_levels,
    take_test_card,
)
from personalize.web.access import Access, User, console_state
from personalize.web.forms import act
from personalize.web.pages import inline_pdf, render

router = APIRouter()

STOCK = Access.page(Role.CARD_CENTER)
ACCESS: dict[tuple[str, str], Access] = {
    ("GET", "/center/stock"): STOCK,
    ("GET", "/center/stock/report.pdf"): STOCK,
    ("POST", "/center/stock/receive"): Access.form("stock.receive"),
    ("POST", "/center/stock/test-card"): Access.form("stock.test_card"),
}


def _day(registry: Registry, text: str | None) -> tuple[date, str | None]:
    """The day asked for (YYYY-MM-DD), else the region's today; and why a bad one was not
    taken."""
    today = registry.policy.local_date(registry.clock())
    if not text:
        return today, None
    try:
        return date.fromisoformat(text), None
    except ValueError:
        return today, f"日期应为 YYYY-MM-DD，已显示今天 (the day must be YYYY-MM-DD): {text[:20]}"


@router.get("/center/stock", response_class=HTMLResponse)
def stock_page(
    request: Request, user: User, day: str | None = None, station: str | None = None
) -> Response:
    registry = console_state(request).registry()
    shown, bad_day = _day(registry, day)
    report = day_report(registry, shown, station or None)
    query = urlencode({"day": shown.isoformat(), **({"station": station} if station else {})})
    return render(
        request,
        "center/stock.html",
        user,
        tab="stock",
        levels=stock_levels(registry),
        report=report,
        bad_day=bad_day,
        station=station or "",
        pdf=f"report.pdf?{query}",
        can_receive=user.may("stock.receive"),
        can_test=user.may("stock.test_card"),
    )


@router.get("/center/stock/report.pdf")
def report_pdf(
    request: Request, user: User, day: str | None = None, station: str | None = None
) -> Response:
    """The day's reconciliation as a PDF, shown in the browser (``inline``)."""
    registry = console_state(request).registry()
    shown, _ = _day(registry, day)
    pdf = day_report_pdf(day_report(registry, shown, station or None))
    return inline_pdf(pdf, f"stock-{shown.isoformat()}.pdf")


@router.post("/center/stock/receive")
def receive(
    request: Request,
    user: User,
    station: Annotated[str, Form(max_length=200)],
    count: Annotated[int, Form()],
    batch: Annotated[str, Form(max_length=200)],
) -> Response:
    def work(registry: Registry) -> str:
        receive_stock(registry, station, count, batch=batch, operator=user.name)
        return f"工位 {station.strip()} 入库空白卡 {count} 张（{batch.strip()}）(received)"

    return act(console_state(request), user, work, back="/center/stock")


@router.post("/center/stock/test-card")
def test_card(
    request: Request,
    user: User,
    station: Annotated[str, Form(max_length=200)],
    reason: Annotated[str, Form(max_length=200)],
) -> Response:
    def work(registry: Registry) -> str:
        take_test_card(registry, station, reason=reason, operator=user.name)
        return f"工位 {station.strip()} 领用测试卡 1 张 (test card taken)"

    return act(console_state(request), user, work, back="/center/stock")
