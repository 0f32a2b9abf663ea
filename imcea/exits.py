"""The exit status of every ``imcea`` command: one table for all of them.

The convention of ``diff``, ``grep``, ``ruff`` and ``mypy``: a script can tell a finding
from a mistake.  ``0`` clean; ``1`` findings (a returned recipient, a relaying trick,
differences, an ``error`` finding of ``check``, a failing case of ``verify``); ``2``
trouble (usage, unreadable or bad input, a bad line of a log); ``130`` interrupted
(Ctrl-C: 128 plus SIGINT, as shells report it).
"""

from __future__ import annotations

import enum

__all__ = ["EPILOG", "Exit"]


class Exit(enum.IntEnum):
    """What an ``imcea`` command's exit status means."""

    CLEAN = 0
    FINDINGS = 1
    TROUBLE = 2
    INTERRUPTED = 130


#: What each status means, in the words every ``--help`` ends with.
MEANING: dict[Exit, str] = {
    Exit.CLEAN: "clean: nothing found, nothing wrong",
    Exit.FINDINGS: "findings: a returned recipient, a relaying trick, differences, "
    "an error finding, a failing case",
    Exit.TROUBLE: "trouble: usage, unreadable or bad input, a bad line of a log",
    Exit.INTERRUPTED: "interrupted (Ctrl-C)",
}

EPILOG = "exit status:\n" + "\n".join(f"  {int(code):<4} {text}" for code, text in MEANING.items())
