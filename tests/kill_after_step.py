"""``python tests/kill_after_step.py STEP ARGS…``: ``sscard ARGS…`` whose job runner kills its
own process with SIGKILL right after it records STEP as done — a real process dying by a real
signal at an exact point, for the crash tests (docs/service.md, Jobs). Production code has no
such hook: this entry gives the CLI's ``JobRunner`` an ``after_step`` callback, then runs the
same ``main`` as ``sscard``."""

from __future__ import annotations

import functools
import os
import signal
import sys
from pathlib import Path

from personalize import cli, service_commands
from personalize.jobs import STEPS, AfterStep, JobRunner

HERE = Path(__file__)


def argv(step: str, *args: str) -> list[str]:
    """The command line running ``sscard args…`` killed after ``step``."""
    if step not in STEPS:
        raise ValueError(f"no step {step!r}: one of {', '.join(STEPS)}")
    return [sys.executable, str(HERE), step, *args]


def killer(step: str) -> AfterStep:
    def after_step(done: str) -> None:
        if done == step:
            os.kill(os.getpid(), signal.SIGKILL)

    return after_step


def main() -> int:
    step, *args = sys.argv[1:]
    service_commands.JobRunner = functools.partial(JobRunner, after_step=killer(step))  # type: ignore[misc]
    return cli.main(args)


if __name__ == "__main__":
    sys.exit(main())
