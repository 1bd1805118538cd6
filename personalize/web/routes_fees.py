"""Fees in the console (工本费, issue 17; docs/console.md "Fees"): on the counter's request
list, the forms that record a request's fee as paid (收据号) or waived (免收, a supervisor
confirming at the counter: dual control as the 补打); and the card center's and the
supervisor's page of the day's fees with its PDF — the fee domain's own calls
(``personalize.fees.pay_fee``/``waive_fee``, ``personalize.fee_report``), as
``sscard registry pay-fee|waive-fee|fees`` make them."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from personalize.fee_report import (
    COLUMNS,
    fee_day_report,
    fee_day_report_pdf,
    kind_cells,
    outstanding_line,
    settlement_line,
)
from personalize.fees import pay_fee, waive_fee
from personalize.operators import OperatorError
from personalize.registry import Registry, RegistryError, request_number
from personalize.roles import Role
from personalize.web.access import Access, User, console_state
from personalize.web.forms import act, second_operator
from personalize.web.pages import inline_pdf, redirect, render
from personalize.web.routes_stock import _day

router = APIRouter()

REPORT = Access.page(Role.CARD_CENTER)
ACCESS: dict[tuple[str, str], Access] = {
    ("POST", "/counter/requests/{request_id}/fee/pay"): Access.form("fee.pay"),
    ("POST", "/counter/requests/{request_id}/fee/waive"): Access.form("fee.waive"),
    ("GET", "/center/fees"): REPORT,
    ("GET", "/center/fees/report.pdf"): REPORT,
}


def _holder_page(registry: Registry, request_id: int) -> str:
    """The counter's page of the request's holder (the search page for an unknown one)."""
    try:
        return f"/counter/persons/{registry.request(request_id).person_id}"
    except RegistryError:
        return "/counter"


@router.post("/counter/requests/{request_id}/fee/pay")
def pay(
    request: Request,
    user: User,
    request_id: int,
    receipt_no: Annotated[str, Form(max_length=64)],
    amount: Annotated[int, Form()],
) -> Response:
    state = console_state(request)

    def work(registry: Registry) -> str:
        paid = pay_fee(
            registry, request_id, receipt_no=receipt_no, amount=amount, operator=user.name
        )
        return (
            f"{request_number(request_id)} 工本费 {paid.amount} 元已收，收据号 {paid.receipt_no}"
            " (fee paid)"
        )

    return act(state, user, work, back=_holder_page(state.registry(), request_id))


@router.post("/counter/requests/{request_id}/fee/waive")
def waive(
    request: Request,
    user: User,
    request_id: int,
    reason: Annotated[str, Form(max_length=200)],
    confirm_by: Annotated[str, Form(max_length=64)],
    confirm_password: Annotated[str, Form(max_length=256)],
) -> Response:
    """Dual control: the approver is checked (``operators.authenticate`` and ``confirm``, a
    refusal audited by itself) before the waiver's transaction, which records them."""
    state = console_state(request)
    back = _holder_page(state.registry(), request_id)
    try:
        approver = second_operator(state, user, confirm_by, confirm_password, "fee.waive")
    except OperatorError as exc:
        return redirect(back, error=f"复核未通过，未免收：{exc}")

    def work(registry: Registry) -> str:
        waived = waive_fee(
            registry, request_id, reason=reason, approved_by=approver.name, operator=user.name
        )
        return (
            f"{request_number(request_id)} 工本费 {waived.amount} 元免收（批准人 "
            f"{waived.approved_by}）(fee waived)"
        )

    return act(state, user, work, back=back)


@router.get("/center/fees", response_class=HTMLResponse)
def fees_page(request: Request, user: User, day: str | None = None) -> Response:
    registry = console_state(request).registry()
    shown, bad_day = _day(registry, day)
    report = fee_day_report(registry, shown)
    zone = registry.policy.zone
    return render(
        request,
        "center/fees.html",
        user,
        tab="fees",
        report=report,
        bad_day=bad_day,
        columns=COLUMNS,
        rows=[kind_cells(d) for d in (*report.kinds, report.total)],
        settlements=[settlement_line(s, zone) for s in report.settlements],
        outstanding=[outstanding_line(u) for u in report.outstanding],
        pdf=f"report.pdf?{urlencode({'day': shown.isoformat()})}",
    )


@router.get("/center/fees/report.pdf")
def report_pdf(request: Request, user: User, day: str | None = None) -> Response:
    """The day's fee report as a PDF, shown in the browser (``inline``)."""
    registry = console_state(request).registry()
    shown, _ = _day(registry, day)
    return inline_pdf(
        fee_day_report_pdf(fee_day_report(registry, shown)), f"fees-{shown.isoformat()}.pdf"
    )
