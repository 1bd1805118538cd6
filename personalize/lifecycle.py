"""The registry's state machine as data: the statuses of cards, reissue requests and jobs, and
ONE transition table ``TRANSITIONS`` — (subject, from, action) → to, with what the step needs.
No I/O: the registry (``personalize/registry.py``) and the job runner
(``personalize/jobs.py``) look every change up here and refuse what is not listed.

The rules are docs/business-rules.md "Card statuses and transitions" (from the seed article):

- 预挂失 freezes the card at once and lapses back to 正常 after the policy's deadline;
- 正式挂失 is irreversible ("正式挂失后不能撤销") except that a region may allow 解挂 while no
  replacement has been applied for (policy ``unreport_after_formal_loss``);
- 解挂 only by the holder in person ("必须持卡人本人凭有效身份证件原件、原卡…");
- 补卡 only after 正式挂失, and may be applied for by an agent with both ID cards
  ("补卡时可委托他人办理，办理时需要出示委托人、被委托人的身份证原件");
- 换卡 after a damage verdict (验卡), and an agent may apply for it as for 补卡 (the issue:
  "a reissue or replacement may be applied for by an agent with both ID cards");
- 换领 (identity data changed) from an active card, on the 公安部门变更证明 and the 社保经办机构
  更改证明 ("因居民身份证号码或姓名变更而需换卡的…凭公安部门出具的变更证明和社保经办机构的更改证明
  …申请换卡"): a replacement that is neither a loss nor damage;
- the PIN services (修改, 解锁, 重置) move no status, but are in the table with the one rule
  who may ask for them: the holder only ("需要变更密码的可到其合作银行自助设备或服务网点办理
  (不可代办)", 珠海); which card statuses allow them is the policy's ``[statuses]``;
- a request still waiting for a job (open) may be withdrawn (撤销申请) under dual control, with
  a reason: the card goes back to the status it had before the request (补卡 → 正式挂失,
  换卡/换领 → 正常 or 预挂失, by the ``withdraw`` rows and :func:`way_back`) — how a 换领 with a
  mistyped certificate is corrected (withdraw, apply again) and how a holder gives up;
- a job that is cancelled or fails gives its request back (open again, the old card stays
  补卡中/换卡中) and releases its unfinished new card (废卡, its number never reused); a
  card written off inside a job (rejected, pulled) is released the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class CardStatus(StrEnum):
    ACTIVE = "active"
    PROVISIONAL_LOSS = "provisional_loss"
    FORMAL_LOSS = "formal_loss"
    REISSUE_PENDING = "reissue_pending"
    REPLACEMENT_PENDING = "replacement_pending"
    PERSONALIZING = "personalizing"
    REJECTED = "rejected"
    VOID = "void"

    @property
    def label(self) -> str:
        return CARD_STATUS_LABELS[self]


CARD_STATUS_LABELS: dict[CardStatus, str] = {
    CardStatus.ACTIVE: "正常",
    CardStatus.PROVISIONAL_LOSS: "预挂失",
    CardStatus.FORMAL_LOSS: "正式挂失",
    CardStatus.REISSUE_PENDING: "补卡中",
    CardStatus.REPLACEMENT_PENDING: "换卡中",
    CardStatus.PERSONALIZING: "制卡中",
    CardStatus.REJECTED: "废卡",
    CardStatus.VOID: "注销",
}

# The statuses in which a card is its person's card (at most one per person: a database
# constraint in the registry).
VALID_CARD_STATUSES: tuple[CardStatus, ...] = (
    CardStatus.ACTIVE,
    CardStatus.PROVISIONAL_LOSS,
    CardStatus.FORMAL_LOSS,
    CardStatus.REISSUE_PENDING,
    CardStatus.REPLACEMENT_PENDING,
)


class RequestStatus(StrEnum):
    OPEN = "open"  # waiting for a job
    IN_JOB = "in_job"  # a job is making the new card
    DONE = "done"  # the new card was activated
    WITHDRAWN = "withdrawn"  # 撤销: withdrawn while open, the card back as before


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


# what each kind of request (reissue_requests.kind) is called at the counter and on reports:
# 补卡 after a loss, 换卡 after a damage verdict, 换领 for changed identity data
REQUEST_KIND_LABELS = {"reissue": "补卡", "replacement": "换卡", "change": "换领"}
REQUEST_STATUS_LABELS = {
    RequestStatus.OPEN: "待制卡",
    RequestStatus.IN_JOB: "制卡中",
    RequestStatus.DONE: "已完成",
    RequestStatus.WITHDRAWN: "已撤销",
}
JOB_STATUS_LABELS = {
    JobStatus.QUEUED: "排队",
    JobStatus.RUNNING: "执行中",
    JobStatus.PAUSED: "暂停",
    JobStatus.DONE: "完成",
    JobStatus.FAILED: "失败",
    JobStatus.CANCELLED: "取消",
}


class PinOutcome(StrEnum):
    """What a PIN service leaves (the ``pin`` rows of the table)."""

    CHANGED = "changed"
    UNBLOCKED = "unblocked"
    RESET = "reset"


PIN_OUTCOME_LABELS = {
    PinOutcome.CHANGED: "已修改",
    PinOutcome.UNBLOCKED: "已解锁",
    PinOutcome.RESET: "已重置",
}

# ``pin``: a card's PIN — no status of its own; its rows say who may ask for a PIN service.
Subject = Literal["card", "request", "job", "pin"]


@dataclass(frozen=True)
class Action:
    """What an operator (or the system) does, and what it is refused with."""

    name: str
    label: str  # Chinese, as the counter says it
    refusal: str  # the one-line refusal, ``{status}`` is the current status's label


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("enroll", "登记", "不能登记 (cannot enroll)"),
        Action(
            "report_loss",
            "预挂失",
            "只能对正常状态的卡预挂失 (card is {status}; only an active card can be reported)",
        ),
        Action("lapse", "预挂失逾期自动解除", "预挂失未逾期 (not a provisional loss)"),
        Action(
            "formalize_loss",
            "正式挂失",
            "不能正式挂失：卡片状态为 {status} (only an active or provisionally lost card)",
        ),
        Action(
            "unreport",
            "解挂",
            "不能解挂：卡片状态为 {status} (un-report needs a reported card and no "
            "replacement request)",
        ),
        Action(
            "request_reissue",
            "补卡申请",
            "补卡前须正式挂失：卡片状态为 {status} (the old card must be formally reported lost)",
        ),
        Action(
            "request_replacement",
            "换卡申请",
            "不能换卡：卡片状态为 {status} (a replacement needs an active card with a damage "
            "verdict)",
        ),
        Action(
            "request_change",
            "换领申请",
            "不能换领：卡片状态为 {status} (an identity-change replacement needs an active card)",
        ),
        Action(
            "retire", "新卡启用，旧卡注销", "旧卡状态为 {status}，不能注销 (old card not pending)"
        ),
        Action("start", "开始制卡", "不能开始制卡 (cannot start a card)"),
        Action("activate", "新卡启用", "新卡状态为 {status}，不能启用 (not personalizing)"),
        Action("release", "废卡", "卡片状态为 {status}，不能作废 (not personalizing)"),
        Action("submit", "提交制卡作业", "没有待制卡的补/换卡申请 (no open reissue request)"),
        Action("reopen", "申请重新待制卡", "申请状态为 {status} (request not in a job)"),
        Action("complete", "申请完成", "申请状态为 {status} (request not in a job)"),
        Action(
            "withdraw",
            "撤销申请",
            "不能撤销：状态为 {status} (only an open request, no job running, can be withdrawn)",
        ),
        Action(
            "withdraw_to_provisional_loss",
            "撤销申请（恢复预挂失）",
            "不能撤销：状态为 {status} (only an open request, no job running, can be withdrawn)",
        ),
        Action("claim", "开始/继续执行", "作业已{status}，不能执行 (job is finished)"),
        Action("pause", "暂停", "作业{status}，不能暂停 (job not running)"),
        Action("finish", "完成", "作业{status}，不能完成 (job not running)"),
        Action("fail", "失败", "作业{status}，不能判失败 (job not running)"),
        Action("cancel", "取消", "作业已{status}，不能取消 (job is finished)"),
        Action("change_pin", "修改密码", "不能修改密码 (no PIN change)"),
        Action("unblock_pin", "密码解锁", "不能解锁密码 (no PIN unblock)"),
        Action("reset_pin", "密码重置", "不能重置密码 (no PIN reset)"),
    )
}


@dataclass(frozen=True)
class Transition:
    subject: Subject
    source: str | None  # None: the thing is created by the action
    action: str
    target: str
    evidence: bool = False  # the ID document checked must be recorded
    agent: bool = False  # an agent (委托代办, both IDs) may do it
    policy_flag: str | None = None  # a RegionPolicy boolean that must be true
    note: str = ""


C, R, J = CardStatus, RequestStatus, JobStatus

TRANSITIONS: tuple[Transition, ...] = (
    Transition("card", None, "enroll", C.ACTIVE, note="existing card taken over"),
    Transition("card", C.ACTIVE, "report_loss", C.PROVISIONAL_LOSS, agent=True,
               note="any channel; lapses after the policy deadline"),
    Transition("card", C.PROVISIONAL_LOSS, "lapse", C.ACTIVE, note="by the system"),
    Transition("card", C.ACTIVE, "formalize_loss", C.FORMAL_LOSS, evidence=True, agent=True),
    Transition("card", C.PROVISIONAL_LOSS, "formalize_loss", C.FORMAL_LOSS, evidence=True,
               agent=True),
    Transition("card", C.PROVISIONAL_LOSS, "unreport", C.ACTIVE, evidence=True,
               note="holder in person"),
    Transition("card", C.FORMAL_LOSS, "unreport", C.ACTIVE, evidence=True,
               policy_flag="unreport_after_formal_loss",
               note="holder in person, only before a reissue request"),
    Transition("card", C.FORMAL_LOSS, "request_reissue", C.REISSUE_PENDING, agent=True,
               note="prints the 领卡证明"),
    Transition("card", C.ACTIVE, "request_replacement", C.REPLACEMENT_PENDING, agent=True,
               note="after a damage verdict (验卡)"),
    Transition("card", C.PROVISIONAL_LOSS, "request_replacement", C.REPLACEMENT_PENDING,
               agent=True, note="after a damage verdict (验卡)"),
    Transition("card", C.ACTIVE, "request_change", C.REPLACEMENT_PENDING, evidence=True,
               agent=True, note="换领: identity data changed, on the change certificates"),
    Transition("card", C.REISSUE_PENDING, "retire", C.VOID,
               note="with the new card's activation; blacklisted"),
    Transition("card", C.REPLACEMENT_PENDING, "retire", C.VOID,
               note="with the new card's activation; blacklisted"),
    Transition("card", C.REISSUE_PENDING, "withdraw", C.FORMAL_LOSS,
               note="its 补卡 withdrawn (撤销): the loss stays formal"),
    Transition("card", C.REPLACEMENT_PENDING, "withdraw", C.ACTIVE,
               note="its 换卡/换领 withdrawn, applied for from 正常"),
    Transition("card", C.REPLACEMENT_PENDING, "withdraw_to_provisional_loss",
               C.PROVISIONAL_LOSS,
               note="its 换卡 withdrawn, applied for from 预挂失: the deadline it had"),
    Transition("card", None, "start", C.PERSONALIZING, note="new number allocated"),
    Transition("card", C.PERSONALIZING, "activate", C.ACTIVE, note="chip, stripe, print verified"),
    Transition("card", C.PERSONALIZING, "release", C.REJECTED,
               note="job cancelled/failed or card written off; number never reused"),
    Transition("request", None, "request_reissue", R.OPEN),
    Transition("request", None, "request_replacement", R.OPEN),
    Transition("request", None, "request_change", R.OPEN),
    Transition("request", R.OPEN, "submit", R.IN_JOB),
    Transition("request", R.IN_JOB, "reopen", R.OPEN, note="its job cancelled or failed"),
    Transition("request", R.IN_JOB, "complete", R.DONE, note="the new card activated"),
    Transition("request", R.OPEN, "withdraw", R.WITHDRAWN,
               note="dual control, with a reason; refused when its fee was paid"),
    Transition("job", None, "submit", J.QUEUED),
    Transition("job", J.QUEUED, "claim", J.RUNNING, note="takes the station lease"),
    Transition("job", J.PAUSED, "claim", J.RUNNING, note="takes the station lease"),
    Transition("job", J.RUNNING, "claim", J.RUNNING,
               note="same station, or the lease has expired (a crash)"),
    Transition("job", J.RUNNING, "pause", J.PAUSED, note="device, reader or module fault"),
    Transition("job", J.RUNNING, "finish", J.DONE),
    Transition("job", J.RUNNING, "fail", J.FAILED, note="too many cards written off"),
    Transition("job", J.QUEUED, "cancel", J.CANCELLED),
    Transition("job", J.PAUSED, "cancel", J.CANCELLED),
    Transition("job", J.RUNNING, "cancel", J.CANCELLED,
               note="only when no other station holds a live lease"),
    Transition("pin", None, "change_pin", PinOutcome.CHANGED,
               note="holder in person (不可代办); statuses: the policy's [statuses]"),
    Transition("pin", None, "unblock_pin", PinOutcome.UNBLOCKED,
               note="holder in person, ID typed at the counter"),
    Transition("pin", None, "reset_pin", PinOutcome.RESET,
               note="holder in person, ID typed at the counter"),
)  # fmt: skip

_BY_KEY: dict[tuple[str, str | None, str], Transition] = {
    (t.subject, None if t.source is None else str(t.source), t.action): t for t in TRANSITIONS
}


class TransitionRefused(Exception):
    """The table has no such transition, or its conditions are not met."""


# the card's ways back when its request is withdrawn (撤销), one per status it came from
WITHDRAWALS = ("withdraw", "withdraw_to_provisional_loss")


def way_back(source: str, before: str | None) -> str:
    """The action that takes a card in ``source`` (补卡中/换卡中) back to ``before``, the status
    it had when its request was made — a ``withdraw`` row of the table — or
    ``TransitionRefused``."""
    for t in TRANSITIONS:
        if (t.subject, t.source, t.target) == ("card", source, before) and t.action in WITHDRAWALS:
            return t.action
    label = _status_label("card", source)
    raise TransitionRefused(ACTIONS["withdraw"].refusal.format(status=label))


def _status_label(subject: Subject, status: str | None) -> str:
    if status is None:
        return "—"
    labels: dict[str, str] = {
        "card": {str(k): v for k, v in CARD_STATUS_LABELS.items()},
        "request": {str(k): v for k, v in REQUEST_STATUS_LABELS.items()},
        "job": {str(k): v for k, v in JOB_STATUS_LABELS.items()},
        "pin": {str(k): v for k, v in PIN_OUTCOME_LABELS.items()},
    }[subject]
    return labels.get(status, status)


def lookup(
    subject: Subject,
    source: str | None,
    action: str,
    *,
    evidence: str | None = None,
    agent: bool = False,
    flags: dict[str, bool] | None = None,
) -> Transition:
    """The transition ``action`` takes ``subject`` in ``source`` by, or ``TransitionRefused``
    with the one-line reason (Chinese first, English beside it)."""
    rule = _BY_KEY.get((subject, source, action))
    refusal = ACTIONS[action].refusal.format(status=_status_label(subject, source))
    if rule is None:
        raise TransitionRefused(refusal)
    if rule.policy_flag is not None and not (flags or {}).get(rule.policy_flag, False):
        raise TransitionRefused(f"{refusal} [区域政策 policy: {rule.policy_flag} = false]")
    if rule.evidence and not evidence:
        raise TransitionRefused(
            f"{ACTIONS[action].label}须核验身份证件 (evidence of the ID check is required)"
        )
    if agent and not rule.agent:
        raise TransitionRefused(
            f"{ACTIONS[action].label}须持卡人本人办理，不能委托代办 "
            "(the holder must come in person; no agent)"
        )
    return rule


def markdown_table() -> str:
    """The table as docs/service.md shows it (a test keeps the two equal)."""
    lines = [
        "| subject | from | action | to | needs | note |",
        "|---|---|---|---|---|---|",
    ]
    for t in TRANSITIONS:
        needs = [
            *(["ID evidence"] if t.evidence else []),
            *(["agent allowed"] if t.agent else []),
            *([f"policy `{t.policy_flag}`"] if t.policy_flag else []),
        ]
        source = "—" if t.source is None else f"{t.source} {_status_label(t.subject, t.source)}"
        target = f"{t.target} {_status_label(t.subject, t.target)}"
        lines.append(
            f"| {t.subject} | {source} | `{t.action}` {ACTIONS[t.action].label} | {target} "
            f"| {', '.join(needs) or '—'} | {t.note or '—'} |"
        )
    return "\n".join(lines)
