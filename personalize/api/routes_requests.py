"""Reissue requests with their 领卡证明 PDF, and personalization jobs: submission and status
(docs/api.md "Endpoints") — ``Registry.request_reissue``, ``documents.collection_certificate``
and ``jobs.submit_job``, as the counter's and the card center's commands call them."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from fastapi.responses import Response

from personalize.api.access import CallOf, IdempotencyKey, bearer
from personalize.api.models import (
    COMMON,
    ChangeIn,
    JobIn,
    JobOut,
    ReissueIn,
    RequestOut,
    problems,
)
from personalize.api.problems import ApiProblem
from personalize.api.routes_cards import Reveal, _agent, _check_reveal, _local, card_of
from personalize.documents import collection_certificate, collection_certificate_bytes
from personalize.fees import fee_settlement, fee_state
from personalize.identity_change import ChangeCertificate
from personalize.jobs import submit_job
from personalize.medical_balance import transfer_view
from personalize.registry import Agent, Registry, RegistryError, mask_id, request_number
from personalize.service_commands import _job_dict, mask_name
from sscard.profile import load_profile

router = APIRouter(
    prefix="/v1", tags=["申请与制卡 requests and jobs"], dependencies=[Depends(bearer)]
)

RequestId = Annotated[int, PathParam(ge=1, le=2**62, description="申请编号")]


def request_of(registry: Registry, request_id: int, *, reveal: bool = False) -> dict[str, Any]:
    """The request as the API answers it; a 换领's names masked unless ``reveal`` (a counter
    client's ``?reveal=true``, checked by the caller: ``routes_cards._check_reveal``)."""
    try:
        request = registry.request(request_id)
    except RegistryError:
        raise ApiProblem(
            404, f"没有申请 {request_id} (no request {request_id})", slug="no-request"
        ) from None
    agent = Agent.from_text(request.agent)
    return {
        "request": request.id,
        "request_no": request_number(request.id),
        "kind": request.kind,
        "status": request.status,
        "old_card_number": registry.card_by_id(request.old_card_id).card_number,
        "applied_on": request.applied_on,
        "collect_on": request.collect_on,
        "place": request.place,
        "fee": request.fee,
        "fee_state": fee_state(request, fee_settlement(registry, request.id)),
        "certificate": f"/v1/reissue-requests/{request.id}/certificate",
        "agent": None if agent is None else agent.masked(),
        "medical_balance": transfer_view(
            registry, registry.balances.of_request(request.id), lambda at: _local(registry, at)
        ),
        "change": change_of(registry, request.id, reveal=reveal),
    }


def change_of(
    registry: Registry, request_id: int, *, reveal: bool = False
) -> dict[str, Any] | None:
    """A 换领's change, None for any other request: the ID numbers always masked, the names
    masked (``mask_name``) unless ``reveal`` — the rule of the card and person lookups
    (docs/api.md, ``REVEALING``)."""
    change = registry.identity_change(request_id)
    if change is None:
        return None
    return {
        "old_name": change.old_name if reveal else mask_name(change.old_name),
        "new_name": change.new_name if reveal else mask_name(change.new_name),
        "old_id_number": mask_id(change.old_ssn),
        "new_id_number": mask_id(change.new_ssn),
        "certificate": change.certificate,
        "authority": change.authority,
        "bureau_certificate": change.bureau_certificate,
        "applied": change.applied_at is not None,
    }


@router.post(
    "/reissue-requests",
    status_code=201,
    summary="补卡申请",
    description="正式挂失后的补卡申请（可委托代办）；领卡证明 PDF 由 certificate 路径下载。"
    "换卡申请须先在街道网点验卡（sscard office diagnose），不经本接口。",
    responses={201: {"model": RequestOut, "description": "已受理"}, **problems(*COMMON, 404, 409)},
)
def request_reissue(body: ReissueIn, call: CallOf, key: IdempotencyKey) -> Response:
    def work(registry: Registry) -> tuple[int, dict[str, Any]]:
        card = card_of(registry, body.card_number)
        request = registry.request_reissue(
            card.card_number,
            operator=call.operator,
            counter=body.counter,
            agent=_agent(body.agent),
        )
        return 201, request_of(registry, request.id)

    return call.write(key, body.model_dump(mode="json"), work)


@router.post(
    "/change-requests",
    status_code=201,
    summary="换领申请（身份信息变更）",
    description="姓名或身份证号码变更的换领：凭公安部门变更证明和社保经办机构更改证明（可委托代办）；"
    "新卡载明新姓名和新号码，启用时参保人资料随之更新、原卡注销。领卡证明 PDF 由 certificate "
    "路径下载。证明非本人、新号码无效或属他人、未变更、仅 15 位升 18 位、卡非正常状态均拒绝，"
    "不写入。",
    responses={201: {"model": RequestOut, "description": "已受理"}, **problems(*COMMON, 404, 409)},
)
def request_change(body: ChangeIn, call: CallOf, key: IdempotencyKey) -> Response:
    def work(registry: Registry) -> tuple[int, dict[str, Any]]:
        card = card_of(registry, body.card_number)
        given = body.certificate
        request = registry.request_change(
            card.card_number,
            ChangeCertificate(
                number=given.number,
                authority=given.authority,
                bureau_number=given.bureau_number,
                old_name=given.old_name,
                old_id=given.old_id_number,
                new_name=given.new_name or "",
                new_id=given.new_id_number or "",
            ),
            operator=call.operator,
            counter=body.counter,
            agent=_agent(body.agent),
        )
        return 201, request_of(registry, request.id)

    return call.write(key, body.model_dump(mode="json"), work)


@router.get(
    "/reissue-requests/{request_id}",
    response_model=RequestOut,
    summary="查询申请",
    responses=problems(*COMMON, 404),
)
def show_request(request_id: RequestId, call: CallOf, reveal: Reveal = False) -> dict[str, Any]:
    _check_reveal(call, reveal)
    return call.read(lambda registry: request_of(registry, request_id, reveal=reveal))


@router.get(
    "/reissue-requests/{request_id}/certificate",
    summary="下载领卡证明",
    description="领卡证明 PDF，由登记库生成（与柜台打印的相同）；每次下载记入审计。",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "领卡证明 PDF"},
        **problems(*COMMON, 404),
    },
)
def certificate(request_id: RequestId, call: CallOf) -> Response:
    def work(registry: Registry) -> bytes:
        request_of(registry, request_id)
        return collection_certificate_bytes(collection_certificate(registry, request_id))

    pdf = call.read(work)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{request_number(request_id)}.pdf"'},
    )


@router.post(
    "/jobs",
    status_code=201,
    summary="提交制卡作业",
    description="持卡人信息、照片、磁道数据：全部校验通过才写入（jobs.submit_job）；磁道数据以磁道"
    "密钥封存。服务须以 --track-key 启动。",
    responses={201: {"model": JobOut, "description": "已提交"}, **problems(*COMMON, 404, 409)},
)
def submit(body: JobIn, call: CallOf, key: IdempotencyKey) -> Response:
    vault = call.state.vault
    if vault is None:
        raise call.refused(
            ApiProblem(
                503,
                "本服务未配置磁道密钥，不能受理制卡作业：以 --track-key 启动 "
                "(no track key: start sscard serve with --track-key)",
                slug="no-track-key",
            )
        )
    submission = body.model_dump(mode="json", exclude_none=True)

    def work(registry: Registry) -> tuple[int, dict[str, Any]]:
        card_of(registry, body.old_card_number)
        with tempfile.TemporaryDirectory() as empty:  # a photo is base64, never a path
            job_id = submit_job(
                registry,
                load_profile(registry.policy.profile),
                vault,
                submission,
                base_dir=Path(empty),
                operator=call.operator,
            )
        return 201, _job_dict(registry, job_id)

    return call.write(key, submission, work)


@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    summary="制卡作业状态",
    description="作业的状态、步骤和新卡号（持卡人脱敏）。",
    responses=problems(*COMMON, 404),
)
def job_status(
    job_id: Annotated[int, PathParam(ge=1, le=2**62, description="作业编号")], call: CallOf
) -> dict[str, Any]:
    def work(registry: Registry) -> dict[str, Any]:
        if registry.jobs.summary(job_id) is None:
            raise ApiProblem(404, f"没有作业 {job_id} (no job {job_id})", slug="no-job")
        return _job_dict(registry, job_id)

    return call.read(work)
