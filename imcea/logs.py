"""Replay a mail log through :func:`~imcea.decide`, and compare two settings over it.

Auditors ask of a log "which of these messages did this server relay, and why?";
migration teams ask "what changes if I change the settings?".  :func:`replay` answers
both for any iterable of records (JSON objects, JSON lines, :class:`Record` values or
objects with the same attributes), one decision per recipient, lazily: nothing is held
beyond the record at hand, so a log of any size is replayed in flat memory.

:func:`run_replay` is the ``imcea replay`` command: JSON lines in, one JSON object per
recipient out, bad lines reported on standard error by line number and skipped, a
summary at the end, and ``--jobs N`` to spread the work over N processes while keeping
the output in input order (:func:`~imcea.decide` is pure, so any process may decide any
record).
"""

from __future__ import annotations

import argparse
import json
import json.encoder
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import IO, TYPE_CHECKING, Final, TextIO, overload

import attrs

from .decider import Decider
from .decision import Action, Decision, Envelope, Verdict, decide
from .errors import Error
from .networks import IPAddress, dotted_quad, parse_ip
from .settings import Settings, load_settings

if TYPE_CHECKING:
    from concurrent.futures import Future

__all__ = [
    "Change",
    "Record",
    "RecordError",
    "Replayed",
    "Summary",
    "record_from_mapping",
    "replay",
    "run_replay",
]

EXIT_OK: Final = 0
EXIT_BAD_LINES: Final = 1
EXIT_CHANGED: Final = 2

#: Lines per chunk: the unit of work of a process, and of each flush of the output.
CHUNK_LINES: Final = 1000

#: Chunks handed to the worker processes ahead of the one being written, per process.
#: Bounds the memory of ``--jobs N`` to about ``N * AHEAD * CHUNK_LINES`` lines.
AHEAD: Final = 2

#: Seconds between two updates of the progress line.
PROGRESS_EVERY: Final = 0.5

_PROGRAM: Final = "imcea replay"


class RecordError(Error):
    """A log record cannot be replayed: not JSON, a missing field, a wrong type, a bad IP.

    ``line`` is the record's line number (its position in the input, from 1) when known;
    ``str()`` starts with it, so that a report names where the bad record is.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message, line)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return self.message if self.line is None else f"line {self.line}: {self.message}"


def _shown(value: object) -> str:
    """*value* for an error message: its repr, cut short when long."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _convert_id(value: object) -> str | int | None:
    if value is None or type(value) is str or type(value) is int:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise RecordError(f"id: expected a string or an integer, got {_shown(value)}")


def _convert_sender(value: object) -> str:
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)
    raise RecordError(f"sender: expected a string, got {_shown(value)}")


def _convert_recipients(value: object) -> tuple[str, ...]:
    if type(value) is list or type(value) is tuple:
        items: tuple[object, ...] = tuple(value)
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray):
        items = tuple(value)
    else:
        raise RecordError(f"recipients: expected a list of strings, got {_shown(value)}")
    plain = True
    for i, item in enumerate(items):
        if type(item) is not str:
            if not isinstance(item, str):
                raise RecordError(f"recipients[{i}]: expected a string, got {_shown(item)}")
            plain = False
    if not plain:  # str subclasses: keep plain strings
        return tuple(str(x) for x in items)
    return items  # type: ignore[return-value]


def _checked_ip(value: object, key: str) -> str | IPAddress:
    """*value* as given (a string stays as written, for the decision's details), once
    :func:`~imcea.networks.parse_ip` has found it to be an IP address."""
    if type(value) is str and dotted_quad(value) is not None:
        return value  # the usual dotted quad: nothing to parse
    if type(value) is not str and not isinstance(value, str | IPAddress):
        raise RecordError(f"{key}: expected an IP address string, got {_shown(value)}")
    try:
        parse_ip(value, key=key)
    except Error as exc:
        raise RecordError(str(exc)) from None
    return str(value) if isinstance(value, str) else value


def _convert_ip(value: object) -> str | IPAddress:
    return _checked_ip(value, "ip")


def _convert_authenticated(value: object) -> bool:
    if type(value) is not bool:
        raise RecordError(f"authenticated: expected true or false, got {_shown(value)}")
    return value


def _convert_server_ip(value: object) -> str | IPAddress | None:
    return None if value is None else _checked_ip(value, "server_ip")


@attrs.frozen(kw_only=True)
class Record:
    """One logged SMTP transaction: who connected, and the envelope they sent.

    Every field is checked when the record is built, so that a bad record is reported
    by itself (as a :class:`RecordError` naming the field) instead of failing inside
    :func:`~imcea.decide`.  ``ip`` and ``server_ip`` are kept as given, once checked
    to be IP addresses, so that a decision names the client as the log wrote it.
    ``id`` is whatever identifies the message in the log (a queue id, a message id);
    ``None`` means "use the line number".
    """

    sender: str = attrs.field(converter=_convert_sender)
    recipients: tuple[str, ...] = attrs.field(converter=_convert_recipients)
    ip: str | IPAddress = attrs.field(converter=_convert_ip)
    authenticated: bool = attrs.field(default=False, converter=_convert_authenticated)
    server_ip: str | IPAddress | None = attrs.field(default=None, converter=_convert_server_ip)
    id: str | int | None = attrs.field(default=None, converter=_convert_id)

    def envelope(self) -> Envelope:
        """The SMTP envelope of the record, as :func:`~imcea.decide` takes it."""
        return Envelope(self.sender, self.recipients)


_REQUIRED: Final = ("sender", "recipients", "ip")

#: A record's checked fields: sender, recipients, ip, authenticated, server_ip, id.
_Fields = tuple[
    str, tuple[str, ...], str | IPAddress, bool, str | IPAddress | None, str | int | None
]


def _fields(obj: object, line: int | None, *, ips: bool = True) -> _Fields:
    """The checked fields of a JSON object (see :func:`record_from_mapping`).

    The command calls it directly, without building a :class:`Record`.  With
    ``ips=False`` an ``ip`` or ``server_ip`` string is passed on unchecked: the command
    checks the other fields first and the addresses last, as they are parsed last.
    """
    if type(obj) is not dict and not isinstance(obj, Mapping):
        raise RecordError(f"expected a JSON object, got {_json_kind(obj)}", line)
    try:
        sender = obj["sender"]
        recipients = obj["recipients"]
        ip = obj["ip"]
    except KeyError:
        missing = [name for name in _REQUIRED if name not in obj]
        names = " and ".join(repr(name) for name in missing)
        plural = "s" if len(missing) > 1 else ""
        raise RecordError(f"missing field{plural} {names}", line) from None
    get = obj.get
    server_ip = get("server_ip")
    try:
        return (
            _convert_sender(sender),
            _convert_recipients(recipients),
            ip if not ips and type(ip) is str else _convert_ip(ip),
            _convert_authenticated(get("authenticated", False)),
            server_ip
            if server_ip is None or (not ips and type(server_ip) is str)
            else _convert_server_ip(server_ip),
            _convert_id(get("id")),
        )
    except RecordError as exc:
        raise RecordError(exc.message, line) from None


def record_from_mapping(obj: object, line: int | None = None) -> Record:
    """The :class:`Record` a JSON object (or any mapping) describes.

    Fields: ``sender`` (a string, ``""`` for the null sender), ``recipients`` (a list of
    strings) and ``ip`` (the client's address) are required; ``authenticated`` (true or
    false), ``server_ip`` (the server address the client connected to, or null) and
    ``id`` (a string or an integer) are optional.  Other keys are ignored: logs carry
    timestamps and sizes the decision does not need.  Raises :class:`RecordError`,
    carrying *line*, for a missing field, a wrong type or an invalid IP address.
    """
    if type(obj) is not dict and not isinstance(obj, Mapping):
        raise RecordError(f"expected a JSON object, got {_json_kind(obj)}", line)
    if not ("sender" in obj and "recipients" in obj and "ip" in obj):
        _fields(obj, line)  # raises, naming the missing fields
    get = obj.get
    try:
        return Record(
            sender=obj["sender"],
            recipients=obj["recipients"],
            ip=obj["ip"],
            authenticated=get("authenticated", False),
            server_ip=get("server_ip"),
            id=get("id"),
        )
    except RecordError as exc:
        raise RecordError(exc.message, line) from None


def _json_kind(value: object) -> str:
    """What a JSON value is, in JSON's words (for "expected a JSON object, got ...")."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


def _loads(line: str | bytes, number: int | None) -> object:
    """The JSON value of one line of a log (a bad line raises :class:`RecordError`)."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError as exc:
            bad = exc.object[exc.start : exc.start + 1].hex()
            where = f"byte 0x{bad} at column {exc.start + 1}"
            raise RecordError(f"not JSON: not valid UTF-8 ({where})", number) from None
    if line.startswith("\ufeff"):  # a byte-order mark, at the start of a file
        line = line[1:]
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise RecordError(f"not JSON: {exc.msg} (column {exc.colno})", number) from None
    except ValueError as exc:  # e.g. an integer too long to convert
        raise RecordError(f"not JSON: {exc}", number) from None
    except RecursionError:
        raise RecordError("not JSON: nested too deeply", number) from None


def _record_from_json(line: str | bytes, number: int | None) -> Record:
    """The record one JSON line holds (a bad line raises :class:`RecordError`)."""
    return record_from_mapping(_loads(line, number), number)


def _record_from_attributes(obj: object, line: int | None) -> Record:
    """The :class:`Record` an object with ``sender``/``recipients``/``ip`` attributes is."""
    fields: dict[str, object] = {}
    for name in ("sender", "recipients", "ip", "authenticated", "server_ip", "id"):
        value = getattr(obj, name, _ABSENT)
        if value is not _ABSENT:
            fields[name] = value
    if "recipients" not in fields and "ip" not in fields:
        what = type(obj).__name__
        raise RecordError(
            f"expected a record (a mapping, a JSON line, or an object with sender,"
            f" recipients and ip), got {what}",
            line,
        )
    return record_from_mapping(fields, line)


_ABSENT: Final = object()


def _as_record(item: object, line: int) -> Record | None:
    """*item* as a :class:`Record`; ``None`` for a blank JSON line (skipped, not bad)."""
    if type(item) is dict:
        return record_from_mapping(item, line)
    if type(item) is Record:
        return item
    if isinstance(item, str | bytes):
        if not item.strip():
            return None
        return _record_from_json(item, line)
    if isinstance(item, Mapping):
        return record_from_mapping(item, line)
    if isinstance(item, Record):
        return item
    return _record_from_attributes(item, line)


def _verdict(record: Record, settings: Settings) -> Verdict:
    """:func:`~imcea.decide` for one record."""
    return decide(
        record.envelope(),
        record.ip,
        settings,
        authenticated=record.authenticated,
        server_ip=record.server_ip,
    )


# ---------------------------------------------------------------------------
# what replay() yields


@attrs.frozen
class Replayed:
    """The decision for one recipient of one record.

    ``id`` is the record's ``id``, or its line number when it has none; ``line`` is the
    record's position in the input, from 1 (for a file, its line number).
    """

    id: str | int
    line: int
    decision: Decision
    record: Record = attrs.field(repr=False)


@attrs.frozen
class Change:
    """A recipient whose action or reason differs between two settings.

    ``before`` is the decision under the first settings, ``after`` under the other
    (``compare``).
    """

    id: str | int
    line: int
    recipient: str
    before: Decision
    after: Decision
    record: Record = attrs.field(repr=False)

    @property
    def transition(self) -> str:
        """The change of action, e.g. ``"reroute -> return"`` (the relay that stops)."""
        return f"{self.before.action.value} -> {self.after.action.value}"

    @property
    def reasons(self) -> str:
        """The change of reason, e.g. ``"encapsulated_bypass -> relay_allowed_host"``."""
        return f"{self.before.reason.value} -> {self.after.reason.value}"


def _sorted_counts(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """Largest count first, ties by name: a stable order for the summary."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


@attrs.define
class Summary:
    """Counts over a replay: records, recipients, bad lines, outcomes and transitions.

    It is a counter, not a store: its size depends on the number of distinct reasons,
    never on the size of the log.  ``records`` counts the records replayed, ``bad``
    the bad ones skipped, ``recipients`` the recipients decided (under both settings,
    when comparing: ``changed`` of them differ).  ``outcomes`` counts
    ``(action, reason)`` pairs; ``transitions`` counts ``("reroute -> return",
    "encapsulated_bypass -> encapsulated_relay_denied")`` pairs: the changes of
    action and of reason of the changed recipients.
    """

    records: int = 0
    recipients: int = 0
    bad: int = 0
    changed: int = 0
    compared: bool = False
    outcomes: dict[tuple[str, str], int] = attrs.field(factory=dict)
    transitions: dict[tuple[str, str], int] = attrs.field(factory=dict)

    def add_decision(self, decision: Decision) -> None:
        """Count one recipient's decision."""
        self.recipients += 1
        key = (str(decision.action), str(decision.reason))  # str() of a str enum: its value
        self.outcomes[key] = self.outcomes.get(key, 0) + 1

    def add_change(self, change: Change) -> None:
        """Count one recipient whose outcome changed (its unchanged peers count via
        ``recipients`` only)."""
        self.changed += 1
        key = (change.transition, change.reasons)
        self.transitions[key] = self.transitions.get(key, 0) + 1

    def merge(self, other: Summary) -> None:
        """Add the counts of *other* (a part of the same log) to this one."""
        self.records += other.records
        self.recipients += other.recipients
        self.bad += other.bad
        self.changed += other.changed
        self.compared = self.compared or other.compared
        # keys may be str enums (the command counts with them): keep plain strings
        for (a, b), n in other.outcomes.items():
            key = (str(a), str(b))
            self.outcomes[key] = self.outcomes.get(key, 0) + n
        for (a, b), n in other.transitions.items():
            key = (str(a), str(b))
            self.transitions[key] = self.transitions.get(key, 0) + n

    def by_action(self) -> dict[str, int]:
        """Recipients per action (``deliver``, ``reroute``, ``return``)."""
        out: dict[str, int] = {}
        for (action, _reason), n in self.outcomes.items():
            out[action] = out.get(action, 0) + n
        return out

    def by_transition(self) -> dict[str, int]:
        """Changed recipients per transition of action, e.g. ``reroute -> return``."""
        out: dict[str, int] = {}
        for (transition, _reasons), n in self.transitions.items():
            out[transition] = out.get(transition, 0) + n
        return out

    def lines(self) -> list[str]:
        """The summary as text, one line per action (or per transition when comparing)."""
        bad = f"{self.bad} bad line{'' if self.bad == 1 else 's'} skipped"
        records = f"{self.records} record{'' if self.records == 1 else 's'}"
        if not self.compared:
            out = [f"{records}, {self.recipients} recipients, {bad}"]
            for action in Action:
                reasons = {r: n for (a, r), n in self.outcomes.items() if a == action.value}
                if reasons:
                    listed = ", ".join(f"{r} {n}" for r, n in _sorted_counts(reasons))
                    out.append(f"  {action.value}: {sum(reasons.values())} ({listed})")
            return out
        out = [f"{records}, {self.recipients} recipients compared, {self.changed} changed, {bad}"]
        for transition, total in _sorted_counts(self.by_transition()):
            reasons = {r: n for (t, r), n in self.transitions.items() if t == transition}
            listed = ", ".join(f"{r} {n}" for r, n in _sorted_counts(reasons))
            out.append(f"  {transition}: {total} ({listed})")
        return out


# ---------------------------------------------------------------------------
# replay()


@overload
def replay(
    records: Iterable[object],
    settings: Settings,
    *,
    compare: None = None,
    on_error: Callable[[RecordError], object] | None = None,
    summary: Summary | None = None,
) -> Iterator[Replayed]: ...
@overload
def replay(
    records: Iterable[object],
    settings: Settings,
    *,
    compare: Settings,
    on_error: Callable[[RecordError], object] | None = None,
    summary: Summary | None = None,
) -> Iterator[Change]: ...
def replay(
    records: Iterable[object],
    settings: Settings,
    *,
    compare: Settings | None = None,
    on_error: Callable[[RecordError], object] | None = None,
    summary: Summary | None = None,
) -> Iterator[Replayed] | Iterator[Change]:
    """Decide every recipient of every record of a log, lazily, in order.

    *records* may hold mappings (JSON objects, see :func:`record_from_mapping`), JSON
    lines (``str`` or ``bytes``; blank lines are skipped, so an open file works),
    :class:`Record` values, or objects with the same attributes.  Each record's
    position from 1 is its ``line``, and its ``id`` when it has none.

    Without *compare*, yields a :class:`Replayed` per recipient.  With *compare*, decides
    each record under both settings and yields a :class:`Change` only for the recipients
    whose action or reason differs.

    A bad record raises :class:`RecordError` (naming its line), unless *on_error* is
    given: then it is passed the error and the record is skipped.  *summary*, when
    given, counts records, recipients, bad records and outcomes as they go by.
    Nothing is held beyond the record at hand: the memory used does not grow with the
    log.
    """
    if not isinstance(settings, Settings):
        raise Error(f"settings: expected an imcea.Settings, got {type(settings).__name__}")
    if compare is not None and not isinstance(compare, Settings):
        raise Error(f"compare: expected an imcea.Settings, got {type(compare).__name__}")
    if isinstance(records, str | bytes) or not isinstance(records, Iterable):
        raise Error(f"records: expected an iterable of records, got {type(records).__name__}")
    counts = summary if summary is not None else Summary()
    if compare is None:
        return _replay(records, settings, on_error, counts)
    counts.compared = True
    return _compare(records, settings, compare, on_error, counts)


def _records(
    records: Iterable[object],
    on_error: Callable[[RecordError], object] | None,
    counts: Summary,
) -> Iterator[tuple[int, Record]]:
    """``(line, record)`` for each good record; bad ones go to *on_error* or raise."""
    for line, item in enumerate(records, 1):
        try:
            record = _as_record(item, line)
        except RecordError as exc:
            counts.bad += 1
            if on_error is None:
                raise
            on_error(exc)
            continue
        if record is not None:
            counts.records += 1
            yield line, record


def _replay(
    records: Iterable[object],
    settings: Settings,
    on_error: Callable[[RecordError], object] | None,
    counts: Summary,
) -> Iterator[Replayed]:
    for line, record in _records(records, on_error, counts):
        ident = line if record.id is None else record.id
        for decision in _verdict(record, settings):
            counts.add_decision(decision)
            yield Replayed(ident, line, decision, record)


def _compare(
    records: Iterable[object],
    before: Settings,
    after: Settings,
    on_error: Callable[[RecordError], object] | None,
    counts: Summary,
) -> Iterator[Change]:
    for line, record in _records(records, on_error, counts):
        ident = line if record.id is None else record.id
        old_verdict = _verdict(record, before)
        new_verdict = _verdict(record, after)
        for old, new in zip(old_verdict, new_verdict, strict=True):
            counts.recipients += 1
            if old.action is not new.action or old.reason is not new.reason:
                change = Change(ident, line, old.recipient, old, new, record)
                counts.add_change(change)
                yield change


# ---------------------------------------------------------------------------
# the command: JSON lines in, JSON lines out, in chunks

#: JSON text of one string, always ASCII (lone surrogates from a hostile log are
#: escaped instead of failing to print, and the bytes do not depend on the locale).
#: It is the function ``json.JSONEncoder(ensure_ascii=True).encode`` calls for a string,
#: called directly: the command calls it for every line it writes.
_json_text: Final = json.encoder.encode_basestring_ascii


def _json_id(value: str | int) -> str:
    return _json_text(value) if isinstance(value, str) else str(value)


def _decision_fields(decision: Decision) -> str:
    """``"action":...,"reason":...,"reply":...,"detail":...`` of one decision."""
    # action and reason are fixed snake_case words; "!s" gives a str enum's value at a
    # fraction of the cost of formatting the member
    return (
        f'"action":"{decision.action!s}","reason":"{decision.reason!s}",'
        f'"reply":{_json_text(decision.reply)},"detail":{_json_text(decision.detail)}'
    )


_Segments = list[tuple[bool, str]]

_DECODER: Final = json.JSONDecoder()


class _Engine:
    """Turns chunks of raw log lines into output text, error reports and counts.

    The same object does the work in one process (``--jobs 1``) and in each worker
    process (``--jobs N``), so the output is the same bytes either way.  A record of the
    usual shape (a JSON object of strings, a list of strings, booleans) takes the short
    way straight to a :class:`~imcea.Decider`; any other is checked field by field
    first, which names what is wrong with a bad one.
    """

    __slots__ = ("after", "before", "compare")

    def __init__(self, settings: Settings, compare: Settings | None) -> None:
        self.compare = compare
        self.before = Decider(settings)
        self.after = None if compare is None else Decider(compare)

    def run(self, first: int, lines: Sequence[bytes]) -> tuple[_Segments, Summary]:
        """Replay *lines*, the first being line number *first* of the log.

        Returns the segments to write, in order, each ``(is_error, text)``: runs of
        output lines, and the report of each bad line where it stands; and the counts.
        """
        counts = Summary(compared=self.compare is not None)
        segments: _Segments = []
        parts: list[str] = []
        # json.loads() less its wrappers: the document must start the line and only
        # white space may follow it; any other line takes the long way (_loads)
        decode = _DECODER.raw_decode
        for number, line in enumerate(lines, first):
            try:
                text = line.decode("utf-8", "surrogatepass")
                obj, end = decode(text)
                if end != len(text) and not text[end:].isspace():
                    raise ValueError("not one JSON value")
            except (ValueError, RecursionError):  # bad, blank, or with a byte-order mark
                if not line.strip():
                    continue
                try:
                    obj = _loads(line, number)
                except RecordError as exc:
                    self._bad(exc, counts, segments, parts)
                    continue
            # the usual shape, checked as cheaply as it can be; anything else is slow
            if type(obj) is dict:
                ip = obj.get("ip")
                recipients = obj.get("recipients")
                authenticated = obj.get("authenticated", False)
                server_ip = obj.get("server_ip")
                ident = obj.get("id")
                if (
                    type(ip) is str
                    and type(recipients) is list
                    and type(obj.get("sender")) is str
                    and (authenticated is False or authenticated is True)
                    and (server_ip is None or type(server_ip) is str)
                    and (ident is None or type(ident) is str or type(ident) is int)
                    and (dotted_quad(ip) is not None or _is_ip(ip))
                ):
                    server = None if server_ip is None else _server_ip(server_ip)
                    if server_ip is None or server is not None:
                        head = f'{{"id":{_json_id(number if ident is None else ident)},'
                        if self._fast(head, recipients, ip, authenticated, server, counts, parts):
                            counts.records += 1
                            continue
            self._slow(obj, number, counts, segments, parts)
        if parts:
            segments.append((False, "".join(parts)))
        return segments, counts

    def _fast(
        self,
        head: str,
        recipients: list[str],
        ip: str,
        authenticated: bool,
        server: IPAddress | None,
        counts: Summary,
        parts: list[str],
    ) -> bool:
        """Write the lines of a record of the usual shape; ``False`` (and nothing
        written or counted) when a recipient is not a string."""
        for recipient in recipients:
            if type(recipient) is not str:
                return False
        envelope = Envelope("", recipients)
        before = self.before.decide(envelope, ip, authenticated=authenticated, server_ip=server)
        counts.recipients += len(recipients)
        if self.after is None:
            outcomes = counts.outcomes
            for decision in before:
                key = (decision.action, decision.reason)
                outcomes[key] = outcomes.get(key, 0) + 1
                parts.append(
                    f'{head}"recipient":{_json_text(decision.recipient)},'
                    f"{_decision_fields(decision)}}}\n"
                )
            return True
        after = self.after.decide(envelope, ip, authenticated=authenticated, server_ip=server)
        for old, new in zip(before, after, strict=True):
            if (old.action, old.reason) != (new.action, new.reason):
                _count_change(counts, old, new)
                parts.append(
                    f'{head}"recipient":{_json_text(old.recipient)},'
                    f'"before":{{{_decision_fields(old)}}},"after":{{{_decision_fields(new)}}}}}\n'
                )
        return True

    def _slow(
        self,
        obj: object,
        number: int,
        counts: Summary,
        segments: _Segments,
        parts: list[str],
    ) -> None:
        """A record the short way did not take: checked field by field, so that what is
        wrong with it is reported by its line (the addresses last, as they are parsed
        last); a record that passes goes on the short way after all."""
        try:
            _fields(obj, number, ips=False)
            _, recipients, ip, authenticated, server_ip, ident = _fields(obj, number)
            server = None if server_ip is None else parse_ip(server_ip, key="server_ip")
        except Error as exc:
            self._bad(exc, counts, segments, parts, number)
            return
        head = f'{{"id":{_json_id(number if ident is None else ident)},'
        self._fast(head, list(recipients), str(ip), authenticated, server, counts, parts)
        counts.records += 1

    @staticmethod
    def _bad(
        exc: Error,
        counts: Summary,
        segments: _Segments,
        parts: list[str],
        number: int | None = None,
    ) -> None:
        """Report a bad line where it stands: after the lines written before it."""
        counts.bad += 1
        if parts:
            segments.append((False, "".join(parts)))
            parts.clear()
        where = exc if isinstance(exc, RecordError) else RecordError(str(exc), number)
        message = " ".join(str(where).split())  # always one line
        segments.append((True, f"{_PROGRAM}: {message}\n"))


def _count_change(counts: Summary, old: Decision, new: Decision) -> None:
    """Count one changed recipient by its transition (the command's summary)."""
    counts.changed += 1
    pair = (f"{old.action!s} -> {new.action!s}", f"{old.reason!s} -> {new.reason!s}")
    counts.transitions[pair] = counts.transitions.get(pair, 0) + 1


def _is_ip(text: str) -> bool:
    """Whether *text* is an IP address (in any form :func:`~imcea.networks.parse_ip` takes)."""
    try:
        parse_ip(text, key="ip")
    except Error:
        return False
    return True


def _server_ip(text: str) -> IPAddress | None:
    """*text* as an IP address, or ``None`` when it is not one (the long way reports it)."""
    try:
        return parse_ip(text, key="server_ip")
    except Error:
        return None


#: The engine of a worker process, built once by :func:`_start_worker`.
_worker_engine: _Engine | None = None


def _start_worker(settings_path: str | None, compare_path: str | None) -> None:
    """Process-pool initializer: load the settings files once per worker."""
    global _worker_engine
    compare = None if compare_path is None else load_settings(compare_path)
    _worker_engine = _Engine(_load(settings_path), compare)


def _work(first: int, lines: list[bytes]) -> tuple[_Segments, Summary]:
    """One chunk, in a worker process."""
    assert _worker_engine is not None, "the worker was not initialised"
    return _worker_engine.run(first, lines)


def _load(path: str | None) -> Settings:
    return Settings() if path is None else load_settings(path)


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
    """Writes the segments of each chunk in order, flushing so nothing printed is lost."""

    __slots__ = ("err", "out", "progress", "shared", "summary")

    def __init__(self, out: TextIO, err: TextIO, progress: _Progress | None, compared: bool):
        self.out = out
        self.err = err
        self.progress = progress
        # the output goes to the terminal too: erase the progress line before it
        self.shared = progress is not None and out.isatty()
        self.summary = Summary(compared=compared)

    def write(self, result: tuple[_Segments, Summary]) -> None:
        segments, counts = result
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
        if self.progress is not None:
            self.progress.update(self.summary.records + self.summary.bad)


def _chunks(lines: Iterable[bytes]) -> Iterator[tuple[int, list[bytes]]]:
    """``(first line number, lines)`` chunks of :data:`CHUNK_LINES` lines."""
    it = iter(lines)
    first = 1
    while chunk := list(islice(it, CHUNK_LINES)):
        yield first, chunk
        first += len(chunk)


def _text_lines(stream: IO[str]) -> Iterator[bytes]:
    """A text stream's lines as UTF-8 bytes (lone surrogates kept for the JSON reader)."""
    for line in stream:
        yield line.encode("utf-8", "surrogatepass")


def run_replay(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    """``imcea replay``: decide every record of a JSON-lines log; the exit status.

    Writes one JSON object per recipient (``id``, ``recipient``, ``action``,
    ``reason``, ``reply``, ``detail``; with ``--compare``, only the changed recipients,
    with ``before`` and ``after``), reports each bad line on *err* where it stands, and
    ends with a summary on *err*.  Exit status: 1 when a line was bad, else 2 when the
    comparison found differences, else 0.
    """
    try:
        settings = _load(args.settings)
        compare = None if args.compare is None else load_settings(args.compare)
    except Error as exc:
        err.write(f"{_PROGRAM}: {' '.join(str(exc).split())}\n")
        return EXIT_BAD_LINES
    jobs = getattr(args, "jobs", None)
    jobs = 1 if jobs is None else jobs
    if type(jobs) is not int or jobs < 1:
        err.write(f"{_PROGRAM}: --jobs: expected a positive number of processes, got {jobs!r}\n")
        return EXIT_BAD_LINES
    progress = _Progress(err) if err.isatty() else None
    writer = _Writer(out, err, progress, compared=compare is not None)
    log: str | None = args.log
    where = "stdin" if log is None or log == "-" else log
    try:
        if where == "stdin":
            buffer = getattr(stdin, "buffer", None)
            lines: Iterable[bytes] = buffer if buffer is not None else _text_lines(stdin)
            _run(lines, writer, settings, compare, jobs, args)
        else:
            try:
                handle = open(where, "rb")  # noqa: SIM115 - closed below
            except OSError as exc:
                err.write(f"{_PROGRAM}: {where}: cannot read the log: {exc.strerror or exc}\n")
                return EXIT_BAD_LINES
            with handle:
                _run(handle, writer, settings, compare, jobs, args)
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        if progress is not None:
            progress.clear()
        err.write(f"{_PROGRAM}: {' '.join(str(exc).split())}\n")  # reading or writing
        return EXIT_BAD_LINES
    except Error as exc:  # a worker process died
        if progress is not None:
            progress.clear()
        err.write(f"{_PROGRAM}: {' '.join(str(exc).split())}\n")
        return EXIT_BAD_LINES
    if progress is not None:
        progress.clear()
    summary = writer.summary
    for text in summary.lines():
        err.write(f"{_PROGRAM}: {text}\n" if not text.startswith(" ") else text + "\n")
    err.flush()
    if summary.bad:
        return EXIT_BAD_LINES
    if summary.changed:
        return EXIT_CHANGED
    return EXIT_OK


def _run(
    lines: Iterable[bytes],
    writer: _Writer,
    settings: Settings,
    compare: Settings | None,
    jobs: int,
    args: argparse.Namespace,
) -> None:
    """Replay *lines* in chunks, in this process or over *jobs* worker processes."""
    if jobs == 1:
        engine = _Engine(settings, compare)
        for first, chunk in _chunks(lines):
            writer.write(engine.run(first, chunk))
        return
    from concurrent.futures import ProcessPoolExecutor  # only now: it is slow to import
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(
        max_workers=jobs,
        initializer=_start_worker,
        initargs=(args.settings, args.compare),
    )
    pending: deque[Future[tuple[_Segments, Summary]]] = deque()
    try:
        for first, chunk in _chunks(lines):
            pending.append(pool.submit(_work, first, chunk))
            if len(pending) >= jobs * AHEAD:
                writer.write(pending.popleft().result())
        while pending:
            writer.write(pending.popleft().result())
    except BrokenProcessPool as exc:
        raise Error(f"a worker process failed: {exc}") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
