"""换领 (identity data changed; docs/business-rules.md "换领 (identity data changed)"): what
the change certificates say, and the checks a 换领 request passes before anything is written.

The seed (珠海): "因居民身份证号码或姓名变更而需换卡的…应先凭公安部门出具的变更证明到社保经办机构
更改参保资料，再凭公安部门出具的变更证明和社保经办机构的更改证明…申请换卡，如果是属于身份证号从15位
升位到18位的可不用办理换卡手续". The rules: the certificate's old name and ID number are this
person's; the new ID number a valid GB 11643-1999 number (``sscard.identifiers``) that is no
other person's; something actually changed; and an ID number only upgraded from 15 to 18
digits needs no new card (the card stays valid: docs/business-rules.md "15-digit ID numbers").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from personalize.registry_records import Person
from sscard.errors import InvalidData
from sscard.identifiers import same_person_ssn, validate_ssn
from sscard.records import HolderData


@dataclass(frozen=True)
class ChangeCertificate:
    """The 公安部门出具的变更证明 (its number, the issuing office, the old and new name and ID
    number it certifies) and the number of the 社保经办机构的更改证明. A new name or ID number
    left empty did not change."""

    number: str
    authority: str
    bureau_number: str
    old_name: str
    old_id: str
    new_name: str
    new_id: str

    def new_holder(self, person: Person) -> HolderData:
        """The person as the new card carries them: the new name and ID number (the recorded
        ones where none is given), the rest as recorded."""
        return HolderData(
            ssn=self.new_id.strip().upper() or person.ssn,
            name=self.new_name.strip() or person.name,
            gender=person.gender,
            ethnicity=person.ethnicity,
            birthplace=person.birthplace,
            birth_date=date.fromisoformat(person.birth_date),
        )


class ChangeRefused(Exception):
    """A 换领 request refused before anything is written (Chinese first, English beside)."""


# The refusal of a new ID number whose birth date or gender digits differ from the person's
# record: a fixed sentence, no digits (mask_id hides the birth date; the refusal reaches the
# API's problem detail, the console's flash and their audit events).
BIRTH_OR_GENDER_DIFFERS = (
    "新身份证号码中的出生日期/性别与登记不符，本业务不处理 (the new ID number's birth date or "
    "gender differs from the person's record: not a change this service makes)"
)


def check_change(certificate: ChangeCertificate, person: Person, *, today: date) -> HolderData:
    """The new holder data of a 换领 on ``certificate`` for ``person``, or ``ChangeRefused``
    saying why: a certificate field empty, the certificate another person's, a mere 15→18
    upgrade, nothing changed, a new ID number or name that is not valid (with the person's
    recorded birth date and gender: a change of those is not a 换领 of this kind). Whether
    the new number is another person's is the registry's question (it holds the persons)."""
    for value, chinese, english in (
        (certificate.number, "公安部门变更证明编号", "the police change certificate's number"),
        (certificate.authority, "出具变更证明的公安机关", "the police office that issued it"),
        (certificate.bureau_number, "社保经办机构更改证明编号", "the bureau's certificate number"),
    ):
        if not value.strip():
            raise ChangeRefused(f"换领须填写{chinese} ({english} is required)")
    old_id = certificate.old_id.strip().upper()
    if certificate.old_name.strip() != person.name or not same_person_ssn(old_id, person.ssn):
        raise ChangeRefused(
            "变更证明上的原姓名或原身份证号码与该参保人的登记不符，不能为其换领 "
            "(the change certificate is for another person: its old name or ID number is not "
            "this person's)"
        )
    holder = certificate.new_holder(person)
    upgraded = 15 in (len(old_id), len(holder.ssn))
    if upgraded and holder.name == person.name and same_person_ssn(holder.ssn, person.ssn):
        raise ChangeRefused(
            "身份证号从15位升位到18位的可不用办理换卡手续：原卡继续有效 "
            "(an ID number upgraded from 15 to 18 digits needs no new card: the card stays "
            "valid)"
        )
    try:
        validate_ssn(holder.ssn)
    except InvalidData as exc:
        raise ChangeRefused(f"新身份证号码：{exc}") from None
    if holder.name == person.name and holder.ssn == person.ssn:
        raise ChangeRefused(
            "变更证明上的姓名和身份证号码均未改变，无需换领 (nothing changed: same name and ID "
            "number)"
        )
    try:
        holder.validate(today=today)
    except InvalidData:  # its text quotes the number's birth date: answers and audit never do
        raise ChangeRefused(BIRTH_OR_GENDER_DIFFERS) from None
    return holder
