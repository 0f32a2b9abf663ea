"""Domain names: validation and the one normal form used for comparisons.

Routing-table entries, recipient domains and directory entries are compared in one
form (Q169683, Q217217): lower case, no trailing dot, IDN U-labels as A-labels.  Plain
ASCII names never pay for an ``idna`` call; ``idna`` is imported only when needed.
"""

from __future__ import annotations

import re

from .errors import Error, shorten

__all__ = ["DomainError", "is_hostname", "normalise_domain"]

# One LDH label (RFC 5321 sub-domain, RFC 1123 leading digits); bounded, so linear.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}\.?")
_MAX_HOSTNAME = 254  # 253 octets plus an optional trailing dot


class DomainError(Error):
    """A domain is not a valid host name (callers that know the key or position say so)."""


def is_hostname(name: str) -> bool:
    """Whether *name* is an ASCII host name of LDH labels (a trailing dot allowed)."""
    return len(name) <= _MAX_HOSTNAME and _HOSTNAME.fullmatch(name) is not None


def to_ascii(name: str) -> str:
    """*name* with IDN U-labels converted to A-labels, case and trailing dot kept.

    Raises :class:`DomainError` when *name* is not a valid host name.
    """
    if name.isascii():
        if is_hostname(name):
            return name
        raise DomainError(f"{shorten(name)} is not a valid host name")
    import idna  # lazy: only IDN names pay for it

    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise DomainError(
            f"{shorten(name)} is not a valid internationalised domain name: {exc}"
        ) from None
    if not is_hostname(ascii_name):
        raise DomainError(f"{shorten(name)} is not a valid host name")
    return ascii_name


def normalise_domain(name: str) -> str:
    """The comparison form of a host name: A-labels, lower case, no trailing dot.

    Raises :class:`DomainError` when *name* is not a valid host name.
    """
    ascii_name = to_ascii(name).lower()
    return ascii_name[:-1] if ascii_name.endswith(".") else ascii_name
