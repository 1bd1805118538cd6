"""The 社会保障卡 chip application: card profiles, data-element codecs, identifiers and check
characters, card operations over a transport and a security module (docs/chip-application.md)."""
