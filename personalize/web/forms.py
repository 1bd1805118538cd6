"""A console form's change: one write transaction of the registry's own workflow, then
Post/Redirect/Get with its outcome (docs/console.md "Forms"). A refusal of the rules is shown
to the operator as the workflow words it — nothing of the form's change is written — and is
an audit event of its own."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.responses import Response

from personalize.api.access import ApiState
from personalize.jobs import JobError
from personalize.operators import Operator, OperatorError, authenticate, confirm
from personalize.registry import Registry, RegistryError
from personalize.web.access import ConsoleUser, audit_refusal
from personalize.web.pages import redirect
from sscard.errors import InvalidData

REFUSALS = (RegistryError, OperatorError, JobError, InvalidData, ValueError)


def act(
    state: ApiState,
    user: ConsoleUser,
    work: Callable[[Registry], str],
    *,
    back: str,
    done: str | None = None,
) -> Response:
    """Run ``work`` (which returns the Chinese line telling what was done) in one write
    transaction; back to ``back`` on a refusal, to ``done`` (default ``back``) on success."""
    try:
        with state.transaction() as registry:
            message = work(registry)
    except REFUSALS as exc:
        audit_refusal(state.registry(), user.name, back, str(exc))
        return redirect(back, error=str(exc))
    return redirect(done or back, ok=message)


def second_operator(
    state: ApiState, user: ConsoleUser, name: str, password: str, action: str
) -> Operator:
    """Dual control on a form: the second operator who typed their ``name`` and ``password``
    beside ``user``, checked (``operators.authenticate`` and ``confirm``: the slow scrypt
    before the write lock, a refusal audited by itself) before the change's transaction,
    which records them; ``OperatorError`` when refused."""
    registry = state.registry()
    other = authenticate(registry, name, password, purpose=action)
    return confirm(registry, user.operator, other, action)
