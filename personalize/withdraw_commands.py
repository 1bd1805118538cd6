"""``sscard registry withdraw``: an open request withdrawn (撤销申请) with a reason, under dual
control (``request.withdraw``, confirmed by a second operator with ``--confirm-by`` /
``--confirm-session``, as ``waive-fee``): :func:`personalize.withdrawal.withdraw_request`,
docs/business-rules.md "Withdrawing a request (撤销)", docs/service.md."""

from __future__ import annotations

import argparse

from personalize.fee_commands import request_id
from personalize.lifecycle import REQUEST_KIND_LABELS
from personalize.operator_commands import acting, add_confirm_options, confirmed
from personalize.registry import STATUS_NAMES, request_number
from personalize.registry_options import add_common_options, add_db_option, open_registry
from personalize.service_commands import _emit
from personalize.withdrawal import MAX_REASON, withdraw_request


def cmd_withdraw(args: argparse.Namespace) -> int:
    """The confirmer is checked (``confirmed``: their password or session, a role that may
    confirm, not the acting operator) before the withdrawal's transaction."""
    registry = open_registry(args)
    actor = acting(registry, "request.withdraw")
    confirmer = confirmed(registry, actor, args, "request.withdraw")
    request = withdraw_request(
        registry, args.request, reason=args.reason, confirmed_by=confirmer, operator=actor.name
    )
    card = registry.card_by_id(request.old_card_id)
    number = request_number(request.id)
    _emit(
        args,
        {
            "request": request.id,
            "request_no": number,
            "kind": request.kind,
            "status": str(request.status),
            "card_number": card.card_number,
            "card_status": card.status,
            "confirmed_by": confirmer,
        },
        f"{REQUEST_KIND_LABELS.get(request.kind, request.kind)}申请 {number} 已撤销（复核人 "
        f"{confirmer}）；原卡 {card.card_number} 现为{STATUS_NAMES[card.status]} "
        "(request withdrawn)",
    )
    return 0


def add_registry_parsers(reg: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``withdraw`` under ``sscard registry``."""
    p = reg.add_parser(
        "withdraw",
        help="撤销申请: an open request (no job running) withdrawn, the card back as before",
        description="撤销申请: a 补卡/换卡/换领 request that no job is making withdrawn, with a "
        "reason and a second operator's confirmation; the card goes back to the status it had "
        "before the request (补卡中 → 正式挂失, 换卡中 → 正常 or 预挂失). Refused when the fee "
        "was paid (no refund flow). To correct a 换领's data: withdraw it and apply again.",
    )
    p.add_argument(
        "request", type=request_id, help="the request (SSCARD-REQ-000001 or 1, as on its 领卡证明)"
    )
    p.add_argument(
        "--reason", required=True, help=f"why it is withdrawn (撤销原因, at most {MAX_REASON})"
    )
    add_confirm_options(p)
    add_db_option(p)
    add_common_options(p)
    p.set_defaults(func=cmd_withdraw)
