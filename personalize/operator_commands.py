"""``sscard operator add|list|disable``, ``sscard login``, ``sscard logout``, ``sscard whoami``,
and the gate every state-changing command passes (docs/service.md "Operators").

Passwords are read from standard input (without echo on a terminal), never from arguments.
``login`` writes the session file named by ``$SSCARD_SESSION`` (default
``~/.config/sscard/session``), mode 0600; every state-changing command reads it
(``acting``). Dual control (``confirmed``): a second operator confirms with
``--confirm-by NAME`` (their password from standard input) or ``--confirm-session FILE``
(their own session file)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from personalize.operators import (
    Operator,
    OperatorError,
    add_operator,
    authenticate,
    confirm,
    disable_operator,
    end_session,
    has_operators,
    list_operators,
    load_session,
    open_session,
    refuse,
    require,
    save_session,
    session_operator,
    session_path,
)
from personalize.policy import load_policy
from personalize.prompts import read_secret
from personalize.registry import Registry
from personalize.registry_options import add_common_options, add_db_option, open_registry
from personalize.roles import Role
from personalize.station import StationConfig


def acting(registry: Registry, action: str) -> Operator:
    """The logged-in operator (``$SSCARD_SESSION``) allowed ``action``, or refused."""
    return require(registry, load_session(session_path()), action)


def confirmed(registry: Registry, actor: Operator, args: argparse.Namespace, action: str) -> str:
    """Dual control for ``action``: the confirming operator's name, after their password
    (``--confirm-by``) or their session (``--confirm-session``) was checked."""
    if args.confirm_session:
        session = load_session(Path(args.confirm_session))
        confirmer = session_operator(registry, session, action=action)
    elif args.confirm_by:
        password = read_secret(f"复核人 {args.confirm_by} 请输入口令 (confirming password): ")
        confirmer = authenticate(registry, args.confirm_by, password, purpose=action)
    else:
        raise refuse(
            registry,
            actor.name,
            action,
            action,
            "须由另一位主管复核：--confirm-by NAME（口令从标准输入读取）或 --confirm-session FILE "
            "(dual control: a second operator must confirm)",
        )
    return confirm(registry, actor, confirmer, action).name


def add_confirm_options(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--confirm-by",
        metavar="NAME",
        help="复核人 (dual control): a supervisor other than you; their password is read "
        "from standard input",
    )
    group.add_argument(
        "--confirm-session",
        metavar="FILE",
        help="复核人 (dual control) by their own session file instead of their password",
    )


def _registry(args: argparse.Namespace) -> Registry:
    """The registry of ``--station`` (keyed by the station's audit module) or of ``--db``
    (keyed by ``--hsm``)."""
    if args.station:
        station = StationConfig.load(args.station)
        return station.open_registry(load_policy(station.policy))
    return open_registry(args)


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2) if args.json else text)


def _new_password(name: str) -> str:
    password = read_secret(f"请输入 {name} 的新口令 (new password): ")
    if sys.stdin.isatty() and read_secret("请再次输入 (again): ") != password:
        raise OperatorError("两次输入的口令不一致，未办理 (the passwords differ; nothing done)")
    return password


def cmd_operator_add(args: argparse.Namespace) -> int:
    registry = _registry(args)
    by = acting(registry, "operator.add") if has_operators(registry) else None
    added = add_operator(registry, args.name, Role(args.role), _new_password(args.name), by=by)
    _emit(
        args,
        {"operator": added.name, "role": str(added.role), "by": None if by is None else by.name},
        f"已新增操作员 added {added.name}（{added.role.label} {added.role}）",
    )
    return 0


def cmd_operator_list(args: argparse.Namespace) -> int:
    operators = list_operators(_registry(args))
    rows = [{"operator": o.name, "role": str(o.role), "enabled": o.enabled} for o in operators]
    _emit(
        args,
        {"operators": rows},
        "\n".join(
            f"{o.name}\t{o.role.label} {o.role}\t{'启用' if o.enabled else '已停用 disabled'}"
            for o in operators
        )
        or "没有操作员 (no operators)",
    )
    return 0


def cmd_operator_disable(args: argparse.Namespace) -> int:
    registry = _registry(args)
    by = acting(registry, "operator.disable")
    gone = disable_operator(registry, args.name, by=by)
    _emit(args, {"operator": gone.name, "enabled": False}, f"已停用 disabled {gone.name}")
    return 0


def cmd_login(args: argparse.Namespace) -> int:
    """A new session replaces the file's earlier one, which is ended (a replaced token is
    never left open in the registry)."""
    registry = _registry(args)
    password = read_secret(f"{args.name} 请输入口令 (password): ")
    session = open_session(registry, args.name, password)
    with contextlib.suppress(OperatorError):
        earlier = load_session(session_path())
        if earlier is not None:
            end_session(registry, earlier)
    path = save_session(session_path(), session)
    expires = registry.policy.local_time(datetime.fromisoformat(session.expires_at)).isoformat()
    _emit(
        args,
        {"operator": session.operator, "expires_at": expires, "session_file": str(path)},
        f"已登录 logged in {session.operator}；有效至 valid until {expires}；会话文件 {path}",
    )
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    path = session_path()
    session = load_session(path)
    if session is None:
        raise OperatorError(f"未登录 (not logged in): {path}")
    ended = end_session(_registry(args), session)
    os.unlink(path)
    data = {"operator": session.operator, "ended": ended}
    _emit(args, data, f"已注销 logged out {session.operator}")
    return 0


def cmd_whoami(args: argparse.Namespace) -> int:
    registry = _registry(args)
    session = load_session(session_path())
    who = session_operator(registry, session, action="whoami")
    assert session is not None
    expires = registry.policy.local_time(datetime.fromisoformat(session.expires_at)).isoformat()
    _emit(
        args,
        {"operator": who.name, "role": str(who.role), "expires_at": expires},
        f"{who.name}（{who.role.label} {who.role}）；会话有效至 valid until {expires}",
    )
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        where = p.add_mutually_exclusive_group()
        add_db_option(where)
        where.add_argument("--station", help="the registry of this station file instead")
        add_common_options(p)

    roles = ", ".join(f"{r} {r.label}" for r in Role)
    op = sub.add_parser("operator", help="operator accounts and roles").add_subparsers(
        dest="operator_command", required=True
    )
    p = op.add_parser(
        "add",
        help="add an operator; the password is read from standard input",
        description="Add an operator. The first operator of an empty registry is a supervisor "
        "added without a session; later ones need a supervisor's session (sscard login).",
    )
    p.add_argument("name", help="operator name (工号)")
    p.add_argument("--role", required=True, choices=[str(r) for r in Role], help=roles)
    common(p)
    p.set_defaults(func=cmd_operator_add)
    p = op.add_parser("list", help="operators, roles and whether enabled")
    common(p)
    p.set_defaults(func=cmd_operator_list)
    p = op.add_parser("disable", help="disable an operator and end their sessions (supervisor)")
    p.add_argument("name", help="operator name (工号)")
    common(p)
    p.set_defaults(func=cmd_operator_disable)

    p = sub.add_parser(
        "login",
        help="log in: password from standard input; the session file is $SSCARD_SESSION",
        description="Log in. The password is read from standard input; the session (8 hours) "
        "goes to the file $SSCARD_SESSION names (default ~/.config/sscard/session), mode 0600.",
    )
    p.add_argument("name", help="operator name (工号)")
    common(p)
    p.set_defaults(func=cmd_login)
    p = sub.add_parser("logout", help="end the session of $SSCARD_SESSION and remove the file")
    common(p)
    p.set_defaults(func=cmd_logout)
    p = sub.add_parser("whoami", help="the operator and role of the current session")
    common(p)
    p.set_defaults(func=cmd_whoami)
