"""``sscard hsm …``: key ceremony, key import, listing, the TCP service and its clients
(``add-client``, ``list-clients``, ``remove-client``), and the station's track key
(``new-track-key``)."""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path

from hsm_stub.audit import AuditLog
from hsm_stub.ceremony import CeremonyIO, collect_key
from hsm_stub.errors import KeystoreError
from hsm_stub.keystore import LMK_LENGTH, ROLE_USAGES, USAGES, Keystore
from hsm_stub.local import LocalSecurityModule
from hsm_stub.server import HsmServer
from hsm_stub.suites import TDES, suite_for
from personalize.cli_types import positive_count
from personalize.prompts import confirm, read_secret, say
from personalize.trackvault import TrackVault

CEREMONY = CeremonyIO(read_secret=read_secret, confirm=confirm, say=say)


def open_keystore(path: Path) -> Keystore:
    """Open a keystore; a production one asks its custodians for the LMK components."""
    header = Keystore.read_header(path)
    if header.get("test") is True:
        return Keystore.open(path)
    custodians = int(header.get("custodians", 2))
    say(f"打开密钥库 opening keystore {path}: {custodians} 位托管人输入 LMK 分量")
    lmk = collect_key(CEREMONY, custodians=custodians, length=LMK_LENGTH, suite=TDES, what="LMK")
    return Keystore.open(path, lmk)


def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.keystore)
    if path.exists():
        raise KeystoreError(f"{path} exists; refusing to overwrite a keystore")
    if args.test_keys:
        store = Keystore.create_test(path)
        say(f"测试密钥库 test keystore {path} created with the documented test keys")
    else:
        say(f"密钥仪式 key ceremony: {args.custodians} 位托管人 custodians, LMK {LMK_LENGTH} B")
        lmk = collect_key(
            CEREMONY, custodians=args.custodians, length=LMK_LENGTH, suite=TDES, what="LMK"
        )
        store = Keystore.create(path, lmk, custodians=args.custodians)
    print(
        json.dumps(
            {
                "keystore": str(path),
                "test": store.test,
                "keys": [k.as_dict() for k in store.list()],
            },
            ensure_ascii=False,
        )
    )
    return 0


def cmd_import_key(args: argparse.Namespace) -> int:
    store = open_keystore(Path(args.keystore))
    suite = suite_for(args.algorithm)
    say(
        f"导入密钥 importing key {args.label!r} ({args.algorithm}, {args.usage}), "
        f"{args.components} components"
    )
    value = collect_key(
        CEREMONY, custodians=args.components, length=args.length, suite=suite, what=args.label
    )
    info = store.put(args.label, args.algorithm, args.usage, value)
    print(json.dumps(info.as_dict()))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store = open_keystore(Path(args.keystore))
    keys = [k.as_dict() for k in store.list()]
    if args.json:
        print(json.dumps({"test": store.test, "keys": keys}, indent=2))
        return 0
    print(f"{'label':<12} {'algorithm':<9} {'usage':<14} {'version':>7}  KCV")
    for k in keys:
        print(
            f"{k['label']:<12} {k['algorithm']:<9} {k['usage']:<14} {k['version']:>7}  {k['kcv']}"
        )
    return 0


def cmd_add_client(args: argparse.Namespace) -> int:
    """Register a client; its secret (given on stdin or generated) is printed once."""
    store = open_keystore(Path(args.keystore))
    secret = None
    if args.secret_stdin:
        text = read_secret("客户端密钥 client secret (hex): ").strip()
        try:
            secret = bytes.fromhex(text)
        except ValueError:
            raise KeystoreError(
                "客户端密钥须为十六进制 the client secret must be hexadecimal; nothing was changed"
            ) from None
    secret = store.add_client(args.id, args.role, secret=secret)
    shown = None if args.secret_stdin else secret.hex().upper()
    if args.json:
        print(json.dumps({"id": args.id, "role": args.role, "secret": shown}))
    else:
        say(f"客户端已登记 client {args.id!r} registered with role {args.role}")
        if shown is not None:
            say("密钥只显示这一次 the secret is shown this once: put it in the station's "
                "hsm_secret_file (mode 0600)")  # fmt: skip
            print(shown)
    return 0


def cmd_list_clients(args: argparse.Namespace) -> int:
    store = open_keystore(Path(args.keystore))
    clients = [{"id": c.id, "role": c.role} for c in store.clients()]
    if args.json:
        print(json.dumps({"clients": clients}))
        return 0
    for c in clients:
        print(f"{c['id']:<24} {c['role']}")
    return 0


def cmd_remove_client(args: argparse.Namespace) -> int:
    store = open_keystore(Path(args.keystore))
    store.remove_client(args.id)
    say(f"客户端已注销 client {args.id!r} removed")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    store = open_keystore(Path(args.keystore))
    if not store.clients():
        raise KeystoreError(
            "密钥库中没有登记客户端 no client is registered: sscard hsm add-client first"
        )
    host, _, port = args.listen.rpartition(":")
    audit = AuditLog(args.audit_log)
    server = HsmServer(
        LocalSecurityModule(store),
        audit=audit,
        host=host or "127.0.0.1",
        port=int(port),
        max_clients=args.max_clients,
        max_per_address=args.max_per_address,
        handshake_timeout=args.handshake_timeout,
        request_timeout=args.request_timeout,
        workers=args.workers,
    )

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        # Announced inside the try: a SIGTERM right after the announcement still stops the
        # server cleanly (the handler raises KeyboardInterrupt wherever it lands).
        print(
            f"security module listening on {server.host}:{server.port} "
            f"({'test' if store.test else 'production'} keystore, audit log {args.audit_log})",
            flush=True,
        )
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        audit.close()
    return 0


def cmd_new_track_key(args: argparse.Namespace) -> int:
    """A new track key file; only its path and check value are shown, never the key."""
    vault = TrackVault.create(args.out)
    if args.json:
        print(json.dumps({"track_key": str(args.out), "kcv": vault.kcv}))
    else:
        print(f"磁道密钥已写入 track key written to {args.out} (0600)，校验值 KCV {vault.kcv}")
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hsm = sub.add_parser("hsm", help="the software security module").add_subparsers(
        dest="hsm_command", required=True
    )
    keystore_help = "the keystore file"
    json_help = "output JSON (errors too)"
    p = hsm.add_parser("init", help="create a keystore (key ceremony for the LMK)")
    p.add_argument("--keystore", required=True, help="the keystore file to create")
    p.add_argument("--custodians", type=int, default=2, help="LMK components (at least 2)")
    p.add_argument(
        "--test-keys",
        action="store_true",
        help="a test keystore with the documented test keys (no ceremony)",
    )
    p.set_defaults(func=cmd_init)

    p = hsm.add_parser("import-key", help="load a key from custodians' components")
    p.add_argument("--keystore", required=True, help=keystore_help)
    p.add_argument("--label", required=True, help="the key's label in the keystore")
    p.add_argument("--algorithm", choices=("3DES", "SM4"), default="3DES", help="key algorithm")
    p.add_argument(
        "--usage",
        required=True,
        choices=USAGES,
        help="what the key may be used for",
    )
    p.add_argument("--components", type=int, default=2, help="key components (custodians)")
    p.add_argument("--length", type=int, default=16, help="key length in bytes (16 or 24)")
    p.set_defaults(func=cmd_import_key)

    p = hsm.add_parser("list", help="labels, algorithms, versions and KCVs")
    p.add_argument("--keystore", required=True, help=keystore_help)
    p.add_argument("--json", action="store_true", help=json_help)
    p.set_defaults(func=cmd_list)

    p = hsm.add_parser("serve", help="serve the keystore over the TCP host protocol")
    p.add_argument("--keystore", required=True, help=keystore_help)
    p.add_argument("--listen", default="127.0.0.1:9630", help="HOST:PORT (default loopback)")
    p.add_argument("--audit-log", default="hsm-audit.log", help="the service's audit log")
    p.add_argument("--max-clients", type=int, default=64, help="concurrent connections")
    p.add_argument(
        "--max-per-address",
        type=int,
        default=16,
        help="concurrent connections from one client address",
    )
    p.add_argument(
        "--handshake-timeout",
        type=float,
        default=3.0,
        help="seconds a new connection has to authenticate, all frames included",
    )
    p.add_argument(
        "--request-timeout",
        type=float,
        default=10.0,
        help="seconds a request frame has from its first byte to its last",
    )
    p.add_argument(
        "--workers",
        type=positive_count,
        default=os.cpu_count() or 1,
        help="worker processes serving the connections (default: one per core)",
    )
    p.set_defaults(func=cmd_serve)

    p = hsm.add_parser(
        "add-client",
        help="register a client of the TCP service (id, role, secret)",
        description="Register a client of `hsm serve` in the keystore: the station's "
        "hsm_client id, its role, and a secret for the handshake — generated and printed "
        "once, or read as hex from standard input with --secret-stdin.",
    )
    p.add_argument("--keystore", required=True, help=keystore_help)
    p.add_argument("--id", required=True, help="the client id (the station's hsm_client)")
    p.add_argument(
        "--role", required=True, choices=sorted(ROLE_USAGES), help="what the client may use"
    )
    p.add_argument(
        "--secret-stdin", action="store_true", help="read the secret (hex) from standard input"
    )
    p.add_argument("--json", action="store_true", help=json_help)
    p.set_defaults(func=cmd_add_client)

    p = hsm.add_parser("list-clients", help="registered clients and their roles (no secrets)")
    p.add_argument("--keystore", required=True, help=keystore_help)
    p.add_argument("--json", action="store_true", help=json_help)
    p.set_defaults(func=cmd_list_clients)

    p = hsm.add_parser("remove-client", help="unregister a client of the TCP service")
    p.add_argument("--keystore", required=True, help=keystore_help)
    p.add_argument("--id", required=True, help="the client id")
    p.set_defaults(func=cmd_remove_client)

    p = hsm.add_parser(
        "new-track-key",
        help="create the station's track key (32 random bytes, hex, mode 0600)",
        description="Create the key that seals track images at rest (station track_key). "
        "Prints only the path and the key's check value (KCV); refuses an existing file.",
    )
    p.add_argument("--out", required=True, type=Path, help="the key file to create")
    p.add_argument("--json", action="store_true", help=json_help)
    p.set_defaults(func=cmd_new_track_key)
