"""The medical-account balance (医保个人账户余额) carried from a replaced card to its new card
(issue 17; docs/business-rules.md "The medical-account balance"; 莱西: "更换社保卡的,新卡激活
以后,原卡将自动废止,医疗保险个人帐户金有余额的,自动转入到本人社会保障卡的医疗保险个人帐户中").

The business system reports the old card's balance as a decimal string of yuan with at most
two decimals; the registry keeps it as an integer number of fen (分) — read digit by digit
here, never through a float, so ``0.10``, ``0.29`` and ``12345678.99`` are exactly 10, 29 and
1234567899 fen. What a transfer's state says to an operator (``registry show``, the API, the
console) is :func:`transfer_view`, one piece of code for all three.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sscard.errors import InvalidData

if TYPE_CHECKING:
    from personalize.registry import Registry

# yuan: no sign, no leading zero (but a lone 0), at most two decimals, no exponent, no spaces
YUAN = re.compile(r"(0|[1-9][0-9]*)(\.([0-9]{1,2}))?")
STORABLE = 10**17  # fen: whatever a policy says, an amount stays far inside a BIGINT


def fen_of_yuan(text: str, *, maximum: int = STORABLE) -> int:
    """The amount ``text`` (yuan, e.g. ``"12345678.99"``) in fen; ``InvalidData`` for a
    negative amount, more than two decimals, anything not a plain decimal number, or more
    than ``maximum`` fen (the region policy's ceiling)."""
    if text.startswith("-"):
        raise InvalidData("余额不能为负数 (the balance is not negative)")
    match = YUAN.fullmatch(text)
    if match is None:
        if re.fullmatch(r"[0-9]+\.[0-9]{3,}", text):
            raise InvalidData("余额最多两位小数（分）(the balance has at most 2 decimals: fen)")
        raise InvalidData(
            "余额须为以元为单位的十进制数字，如 1234.56 (the balance is a decimal number of "
            "yuan such as 1234.56)"
        )
    if len(match[1]) > len(str(maximum)):  # absurd: not even worth converting
        fen = maximum + 1
    else:
        fen = int(match[1]) * 100 + int((match[3] or "").ljust(2, "0"))
    if fen > maximum:
        raise InvalidData(
            f"余额超过地区政策上限 {yuan_text(maximum)} 元 (the balance exceeds the region "
            f"policy's ceiling of {yuan_text(maximum)} yuan)"
        )
    return fen


def yuan_text(fen: int) -> str:
    """Fen as yuan with two decimals: 1234567899 → ``"12345678.99"``."""
    return f"{fen // 100}.{fen % 100:02d}"


class TransferStatus(StrEnum):
    """Where a request's balance transfer stands."""

    REPORTED = "reported"  # the business system reported the balance; new card not yet active
    PENDING = "pending"  # the new card was activated before any report: awaiting one
    TRANSFERRED = "transferred"  # the new card is active and the amount recorded as moved

    @property
    def label(self) -> str:
        return TRANSFER_LABELS[self]


TRANSFER_LABELS = {
    TransferStatus.REPORTED: "已报余额，待新卡启用后转入",
    TransferStatus.PENDING: "新卡已启用，待业务系统报余额",
    TransferStatus.TRANSFERRED: "已转入新卡",
}


@dataclass(frozen=True)
class BalanceTransfer:
    """One ``balance_transfers`` row: a request's transfer of the old card's medical-account
    balance to its new card. ``amount_fen`` is None while pending; ``new_card_id`` is None
    until the new card is activated; ``as_of`` and ``reference`` are the business system's
    (when its balance was read, its own reference), ``reported_at`` the registry's."""

    id: int
    request_id: int
    old_card_id: int
    new_card_id: int | None
    amount_fen: int | None
    as_of: str | None
    reference: str | None
    reported_at: str | None
    reported_by: str | None
    status: TransferStatus
    transferred_at: str | None


NO_TRANSFER = "无：未报余额，新卡未启用 (none: no balance reported, no new card activated)"
Local = Callable[[str | None], str | None]  # a stored UTC instant as the reader's local time


def transfer_view(
    registry: Registry, transfer: BalanceTransfer | None, local: Local
) -> dict[str, Any]:
    """What ``registry show``, the API and the console say of a transfer: its status and
    label, the amount in yuan (text, exact) and fen, from which card to which, and when
    (``local``: as the caller shows instants)."""
    if transfer is None:
        return {"status": None, "status_name": NO_TRANSFER}
    new = None if transfer.new_card_id is None else registry.card_by_id(transfer.new_card_id)
    return {
        "status": str(transfer.status),
        "status_name": transfer.status.label,
        "amount": None if transfer.amount_fen is None else yuan_text(transfer.amount_fen),
        "amount_fen": transfer.amount_fen,
        "from_card": registry.card_by_id(transfer.old_card_id).card_number,
        "to_card": None if new is None else new.card_number,
        "as_of": local(transfer.as_of),
        "reference": transfer.reference,
        "reported_at": local(transfer.reported_at),
        "transferred_at": local(transfer.transferred_at),
        "request": transfer.request_id,
    }
