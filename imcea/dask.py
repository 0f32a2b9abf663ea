"""Replay logs bigger than one machine on Dask (the optional extra ``imcea[dask]``).

:func:`~imcea.replay` is a pure map over records, so a log on many disks is a
partitioned map.  :func:`replay_bag` takes a ``dask.bag`` of raw log lines, such as
``dask.bag.read_text(paths, blocksize=None)``, and gives a bag of the output records of
``imcea replay`` (as dicts); :func:`summary_of` gives the summary of the same replay as
a reduction.  Computed together (``dask.compute(records, summary)``), each partition is
read and replayed once: both are built on the same tasks.

**One partition is one file.**  Postfix logs a message over lines of one queue id
that may be far apart, so a partition must hold whole files, in order: read them with
``blocksize=None`` (one partition per file).  A message whose lines straddle two
files (a log rotation) is then counted as incomplete, where :func:`~imcea.sources.read_log`
reading both files as one log would correlate it; and a record without an ``id`` of its
own is numbered by its line in its file, not in the whole log.  Each partition's format
is sniffed from its first lines unless named.

The settings travel as a file path (each worker must be able to read it) or as TOML
text, and each worker process loads them once, however many partitions it replays.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Iterable
from typing import Any, Final

import attrs

from .errors import Error, SettingsError
from .replay import Summary, output_record, replay
from .settings import Settings, load_settings
from .sources import Counts, Format, SourceError, read_lines

#: A ``dask.bag.Bag`` (Dask is optional: it is imported on first use, and typed loosely).
Bag = Any

__all__ = ["BagSummary", "output_record", "replay_bag", "summary_of"]

#: Error messages a summary keeps, at most (the others are only counted).
KEPT_ERRORS: Final = 20

#: The settings as they travel to the workers: ``None`` for the built-in defaults, a
#: TOML file's path, or TOML text.
SettingsSource = str | os.PathLike[str] | None


def _dask(module: str) -> Any:
    """A module of Dask; an :class:`~imcea.Error` naming the extra when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise Error(
            "imcea.dask needs Dask: install the extra imcea[dask] (pip install 'imcea[dask]')"
        ) from None


@attrs.define
class BagSummary:
    """The summary of a replay on Dask: the replay's counts (:class:`~imcea.Summary`),
    the readers' counts (:class:`~imcea.sources.Counts`) and the first
    :data:`KEPT_ERRORS` reports of bad lines."""

    replay: Summary = attrs.field(factory=Summary)
    source: Counts = attrs.field(factory=Counts)
    errors: list[str] = attrs.field(factory=list)

    def merge(self, other: BagSummary) -> None:
        """Add the counts of *other* (other partitions of the same log)."""
        self.replay.merge(other.replay)
        self.source.merge(other.source)
        self.errors.extend(other.errors[: max(0, KEPT_ERRORS - len(self.errors))])

    @property
    def bad(self) -> int:
        """Bad lines: those the readers could not read, and bad records of JSON lines."""
        return self.replay.bad + self.source.bad

    def lines(self) -> list[str]:
        """The summary as text: the readers' line, then the replay's."""
        return [self.source.line(), *self.replay.lines()]


def _settings_key(value: object, what: str) -> tuple[str, str] | None:
    """How *value* travels: ``("path", ...)`` or ``("toml", ...)``, or ``None``."""
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        return ("path", os.fspath(value))
    if isinstance(value, str):
        return ("toml", value) if "\n" in value or "=" in value else ("path", value)
    raise SettingsError(
        f"{what}: expected a settings file path or TOML text, got {type(value).__name__}"
        " (pass the file or its text: each worker loads it once)"
    )


@functools.lru_cache(maxsize=8)
def _load(key: tuple[str, str] | None) -> Settings:
    """The settings of *key*, loaded once per process."""
    if key is None:
        return Settings()
    kind, value = key
    if kind == "path":
        return load_settings(value)
    import tomllib

    try:
        data = tomllib.loads(value)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"settings text: not valid TOML: {exc}") from None
    return load_settings(data)


def _replay_part(
    lines: Iterable[object],
    index: int,
    settings: tuple[str, str] | None,
    compare: tuple[str, str] | None,
    format: str,
) -> tuple[list[dict[str, Any]], BagSummary]:
    """Replay one partition (one file): its output records and its summary."""
    summary = BagSummary()
    name = f"partition {index}"
    items = iter(lines)
    first = next(items, None)
    texts: Iterable[Any] = () if first is None else _chain(first, items)
    if isinstance(first, tuple):  # read_text(..., include_path=True): (line, path)
        name = str(first[1])
        texts = (line for line, _ in texts)

    def keep(error: Error) -> None:
        if len(summary.errors) < KEPT_ERRORS:
            text = str(error)
            summary.errors.append(text if isinstance(error, SourceError) else f"{name}: {text}")

    log = read_lines(texts, name=name, format=format, on_error=keep)
    before = _load(settings)
    after = None if compare is None else _load(compare)
    outputs = [
        output_record(item)
        for item in replay(log, before, compare=after, on_error=keep, summary=summary.replay)
    ]
    summary.source = log.counts
    return outputs, summary


def _chain(first: Any, rest: Iterable[Any]) -> Iterable[Any]:
    yield first
    yield from rest


def _outputs(part: tuple[list[dict[str, Any]], BagSummary]) -> list[dict[str, Any]]:
    return part[0]


def _summary(parts: list[tuple[list[dict[str, Any]], BagSummary]]) -> BagSummary:
    total = BagSummary()
    for _, summary in parts:
        total.merge(summary)
    return total


def _parts(
    bag: Bag, settings: SettingsSource, compare: SettingsSource, format: Format | str
) -> list[Any]:
    """One delayed ``(outputs, summary)`` per partition, with keys that depend only on
    the arguments: :func:`replay_bag` and :func:`summary_of` share them."""
    bags = _dask("dask.bag")
    delayed = _dask("dask.delayed").delayed
    if not isinstance(bag, bags.Bag):
        raise Error(f"bag: expected a dask.bag.Bag of log lines, got {type(bag).__name__}")
    fmt = Format(format).value if format in set(Format) else _bad_format(format)
    before = _settings_key(settings, "settings")
    after = _settings_key(compare, "compare")
    for key in (before, after):  # bad settings are reported here, not by every worker
        if key is not None and (key[0] == "toml" or os.path.exists(key[1])):
            _load(key)  # (a path that only the workers can read is left to them)
    replay_part = delayed(_replay_part, pure=True)
    return [
        replay_part(part, index, before, after, fmt) for index, part in enumerate(bag.to_delayed())
    ]


def _bad_format(value: object) -> str:
    names = ", ".join(repr(f.value) for f in Format)
    raise SourceError(f"format: expected one of {names}, got {value!r}")


def replay_bag(
    bag: Bag,
    settings: SettingsSource = None,
    compare: SettingsSource = None,
    *,
    format: Format | str = Format.AUTO,
) -> Bag:
    """The output records of ``imcea replay`` over a bag of log lines, one dict per
    recipient (see :func:`output_record`), partition by partition.

    *bag* holds the raw lines (``str`` or ``bytes``, or ``(line, path)`` pairs from
    ``read_text(..., include_path=True)``, which name the file in error reports), one
    partition per file.  *settings* and *compare* are a settings file's path or TOML
    text (``None``: the built-in defaults; with *compare*, only the recipients whose
    outcome differs).  *format* as in :func:`~imcea.sources.read_log`.
    """
    parts = _parts(bag, settings, compare, format)
    outputs = _dask("dask.delayed").delayed(_outputs, pure=True)
    return _dask("dask.bag").from_delayed([outputs(part) for part in parts])


def summary_of(
    bag: Bag,
    settings: SettingsSource = None,
    compare: SettingsSource = None,
    *,
    format: Format | str = Format.AUTO,
) -> Any:
    """The summary (:class:`BagSummary`) of :func:`replay_bag` with the same arguments,
    as a ``dask.delayed`` value: a reduction of each partition's counts.  Compute it
    with the records (``dask.compute(records, summary)``) to replay once."""
    parts = _parts(bag, settings, compare, format)
    return _dask("dask.delayed").delayed(_summary, pure=True)(parts)
