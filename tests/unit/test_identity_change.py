"""换领 (identity data changed, issue 17; docs/business-rules.md "换领 (identity data
changed)", 珠海: "因居民身份证号码或姓名变更而需换卡的…凭公安部门出具的变更证明和社保经办机构的
更改证明…申请换卡，如果是属于身份证号从15位升位到18位的可不用办理换卡手续"), on a real SQLite
file and a real PostgreSQL server (``new_db``): the request and its certificates; at the new
card's activation, in its transaction, the person's record takes the new name and ID number,
audited, and the old card is void and blacklisted; an activation that fails changes nothing;
every refusal writes nothing (row counts and the audit head unchanged)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date

import pytest

from personalize import audit_store
from personalize import registry as registry_module
from personalize.change_store import MIGRATION as CHANGE_MIGRATION
from personalize.documents import collection_certificate
from personalize.identity_change import ChangeCertificate, ChangeRefused, check_change
from personalize.policy import load_policy
from personalize.registry import (
    MIGRATIONS,
    Agent,
    Registry,
    RegistryError,
)
from personalize.registry_records import Person
from personalize.web.routes_audit import SearchForm
from simulator.factory import SAMPLE_HOLDER
from sscard.errors import InvalidData
from tests.audit_key import AUDIT_KEY
from tests.clock import pinned_clock
from tests.conftest import NewDatabase
from tests.stores import before_changes, behind_its_back, inserts_fail, running_job

POLICY = load_policy("default")
STATION = "S1"
# GB 11643-1999 numbers of 1949-12-31, women (even 17th digit), check characters by §4.5:
# 张三's enrolled number, her number after moving to 海淀区 (110108), another woman's.
OLD_ID = SAMPLE_HOLDER.ssn  # 11010519491231002X
NEW_ID = "110108194912310029"
OTHER_ID = "440400194912310020"
# a first-generation number and its upgrade (GB 11643-1999 §4 worked as in the
# docs/business-rules.md "15-digit ID numbers" example: 19 inserted, check character added)
FIFTEEN = "110105491231002"
FIFTEEN_UPGRADED = OLD_ID

PERSON = Person(
    id=1,
    ssn=OLD_ID,
    name="张三",
    gender="2",
    ethnicity="01",
    birthplace="110105",
    birth_date="1949-12-31",
    created_at="2026-11-25T09:30:00+00:00",
)


def certificate(**changes: str) -> ChangeCertificate:
    """The change certificate of 张三 → 张叁 at 海淀区, unless ``changes`` say otherwise."""
    return replace(
        ChangeCertificate(
            number="京公(海)变字2026第0815号",
            authority="北京市公安局海淀分局",
            bureau_number="京社更2026-0042",
            old_name="张三",
            old_id=OLD_ID,
            new_name="张叁",
            new_id=NEW_ID,
        ),
        **changes,
    )


# ------------------------------------------------------------------ the rule on its own


def test_the_certificates_new_data_is_the_new_cards_holder() -> None:
    holder = check_change(certificate(), PERSON, today=date(2026, 11, 25))
    assert (holder.name, holder.ssn, holder.birth_date) == ("张叁", NEW_ID, date(1949, 12, 31))
    only_name = check_change(certificate(new_id=""), PERSON, today=date(2026, 11, 25))
    assert (only_name.name, only_name.ssn) == ("张叁", OLD_ID)


@pytest.mark.parametrize(
    ("changes", "refusal"),
    [
        ({"old_name": "李四"}, "变更证明上的原姓名或原身份证号码与该参保人的登记不符"),
        ({"old_id": OTHER_ID}, "the change certificate is for another person"),
        ({"new_id": "110108194912310028"}, "新身份证号码：社会保障号码校验位错误"),
        ({"new_id": "11010819491231002"}, "新身份证号码：社会保障号码应为 18 位"),
        ({"new_name": "", "new_id": ""}, "nothing changed"),
        ({"new_name": "张三", "new_id": OLD_ID}, "均未改变"),
        (
            {"old_id": FIFTEEN, "new_name": "", "new_id": FIFTEEN_UPGRADED},
            "身份证号从15位升位到18位的可不用办理换卡手续",
        ),
        ({"new_id": "110108194912310010"}, "新身份证号码中的出生日期/性别与登记不符"),
        ({"new_id": "11010819500101002X"}, "新身份证号码中的出生日期/性别与登记不符"),
        ({"number": " "}, "换领须填写公安部门变更证明编号"),
        ({"authority": ""}, "出具变更证明的公安机关"),
        ({"bureau_number": ""}, "社保经办机构更改证明编号"),
    ],
)
def test_a_change_the_certificates_do_not_support_is_refused(
    changes: dict[str, str], refusal: str
) -> None:
    with pytest.raises(ChangeRefused, match=refusal):
        check_change(certificate(**changes), PERSON, today=date(2026, 11, 25))


def test_the_refusal_of_another_birth_date_quotes_no_digits_of_it() -> None:
    """review17 finding 9: the refusal reaches answers and audit events, where ID numbers are
    masked (positions 7-14, the birth date): it names no date of the new number."""
    with pytest.raises(ChangeRefused) as refused:
        check_change(
            certificate(new_id="11010819500101002X"), PERSON, today=date(2026, 11, 25)
        )
    assert not any(d in str(refused.value) for d in ("1950", "0101", "1949", "1231"))


def test_a_name_change_with_the_upgrade_is_a_change() -> None:
    """Only a mere upgrade needs no new card; with a new name the card must change."""
    holder = check_change(
        certificate(old_id=FIFTEEN, new_id=FIFTEEN_UPGRADED), PERSON, today=date(2026, 11, 25)
    )
    assert (holder.name, holder.ssn) == ("张叁", OLD_ID)


# ------------------------------------------------------------------ the registry


@pytest.fixture
def registry(new_db: NewDatabase) -> Iterator[Registry]:
    registry = Registry(new_db("change"), POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    yield registry
    registry.close()


def enrolled(registry: Registry, ssn: str = OLD_ID, name: str = "张三") -> str:
    number = registry.allocate_card_number()
    registry.enroll(replace(SAMPLE_HOLDER, ssn=ssn, name=name), number, operator="op")
    return number


def test_request_reissue_makes_no_change_request(registry: Registry) -> None:
    """review17 #15: a 换领 needs its change row; only request_change makes one."""
    number = enrolled(registry)
    before = snapshot(registry)
    with pytest.raises(RegistryError, match="换领须凭变更证明办理"):
        registry.request_reissue(number, operator="op", kind="change")
    assert snapshot(registry) == before and registry.card(number).status == "active"


TABLES = (
    "persons",
    "cards",
    "status_history",
    "blacklist",
    "reissue_requests",
    "identity_changes",
    "audit_events",
    "outbox_events",
)


def snapshot(registry: Registry) -> tuple[object, ...]:
    """Every row count that a 换领 writes to, and the audit chain's head."""
    counts = tuple(
        registry.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES
    )
    head = registry.db.execute("SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1")
    return (*counts, head.fetchone()[0])


def test_the_person_changes_with_the_new_cards_activation(registry: Registry) -> None:
    old_number = enrolled(registry)
    request = registry.request_change(
        old_number, certificate(), operator="op", counter="3号窗口"
    )
    assert (request.kind, request.status) == ("change", "open")
    old = registry.card(old_number)
    assert old.status == "replacement_pending"
    assert "京公(海)变字2026第0815号" in (registry.history(old.id)[-1].evidence or "")
    # the new card is made for the new data; the record keeps the old until activation
    assert (registry.holder_of(request).name, registry.holder_of(request).ssn) == ("张叁", NEW_ID)
    assert registry.person(old.person_id).name == "张三"
    job, new_card = running_job(registry, old_number, "C001", STATION)
    registry.activate(new_card, operator="cc1", job_id=job, fence=1)
    person = registry.person(old.person_id)
    assert (person.name, person.ssn) == ("张叁", NEW_ID)
    assert registry.person_by_ssn(OLD_ID) is None
    assert registry.card(old_number).status == "void" and registry.blacklisted(old_number)
    assert registry.card_by_id(new_card).status == "active"
    change = registry.identity_change(request.id)
    assert change is not None and change.applied_at is not None
    event = registry.db.execute(
        "SELECT details FROM audit_events WHERE action = 'person.identity_change'"
    ).fetchone()
    assert '"name": "张三 → 张叁"' in event[0]
    assert '"ssn": "110105********002X → 110108********0029"' in event[0]
    assert OLD_ID not in event[0] and NEW_ID not in event[0]  # masked, as elsewhere
    assert registry.verify_audit()[1] == []
    # the 领卡证明's rows: the reason and the change, IDs masked
    cert = collection_certificate(registry, request.id)
    assert cert.kind == "换领（身份信息变更）"
    assert cert.change == (
        ("姓名变更", "张三 → 张叁"),
        ("号码变更", "110105********002X → 110108********0029"),
        ("公安变更证明", "京公(海)变字2026第0815号"),
        ("出具机关", "北京市公安局海淀分局"),
        ("社保更改证明", "京社更2026-0042"),
    )


def test_an_activation_that_fails_changes_nothing(registry: Registry) -> None:
    """The person's record, the old card's void and the new card's activation are one
    transaction: the ledger's write failing after the record changed undoes all of it."""
    old_number = enrolled(registry)
    registry.request_change(old_number, certificate(), operator="op")
    job, new_card = running_job(registry, old_number, "C002", STATION)
    before = snapshot(registry)
    with (
        inserts_fail(registry.db, "stock_moves", "ledger disk full"),
        pytest.raises(RegistryError, match="ledger disk full"),
    ):
        registry.activate(new_card, operator="cc1", job_id=job, fence=1)
    assert snapshot(registry) == before
    person = registry.person(registry.card(old_number).person_id)
    assert (person.name, person.ssn) == ("张三", OLD_ID)
    assert registry.card(old_number).status == "replacement_pending"
    assert registry.card_by_id(new_card).status == "personalizing"
    assert registry.verify_audit()[1] == []


def test_enrolling_under_a_pending_changes_new_number_is_refused(registry: Registry) -> None:
    """The new number of an unfinished 换领 is reserved: enrolling another person under it
    is refused as ``request_change`` refuses it, nothing written (review 17, finding 1: it
    used to be accepted and the 换领 could then never be activated) — and the 换领 then
    activates."""
    old_number = enrolled(registry)
    registry.request_change(old_number, certificate(), operator="op")
    number = registry.allocate_card_number()
    before = snapshot(registry)
    with pytest.raises(RegistryError, match="新身份证号码已属于另一参保人"):
        registry.enroll(replace(SAMPLE_HOLDER, ssn=NEW_ID, name="王五"), number, operator="op")
    assert snapshot(registry) == before
    job, new_card = running_job(registry, old_number, "C003", STATION)
    registry.activate(new_card, operator="cc1", job_id=job, fence=1)
    person = registry.person_by_ssn(NEW_ID)
    assert person is not None and person.name == "张叁"
    assert registry.card_by_id(new_card).status == "active"


def test_the_new_number_taken_behind_sscards_back_refuses_the_activation(
    registry: Registry,
) -> None:
    """Another person written under the new number outside sscard after the request: the
    activation is refused whole (the persons' unique number), nothing changes."""
    old_number = enrolled(registry)
    registry.request_change(old_number, certificate(), operator="op")
    job, new_card = running_job(registry, old_number, "C003", STATION)
    behind_its_back(
        registry.path,
        "INSERT INTO persons (ssn, name, gender, ethnicity, birthplace, birth_date, created_at)"
        f" VALUES ('{NEW_ID}', '王五', '2', '01', '110105', '1949-12-31', 'now')",
    )
    before = snapshot(registry)
    with pytest.raises(RegistryError, match="该社会保障号码已登记"):
        registry.activate(new_card, operator="cc1", job_id=job, fence=1)
    assert snapshot(registry) == before
    assert registry.card_by_id(new_card).status == "personalizing"


@pytest.mark.parametrize(
    ("changes", "refusal"),
    [
        ({"old_name": "李四"}, "for another person"),
        ({"new_id": "110108194912310028"}, "校验位错误"),
        ({"new_id": OTHER_ID}, "新身份证号码已属于另一参保人"),
        ({"new_name": "", "new_id": ""}, "nothing changed"),
        ({"old_id": FIFTEEN, "new_name": "", "new_id": ""}, "不用办理换卡手续"),
    ],
)
def test_a_refused_change_writes_nothing(
    registry: Registry, changes: dict[str, str], refusal: str
) -> None:
    old_number = enrolled(registry)
    enrolled(registry, OTHER_ID, "王五")
    before = snapshot(registry)
    with pytest.raises(RegistryError, match=refusal):
        registry.request_change(old_number, certificate(**changes), operator="op")
    assert snapshot(registry) == before
    assert registry.card(old_number).status == "active"


def test_a_card_not_active_or_a_number_pending_elsewhere_is_refused(registry: Registry) -> None:
    lost = enrolled(registry)
    registry.formalize_loss(lost, operator="op", evidence="ID")
    other = enrolled(registry, OTHER_ID, "王五")
    registry.request_change(
        other,
        certificate(old_name="王五", old_id=OTHER_ID, new_name="", new_id="110108194912310045"),
        operator="op",
    )
    before = snapshot(registry)
    with pytest.raises(RegistryError, match="不能换领：卡片状态为 正式挂失"):
        registry.request_change(lost, certificate(), operator="op")
    with pytest.raises(RegistryError, match="不能换领：卡片状态为 换卡中"):
        registry.request_change(other, certificate(old_name="王五", old_id=OTHER_ID), operator="op")
    assert snapshot(registry) == before
    third = enrolled(registry, "110105194912310046", "赵六")
    before = snapshot(registry)
    with pytest.raises(RegistryError, match="新身份证号码已属于另一参保人"):  # pending for 王五
        registry.request_change(
            third,
            certificate(old_name="赵六", old_id="110105194912310046", new_id="110108194912310045"),
            operator="op",
        )
    assert snapshot(registry) == before


def test_an_agent_may_apply_with_both_ids(registry: Registry) -> None:
    old_number = enrolled(registry)
    before = snapshot(registry)
    with pytest.raises(InvalidData, match="代办人证件号码"):
        registry.request_change(
            old_number, certificate(), operator="op", agent=Agent("李四", "110105194912310021")
        )
    assert snapshot(registry) == before
    request = registry.request_change(
        old_number, certificate(), operator="op", agent=Agent("李四", OTHER_ID)
    )
    assert collection_certificate(registry, request.id).agent_name == "李四"


def test_requests_from_before_the_migration_keep_their_kind(
    new_db: NewDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The migration widens the kinds (SQLite: a column replaced, PostgreSQL: the CHECK
    swapped): the requests already there keep theirs and the audit still verifies; the
    database still refuses a kind that is none of them."""
    db = new_db("old")
    with monkeypatch.context() as m:
        m.setattr(registry_module, "MIGRATIONS", MIGRATIONS[: MIGRATIONS.index(CHANGE_MIGRATION)])
        old = before_changes(Registry(db, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY), m)
        lost = enrolled(old)
        old.formalize_loss(lost, operator="op", evidence="ID")
        reissue = old.request_reissue(lost, operator="op")
        old.close()
    registry = Registry(db, POLICY, clock=pinned_clock, audit_key=AUDIT_KEY)
    assert registry.schema_version == len(MIGRATIONS)
    assert registry.request(reissue.id).kind == "reissue"
    assert registry.verify_audit()[1] == []
    other = enrolled(registry, OTHER_ID, "王五")
    change = registry.request_change(
        other, certificate(old_name="王五", old_id=OTHER_ID, new_id=""), operator="op"
    )
    assert registry.request(change.id).kind == "change"
    with pytest.raises(RegistryError, match="kind"), registry.transaction() as conn:
        conn.execute("UPDATE reissue_requests SET kind = 'other' WHERE id = ?", (change.id,))
    assert registry.verify_audit()[1] == []
    registry.close()


def test_a_change_edited_outside_sscard_is_found_by_the_audit(registry: Registry) -> None:
    """The new name/ID a card is made for is a state row like every other: changed behind
    sscard's back (so the next activation would write someone else's data), ``audit
    verify`` finds it."""
    request = registry.request_change(enrolled(registry), certificate(), operator="op")
    assert registry.verify_audit()[1] == []
    behind_its_back(
        registry.path, f"UPDATE identity_changes SET new_ssn = '{OTHER_ID}' WHERE request_id = "
        f"{request.id}"
    )
    problems = registry.verify_audit()[1]
    assert problems and all("identity_changes/1" in p for p in problems)


def test_the_auditor_finds_the_person_by_every_number_they_had(registry: Registry) -> None:
    """The audit search by person (review 17, finding 7): after a 换领 the old number still
    finds the person; a first-generation 15-digit number finds the person of its upgrade;
    the API-path subjects are those of every number the person had, in both forms."""
    old_number = enrolled(registry)
    registry.request_change(old_number, certificate(), operator="op")
    job, new_card = running_job(registry, old_number, "C003", STATION)
    registry.activate(new_card, operator="cc1", job_id=job, fence=1)
    person = registry.person_by_ssn(NEW_ID)
    assert person is not None
    mine = audit_store.person_subjects(registry.db, NEW_ID)
    assert mine is not None and mine[0] == f"person/{person.id}"
    for number in (OLD_ID, FIFTEEN):
        assert audit_store.person_subjects(registry.db, number) == mine
    every = {f"/v1/persons/{n}" for n in (NEW_ID, OLD_ID, FIFTEEN)}
    for number in (NEW_ID, OLD_ID, FIFTEEN):
        subjects = SearchForm(person=number).search(registry).subjects
        assert subjects is not None and every <= set(subjects) and set(mine) <= set(subjects)
    # NEW_ID's 15-digit form (born 1949: it could have had one) counts as well
    by_old = SearchForm(person=OLD_ID).search(registry).subjects
    assert by_old is not None and "/v1/persons/110108491231002" in by_old
    assert audit_store.person_subjects(registry.db, OTHER_ID) is None
    assert audit_store.person_subjects(registry.db, "110105491231003") is None  # no one's
