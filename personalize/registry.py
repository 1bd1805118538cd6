"""The card registry: persons, cards, status history, blacklist, reissue requests, jobs and a
hash-chained audit log, in one SQLite file (WAL) or a PostgreSQL database
(:mod:`personalize.database`), with schema migrations.

Statuses and transitions follow docs/business-rules.md. **At most one valid card per person** is a
database constraint: a partial unique index over the statuses in which a card is the
person's card (``VALID``). A new card is made in ``personalizing`` (not valid); activating it
voids the old one, blacklists the old identifiers and writes the audit event in one
transaction. Every transition is an audit event — who, when, why, evidence; each event's
hash is an HMAC by the security module's audit key over the event and the previous hash, every
state row carries the id of the event that explains it, and each transaction's head is
checkpointed outside the database (:mod:`personalize.auditlog`), so ``verify_audit`` finds an
edit, a deletion, a truncation, a recomputed chain and a row changed behind its back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from personalize.auditlog import (
    AuditKey,
    Checkpoint,
    CheckpointLog,
    PendingCheckpoint,
    Verification,
    event_mac,
)
from personalize.balance_store import AUDITED as BALANCE_AUDITED
from personalize.balance_store import MIGRATION as BALANCE_MIGRATION
from personalize.balance_store import BalanceStore
from personalize.change_store import AUDITED as CHANGE_AUDITED
from personalize.change_store import MIGRATION as CHANGE_MIGRATION
from personalize.change_store import ChangeStore, IdentityChange
from personalize.database import (
    BusyError,
    Database,
    DatabaseError,
    IntegrityError,
    Migration,
    MissingDatabase,
    Row,
    checkpoint_default,
    display,
    is_url,
    open_database,
)
from personalize.fee_store import AUDITED as FEE_AUDITED
from personalize.fee_store import MIGRATION as FEE_MIGRATION
from personalize.identity_change import ChangeCertificate, ChangeRefused, check_change
from personalize.job_store import Job, JobStore, StepResult
from personalize.lifecycle import (
    ACTIONS,
    VALID_CARD_STATUSES,
    CardStatus,
    JobStatus,
    RequestStatus,
    Subject,
    Transition,
    TransitionRefused,
    lookup,
)
from personalize.medical_balance import BalanceTransfer, TransferStatus, fen_of_yuan, yuan_text
from personalize.outbox_store import MIGRATION as OUTBOX_MIGRATION
from personalize.outbox_store import OutboxStore
from personalize.policy import RegionPolicy
from personalize.registry_records import (
    HistoryEntry,
    OfficeReport,
    Person,
    ReissueRequest,
    history_entry_of,
    office_report_of,
    person_of,
    request_of,
)
from personalize.roles import ApiRole, Role
from personalize.stock_store import MIGRATION as STOCK_MIGRATION
from personalize.stock_store import MoveKind, StockMove, StockStore
from personalize.validity import CardValidity, card_validity, check_issue_date
from sscard.errors import InvalidData
from sscard.identifiers import canonical_ssn, card_number_check, validate_card_number, validate_ssn
from sscard.records import HolderData

if TYPE_CHECKING:
    from personalize.auditverify import AuditVerification

VALID = tuple(str(s) for s in VALID_CARD_STATUSES)
STATUS_NAMES = {str(s): s.label for s in CardStatus}


def rebuilt_on_sqlite(script: str, *, rebuild: str, rebuilt: str, postgresql: str) -> Migration:
    """A migration whose SQLite table rebuild (from the statement starting ``rebuild`` up to
    the one starting ``rebuilt``) is, on PostgreSQL, the statements ``postgresql``; the rest
    is shared."""
    start, end = script.index(rebuild), script.index(rebuilt)
    return Migration(script, postgresql=script[:start] + postgresql + "\n    " + script[end:])


MIGRATIONS: list[str] = [
    # 1: the initial schema
    f"""
    CREATE TABLE persons (
        id INTEGER PRIMARY KEY,
        ssn TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        gender TEXT NOT NULL,
        ethnicity TEXT NOT NULL,
        birthplace TEXT NOT NULL,
        birth_date TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE cards (
        id INTEGER PRIMARY KEY,
        person_id INTEGER NOT NULL REFERENCES persons(id),
        card_number TEXT NOT NULL UNIQUE,
        sn TEXT,
        card_id TEXT,
        region TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ({", ".join(f"'{s}'" for s in STATUS_NAMES)})),
        status_since TEXT NOT NULL,
        lapse_at TEXT,
        issued_on TEXT,
        job_id INTEGER,
        created_at TEXT NOT NULL
    );
    CREATE UNIQUE INDEX one_valid_card_per_person ON cards(person_id)
        WHERE status IN ({", ".join(f"'{s}'" for s in VALID)});
    CREATE TABLE status_history (
        id INTEGER PRIMARY KEY,
        card_id INTEGER NOT NULL REFERENCES cards(id),
        from_status TEXT,
        to_status TEXT NOT NULL,
        at TEXT NOT NULL,
        operator TEXT NOT NULL,
        reason TEXT NOT NULL,
        evidence TEXT
    );
    CREATE TABLE blacklist (
        id INTEGER PRIMARY KEY,
        card_number TEXT NOT NULL UNIQUE,
        sn TEXT,
        card_id TEXT,
        reason TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE TABLE reissue_requests (
        id INTEGER PRIMARY KEY,
        person_id INTEGER NOT NULL REFERENCES persons(id),
        old_card_id INTEGER NOT NULL REFERENCES cards(id),
        kind TEXT NOT NULL CHECK (kind IN ('reissue', 'replacement')),
        applied_on TEXT NOT NULL,
        collect_on TEXT NOT NULL,
        place TEXT NOT NULL,
        fee INTEGER NOT NULL,
        operator TEXT NOT NULL,
        counter TEXT,
        job_id INTEGER
    );
    CREATE TABLE card_numbers (
        prefix TEXT PRIMARY KEY,
        next INTEGER NOT NULL
    );
    CREATE TABLE audit_events (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        operator TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        details TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    """,
    # 2: personalization jobs and their step log
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        request_id INTEGER NOT NULL UNIQUE REFERENCES reissue_requests(id),
        person_id INTEGER NOT NULL REFERENCES persons(id),
        old_card_id INTEGER NOT NULL REFERENCES cards(id),
        new_card_id INTEGER REFERENCES cards(id),
        holder TEXT NOT NULL,
        photo BLOB NOT NULL,
        tracks BLOB,
        status TEXT NOT NULL CHECK (status IN
            ('queued', 'running', 'paused', 'done', 'failed', 'cancelled')),
        step TEXT,
        sn TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        station TEXT,
        lease_until TEXT,
        last_error TEXT,
        operator TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE job_steps (
        id INTEGER PRIMARY KEY,
        job_id INTEGER NOT NULL REFERENCES jobs(id),
        step TEXT NOT NULL,
        result TEXT NOT NULL,
        sn TEXT,
        at TEXT NOT NULL,
        details TEXT NOT NULL
    );
    """,
    # 3: issuer track images per card (sealed), for re-encoding at a street office
    """
    CREATE TABLE card_tracks (
        card_id INTEGER PRIMARY KEY REFERENCES cards(id),
        sealed BLOB NOT NULL,
        source TEXT NOT NULL,
        at TEXT NOT NULL
    );
    """,
    # 4: reissue requests get a status (open again when their job is cancelled or fails) and
    # the agent who applied; a request may have several jobs over time (at most one live).
    # SQLite rebuilds ``jobs`` to drop request_id's UNIQUE; PostgreSQL drops the constraint
    # in place (a rebuild would lose job_steps' foreign key): same columns, same index
    rebuilt_on_sqlite(
        """
    ALTER TABLE reissue_requests ADD COLUMN status TEXT NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'in_job', 'done'));
    ALTER TABLE reissue_requests ADD COLUMN agent TEXT;
    UPDATE reissue_requests SET status = CASE
        WHEN job_id IS NULL THEN 'open'
        WHEN (SELECT status FROM jobs WHERE jobs.id = reissue_requests.job_id) = 'done'
            THEN 'done'
        WHEN (SELECT status FROM jobs WHERE jobs.id = reissue_requests.job_id)
            IN ('cancelled', 'failed') THEN 'open'
        ELSE 'in_job' END;
    UPDATE cards SET status = 'rejected' WHERE status = 'personalizing'
        AND job_id IN (SELECT id FROM jobs WHERE status IN ('cancelled', 'failed'));
    CREATE TABLE jobs_new (
        id INTEGER PRIMARY KEY,
        request_id INTEGER NOT NULL REFERENCES reissue_requests(id),
        person_id INTEGER NOT NULL REFERENCES persons(id),
        old_card_id INTEGER NOT NULL REFERENCES cards(id),
        new_card_id INTEGER REFERENCES cards(id),
        holder TEXT NOT NULL,
        photo BLOB NOT NULL,
        tracks BLOB,
        status TEXT NOT NULL CHECK (status IN
            ('queued', 'running', 'paused', 'done', 'failed', 'cancelled')),
        step TEXT,
        sn TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        station TEXT,
        lease_until TEXT,
        last_error TEXT,
        operator TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    INSERT INTO jobs_new SELECT * FROM jobs;
    DROP TABLE jobs;
    ALTER TABLE jobs_new RENAME TO jobs;
    CREATE UNIQUE INDEX one_live_job_per_request ON jobs(request_id)
        WHERE status NOT IN ('done', 'failed', 'cancelled');
    """,
        rebuild="CREATE TABLE jobs_new",
        rebuilt="CREATE UNIQUE INDEX one_live_job_per_request",
        postgresql="ALTER TABLE jobs DROP CONSTRAINT jobs_request_id_key;",
    ),
    # 5: 验卡单 (office verification reports): what each said, to be reprinted (补打)
    """
    CREATE TABLE office_reports (
        id INTEGER PRIMARY KEY,
        report_no TEXT UNIQUE,
        card_number TEXT,
        request_id INTEGER REFERENCES reissue_requests(id),
        at TEXT NOT NULL,
        operator TEXT NOT NULL,
        data TEXT NOT NULL
    );
    """,
    # 6: at most one unfinished (open or in a job) reissue/replacement request per card — the
    # invariant request_reissue keeps under its write lock, said by the database as well
    """
    CREATE UNIQUE INDEX one_unfinished_request_per_card ON reissue_requests(old_card_id)
        WHERE status IN ('open', 'in_job');
    """,
    # 7: operator accounts (scrypt password hashes, roles) and their login sessions, of
    # which only the token's SHA-256 is kept (personalize/operators.py)
    f"""
    CREATE TABLE operators (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ({", ".join(f"'{r}'" for r in Role)})),
        password_hash TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
        created_at TEXT NOT NULL,
        created_by TEXT
    );
    CREATE TABLE operator_sessions (
        id INTEGER PRIMARY KEY,
        operator_id INTEGER NOT NULL REFERENCES operators(id),
        token_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        ended_at TEXT
    );
    """,
    # 8: fencing tokens — each claim of a job increments ``fence``, and every write of the
    # job (step records, card updates, activation) carries and checks it; step records keep
    # the token they were written under, and ``intent`` rows mark a step begun (issue 11)
    """
    ALTER TABLE jobs ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE job_steps ADD COLUMN fence INTEGER;
    CREATE INDEX job_steps_by_job_sn ON job_steps(job_id, sn, step);
    """,
]

# Each state table's row carries the audit event that explains its current state; the columns
# an audit event's row digest covers (docs/service.md "Audit"). A column added later is not
# covered until it is listed here (and the rows adopted again).
AUDITED_COLUMNS: dict[str, tuple[str, ...]] = {
    "persons": ("ssn", "name", "gender", "ethnicity", "birthplace", "birth_date"),
    "cards": (
        "person_id",
        "card_number",
        "sn",
        "card_id",
        "region",
        "status",
        "status_since",
        "lapse_at",
        "issued_on",
        "job_id",
    ),
    "status_history": (
        "card_id",
        "from_status",
        "to_status",
        "at",
        "operator",
        "reason",
        "evidence",
    ),
    "blacklist": ("card_number", "sn", "card_id", "reason", "at"),
    "reissue_requests": (
        "person_id",
        "old_card_id",
        "kind",
        "applied_on",
        "collect_on",
        "place",
        "fee",
        "operator",
        "counter",
        "job_id",
        "status",
        "agent",
    ),
    "jobs": (
        "request_id",
        "person_id",
        "old_card_id",
        "new_card_id",
        "holder",
        "photo",
        "tracks",
        "status",
        "step",
        "sn",
        "attempts",
        "station",
        "lease_until",
        "last_error",
        "operator",
    ),
}

# The keyed audit: every state row names its audit event; events before this migration keep
# their unkeyed SHA-256 hashes (``audit_meta.legacy_events``) and the rows present then are
# adopted by one keyed event (``Registry._adopt_rows``).
AUDIT_MIGRATION = (
    "".join(f"ALTER TABLE {t} ADD COLUMN audit_event_id INTEGER;\n" for t in AUDITED_COLUMNS)
    + """
    CREATE TABLE audit_meta (legacy_events INTEGER NOT NULL);
    INSERT INTO audit_meta SELECT COALESCE(MAX(id), 0) FROM audit_events;
    """
)
MIGRATIONS.append(AUDIT_MIGRATION)  # 9
MIGRATIONS.append(  # stations that pull work (issue 13, personalize/station_worker.py)
    """
    ALTER TABLE jobs ADD COLUMN heartbeat_at TEXT;
    CREATE INDEX jobs_claim_expired ON jobs(status, lease_until);
    CREATE INDEX jobs_claim_own ON jobs(status, station);
    """
)

# Checkpoints of verification (审计核验检查点): where ``audit verify`` last found the chain
# sound, chained and MACed (``personalize.auditlog.Verification``); and each state table's
# rows by their audit event, so the rows changed since are found by an index, not a scan.
VERIFICATION_MIGRATION = """
    CREATE TABLE audit_verifications (
        id INTEGER PRIMARY KEY,
        event BIGINT NOT NULL,
        hash TEXT NOT NULL,
        at TEXT NOT NULL,
        full_at TEXT NOT NULL,
        log_offset BIGINT NOT NULL,
        log_lines BIGINT NOT NULL,
        prev_mac TEXT NOT NULL,
        mac TEXT NOT NULL
    );
    """ + "".join(
    f"CREATE INDEX {t}_by_audit_event ON {t}(audit_event_id);\n" for t in AUDITED_COLUMNS
)
MIGRATIONS.append(VERIFICATION_MIGRATION)

# An index for every lookup path (issue 13, "O(log n)"): a card's other cards, its history,
# its open request and live job, an SN anywhere, a job's new card, the list pages by status
# (keyset on id) and the provisional losses by deadline (``lapse_expired``, the sweep).
MIGRATIONS.append(
    """
    CREATE INDEX cards_by_person ON cards(person_id);
    CREATE INDEX cards_by_status ON cards(status, id);
    CREATE INDEX cards_by_sn ON cards(sn);
    CREATE INDEX provisional_losses_by_deadline ON cards(lapse_at)
        WHERE status = 'provisional_loss';
    CREATE INDEX status_history_by_card ON status_history(card_id);
    CREATE INDEX blacklist_by_sn ON blacklist(sn);
    CREATE INDEX requests_by_old_card ON reissue_requests(old_card_id, status);
    CREATE INDEX jobs_by_old_card ON jobs(old_card_id, status);
    CREATE INDEX jobs_by_new_card ON jobs(new_card_id);
    CREATE INDEX jobs_by_status ON jobs(status, id);
    CREATE INDEX job_steps_by_sn ON job_steps(sn);
    CREATE INDEX office_reports_by_card ON office_reports(card_number);
    """
)

# A job's photo (by far its biggest value) in a table of its own, out of the job rows that
# lists, claims and every step read; the job row's audit digest still covers it
# (``audited_rows``), so a photo changed outside sscard is found as the job row changed.
PHOTO_MIGRATION = """
    CREATE TABLE job_photos (
        job_id INTEGER PRIMARY KEY REFERENCES jobs(id),
        photo BLOB NOT NULL
    );
    INSERT INTO job_photos (job_id, photo) SELECT id, photo FROM jobs;
    ALTER TABLE jobs DROP COLUMN photo;
"""
MIGRATIONS.append(PHOTO_MIGRATION)
JOBS_WITH_PHOTOS = (
    "(SELECT jobs.*, job_photos.photo FROM jobs"
    " LEFT JOIN job_photos ON job_photos.job_id = jobs.id) AS jobs"
)

# When each step began and ended, to the millisecond (``at`` keeps its seconds): the step
# times ``sscard sim center`` reports (simulator/center_checks.py). Rows written before have
# none.
MIGRATIONS.append(
    """
    ALTER TABLE job_steps ADD COLUMN started_at TEXT;
    ALTER TABLE job_steps ADD COLUMN ended_at TEXT;
    """
)

# The outbox (回盘, issue 15): each activation, void, freeze and unfreeze of a card is an
# event written in the transaction of the change, delivered to the card-management system
# and the bank by ``sscard outbox dispatch`` (personalize/outbox_store.py, docs/outbox.md).
MIGRATIONS.append(OUTBOX_MIGRATION)

# The HTTP API (issue 15, docs/api.md; personalize/api_store.py): its clients, of which only
# the token's SHA-256 is kept; each client's POST responses by Idempotency-Key, written in
# the transaction of their effect; the holders' 查询密码 (a scrypt hash, per person) and the
# failed attempts at it, counted per person and per client for the lockout.
API_MIGRATION = f"""
    CREATE TABLE api_clients (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ({", ".join(f"'{r}'" for r in ApiRole)})),
        token_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE TABLE api_idempotency (
        client_id INTEGER NOT NULL REFERENCES api_clients(id),
        idem_key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        status INTEGER NOT NULL,
        response TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (client_id, idem_key)
    );
    CREATE TABLE query_passwords (
        person_id INTEGER PRIMARY KEY REFERENCES persons(id),
        password_hash TEXT NOT NULL,
        set_at TEXT NOT NULL,
        set_by TEXT NOT NULL
    );
    CREATE TABLE query_password_failures (
        id INTEGER PRIMARY KEY,
        person_id INTEGER REFERENCES persons(id),
        client_id INTEGER NOT NULL REFERENCES api_clients(id),
        at TEXT NOT NULL
    );
    CREATE INDEX query_password_failures_by_person ON query_password_failures(person_id, at);
    CREATE INDEX query_password_failures_by_client ON query_password_failures(client_id, at);
"""
MIGRATIONS.append(API_MIGRATION)

# The card stock ledger (库存, issue 16; personalize/stock_store.py, docs/business-rules.md
# "Card stock"): blank cards received, personalized, rejected and taken as test cards, per
# station, each movement written in the transaction of what it records.
MIGRATIONS.append(STOCK_MIGRATION)
# the counter finds a person by name (issue 16, personalize/counter_store.py)
MIGRATIONS.append("CREATE INDEX persons_by_name ON persons(name);")
# The auditor's search of the audit chain (issue 16, personalize/audit_store.py): events by
# subject, by operator and by time, each newest first on (at, id) — the keyset of its pages.
MIGRATIONS.append(
    """
    CREATE INDEX audit_events_by_at ON audit_events(at, id);
    CREATE INDEX audit_events_by_subject ON audit_events(subject, at, id);
    CREATE INDEX audit_events_by_operator ON audit_events(operator, at, id);
    """
)
# The initial-PIN mark (issue 17; docs/business-rules.md "PINs", 珠海: "医保账户初始密码不能
# 消费…初次领卡后应及时修改初始密码"), one row per card whose PIN state the registry knows:
# 1 while the card holds the policy's default PIN — set when a job activates the card,
# cleared by a PIN change the card answered 9000 to, set again by a reset to the default
# PIN. A card without a row (every card before this migration, an enrolled card) is not
# known, never guessed. Its rows are audited like every state row (a mark set behind
# sscard's back would let a card with the initial PIN pay), from this migration on.
INITIAL_PIN_MIGRATION = """
    CREATE TABLE card_pin_marks (
        id INTEGER PRIMARY KEY,
        card_id INTEGER NOT NULL UNIQUE REFERENCES cards(id),
        initial_pin INTEGER NOT NULL CHECK (initial_pin IN (0, 1)),
        at TEXT NOT NULL,
        audit_event_id INTEGER
    );
    CREATE INDEX card_pin_marks_by_audit_event ON card_pin_marks(audit_event_id);
"""
MIGRATIONS.append(INITIAL_PIN_MIGRATION)
AUDITED_COLUMNS["card_pin_marks"] = ("card_id", "initial_pin", "at")
# The state tables made after the keyed audit, audited once the migration making them ran
# (a registry at an older schema — a test stepping it back — has none of them yet).
AUDITED_SINCE: dict[str, str] = {"card_pin_marks": INITIAL_PIN_MIGRATION}
# Fee settlements (工本费 paid with a receipt or waived under dual control, issue 17;
# personalize/fee_store.py, docs/business-rules.md "Fees and receipts"): audited state rows.
MIGRATIONS.append(FEE_MIGRATION)
AUDITED_COLUMNS["fee_settlements"] = FEE_AUDITED
AUDITED_SINCE["fee_settlements"] = FEE_MIGRATION
# The medical-account balance carried from a replaced card to its new card (issue 17;
# docs/business-rules.md "The medical-account balance", 莱西: "新卡激活以后,原卡将自动废止,
# 医疗保险个人帐户金有余额的,自动转入"): one row per request, written by the business
# system's report and by the activation's transaction (personalize/balance_store.py), audited.
MIGRATIONS.append(BALANCE_MIGRATION)
AUDITED_COLUMNS["balance_transfers"] = BALANCE_AUDITED
AUDITED_SINCE["balance_transfers"] = BALANCE_MIGRATION
# 换领 (identity data changed, issue 17; personalize/change_store.py, docs/business-rules.md
# "换领 (identity data changed)"): the request kind ``change`` and the change each such
# request was made on, applied to the person's record when the new card is activated.
MIGRATIONS.append(CHANGE_MIGRATION)
AUDITED_COLUMNS["identity_changes"] = CHANGE_AUDITED
AUDITED_SINCE["identity_changes"] = CHANGE_MIGRATION
# 撤销 (a request withdrawn while open, docs/business-rules.md "Withdrawing a request (撤销)";
# personalize/withdrawal.py): the request status ``withdrawn``. SQLite cannot alter a CHECK
# constraint: the status column is replaced by one with the wider CHECK (values copied), its
# two indexes dropped and made again; PostgreSQL swaps the named constraint in place. The
# withdrawal's time (``withdrawn_at``, UTC) keeps a past day's fee report as it was: the fee
# was outstanding until the request was withdrawn.
WITHDRAW_MIGRATION = Migration(
    """
    DROP INDEX one_unfinished_request_per_card;
    DROP INDEX requests_by_old_card;
    ALTER TABLE reissue_requests ADD COLUMN status_wider TEXT NOT NULL DEFAULT 'open'
        CHECK (status_wider IN ('open', 'in_job', 'done', 'withdrawn'));
    UPDATE reissue_requests SET status_wider = status;
    ALTER TABLE reissue_requests DROP COLUMN status;
    ALTER TABLE reissue_requests RENAME COLUMN status_wider TO status;
    CREATE UNIQUE INDEX one_unfinished_request_per_card ON reissue_requests(old_card_id)
        WHERE status IN ('open', 'in_job');
    CREATE INDEX requests_by_old_card ON reissue_requests(old_card_id, status);
    ALTER TABLE reissue_requests ADD COLUMN withdrawn_at TEXT;
    """,
    postgresql="""
    ALTER TABLE reissue_requests DROP CONSTRAINT reissue_requests_status_check;
    ALTER TABLE reissue_requests ADD CONSTRAINT reissue_requests_status_check
        CHECK (status IN ('open', 'in_job', 'done', 'withdrawn'));
    ALTER TABLE reissue_requests ADD COLUMN withdrawn_at TEXT;
    """,
)
MIGRATIONS.append(WITHDRAW_MIGRATION)

# The steps that must be recorded ``ok`` for a card, in its job, after it was fed, before the
# registry activates it (docs/architecture.md "How a reissued card flows").
# The chip fields a job step may set on its new card (``Registry.set_card_chip``).
CARD_CHIP_FIELDS = ("sn", "card_id")
ACTIVATION_EVIDENCE = ("chip_write", "chip_verify", "encode_stripe", "stripe_verify", "print_face")

GENESIS = "0" * 64
Clock = Callable[[], datetime]


class RegistryError(Exception):
    """A transition the rules do not allow, or an unknown card/person."""


# The database's constraints (docs/service.md "Concurrency"), by what SQLite names in its
# "UNIQUE constraint failed: <table>.<column>" message, and the refusal an operator reads.
CONSTRAINT_REFUSALS: dict[str, tuple[str, str]] = {
    "reissue_requests.old_card_id": (
        "该卡已有未完成的补/换卡申请",
        "the card already has an unfinished reissue request",
    ),
    "jobs.request_id": ("该申请已有未结束的制卡作业", "the request already has a live job"),
    "cards.person_id": ("该持卡人已有有效卡", "the person already holds a valid card"),
    "cards.card_number": ("卡号已登记", "card number already enrolled"),
    "persons.ssn": ("该社会保障号码已登记", "a person with this ID number is enrolled"),
    "blacklist.card_number": ("卡号已在黑名单中", "the card number is already blacklisted"),
}


def constraint_refusal(exc: IntegrityError) -> tuple[str, str]:
    """(Chinese, English) for the invariant a constraint violation broke."""
    text = str(exc)
    for key, refusal in CONSTRAINT_REFUSALS.items():
        if key in text:
            return refusal
    return "登记库拒绝了这项更改", f"the registry refused the change: {text}"


BUSY = "登记库正忙，请稍后重试 (the registry is busy with another station's change; try again)"


def database_refusal(exc: DatabaseError) -> RegistryError:
    """The one place a database error (SQLite or PostgreSQL, mapped by
    :mod:`personalize.database`) becomes an operator's refusal: a constraint says which
    invariant a concurrent duplicate broke, a lock that outlasted the busy timeout says
    "busy" — never a raw ``IntegrityError`` or ``database is locked``."""
    if isinstance(exc, IntegrityError):
        chinese, english = constraint_refusal(exc)
        return RegistryError(f"{chinese} ({english})")
    if isinstance(exc, BusyError):
        return RegistryError(BUSY)
    return RegistryError(f"登记库数据库错误 (registry database error: {exc})")


class LeaseLost(RegistryError):
    """A station's fencing token is no longer its job's: another station claimed the job
    (or it ended), so this station may record nothing more and stops."""


def mask_id(ssn: str) -> str:
    """First 6 and last 4 characters shown: 110105********002X."""
    return ssn[:6] + "*" * (len(ssn) - 10) + ssn[-4:]


# What an agent shows (seed, line 18: "补卡时可委托他人办理，办理时需要出示委托人、被委托人的
# 身份证原件及复印件"; 南京: "应出具委托人的有效证件和被委托人的有效证件"), recorded unless the
# counter names other documents (e.g. 户口簿).
AGENT_DOCUMENTS = "委托人、被委托人身份证原件及复印件"


@dataclass(frozen=True)
class Agent:
    """Someone applying on the holder's behalf (委托代办): both ID cards are shown and copied
    (docs/business-rules.md "Agents (委托代办)"). ``documents``: what was shown, recorded on
    the request and printed on the 领卡证明 ("" on requests recorded before it was kept)."""

    name: str
    id_number: str
    documents: str = AGENT_DOCUMENTS

    def check(self) -> None:
        """Both IDs are checked (docs/business-rules.md "Agents (委托代办)"): the agent's name
        given, their ID number a valid GB 11643 number and the documents shown named
        (``InvalidData`` naming the agent)."""
        if not self.name.strip():
            raise InvalidData("代办人姓名不能为空 (the agent's name is empty)")
        try:
            validate_ssn(self.id_number)
        except InvalidData as exc:
            raise InvalidData(f"代办人证件号码：{exc}") from None
        if not self.documents.strip():
            raise InvalidData("须写明代办所验证件 (name the documents the agent showed)")

    def masked(self) -> str:
        """The agent as history, pages and answers show them: the ID number masked, and the
        documents they showed."""
        shown = f"（{self.documents}）" if self.documents else ""
        return f"{self.name} {mask_id(self.id_number)}{shown}"

    def as_text(self) -> str:
        return json.dumps(
            {"name": self.name, "id_number": self.id_number, "documents": self.documents},
            ensure_ascii=False,
        )

    @classmethod
    def from_text(cls, text: str | None) -> Agent | None:
        if not text:
            return None
        d = json.loads(text)
        return cls(str(d["name"]), str(d["id_number"]), str(d.get("documents", "")))


def utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _legacy_event_hash(
    prev: str, at: str, operator: str, action: str, subject: str, details: str
) -> str:
    """The unkeyed SHA-256 of events written before the keyed audit (migration 9)."""
    body = json.dumps([prev, at, operator, action, subject, details], ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def _event_hash(key: AuditKey, row: Row, prev: str) -> str:
    """The keyed hash of an audit event: HMAC (security module) over its id, the previous
    hash and its content — recomputing it needs the key, not only the database."""
    fields: list[object] = [row["id"], prev, row["at"], row["operator"], row["action"]]
    return event_mac(key, [*fields, row["subject"], row["details"]])


def _row_state(table: str, row: Row | Mapping[str, Any]) -> dict[str, str]:
    """What an audit event records of a state row: a digest of its audited columns, and its
    status in clear when it has one (so a difference can be named)."""
    values = [
        v.hex() if isinstance(v, bytes) else v for v in (row[c] for c in AUDITED_COLUMNS[table])
    ]
    body = json.dumps(values, ensure_ascii=False, sort_keys=True).encode()
    state = {"digest": hashlib.sha256(body).hexdigest()}
    if "status" in AUDITED_COLUMNS[table]:
        state["status"] = str(row["status"])
    return state


READ_ONLY = (
    "未配置审计密钥，登记库只读：请用 --hsm 或 $SSCARD_HSM 指定安全模块 "
    "(no audit key: the registry is read-only; name the security module with --hsm or "
    "$SSCARD_HSM, or the station's hsm/audit_hsm)"
)


@dataclass(frozen=True)
class Card:
    id: int
    person_id: int
    card_number: str
    sn: str | None
    card_id: str | None
    region: str
    status: str
    status_since: str
    lapse_at: str | None
    issued_on: str | None
    job_id: int | None


@dataclass(frozen=True)
class ListedCard:
    """A card of a ``registry list`` page (:meth:`Registry.card_page`), as of now, with its
    holder's name and ID number — which a listing shows masked."""

    card: Card
    holder_name: str
    holder_ssn: str


class Registry:
    def __init__(
        self,
        path: str | Path,
        policy: RegionPolicy,
        *,
        clock: Clock = utc_now,
        create: bool = True,
        audit_key: AuditKey | None = None,
        checkpoints: str | Path | None = None,
    ) -> None:
        """Open the registry at ``path`` — a SQLite file (or ``sqlite:///path``) or a
        ``postgresql://user@host:port/name`` URL (:func:`personalize.database.open_database`);
        with ``create=False`` only an existing SQLite database (``mode=rw``): a missing one is
        a RegistryError naming the path, never a new empty file. ``audit_key`` (the security
        module's ``audit_mac``) seals the audit chain: without it the registry is read-only.
        ``checkpoints`` is the checkpoint log (default
        :func:`personalize.database.checkpoint_default`: ``<db>.checkpoints`` beside a SQLite
        file, ``<host>-<port>-<name>.checkpoints`` in the current directory for a URL)."""
        self.path = str(path) if is_url(path) else Path(path)
        self.policy = policy
        self.clock = clock
        self.audit_key = audit_key
        self.checkpoints = CheckpointLog(
            checkpoints if checkpoints is not None else checkpoint_default(path)
        )
        try:
            self.db: Database = open_database(path, create=create)
        except MissingDatabase:
            where = display(path)
            raise RegistryError(
                f"登记库不存在：{where}；新建请用 sscard registry init --db {where} "
                "(no registry database at this path)"
            ) from None
        except DatabaseError as exc:
            raise RegistryError(
                f"无法打开登记库：{display(path)} (cannot open the registry database: {exc})"
            ) from None
        self._savepoints = 0
        self._first_pending: int | None = None  # this transaction's first audit event
        self.db.keep_touched()
        self.jobs = JobStore(self.db)  # the jobs repository on the same connection
        self.outbox = OutboxStore(self.db)  # the outbox (回盘) on the same connection
        self.stock = StockStore(self.db)  # the card stock ledger (库存) on the same connection
        self.balances = BalanceStore(self.db)  # medical-account balance transfers
        self.changes = ChangeStore(self.db)  # 换领's identity changes on the same connection
        self._migrate()
        self._watch_rows()
        # the outbox is written once its migration is applied: always, after ``_migrate``,
        # unless a test steps the schema back to an older code's
        self._outbox_ready = OUTBOX_MIGRATION in MIGRATIONS[: self.schema_version]

    def close(self) -> None:
        self.db.close()

    # ----------------------------------------------------------------- schema

    def _migrate(self) -> None:
        """Apply the migrations not yet applied, each in its own transaction, in the
        database's dialect (``Database.run_script``). On SQLite foreign keys are off meanwhile (a
        migration may rebuild a table others refer to — SQLite's documented ALTER
        procedure) and checked before each commit."""
        version = self.schema_version
        if version >= len(MIGRATIONS):
            return
        with self.db.foreign_keys_deferred():
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                with self.transaction():
                    if self.schema_version >= number:  # another process got there first
                        continue
                    self.db.run_script(script)
                    if self.db.foreign_key_violated():
                        raise RegistryError(f"migration {number} breaks a foreign key")
                    if script is AUDIT_MIGRATION:
                        self._adopt_rows()
                    self.db.set_schema_version(number)

    @property
    def schema_version(self) -> int:
        return self.db.schema_version()

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """One write transaction, or ROLLBACK on any exception: SQLite ``BEGIN IMMEDIATE``,
        PostgreSQL ``BEGIN`` + the writers' advisory lock (``Database.begin_write``) — the
        write lock is taken before the first read, so every check made inside
        (``card_for_update``) still holds at COMMIT: two stations' changes are serialized,
        the second waits (busy timeout) and then sees the first's result. Inside an open
        transaction it is a SAVEPOINT: the caller's transaction decides, so a registry change
        and the document it produces can succeed or fail together. Before COMMIT the
        transaction's audit events are sealed and its checkpoint MACed (``_seal``); after it
        the checkpoint is appended to the log. Database errors leave as ``RegistryError``
        (``database_refusal``)."""
        if self.db.in_transaction:
            try:
                with self._savepoint():
                    yield self.db
            except DatabaseError as exc:
                raise database_refusal(exc) from None
            return
        try:
            self.db.begin_write()
        except DatabaseError as exc:
            raise database_refusal(exc) from None
        self._first_pending = None
        checkpoint: PendingCheckpoint | None = None
        try:
            yield self.db
            checkpoint = self._seal()
            self.db.commit()
        except BaseException as exc:
            if checkpoint is not None:
                checkpoint.discard()
            self.db.rollback()  # also after a failed COMMIT
            if isinstance(exc, DatabaseError):
                raise database_refusal(exc) from None
            raise
        if checkpoint is not None:
            checkpoint.write()

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        self._savepoints += 1
        try:
            with self.db.savepoint(f"sp{self._savepoints}"):
                yield
        finally:
            self._savepoints -= 1

    # ----------------------------------------------------------------- audit

    def audit(self, operator: str, action: str, subject: str, details: dict[str, Any]) -> int:
        """Append an audit event (call inside the transaction it documents; outside one it
        is a transaction of its own). Its hash and the rows it explains are filled in when
        the transaction commits (``_seal``). Returns the event id."""
        if self.audit_key is None:
            raise RegistryError(READ_ONLY)
        if not self.db.in_transaction:
            with self.transaction():
                return self.audit(operator, action, subject, details)
        text = json.dumps(details, ensure_ascii=False, sort_keys=True)
        # the next id after the head, written under the writers' lock: the chain has no gap
        # where a transaction rolled back (a PostgreSQL sequence would leave one)
        event = self.db.insert(
            "INSERT INTO audit_events (id, at, operator, action, subject, details, prev_hash,"
            " hash) VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM audit_events),"
            " ?, ?, ?, ?, ?, '', '')",
            (_iso(self.clock()), operator, action, subject, text),
        )
        if self._first_pending is None:
            self._first_pending = event
        return event

    def _watch_rows(self) -> None:
        """Every state row this registry inserts, updates or deletes is noted for the seal
        (``Database.watch``: SQLite TEMP triggers of this connection; PostgreSQL triggers
        keyed by transaction); a change made by anyone else is not sealed and shows up in
        ``verify_audit`` as a row its audit event does not explain. A job's photo, in
        ``job_photos`` once ``PHOTO_MIGRATION`` is applied, is part of its job's row."""
        photos_apart = self._photos_apart()
        self.db.watch(
            {
                table: tuple(c for c in columns if not (photos_apart and c == "photo"))
                for table, columns in self.audited_columns().items()
            },
            parts={"job_photos": ("jobs", "job_id")} if photos_apart else {},
        )

    def audited_columns(self) -> dict[str, tuple[str, ...]]:
        """:data:`AUDITED_COLUMNS` of the state tables this registry's schema has
        (:data:`AUDITED_SINCE`)."""
        applied = MIGRATIONS[: self.schema_version]
        return {
            table: columns
            for table, columns in AUDITED_COLUMNS.items()
            if table not in AUDITED_SINCE or AUDITED_SINCE[table] in applied
        }

    def _photos_apart(self) -> bool:
        """The schema keeps job photos in ``job_photos`` (``PHOTO_MIGRATION`` applied)."""
        return PHOTO_MIGRATION in MIGRATIONS[: self.schema_version]

    def audited_rows(self, table: str) -> str:
        """Where the audited columns of ``table``'s rows are read: a job with its photo."""
        return JOBS_WITH_PHOTOS if table == "jobs" and self._photos_apart() else table

    def _pending_events(self) -> list[Row]:
        """This transaction's events, not yet sealed (from its first, with an empty hash)."""
        if self._first_pending is None:
            return []
        return self.db.execute(
            "SELECT * FROM audit_events WHERE id >= ? AND hash = '' ORDER BY id",
            (self._first_pending,),
        ).fetchall()

    def _seal(self) -> PendingCheckpoint | None:
        """Before COMMIT: the rows this transaction changed get its last audit event's id,
        that event records their digests, and every new event gets its keyed hash. A change
        with no event of its own gets a ``rows.change`` event. Returns the new head's
        checkpoint, MACed, to be written after COMMIT."""
        changes = self.db.touched()
        if not changes and not self._pending_events():
            return None
        if self.audit_key is None:
            raise RegistryError(READ_ONLY)
        if not self._pending_events():
            self.audit("system", "rows.change", "registry", {})
        last = self._pending_events()[-1]
        rows: dict[str, dict[str, str] | None] = {}
        for table, row_id in changes:
            row = self.db.execute(
                f"SELECT id, {', '.join(AUDITED_COLUMNS[table])} FROM {self.audited_rows(table)}"
                " WHERE id = ?",
                (row_id,),
            ).fetchone()
            rows[f"{table}/{row_id}"] = None if row is None else _row_state(table, row)
            self.db.execute(
                f"UPDATE {table} SET audit_event_id = ? WHERE id = ?", (last["id"], row_id)
            )
        if rows:
            details = json.loads(last["details"]) | {"rows": rows}
            self.db.execute(
                "UPDATE audit_events SET details = ? WHERE id = ?",
                (json.dumps(details, ensure_ascii=False, sort_keys=True), last["id"]),
            )
        pending = self._pending_events()
        before = self.db.execute(
            "SELECT hash FROM audit_events WHERE id < ? ORDER BY id DESC LIMIT 1",
            (pending[0]["id"],),
        ).fetchone()
        prev = before["hash"] if before else GENESIS
        for event in pending:
            digest = _event_hash(self.audit_key, event, prev)
            self.db.execute(
                "UPDATE audit_events SET prev_hash = ?, hash = ? WHERE id = ?",
                (prev, digest, event["id"]),
            )
            prev = digest
        self.db.forget_touched()
        head = Checkpoint(int(pending[-1]["id"]), prev, _iso(self.clock()), self._legacy_events())
        return self.checkpoints.prepare(head, self.audit_key)

    def _legacy_events(self) -> int:
        row = self.db.execute("SELECT legacy_events FROM audit_meta").fetchone()
        return 0 if row is None else int(row[0])

    def _adopt_rows(self) -> None:
        """In the keyed-audit migration: the rows already there are explained by one keyed
        event ``audit.adopt``, which also seals the unkeyed events before it (and is the
        first checkpoint, so a chain with events always has one)."""
        for table in self.audited_columns():
            self.db.touch_all(table)
        if not self.db.touched() and not self._legacy_events():
            return  # a new registry: nothing to adopt, nothing to seal
        if self.audit_key is None:
            raise RegistryError(
                "登记库须升级为带密钥的审计链，需要审计密钥 "
                "(the registry must be upgraded to the keyed audit chain: give the audit key)"
            )
        self.audit("system", "audit.adopt", "registry", {"legacy_events": self._legacy_events()})

    def event_counts(self, action: str) -> dict[str, int]:
        """How many audit events of ``action`` each subject has."""
        rows = self.db.execute(
            "SELECT subject, COUNT(*) FROM audit_events WHERE action = ? GROUP BY subject",
            (action,),
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def verify_audit(self) -> tuple[int, list[str]]:
        """(events checked, problems) of the whole chain, read-only — nothing recorded
        (``check_audit`` is what ``sscard audit verify`` runs; :mod:`personalize.auditverify`)."""
        from personalize.auditverify import AuditVerifier

        return AuditVerifier(self).verify_all()

    def check_audit(
        self, *, full: bool = False, full_every: timedelta | None = None
    ) -> AuditVerification:
        """``sscard audit verify``: from the last checkpoint of verification on, or the whole
        chain (:meth:`personalize.auditverify.AuditVerifier.check`)."""
        from personalize.auditverify import AuditVerifier

        return AuditVerifier(self).check(full=full, full_every=full_every)

    def audit_checkpoint(self) -> tuple[Verification | None, list[str]]:
        """The last checkpoint of verification if it is sound, else (None, what is wrong)
        (:meth:`personalize.auditverify.AuditVerifier.last_verification`)."""
        from personalize.auditverify import AuditVerifier

        return AuditVerifier(self).last_verification()

    # ----------------------------------------------------------------- queries

    def card(self, card_number: str) -> Card:
        """The card as it stands now; reading never writes (a 预挂失 past its deadline is
        shown lapsed, and recorded so by the next change of the card or ``lapse_expired``)."""
        return self._as_of_now(self._card_row(card_number))

    def card_by_id(self, card_id: int) -> Card:
        return self._as_of_now(self._card_row(card_id))

    def _card_row(self, key: str | int) -> Card:
        """The stored row, by card number (``str``) or row id (``int``)."""
        column = "card_number" if isinstance(key, str) else "id"
        row = self.db.execute(f"SELECT * FROM cards WHERE {column} = ?", (key,)).fetchone()
        if row is None:
            if isinstance(key, str):
                raise RegistryError(f"卡号 {key} 不在登记库中 (unknown card number)")
            raise RegistryError(f"登记库中没有编号 {key} 的卡 (no card with id {key})")
        return _card(row)

    def card_for_update(self, key: str | int) -> Card:
        """The card that the caller's write transaction is about to change — THE place
        that says "read this card for update". The transaction already holds the writers'
        lock (SQLite's BEGIN IMMEDIATE, PostgreSQL's advisory lock), so this read is current
        and stays so until COMMIT. A 预挂失 past its deadline
        lapses here first, in the same transaction, so the change starts from the status
        the rules give it now."""
        if not self.db.in_transaction:
            raise RuntimeError("card_for_update needs an open write transaction")
        card = self._card_row(key)
        if self._lapse_due(card):
            self._transition(
                card, "lapse", "system", "预挂失逾期未正式挂失，自动解除", f"期限 {card.lapse_at}"
            )
            card = self._card_row(card.id)
        return card

    def _lapse_due(self, card: Card) -> bool:
        """A provisional loss whose deadline has passed (docs/business-rules.md)."""
        return (
            card.status == CardStatus.PROVISIONAL_LOSS
            and card.lapse_at is not None
            and card.lapse_at <= _iso(self.clock())
        )

    def _as_of_now(self, card: Card) -> Card:
        if not self._lapse_due(card):
            return card
        target = str(self.rule("card", card.status, "lapse").target)
        return replace(card, status=target, status_since=card.lapse_at or "", lapse_at=None)

    def person(self, person_id: int) -> Person:
        row: Row | None = self.db.execute(
            "SELECT * FROM persons WHERE id = ?", (person_id,)
        ).fetchone()
        if row is None:
            raise RegistryError(f"no person with id {person_id}")
        return person_of(row)

    def person_by_ssn(self, ssn: str) -> Person | None:
        """The person recorded under ``ssn``; a first-generation 15-digit number finds the
        person by its upgrade (the registry stores the 18-character number only:
        :func:`~sscard.identifiers.canonical_ssn`, docs/business-rules.md "15-digit ID
        numbers"). InvalidData for a malformed 15-digit number."""
        row: Row | None = self.db.execute(
            "SELECT * FROM persons WHERE ssn = ?", (canonical_ssn(ssn),)
        ).fetchone()
        return None if row is None else person_of(row)

    def cards_of(self, person_id: int) -> list[Card]:
        rows = self.db.execute("SELECT * FROM cards WHERE person_id = ? ORDER BY id", (person_id,))
        return [self._as_of_now(_card(r)) for r in rows]

    def history(self, card_id: int) -> list[HistoryEntry]:
        rows = self.db.execute(
            "SELECT * FROM status_history WHERE card_id = ? ORDER BY id", (card_id,)
        )
        return [history_entry_of(r) for r in rows]

    def request(self, request_id: int) -> ReissueRequest:
        row: Row | None = self.db.execute(
            "SELECT * FROM reissue_requests WHERE id = ?", (request_id,)
        ).fetchone()
        if row is None:
            raise RegistryError(f"没有申请 {request_id} (no request {request_id})")
        return request_of(row)

    def open_request(self, old_card_id: int) -> ReissueRequest | None:
        """The card's request waiting for a job, if any."""
        row: Row | None = self.db.execute(
            "SELECT * FROM reissue_requests WHERE old_card_id = ? AND status = ?"
            " ORDER BY id DESC LIMIT 1",
            (old_card_id, RequestStatus.OPEN.value),
        ).fetchone()
        return None if row is None else request_of(row)

    def card_page(
        self, *, status: str | None = None, after: int = 0, limit: int = 50
    ) -> list[ListedCard]:
        """One page of cards with their holders, in id order after card id ``after``
        (keyset pagination: a page costs O(log n + limit), whatever rows were added or
        changed meanwhile), optionally of one stored ``status``."""
        if status is not None and status not in STATUS_NAMES:
            raise RegistryError(
                f"未知的卡状态 {status}，可选 {', '.join(STATUS_NAMES)} (unknown card status)"
            )
        if limit < 1:
            raise RegistryError("--limit 须为正数 (the page size must be positive)")
        rows = self.db.execute(
            "SELECT c.*, p.name AS holder_name, p.ssn AS holder_ssn FROM cards c"
            " JOIN persons p ON p.id = c.person_id WHERE c.id > ?"
            + ("" if status is None else " AND c.status = ?")
            + " ORDER BY c.id LIMIT ?",
            (after, limit) if status is None else (after, status, limit),
        )
        return [
            ListedCard(self._as_of_now(_card(r)), r["holder_name"], r["holder_ssn"]) for r in rows
        ]

    def job_photo(self, job_id: int) -> bytes:
        """The photo a job writes to the chip and prints on the face."""
        photo = self.jobs.photo(job_id)
        if photo is None:
            raise RegistryError(f"作业 {job_id} 没有照片 (job {job_id} has no photo)")
        return photo

    def blacklisted(self, card_number: str) -> bool:
        row = self.db.execute("SELECT 1 FROM blacklist WHERE card_number = ?", (card_number,))
        return row.fetchone() is not None

    # ----------------------------------------------------------------- transitions

    def rule(
        self,
        subject: Subject,
        source: str | None,
        action: str,
        *,
        evidence: str | None = None,
        agent: Agent | None = None,
    ) -> Transition:
        """The transition table's entry (``personalize.lifecycle``), with this region's
        policy flags, or ``RegistryError`` with the reason."""
        try:
            transition = lookup(
                subject,
                source,
                action,
                evidence=evidence,
                agent=agent is not None,
                flags={"unreport_after_formal_loss": self.policy.unreport_after_formal_loss},
            )
        except TransitionRefused as exc:
            raise RegistryError(str(exc)) from None
        if agent is not None:
            agent.check()
        return transition

    def _history(
        self,
        card_id: int,
        card_number: str,
        source: str | None,
        target: str,
        operator: str,
        reason: str,
        evidence: str | None,
    ) -> None:
        now = _iso(self.clock())
        self.db.execute(
            "INSERT INTO status_history (card_id, from_status, to_status, at, operator, reason,"
            " evidence) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (card_id, source, target, now, operator, reason, evidence),
        )
        self.audit(
            operator,
            f"card.{target}",
            card_number,
            {"from": source, "to": target, "reason": reason, "evidence": evidence},
        )

    def _transition(
        self,
        card: Card,
        action: str,
        operator: str,
        reason: str,
        evidence: str | None = None,
        *,
        agent: Agent | None = None,
        lapse_at: str | None = None,
    ) -> str:
        """Move ``card`` by ``action`` as the table says (inside the caller's transaction,
        ``card`` read by ``card_for_update``): the status, its history row, the audit
        event and the outbox event of a change the outside world hears of. Returns the new
        status. The update is conditional on the status ``card``
        was read in, so a stale read is refused rather than overwriting a newer change."""
        rule = self.rule("card", card.status, action, evidence=evidence, agent=agent)
        target = str(rule.target)
        changed = self.db.execute(
            "UPDATE cards SET status = ?, status_since = ?, lapse_at = ? WHERE id = ?"
            " AND status = ?",
            (target, _iso(self.clock()), lapse_at, card.id, card.status),
        ).rowcount
        if changed != 1:  # ``card`` was read before another change: never overwrite that
            raise RegistryError(
                f"卡号 {card.card_number} 的状态已被其他操作改变，请重新查询后再办理 "
                "(the card changed meanwhile; look it up again)"
            )
        if agent is not None:
            evidence = f"{evidence or ''} 代办人 agent {agent.masked()}"
            evidence = evidence.strip()
        self._history(card.id, card.card_number, card.status, target, operator, reason, evidence)
        if self._outbox_ready:
            self.outbox.record(
                action=action,
                card_number=card.card_number,
                status=target,
                previous=card.status,
                region=card.region,
                sn=card.sn,
                card_id=card.card_id,
                at=_iso(self.clock()),
            )
        return target

    def _move_request(self, request_id: int, action: str, operator: str, **details: Any) -> None:
        """Move a reissue request by ``action`` as the table says (inside a transaction)."""
        request = self.request(request_id)
        target = str(self.rule("request", request.status, action).target)
        withdrawn_at = _iso(self.clock()) if target == RequestStatus.WITHDRAWN else None
        self.db.execute(
            "UPDATE reissue_requests SET status = ?, withdrawn_at = COALESCE(?, withdrawn_at)"
            " WHERE id = ?",
            (target, withdrawn_at, request_id),
        )
        self.audit(
            operator,
            f"request.{action}",
            request_number(request_id),
            {"from": request.status, "to": target, **details},
        )

    def lapse_expired(self) -> int:
        """Record the lapse of every provisional loss past its deadline (docs/business-rules.md)
        — a sweep for a periodic task; reads already show the lapse and the next change of
        a card records it. Each card in its own write transaction, re-read under the lock:
        a 正式挂失 or 解挂 that got there first wins. Returns how many lapsed; read-only
        (no audit key), nothing is recorded."""
        if self.audit_key is None:
            return 0
        now = _iso(self.clock())
        due = [
            int(row["id"])
            for row in self.db.execute(
                # the literal status lets the deadline index (a partial index) serve it
                f"SELECT id FROM cards WHERE status = '{CardStatus.PROVISIONAL_LOSS.value}'"
                " AND lapse_at <= ? ORDER BY lapse_at",
                (now,),
            )
        ]
        lapsed = 0
        for card_id in due:
            with self.transaction():
                if self._lapse_due(self._card_row(card_id)):
                    self.card_for_update(card_id)
                    lapsed += 1
        return lapsed

    def enroll(
        self,
        holder: HolderData,
        card_number: str,
        *,
        operator: str,
        sn: str | None = None,
        card_id: str | None = None,
        issued_on: date | None = None,
    ) -> Card:
        """Register a person and their existing active card (migration of existing data).
        The card number and the person's data are validated first (check characters, the
        ID number's birth date, gender and region code, birth date not after today in the
        region's zone) and the card's 发卡日期 when given (:func:`check_issue_date`; not
        given, it is not known — never guessed — and so is the card's validity); nothing is
        written when they are refused. The new ID number of another person's unfinished 换领
        is reserved (:meth:`request_change` refuses it the same way): enrolling under it is
        refused, else that 换领 could never activate."""
        validate_card_number(card_number)
        today = self.policy.local_date(self.clock())
        holder.validate(today=today)
        if issued_on is not None:
            check_issue_date(issued_on, today)
        now = _iso(self.clock())
        with self.transaction():
            if self.db.execute(
                "SELECT 1 FROM cards WHERE card_number = ?", (card_number,)
            ).fetchone():
                raise RegistryError(
                    f"卡号 {card_number} 无法登记：卡号已登记 "
                    "(cannot enroll: card number already enrolled)"
                )
            if self.changes.pending_for(holder.ssn) is not None:
                raise RegistryError(
                    f"卡号 {card_number} 无法登记：新身份证号码已属于另一参保人（其换领尚未完成） "
                    "(cannot enroll: the ID number is the new number of another person's "
                    "unfinished 换领)"
                )
            person = self.person_by_ssn(holder.ssn)
            if person is None:
                person_id = self.db.insert(
                    "INSERT INTO persons (ssn, name, gender, ethnicity, birthplace, birth_date,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        holder.ssn,
                        holder.name,
                        holder.gender,
                        holder.ethnicity,
                        holder.birthplace,
                        holder.birth_date.isoformat(),
                        now,
                    ),
                )
            else:
                person_id = person.id
            try:
                self.db.execute(
                    "INSERT INTO cards (person_id, card_number, sn, card_id, region, status,"
                    " status_since, issued_on, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        person_id,
                        card_number,
                        sn,
                        card_id,
                        self.policy.region_code,
                        str(self.rule("card", None, "enroll").target),
                        now,
                        None if issued_on is None else issued_on.isoformat(),
                        now,
                    ),
                )
            except IntegrityError as exc:  # a concurrent enrollment got there first
                chinese, english = constraint_refusal(exc)
                raise RegistryError(
                    f"卡号 {card_number} 无法登记：{chinese} (cannot enroll: {english})"
                ) from None
            self.audit(operator, "card.enroll", card_number, {"ssn_tail": holder.ssn[-4:]})
        return self.card(card_number)

    # Every check-then-act below runs in one write transaction: the card is read by
    # ``card_for_update`` inside it, checked against the table and changed before COMMIT.

    def report_loss(self, card_number: str, *, operator: str, channel: str = "counter") -> Card:
        with self.transaction():
            card = self.card_for_update(card_number)
            self.rule("card", card.status, "report_loss")  # refused before the calendar is asked
            lapse = _iso(self.policy.lapse_deadline(self.clock()))
            self._transition(card, "report_loss", operator, f"预挂失 via {channel}", lapse_at=lapse)
            return self.card_by_id(card.id)

    def formalize_loss(
        self, card_number: str, *, operator: str, evidence: str, agent: Agent | None = None
    ) -> Card:
        with self.transaction():
            card = self.card_for_update(card_number)
            self._transition(card, "formalize_loss", operator, "正式挂失", evidence, agent=agent)
            return self.card_by_id(card.id)

    def unreport(
        self, card_number: str, *, operator: str, evidence: str, agent: Agent | None = None
    ) -> Card:
        with self.transaction():
            card = self.card_for_update(card_number)
            self._transition(card, "unreport", operator, "解挂", evidence, agent=agent)
            return self.card_by_id(card.id)

    def mark_initial_pin(self, card_number: str, initial: bool, *, operator: str, via: str) -> Card:
        """Record what a PIN command the card answered 9000 to left on it (call only after
        that answer): ``initial`` — it holds the policy's default PIN again (a reset to it) —
        or not (a change, a reset to another PIN). Whatever the card's status: the mark is
        the truth about the chip. The PIN itself is never given here."""
        with self.transaction():
            card = self.card_for_update(card_number)
            before = self.initial_pin(card)
            self._set_initial_pin(card.id, initial)
            self.audit(
                operator,
                "card.initial_pin",
                card_number,
                {"from": before, "initial_pin": initial, "via": via},
            )
            return self.card_by_id(card.id)

    def _set_initial_pin(self, card_id: int, initial: bool) -> None:
        """Write the card's mark (inside the transaction that audits it)."""
        self.db.execute(
            "INSERT INTO card_pin_marks (card_id, initial_pin, at) VALUES (?, ?, ?)"
            " ON CONFLICT (card_id) DO UPDATE SET initial_pin = excluded.initial_pin,"
            " at = excluded.at",
            (card_id, int(initial), _iso(self.clock())),
        )

    def initial_pin(self, card: Card) -> bool | None:
        """Whether the card still holds the initial PIN (初始密码); None: not known."""
        row = self.db.execute(
            "SELECT initial_pin FROM card_pin_marks WHERE card_id = ?", (card.id,)
        ).fetchone()
        return None if row is None else bool(row["initial_pin"])

    def validity(self, card: Card) -> CardValidity | None:
        """The card's 有效期 and its standing today in the region's zone, by the registry's
        clock (:func:`personalize.validity.card_validity`); None when its issue date is not
        known."""
        return card_validity(self.policy, card.issued_on, self.policy.local_date(self.clock()))

    # ----------------------------------------------------------------- medical-account balance

    def unfinished_request(self, old_card_id: int) -> ReissueRequest | None:
        """The card's reissue/replacement request not yet done (open or in a job), if any
        (at most one: ``one_unfinished_request_per_card``)."""
        row: Row | None = self.db.execute(
            "SELECT * FROM reissue_requests WHERE old_card_id = ? AND status IN (?, ?)",
            (old_card_id, RequestStatus.OPEN.value, RequestStatus.IN_JOB.value),
        ).fetchone()
        return None if row is None else request_of(row)

    def balance_transfers(self, card: Card) -> list[BalanceTransfer]:
        """The medical-account balance transfers out of ``card`` and into it."""
        return self.balances.of_card(card.id)

    def report_balance(
        self,
        card_number: str,
        amount: str,
        *,
        as_of: datetime,
        reference: str | None,
        operator: str,
    ) -> BalanceTransfer:
        """The business system's report of the medical-account balance (医保个人账户余额) of
        ``card_number``, a card being reissued or replaced (docs/business-rules.md "The
        medical-account balance"): ``amount`` in yuan (``medical_balance.fen_of_yuan``,
        under the policy's ceiling), read at ``as_of`` (not after now). Before the new card is
        active it is kept for the activation to transfer (``_keep_report``); after an
        activation that left the transfer pending it completes the transfer. Anything else —
        an unknown card, a card not awaiting a new card, a transfer already made — is a
        ``RegistryError``; bad data ``InvalidData``: nothing is written."""
        fen = fen_of_yuan(amount, maximum=self.policy.balance_max_fen)
        if as_of.tzinfo is None:
            raise InvalidData("余额时点须带时区 (the balance's as-of time carries its offset)")
        if as_of > self.clock():
            raise InvalidData("余额时点晚于当前时间 (the balance's as-of time is in the future)")
        with self.transaction():
            card = self.card_for_update(card_number)
            request = self.unfinished_request(card.id)
            if request is not None:
                return self._keep_report(request.id, card, fen, _iso(as_of), reference, operator)
            pending = self.balances.pending_from(card.id)
            if pending is None or pending.new_card_id is None:
                raise RegistryError(
                    f"卡号 {card_number} 没有待换发的新卡，也没有待转入的余额，不受理余额报送 "
                    "(the card awaits no reissue or replacement and no pending balance "
                    "transfer)"
                )
            self.balances.complete(
                pending.request_id, fen, as_of=_iso(as_of), reference=reference,
                at=_iso(self.clock()), by=operator,
            )  # fmt: skip
            new = self.card_by_id(pending.new_card_id)
            self._audit_transfer(operator, card, new, pending.request_id)
            return self._transfer_of(pending.request_id)

    def _keep_report(
        self,
        request_id: int,
        card: Card,
        fen: int,
        read_at: str,
        reference: str | None,
        operator: str,
    ) -> BalanceTransfer:
        """The report of a card awaiting its new card, kept for the activation: a later
        report replaces the earlier one (``balance.report`` names the amount it replaces),
        one read before the kept one's time is refused — a delayed message never overwrites
        a newer balance."""
        before = self.balances.of_request(request_id)
        if before is not None and before.as_of is not None and read_at < before.as_of:
            raise RegistryError(
                f"余额时点 {read_at} 早于已报送余额的时点 {before.as_of}，不予替换 "
                "(a balance read before the one already reported does not replace it)"
            )
        self.balances.report(
            request_id, card.id, fen, as_of=read_at, reference=reference,
            at=_iso(self.clock()), by=operator,
        )  # fmt: skip
        self.audit(
            operator,
            "balance.report",
            card.card_number,
            {
                "request": request_id,
                "amount": yuan_text(fen),
                "amount_fen": fen,
                "as_of": read_at,
                "reference": reference,
                "replaces": None if before is None else before.amount_fen,
            },
        )
        return self._transfer_of(request_id)

    def _transfer_of(self, request_id: int) -> BalanceTransfer:
        transfer = self.balances.of_request(request_id)
        assert transfer is not None  # written in this transaction
        return transfer

    def _carry_balance(
        self, request_id: int, old: Card, new: Card, operator: str
    ) -> dict[str, Any]:
        """In the activation's transaction: the old card's reported balance recorded as moved
        to the new card, or — none reported — the transfer left pending (a policy that
        requires the report refused the activation before). The transfer's own audit event;
        returns what the activation's event says of it."""
        transfer = self.balances.of_request(request_id)
        if transfer is None:
            self.balances.leave_pending(request_id, old.id, new.id)
        else:
            self.balances.transfer(request_id, new.id, at=_iso(self.clock()))
        return self._audit_transfer(operator, old, new, request_id)

    def _audit_transfer(
        self, operator: str, old: Card, new: Card, request_id: int
    ) -> dict[str, Any]:
        """The transfer's audit event ``balance.transfer`` (made) or ``balance.pending``
        (awaiting the report), under the old card's number; returns its details."""
        transfer = self._transfer_of(request_id)
        details = {
            "request": request_id,
            "from_card": old.card_number,
            "to_card": new.card_number,
            "status": str(transfer.status),
            "amount": None if transfer.amount_fen is None else yuan_text(transfer.amount_fen),
            "amount_fen": transfer.amount_fen,
            "as_of": transfer.as_of,
            "reference": transfer.reference,
        }
        action = (
            "balance.pending" if transfer.status == TransferStatus.PENDING else "balance.transfer"
        )
        self.audit(operator, action, old.card_number, details)
        return details

    def _check_balance_reported(self, request_id: int, old: Card) -> None:
        """A region whose policy requires the balance before activation refuses it until the
        business system reported the old card's balance."""
        if not self.policy.balance_required_before_activation:
            return
        if self.balances.of_request(request_id) is None:
            raise RegistryError(
                f"拒绝启用：原卡 {old.card_number} 的医保个人账户余额尚未由业务系统报送，"
                "本地区须先报余额再启用新卡 (refusing to activate: the region requires the old "
                "card's medical-account balance reported first)"
            )

    def request_reissue(
        self,
        card_number: str,
        *,
        operator: str,
        counter: str = "",
        kind: str = "reissue",
        fee: int | None = None,
        agent: Agent | None = None,
        evidence: str | None = None,
    ) -> ReissueRequest:
        """Reissue after formal loss (→ 补卡中), or replacement after a damage verdict
        (→ 换卡中); returns the request (the 领卡证明 data). The fee of a reissue is the
        policy's 补卡工本费 unless given; a replacement's comes from the verdict. A 换领 is
        :meth:`request_change` only — it needs its change certificates (review17 #15)."""
        if kind not in ("reissue", "replacement"):
            raise RegistryError(
                f"申请类型须为补卡或换卡，换领须凭变更证明办理 (kind is reissue or replacement; a "
                f"change is request_change), not {kind!r}"
            )
        return self._new_request(
            card_number, operator=operator, counter=counter, kind=kind, fee=fee, agent=agent,
            evidence=evidence,
        )  # fmt: skip

    def _new_request(
        self,
        card_number: str,
        *,
        operator: str,
        counter: str,
        kind: str,
        fee: int | None,
        agent: Agent | None,
        evidence: str | None,
    ) -> ReissueRequest:
        """The request of ``kind`` (reissue, replacement or change) and the card's move to
        its pending status, in the caller's or its own transaction."""
        action = f"request_{kind}"
        if fee is None:
            policy_fees = {"reissue": self.policy.fee_reissue, "change": self.policy.fee_change}
            fee = policy_fees.get(kind, 0)
        with self.transaction():
            card = self.card_for_update(card_number)
            self.rule("card", card.status, action, agent=agent, evidence=evidence)
            today = self.policy.local_date(self.clock())
            collect = self.policy.collection_date(today)
            self._transition(card, action, operator, ACTIONS[action].label, evidence, agent=agent)
            request_id = self.db.insert(
                "INSERT INTO reissue_requests (person_id, old_card_id, kind, applied_on,"
                " collect_on, place, fee, operator, counter, status, agent)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    card.person_id,
                    card.id,
                    kind,
                    today.isoformat(),
                    collect.isoformat(),
                    self.policy.collection_place,
                    fee,
                    operator,
                    counter,
                    str(self.rule("request", None, action).target),
                    None if agent is None else agent.as_text(),
                ),
            )
            self.audit(
                operator,
                f"request.{kind}",
                card_number,
                {
                    "request": request_id,
                    "collect_on": collect.isoformat(),
                    "fee": fee,
                    "agent": agent is not None,
                },
            )
            return self.request(request_id)

    # ----------------------------------------------------------------- 换领 (identity change)

    def request_change(
        self,
        card_number: str,
        certificate: ChangeCertificate,
        *,
        operator: str,
        counter: str = "",
        agent: Agent | None = None,
    ) -> ReissueRequest:
        """换领: a replacement of an active card because the holder's name or ID number
        changed (docs/business-rules.md "换领 (identity data changed)"), on the 公安部门变更证明
        and the 社保经办机构更改证明 — the request (kind ``change``, → 换卡中) and what the
        certificates say, in one transaction. Refused with nothing written when the card's
        status does not allow it, the certificate is another person's, nothing changed, the
        new ID number is invalid, a mere 15→18 upgrade, or another person's (enrolled or
        pending in another 换领): :func:`personalize.identity_change.check_change`. The
        person's record takes the new data when the new card is activated (:meth:`activate`)."""
        with self.transaction():
            card = self.card_for_update(card_number)
            evidence = (
                f"公安部门变更证明 {certificate.number}（{certificate.authority}）；"
                f"社保经办机构更改证明 {certificate.bureau_number}"
            )
            self.rule("card", card.status, "request_change", evidence=evidence, agent=agent)
            person = self.person(card.person_id)
            try:
                holder = check_change(
                    certificate, person, today=self.policy.local_date(self.clock())
                )
            except ChangeRefused as exc:
                raise RegistryError(str(exc)) from None
            owner = self.person_by_ssn(holder.ssn)
            pending = self.changes.pending_for(holder.ssn)
            if (owner is not None and owner.id != person.id) or (
                pending is not None and pending.person_id != person.id
            ):
                raise RegistryError(
                    "新身份证号码已属于另一参保人，不能换领 (the new ID number belongs to another "
                    "person)"
                )
            request = self._new_request(
                card_number,
                operator=operator,
                counter=counter,
                kind="change",
                fee=None,
                agent=agent,
                evidence=evidence,
            )
            self.changes.add(
                request_id=request.id,
                person_id=person.id,
                old=(person.name, person.ssn),
                new=(holder.name, holder.ssn),
                certificate=certificate.number,
                authority=certificate.authority,
                bureau_certificate=certificate.bureau_number,
                at=_iso(self.clock()),
            )
            self.audit(
                operator,
                "request.change_certificate",
                request_number(request.id),
                {
                    "certificate": certificate.number,
                    "authority": certificate.authority,
                    "bureau_certificate": certificate.bureau_number,
                    **_change_summary(person.name, person.ssn, holder.name, holder.ssn),
                },
            )
            return request

    def identity_change(self, request_id: int) -> IdentityChange | None:
        """The change a 换领 request was made on; None for any other request."""
        return self.changes.of_request(request_id)

    def holder_of(self, request: ReissueRequest) -> Person:
        """Who the request's new card is for, as its chip and face show them: the person as
        recorded, with a 换领's new name and ID number."""
        person = self.person(request.person_id)
        change = self.identity_change(request.id)
        if change is None:
            return person
        return replace(person, name=change.new_name, ssn=change.new_ssn)

    def _apply_identity_change(self, request_id: int, new: Card, operator: str) -> None:
        """At a 换领's activation (inside its transaction): the person's record takes the new
        name and ID number, audited old → new (IDs masked); a record no longer holding the
        certificate's old data refuses the activation (nothing changes)."""
        change = self.identity_change(request_id)
        if change is None:
            return
        if not self.changes.apply(change, _iso(self.clock())):
            raise RegistryError(
                "拒绝启用：参保人登记信息已不是变更证明上的原姓名/原身份证号码 "
                "(refusing to activate: the person's record no longer holds the certificate's "
                "old name and ID number)"
            )
        self.audit(
            operator,
            "person.identity_change",
            new.card_number,
            {
                "person": change.person_id,
                "request": request_number(request_id),
                "certificate": change.certificate,
                **_change_summary(change.old_name, change.old_ssn, change.new_name, change.new_ssn),
            },
        )

    def set_tracks(self, card_id: int, sealed: bytes, *, source: str, operator: str) -> None:
        """Keep a card's sealed issuer track images (sealed with the context ``card-<id>``)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO card_tracks (card_id, sealed, source, at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(card_id) DO UPDATE SET sealed = excluded.sealed,"
                " source = excluded.source, at = excluded.at",
                (card_id, sealed, source, _iso(self.clock())),
            )
            self.audit(
                operator, "card.tracks", self.card_by_id(card_id).card_number, {"source": source}
            )

    def sealed_tracks(self, card_id: int) -> bytes | None:
        row = self.db.execute(
            "SELECT sealed FROM card_tracks WHERE card_id = ?", (card_id,)
        ).fetchone()
        return None if row is None else bytes(row["sealed"])

    def _next_free_number(self) -> str:
        """The region's next 卡号 not in use — enrolled, allocated or blacklisted — and the
        counter moved past it (call inside the transaction that uses the number)."""
        prefix = self.policy.card_number_prefix
        row = self.db.execute(
            "SELECT next FROM card_numbers WHERE prefix = ?", (prefix,)
        ).fetchone()
        serial = int(row["next"]) if row else 1
        while True:
            if serial > 9_999_999:
                raise RegistryError(f"卡号段 {prefix} 已用尽 (card numbers of {prefix} exhausted)")
            first8 = f"{prefix}{serial:07d}"
            number = first8 + card_number_check(first8)
            serial += 1
            used = self.db.execute(
                "SELECT 1 FROM cards WHERE card_number = ?"
                " UNION ALL SELECT 1 FROM blacklist WHERE card_number = ?",
                (number, number),
            ).fetchone()
            if used is None:
                break
        self.db.execute(
            "INSERT INTO card_numbers (prefix, next) VALUES (?, ?) ON CONFLICT"
            "(prefix) DO UPDATE SET next = excluded.next",
            (prefix, serial),
        )
        return number

    def allocate_card_number(self) -> str:
        """Reserve the next free 卡号 of this region: prefix + 7 digits + check character
        (for enrolling; a job's new card gets its number in ``start_card``)."""
        with self.transaction():
            return self._next_free_number()

    def start_card(self, job_id: int, *, operator: str) -> Card:
        """The job's new card (制卡中) with a fresh number, allocated and inserted in one
        transaction — a number in use is never handed out."""
        with self.transaction() as db:
            job = self.job(job_id)
            target = str(self.rule("card", None, "start").target)
            number = self._next_free_number()
            now = _iso(self.clock())
            card_id = db.insert(
                "INSERT INTO cards (person_id, card_number, region, status, status_since,"
                " job_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job.person_id, number, self.policy.region_code, target, now, job_id, now),
            )
            self.jobs.set_new_card(job_id, card_id)
            self._history(card_id, number, None, target, operator, "开始制卡", f"job {job_id}")
            return self.card_by_id(card_id)

    def release_card(self, card_id: int, *, operator: str, reason: str) -> Card:
        """An unfinished new card leaves its job (废卡): cancelled or failed job, card
        written off. Its number is never reused; a card that reached a chip (it has an SN)
        is blacklisted, since what was written may be on it."""
        with self.transaction() as db:
            card = self.card_by_id(card_id)
            self._transition(card, "release", operator, reason, f"job {card.job_id}")
            if card.sn is not None:
                db.execute(
                    "INSERT INTO blacklist (card_number, sn, card_id, reason, at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (card.card_number, card.sn, card.card_id, "written off", _iso(self.clock())),
                )
            self.jobs.forget_new_card(card_id)
            return self.card_by_id(card_id)

    def attach_job(self, request_id: int, job_id: int) -> None:
        """The request is being made by ``job_id`` (inside the job's submit transaction)."""
        self.db.execute("UPDATE reissue_requests SET job_id = ? WHERE id = ?", (job_id, request_id))

    def set_card_chip(self, card_id: int, fields: Mapping[str, str | None]) -> None:
        """What a job step learnt of its new card, among :data:`CARD_CHIP_FIELDS` (inside
        the step's fenced transaction)."""
        for key, value in fields.items():
            assert key in CARD_CHIP_FIELDS
            self.db.execute(f"UPDATE cards SET {key} = ? WHERE id = ?", (value, card_id))

    def job(self, job_id: int) -> Job:
        """The job, or ``RegistryError`` when there is none."""
        job = self.jobs.get(job_id)
        if job is None:
            raise RegistryError(f"没有作业 {job_id} (no job {job_id})")
        return job

    def check_fence(self, job_id: int, fence: int | None) -> Job:
        """The job, if ``fence`` is still its token and it is running (call inside the
        transaction that writes for the job); ``LeaseLost`` otherwise."""
        job = self.job(job_id)
        if fence is None or job.fence != fence or job.status != JobStatus.RUNNING:
            raise LeaseLost(
                f"作业 {job_id} 的租约已失效（现由工位 {job.station} 持有，状态 "
                f"{job.status}），本工位停止，不再记录或操作设备 (this station lost the job's "
                f"lease: token {fence} is not the job's {job.fence}; stopping)"
            )
        return job

    def claim(self, job_id: int, station: str, *, until: datetime, target: str) -> int:
        """The job's lease for ``station`` until ``until``, and its new fencing token
        (call inside the transaction that checked the claim may be made)."""
        return self.jobs.claim(
            job_id, station, status=target, until=_iso(until), now=_iso(self.clock())
        )

    def sn_seen(self, sn: str) -> bool:
        """A chip SN the registry already knows — a card made, fed to a job or blacklisted:
        such a card is never taken as a blank."""
        row = self.db.execute(
            "SELECT 1 FROM cards WHERE sn = ? UNION ALL SELECT 1 FROM blacklist WHERE sn = ?"
            " LIMIT 1",
            (sn, sn),
        ).fetchone()
        return row is not None or self.jobs.sn_recorded(sn)

    def _activation_evidence(self, job: Job, new: Card) -> None:
        """The card to activate is the job's current card, fed in this job, and every step
        of :data:`ACTIVATION_EVIDENCE` was recorded ``ok`` for its SN in this job after it
        was fed (print_face ``ok`` is recorded only once the printer has printed and ejected
        it), and it was not written off since; else ``RegistryError``."""
        sn = new.sn
        if sn is None or sn != job.sn:
            raise RegistryError(
                f"拒绝启用：新卡 {new.card_number} 的芯片序列号与作业当前卡不符 "
                "(refusing to activate: the card is not the job's current card)"
            )
        fed, steps = self.jobs.steps_since_feed(job.id, sn)
        done = {s.step for s in steps if s.result == StepResult.OK}
        missing = [step for step in ACTIVATION_EVIDENCE if step not in done]
        if not fed or missing or any(s.step == "card" for s in steps):
            raise RegistryError(
                f"拒绝启用：卡 {sn} 在本作业中未完成 {', '.join(missing) or 'feed'} 或已报废 "
                "(refusing to activate: the card was not written, verified, encoded and printed "
                "in this job)"
            )
        if self.db.execute("SELECT 1 FROM blacklist WHERE sn = ?", (sn,)).fetchone():
            raise RegistryError(f"拒绝启用：芯片序列号 {sn} 已列入黑名单 (the SN is blacklisted)")

    def _chip_issue_date(self, job: Job, new: Card) -> str:
        """The issue date the job's ``chip_write`` wrote to the card's EF05 (ISO date)."""
        assert new.sn is not None  # _activation_evidence proved it the job's card
        written = self.jobs.last_step(job.id, new.sn, "chip_write", StepResult.OK)
        if written is None or "issue_date" not in written.details:
            raise RegistryError(
                f"拒绝启用：新卡 {new.card_number} 没有写卡记录的发卡日期 "
                "(refusing to activate: no issue date recorded by the chip write)"
            )
        return str(written.details["issue_date"])

    def activate(
        self, new_card_id: int, *, operator: str, job_id: int, fence: int | None = None
    ) -> Card:
        """One transaction: old card → void + blacklist, new card → active, the request
        done, audit event — only for the job's station holding its token (``fence``) and a
        card with the whole evidence of :meth:`_activation_evidence`."""
        with self.transaction():
            new = self.card_by_id(new_card_id)
            job = self.check_fence(job_id, fence)
            if job.new_card_id != new.id:
                raise RegistryError("the card does not belong to this job")
            self._activation_evidence(job, new)
            old = self.card_by_id(job.old_card_id)
            self.rule("card", new.status, "activate")
            self._check_balance_reported(job.request_id, old)
            self._transition(old, "retire", operator, "新卡启用，旧卡注销", f"job {job_id}")
            self.db.execute(
                "INSERT INTO blacklist (card_number, sn, card_id, reason, at)"
                " VALUES (?, ?, ?, ?, ?)",
                (old.card_number, old.sn, old.card_id, "replaced", _iso(self.clock())),
            )
            self._transition(new, "activate", operator, "新卡启用", f"job {job_id}")
            # what the job wrote to the chip: its issue date (EF05) and the default PIN
            self.db.execute(
                "UPDATE cards SET issued_on = ? WHERE id = ?",
                (self._chip_issue_date(job, new), new.id),
            )
            self._set_initial_pin(new.id, True)
            balance = self._carry_balance(job.request_id, old, new, operator)
            self._move_request(job.request_id, "complete", operator, job=job_id)
            self._apply_identity_change(job.request_id, new, operator)
            self.audit(
                operator,
                "card.activate",
                new.card_number,
                {
                    "job": job_id,
                    "old_card": old.card_number,
                    "blacklisted": True,
                    "initial_pin": True,
                    "balance": balance,
                },
            )
            if job.station is not None:  # a fenced job always has its station
                self.record_stock(
                    MoveKind.PERSONALIZED,
                    job.station,
                    1,
                    operator=operator,
                    job_id=job_id,
                    sn=new.sn,
                )
        return self.card_by_id(new_card_id)

    def record_stock(
        self,
        kind: MoveKind,
        station: str,
        quantity: int,
        *,
        operator: str,
        batch: str | None = None,
        reason: str | None = None,
        detail: str | None = None,
        job_id: int | None = None,
        sn: str | None = None,
    ) -> StockMove:
        """A stock movement and its audit event ``stock.<kind>`` with the operator, in the
        caller's transaction (docs/business-rules.md "Card stock")."""
        with self.transaction():
            event = self.audit(
                operator,
                f"stock.{kind}",
                f"station/{station}",
                {
                    "quantity": quantity,
                    **{
                        key: value
                        for key, value in (
                            ("batch", batch),
                            ("reason", reason),
                            ("detail", detail),
                            ("job", job_id),
                            ("sn", sn),
                        )
                        if value is not None
                    },
                },
            )
            return self.stock.add(
                kind,
                station,
                quantity,
                at=_iso(self.clock()),
                operator=operator,
                audit_event=event,
                batch=batch,
                reason=reason,
                detail=detail,
                job_id=job_id,
                sn=sn,
            )

    # ----------------------------------------------------------------- 验卡单 (office reports)

    def add_office_report(
        self,
        *,
        card_number: str,
        operator: str,
        request_id: int | None,
        data: dict[str, Any],
    ) -> OfficeReport:
        """Keep a 验卡单's content (call inside the transaction that audits the diagnosis).
        Its number ``YK-<local date>-<row id>`` is unique by the row id, not by the clock."""
        now = self.clock()
        report_id = self.db.insert(
            "INSERT INTO office_reports (card_number, request_id, at, operator, data)"
            " VALUES (?, ?, ?, ?, ?)",
            (card_number, request_id, _iso(now), operator, json.dumps(data, ensure_ascii=False)),
        )
        report_no = f"YK-{self.policy.local_date(now):%Y%m%d}-{report_id:06d}"
        self.db.execute(
            "UPDATE office_reports SET report_no = ? WHERE id = ?", (report_no, report_id)
        )
        report = self.office_report(report_no)
        assert report is not None
        return report

    def office_report(self, report_no: str) -> OfficeReport | None:
        """A stored 验卡单 by its number, or None."""
        row: Row | None = self.db.execute(
            "SELECT * FROM office_reports WHERE report_no = ?", (report_no,)
        ).fetchone()
        return None if row is None else office_report_of(row)


def request_number(request_id: int) -> str:
    """The number a request is known by on its 领卡证明: ``SSCARD-REQ-000001``."""
    return f"SSCARD-REQ-{request_id:06d}"


def _change_summary(old_name: str, old_ssn: str, new_name: str, new_ssn: str) -> dict[str, str]:
    """What an audit event says of a 换领: the names old → new, the ID numbers masked."""
    return {
        "name": f"{old_name} → {new_name}",
        "ssn": f"{mask_id(old_ssn)} → {mask_id(new_ssn)}",
    }


def _card(row: Row) -> Card:
    return Card(
        id=row["id"],
        person_id=row["person_id"],
        card_number=row["card_number"],
        sn=row["sn"],
        card_id=row["card_id"],
        region=row["region"],
        status=row["status"],
        status_since=row["status_since"],
        lapse_at=row["lapse_at"],
        issued_on=row["issued_on"],
        job_id=row["job_id"],
    )
