"""One error type for every problem a user can fix, always with a one-line "what to do".

Usage: ``raise OhloraError("unknown profile 'big'", fix="use one of: embedded, paper, tiny")``

Entry points (the ``python -m ohlora_utils.*`` commands, the notebooks' first cells) turn an
``OhloraError`` into a single readable line instead of a traceback from deep inside a library.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager


class OhloraError(RuntimeError):
    """A problem with the user's input, files or environment, with the fix in the message."""

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(problem if fix is None else f"{problem} — {fix}")


@contextmanager
def exit_on_user_error(prog: str):
    """Print an OhloraError as one line on stderr and exit with status 2 (for command-line entry points)."""
    try:
        yield
    except OhloraError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
