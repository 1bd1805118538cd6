"""Fees for the counter's business system and the supervisors' systems (docs/api.md "Fees"):
a request's 工本费 recorded as paid with its receipt number (``fees.pay_fee``, as ``sscard
registry pay-fee``), and the day's fee report (``fee_report.fee_day_report``, as ``sscard
registry fees``). A waiver (免收) needs a second operator in person (dual control): it is made
at the counter's console or with ``sscard registry waive-fee``, never through the API."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from fastapi.responses import Response

from personalize.api.access import CallOf, IdempotencyKey, bearer
from personalize.api.models import COMMON, FeePaymentIn, FeeReportOut, SettlementOut, problems
from personalize.api.problems import ApiProblem
from personalize.api.routes_requests import RequestId, request_of
from personalize.fee_commands import report_dict, settlement_dict
from personalize.fee_report import fee_day_report
from personalize.fees import pay_fee
from personalize.registry import Registry

router = APIRouter(prefix="/v1", tags=["工本费 fees"], dependencies=[Depends(bearer)])

Day = Annotated[
    str, PathParam(pattern=r"^\d{4}-\d{2}-\d{2}$", description="地区当地日期 YYYY-MM-DD")
]


@router.post(
    "/reissue-requests/{request_id}/fee-payment",
    status_code=201,
    summary="工本费已收",
    description="登记申请的工本费已收：收据号（全库唯一）和实收金额（须等于工本费）；只能办理一次。"
    "免收须主管现场复核，不经本接口。",
    responses={
        201: {"model": SettlementOut, "description": "已登记"},
        **problems(*COMMON, 404, 409),
    },
)
def pay(request_id: RequestId, body: FeePaymentIn, call: CallOf, key: IdempotencyKey) -> Response:
    def work(registry: Registry) -> tuple[int, dict[str, Any]]:
        request_of(registry, request_id)  # 404 for an unknown request
        paid = pay_fee(
            registry,
            request_id,
            receipt_no=body.receipt_no,
            amount=body.amount,
            operator=call.operator,
        )
        return 201, settlement_dict(registry, paid)

    return call.write(key, {"request": request_id, **body.model_dump(mode="json")}, work)


@router.get(
    "/fee-reports/{day}",
    response_model=FeeReportOut,
    summary="工本费日报",
    description="地区当地某日的工本费：按业务类型的已收、免收、未收笔数和金额，每张收据与每笔免收，"
    "当日结束时未收的申请，以及汇总与明细的差异（reconciled 为 false 时逐条列出）。",
    responses=problems(*COMMON),
)
def report(day: Day, call: CallOf) -> dict[str, Any]:
    try:
        shown = date.fromisoformat(day)
    except ValueError:
        raise call.refused(
            ApiProblem(422, f"日期无效 (not a date): {day}", slug="invalid-data")
        ) from None
    return call.read(lambda registry: report_dict(registry, fee_day_report(registry, shown)))
