"""Cards and persons: loss reports from every channel, formal loss, 解挂, the 查询密码, a
card's status for a terminal, lookups (masked by default) and the blacklist feed
(docs/api.md "Endpoints"). Every change is a ``Registry`` method — the same rules and
transactions as the CLI's; nothing here decides a transition."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from personalize import api_store
from personalize.api.access import REVEALING, Call, CallOf, IdempotencyKey, bearer
from personalize.api.models import (
    CARD_NUMBER,
    CHIP_ID_NUMBER,
    COMMON,
    BalanceIn,
    BalanceOut,
    BlacklistOut,
    CardOut,
    CardStatusOut,
    Evidence,
    LossChannel,
    LossReport,
    PersonOut,
    QueryPasswordIn,
    QueryPasswordOut,
    problems,
)
from personalize.api.problems import ApiProblem
from personalize.api.query_passwords import check_query_password, hashed, set_query_password
from personalize.card_standing import standing
from personalize.lifecycle import CardStatus
from personalize.medical_balance import transfer_view
from personalize.registry import (
    STATUS_NAMES,
    VALID,
    Agent,
    Card,
    Registry,
    RegistryError,
    mask_id,
)
from personalize.roles import ApiRole
from personalize.service_commands import mask_name
from sscard.identifiers import validate_card_number, validate_ssn

router = APIRouter(prefix="/v1", tags=["卡与持卡人 cards"], dependencies=[Depends(bearer)])

# A card a hospital or pharmacy must refuse (docs/business-rules.md: "a frozen card must be
# refused at hospitals and pharmacies"): reported lost (预挂失, 正式挂失), being reissued
# after a loss, void or rejected. A card waiting for its replacement (换卡中) is damaged,
# not lost, and still the holder's.
ACCEPTED_AT_TERMINALS = frozenset({CardStatus.ACTIVE, CardStatus.REPLACEMENT_PENDING})

CardPath = Annotated[str, Path(pattern=CARD_NUMBER, description="卡号")]
Reveal = Annotated[bool, Query(description="显示完整姓名和证件号码（仅柜台系统）")]


def refused_at_terminals(status: str) -> bool:
    return status not in ACCEPTED_AT_TERMINALS


def _local(registry: Registry, instant: str | None) -> str | None:
    if not instant:
        return None
    return registry.policy.local_time(datetime.fromisoformat(instant)).isoformat()


def card_of(registry: Registry, card_number: str) -> Card:
    """The card, its number's check character checked first; 404 when unknown."""
    validate_card_number(card_number)
    try:
        return registry.card(card_number)
    except RegistryError:
        raise ApiProblem(
            404, f"卡号 {card_number} 不在登记库中 (unknown card number)", slug="unknown-card"
        ) from None


def valid_card_of(registry: Registry, id_number: str) -> Card | None:
    """The person's valid card (at most one: ``one_valid_card_per_person``), or None."""
    validate_ssn(id_number)
    person = registry.person_by_ssn(id_number)
    if person is None:
        return None
    return next((c for c in registry.cards_of(person.id) if c.status in VALID), None)


def status_of(registry: Registry, card: Card) -> dict[str, Any]:
    """A card's status for a terminal: refused when frozen or void, or past its validity
    where the policy has such a card replaced (docs/business-rules.md "Validity"); its
    validity and initial-PIN mark (``personalize.card_standing``)."""
    validity = registry.validity(card)
    replace = validity is not None and not validity.usable  # 换卡: not usable past validity
    return {
        "card_number": card.card_number,
        "status": card.status,
        "status_name": STATUS_NAMES[card.status],
        "refuse": refused_at_terminals(card.status) or replace,
        "since": _local(registry, card.status_since),
        **standing(validity, registry.initial_pin(card)),
    }


def _agent(agent: Any) -> Agent | None:
    return None if agent is None else Agent(agent.name, agent.id_number, agent.documents)


# ------------------------------------------------------------------ loss reports

# Which client role takes a report from which channel: the counter's business system the
# counter, a channel client the phone line, the website and kiosks.
CHANNEL_ROLES: dict[LossChannel, ApiRole] = {
    LossChannel.COUNTER: ApiRole.COUNTER,
    LossChannel.PHONE: ApiRole.CHANNEL,
    LossChannel.ONLINE: ApiRole.CHANNEL,
    LossChannel.KIOSK: ApiRole.CHANNEL,
}


def _reported_card(call: CallOf, body: LossReport) -> Card:
    """The card a report names, after the channel's identity check: the phone line needs
    the card number and the ID number of its holder; the website the card number or the
    ID number and the 查询密码 (``check_query_password``; an unknown card is answered as a
    wrong password, after the same work); counter and kiosk either."""
    registry = call.registry
    if CHANNEL_ROLES[body.channel] != call.client.role:
        raise ApiProblem(
            403,
            f"{call.client.role.label}不能受理 {body.channel} 渠道的挂失 "
            f"(the role {call.client.role} may not report via {body.channel})",
            slug="forbidden",
        )
    online = body.channel == LossChannel.ONLINE
    if online and (
        (body.card_number is None) == (body.id_number is None) or body.query_password is None
    ):
        raise _invalid(
            "网上挂失须给出卡号或证件号码之一，以及查询密码 (online: the card number "
            "or the ID number, and the query password)"
        )
    if body.channel == LossChannel.PHONE and (body.card_number is None or body.id_number is None):
        raise _invalid(
            "电话挂失须同时给出卡号和证件号码 (phone: both the card number and the ID number)"
        )
    if body.card_number is None and body.id_number is None:
        raise _invalid("须给出卡号或证件号码 (the card number or the ID number)")
    card = _named_card(registry, body)
    if online:
        assert body.query_password is not None
        check_query_password(
            registry,
            call.client,
            None if card is None else card.person_id,
            body.query_password.get_secret_value(),
        )
    if card is None:
        raise ApiProblem(404, "没有这张有效的卡 (no such valid card)", slug="unknown-card")
    return card


def _invalid(detail: str) -> ApiProblem:
    return ApiProblem(422, detail, slug="invalid-data")


def _named_card(registry: Registry, body: LossReport) -> Card | None:
    """The card by its number (when the ID number is given too, it must be its holder's),
    or the valid card of the ID number; None when the registry has none. Check characters
    are checked first (a malformed number is 422, not unknown)."""
    if body.id_number is not None:
        validate_ssn(body.id_number)
    if body.card_number is None:
        return valid_card_of(registry, body.id_number or "")
    validate_card_number(body.card_number)
    try:
        card = registry.card(body.card_number)
    except RegistryError:
        return None
    if body.id_number is not None and registry.person(card.person_id).ssn != body.id_number:
        raise ApiProblem(
            422,
            "证件号码与卡号的持卡人不符 (the ID number is not the card holder's)",
            slug="holder-mismatch",
        )
    return card


@router.post(
    "/loss-reports",
    status_code=201,
    summary="预挂失（各渠道）",
    description="柜台、电话、网上、自助终端的预挂失：挂失后立即锁定，终端查询即拒绝此卡，并进入黑名单"
    "增量。网上渠道凭卡号或证件号码加查询密码，错误次数受限（按持卡人和按客户端），锁定写入审计。",
    responses={
        201: {"model": CardStatusOut, "description": "已预挂失"},
        **problems(*COMMON, 404, 409, 429),
    },
)
def report_loss(body: LossReport, call: CallOf, key: IdempotencyKey) -> Response:
    try:
        card = _reported_card(call, body)
    except Exception as exc:
        raise call.refused(exc) from None

    def work(registry: Registry) -> tuple[int, dict[str, Any]]:
        changed = registry.report_loss(
            card.card_number, operator=call.operator, channel=str(body.channel)
        )
        return 201, status_of(registry, changed)

    return call.write(key, body.model_dump(mode="json", exclude={"query_password"}), work)


@router.post(
    "/cards/{card_number}/formal-loss",
    summary="正式挂失",
    description="凭证件正式挂失（可委托代办）。",
    responses={
        200: {"model": CardStatusOut, "description": "已正式挂失"},
        **problems(*COMMON, 404, 409),
    },
)
def formalize_loss(
    card_number: CardPath, body: Evidence, call: CallOf, key: IdempotencyKey
) -> Response:
    return _on_evidence(card_number, body, call, key, lambda registry: registry.formalize_loss)


@router.post(
    "/cards/{card_number}/unreport",
    summary="解挂",
    description="持卡人本人凭证件解挂（不得代办）；正式挂失后能否解挂由地区政策决定。",
    responses={
        200: {"model": CardStatusOut, "description": "已解挂"},
        **problems(*COMMON, 404, 409),
    },
)
def unreport(card_number: CardPath, body: Evidence, call: CallOf, key: IdempotencyKey) -> Response:
    return _on_evidence(card_number, body, call, key, lambda registry: registry.unreport)


def _on_evidence(
    card_number: str,
    body: Evidence,
    call: Call,
    key: str,
    transition: Callable[[Registry], Callable[..., Card]],
) -> Response:
    """A card transition on the holder's (or an agent's) evidence — formal loss, 解挂 —
    run by its registry method, answered with the card's new status."""

    def work(registry: Registry) -> tuple[int, dict[str, Any]]:
        card = card_of(registry, card_number)
        changed = transition(registry)(
            card.card_number,
            operator=call.operator,
            evidence=body.evidence,
            agent=_agent(body.agent),
        )
        return 200, status_of(registry, changed)

    return call.write(key, body.model_dump(mode="json"), work)


@router.post(
    "/cards/{card_number}/query-password",
    summary="设置查询密码",
    description="柜台为持卡人设置或重置网上挂失用的查询密码（以 scrypt 慢哈希保存）。",
    responses={200: {"model": QueryPasswordOut, "description": "已设置"}, **problems(*COMMON, 404)},
)
def set_password(
    card_number: CardPath, body: QueryPasswordIn, call: CallOf, key: IdempotencyKey
) -> Response:
    try:
        stored = hashed(body.password.get_secret_value())  # slow: before the write lock
    except Exception as exc:
        raise call.refused(exc) from None

    def work(registry: Registry) -> tuple[int, dict[str, Any]]:
        card = card_of(registry, card_number)
        set_query_password(registry, card.person_id, stored, by=call.operator)
        return 200, {"card_number": card.card_number, "set": True}

    # the digest never covers the password: a replay with another one answers the first
    return call.write(key, {"card_number": card_number}, work)


@router.post(
    "/cards/{card_number}/medical-balance",
    summary="报送医保个人账户余额",
    description="业务系统报送补卡中或换卡中的原卡的医保个人账户余额（元，十进制字符串，最多两位小数，"
    "以分为单位保存）：新卡启用时在同一事务中记录转入新卡。启用前再次报送则替换前次（记入审计）；"
    "新卡启用时尚未报送的，转移待报，由此后的报送完成；地区政策要求先报余额的，未报送则拒绝启用。",
    responses={
        200: {"model": BalanceOut, "description": "已记录"},
        **problems(*COMMON, 404, 409),
    },
)
def report_balance(
    card_number: CardPath, body: BalanceIn, call: CallOf, key: IdempotencyKey
) -> Response:
    def work(registry: Registry) -> tuple[int, dict[str, Any]]:
        card = card_of(registry, card_number)
        transfer = registry.report_balance(
            card.card_number,
            body.amount,
            as_of=body.as_of,
            reference=body.reference,
            operator=call.operator,
        )
        return 200, transfer_view(registry, transfer, lambda at: _local(registry, at))

    return call.write(key, body.model_dump(mode="json"), work)


# ------------------------------------------------------------------ reads


@router.get(
    "/cards/{card_number}/status",
    response_model=CardStatusOut,
    summary="卡状态（终端）",
    description="医院、药店终端查询卡状态：refuse 为真即拒绝此卡。预挂失逾期者显示为正常。",
    responses=problems(*COMMON, 404),
)
def card_status(card_number: CardPath, call: CallOf) -> dict[str, Any]:
    return call.read(lambda registry: status_of(registry, card_of(registry, card_number)))


@router.get(
    "/cards/{card_number}",
    response_model=CardOut,
    summary="查询卡及持卡人",
    description="卡、持卡人（默认脱敏）和状态历史。",
    responses=problems(*COMMON, 404),
)
def card_lookup(card_number: CardPath, call: CallOf, reveal: Reveal = False) -> dict[str, Any]:
    _check_reveal(call, reveal)

    def work(registry: Registry) -> dict[str, Any]:
        card = card_of(registry, card_number)
        person = registry.person(card.person_id)
        return {
            **status_of(registry, card),
            "lapse_at": _local(registry, card.lapse_at),
            "blacklisted": registry.blacklisted(card.card_number),
            "holder_name": person.name if reveal else mask_name(person.name),
            "holder_id_number": person.ssn if reveal else mask_id(person.ssn),
            "history": [
                {
                    "from": h.from_status,
                    "to": h.to_status,
                    "at": _local(registry, h.at),
                    "reason": h.reason,
                }
                for h in registry.history(card.id)
            ],
            "medical_balance": [
                transfer_view(registry, t, lambda at: _local(registry, at))
                for t in registry.balance_transfers(card)
            ],
        }

    return call.read(work)


def _check_reveal(call: CallOf, reveal: bool) -> None:
    if reveal and call.client.role not in REVEALING:
        raise call.refused(
            ApiProblem(
                403,
                "只有柜台系统可查看未脱敏的个人信息 (only the counter role may reveal)",
                slug="forbidden",
            )
        )


@router.get(
    "/persons/{id_number}",
    response_model=PersonOut,
    summary="查询持卡人",
    description="按证件号码查询持卡人及其名下的卡（默认脱敏）。",
    responses=problems(*COMMON, 404),
)
def person_lookup(
    id_number: Annotated[
        str, Path(pattern=CHIP_ID_NUMBER, description="证件号码（第一代卡的 15 位号码亦可）")
    ],
    call: CallOf,
    reveal: Reveal = False,
) -> dict[str, Any]:
    _check_reveal(call, reveal)

    def work(registry: Registry) -> dict[str, Any]:
        validate_ssn(id_number, first_generation=True)
        person = registry.person_by_ssn(id_number)  # a 15-digit number by its upgrade
        if person is None:
            raise ApiProblem(404, "登记库中没有该证件号码 (unknown ID number)", slug="no-person")
        return {
            "name": person.name if reveal else mask_name(person.name),
            "id_number": person.ssn if reveal else mask_id(person.ssn),
            "cards": [status_of(registry, c) for c in registry.cards_of(person.id)],
        }

    return call.read(work)


@router.get(
    "/blacklist",
    response_model=BlacklistOut,
    summary="黑名单增量",
    description="since 游标之后卡状态的变更，按提交顺序：refuse 为真列入黑名单"
    "（挂失、注销、报废），为假移出（解挂、预挂失逾期）。"
    "从 since=0 开始，之后每次以上次的 next 为 since。",
    responses=problems(*COMMON),
)
def blacklist(
    call: CallOf,
    since: Annotated[int, Query(ge=0, le=2**62, description="游标：上次响应的 next")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="本次最多条数")] = 500,
) -> dict[str, Any]:
    def work(registry: Registry) -> dict[str, Any]:
        entries = api_store.status_changes(registry.db, after=since, limit=limit)
        return {
            "entries": [
                {
                    "cursor": e.cursor,
                    "card_number": e.card_number,
                    "sn": e.sn,
                    "status": e.status,
                    "refuse": refused_at_terminals(e.status),
                    "at": _local(registry, e.at),
                }
                for e in entries
            ],
            "next": entries[-1].cursor if entries else since,
        }

    return call.read(work)
