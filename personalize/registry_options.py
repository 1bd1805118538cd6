"""How a command line names the registry and the security module that keys its audit chain:
``--db`` with ``--hsm`` / ``--hsm-client`` / ``--hsm-secret-file`` / ``--audit-checkpoints``
(each defaulting to its ``$SSCARD_…`` variable), shared by the registry, job, audit and
operator commands (docs/service.md "Audit")."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from personalize.policy import load_policy
from personalize.registry import Registry
from personalize.station import open_security_module

DEFAULT_DB = "sscard.db"


def add_db_option(
    p: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup, *, creates: bool = False
) -> None:
    """``--db``: the registry — a SQLite file or a ``postgresql://`` URL (default
    ``$SSCARD_DB`` or ``./sscard.db``)."""
    p.add_argument(
        "--db",
        default=os.environ.get("SSCARD_DB", DEFAULT_DB),
        help=f"registry database: a SQLite file or postgresql://USER@HOST:PORT/NAME "
        f"(default $SSCARD_DB or {DEFAULT_DB}); "
        + ("created when missing" if creates else "must exist: see `sscard registry init`"),
    )


def add_common_options(p: argparse.ArgumentParser) -> None:
    """``--policy``, ``--json`` and the audit-key options every registry command takes."""
    p.add_argument("--policy", default="default", help="region policy name or TOML path")
    p.add_argument("--json", action="store_true", help="output JSON (errors too)")
    add_audit_options(p)


def add_audit_options(p: argparse.ArgumentParser) -> None:
    """``--hsm``, ``--hsm-client``, ``--hsm-secret-file``, ``--audit-checkpoints``."""
    p.add_argument(
        "--hsm",
        default=os.environ.get("SSCARD_HSM"),
        help="security module holding the audit key (default $SSCARD_HSM): "
        "tcp://HOST:PORT or keystore:PATH; without it the registry is read-only",
    )
    p.add_argument(
        "--hsm-client",
        default=os.environ.get("SSCARD_HSM_CLIENT", "test-center"),
        help="client id at a tcp:// module (default $SSCARD_HSM_CLIENT, else the "
        "documented test client test-center)",
    )
    p.add_argument(
        "--hsm-secret-file",
        default=os.environ.get("SSCARD_HSM_SECRET_FILE"),
        help="hex client secret of a tcp:// module (default $SSCARD_HSM_SECRET_FILE)",
    )
    p.add_argument(
        "--audit-checkpoints",
        default=os.environ.get("SSCARD_AUDIT_CHECKPOINTS"),
        help="the audit checkpoint log (default $SSCARD_AUDIT_CHECKPOINTS, else "
        "<db>.checkpoints beside a SQLite file, HOST-PORT-NAME.checkpoints in the current "
        "directory for a postgresql:// registry)",
    )


def open_registry(args: argparse.Namespace, *, create: bool = False) -> Registry:
    """The registry named by ``--db``: an existing one unless ``create``. Its audit key is in
    the security module named by ``--hsm`` (``$SSCARD_HSM``); without one the registry is
    read-only."""
    hsm: str | None = args.hsm
    secret = Path(args.hsm_secret_file) if args.hsm_secret_file else None
    return Registry(
        args.db,
        load_policy(args.policy),
        create=create,
        audit_key=None
        if not hsm
        else open_security_module(hsm, client_id=args.hsm_client, secret_file=secret).audit_mac,
        checkpoints=args.audit_checkpoints,
    )
