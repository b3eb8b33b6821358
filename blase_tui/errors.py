"""Errors that end a command with one clear sentence and a meaningful exit code.

Exit codes (DESIGN.md): 0 ok, 1 step failed, 2 usage or config error, 3 another copy of the step holds the
lock, 130 interrupted.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3
EXIT_INTERRUPTED = 130


class BlaseError(Exception):
    """A problem the user can fix; ``str(err)`` is the one sentence we print."""

    exit_code = EXIT_FAILED


class ConfigError(BlaseError):
    """Bad project configuration, unknown step, bad ``--set`` value, unknown run id..."""

    exit_code = EXIT_USAGE


class StepLocked(BlaseError):
    """Another process is running the same step of the same project."""

    exit_code = EXIT_LOCKED


class StepInterrupted(BaseException):
    """Raised inside a step when SIGTERM/SIGINT arrives; BaseException so ``except Exception`` in user code
    does not swallow it."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum
