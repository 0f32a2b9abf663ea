"""The one exception hierarchy of the library.

Every error that ``imcea`` raises is an :class:`Error`, itself a :class:`ValueError`,
so callers can catch bad input with a single ``except`` clause.  Messages say what
was wrong and where: the offending character and its position, or the settings key.
"""

from __future__ import annotations

__all__ = ["DecodeError", "EncodeError", "Error", "SettingsError", "shorten"]

#: Strings longer than this, and other values whose ``repr`` is, are shortened.
SHORT = 100
#: Characters kept from each end of a shortened value.
_KEPT = 40


class Error(ValueError):
    """Base class of every error raised by ``imcea``."""


class DecodeError(Error):
    """An address is not a well-formed IMCEA-encapsulated address."""


class EncodeError(Error):
    """A type, address or domain cannot be encapsulated."""


class SettingsError(Error):
    """A settings value, file or mapping is invalid; the message names the key path."""


def shorten(value: object) -> str:
    """*value* quoted for an error message: its ``repr``, or for a long value the first and
    last few dozen characters and the length, so that a huge input never floods a report.

    >>> shorten("<" + "x" * 998 + ">").replace("x" * 39, "x...x")
    "'<x...x'...'x...x>' (1000 characters)"
    """
    if isinstance(value, str):
        if len(value) <= SHORT:
            return repr(value)
        return f"{value[:_KEPT]!r}...{value[-_KEPT:]!r} ({len(value)} characters)"
    text = repr(value)
    if len(text) <= SHORT:
        return text
    return f"{text[:_KEPT]}...{text[-_KEPT:]} ({len(text)} characters of repr)"
