"""The operator console (操作台, issue 16; docs/console.md): server-rendered pages for the
counter, the card center and the auditor, served by ``sscard serve`` under ``/console``."""
