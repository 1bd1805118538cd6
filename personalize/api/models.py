"""The API's request and response bodies, with the Chinese descriptions /openapi.json shows
(docs/api.md). Identifiers are checked for their form here and for their check characters
by ``sscard.identifiers`` in the routes (one implementation of each rule)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr

from personalize.api.problems import PROBLEM_JSON, TITLES, Problem
from personalize.lifecycle import CardStatus
from personalize.registry import AGENT_DOCUMENTS

CARD_NUMBER = r"^[0-9A-Z]{8}[0-9X]$"
ID_NUMBER = r"^[0-9]{17}[0-9X]$"
# What a terminal reads off a card: also a first-generation card's 15-digit number
# (docs/business-rules.md "15-digit ID numbers").
CHIP_ID_NUMBER = r"^([0-9]{17}[0-9X]|[0-9]{15})$"
CardNumber = Annotated[
    str, Field(pattern=CARD_NUMBER, description="社会保障卡卡号：8 位数字或大写字母加校验位")
]
IdNumber = Annotated[
    str, Field(pattern=ID_NUMBER, description="社会保障号码（公民身份号码），18 位含校验位")
]
Text = Annotated[str, Field(min_length=1, max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LossChannel(StrEnum):
    COUNTER = "counter"
    PHONE = "phone"
    ONLINE = "online"
    KIOSK = "kiosk"


class LossReport(Strict):
    """预挂失：柜台、电话（12333/银行）、网上（卡号或证件号码加查询密码）、自助终端。"""

    channel: LossChannel = Field(
        description="渠道：counter 柜台、phone 电话、online 网上、kiosk 自助终端"
    )
    card_number: CardNumber | None = Field(default=None, description="卡号（与证件号码二选一）")
    id_number: IdNumber | None = Field(
        default=None, description="证件号码（与卡号二选一；电话挂失须同时给出卡号和证件号码）"
    )
    query_password: SecretStr | None = Field(
        default=None, min_length=1, max_length=64, description="查询密码（网上挂失必填）"
    )


class AgentIn(Strict):
    """委托代办人：姓名和证件号码（双方证件留复印件）。"""

    name: Text = Field(description="代办人姓名")
    id_number: IdNumber = Field(description="代办人证件号码")
    documents: Text = Field(default=AGENT_DOCUMENTS, description="代办所验证件")


class Evidence(Strict):
    """正式挂失或解挂：所验证件，及代办人（解挂须本人办理）。"""

    evidence: Text = Field(description="所验证件，如 身份证原件")
    agent: AgentIn | None = Field(default=None, description="代办人（委托代办时）")


class QueryPasswordIn(Strict):
    """设置或重置持卡人的查询密码（柜台，持卡人本人）。"""

    password: SecretStr = Field(min_length=6, max_length=64, description="新查询密码，至少 6 位")


class ReissueIn(Strict):
    """补卡申请（须已正式挂失）；受理后可下载领卡证明 PDF。"""

    card_number: CardNumber = Field(description="原卡卡号")
    counter: str = Field(default="", max_length=64, description="受理窗口")
    agent: AgentIn | None = Field(default=None, description="代办人（委托代办时）")


class ChangeCertificateIn(Strict):
    """换领的证明：公安部门出具的变更证明（编号、出具机关、所证明的原/新姓名和身份证号码）及社保经办机构
    的更改证明编号。新姓名、新号码未变更的不填。"""

    number: Text = Field(description="公安部门变更证明编号")
    authority: Text = Field(description="出具变更证明的公安机关")
    bureau_number: Text = Field(description="社保经办机构更改证明编号")
    old_name: Text = Field(description="证明上的原姓名（须为该持卡人的）")
    old_id_number: Annotated[str, Field(pattern=CHIP_ID_NUMBER)] = Field(
        description="证明上的原身份证号码（18 位，或第一代 15 位）"
    )
    new_name: Annotated[str, Field(min_length=1, max_length=30)] | None = Field(
        default=None, description="变更后的姓名"
    )
    new_id_number: IdNumber | None = Field(default=None, description="变更后的身份证号码")


class ChangeIn(Strict):
    """换领申请（姓名或身份证号码变更，非挂失非损坏）；新卡启用时参保人资料随之更新。"""

    card_number: CardNumber = Field(description="持卡人的正常状态卡卡号")
    certificate: ChangeCertificateIn
    counter: str = Field(default="", max_length=64, description="受理窗口")
    agent: AgentIn | None = Field(default=None, description="代办人（委托代办时）")


class HolderIn(Strict):
    """持卡人信息（写入芯片 EF06 并印在卡面）。"""

    ssn: IdNumber
    name: Annotated[str, Field(min_length=1, max_length=30, description="姓名")]
    gender: Annotated[str, Field(pattern=r"^[129]$", description="性别代码 GB/T 2261.1")]
    ethnicity: Annotated[str, Field(pattern=r"^[0-9]{2}$", description="民族代码 GB 3304")]
    birthplace: Annotated[str, Field(pattern=r"^[0-9]{6}$", description="出生地行政区划代码")]
    birth_date: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="出生日期")]


class JobIn(Strict):
    """提交制卡作业：持卡人信息、照片（base64 JPEG）、银行磁道数据。"""

    old_card_number: CardNumber = Field(description="被替换的原卡卡号（补卡中或换卡中）")
    holder: HolderIn
    photo: Annotated[
        str,
        Field(
            pattern=r"^base64:[A-Za-z0-9+/=]+$",
            max_length=16384,
            description="照片：base64: 加 JPEG 的 base64（不超过卡片规格的 photo_size 字节）",
        ),
    ]
    tracks: dict[Annotated[str, Field(pattern=r"^[123]$")], Text] | None = Field(
        default=None, description="磁道 1/2/3 的数据字符（不含起止符和 LRC）"
    )


class BalanceIn(Strict):
    """业务系统报送原卡的医保个人账户余额（新卡启用时转入新卡；docs/business-rules.md）。"""

    amount: str = Field(
        min_length=1,
        max_length=32,
        description='余额：以元为单位的十进制字符串，最多两位小数，如 "1234.56"'
        "（不接受 JSON 数字）",
    )
    as_of: AwareDatetime = Field(description="余额时点（ISO 8601，带时区），不得晚于当前时间")
    reference: str | None = Field(
        default=None, min_length=1, max_length=64, description="业务系统的流水号或参考号"
    )


# ------------------------------------------------------------------ responses

StatusCode = Annotated[
    str, Field(description="卡状态: " + ", ".join(f"{s.value} {s.label}" for s in CardStatus))
]


class CardStatusOut(BaseModel):
    """终端查询的卡状态：refuse 为真时医院、药店应拒绝此卡（挂失、补卡中、注销）。"""

    card_number: str = Field(description="卡号")
    status: StatusCode
    status_name: str = Field(description="状态名称")
    refuse: bool = Field(description="终端应拒绝此卡（已冻结或注销，或已过有效期而本地区须换卡）")
    since: str | None = Field(description="状态起始时刻（地区时区）")
    valid_until: str | None = Field(
        description="有效期（卡面与芯片 EF05 所载）；未登记发卡日期为 null"
    )
    validity: str | None = Field(
        description="有效期状态：有效期内 / 过有效期 (仍可使用) / 过有效期，须换卡"
    )
    past_validity: bool | None = Field(description="已过有效期")
    initial_pin: bool | None = Field(
        description="仍为初始密码（医保账户不能消费，医院可拒绝医保支付）；null 为未知"
    )
    initial_pin_name: str = Field(description="初始密码状态说明")


class BalanceOut(BaseModel):
    """医保个人账户余额的转移：原卡 → 新卡。"""

    status: str | None = Field(
        description="reported 已报余额待新卡启用 / pending 新卡已启用待报余额 / "
        "transferred 已转入；null 为无"
    )
    status_name: str = Field(description="状态说明")
    amount: str | None = Field(default=None, description="金额（元，两位小数）；待报时为 null")
    amount_fen: int | None = Field(default=None, description="金额（分）")
    from_card: str | None = Field(default=None, description="原卡卡号")
    to_card: str | None = Field(default=None, description="新卡卡号（启用前为 null）")
    as_of: str | None = Field(default=None, description="余额时点（地区时区）")
    reference: str | None = Field(default=None, description="业务系统参考号")
    reported_at: str | None = Field(default=None, description="报送时刻（地区时区）")
    transferred_at: str | None = Field(default=None, description="转入时刻（地区时区）")
    request: int | None = Field(default=None, description="补/换卡申请编号")


class HistoryOut(BaseModel):
    """状态历史的一条。"""

    model_config = ConfigDict(populate_by_name=True)
    from_status: str | None = Field(alias="from", description="原状态")
    to: str = Field(description="新状态")
    at: str | None = Field(description="时刻（地区时区）")
    reason: str = Field(description="原因")


class CardOut(CardStatusOut):
    """卡及持卡人（默认脱敏；柜台系统可 reveal=true）。"""

    lapse_at: str | None = Field(description="预挂失到期时刻")
    blacklisted: bool = Field(description="是否在黑名单表中（注销、报废）")
    holder_name: str = Field(description="持卡人姓名（默认脱敏）")
    holder_id_number: str = Field(description="持卡人证件号码（默认脱敏）")
    history: list[HistoryOut] = Field(description="状态历史")
    medical_balance: list[BalanceOut] = Field(
        description="医保个人账户余额的转移：转出此卡的（此卡被换发）和转入此卡的"
    )


class PersonOut(BaseModel):
    """持卡人及其卡（默认脱敏）。"""

    name: str = Field(description="姓名（默认脱敏）")
    id_number: str = Field(description="证件号码（默认脱敏）")
    cards: list[CardStatusOut] = Field(description="名下的卡")


class FeedEntryOut(BaseModel):
    cursor: int = Field(description="本条的游标")
    card_number: str = Field(description="卡号")
    sn: str | None = Field(description="芯片序列号")
    status: StatusCode
    refuse: bool = Field(description="此后终端应拒绝此卡（true 列入，false 移出黑名单）")
    at: str | None = Field(description="变更时刻（地区时区）")


class BlacklistOut(BaseModel):
    """黑名单增量：since 之后的变更，按游标顺序；下次以 next 为 since。"""

    entries: list[FeedEntryOut]
    next: int = Field(description="下次请求的 since")


class QueryPasswordOut(BaseModel):
    card_number: str
    set: bool = Field(description="已设置")


class ChangeOut(BaseModel):
    """换领所据的变更（身份证号码脱敏）。"""

    old_name: str = Field(description="原姓名")
    new_name: str = Field(description="新姓名")
    old_id_number: str = Field(description="原身份证号码（脱敏）")
    new_id_number: str = Field(description="新身份证号码（脱敏）")
    certificate: str = Field(description="公安部门变更证明编号")
    authority: str = Field(description="出具机关")
    bureau_certificate: str = Field(description="社保经办机构更改证明编号")
    applied: bool = Field(description="参保人资料已随新卡启用更新")


class RequestOut(BaseModel):
    """补卡申请（领卡证明的内容）。"""

    request: int = Field(description="申请编号")
    request_no: str = Field(description="领卡证明编号")
    kind: str = Field(description="reissue 补卡 / replacement 换卡 / change 换领（身份信息变更）")
    status: str = Field(description="申请状态")
    old_card_number: str = Field(description="原卡卡号")
    applied_on: str = Field(description="申请日期")
    collect_on: str = Field(description="领卡日期")
    place: str = Field(description="领卡地点")
    fee: int = Field(description="工本费（元）")
    fee_state: str = Field(description="工本费及其办理：已收（收据号）/ 免收 / 未收 / 免费")
    certificate: str = Field(description="领卡证明 PDF 的路径")
    agent: str | None = Field(
        default=None, description="代办人（姓名和脱敏证件号码）及所验证件；本人办理时为空"
    )
    medical_balance: BalanceOut = Field(description="原卡医保个人账户余额的转移")
    change: ChangeOut | None = Field(default=None, description="换领所据的变更（仅换领）")


class FeePaymentIn(Strict):
    """工本费已收：收据号和实收金额。"""

    receipt_no: str = Field(
        pattern=r"^[0-9A-Za-z][0-9A-Za-z-]{0,39}$", description="收据号：1–40 位字母、数字或连字符"
    )
    amount: int = Field(ge=1, le=100000, description="实收金额（元），须等于申请的工本费")


class SettlementOut(BaseModel):
    """一笔工本费的办理：已收（收据号）或免收（原因、批准人）。"""

    model_config = ConfigDict(extra="allow")
    request_id: int = Field(description="申请编号")
    request_no: str = Field(description="领卡证明编号")
    outcome: str = Field(description="paid 已收 / waived 免收")
    amount: int = Field(description="金额（元）")
    receipt_no: str | None = Field(description="收据号（已收）")
    at: str = Field(description="办理时间（地区当地时间）")


class FeeReportOut(BaseModel):
    """某日的工本费日报。"""

    model_config = ConfigDict(extra="allow")
    day: str = Field(description="地区当地日期")
    reconciled: bool = Field(description="汇总与明细相符")
    discrepancies: list[str] = Field(description="差异（逐条）")


class JobOut(BaseModel):
    """制卡作业的状态（持卡人脱敏）。"""

    model_config = ConfigDict(extra="allow")
    job: int = Field(description="作业编号")
    status: str = Field(description="作业状态")


class Health(BaseModel):
    status: str = Field(description="ok / ready")
    schema_version: int | None = Field(default=None, description="登记库结构版本")


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problem responses a route documents (application/problem+json)."""
    schema = {"$ref": "#/components/schemas/Problem"}
    return {
        status: {
            "model": Problem,
            "description": TITLES[status],
            "content": {PROBLEM_JSON: {"schema": schema}},
        }
        for status in statuses
    }


# Every route may answer these: no or a bad token, a forbidden role, bad input, a body too
# large, a registry too busy.
COMMON = (400, 401, 403, 413, 422, 503)
