"""The ``imcea replay`` command: a log in, one JSON line per recipient out, in chunks.

The command reads the log's raw items (today JSON lines) from :func:`open_log`, cuts
them into chunks of :data:`CHUNK_LINES`, and replays each chunk with
:func:`~imcea.replay.replay_lines` (or only counts it, with ``--summary-only``): in
this process, or with ``--jobs N`` in N worker processes while the output keeps the
input order (a decision depends on nothing but its record and the settings, so any
process may decide any record).  Bad lines are reported on standard error where they
stand, by line number, and skipped; a summary ends the run, with a table of groups
for ``--group-by``, and a progress line is drawn while standard error is a terminal.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any, Final, TextIO

import attrs

from .decider import Decider
from .errors import Error
from .exits import Exit
from .records import RecordError
from .replay import GroupBy, Groups, Summary, replay_lines, summarize
from .settings import Settings
from .sources import Format
from .wording import plural

if TYPE_CHECKING:
    from concurrent.futures import Future

    from .sources import Log

__all__ = ["AHEAD", "CHUNK_LINES", "PROGRESS_EVERY", "LogError", "open_log", "replay_command"]

#: Lines per chunk: the unit of work of a process, and of each flush of the output.
CHUNK_LINES: Final = 1000

#: Chunks handed to the worker processes ahead of the one being written, per process.
#: Bounds the memory of ``--jobs N`` to about ``N * AHEAD * CHUNK_LINES`` lines.
AHEAD: Final = 2

#: Seconds between two updates of the progress line.
PROGRESS_EVERY: Final = 0.5

_PROGRAM: Final = "imcea replay"

#: What one chunk gives: the segments to write in order, each ``(is_error, text)``
#: (runs of output lines, and the report of each bad line where it stood), its
#: counts, and its groups.
_Result = tuple[list[tuple[bool, str]], Summary, Groups | None]


def _one_line(exc: Exception) -> str:
    return f"{_PROGRAM}: {' '.join(str(exc).split())}\n"


class _Chunks:
    """Replays chunks of a log under one or two settings values, one decider each.

    The same object does the work in this process (``--jobs 1``) and in each worker
    process (``--jobs N``), so that the output is the same bytes either way.
    """

    __slots__ = ("after", "before", "group_by", "write")

    def __init__(
        self,
        settings: Settings,
        compare: Settings | None,
        group_by: GroupBy | None,
        write: bool,
    ) -> None:
        self.before = Decider(settings)
        self.after = None if compare is None else Decider(compare)
        self.group_by = group_by
        self.write = write

    def run(self, first: int, items: list[Any]) -> _Result:
        """Replay *items*, the first being line *first* of the log."""
        counts = Summary(compared=self.after is not None)
        groups = None if self.group_by is None else Groups(self.group_by)
        segments: list[tuple[bool, str]] = []
        parts: list[str] = []

        def bad(exc: RecordError) -> None:
            """Report a bad line where it stands: after the lines written before it."""
            if parts:
                segments.append((False, "".join(parts)))
                parts.clear()
            segments.append((True, _one_line(exc)))

        options: dict[str, Any] = {
            "compare": self.after,
            "on_error": bad,
            "summary": counts,
            "groups": groups,
            "start": first,
        }
        if self.write:
            append = parts.append  # bad() flushes parts as it goes: append one at a time
            for text in replay_lines(items, self.before, **options):
                append(text)
            if parts:
                segments.append((False, "".join(parts)))
        else:
            summarize(items, self.before, **options)
        return segments, counts, groups


#: The chunk replayer of a worker process, built once by :func:`_start_worker`.
_worker: _Chunks | None = None


def _start_worker(
    settings: Settings, compare: Settings | None, group_by: GroupBy | None, write: bool
) -> None:
    """Process-pool initializer: one decider per settings value and worker.

    Ctrl-C is the parent's to handle: a worker ignores SIGINT (its terminal sends it to
    the whole process group), and ends when the parent shuts the pool down.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _worker
    _worker = _Chunks(settings, compare, group_by, write)


def _work(first: int, items: list[Any]) -> _Result:
    """One chunk, in a worker process."""
    assert _worker is not None, "the worker was not initialised"
    return _worker.run(first, items)


class _Progress:
    """The progress line on a terminal: records, rate, elapsed time; rewritten in place."""

    __slots__ = ("err", "last", "shown", "start")

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.start = time.monotonic()
        self.last = float("-inf")
        self.shown = 0

    def update(self, records: int) -> None:
        """Show the count of records read so far (at most every :data:`PROGRESS_EVERY`)."""
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY:
            return
        self.last = now
        elapsed = now - self.start
        rate = records / elapsed if elapsed > 0 else 0.0
        text = f"{_PROGRAM}: {records} records, {rate:,.0f} records/s, {elapsed:.1f} s elapsed"
        self.err.write("\r" + text.ljust(self.shown))
        self.err.flush()
        self.shown = len(text)

    def clear(self) -> None:
        """Erase the progress line before anything else is written on the terminal."""
        if self.shown:
            self.err.write("\r" + " " * self.shown + "\r")
            self.shown = 0
            self.last = float("-inf")


class _Writer:
    """Writes the segments of each chunk in order, flushing so nothing printed is lost;
    adds up the counts and groups."""

    __slots__ = ("err", "groups", "out", "progress", "shared", "summary")

    def __init__(
        self,
        out: TextIO,
        err: TextIO,
        progress: _Progress | None,
        compared: bool,
        group_by: GroupBy | None,
    ) -> None:
        self.out = out
        self.err = err
        self.progress = progress
        # the output goes to the terminal too: erase the progress line before it
        self.shared = progress is not None and out.isatty()
        self.summary = Summary(compared=compared)
        self.groups = None if group_by is None else Groups(group_by)

    def write(self, result: _Result) -> None:
        segments, counts, groups = result
        out, err, progress = self.out, self.err, self.progress
        for is_error, text in segments:
            if is_error:
                out.flush()  # the lines before the bad one are out before its report
                if progress is not None:
                    progress.clear()
                err.write(text)
                err.flush()
            else:
                if progress is not None and self.shared:
                    progress.clear()
                out.write(text)
        out.flush()
        self.summary.merge(counts)
        if self.groups is not None and groups is not None:
            self.groups.merge(groups)
        if progress is not None:
            progress.update(self.summary.records + self.summary.bad)


def _chunks(items: Iterable[Any]) -> Iterator[tuple[int, list[Any]]]:
    """``(first line number, items)`` chunks of :data:`CHUNK_LINES` items."""
    it = iter(items)
    first = 1
    while chunk := list(islice(it, CHUNK_LINES)):
        yield first, chunk
        first += len(chunk)


class LogError(Error):
    """The log cannot be opened."""


class Opened:
    """An open log: its raw items for the replay, and when a reader of
    :mod:`imcea.sources` reads it, the reader's :class:`~imcea.sources.Log` (its counts
    and formats, for the summary)."""

    __slots__ = ("items", "log")

    def __init__(self, items: Iterable[Any], log: Log | None = None) -> None:
        self.items = items
        self.log = log


#: Bytes looked at to tell a JSON-lines log from the other formats.
_HEAD: Final = 1 << 16


def _head_format(head: bytes) -> Format | None:
    """The format the first bytes of a log show, when it is plain JSON lines or empty;
    ``None`` for anything else (compressed, another format, or not sure)."""
    from .sources import SourceError, sniff

    if head[:2] == b"\x1f\x8b":
        return None
    lines = head.decode("utf-8", "replace").splitlines()
    if len(head) >= _HEAD and len(lines) > 1:
        lines.pop()  # cut short: the last line may be incomplete
    if not any(line.strip() for line in lines):
        return Format.JSONL if not head else None
    try:
        return sniff(lines)
    except SourceError:
        return None


def _with_errors(log: Log, errors: deque[RecordError]) -> Iterator[Any]:
    """The items of *log*, each line it could not read in its place as the error."""
    for item in log:
        while errors:
            yield errors.popleft()
        yield item
    while errors:
        yield errors.popleft()


@contextlib.contextmanager
def open_log(
    paths: Sequence[str] | str | None, stdin: TextIO, format: Format | str = "auto"
) -> Iterator[Opened]:
    """The log made of *paths* (none, or ``-``: *stdin*), for as long as the context lasts.

    One uncompressed log of JSON lines (named so with *format*, or sniffed) is read as
    its lines, as bytes: the command's short way.  Anything else (Postfix and Exchange
    logs, ``.gz`` files, several files as one log) is read by
    :func:`imcea.sources.read_log`, each line it cannot read passed on in its place as
    the error.  Raises :class:`LogError` when a file cannot be opened.
    """
    from .sources import read_log

    names = [paths] if isinstance(paths, str) else list(paths or ["-"])
    chosen = Format(format)
    streams: list[Any] = []
    try:
        for name in names:
            if name == "-":
                buffer = getattr(stdin, "buffer", None)
                if buffer is None:  # a text stream without bytes under it (tests, notebooks)
                    text = stdin.read().encode("utf-8", "surrogatepass")
                    buffer = io.BufferedReader(io.BytesIO(text))
                streams.append(buffer)
                continue
            try:
                streams.append(open(name, "rb"))  # noqa: SIM115 - closed below
            except OSError as exc:
                raise LogError(f"{name}: cannot read the log: {exc.strerror or exc}") from None
        if len(streams) == 1 and chosen in (Format.JSONL, Format.AUTO):
            stream = streams[0]
            peek = getattr(stream, "peek", None)
            head = peek(_HEAD)[:_HEAD] if peek is not None else None
            if chosen is Format.JSONL and (head is None or head[:2] != b"\x1f\x8b"):
                yield Opened(stream)
                return
            if head is None or _head_format(head) is Format.JSONL:
                yield Opened(stream)
                return
        errors: deque[RecordError] = deque()
        with read_log(streams, format=chosen, on_error=errors.append) as log:
            yield Opened(_with_errors(log, errors), log)
    finally:
        for stream in streams:
            close = getattr(stream, "close", None)
            if close is not None and stream is not getattr(stdin, "buffer", None):
                close()


def replay_command(
    settings: Settings,
    compare: Settings | None,
    log: Sequence[str] | str | None,
    *,
    format: Format | str = "auto",
    out: TextIO,
    err: TextIO,
    stdin: TextIO,
    jobs: int = 1,
    summary_only: bool = False,
    group_by: GroupBy | str | None = None,
    as_json: bool = False,
) -> int:
    """``imcea replay``: decide every record of *log*; the exit status.

    Writes one JSON line per recipient (``id``, ``recipient``, ``action``, ``reason``,
    ``reply``, ``detail``; with *compare*, only the changed recipients, with ``before``
    and ``after``) unless *summary_only*, reports each bad line on *err* where it
    stands, and ends with a summary on *err*, then the table of *group_by* groups.
    With *as_json*, the summary and the groups are also one JSON object, the last line
    on *out*, in place of the table.  Exit status (:mod:`imcea.exits`):
    2 when a line was bad, else 1 when the comparison found differences, else 0; with
    both, both are said on *err*.
    """
    grouping = None if group_by is None else Groups(group_by).by
    reads_stdin = log is None or log == "-" or (not isinstance(log, str) and "-" in log)
    if (reads_stdin or not log) and stdin.isatty():
        err.write(f"{_PROGRAM}: reading the log from standard input; end with Ctrl-D\n")
        err.flush()
    progress = _Progress(err) if err.isatty() else None
    writer = _Writer(out, err, progress, compare is not None, grouping)
    chunks = _Chunks(settings, compare, grouping, write=not summary_only)
    try:
        with open_log(log, stdin, format) as opened:
            items = opened.items
            if jobs == 1:
                for first, chunk in _chunks(items):
                    writer.write(chunks.run(first, chunk))
            else:
                _in_workers(items, writer, (settings, compare, grouping, not summary_only), jobs)
            source = opened.log
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        if progress is not None:
            progress.clear()
        err.write(_one_line(exc))  # reading or writing
        return Exit.TROUBLE
    except Error as exc:  # the log cannot be opened, or a worker process died
        if progress is not None:
            progress.clear()
        err.write(_one_line(exc))
        return Exit.TROUBLE
    if progress is not None:
        progress.clear()
    summary = writer.summary
    for text in summary.lines():
        err.write(f"{_PROGRAM}: {text}\n" if not text.startswith(" ") else text + "\n")
    if source is not None:
        kinds = ", ".join(dict.fromkeys(str(f) for _, f in source.formats)) or "no"
        err.write(f"{_PROGRAM}: read as {kinds} log: {source.counts.line()}\n")
    if as_json:
        report: dict[str, Any] = {"summary": summary.as_json()}
        if source is not None:
            report["source"] = {
                "formats": [[name, str(f)] for name, f in source.formats],
                **attrs.asdict(source.counts),
            }
        if writer.groups is not None:
            report["group_by"] = str(writer.groups.by)
            report["groups"] = writer.groups.as_json()
        out.write(json.dumps(report, separators=(",", ":")) + "\n")
        out.flush()
    elif writer.groups is not None:
        err.write(_table(writer.groups, compared=summary.compared))
    err.flush()
    if summary.bad and summary.changed:
        err.write(
            f"{_PROGRAM}: {plural(summary.bad, 'bad line')} (exit status 2) and "
            f"{plural(summary.changed, 'changed recipient')} (differences, exit status 1)\n"
        )
    if summary.bad:
        return Exit.TROUBLE
    if summary.changed:
        return Exit.FINDINGS
    return Exit.CLEAN


def _table(groups: Groups, *, compared: bool) -> str:
    """The groups as a table: count, group, and the first example of each."""
    rows = groups.rows()
    what = "changed recipients" if compared else "recipients"
    plural = "" if len(rows) == 1 else "s"
    lines = [f"{_PROGRAM}: {what} by {groups.by}: {len(rows)} group{plural}"]
    if not rows:
        return lines[0] + "\n"
    width = max(len(str(n)) for _, n, _, _ in rows)
    names = [key or "(none)" for key, _, _, _ in rows]
    name_width = max(len(name) for name in names)
    for name, (_key, n, line, example) in zip(names, rows, strict=True):
        lines.append(f"  {n:>{width}}  {name:<{name_width}}  e.g. {_example(line, example)}")
    return "\n".join(lines) + "\n"


def _example(line: int, record: dict[str, Any]) -> str:
    """One result in words: where it is, the recipient, and what became of it."""
    if "before" in record:
        before, after = record["before"], record["after"]
        outcome = (
            f"{before['action']} -> {after['action']} ({before['reason']} -> {after['reason']})"
        )
    else:
        outcome = f"{record['action']} ({record['reason']})"
    ident = record["id"]
    where = f"line {line}" if ident == line else f"line {line} (id {ident})"
    return f"{where}: {record['recipient']}: {outcome}"


def _in_workers(
    items: Iterable[Any],
    writer: _Writer,
    initargs: tuple[Settings, Settings | None, GroupBy | None, bool],
    jobs: int,
) -> None:
    """Replay *items* in chunks over *jobs* worker processes, written in input order."""
    from concurrent.futures import ProcessPoolExecutor  # only now: it is slow to import
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_start_worker, initargs=initargs)
    pending: deque[Future[_Result]] = deque()
    try:
        for first, chunk in _chunks(items):
            pending.append(pool.submit(_work, first, chunk))
            if len(pending) >= jobs * AHEAD:
                writer.write(pending.popleft().result())
        while pending:
            writer.write(pending.popleft().result())
    except BrokenProcessPool as exc:
        raise Error(f"a worker process failed: {exc}") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
