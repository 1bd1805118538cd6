"""``sscard hsm …``: key ceremony, key import, listing, the TCP service, and the station's
track key (``new-track-key``)."""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path

from hsm_stub.audit import AuditLog
from hsm_stub.ceremony import CeremonyIO, collect_key
from hsm_stub.errors import KeystoreError
from hsm_stub.keystore import LMK_LENGTH, TEST_CLIENT_SECRET, USAGES, Keystore
from hsm_stub.local import LocalSecurityModule
from hsm_stub.server import HsmServer
from hsm_stub.suites import TDES, suite_for
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


def _secret(args: argparse.Namespace, store: Keystore) -> bytes:
    if args.secret_file:
        text = Path(args.secret_file).read_text(encoding="ascii").strip()
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise KeystoreError("the secret file must hold the client secret in hex") from None
    if store.test:
        return TEST_CLIENT_SECRET
    raise KeystoreError("a production keystore needs --secret-file with the client secret")


def cmd_serve(args: argparse.Namespace) -> int:
    store = open_keystore(Path(args.keystore))
    host, _, port = args.listen.rpartition(":")
    audit = AuditLog(args.audit_log)
    server = HsmServer(
        LocalSecurityModule(store),
        secret=_secret(args, store),
        audit=audit,
        host=host or "127.0.0.1",
        port=int(port),
        max_clients=args.max_clients,
        request_timeout=args.request_timeout,
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
    p.add_argument("--secret-file", help="client secret, hex (a test keystore has a default)")
    p.add_argument("--audit-log", default="hsm-audit.log", help="the service's audit log")
    p.add_argument("--max-clients", type=int, default=64, help="concurrent connections")
    p.add_argument(
        "--request-timeout", type=float, default=10.0, help="seconds a client has per request"
    )
    p.set_defaults(func=cmd_serve)

    p = hsm.add_parser(
        "new-track-key",
        help="create the station's track key (32 random bytes, hex, mode 0600)",
        description="Create the key that seals track images at rest (station track_key). "
        "Prints only the path and the key's check value (KCV); refuses an existing file.",
    )
    p.add_argument("--out", required=True, type=Path, help="the key file to create")
    p.add_argument("--json", action="store_true", help=json_help)
    p.set_defaults(func=cmd_new_track_key)
