"""Software security module (algorithms, keystore, SecurityModule backends).

Arrives with the security-module work (issue 3); nothing here yet."""
