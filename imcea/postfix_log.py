"""Postfix mail logs as replay records: a rejected ``RCPT`` is a record of its own, an
accepted message is gathered from the lines of its queue id.

Postfix logs one message over several lines of several daemons (``smtpd``, ``qmgr``,
the delivery agents), interleaved with every other message in flight.  The reader
keeps the messages it has not seen ``removed`` in a table of bounded size: when the
table is full the message least recently heard of is dropped and counted, so that
a log of any length is read in flat memory.  Line forms follow Postfix's own logging
(``smtpd(8)``, ``qmgr(8)``, ``pickup(8)``, ``bounce(8)`` and the delivery agents);
time stamps may be classic syslog ones (also ``journalctl -o short``) or RFC 3339
ones (also ``journalctl -o short-iso``).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Final

from .errors import shorten
from .reading import Counts, logged_ip
from .records import Record, RecordError

__all__ = ["LOCAL_IP", "MAX_PENDING", "PostfixReader", "is_postfix_line"]

#: The client address of a message that no SMTP client sent (``pickup``: sendmail(1)).
LOCAL_IP: Final = "127.0.0.1"

#: Messages waiting for their ``removed`` line, at most (the oldest is dropped first).
MAX_PENDING: Final = 10_000

#: A Postfix log line up to what follows its queue id: a time stamp (classic syslog
#: ``Mmm dd hh:mm:ss``, with microseconds as ``journalctl -o short-precise`` writes
#: them, or RFC 3339), the host, the syslog tag
#: ``postfix[-instance][/service...]/daemon[pid]``, ``QUEUEID: `` or ``NOQUEUE: ``, and
#: the start of the forms the reader uses.  Groups: ``host instance``, queue id, form
#: (``None`` for a line of another form).  The forms tell the daemons apart: only
#: ``qmgr`` logs ``QUEUEID: from=<``, only ``pickup`` logs ``QUEUEID: uid=``.
_LINE: Final = re.compile(
    r"(?:[A-Z][a-z]{2} [ \d]\d [\d:]{8}(?:\.\d+)?|\d{4}-\d\d-\d\d[T ][^ ]+) "
    r"([^ ]+ postfix[^/ \[]*)/[^ \[]+\[\d+\]: (NOQUEUE|[0-9A-Za-z]{5,}): "
    r"(to=<|removed|client=|from=<|reject: RCPT from |uid="
    r"|(?:sender|postmaster) [a-z -]*notification: )?"
)

#: ``NAME[IP]`` of a client, with the port when ``smtpd_client_port_logging`` is on.
_CLIENT: Final = re.compile(r"([^\s\[\],]*)\[([^\]\s]*)\](?::\d+)?")

#: The tail of a reject line: ``; from=<S> to=<R>`` then `` proto=``, `` helo=`` or the
#: end (postscreen(8) puts commas between the fields).
_ENVELOPE: Final = re.compile(r"; from=<(.*?)>,? to=<(.*?)>(?=,? proto=|,? helo=|\r?$)")

_SASL_USER: Final = ", sasl_username="
_ORIG_CLIENT: Final = ", orig_client="

_Fail = Callable[[str, int], None]


def is_postfix_line(line: str) -> bool:
    """Whether *line* is a Postfix log line about a queue id or a rejected client."""
    return _LINE.match(line) is not None


def _client_ip(text: str) -> str:
    """The IP address inside ``[...]`` of a client, as logged (``IPv6:`` dropped)."""
    if text.startswith(("IPv6:", "ipv6:")):
        text = text[5:]
    try:
        return logged_ip(text)
    except ValueError as exc:
        raise _Unreadable(str(exc)) from None


class _Message:
    """What the log has said so far of one queued message."""

    __slots__ = ("authenticated", "ip", "local", "notice", "recipients", "sender")

    def __init__(self) -> None:
        self.ip: str | None = None
        self.authenticated = False
        self.local = False  # picked up from the maildrop: no SMTP client
        self.notice = False  # a bounce or delay notice Postfix made itself
        self.sender: str | None = None
        self.recipients: dict[str, None] = {}  # in order of first delivery, once each


class PostfixReader:
    """Reads the files of one Postfix log in order, correlating queue ids across them.

    :meth:`read` yields the records of one file; :meth:`finish` counts the messages
    still open at the end of the log as incomplete.  A message becomes a record at its
    ``removed`` line, with the queue id as ``id``: its client (``smtpd ... client=``,
    ``orig_client=`` behind a content filter, or ``127.0.0.1`` for ``pickup``), the
    sender of ``qmgr ... from=<S>`` and each recipient of the delivery lines once
    (``orig_to`` when logged: the address the client gave), however many delivery
    attempts it took.  A ``reject: RCPT`` line is one record by itself, its ``id``
    the queue id or, for ``NOQUEUE``, the line number.
    """

    __slots__ = ("counts", "max_pending", "pending")

    def __init__(self, counts: Counts, max_pending: int = MAX_PENDING) -> None:
        self.counts = counts
        self.max_pending = max_pending
        # ("host instance", queue id) -> message; least recently heard of first
        self.pending: OrderedDict[tuple[str, str], _Message] = OrderedDict()

    def _new(self, key: tuple[str, str]) -> _Message:
        """A message not seen before; the least recently heard of is dropped (and
        counted) when the table is full."""
        pending = self.pending
        if len(pending) >= self.max_pending:
            pending.popitem(last=False)
            self.counts.incomplete += 1
        message = pending[key] = _Message()
        return message

    def finish(self) -> None:
        """The end of the log: the messages never seen ``removed`` are incomplete."""
        self.counts.incomplete += sum(1 for m in self.pending.values() if not m.notice)
        self.pending.clear()

    def read(self, lines: Iterable[str], fail: _Fail) -> Iterator[Record]:
        """The records of one file's lines (numbered from 1); *fail* gets each line
        that has a known form but cannot be read, with its number."""
        match = _LINE.match
        pending = self.pending
        touch = pending.move_to_end
        new = self._new
        skipped = 0
        for number, m in enumerate(map(match, lines), 1):
            if m is None or m.lastindex != 3:  # not a form the reader uses
                skipped += 1
                continue
            line = m.string
            where, qid, form = m.groups()
            key = (where, qid)
            message = pending.get(key)
            if message is None and form != "removed" and form[0] != "r":  # r: reject
                message = new(key)
            try:
                if form == "to=<":
                    assert message is not None
                    touch(key)  # a message deferred for long is still heard of
                    start = m.end()
                    end = line.find(">, ", start)
                    if end < 0:
                        raise _Unreadable(f"truncated delivery line: {shorten(line[start - 4 :])}")
                    if line.startswith("orig_to=<", end + 3):
                        close = line.find(">", end + 12)
                        if close < 0:
                            raise _Unreadable(f"truncated orig_to: {shorten(line[start - 4 :])}")
                        message.recipients[line[end + 12 : close]] = None
                    else:
                        message.recipients[line[start:end]] = None
                elif form == "removed":
                    if message is not None:
                        del pending[key]
                    record = self._removed(message, qid)
                    if record is not None:
                        yield record
                elif form == "client=":
                    assert message is not None
                    self._client(message, line, m.end())
                elif form == "from=<":
                    assert message is not None
                    start = m.end()
                    end = line.find(">, ", start)
                    if end < 0:
                        raise _Unreadable(f"truncated from=<...>: {shorten(line[start - 6 :])}")
                    if message.sender is None:
                        message.sender = line[start:end]
                elif form == "reject: RCPT from ":
                    yield self._reject(qid, line, m.end(), number, message)
                elif form == "uid=":
                    assert message is not None
                    message.local = True
                else:  # a notice: the queue id of the message Postfix made
                    notice = line[m.end() :].rstrip()
                    (pending.get((where, notice)) or new((where, notice))).notice = True
            except (_Unreadable, RecordError) as exc:
                fail(str(exc), number)
        self.counts.skipped += skipped

    def _removed(self, message: _Message | None, qid: str) -> Record | None:
        if message is None or message.notice:
            if message is None:
                self.counts.incomplete += 1  # begun before the log, or flushed
            return None
        ip = LOCAL_IP if message.ip is None and message.local else message.ip
        if ip is None or message.sender is None or not message.recipients:
            self.counts.incomplete += 1
            return None
        # the fields are right by construction: the client was checked as it was read
        return Record.read_as(
            message.sender, tuple(message.recipients), ip, message.authenticated, qid
        )

    @staticmethod
    def _client(message: _Message, line: str, start: int) -> None:
        m = _CLIENT.match(line, start)
        if m is None:
            raise _Unreadable(f"client=: expected NAME[IP], got {shorten(line[start - 7 :])}")
        ip = m.group(2)
        end = m.end()
        if end < len(line) - 1:  # more fields
            where = line.find(_ORIG_CLIENT, end)
            if where >= 0:  # re-injected by a content filter: the client before it
                orig = _CLIENT.match(line, where + len(_ORIG_CLIENT))
                if orig is not None:
                    ip = orig.group(2)
            message.authenticated = line.find(_SASL_USER, end) >= 0
        message.ip = _client_ip(ip)

    @staticmethod
    def _reject(qid: str, line: str, start: int, number: int, message: _Message | None) -> Record:
        client = _CLIENT.match(line, start)
        envelope = _ENVELOPE.search(line, start)
        if client is None or envelope is None:
            rest = shorten(line[start - 18 :])
            raise _Unreadable(f"reject: RCPT line without NAME[IP] or from=<S> to=<R>: {rest}")
        return Record.read_as(
            envelope.group(1),
            (envelope.group(2),),
            _client_ip(client.group(2)),
            # a recipient refused within an accepted transaction: that client's login
            message is not None and message.authenticated,
            number if qid == "NOQUEUE" else qid,
        )


class _Unreadable(ValueError):
    """A line of a known form that cannot be read (its message says why)."""
