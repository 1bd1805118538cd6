"""The card center's pages (制卡中心, issue 16 Deliver 4; docs/console.md "Card center"):
the queue by station with its live part, a job with its step log, resume and cancel, the
stations and what the registry knows of their devices, and the reject bin.

Reads go through ``center_view`` (the jobs store); each form is one workflow of
``personalize.jobs`` — ``resume_job`` (a paused job given back to its station) and
``cancel_job`` under dual control: a second operator allowed ``confirm`` types their name
and password in the form (``operators.authenticate`` + ``operators.confirm``, as
``sscard job cancel --confirm-by`` does)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException

from personalize.jobs import cancel_job, resume_job
from personalize.lifecycle import JobStatus
from personalize.medical_balance import transfer_view
from personalize.operators import OperatorError
from personalize.registry import Registry
from personalize.roles import Role
from personalize.web import center_view
from personalize.web.access import Access, User, console_state
from personalize.web.forms import act, second_operator
from personalize.web.pages import redirect, render

router = APIRouter()

CENTER = Access.page(Role.CARD_CENTER)
ACCESS: dict[tuple[str, str], Access] = {
    ("GET", "/center"): CENTER,
    ("GET", "/center/queue"): CENTER,  # the live fragment of /center
    ("GET", "/center/jobs/{job_id}"): CENTER,
    ("POST", "/center/jobs/{job_id}/resume"): Access.form("job.run"),
    ("POST", "/center/jobs/{job_id}/cancel"): Access.form("job.cancel"),
    ("GET", "/center/stations"): CENTER,
    ("GET", "/center/rejects"): CENTER,
}
CANCELLABLE = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSED)


@router.get("/center", response_class=HTMLResponse)
def queue_page(request: Request, user: User) -> Response:
    queue = center_view.queue(console_state(request).registry())
    return render(request, "center/queue.html", user, queue=queue, tab="queue")


@router.get("/center/queue", response_class=HTMLResponse)
def queue_fragment(request: Request, user: User) -> Response:
    """The live part of /center, fetched again every few seconds (static/console.js)."""
    queue = center_view.queue(console_state(request).registry())
    return render(request, "center/_queue.html", user, queue=queue)


@router.get("/center/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, user: User, job_id: int) -> Response:
    registry = console_state(request).registry()
    summary = registry.jobs.summary(job_id)
    if summary is None:
        raise HTTPException(404, f"没有作业 {job_id} (no job {job_id})")
    clock = center_view.Clock(registry)
    return render(
        request,
        "center/job.html",
        user,
        tab="queue",
        job=center_view.job_row(summary, clock),
        steps=center_view.step_rows(registry.jobs.steps(job_id), clock),
        balance=transfer_view(
            registry, registry.balances.of_request(summary.job.request_id), clock.local
        ),
        policy_requires_balance=registry.policy.balance_required_before_activation,
        can_resume=summary.job.status == JobStatus.PAUSED and user.may("job.run"),
        can_cancel=summary.job.status in CANCELLABLE and user.may("job.cancel"),
    )


@router.post("/center/jobs/{job_id}/resume")
def resume(request: Request, user: User, job_id: int) -> Response:
    def work(registry: Registry) -> str:
        job = resume_job(registry, job_id, operator=user.name)
        return f"作业 {job_id} 已交还工位 {job.station}，由其续做 (job resumed)"

    return act(console_state(request), user, work, back=f"/center/jobs/{job_id}")


@router.post("/center/jobs/{job_id}/cancel")
def cancel(
    request: Request,
    user: User,
    job_id: int,
    reason: Annotated[str, Form(max_length=200)],
    confirm_by: Annotated[str, Form(max_length=64)],
    confirm_password: Annotated[str, Form(max_length=256)],
) -> Response:
    """Dual control: the confirmer is checked (a refusal audited ``job.cancel.refused`` in
    its own transaction) before the cancel's transaction, which records the confirmation."""
    state = console_state(request)
    back = f"/center/jobs/{job_id}"
    try:
        confirmer = second_operator(state, user, confirm_by, confirm_password, "job.cancel")
    except OperatorError as exc:
        return redirect(back, error=f"复核未通过，作业未取消：{exc}")

    def work(registry: Registry) -> str:
        cancel_job(registry, job_id, operator=user.name, confirmed_by=confirmer.name, reason=reason)
        return (
            f"作业 {job_id} 已取消（复核人 {confirmer.name}）；补/换卡申请重新待制卡，"
            "可再次提交作业 (cancelled)"
        )

    return act(state, user, work, back=back)


@router.get("/center/stations", response_class=HTMLResponse)
def stations_page(request: Request, user: User) -> Response:
    rows = center_view.stations(console_state(request).registry())
    return render(request, "center/stations.html", user, stations=rows, tab="stations")


@router.get("/center/rejects", response_class=HTMLResponse)
def rejects_page(request: Request, user: User) -> Response:
    rows = center_view.rejects(console_state(request).registry())
    return render(request, "center/rejects.html", user, rejects=rows, tab="rejects")
