"""The check that an IP address a log wrote is one, as a record's check has it.

Readers of mail logs check every client address as they read it, so that a bad one
is reported by its line; they use the one reader of addresses, :mod:`imcea.networks`
(a dotted quad at a glance, any other form parsed), so that what they let through is
what :class:`~imcea.Record` and :func:`~imcea.decide` take.  A log names the same
clients again and again: the addresses found good are remembered, a few thousand at
most (the memory is emptied when full), which changes no answer.
"""

from __future__ import annotations

from typing import Final

from .errors import Error, shorten
from .networks import dotted_quad, parse_ip

__all__ = ["logged_ip"]

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
