"""Operator roles and what each may do: one table (docs/service.md "Operators").

Every state-changing command names its action here; a session whose role does not list the
action is refused. Read commands (``registry show``, ``job list|show``, ``audit verify``,
``operator list``, ``whoami``) need no action. Dual control — a second operator confirming
a write-off or a reprint — needs the ``confirm`` action, which only a supervisor holds, and
the confirming operator is never the acting one (issue 11, deliverable 4).
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    COUNTER = "counter"
    CARD_CENTER = "card_center"
    OFFICE = "office"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS: dict[Role, str] = {
    Role.COUNTER: "柜员",
    Role.CARD_CENTER: "制卡中心",
    Role.OFFICE: "街道网点",
    Role.SUPERVISOR: "主管",
    Role.AUDITOR: "审计员",
}

# Each state-changing action with its Chinese name (refusals name it).
ACTIONS: dict[str, str] = {
    "card.enroll": "登记",
    "card.report_loss": "预挂失",
    "card.formalize_loss": "正式挂失",
    "card.unreport": "解挂",
    "card.sweep": "解除逾期预挂失",
    "registry.seed": "生成测试数据",
    "request.reissue": "补卡申请",
    "request.change": "换领申请",
    "request.withdraw": "撤销申请",
    "document.reprint": "补打单据",
    "job.submit": "提交制卡作业",
    "job.run": "执行制卡作业",
    "job.cancel": "取消制卡作业",
    "office.reencode": "加磁",
    "office.diagnose": "验卡",
    "office.pin": "PIN 解锁/重置",
    "operator.add": "新增操作员",
    "operator.disable": "停用操作员",
    "outbox.retry": "重发回盘事件",
    "stock.receive": "入库空白卡",
    "stock.test_card": "领用测试卡",
    "audit.verify": "校验审计链",
    "api_client.add": "新增接口客户端",
    "api_client.revoke": "吊销接口客户端",
    "fee.pay": "收取工本费",
    "fee.waive": "免收工本费",
    "confirm": "双人复核",
}

# The one permission table: which actions each role may perform.
PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.COUNTER: frozenset(
        {
            "card.enroll",
            "card.report_loss",
            "card.formalize_loss",
            "card.unreport",
            "card.sweep",
            "request.reissue",
            "request.change",
            "request.withdraw",  # 撤销申请, with a supervisor's confirmation (dual control)
            "document.reprint",
            "job.submit",  # the counter takes the photo and hands the job to the card center
            "fee.pay",  # the fee is paid at the counter (收据号) …
            "fee.waive",  # … or waived there, with a supervisor's approval (dual control)
        }
    ),
    Role.CARD_CENTER: frozenset(
        {"job.submit", "job.run", "job.cancel", "outbox.retry", "stock.receive", "stock.test_card"}
    ),
    Role.OFFICE: frozenset({"office.reencode", "office.diagnose", "office.pin", "fee.pay"}),
    Role.SUPERVISOR: frozenset(ACTIONS),
    Role.AUDITOR: frozenset({"audit.verify"}),  # the console's form; the CLI's needs none
}

# Actions that take effect only with a second operator's confirmation (dual control).
DUAL_CONTROL: frozenset[str] = frozenset(
    {"job.cancel", "document.reprint", "fee.waive", "request.withdraw"}
)


def allowed(role: Role, action: str) -> bool:
    """``role`` may perform ``action`` (an unknown action is never allowed)."""
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r}")
    return action in PERMISSIONS[role]


class ApiRole(StrEnum):
    """The roles of the HTTP API's clients (issue 15; docs/api.md "Clients and roles"): the
    systems that call ``sscard serve``, as opposed to the operators at a counter above.
    Which endpoint each may call is the table ``personalize.api.clients.ROUTE_ROLES``."""

    CHANNEL = "channel"  # 12333 / the bank's phone line, the city's website, kiosks
    COUNTER = "counter"  # the social-security business system at a counter
    CARD_CENTER = "card_center"  # the card-management system (卡管): jobs
    TERMINAL = "terminal"  # hospitals and pharmacies: card status and the blacklist
    AUDITOR = "auditor"  # reads everything, changes nothing

    @property
    def label(self) -> str:
        return API_ROLE_LABELS[self]


API_ROLE_LABELS: dict[ApiRole, str] = {
    ApiRole.CHANNEL: "挂失渠道",
    ApiRole.COUNTER: "业务柜台系统",
    ApiRole.CARD_CENTER: "制卡中心/卡管系统",
    ApiRole.TERMINAL: "医院/药店终端",
    ApiRole.AUDITOR: "审计",
}
