"""The counter's pages (柜台业务; issue 16, Deliver 3; docs/console.md "Counter"): find a
person, their cards with each card's history, requests and 验卡单; loss, formal loss, 解挂 and
the reissue request; the 领卡证明 and its 补打; the personalization job with the photo and
the face the printer will print.

Every change is the registry's or the job workflow's own call — the ones the CLI
(``personalize.service_commands``) and the API (``personalize.api``) make — run by
``forms.act``; nothing here decides whether a card may change."""

from __future__ import annotations

import base64
import io
import re
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from personalize import counter_store
from personalize.api.access import ApiState
from personalize.api.models import CARD_NUMBER
from personalize.card_standing import standing
from personalize.documents import collection_certificate, collection_certificate_bytes
from personalize.fees import fee_settlement, fee_state
from personalize.identity_change import ChangeCertificate
from personalize.jobs import JobError, check_photo, submit_job
from personalize.lifecycle import (
    REQUEST_KIND_LABELS,
    REQUEST_STATUS_LABELS,
    TRANSITIONS,
    RequestStatus,
)
from personalize.medical_balance import transfer_view
from personalize.office import OfficeError, office_report_pdf
from personalize.operators import OperatorError
from personalize.registry import (
    AGENT_DOCUMENTS,
    STATUS_NAMES,
    Agent,
    Card,
    Registry,
    RegistryError,
    mask_id,
    request_number,
)
from personalize.registry_records import Person
from personalize.roles import Role
from personalize.textinput import ID_NUMBER, normalize
from personalize.web.access import Access, ConsoleUser, User, audit_refusal, console_state
from personalize.web.forms import REFUSALS, act, second_operator
from personalize.web.pages import inline_pdf, redirect, render
from personalize.withdrawal import withdraw_request
from printer.face import CardFace, render_png
from sscard.identifiers import validate_card_number, validate_ssn
from sscard.profile import load_profile

router = APIRouter(prefix="/counter")

PAGE = Access.page(Role.COUNTER)
ACCESS: dict[tuple[str, str], Access] = {
    ("GET", "/counter"): PAGE,
    ("GET", "/counter/persons/{person_id}"): PAGE,
    ("POST", "/counter/cards/{card_number}/report-loss"): Access.form("card.report_loss"),
    ("POST", "/counter/cards/{card_number}/formal-loss"): Access.form("card.formalize_loss"),
    ("POST", "/counter/cards/{card_number}/unreport"): Access.form("card.unreport"),
    ("POST", "/counter/cards/{card_number}/reissue"): Access.form("request.reissue"),
    ("POST", "/counter/cards/{card_number}/change"): Access.form("request.change"),
    ("GET", "/counter/requests/{request_id}/certificate"): PAGE,
    ("POST", "/counter/requests/{request_id}/reprint"): Access.form("document.reprint"),
    ("POST", "/counter/requests/{request_id}/withdraw"): Access.form("request.withdraw"),
    ("GET", "/counter/reports/{report_no}"): PAGE,
    # the job: the counter submits it with the photo; the card center may too
    ("GET", "/counter/requests/{request_id}/job"): Access.page(Role.COUNTER, Role.CARD_CENTER),
    ("POST", "/counter/requests/{request_id}/job/preview"): Access.form("job.submit"),
    ("POST", "/counter/requests/{request_id}/job"): Access.form("job.submit"),
}

CARD_LIKE = re.compile(CARD_NUMBER)
# a first-generation 15-digit ID number (GB 11643-1989; docs/business-rules.md "15-digit ID
# numbers"), found by its 18-digit upgrade
FIRST_GENERATION_ID = re.compile(r"[0-9]{15}", re.ASCII)
# Which forms a card in a status is offered: the actions the transition table has from it
# (the registry still decides; a refusal is shown as it words it).
OFFERED = ("report_loss", "formalize_loss", "unreport", "request_reissue", "request_change")
PLACEHOLDER_NUMBER = "制卡时分配"  # the new card's number is allocated when the job runs
MAX_PHOTO_FORM = 16384  # the photo's base64 in the confirmation form (as the API's JobIn)

Text = Annotated[str, Form(min_length=1, max_length=200)]
Maybe = Annotated[str, Form(max_length=200)]


def offered(status: str) -> set[str]:
    return {
        t.action
        for t in TRANSITIONS
        if t.subject == "card" and t.source == status and t.action in OFFERED
    }


def _local(registry: Registry, instant: str | None) -> str:
    if not instant:
        return ""
    return registry.policy.local_time(datetime.fromisoformat(instant)).strftime("%Y-%m-%d %H:%M")


def person_path(person_id: int) -> str:
    return f"/counter/persons/{person_id}"


# ------------------------------------------------------------------ find a person


def find(registry: Registry, query: str) -> int | list[Person]:
    """The person a query names: an ID number (18 characters, or a first-generation 15-digit
    one) or a card number leads to one person (its check character checked first); a name
    lists everyone of that name."""
    text = normalize(query)
    upper = text.upper()
    if ID_NUMBER.fullmatch(upper) or FIRST_GENERATION_ID.fullmatch(upper):
        validate_ssn(upper, first_generation=True)
        person = registry.person_by_ssn(upper)  # a 15-digit number: by its upgrade
        if person is None:
            raise RegistryError("登记库中没有该证件号码 (unknown ID number)")
        return person.id
    if CARD_LIKE.match(upper):
        validate_card_number(upper)
        return registry.card(upper).person_id
    persons = counter_store.persons_named(registry.db, text)
    if not persons:
        raise RegistryError(f"登记库中没有姓名为 {text} 的人员 (no person of that name)")
    return persons


@router.get("", response_class=HTMLResponse)
def search(request: Request, user: User, q: str = "") -> Response:
    """The search box; one match opens the person, a name lists its persons (ID masked)."""
    if not q.strip():
        return render(request, "counter/search.html", user, q="", persons=[])
    registry = console_state(request).registry()
    try:
        found = find(registry, q[:64])
    except REFUSALS as exc:
        return render(request, "counter/search.html", user, q=q, persons=[], error=str(exc))
    if isinstance(found, int):
        return redirect(person_path(found))
    persons = [
        {"id": p.id, "name": p.name, "ssn": mask_id(p.ssn), "birth_date": p.birth_date}
        for p in found
    ]
    return render(request, "counter/search.html", user, q=q, persons=persons)


# ------------------------------------------------------------------ the person


def _card_view(registry: Registry, card: Card) -> dict[str, Any]:
    return {
        "number": card.card_number,
        "status": card.status,
        "status_name": STATUS_NAMES[card.status],
        "since": _local(registry, card.status_since),
        "lapse_at": _local(registry, card.lapse_at),
        "offered": offered(card.status),
        **standing(registry.validity(card), registry.initial_pin(card)),
        "history": [
            {
                "at": _local(registry, h.at),
                "from": STATUS_NAMES[h.from_status] if h.from_status else "—",
                "to": STATUS_NAMES[h.to_status],
                "operator": h.operator,
                "reason": h.reason,
                "evidence": h.evidence or "",
            }
            for h in registry.history(card.id)
        ],
        "reports": [
            {
                "no": r.report_no,
                "at": _local(registry, r.at),
                "verdict": r.data.get("verdict", ""),
                "fee": r.data.get("fee", 0),
                "request_no": r.data.get("request_no", ""),
                "next_step": r.data.get("next_step", ""),
            }
            for r in counter_store.office_reports_of(registry.db, card.card_number)
        ],
    }


def _requests_view(registry: Registry, person_id: int) -> list[dict[str, Any]]:
    views = []
    for r in counter_store.requests_of_person(registry.db, person_id):
        agent = Agent.from_text(r.agent)
        settled = fee_settlement(registry, r.id)
        views.append(
            {
                "id": r.id,
                "no": request_number(r.id),
                "kind": REQUEST_KIND_LABELS.get(r.kind, r.kind),
                "status": REQUEST_STATUS_LABELS[r.status],
                "open": r.status == RequestStatus.OPEN,
                "withdrawn": r.status == RequestStatus.WITHDRAWN,
                "card": registry.card_by_id(r.old_card_id).card_number,
                "applied_on": r.applied_on,
                "collect_on": r.collect_on,
                "place": r.place,
                "fee": r.fee,
                "fee_state": fee_state(r, settled),
                "fee_open": r.fee > 0 and settled is None,
                "agent": "" if agent is None else agent.masked(),
                "job": r.job_id,
                "balance": transfer_view(
                    registry,
                    registry.balances.of_request(r.id),
                    lambda at: _local(registry, at),
                ),
            }
        )
    return views


@router.get("/persons/{person_id}", response_class=HTMLResponse)
def person_page(request: Request, user: User, person_id: int) -> Response:
    state = console_state(request)
    registry = state.registry()
    try:
        person = registry.person(person_id)
    except RegistryError:
        return redirect("/counter", error=f"没有编号 {person_id} 的人员 (no such person)")
    return render(
        request,
        "counter/person.html",
        user,
        person=person,
        cards=[_card_view(registry, c) for c in registry.cards_of(person.id)],
        requests=_requests_view(registry, person.id),
        fee_reissue=registry.policy.fee_reissue,
        agent_documents=AGENT_DOCUMENTS,
        may_submit=user.may("job.submit"),
        may_reprint=user.may("document.reprint"),
        may_pay=user.may("fee.pay"),
        may_waive=user.may("fee.waive"),
        may_withdraw=user.may("request.withdraw"),
    )


# ------------------------------------------------------------------ card forms


def _back_to_holder(state: ApiState, card_number: str) -> str:
    """The page of the card's holder (the search page when the card is unknown)."""
    try:
        return person_path(state.registry().card(card_number).person_id)
    except RegistryError:
        return "/counter"


def _agent(name: str, id_number: str, documents: str) -> Agent | None:
    """The agent (委托代办) of a form: both fields, or neither (as the CLI's --agent-*), with
    the documents they showed (every card form has the fields: whether an agent may do it
    is the transition table's)."""
    name, id_number = normalize(name), normalize(id_number).upper()
    if not name and not id_number:
        return None
    if not (name and id_number):
        raise ValueError("代办须同时填写代办人姓名和证件号码 (an agent needs name and ID)")
    return Agent(name, id_number, normalize(documents))


def _card_form(
    request: Request,
    user: ConsoleUser,
    card_number: str,
    change: Callable[[Registry], Card],
    done: str,
) -> Response:
    """A card's transition by its registry method (``change``), back on its holder's page."""
    state = console_state(request)

    def work(registry: Registry) -> str:
        card = change(registry)
        return f"{card_number}：{done}，现为{STATUS_NAMES[card.status]}"

    return act(state, user, work, back=_back_to_holder(state, card_number))


@router.post("/cards/{card_number}/report-loss")
def report_loss(request: Request, user: User, card_number: str) -> Response:
    return _card_form(
        request,
        user,
        card_number,
        lambda r: r.report_loss(card_number, operator=user.name, channel="counter"),
        "已预挂失",
    )


@router.post("/cards/{card_number}/formal-loss")
def formal_loss(
    request: Request,
    user: User,
    card_number: str,
    evidence: Text,
    agent_name: Maybe = "",
    agent_id: Maybe = "",
    agent_documents: Maybe = AGENT_DOCUMENTS,
) -> Response:
    return _card_form(
        request,
        user,
        card_number,
        lambda r: r.formalize_loss(
            card_number,
            operator=user.name,
            evidence=normalize(evidence),
            agent=_agent(agent_name, agent_id, agent_documents),
        ),
        "已正式挂失",
    )


@router.post("/cards/{card_number}/unreport")
def unreport(
    request: Request,
    user: User,
    card_number: str,
    evidence: Text,
    agent_name: Maybe = "",
    agent_id: Maybe = "",
    agent_documents: Maybe = AGENT_DOCUMENTS,
) -> Response:
    """解挂: the holder in person — an agent named on the form is refused by the transition
    table (``Registry.unreport``), nothing written."""
    return _card_form(
        request,
        user,
        card_number,
        lambda r: r.unreport(
            card_number,
            operator=user.name,
            evidence=normalize(evidence),
            agent=_agent(agent_name, agent_id, agent_documents),
        ),
        "已解挂",
    )


@router.post("/cards/{card_number}/reissue")
def reissue(
    request: Request,
    user: User,
    card_number: str,
    counter: Maybe = "",
    agent_name: Maybe = "",
    agent_id: Maybe = "",
    agent_documents: Maybe = AGENT_DOCUMENTS,
) -> Response:
    """补卡申请 (``Registry.request_reissue``: the policy's fee recorded on the request)."""
    state = console_state(request)

    def work(registry: Registry) -> str:
        made = registry.request_reissue(
            card_number,
            operator=user.name,
            counter=normalize(counter),
            agent=_agent(agent_name, agent_id, agent_documents),
        )
        return (
            f"补卡申请 {request_number(made.id)} 已受理；领卡日期 {made.collect_on}；"
            f"工本费 {made.fee} 元"
        )

    return act(state, user, work, back=_back_to_holder(state, card_number))


@router.post("/cards/{card_number}/change")
def change(
    request: Request,
    user: User,
    card_number: str,
    old_name: Text,
    old_id: Text,
    certificate: Text,
    authority: Text,
    bureau_certificate: Text,
    new_name: Maybe = "",
    new_id: Maybe = "",
    counter: Maybe = "",
    agent_name: Maybe = "",
    agent_id: Maybe = "",
    agent_documents: Maybe = AGENT_DOCUMENTS,
) -> Response:
    """换领 (identity data changed, ``Registry.request_change``): what the 公安部门变更证明
    certifies, old and new, and the 社保经办机构更改证明's number, as the clerk reads them."""
    state = console_state(request)

    def work(registry: Registry) -> str:
        made = registry.request_change(
            card_number,
            ChangeCertificate(
                number=normalize(certificate),
                authority=normalize(authority),
                bureau_number=normalize(bureau_certificate),
                old_name=normalize(old_name),
                old_id=normalize(old_id).upper(),
                new_name=normalize(new_name),
                new_id=normalize(new_id).upper(),
            ),
            operator=user.name,
            counter=normalize(counter),
            agent=_agent(agent_name, agent_id, agent_documents),
        )
        return (
            f"换领申请 {request_number(made.id)} 已受理；领卡日期 {made.collect_on}；"
            "新卡启用时参保人资料随之更新"
        )

    return act(state, user, work, back=_back_to_holder(state, card_number))


# ------------------------------------------------------------------ documents


def _holder_of_request(registry: Registry, request_id: int) -> str:
    try:
        return person_path(registry.request(request_id).person_id)
    except RegistryError:
        return "/counter"


@router.get("/requests/{request_id}/certificate")
def certificate(request: Request, user: User, request_id: int) -> Response:
    """The 领卡证明 rendered from the registry (as the CLI printed it), opened in place; each
    opening is an audit event."""
    state = console_state(request)
    try:
        with state.transaction() as registry:
            number = request_number(request_id)
            pdf = collection_certificate_bytes(collection_certificate(registry, request_id))
            registry.audit(user.name, "document.view", number, {"document": "领卡证明"})
    except RegistryError as exc:
        return redirect("/counter", error=str(exc))
    return inline_pdf(pdf, f"{number}.pdf")


@router.post("/requests/{request_id}/reprint")
def reprint(
    request: Request,
    user: User,
    request_id: int,
    confirm_by: Annotated[str, Form(max_length=64)],
    confirm_password: Annotated[str, Form(max_length=256)],
) -> Response:
    """补打 the 领卡证明, marked with the reprint time — dual control: a second operator allowed
    ``confirm`` types their name and password here (``operators.authenticate`` and
    ``operators.confirm``, as ``sscard registry reprint --confirm-by``)."""
    state = console_state(request)
    back = _holder_of_request(state.registry(), request_id)
    try:
        confirmer = second_operator(state, user, confirm_by, confirm_password, "document.reprint")
    except OperatorError as exc:
        return redirect(back, error=str(exc))
    number = request_number(request_id)
    try:
        with state.transaction() as registry:
            at = registry.clock()
            cert = collection_certificate(registry, request_id, reprinted_at=at)
            pdf = collection_certificate_bytes(cert)
            registry.audit(
                user.name,
                "document.reprint",
                number,
                {"file": f"{number}-补打.pdf", "confirmed_by": confirmer.name},
            )
    except RegistryError as exc:
        audit_refusal(state.registry(), user.name, back, str(exc))
        return redirect(back, error=str(exc))
    return inline_pdf(pdf, f"{number}-reprint.pdf")


@router.post("/requests/{request_id}/withdraw")
def withdraw(
    request: Request,
    user: User,
    request_id: int,
    reason: Annotated[str, Form(max_length=200)],
    confirm_by: Annotated[str, Form(max_length=64)],
    confirm_password: Annotated[str, Form(max_length=256)],
) -> Response:
    """撤销申请 (``withdrawal.withdraw_request``) — dual control as the 补打 and 免收
    (``forms.second_operator``)."""
    state = console_state(request)
    back = _holder_of_request(state.registry(), request_id)
    try:
        confirmer = second_operator(state, user, confirm_by, confirm_password, "request.withdraw")
    except OperatorError as exc:
        return redirect(back, error=f"复核未通过，未撤销：{exc}")

    def work(registry: Registry) -> str:
        done = withdraw_request(
            registry, request_id, reason=reason, confirmed_by=confirmer.name, operator=user.name
        )
        card = registry.card_by_id(done.old_card_id)
        return (
            f"{REQUEST_KIND_LABELS.get(done.kind, done.kind)}申请 {request_number(done.id)} "
            f"已撤销（复核人 {confirmer.name}）；原卡 {card.card_number} 现为"
            f"{STATUS_NAMES[card.status]}"
        )

    return act(state, user, work, back=back)


@router.get("/reports/{report_no}")
def office_report(request: Request, user: User, report_no: str) -> Response:
    """A stored 验卡单 (the verdict that led to a 换卡), rendered again from the registry."""
    registry = console_state(request).registry()
    try:
        pdf = office_report_pdf(registry, report_no)
    except OfficeError as exc:
        return redirect("/counter", error=str(exc))
    return inline_pdf(pdf, f"{report_no}.pdf")


# ------------------------------------------------------------------ the personalization job


@dataclass(frozen=True)
class JobRequest:
    """An open request with its holder: what a job for it is made of."""

    id: int
    number: str
    kind: str
    card_number: str
    person: Person
    status: str  # 待制卡, 制卡中 …
    open: bool  # waiting for a job
    job_id: int | None


def _job_request(registry: Registry, request_id: int) -> JobRequest:
    found = registry.request(request_id)
    return JobRequest(
        found.id,
        request_number(found.id),
        REQUEST_KIND_LABELS.get(found.kind, found.kind),
        registry.card_by_id(found.old_card_id).card_number,
        registry.holder_of(found),  # a 换领's new card: the new name and ID number
        REQUEST_STATUS_LABELS[found.status],
        found.status == RequestStatus.OPEN,
        found.job_id,
    )


def _holder(person: Person) -> dict[str, str]:
    """The job's holder fields, from the registry's record of the person."""
    fields = asdict(person)
    return {k: str(fields[k]) for k in ("ssn", "name", "gender", "ethnicity", "birthplace",
                                         "birth_date")}  # fmt: skip


def _face_png(registry: Registry, person: Person, photo: bytes) -> str:
    """The card face the printer will print (``printer.face.render_png``, as the job's
    print_face step lays it out), as a data: URL; the new card's number is allocated when
    the job runs, so a placeholder stands for it."""
    face = CardFace(
        person.name,
        person.ssn,
        PLACEHOLDER_NUMBER,
        registry.policy.local_date(registry.clock()),
        registry.policy.authority,
        photo,
        load_profile(registry.policy.profile).face,
    )
    out = io.BytesIO()
    render_png(face).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def _job_page(request: Request, user: User, request_id: int, **more: Any) -> Response:
    state = console_state(request)
    try:
        job = _job_request(state.registry(), request_id)
    except RegistryError as exc:
        return redirect("/counter", error=str(exc))
    return render(
        request,
        "counter/job.html",
        user,
        job=job,
        holder=_holder(job.person),
        track_key=state.vault is not None,
        back_to_person=user.role in PAGE.roles,
        **more,
    )


@router.get("/requests/{request_id}/job", response_class=HTMLResponse)
def job_form(request: Request, user: User, request_id: int) -> Response:
    return _job_page(request, user, request_id)


@router.post("/requests/{request_id}/job/preview", response_class=HTMLResponse)
async def job_preview(
    request: Request, user: User, request_id: int, photo: Annotated[UploadFile, File()]
) -> Response:
    """The uploaded photo checked as the job will check it (``jobs.check_photo``), then the
    face it makes shown for the operator to confirm; nothing is written."""
    state = console_state(request)
    data = await photo.read()
    registry = state.registry()
    back = f"/counter/requests/{request_id}/job"
    try:
        job = _job_request(registry, request_id)
        check_photo(data, load_profile(registry.policy.profile))
        face = _face_png(registry, job.person, data)
    except (JobError, RegistryError) as exc:
        audit_refusal(registry, user.name, back, str(exc))
        return redirect(back, error=str(exc))
    return _job_page(request, user, request_id, face=face, photo=base64.b64encode(data).decode())


@router.post("/requests/{request_id}/job")
def job_submit(
    request: Request,
    user: User,
    request_id: int,
    photo: Annotated[str, Form(max_length=MAX_PHOTO_FORM)],
) -> Response:
    """``jobs.submit_job`` with the holder as the registry records them and the confirmed
    photo; the tracks are sealed with the server's track key (``--track-key``)."""
    state = console_state(request)
    back = f"/counter/requests/{request_id}/job"
    vault = state.vault
    if vault is None:
        return redirect(back, error=NO_TRACK_KEY)

    def work(registry: Registry) -> str:
        job = _job_request(registry, request_id)
        submission = {
            "old_card_number": job.card_number,
            "holder": _holder(job.person),
            "photo": "base64:" + photo,
        }
        profile = load_profile(registry.policy.profile)
        with tempfile.TemporaryDirectory() as empty:  # a photo is base64, never a path
            job_id = submit_job(
                registry, profile, vault, submission, base_dir=Path(empty), operator=user.name
            )
        return f"制卡作业 {job_id} 已提交（{job.kind} {job.number}），等待制卡中心制作"

    return act(state, user, work, back=back)


NO_TRACK_KEY = (
    "本服务未配置磁道密钥，不能提交制卡作业：请以 sscard serve --track-key 启动 "
    "(no track key: start sscard serve with --track-key)"
)
