"""The check that an IP address a log wrote is one, cheap for the addresses seen often.

Readers of mail logs check every client address as they read it, so that a bad one
is reported by its line; a dotted quad takes one regular expression, any other form
is parsed once by :mod:`ipaddress`; both are remembered (a few thousand at most).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from .errors import shorten

__all__ = ["logged_ip"]

#: A dotted-quad IPv4 address as logs write it.
_IPV4: Final = re.compile(
    r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
)

#: Addresses found to be IP addresses; emptied when it reaches _KNOWN_SIZE.
_KNOWN: Final[set[str]] = set()
_KNOWN_SIZE: Final = 4096


def logged_ip(text: str, what: str = "client") -> str:
    """*text* once known to be an IP address; a :class:`ValueError` naming *what* (the
    client or the server) otherwise."""
    if text in _KNOWN:
        return text
    if _IPV4.fullmatch(text) is None:
        try:
            ipaddress.ip_address(text)
        except ValueError:
            raise ValueError(f"{what} address {shorten(text)} is not an IP address") from None
    if len(_KNOWN) >= _KNOWN_SIZE:
        _KNOWN.clear()
    _KNOWN.add(text)
    return text
