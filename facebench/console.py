"""What a long job says to the person who started it.

Code below the command line never prints: it says its progress lines through the
``facebench.console`` logger (:func:`say`), which a run's log file records like any other
line. The command line shows them on stderr (:func:`shown_on_stderr`); a Python caller
sees them when it configures logging, and not otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import sys

CONSOLE = logging.getLogger("facebench.console")


def say(message: str) -> None:
    """One line (or a block of lines) for the person at the terminal."""
    CONSOLE.info(message)


@contextlib.contextmanager
def shown_on_stderr():
    """While inside, :func:`say` prints its lines on stderr as they are, with nothing added."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(logging.INFO)
    before = CONSOLE.level
    CONSOLE.addHandler(handler)
    if CONSOLE.getEffectiveLevel() > logging.INFO:
        CONSOLE.setLevel(logging.INFO)
    try:
        yield
    finally:
        CONSOLE.removeHandler(handler)
        CONSOLE.setLevel(before)
        handler.flush()
