"""Software security module: algorithms, encrypted keystore and key ceremony, the
SecurityModule interface and its backends — in process, TCP, PSAM (docs/security-module.md)."""
