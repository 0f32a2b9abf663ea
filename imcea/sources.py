"""Read the mail logs people have as records for :func:`~imcea.replay`.

:func:`read_log` reads our JSON lines, Postfix mail logs (:mod:`imcea.postfix_log`)
and Exchange message tracking logs or message trace exports
(:mod:`imcea.exchange_log`), from files, ``-`` (standard input) or binary streams,
gzip-compressed or not (told by the magic bytes, not the name).  Several files are
one log, in order: a Postfix message logged across a log rotation is still one
record.  The format is named, or sniffed from each file's first lines.  Everything
is lazy: one line at a time, and for Postfix a bounded table of open messages.
"""

from __future__ import annotations

import enum
import gzip
import io
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, islice
from types import TracebackType
from typing import IO, Final, Self

from .exchange_log import ExchangeReader, is_exchange_header
from .postfix_log import MAX_PENDING, PostfixReader, is_postfix_line
from .reading import Counts
from .records import Record, RecordError

__all__ = [
    "SNIFF_LINES",
    "Counts",
    "Format",
    "Log",
    "SourceError",
    "read_lines",
    "read_log",
    "sniff",
]

#: Lines of a file that :func:`sniff` looks at, at most (held while sniffing).
SNIFF_LINES: Final = 1000

#: Bytes read and decoded at a time.
BLOCK: Final = 1 << 20

_GZIP_MAGIC: Final = b"\x1f\x8b"
_UTF16_BOMS: Final = (b"\xff\xfe", b"\xfe\xff")


class Format(enum.StrEnum):
    """The formats of log that :func:`read_log` reads."""

    JSONL = "jsonl"  #: our JSON lines, one record per line (see :func:`~imcea.replay`)
    POSTFIX = "postfix"  #: a Postfix mail log (syslog or journalctl output)
    EXCHANGE = "exchange"  #: Exchange message tracking log, or a tracking/trace CSV export
    AUTO = "auto"  #: sniffed from each file's first lines


class SourceError(RecordError):
    """A log cannot be read, or one of its lines has a known form but cannot be read.

    ``path`` names the file (``-`` for standard input), ``line`` the line number in
    that file, ``offset`` the byte offset when the bytes themselves are wrong.
    """

    def __init__(
        self,
        message: str,
        line: int | None = None,
        path: str | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(message, line)
        self.args = (message, line, path, offset)
        self.path = path
        self.offset = offset

    def __str__(self) -> str:
        where = [] if self.path is None else [self.path]
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.offset is not None:
            where.append(f"byte offset {self.offset}")
        return ": ".join([*where, self.message])


OnError = Callable[[SourceError], object]

#: What read_log takes as one file: a path, ``-`` (standard input) or a binary stream.
Source = str | os.PathLike[str] | IO[bytes]


def sniff(lines: Iterable[str], *, name: str | None = None) -> Format:
    """The format of a log from its first lines (at most :data:`SNIFF_LINES` are read).

    JSON lines start with ``{``; an Exchange log or export starts with its header (a
    ``#Software: Microsoft Exchange`` or ``#Fields:`` line, or a CSV header naming the
    client address, sender and recipients, after PowerShell's ``#TYPE`` line if any); a
    Postfix log has a Postfix line about a queue id among its first lines.  Raises
    :class:`SourceError` naming the formats when nothing fits.
    """
    first = True
    for line in islice(lines, SNIFF_LINES):
        text = line.lstrip("\ufeff")
        if not text.strip():
            continue
        if first:
            if text.startswith("#TYPE "):  # PowerShell's Export-Csv: the header follows
                continue
            first = False
            if text.lstrip().startswith("{"):
                return Format.JSONL
            if is_exchange_header(text):
                return Format.EXCHANGE
        if is_postfix_line(text):
            return Format.POSTFIX
    what = "no lines" if first else "none of its first lines fits"
    raise SourceError(
        f"cannot tell the format of the log ({what}): not JSON lines, a Postfix mail log or "
        f"an Exchange message tracking log or CSV export; name it with format "
        f"{', '.join(repr(f.value) for f in Format if f is not Format.AUTO)}",
        path=name,
    )


class Log(Iterator[Record | str]):
    """The records of a log, lazily, for :func:`~imcea.replay`: ``str`` lines of JSON
    (so that the replay's own checks and line numbers apply) and :class:`~imcea.Record`
    values read from Postfix and Exchange logs.  ``counts`` (:class:`Counts`) grows as
    the log is read; ``formats`` lists ``(name, format)`` of each file begun.  Closing
    the log (or leaving its ``with`` block) closes the file being read.
    """

    def __init__(self, records: Iterator[Record | str], counts: Counts) -> None:
        self._records = records
        self.counts = counts
        self.formats: list[tuple[str, Format]] = []

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Record | str:
        return next(self._records)

    def close(self) -> None:
        """Stop reading, and close the file being read."""
        close = getattr(self._records, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def read_log(
    paths: Source | Iterable[Source],
    *,
    format: Format | str = Format.AUTO,
    on_error: OnError | None = None,
    max_pending: int = MAX_PENDING,
) -> Log:
    """The records of one log made of *paths*, in order (a path, ``-`` for standard
    input, a binary stream, or an iterable of them).

    *format* is a :class:`Format` (``auto``: sniffed per file).  A line of a known form
    that cannot be read, or a line that is not valid UTF-8, is passed to *on_error* as
    a :class:`SourceError` naming the file and line, and skipped; without *on_error* it
    is raised.  A file that cannot be opened, is not text (a NUL byte), or whose format
    cannot be sniffed raises :class:`SourceError`.  *max_pending* bounds the Postfix
    messages held open at once.
    """
    if isinstance(paths, str | os.PathLike) or hasattr(paths, "read"):
        sources: Iterable[Source] = [paths]  # type: ignore[list-item]
    elif isinstance(paths, Iterable) and not isinstance(paths, bytes | bytearray):
        sources = paths
    else:
        raise SourceError(f"expected a path, a binary stream or a list of them, got {paths!r}")
    chosen = _format(format)
    counts = Counts()
    log = Log(iter(()), counts)
    log._records = _read(((_name(s), s) for s in sources), chosen, on_error, max_pending, log)
    return log


def read_lines(
    lines: Iterable[str | bytes],
    *,
    name: str = "<lines>",
    format: Format | str = Format.AUTO,
    on_error: OnError | None = None,
    max_pending: int = MAX_PENDING,
) -> Log:
    """The records of one file's *lines* (``str``, or ``bytes`` checked as UTF-8 text),
    read as :func:`read_log` reads a file called *name*."""
    if isinstance(lines, str | bytes | bytearray) or not isinstance(lines, Iterable):
        raise SourceError(f"expected an iterable of lines, got {type(lines).__name__}", path=name)
    counts = Counts()
    log = Log(iter(()), counts)
    log._records = _read([(name, lines)], _format(format), on_error, max_pending, log)
    return log


def _format(value: Format | str) -> Format:
    try:
        return Format(value)
    except ValueError:
        names = ", ".join(repr(f.value) for f in Format)
        raise SourceError(f"format: expected one of {names}, got {value!r}") from None


def _name(source: Source) -> str:
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    if not hasattr(source, "read"):
        raise SourceError(f"expected a path or a binary stream, got {source!r}")
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "<stream>"


def _read(
    sources: Iterable[tuple[str, Source | Iterable[str | bytes]]],
    chosen: Format,
    on_error: OnError | None,
    max_pending: int,
    log: Log,
) -> Iterator[Record | str]:
    counts = log.counts
    postfix: PostfixReader | None = None
    for name, source in sources:

        def fail(message: str, number: int, name: str = name) -> None:
            counts.bad += 1
            error = SourceError(message, number, name)
            if on_error is None:
                raise error
            on_error(error)

        with _Text(name, source, counts, fail) as text:
            lines: Iterator[str] = iter(text)
            fmt = chosen
            if fmt is Format.AUTO:
                head = list(islice(lines, SNIFF_LINES))
                lines = chain(head, lines)
                if not any(line.strip() for line in head):
                    log.formats.append((name, Format.JSONL))
                    continue  # an empty file: nothing to read in any format
                fmt = sniff(head, name=name)
            log.formats.append((name, fmt))
            if fmt is Format.JSONL:
                for line in lines:
                    if line.strip():
                        counts.records += 1
                    yield line
                continue
            reader: PostfixReader | ExchangeReader
            if fmt is Format.POSTFIX:
                if postfix is None:
                    postfix = PostfixReader(counts, max_pending)
                reader = postfix
            else:
                reader = ExchangeReader(counts)
            for record in reader.read(lines, fail):
                counts.records += 1
                yield record
    if postfix is not None:
        postfix.finish()


class _Text:
    """The lines of one file as text: gzip undone, UTF-8 (or UTF-16 with a byte-order
    mark) decoded, lines counted; a NUL byte raises, a line that is not UTF-8 is
    reported (as an empty line, so that line numbers stay right)."""

    def __init__(
        self,
        name: str,
        source: Source | Iterable[str | bytes],
        counts: Counts,
        fail: Callable[[str, int], None],
    ) -> None:
        self.name = name
        self.source = source
        self.counts = counts
        self.fail = fail
        self.handles: list[IO[bytes]] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in reversed(self.handles):
            handle.close()

    def __iter__(self) -> Iterator[str]:
        source = self.source
        if isinstance(source, str | os.PathLike):
            if os.fspath(source) == "-":
                stream: IO[bytes] = sys.stdin.buffer
            else:
                try:
                    stream = open(source, "rb")  # noqa: SIM115 - closed by __exit__
                except OSError as exc:
                    raise SourceError(
                        f"cannot read the log: {exc.strerror or exc}", path=self.name
                    ) from None
                self.handles.append(stream)
        elif hasattr(source, "read"):
            if isinstance(source, io.TextIOBase):
                raise SourceError("expected a binary stream, got a text stream", path=self.name)
            stream = source  # type: ignore[assignment]
        else:
            return self._lines(source)
        return self._stream(stream)

    def _stream(self, stream: IO[bytes]) -> Iterator[str]:
        try:
            buffered = _peekable(stream)
            compressed = buffered.peek(2)[:2] == _GZIP_MAGIC
            if compressed:
                buffered = gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[assignment]
                self.handles.append(buffered)
            head = buffered.peek(2)[:2]
        except (OSError, EOFError) as exc:  # EOFError: a .gz cut short
            raise SourceError(f"cannot read the log: {exc}", path=self.name) from None
        if head in _UTF16_BOMS:
            return self._utf16(buffered)
        # the lines of each block are handed on by C code, not by a generator per line
        return chain.from_iterable(self._blocks(buffered, compressed))

    def _utf16(self, stream: IO[bytes]) -> Iterator[str]:
        text = io.TextIOWrapper(stream, encoding="utf-16", newline="\n")
        number = 0
        try:
            for number, line in enumerate(text, 1):  # noqa: B007 - used after the loop
                self.counts.lines += 1
                yield line[:-1] if line.endswith("\n") else line
        except UnicodeDecodeError as exc:
            raise SourceError(f"not UTF-16 text: {exc.reason}", number + 1, self.name) from None
        except (OSError, EOFError) as exc:
            raise SourceError(f"cannot read the log: {exc}", number + 1, self.name) from None

    def _lines(self, lines: Iterable[str | bytes]) -> Iterator[str]:
        """Lines given one by one (``str``, or ``bytes`` to be checked as UTF-8)."""
        number = 0
        offset = 0
        try:
            for raw in lines:
                number += 1
                if type(raw) is str:
                    line = raw
                elif not isinstance(raw, bytes | bytearray):
                    what = type(raw).__name__
                    raise SourceError(f"expected a line of text, got {what}", number, self.name)
                else:
                    data = bytes(raw)
                    line = self._decode(data, offset, number - 1, False)[0] if data else ""
                    offset += len(data)
                if line.endswith("\n"):
                    line = line[:-1]
                if number == 1 and line.startswith("\ufeff"):
                    line = line[1:]
                yield line
        finally:
            self.counts.lines += number

    def _blocks(self, stream: IO[bytes], compressed: bool) -> Iterator[list[str]]:
        """The lines of a binary stream, read and decoded a block at a time."""
        read = getattr(stream, "read1", stream.read)
        offset = 0  # of the first byte of the block
        number = 0  # lines before the block
        pending = b""
        try:
            while True:
                data = read(BLOCK)
                if data:
                    if pending:
                        data = pending + data
                    cut = data.rfind(b"\n") + 1
                    if cut == 0:
                        pending = data
                        continue
                    block, pending = data[:cut], data[cut:]
                elif pending:
                    block, pending = pending, b""
                else:
                    break
                lines = self._decode(block, offset, number, compressed)
                if number == 0 and lines[0].startswith("\ufeff"):
                    lines[0] = lines[0][1:]
                number += len(lines)
                offset += len(block)
                yield lines
        except (OSError, EOFError) as exc:  # a truncated or corrupt .gz, a failing disk
            raise SourceError(f"cannot read the log: {exc}", number + 1, self.name) from None
        finally:
            self.counts.lines += number

    def _decode(self, block: bytes, offset: int, number: int, compressed: bool) -> list[str]:
        """The lines of *block* (whole lines, the first being line *number* + 1, at byte
        *offset*) without their ``\\n``; a line that is not UTF-8 is reported and read
        as an empty line."""
        nul = block.find(b"\0")
        if nul >= 0:
            unpacked = " of the uncompressed data" if compressed else ""
            raise SourceError(
                f"not a text file (a NUL byte at byte offset {offset + nul}{unpacked})",
                number + block.count(b"\n", 0, nul) + 1,
                self.name,
            )
        try:
            lines = block.decode("utf-8").split("\n")
        except UnicodeDecodeError:
            lines = []
            for raw in block.split(b"\n"):
                number += 1
                try:
                    lines.append(raw.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    bad = raw[exc.start : exc.start + 1].hex()
                    where = offset + exc.start
                    self.fail(f"not valid UTF-8 (byte 0x{bad} at byte offset {where})", number)
                    lines.append("")
                offset += len(raw) + 1
        if len(lines) > 1 and not lines[-1] and block.endswith(b"\n"):
            lines.pop()  # after the last line break
        return lines


def _peekable(stream: IO[bytes]) -> io.BufferedReader:
    """*stream* with ``peek()`` (to look at its first bytes without losing them)."""
    if isinstance(stream, io.BufferedReader | gzip.GzipFile):
        return stream
    return io.BufferedReader(_Raw(stream))


class _Raw(io.RawIOBase):
    """Any object with ``read()`` as a raw stream, for :class:`io.BufferedReader`."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.stream.read(len(buffer))
        if not data:
            return 0
        buffer[: len(data)] = data
        return len(data)
