"""Small helpers for the words of messages: counts with their nouns, input quoted short."""

from __future__ import annotations

__all__ = ["plural", "shorten"]


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``"1 recipient"``, ``"2 recipients"``: *count* and *noun*, plural unless it is 1.

    *many* is the plural when it is not *noun* + ``s`` (``plural(2, "entry", "entries")``).
    """
    word = noun if count == 1 else (many if many is not None else noun + "s")
    return f"{count:,} {word}"


#: Characters of a long input shown at each end by :func:`shorten`.
SHOWN = 40


def shorten(value: object, shown: int = SHOWN) -> str:
    """*value* as a message shows it: a short printable string as it is, anything else
    as its ``repr``; a long string as its first and last *shown* characters and its
    length, so that a 1 MB bad line stays one short line.
    """
    if isinstance(value, str | bytes) and len(value) > 2 * shown + 10:
        return f"{value[:shown]!r}...{value[-shown:]!r} ({len(value):,} characters)"
    if isinstance(value, str) and value and value.isprintable() and value == value.strip():
        return value
    return repr(value)
