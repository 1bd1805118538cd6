"""Argument types shared by the command modules: a refusal names what was expected, in
Chinese first (docs/architecture.md, Conventions), and argparse shows it with the option."""

from __future__ import annotations

import argparse


def positive_count(text: str) -> int:
    """A whole number ≥ 1 (stations, jobs, workers)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"须为正整数 (a whole number ≥ 1), not {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """A number of seconds > 0 (leases, polling intervals)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"须为正数秒 (a positive number of seconds), not {text!r}")
    return value
