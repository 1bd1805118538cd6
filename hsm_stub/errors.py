"""Exception hierarchy of the security module. Messages name labels, algorithms and KCVs,
never key or PIN material."""

from __future__ import annotations


class SecurityModuleError(Exception):
    """Base of every security-module error."""


class KeystoreError(SecurityModuleError):
    """The keystore file cannot be used."""


class WrongComponents(KeystoreError):
    """The entered components do not give this keystore's local master key (LMK)."""


class KeystoreTampered(KeystoreError):
    """The keystore file was altered or corrupted: its authentication tag does not verify."""


class CeremonyError(SecurityModuleError):
    """A key ceremony step failed (bad component, KCV not confirmed, too few custodians)."""


class UnknownKey(SecurityModuleError):
    """No key with that label."""


class KeyUsageError(SecurityModuleError):
    """A key was asked for an operation its usage or algorithm does not allow."""


class BadInput(SecurityModuleError):
    """An argument has the wrong length or form (challenge, factors, PIN digits …)."""


class SecurityModuleUnavailable(SecurityModuleError):
    """The security module cannot be reached or stopped answering (server, PSAM reader)."""


class AuthenticationRefused(SecurityModuleError):
    """The server refused the client's credentials."""


class ProtocolViolation(SecurityModuleError):
    """A frame of the host protocol is malformed or oversize."""


class Forbidden(KeyUsageError):
    """The client's role may not use that key (docs/security-module.md, "Clients and roles")."""
