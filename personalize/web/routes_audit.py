"""The auditor's pages (审计, issue 16 Deliver 5; docs/console.md "Auditor"): the audit
chain's status and a verification run now, the search of audit events by card, person,
operator and time, and the outbox's (回盘) delivery status. Everything here reads, except
the verification, which records its checkpoint of verification as ``sscard audit verify``
does (the same ``Registry.check_audit``) and is itself an audit event ``audit.verify``.

Times are entered and shown in the region policy's zone (``RegionPolicy.zone``); the store
keeps and compares UTC."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from personalize import audit_store
from personalize.api.access import ROUTE_ROLES
from personalize.audit_store import AuditEvent, EventSearch
from personalize.auditverify import FULL_REASONS
from personalize.outbox_dispatch import requeue_failed
from personalize.policy import RegionPolicy
from personalize.registry import Registry, RegistryError, _iso
from personalize.roles import Role
from personalize.web.access import Access, User, audit_refusal, console_state
from personalize.web.forms import act
from personalize.web.pages import redirect, render

router = APIRouter()

PAGE = Access.page(Role.AUDITOR)
ACCESS: dict[tuple[str, str], Access] = {
    ("GET", "/audit"): PAGE,
    ("POST", "/audit/verify"): Access.form("audit.verify"),
    ("GET", "/audit/events"): PAGE,
    ("GET", "/audit/outbox"): PAGE,
    ("POST", "/audit/outbox/retry"): Access.form("outbox.retry"),
}

PAGE_SIZE = 50
# A field named with one of these words is never shown, whatever event carries it (none
# does by design: docs/service.md "Audit").
SECRET_WORDS = frozenset({"token", "password", "passphrase", "secret", "pin"})
LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"


def local_text(policy: RegionPolicy, at: str) -> str:
    """A stored UTC time as the region's wall-clock time."""
    return policy.local_time(datetime.fromisoformat(at)).strftime(LOCAL_FORMAT)


def utc_text(policy: RegionPolicy, local: str, field: str) -> str:
    """A time the auditor typed (the region's wall clock, ``2026-11-25T17:30`` as a
    ``datetime-local`` input sends it) as the store's UTC text."""
    try:
        moment = datetime.fromisoformat(local.strip())
    except ValueError:
        raise RegistryError(
            f"{field}「{local}」不是有效的时间，应为 2026-11-25 17:30 "
            f"(not a time: YYYY-MM-DD HH:MM, local time)"
        ) from None
    return _iso(moment.replace(tzinfo=policy.zone).astimezone(UTC))


def _secret(name: str) -> bool:
    """``query_password``, ``token``, ``new_pin``…: a word of the name is a secret's."""
    return not SECRET_WORDS.isdisjoint(re.split(r"[^a-z]+", name.lower()))


def shown_details(details: str) -> list[tuple[str, str]]:
    """An event's details as (field, value) lines: the state rows it seals as a count, and
    no field whose name says token, password, secret or PIN."""
    try:
        data = json.loads(details)
    except ValueError:
        return [("?", details)]
    if not isinstance(data, dict):
        return [("", str(data))]
    lines = []
    for name, value in sorted(data.items()):
        if _secret(name):
            continue
        if name == "rows" and isinstance(value, dict):
            lines.append((name, f"{len(value)} 行 (state rows sealed)"))
        elif isinstance(value, dict | list):
            clean = _without_secrets(value)
            lines.append((name, json.dumps(clean, ensure_ascii=False, sort_keys=True)))
        elif isinstance(value, bool):
            lines.append((name, "是" if value else "否"))
        else:
            lines.append((name, "" if value is None else str(value)))
    return lines


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_secrets(v) for k, v in value.items() if not _secret(str(k))}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


def api_paths(parameter: str, value: str) -> tuple[str, ...]:
    """The API paths that name ``value`` as ``parameter`` (``card_number``, ``id_number``):
    the subjects of the API's own events (``api.read``, ``api.call``) about it."""
    return tuple(
        sorted({path.format(**{parameter: value}) for _, path in ROUTE_ROLES
                if "{" + parameter + "}" in path})
    )  # fmt: skip


# --------------------------------------------------------------------- chain status


@dataclass(frozen=True)
class ChainStatus:
    head: AuditEvent | None
    checkpoint_event: int | None
    checkpoint_at: str | None  # local time
    full_at: str | None  # local time
    problems: list[str]  # of the checkpoint of verification itself


def chain_status(registry: Registry) -> ChainStatus:
    policy = registry.policy
    last, problems = registry.audit_checkpoint()
    return ChainStatus(
        head=audit_store.chain_head(registry.db),
        checkpoint_event=None if last is None else last.event,
        checkpoint_at=None if last is None else local_text(policy, last.at),
        full_at=None if last is None else local_text(policy, last.full_at),
        problems=problems,
    )


@router.get("/audit", response_class=HTMLResponse)
def audit_home(request: Request, user: User, run: int | None = None) -> Response:
    registry = console_state(request).registry()
    error = None
    try:
        chain = chain_status(registry)
    except RegistryError as exc:  # no audit key: the server was started without --hsm
        chain, error = None, str(exc)
    result = None
    found = None if run is None else audit_store.event(registry.db, run)
    if found is not None and found.action == "audit.verify":
        try:
            outcome = json.loads(found.details)
        except ValueError:  # an event edited behind sscard's back: verification says so
            outcome = None
        if isinstance(outcome, dict):
            result = {"event": found, "at": local_text(registry.policy, found.at), **outcome}
    return render(
        request, "audit/status.html", user, chain=chain, error=error, result=result,
        reasons=FULL_REASONS, local=lambda at: local_text(registry.policy, at),
    )  # fmt: skip


@router.post("/audit/verify")
def verify(request: Request, user: User, full: Annotated[bool, Form()] = False) -> Response:
    """``sscard audit verify [--full]`` from the console: the same ``check_audit``, outside
    the process's queue of writers (a full walk reads a snapshot while writers go on); its
    outcome is the audit event ``audit.verify``, which the page then shows."""
    state = console_state(request)
    try:
        result = state.registry().check_audit(full=full)
        details = asdict(result)  # "rows" names the rows an event seals: not a count
        details["state_rows"] = details.pop("rows")
        with state.transaction() as registry:
            event = registry.audit(user.name, "audit.verify", "registry", details)
    except RegistryError as exc:
        audit_refusal(state.registry(), user.name, "/audit/verify", str(exc))
        return redirect("/audit", error=str(exc))
    if result.problems:
        return redirect(
            f"/audit?run={event}",
            error=f"审计链已损坏：发现 {len(result.problems)} 处问题 "
            f"(the audit chain is BROKEN: {len(result.problems)} problem(s) found)",
        )
    return redirect(
        f"/audit?run={event}",
        ok=f"审计链完整：核验 {result.events} 个事件、{result.rows} 行状态，至事件 {result.head} "
        f"(the audit chain is intact)",
    )


# --------------------------------------------------------------------- event search


@dataclass(frozen=True)
class SearchForm:
    """The search as typed (kept in the form and the next page's link)."""

    card: str = ""
    person: str = ""
    operator: str = ""
    since: str = ""
    until: str = ""

    def filled(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v}

    def search(self, registry: Registry) -> EventSearch:
        """What the store looks for; a card or person the registry does not know is a
        refusal that says so."""
        subjects: tuple[str, ...] | None = None
        if self.card:
            found = audit_store.card_subjects(registry.db, self.card)
            if found is None:
                raise RegistryError(f"卡号 {self.card} 不在登记库中 (unknown card number)")
            subjects = (*found, *api_paths("card_number", self.card))
        if self.person:
            mine = audit_store.person_subjects(registry.db, self.person)
            if mine is None:
                raise RegistryError(
                    f"社会保障号码 {self.person} 不在登记库中 (no person with this ID number)"
                )
            numbers = dict.fromkeys(
                (self.person, *(audit_store.person_numbers(registry.db, self.person) or ()))
            )  # every number the person had: an API path may name any of them
            mine = (*mine, *(p for n in numbers for p in api_paths("id_number", n)))
            subjects = mine if subjects is None else tuple(s for s in subjects if s in mine)
        policy = registry.policy
        return EventSearch(
            subjects=subjects,
            operator=self.operator or None,
            since=utc_text(policy, self.since, "起始时间") if self.since else None,
            until=utc_text(policy, self.until, "截止时间") if self.until else None,
        )


@router.get("/audit/events", response_class=HTMLResponse)
def events(
    request: Request,
    user: User,
    card: str = "",
    person: str = "",
    operator: str = "",
    since: str = "",
    until: str = "",
    before: int | None = None,
) -> Response:
    form = SearchForm(*(v.strip()[:64] for v in (card, person, operator, since, until)))
    registry = console_state(request).registry()
    error, found, more = None, [], None
    try:
        search = form.search(registry)
        after = None if before is None else audit_store.event(registry.db, before)
        page = audit_store.event_page(registry.db, search, before=after, limit=PAGE_SIZE + 1)
        found = page[:PAGE_SIZE]
        if len(page) > PAGE_SIZE:
            more = urlencode({**form.filled(), "before": found[-1].id})
    except RegistryError as exc:
        error = str(exc)
    rows = [
        {
            "event": e,
            "at": local_text(registry.policy, e.at),
            "details": shown_details(e.details),
        }
        for e in found
    ]
    return render(
        request, "audit/events.html", user, form=form, rows=rows, error=error, more=more,
        first=before is None, zone=registry.policy.time_zone,
    )  # fmt: skip


# --------------------------------------------------------------------- outbox (回盘)


@router.get("/audit/outbox", response_class=HTMLResponse)
def outbox(request: Request, user: User) -> Response:
    registry = console_state(request).registry()
    return render(
        request, "audit/outbox.html", user, total=registry.outbox.event_count(),
        destinations=registry.outbox.destination_status(),
        local=lambda at: local_text(registry.policy, at),
    )  # fmt: skip


@router.post("/audit/outbox/retry")
def retry(
    request: Request,
    user: User,
    seq: Annotated[int, Form(ge=1)],
    destination: Annotated[str, Form(max_length=64)],
) -> Response:
    """A supervisor's ``sscard outbox retry SEQ --destination NAME``: the same workflow (the
    card center has no auditor's page; it keeps the CLI)."""

    def work(registry: Registry) -> str:
        event, names = requeue_failed(registry, user.name, str(seq), destination)
        return f"回盘事件 {event.seq} 已重新排队：{', '.join(names)} (re-queued)"

    return act(console_state(request), user, work, back="/audit/outbox")
