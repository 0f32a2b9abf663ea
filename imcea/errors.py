"""The one exception hierarchy of the library.

Every error that ``imcea`` raises is an :class:`Error`, itself a :class:`ValueError`,
so callers can catch bad input with a single ``except`` clause.  Messages say what
was wrong and where: the offending character and its position, or the settings key.
"""

from __future__ import annotations

__all__ = ["DecodeError", "EncodeError", "Error", "SettingsError"]


class Error(ValueError):
    """Base class of every error raised by ``imcea``."""


class DecodeError(Error):
    """An address is not a well-formed IMCEA-encapsulated address."""


class EncodeError(Error):
    """A type, address or domain cannot be encapsulated."""


class SettingsError(Error):
    """A settings value, file or mapping is invalid; the message names the key path."""
