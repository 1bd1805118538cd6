"""Withdrawing a request (撤销申请; docs/business-rules.md "Withdrawing a request (撤销)").

A reissue, replacement or 换领 request still waiting for a job (``open``: none is making its
card) may be withdrawn — the holder gives up, or the clerk mistyped a 换领's certificate data
and applies again — under dual control (``roles.DUAL_CONTROL`` ``request.withdraw``: a second
operator confirms, checked by ``operators.confirm`` before this module is called, as a fee
waiver is), with a reason. In one transaction:

- the request ``open → withdrawn`` (the transition table, ``personalize.lifecycle``);
- its card back to the status it had when the request was made (补卡中 → 正式挂失,
  换卡中 → 正常 or 预挂失 with the deadline that 预挂失 had: :func:`lifecycle.way_back`),
  read from the card's status history; a 预挂失 past its deadline then lapses at once;
- a 换领's change row stops reserving its new ID number (``ChangeStore.pending_for`` counts
  only unfinished requests) and is never applied;
- a medical balance the business system reported stays recorded against the withdrawn
  request: no new card, so no transfer ever happens;
- audited ``dual_control.confirm`` and ``request.withdraw`` (reason, approver, fee).

Refused with nothing written: no reason, no approver or the operator approving their own
withdrawal, a request not open (in a job, done, withdrawn), and a request whose fee was
**paid** — there is no refund flow (退费) in sscard; a waived or unsettled fee is no bar.
"""

from __future__ import annotations

from datetime import datetime

from personalize.fees import Outcome, fee_settlement
from personalize.lifecycle import CardStatus, TransitionRefused, way_back
from personalize.registry import Registry, RegistryError, _iso, request_number
from personalize.registry_records import HistoryEntry, ReissueRequest

MAX_REASON = 200


class WithdrawalError(RegistryError):
    """A withdrawal refused: nothing was written."""


def _entered(history: list[HistoryEntry], status: str) -> HistoryEntry:
    """The card's latest move into ``status``."""
    for entry in reversed(history):
        if entry.to_status == status:
            return entry
    raise WithdrawalError(f"卡片状态历史中没有进入 {status} 的记录 (no history of the status)")


def withdraw_request(
    registry: Registry, request_id: int, *, reason: str, confirmed_by: str, operator: str
) -> ReissueRequest:
    """Withdraw the open request ``request_id`` (see the module docstring); ``confirmed_by``
    is the second operator, already authenticated and allowed to confirm. Returns the
    request, now withdrawn."""
    why = reason.strip()
    if not why:
        raise WithdrawalError("撤销申请须说明原因 (a withdrawal needs a reason)")
    if len(why) > MAX_REASON:
        raise WithdrawalError(f"撤销原因过长，最多 {MAX_REASON} 字 (the reason is too long)")
    approver = confirmed_by.strip()
    if not approver:
        raise WithdrawalError(
            "撤销申请须由另一位操作员复核 (a withdrawal needs a second operator's confirmation)"
        )
    if approver == operator:
        raise WithdrawalError(
            "复核人须为另一位操作员 (dual control needs a second, different operator)"
        )
    number = request_number(request_id)
    with registry.transaction():
        request = registry.request(request_id)
        registry.rule("request", request.status, "withdraw")
        settled = fee_settlement(registry, request.id)
        if settled is not None and settled.outcome == Outcome.PAID:
            raise WithdrawalError(
                f"申请 {number} 的工本费 {settled.amount} 元已收（收据号 {settled.receipt_no}），"
                "系统没有退费流程，不能撤销 (the fee was paid and sscard has no refund flow: "
                "the request cannot be withdrawn)"
            )
        card = registry.card_for_update(request.old_card_id)
        history = registry.history(card.id)
        before = _entered(history, card.status).from_status
        try:
            action = way_back(card.status, before)
        except TransitionRefused as exc:
            raise WithdrawalError(str(exc)) from None
        lapse_at = None
        if before == CardStatus.PROVISIONAL_LOSS:  # the deadline the 预挂失 had
            reported = datetime.fromisoformat(_entered(history, before).at)
            lapse_at = _iso(registry.policy.lapse_deadline(reported))
        registry.audit(
            operator,
            "dual_control.confirm",
            card.card_number,
            {"action": "request.withdraw", "operator": operator, "confirmed_by": approver},
        )
        registry._transition(card, action, operator, f"撤销申请 {number}：{why}", lapse_at=lapse_at)
        registry.card_for_update(card.id)  # a 预挂失 past its deadline lapses now
        registry._move_request(
            request.id,
            "withdraw",
            operator,
            reason=why,
            confirmed_by=approver,
            card=card.card_number,
            fee=request.fee,
            fee_settled=None if settled is None else str(settled.outcome),
        )
        return registry.request(request.id)
