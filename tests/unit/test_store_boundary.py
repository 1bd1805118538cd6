"""The store layer's boundary (issue 13, Deliver 1; docs/architecture.md "The store layer"):
SQL is run, and the database drivers imported, only by the store modules; workflows, CLI and
demo call repository methods. The repositories' public methods hand out typed domain objects
(dataclasses, enums), never database rows."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import types
import typing
from pathlib import Path

import pytest

from personalize.job_store import JobStore
from personalize.outbox_store import OutboxStore
from personalize.registry import Registry
from personalize.stock_store import StockStore

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("apdu", "sscard", "hsm_stub", "printer", "personalize", "simulator")

# The store modules: the connection layer, and one repository per aggregate.
STORE_MODULES = {
    "personalize/database.py",  # connections, SQLite and PostgreSQL, Row
    "personalize/registry.py",  # persons, cards, requests, blacklist, audit events, schema
    "personalize/job_store.py",  # jobs, job_steps, job_photos
    "personalize/operators.py",  # operators and their sessions
    "personalize/auditverify.py",  # audit checkpoints and verification
    "personalize/seed.py",  # bulk load of synthetic persons and cards
    "personalize/outbox_store.py",  # outbox events (回盘) and their destinations
    "personalize/api_store.py",  # the HTTP API: clients, idempotency, 查询密码, the feed
    "personalize/stock_store.py",  # the card stock ledger and the jobs' counts it is checked by
    "personalize/counter_store.py",  # the console counter: persons by name, requests, 验卡单
    "personalize/audit_store.py",  # the auditor's search of the audit chain
    "personalize/fee_store.py",  # fee settlements (工本费 paid or waived) and the fees owed
    "personalize/balance_store.py",  # the medical-account balance transfers
    "personalize/change_store.py",  # 换领: identity changes, the person's record changed
}
SQL_CALLS = {"execute", "executemany", "executescript"}
DRIVERS = {"sqlite3", "psycopg"}

# The query methods the workflows read from, and the domain object each returns.
QUERIES = {
    (Registry, "card"): "Card",
    (Registry, "card_by_id"): "Card",
    (Registry, "person"): "Person",
    (Registry, "person_by_ssn"): "Person",
    (Registry, "request"): "ReissueRequest",
    (Registry, "open_request"): "ReissueRequest",
    (Registry, "request_reissue"): "ReissueRequest",
    (Registry, "history"): "HistoryEntry",
    (Registry, "office_report"): "OfficeReport",
    (Registry, "card_page"): "ListedCard",
    (Registry, "add_office_report"): "OfficeReport",
    (Registry, "job"): "Job",
    (Registry, "check_fence"): "Job",
    (JobStore, "get"): "Job",
    (JobStore, "summary"): "JobSummary",
    (JobStore, "page"): "JobSummary",
    (JobStore, "steps"): "JobStep",
    (JobStore, "last_step"): "JobStep",
    (JobStore, "in_range"): "Job",
    (JobStore, "repeated_steps"): "RepeatedStep",
    (JobStore, "step_spans"): "StepSpan",
    (JobStore, "latest"): "JobSummary",
    (JobStore, "stations"): "StationSeen",
    (JobStore, "written_off"): "WrittenOff",
    (OutboxStore, "record"): "OutboxEvent",
    (OutboxStore, "event"): "OutboxEvent",
    (OutboxStore, "events_after"): "OutboxEvent",
    (OutboxStore, "destination"): "Destination",
    (OutboxStore, "entries"): "OutboxEntry",
    (Registry, "record_stock"): "StockMove",
    (StockStore, "add"): "StockMove",
    (StockStore, "sums"): "MoveSum",
    (StockStore, "moves"): "StockMove",
    (StockStore, "job_counts"): "JobCount",
    (OutboxStore, "destination_status"): "DestinationStatus",
}


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _trespasses(path: Path) -> list[str]:
    """Where ``path`` runs SQL or imports a database driver: ``line: what``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in SQL_CALLS:
                found.append(f"{node.lineno}: .{node.func.attr}(")
        elif isinstance(node, ast.Import):
            found += [
                f"{node.lineno}: import {a.name}"
                for a in node.names
                if a.name.split(".")[0] in DRIVERS
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in DRIVERS:
            found.append(f"{node.lineno}: from {node.module} import")
    return found


def test_only_the_store_modules_run_sql_or_import_a_driver() -> None:
    outside = {
        str(path.relative_to(ROOT)): where
        for path in _sources()
        if str(path.relative_to(ROOT)) not in STORE_MODULES and (where := _trespasses(path))
    }
    assert outside == {}


def test_the_boundary_check_sees_sql_and_drivers(tmp_path: Path) -> None:
    """The check itself can fail: a workflow with a query and a driver import is caught."""
    workflow = tmp_path / "workflow.py"
    workflow.write_text(
        "import sqlite3\nfrom psycopg import sql\n"
        "def f(registry):\n    registry.db.execute('SELECT 1')\n",
        encoding="utf-8",
    )
    assert _trespasses(workflow) == ["1: import sqlite3", "2: from psycopg import", "4: .execute("]


def _leaves(hint: object) -> set[object]:
    """Every type named in a type hint, through ``X | None``, ``list[X]``, ``tuple[...]``."""
    args = typing.get_args(hint)
    if args or isinstance(hint, types.UnionType):
        return set().union(*(_leaves(a) for a in args))
    return {hint}


def _returns(cls: type, name: str) -> set[object]:
    return _leaves(typing.get_type_hints(getattr(cls, name))["return"])


@pytest.mark.parametrize(
    ("cls", "name"), list(QUERIES), ids=[f"{c.__name__}.{n}" for c, n in QUERIES]
)
def test_a_query_returns_its_frozen_dataclass(cls: type, name: str) -> None:
    (returned,) = [
        t for t in _returns(cls, name) if getattr(t, "__name__", "") == QUERIES[cls, name]
    ]
    assert isinstance(returned, type) and dataclasses.is_dataclass(returned)
    assert returned.__dataclass_params__.frozen


@pytest.mark.parametrize(
    "cls", [Registry, JobStore, OutboxStore, StockStore], ids=lambda c: c.__name__
)
def test_no_public_method_hands_out_a_row(cls: type) -> None:
    """Read as written (some hints name types imported only for type checking)."""
    rows = [
        name
        for name, method in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
        and re.search(r"\bRow\b", str(inspect.get_annotations(method).get("return")))
    ]
    assert rows == []
