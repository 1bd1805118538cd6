"""``sscard serve`` (the HTTP API, docs/api.md) and ``sscard api-client add|list|revoke``
(its clients). Adding and revoking a client is a supervisor's act (``api_client.add``,
``api_client.revoke`` in ``personalize.roles``); the token is printed once and only its
SHA-256 is kept. The web framework is imported only when ``serve`` runs."""

from __future__ import annotations

import argparse
import json
from typing import Any

from personalize.api.clients import add_client, revoke_client
from personalize.api_store import list_clients
from personalize.cli_types import positive_seconds
from personalize.operator_commands import acting
from personalize.registry import READ_ONLY, RegistryError
from personalize.registry_options import add_common_options, add_db_option, open_registry
from personalize.roles import ApiRole

DEFAULT_LISTEN = "127.0.0.1:8630"


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2) if args.json else text)


def listen_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(
            f"监听地址须为 HOST:PORT，如 {DEFAULT_LISTEN} (not HOST:PORT): {text!r}"
        )
    return host, int(port)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from personalize.api.app import create_app

    host, port = args.listen
    app = create_app(args, max_body=args.max_body)
    registry = open_registry(args)  # a missing registry or module stops here, not later
    if registry.audit_key is None:  # every call is audited: a read-only registry cannot serve
        raise RegistryError(READ_ONLY)
    registry.close()
    print(
        f"sscard API listening on http://{host}:{port}, operator console on "
        f"http://{host}:{port}/console/ (Ctrl-C stops it)",
        flush=True,
    )
    # no access log: paths name card and ID numbers (personal data stays out of logs)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    return 0


def cmd_client_add(args: argparse.Namespace) -> int:
    registry = open_registry(args)
    by = acting(registry, "api_client.add")
    client, token = add_client(registry, args.name, ApiRole(args.role), by=by)
    _emit(
        args,
        {"client": client.name, "id": client.id, "role": str(client.role), "token": token},
        f"已新增接口客户端 added {client.name}（{client.role.label} {client.role}）\n"
        f"令牌只显示这一次，请妥善交付 (the token is shown once):\n{token}",
    )
    return 0


def cmd_client_list(args: argparse.Namespace) -> int:
    clients = list_clients(open_registry(args).db)
    rows = [
        {
            "client": c.name,
            "id": c.id,
            "role": str(c.role),
            "created_at": c.created_at,
            "created_by": c.created_by,
            "revoked_at": c.revoked_at,
        }
        for c in clients
    ]
    _emit(
        args,
        {"clients": rows},
        "\n".join(
            f"{c.name}\t{c.role.label} {c.role}\t"
            + ("已吊销 revoked " + c.revoked_at if c.revoked_at else "有效 active")
            for c in clients
        )
        or "没有接口客户端 (no API clients)",
    )
    return 0


def cmd_client_revoke(args: argparse.Namespace) -> int:
    registry = open_registry(args)
    gone = revoke_client(registry, args.name, by=acting(registry, "api_client.revoke"))
    _emit(args, {"client": gone.name, "revoked_at": gone.revoked_at}, f"已吊销 revoked {gone.name}")
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        add_db_option(p)
        add_common_options(p)

    p = sub.add_parser(
        "serve",
        help="serve the HTTP API (docs/api.md) on the registry",
        description="Serve the HTTP API: loss reports, card status, the blacklist feed, "
        "lookups, formal loss, 解挂, reissue requests, jobs. Clients authenticate with the "
        "token of `sscard api-client add`. The operator console (docs/console.md) is at "
        "/console: operators log in with their `sscard operator` accounts.",
    )
    p.add_argument(
        "--listen",
        type=listen_address,
        default=DEFAULT_LISTEN,
        help=f"HOST:PORT to listen on (default {DEFAULT_LISTEN})",
    )
    p.add_argument(
        "--track-key",
        help="the track key file (as a station's track_key): needed for POST /v1/jobs",
    )
    p.add_argument(
        "--max-body",
        type=int,
        default=64 * 1024,
        help="largest request body in bytes; larger ones are refused 413 (default 65536)",
    )
    p.add_argument(
        "--console-idle",
        type=positive_seconds,
        default=30 * 60,
        metavar="SECONDS",
        help="the operator console logs a browser out after this long unused (default 1800; "
        "a session never lasts more than 8 hours)",
    )
    p.add_argument(
        "--secure-cookies",
        action="store_true",
        help="mark the console's cookies Secure (behind an HTTPS reverse proxy)",
    )
    common(p)
    p.set_defaults(func=cmd_serve)

    roles = ", ".join(f"{r} {r.label}" for r in ApiRole)
    client = sub.add_parser("api-client", help="the HTTP API's clients and roles").add_subparsers(
        dest="api_client_command", required=True, metavar="API_CLIENT_COMMAND"
    )
    p = client.add_parser("add", help="add a client; its token is printed once (supervisor)")
    p.add_argument("name", help="client name: letters, digits, _ . - (at most 32)")
    p.add_argument("--role", required=True, choices=[str(r) for r in ApiRole], help=roles)
    common(p)
    p.set_defaults(func=cmd_client_add)
    p = client.add_parser("list", help="clients, roles and whether revoked")
    common(p)
    p.set_defaults(func=cmd_client_list)
    p = client.add_parser("revoke", help="revoke a client's token at once (supervisor)")
    p.add_argument("name", help="client name")
    common(p)
    p.set_defaults(func=cmd_client_revoke)
