"""``sscard card …``: read a card's public data, verify and change the PIN. PINs are read
from a prompt (no echo on a terminal), never from arguments, and never printed. With a
registry (``--db``, ``$SSCARD_DB``) ``change-pin`` records, once the card answered 9000, that
the card no longer holds the initial PIN (初始密码, docs/business-rules.md "PINs")."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable

from apdu.errors import CardRemoved
from apdu.pcsc import PcscTransport
from apdu.status import PinBlocked, WrongPin
from personalize.agent_options import add_agent_options, agent_of
from personalize.lifecycle import lookup
from personalize.prompts import read_pin, say
from personalize.registry import Registry, RegistryError
from personalize.registry_options import add_audit_options, open_registry
from sscard.card import SocialSecurityCard
from sscard.detect import detect_profile
from sscard.errors import InvalidData
from sscard.profile import load_profile
from sscard.public import read_public

AUTO = "auto"
HOLDER = "holder"  # who changes a PIN at a kiosk or with a desktop reader: the holder (不可代办)

# ``--reader`` of every command; the rule itself is apdu.pcsc.resolve_reader.
READER_HELP = (
    "读卡器：编号、完整名称或只匹配一个读卡器的正则 "
    "(reader: index 0, 1, …, exact name, or a regex matching exactly one reader)"
)


def _card(args: argparse.Namespace, transport: PcscTransport) -> SocialSecurityCard:
    return SocialSecurityCard(transport, load_profile(args.profile))


def cmd_read(args: argparse.Namespace) -> int:
    """Read the public data with the named profile, or the one detected from the card
    (``--profile auto``, docs/chip-application.md "Profile detection"); the PIN is asked for
    when the profile guards EF05/EF06, or with ``--ask-pin`` (then DF03/EF19 参保地 too)."""
    with PcscTransport(args.reader) as transport:
        detection = None
        if args.profile == AUTO:
            profile, traits = detect_profile(transport)
            detection = traits.as_dict()
        else:
            profile = load_profile(args.profile)
        pin = None
        if profile.needs_pin or args.ask_pin:
            pin = read_pin("请输入 PIN (PIN): ", profile.pin.length)
        data = read_public(SocialSecurityCard(transport, profile), pin=pin)
    data["detection"] = detection
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    how = "自动识别 detected" if detection is not None else "指定 given"
    print(f"卡片规范 profile: {data['profile']}（{how}）")
    labels = {
        "card_number": "社会保障卡号",
        "name": "姓名",
        "ssn": "社会保障号码",
        "gender": "性别",
        "birthplace": "出生地",
        "birth_date": "出生日期",
        "issue_date": "发卡日期",
        "expiry_date": "有效期",
        "spec_version": "规范版本",
        "sn": "芯片序列号",
        "card_id": "卡识别码",
        "person_id": "人员识别号",
        "first_region": "初次申请地",
        "insured_region": "参保地",
    }
    for key, label in labels.items():
        if data[key] is not None:
            print(f"{label}: {data[key]}")
    for warning in data["warnings"]:
        print(f"注意 warning: {warning['field']}: {warning['message']}")
    checks = data["checks"]
    print("校验 checks: " + ", ".join(f"{k}={'通过' if v else '失败'}" for k, v in checks.items()))
    return 0 if all(checks.values()) else 1


def _pin_operation(
    args: argparse.Namespace,
    action: Callable[[SocialSecurityCard], None],
    *,
    key: str,
    done: str,
    wrong: str,
    blocked: str,
    record: Callable[[], None] = lambda: None,
) -> int:
    """Run one PIN command on the card; once it answered 9000, ``record`` what it changed in
    the registry; report the outcome (and the tries the card says are left) on stderr, and
    as JSON with ``--json``. ``wrong`` has a ``{n}`` for the tries."""
    with PcscTransport(args.reader) as transport:
        card = _card(args, transport)
        card.select_ssse()
        try:
            action(card)
            record()
        except WrongPin as exc:
            say(wrong.format(n=exc.tries_left))
            _json(args, {key: False, "tries_left": exc.tries_left})
            return 1
        except PinBlocked:
            say(blocked)
            _json(args, {key: False, "tries_left": 0})
            return 1
        except CardRemoved:  # torn: the card holds the old PIN state or the new one
            raise CardRemoved(
                "操作中卡片离开读卡器，结果未知：请重新插卡后核对 (the card left the reader "
                "during the PIN command: the outcome is unknown; reinsert it and check)"
            ) from None
    say(done)
    _json(args, {key: True})
    return 0


def _json(args: argparse.Namespace, data: dict[str, object]) -> None:
    if args.json:
        print(json.dumps(data))


def _pin_length(args: argparse.Namespace) -> int:
    return load_profile(args.profile).pin.length


def cmd_verify_pin(args: argparse.Namespace) -> int:
    pin = read_pin("请输入 PIN (PIN): ", _pin_length(args))
    return _pin_operation(
        args,
        lambda card: card.verify_pin(pin),
        key="verified",
        done="PIN 正确 (PIN verified)",
        wrong="PIN 错误，剩余 {n} 次 (wrong PIN, {n} tries left)",
        blocked="PIN 已锁定，请持身份证到柜台解锁 (PIN blocked: unblock at the counter)",
    )


def _writable_registry(args: argparse.Namespace) -> Registry | None:
    """The registry ``--db`` names (None without one), refused before any PIN is typed when
    it cannot record: missing, or read-only (no audit key)."""
    if not args.db:
        return None
    registry = open_registry(args)
    if registry.audit_key is None:
        registry.close()
        raise RegistryError(
            "登记库只读，无法记录初始密码标记：请用 --hsm 指定安全模块，未修改 PIN "
            "(the registry is read-only without the audit key; the PIN was not changed)"
        )
    return registry


def _registered_number(card: SocialSecurityCard, registry: Registry, pin: str) -> str:
    """The card's 卡号 from its EF05 (after the PIN where the profile guards it), known to
    the registry — else ``RegistryError`` before anything on the card changes."""
    if card.profile.needs_pin:
        card.verify_pin(pin)
    number = card.read_issuer().card_number
    registry.card(number)
    return number


def cmd_change_pin(args: argparse.Namespace) -> int:
    # who is at the reader: with --agent-* an agent, whom the transition table's ``pin`` rows
    # refuse (珠海 "不可代办") before the registry is opened, a PIN typed or the card touched
    lookup("pin", None, "change_pin", agent=agent_of(args) is not None)
    registry = _writable_registry(args)
    length = _pin_length(args)
    old = read_pin("请输入原 PIN (current PIN): ", length)
    new = read_pin("请输入新 PIN (new PIN): ", length)
    if read_pin("请再次输入新 PIN (new PIN again): ", length) != new:
        raise InvalidData("两次输入的新 PIN 不一致 (the new PINs differ); nothing was changed")
    numbers: list[str] = []

    def change(card: SocialSecurityCard) -> None:
        if registry is not None:
            numbers.append(_registered_number(card, registry, old))
        card.change_pin(old, new)

    def record() -> None:
        if registry is None:
            return
        try:  # a PIN changed back to the default one is still the initial PIN
            registry.mark_initial_pin(
                numbers[0],
                new == registry.policy.default_pin,
                operator=HOLDER,
                via="card change-pin",
            )
        except RegistryError as exc:
            raise RegistryError(
                f"PIN 已修改，但登记库未记录：{exc} (the PIN was changed on the card; the "
                "registry did not record it)"
            ) from None

    try:
        return _pin_operation(
            args,
            change,
            key="changed",
            done="PIN 已修改 (PIN changed)",
            wrong="原 PIN 错误，剩余 {n} 次 (wrong current PIN, {n} tries left); PIN unchanged",
            blocked="PIN 已锁定 (PIN blocked); PIN unchanged",
            record=record,
        )
    finally:
        if registry is not None:
            registry.close()


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    card = sub.add_parser("card", help="read and PIN operations on a 社保卡").add_subparsers(
        dest="card_command", required=True
    )
    for name, func, text in (
        ("read", cmd_read, "print the card's public data and checks"),
        ("verify-pin", cmd_verify_pin, "verify the PIN (prompted)"),
        ("change-pin", cmd_change_pin, "change the PIN (prompted)"),
    ):
        p = card.add_parser(name, help=text)
        p.add_argument("--reader", default="0", help=READER_HELP + " [0]")
        if func is cmd_read:
            p.add_argument(
                "--profile",
                default=AUTO,
                help="卡片规范：名称、TOML 路径，或 auto 由卡片识别 "
                "(card profile name, TOML path, or auto: detected from the card) [auto]",
            )
            p.add_argument(
                "--ask-pin",
                action="store_true",
                help="询问 PIN，并读取须验证 PIN 的文件（参保地）"
                "(ask for the PIN and read the files guarded by it, e.g. 参保地)",
            )
        else:
            p.add_argument("--profile", default="default", help="card profile name or TOML path")
        if func is cmd_change_pin:
            p.add_argument(
                "--db",
                default=os.environ.get("SSCARD_DB"),
                help="登记库：修改成功后记录该卡不再是初始密码 (registry: record that the card "
                "no longer holds the initial PIN; default $SSCARD_DB, none: not recorded)",
            )
            p.add_argument(
                "--policy",
                default="default",
                help="region policy name or TOML path (its initial PIN) [default]",
            )
            add_audit_options(p)
            add_agent_options(p)  # given: refused, a PIN change is the holder's (不可代办)
        p.add_argument("--json", action="store_true", help="output JSON (errors too)")
        p.set_defaults(func=func)
