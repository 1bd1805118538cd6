"""Fees and receipts (工本费与收据, issue 17; docs/business-rules.md "Fees and receipts").

上海: "再次办理社会保障卡需支付全额费用"; the 验卡 passage: "如属人为损坏问题，则须办理换卡
手续…工本费20元". A reissue or replacement request carries its fee from the region policy
(``Registry.request_reissue``: ``fees.reissue``, or the 验卡 verdict's ``fees.damage_human``).
The fee is settled **once**: paid (``pay_fee``: the receipt number 收据号, never used before,
and the amount, which must be the fee) or waived (``waive_fee``, 免收: a reason, and a second
operator's approval under dual control — ``roles.DUAL_CONTROL`` ``fee.waive``, checked by
``operators.confirm`` before this module is called and audited ``dual_control.confirm`` in the
waiver's own transaction, as ``job cancel`` is). Every refusal is a :class:`FeeError` and
writes nothing. The settlements are :mod:`personalize.fee_store`.
"""

from __future__ import annotations

import re

from personalize.fee_store import FeeStore, Outcome, Settlement
from personalize.registry import Registry, RegistryError, _iso, request_number
from personalize.registry_records import ReissueRequest

__all__ = [
    "FeeError",
    "Outcome",
    "Settlement",
    "fee_settlement",
    "fee_state",
    "pay_fee",
    "settled_or_free",
    "waive_fee",
]

RECEIPT = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{0,39}")  # 收据号: letters, digits, '-'
MAX_REASON = 200


class FeeError(RegistryError):
    """A settlement refused: nothing was written."""


def fees(registry: Registry) -> FeeStore:
    """The fee settlements on the registry's connection."""
    return FeeStore(registry.db)


def fee_settlement(registry: Registry, request_id: int) -> Settlement | None:
    """How the request's fee was settled, or None (not settled)."""
    return fees(registry).of_request(request_id)


def settled_or_free(registry: Registry, request: ReissueRequest) -> bool:
    """The request has no fee, or its fee is settled (paid or waived)."""
    return request.fee == 0 or fee_settlement(registry, request.id) is not None


def fee_state(request: ReissueRequest, settlement: Settlement | None) -> str:
    """The fee as the 领卡证明 and the console show it, in a line: ``20 元（已收，收据号 …）``,
    ``20 元（免收，批准人 …）`` (the reason is in the audit and the day's report),
    ``20 元（未收）`` or ``0 元（免费）``."""
    if request.fee == 0:
        return "0 元（免费）"
    if settlement is None:
        return f"{request.fee} 元（未收）"
    if settlement.outcome == Outcome.PAID:
        return f"{request.fee} 元（已收，收据号 {settlement.receipt_no}）"
    return f"{request.fee} 元（免收，批准人 {settlement.approved_by}）"


def _open(registry: Registry, request_id: int) -> ReissueRequest:
    """The request whose fee is to be settled (inside the settling transaction): known, with
    a fee, not settled yet."""
    try:
        request = registry.request(request_id)
    except RegistryError:
        raise FeeError(f"没有申请 {request_id} (no such request)") from None
    number = request_number(request_id)
    if request.fee == 0:
        raise FeeError(f"申请 {number} 无需缴费，无可收取或免收 (the request has no fee)")
    done = fee_settlement(registry, request_id)
    if done is not None:
        raise FeeError(
            f"申请 {number} 的工本费已办理（{done.outcome.label}），不能重复办理 "
            f"(the fee is already {done.outcome})"
        )
    return request


def _settle(
    registry: Registry,
    request: ReissueRequest,
    outcome: Outcome,
    operator: str,
    audited: dict[str, object],
    **fields: str,
) -> Settlement:
    """The request's whole fee settled as ``outcome`` with ``fields`` (the receipt number;
    or the reason and the approver), audited ``fee.paid``/``fee.waived`` with ``audited``
    and ``fields``, inside the caller's transaction; the settlement as stored."""
    fees(registry).add(
        request.id, outcome, request.fee, at=_iso(registry.clock()), operator=operator, **fields
    )
    old = registry.card_by_id(request.old_card_id)
    registry.audit(
        operator,
        f"fee.{outcome}",
        old.card_number,
        {"request": request.id, "fee": request.fee, **audited, **fields},
    )
    settled = fee_settlement(registry, request.id)
    assert settled is not None
    return settled


def pay_fee(
    registry: Registry, request_id: int, *, receipt_no: str, amount: int, operator: str
) -> Settlement:
    """Record the request's fee as paid (已收) with receipt ``receipt_no``, audited
    ``fee.paid``. Refused: a malformed or already used receipt number, an amount that is not
    the fee, and every refusal of ``_open``."""
    receipt = receipt_no.strip()
    if not RECEIPT.fullmatch(receipt):
        raise FeeError(
            f"收据号须为 1–40 位字母、数字或连字符 (a receipt number is 1-40 letters, digits "
            f"or '-'): {receipt_no!r}"
        )
    with registry.transaction():
        request = _open(registry, request_id)
        if isinstance(amount, bool) or amount != request.fee:
            raise FeeError(
                f"收款金额 {amount} 元与工本费 {request.fee} 元不符，须全额收取 "
                f"(the amount must be the fee, {request.fee} yuan)"
            )
        used = fees(registry).by_receipt(receipt)
        if used is not None:
            raise FeeError(
                f"收据号 {receipt} 已用于申请 {request_number(used.request_id)} "
                "(the receipt number is already used)"
            )
        return _settle(
            registry, request, Outcome.PAID, operator, {"amount": amount}, receipt_no=receipt
        )


def waive_fee(
    registry: Registry, request_id: int, *, reason: str, approved_by: str, operator: str
) -> Settlement:
    """Record the request's fee as waived (免收) for ``reason``, approved by ``approved_by`` —
    a second operator already authenticated and allowed to confirm (``operators.confirm``):
    audited ``dual_control.confirm`` and ``fee.waived`` in one transaction. Refused: no
    reason, no approver or the operator approving their own waiver, and every refusal of
    ``_open``."""
    why = reason.strip()
    if not why:
        raise FeeError("免收须说明原因 (a waiver needs a reason)")
    if len(why) > MAX_REASON:
        raise FeeError(f"免收原因过长，最多 {MAX_REASON} 字 (the reason is too long)")
    approver = approved_by.strip()
    if not approver:
        raise FeeError("免收须由另一位操作员批准 (a waiver needs a second operator's approval)")
    if approver == operator:
        raise FeeError("批准人须为另一位操作员 (dual control needs a second, different operator)")
    with registry.transaction():
        request = _open(registry, request_id)
        old = registry.card_by_id(request.old_card_id)
        registry.audit(
            operator,
            "dual_control.confirm",
            old.card_number,
            {"action": "fee.waive", "operator": operator, "confirmed_by": approver},
        )
        return _settle(
            registry, request, Outcome.WAIVED, operator, {}, reason=why, approved_by=approver
        )
