"""What the log readers share: the counts of what a reader did with a log, and the
check of a client or server address as a log wrote it.

Readers of mail logs (:mod:`imcea.postfix_log`, :mod:`imcea.exchange_log`) check every
address as they read it, so that a bad one is reported by its line; they use the one
reader of addresses, :mod:`imcea.networks` (a dotted quad at a glance, any other form
parsed), so that what they let through is what :class:`~imcea.Record` and
:func:`~imcea.decide` take.  A log names the same clients again and again: the
addresses found good are remembered, a few thousand at most (the memory is emptied
when full), which changes no answer.
"""

from __future__ import annotations

from typing import Final

import attrs

from .errors import Error, shorten
from .networks import dotted_quad, parse_ip
from .wording import plural

__all__ = ["Counts", "logged_ip"]


@attrs.define
class Counts:
    """What a reader did with a log: the counters of a replay's summary.

    ``lines`` read, ``records`` given to the replay, ``skipped`` lines of no form the
    reader uses (other daemons, warnings, comments, other events), ``incomplete``
    Postfix messages dropped without a record (never seen ``removed``, flushed from the
    table of open messages, or missing their client, sender or recipients), ``bad``
    lines of a known form that could not be read.
    """

    lines: int = 0
    records: int = 0
    skipped: int = 0
    incomplete: int = 0
    bad: int = 0

    def merge(self, other: Counts) -> None:
        """Add the counts of *other* (another part of the same log)."""
        self.lines += other.lines
        self.records += other.records
        self.skipped += other.skipped
        self.incomplete += other.incomplete
        self.bad += other.bad

    def line(self) -> str:
        """The counts as one line of text, for a summary."""
        return (
            f"{plural(self.lines, 'line')} read, {plural(self.records, 'record')}, "
            f"{self.skipped:,} skipped, {self.incomplete:,} incomplete, "
            f"{plural(self.bad, 'bad line')}"
        )


#: Addresses found to be IP addresses; emptied when it reaches _KNOWN_SIZE.
_KNOWN: Final[set[str]] = set()
_KNOWN_SIZE: Final = 4096


def logged_ip(text: str, what: str = "client") -> str:
    """*text* once known to be an IP address; a :class:`ValueError` naming *what* (the
    client or the server) otherwise."""
    if text in _KNOWN:
        return text
    if dotted_quad(text) is None:
        try:
            parse_ip(text, key=what)
        except Error:
            raise ValueError(f"{what} address {shorten(text)} is not an IP address") from None
    if len(_KNOWN) >= _KNOWN_SIZE:
        _KNOWN.clear()
    _KNOWN.add(text)
    return text
