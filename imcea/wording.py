"""Small helpers for the words of messages: counts with their nouns."""

from __future__ import annotations

__all__ = ["plural"]


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``"1 recipient"``, ``"2 recipients"``: *count* and *noun*, plural unless it is 1.

    *many* is the plural when it is not *noun* + ``s`` (``plural(2, "entry", "entries")``).
    """
    word = noun if count == 1 else (many if many is not None else noun + "s")
    return f"{count:,} {word}"
