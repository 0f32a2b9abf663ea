"""Replay a mail log through the IMS decision, and compare two settings over it.

Auditors ask of a log "which of these messages did this server relay, and why?";
migration teams ask "what changes if I change the settings?".  :func:`replay` answers
both for any iterable of records (JSON lines, mappings, :class:`~imcea.Record` values
or objects with the same attributes), one decision per recipient, lazily: nothing is
held beyond the record at hand, so a log of any size is replayed in flat memory.

Every decision is made by the rules of :mod:`imcea.decision` with the answers of one
:class:`~imcea.Decider` per settings value for the whole log: the fields of a record
are checked once (:mod:`imcea.records`), the client is read once per record, and each
recipient is decided as :meth:`Decider.decide <imcea.Decider.decide>` would decide it.
:func:`replay_lines` is the same replay written as the output records of
``imcea replay`` (one JSON line per recipient); :func:`output_record` and
:func:`output_line` turn one result of :func:`replay` into the same object or line.
A :class:`Summary` counts outcomes as they go by, and :class:`Groups` counts them by
reason, client or domain, keeping the first example of each.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from json.encoder import encode_basestring_ascii
from typing import Any, Final, TypeVar, overload

import attrs

from .decider import Decider
from .decision import Action, Client, Decision, Reason, decide_recipient
from .errors import Error
from .records import Fields, Record, RecordError, read_fields, read_record
from .settings import Settings
from .wording import plural

__all__ = [
    "Change",
    "GroupBy",
    "Groups",
    "Replayed",
    "Summary",
    "output_line",
    "output_record",
    "replay",
    "replay_lines",
    "summarize",
]


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
    """Largest count first, ties by name: a stable order for summaries and tables."""
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
        self.add_transition(change.before, change.after)

    def add_transition(self, before: Decision, after: Decision) -> None:
        """Count one recipient decided *before* under the first settings and *after*
        under the other, which differ."""
        self.changed += 1
        key = (
            f"{before.action!s} -> {after.action!s}",
            f"{before.reason!s} -> {after.reason!s}",
        )
        self.transitions[key] = self.transitions.get(key, 0) + 1

    def merge(self, other: Summary) -> None:
        """Add the counts of *other* (a part of the same log) to this one."""
        self.records += other.records
        self.recipients += other.recipients
        self.bad += other.bad
        self.changed += other.changed
        self.compared = self.compared or other.compared
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
        bad = f"{plural(self.bad, 'bad line')} skipped"
        records = plural(self.records, "record")
        if not self.compared:
            out = [f"{records}, {plural(self.recipients, 'recipient')}, {bad}"]
            for action in Action:
                reasons = {r: n for (a, r), n in self.outcomes.items() if a == action.value}
                if reasons:
                    listed = ", ".join(f"{r} {n}" for r, n in _sorted_counts(reasons))
                    out.append(f"  {action.value}: {sum(reasons.values())} ({listed})")
            return out
        compared = plural(self.recipients, "recipient")
        out = [f"{records}, {compared} compared, {self.changed:,} changed, {bad}"]
        for transition, total in _sorted_counts(self.by_transition()):
            reasons = {r: n for (t, r), n in self.transitions.items() if t == transition}
            listed = ", ".join(f"{r} {n}" for r, n in _sorted_counts(reasons))
            out.append(f"  {transition}: {total} ({listed})")
        return out

    def as_json(self) -> dict[str, Any]:
        """The counts as a JSON object: the totals, then ``outcomes`` (or
        ``transitions`` when comparing), largest count first."""
        out: dict[str, Any] = {
            "records": self.records,
            "recipients": self.recipients,
            "bad": self.bad,
        }
        if not self.compared:
            pairs = _sorted_counts({f"{a} {r}": n for (a, r), n in self.outcomes.items()})
            out["outcomes"] = [
                {"action": key.split()[0], "reason": key.split()[1], "count": n} for key, n in pairs
            ]
            return out
        out["changed"] = self.changed
        changes = _sorted_counts({f"{t}|{r}": n for (t, r), n in self.transitions.items()})
        out["transitions"] = [
            {"transition": key.split("|")[0], "reasons": key.split("|")[1], "count": n}
            for key, n in changes
        ]
        return out


# ---------------------------------------------------------------------------
# groups


class GroupBy(enum.StrEnum):
    """What :class:`Groups` counts results by."""

    #: The reason of the decision, or the change of reason when comparing.
    REASON = "reason"
    #: The client's address, as the log wrote it.
    CLIENT = "client"
    #: The domain of the recipient as written (after its last ``@``), in lower case;
    #: ``""`` for a recipient without one (a bare ``Postmaster``).
    DOMAIN = "domain"


def _group_by(value: object) -> GroupBy:
    """*value* as a :class:`GroupBy`; anything else is an :class:`~imcea.Error`."""
    for by in GroupBy:
        if value == by:
            return by
    names = ", ".join(str(by) for by in GroupBy)
    names = " or ".join(names.rsplit(", ", 1))
    raise Error(f"group by: expected {names}, got {value!r}")


def _domain(recipient: str) -> str:
    """The domain of *recipient* as written: after the last ``@``, in lower case."""
    at = recipient.rfind("@")
    if at < 0:
        return ""
    return recipient[at + 1 :].strip().rstrip(">").strip().lower()


@attrs.define
class Groups:
    """Results counted by reason, client or domain, with the first example of each.

    A result is a recipient's decision (when comparing, a changed recipient).
    ``counts`` maps each group to its number of results; ``first`` to the line
    number and :func:`output record <output_record>` of its first result.  It holds
    one entry per group, so its size is that of the answer (e.g. the clients seen),
    not of the log.
    """

    by: GroupBy = attrs.field(converter=_group_by)
    counts: dict[str, int] = attrs.field(factory=dict)
    first: dict[str, tuple[int, dict[str, Any]]] = attrs.field(factory=dict)

    def add(self, key: str, line: int, example: Callable[[], dict[str, Any]]) -> None:
        """Count one result of group *key*; *example* makes its output record, called
        only for the first result of a group."""
        count = self.counts.get(key)
        if count is None:
            self.counts[key] = 1
            self.first[key] = (line, example())
        else:
            self.counts[key] = count + 1

    def merge(self, other: Groups) -> None:
        """Add the counts of *other*, a later part of the same log."""
        for key, n in other.counts.items():
            if key in self.counts:
                self.counts[key] += n
            else:
                self.counts[key] = n
                self.first[key] = other.first[key]

    def rows(self) -> list[tuple[str, int, int, dict[str, Any]]]:
        """``(group, count, first line, first output record)``, largest count first."""
        return [(key, n, *self.first[key]) for key, n in _sorted_counts(self.counts)]

    def as_json(self) -> list[dict[str, Any]]:
        """The groups as JSON objects, largest count first."""
        return [
            {str(self.by): key, "count": n, "line": line, "first": example}
            for key, n, line, example in self.rows()
        ]


# ---------------------------------------------------------------------------
# the output records of ``imcea replay``

#: JSON text of one string, always ASCII: lone surrogates from a hostile log are
#: escaped instead of failing to print, and the bytes do not depend on the locale.
_json_text: Final = encode_basestring_ascii


def _json_id(value: str | int) -> str:
    return _json_text(value) if type(value) is str else str(value)


#: ``"action":"...","reason":"..."`` of each pair, written once: formatting a str enum
#: costs more than the rest of a line.
_OUTCOME_TEXT: Final[dict[tuple[str, str], str]] = {
    (action, reason): f'"action":"{action.value}","reason":"{reason.value}"'
    for action in Action
    for reason in Reason
}


def _outcome_text(action: str, reason: str) -> str:
    """``"action":"...","reason":"..."`` of one decision."""
    text = _OUTCOME_TEXT.get((action, reason))
    if text is None:  # a decision made by hand: values that are not members
        text = f'"action":{_json_text(str(action))},"reason":{_json_text(str(reason))}'
    return text


def _fields(decision: Decision) -> str:
    """``"action":...,"reason":...,"reply":...,"detail":...`` of one decision."""
    return (
        f"{_outcome_text(decision.action, decision.reason)},"
        f'"reply":{_json_text(decision.reply)},"detail":{_json_text(decision.detail)}'
    )


def _line(ident: str, decision: Decision) -> str:
    """The output line of one decision; *ident* is the JSON text of its record's id."""
    return f'{{"id":{ident},"recipient":{_json_text(decision.recipient)},{_fields(decision)}}}\n'


def _change_line(ident: str, before: Decision, after: Decision) -> str:
    """The output line of one changed recipient."""
    return (
        f'{{"id":{ident},"recipient":{_json_text(before.recipient)},'
        f'"before":{{{_fields(before)}}},"after":{{{_fields(after)}}}}}\n'
    )


def _object(decision: Decision) -> dict[str, Any]:
    return {
        "action": decision.action.value,
        "reason": decision.reason.value,
        "reply": decision.reply,
        "detail": decision.detail,
    }


def _record_object(ident: str | int, before: Decision, after: Decision | None) -> dict[str, Any]:
    if after is None:
        return {"id": ident, "recipient": before.recipient, **_object(before)}
    return {
        "id": ident,
        "recipient": before.recipient,
        "before": _object(before),
        "after": _object(after),
    }


def output_record(result: Replayed | Change) -> dict[str, Any]:
    """The JSON object ``imcea replay`` writes for one result of :func:`replay`.

    For a :class:`Replayed`: ``id``, ``recipient``, ``action``, ``reason``, ``reply``
    and ``detail``; for a :class:`Change`: ``id``, ``recipient``, then ``before`` and
    ``after``, each with ``action``, ``reason``, ``reply`` and ``detail``.
    """
    if isinstance(result, Change):
        return _record_object(result.id, result.before, result.after)
    return _record_object(result.id, result.decision, None)


def output_line(result: Replayed | Change) -> str:
    """The line ``imcea replay`` writes for one result of :func:`replay`: the JSON text
    of :func:`output_record` (ASCII, no spaces) and a newline."""
    if isinstance(result, Change):
        return _change_line(_json_id(result.id), result.before, result.after)
    return _line(_json_id(result.id), result.decision)


# ---------------------------------------------------------------------------
# the replay


def _decider(value: object, name: str) -> Decider:
    if isinstance(value, Decider):
        return value
    if isinstance(value, Settings):
        return Decider(value)
    raise Error(
        f"{name}: expected an imcea.Settings or an imcea.Decider, got {type(value).__name__}"
    )


_Read = TypeVar("_Read", Fields, Record)


class _Pass:
    """One pass over the records of a log: reads them, decides them, counts them.

    The public functions below differ only in what they make of each result.
    """

    __slots__ = ("after", "before", "counts", "groups", "on_error")

    def __init__(
        self,
        settings: Settings | Decider,
        compare: Settings | Decider | None,
        on_error: Callable[[RecordError], object] | None,
        summary: Summary | None,
        groups: Groups | None,
    ) -> None:
        self.before = _decider(settings, "settings")
        self.after = None if compare is None else _decider(compare, "compare")
        if groups is not None and not isinstance(groups, Groups):
            raise Error(f"groups: expected an imcea.replay.Groups, got {type(groups).__name__}")
        self.on_error = on_error
        self.counts = summary if summary is not None else Summary()
        if compare is not None:
            self.counts.compared = True
        self.groups = groups

    def fields(self, items: Iterable[object], start: int) -> Iterator[tuple[int, Fields]]:
        """``(line, fields)`` of each good record; bad ones go to *on_error* or raise."""
        return self.read(items, start, read_fields)

    def records(self, items: Iterable[object], start: int) -> Iterator[tuple[int, Record]]:
        """``(line, record)`` of each good record; bad ones go to *on_error* or raise."""
        return self.read(items, start, read_record)

    def read(
        self,
        items: Iterable[object],
        start: int,
        reader: Callable[[object, int], _Read | None],
    ) -> Iterator[tuple[int, _Read]]:
        """``(line, what reader makes of it)`` for each good item."""
        counts, on_error = self.counts, self.on_error
        for line, item in enumerate(items, start):
            try:
                value = reader(item, line)
            except RecordError as exc:
                counts.bad += 1
                if on_error is None:
                    raise
                on_error(exc)
                continue
            if value is not None:
                counts.records += 1
                yield line, value

    def results(self, line: int, fields: Fields) -> list[tuple[Decision, Decision | None]]:
        """The results of one record, counted: each recipient's decision, or when
        comparing, the ``(before, after)`` decisions of the changed recipients."""
        _, recipients, ip, authenticated, server_ip, _ = fields
        client = Client.of(ip, authenticated, server_ip)
        before = [decide_recipient(recipient, client, self.before) for recipient in recipients]
        counts = self.counts
        counts.recipients += len(before)
        out: list[tuple[Decision, Decision | None]]
        if self.after is None:
            outcomes = counts.outcomes
            for d in before:
                key = (str(d.action), str(d.reason))  # str() of a str enum: its value
                outcomes[key] = outcomes.get(key, 0) + 1
            out = [(d, None) for d in before]
        else:
            after = [decide_recipient(recipient, client, self.after) for recipient in recipients]
            out = []
            for old, new in zip(before, after, strict=True):
                if old.action is not new.action or old.reason is not new.reason:
                    counts.add_transition(old, new)
                    out.append((old, new))
        if self.groups is not None and out:
            self.group(line, fields, out)
        return out

    def group(
        self, line: int, fields: Fields, results: list[tuple[Decision, Decision | None]]
    ) -> None:
        """Count *results* in their groups."""
        groups = self.groups
        assert groups is not None
        by = groups.by
        ident = line if fields[5] is None else fields[5]
        for old, new in results:
            if by is GroupBy.REASON:
                key = str(old.reason) if new is None else f"{old.reason!s} -> {new.reason!s}"
            elif by is GroupBy.CLIENT:
                key = str(fields[2]).strip()
            else:
                key = _domain(old.recipient)
            groups.add(key, line, functools.partial(_record_object, ident, old, new))


@overload
def replay(
    records: Iterable[object],
    settings: Settings | Decider,
    *,
    compare: None = None,
    on_error: Callable[[RecordError], object] | None = None,
    summary: Summary | None = None,
    groups: Groups | None = None,
    start: int = 1,
) -> Iterator[Replayed]: ...
@overload
def replay(
    records: Iterable[object],
    settings: Settings | Decider,
    *,
    compare: Settings | Decider,
    on_error: Callable[[RecordError], object] | None = None,
    summary: Summary | None = None,
    groups: Groups | None = None,
    start: int = 1,
) -> Iterator[Change]: ...
def replay(
    records: Iterable[object],
    settings: Settings | Decider,
    *,
    compare: Settings | Decider | None = None,
    on_error: Callable[[RecordError], object] | None = None,
    summary: Summary | None = None,
    groups: Groups | None = None,
    start: int = 1,
) -> Iterator[Replayed] | Iterator[Change]:
    """Decide every recipient of every record of a log, lazily, in order.

    *records* may hold JSON lines (``str`` or ``bytes``; blank lines are skipped, so an
    open file works), mappings (JSON objects, see :func:`~imcea.records.record_from_mapping`),
    :class:`~imcea.Record` values, or objects with the same attributes.  Each record's
    position (from *start*, 1 unless the log is replayed in parts) is its ``line``,
    and its ``id`` when it has none.  *settings* and *compare* may be
    :class:`~imcea.Settings` or :class:`~imcea.Decider` values; one decider is used
    per settings value for the whole log.

    Without *compare*, yields a :class:`Replayed` per recipient.  With *compare*, decides
    each record under both settings and yields a :class:`Change` only for the recipients
    whose action or reason differs.

    A bad record raises :class:`~imcea.RecordError` (naming its line), unless *on_error*
    is given: then it is passed the error and the record is skipped.  *summary*, when
    given, counts records, recipients, bad records and outcomes as they go by; *groups*
    counts the results by reason, client or domain.  Nothing is held beyond the record
    at hand: the memory used does not grow with the log.
    """
    run = _start(records, settings, compare, on_error, summary, groups, start)
    if compare is None:
        return _replayed(run, records, start)
    return _changes(run, records, start)


def _start(
    records: Iterable[object],
    settings: Settings | Decider,
    compare: Settings | Decider | None,
    on_error: Callable[[RecordError], object] | None,
    summary: Summary | None,
    groups: Groups | None,
    start: int,
) -> _Pass:
    """The pass over *records*, once the arguments are checked (before anything is read)."""
    if isinstance(records, str | bytes) or not isinstance(records, Iterable):
        raise Error(f"records: expected an iterable of records, got {type(records).__name__}")
    if type(start) is not int:
        raise Error(f"start: expected a line number, got {start!r}")
    return _Pass(settings, compare, on_error, summary, groups)


def _record_fields(record: Record) -> Fields:
    return (
        record.sender,
        record.recipients,
        record.ip,
        record.authenticated,
        record.server_ip,
        record.id,
    )


def _replayed(run: _Pass, records: Iterable[object], start: int) -> Iterator[Replayed]:
    for line, record in run.records(records, start):
        ident = line if record.id is None else record.id
        for decision, _ in run.results(line, _record_fields(record)):
            yield Replayed(ident, line, decision, record)


def _changes(run: _Pass, records: Iterable[object], start: int) -> Iterator[Change]:
    for line, record in run.records(records, start):
        ident = line if record.id is None else record.id
        for before, after in run.results(line, _record_fields(record)):
            assert after is not None
            yield Change(ident, line, before.recipient, before, after, record)


def replay_lines(
    records: Iterable[object],
    settings: Settings | Decider,
    *,
    compare: Settings | Decider | None = None,
    on_error: Callable[[RecordError], object] | None = None,
    summary: Summary | None = None,
    groups: Groups | None = None,
    start: int = 1,
) -> Iterator[str]:
    """:func:`replay`, each result written as its :func:`output_line`: the lines that
    ``imcea replay`` writes, in order, lazily."""
    run = _start(records, settings, compare, on_error, summary, groups, start)
    return _lines(run, records, start)


def _lines(run: _Pass, records: Iterable[object], start: int) -> Iterator[str]:
    if run.after is not None or run.groups is not None:
        results = run.results
        for line, fields in run.fields(records, start):
            decided = results(line, fields)
            if decided:
                ident = fields[5]
                text = str(line) if ident is None else _json_id(ident)
                for before, after in decided:
                    yield (
                        _line(text, before) if after is None else _change_line(text, before, after)
                    )
        return
    # the usual run, written out: no comparison, no groups.  The fields are checked
    # already, so each recipient goes to the rules as it is, with the client read once
    # per record (what Decider.decide does, less the envelope and the verdict).
    decider, counts = run.before, run.counts
    outcomes, json_text, outcome_text = counts.outcomes, _json_text, _OUTCOME_TEXT
    client_of = Client.of
    for line, read in run.fields(records, start):
        _, recipients, ip, authenticated, server_ip, ident = read
        client = client_of(ip, authenticated, server_ip)
        counts.recipients += len(recipients)
        if ident is None:
            text = str(line)
        else:
            text = json_text(ident) if type(ident) is str else str(ident)
        for recipient in recipients:
            d = decide_recipient(recipient, client, decider)
            recipient, action, reason, detail, reply = d[:5]
            key = d[1:3]  # (action, reason): str enums, equal to their values
            outcomes[key] = outcomes.get(key, 0) + 1
            yield (
                f'{{"id":{text},"recipient":{json_text(recipient)},'
                f"{outcome_text.get(key) or _outcome_text(action, reason)},"
                f'"reply":{json_text(reply)},"detail":{json_text(detail)}}}\n'
            )


def summarize(
    records: Iterable[object],
    settings: Settings | Decider,
    *,
    compare: Settings | Decider | None = None,
    on_error: Callable[[RecordError], object] | None = None,
    summary: Summary | None = None,
    groups: Groups | None = None,
    start: int = 1,
) -> Summary:
    """:func:`replay` for its counts alone: the :class:`Summary` of *records* (and
    *groups* filled in, when given), without making a result per recipient."""
    run = _start(records, settings, compare, on_error, summary, groups, start)
    results = run.results
    for line, fields in run.fields(records, start):
        results(line, fields)
    return run.counts
