"""Operator prompts: secrets are read without echo on a terminal (getpass); from a pipe
(scripts, tests) one line each, never echoed. Prompts go to stderr so stdout stays data."""

from __future__ import annotations

import getpass
import sys

from personalize import textinput


def read_secret(prompt: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt, stream=sys.stderr)
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = sys.stdin.readline()
    sys.stderr.write("\n")
    if not line:
        raise EOFError("no input for a secret prompt")
    return line.rstrip("\r\n")


def read_id_number(prompt: str) -> str:
    """An ID number typed without echo, normalised (personalize/textinput.py)."""
    return textinput.id_number(read_secret(prompt))


def read_pin(prompt: str, length: int) -> str:
    """A PIN typed without echo, normalised: full-width digits from an IME become ASCII."""
    return textinput.pin(read_secret(prompt), length)


def confirm(prompt: str) -> bool:
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not sys.stdin.isatty():
        sys.stderr.write(line if line.endswith("\n") else line + "\n")
    return line.strip().lower() in ("y", "yes", "是")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
