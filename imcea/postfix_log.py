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

import ipaddress
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Final

from . import Record, RecordError

if TYPE_CHECKING:
    from .sources import Counts

__all__ = ["LOCAL_IP", "MAX_PENDING", "PostfixReader", "is_postfix_line"]

#: The client address of a message that no SMTP client sent (``pickup``: sendmail(1)).
LOCAL_IP: Final = "127.0.0.1"

#: Messages waiting for their ``removed`` line, at most (the oldest is dropped first).
MAX_PENDING: Final = 10_000

#: A Postfix log line up to its queue id: a time stamp (classic syslog ``Mmm dd
#: hh:mm:ss``, or RFC 3339 with or without fractions and offset), the host, the
#: syslog tag ``postfix[-instance][/service...]/daemon[pid]`` and ``QUEUEID: `` or
#: ``NOQUEUE: ``.  Groups: host, instance, daemon, queue id.
_LINE: Final = re.compile(
    r"(?:[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d"
    r"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
    r" (\S+) (postfix[\w.-]*)(?:/[\w.-]+)*/([\w.-]+)\[\d+\]: (NOQUEUE|[0-9A-Za-z]{5,}): "
)

#: ``NAME[IP]`` of a client, with the port when ``smtpd_client_port_logging`` is on.
_CLIENT: Final = re.compile(r"([^\s\[\],]*)\[([^\]\s]*)\](?::\d+)?")

#: The tail of a reject line: ``; from=<S> to=<R>`` then `` proto=``, `` helo=`` or the end.
_ENVELOPE: Final = re.compile(r"; from=<(.*?)> to=<(.*?)>(?= proto=| helo=|$)")

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
        ipaddress.ip_address(text)
    except ValueError:
        raise _Unreadable(f"client address {_cut(text)} is not an IP address") from None
    return text


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
        # (host, instance, queue id) -> message; least recently heard of first
        self.pending: OrderedDict[tuple[str, str, str], _Message] = OrderedDict()

    def _message(self, key: tuple[str, str, str]) -> _Message:
        pending = self.pending
        message = pending.get(key)
        if message is None:
            if len(pending) >= self.max_pending:
                pending.popitem(last=False)
                self.counts.incomplete += 1
            message = pending[key] = _Message()
        else:
            pending.move_to_end(key)
        return message

    def finish(self) -> None:
        """The end of the log: the messages never seen ``removed`` are incomplete."""
        self.counts.incomplete += sum(1 for m in self.pending.values() if not m.notice)
        self.pending.clear()

    def read(self, lines: Iterable[str], fail: _Fail) -> Iterator[Record]:
        """The records of one file's lines (numbered from 1); *fail* gets each line
        that has a known form but cannot be read, with its number."""
        counts = self.counts
        match = _LINE.match
        skipped = 0
        for number, line in enumerate(lines, 1):
            m = match(line)
            if m is None:
                skipped += 1
                continue
            host, instance, daemon, qid = m.groups()
            rest = line[m.end() :].rstrip("\r\n")
            try:
                if rest.startswith("to=<"):
                    self._delivery(self._message((host, instance, qid)), rest)
                elif rest == "removed":
                    record = self._removed((host, instance, qid))
                    if record is not None:
                        yield record
                elif rest.startswith("client="):
                    self._client(self._message((host, instance, qid)), rest)
                elif rest.startswith("from=<") and daemon == "qmgr":
                    self._sender(self._message((host, instance, qid)), rest)
                elif rest.startswith("reject: RCPT from "):
                    yield self._reject(qid, rest, number, self.pending.get((host, instance, qid)))
                elif rest.startswith("uid=") and daemon == "pickup":
                    self._message((host, instance, qid)).local = True
                elif " notification: " in rest and daemon == "bounce":
                    notice = rest.rpartition(" notification: ")[2]
                    self._message((host, instance, notice)).notice = True
                else:
                    skipped += 1
            except (_Unreadable, RecordError) as exc:
                fail(str(exc), number)
        counts.skipped += skipped

    @staticmethod
    def _delivery(message: _Message, rest: str) -> None:
        end = rest.find(">, ", 4)
        if end < 0:
            raise _Unreadable(f"truncated delivery line: {_cut(rest)}")
        recipient = rest[4:end]
        after = rest[end + 3 :]
        if after.startswith("orig_to=<"):
            close = after.find(">", 9)
            if close < 0:
                raise _Unreadable(f"truncated orig_to: {_cut(rest)}")
            recipient = after[9:close]
        message.recipients[recipient] = None

    def _removed(self, key: tuple[str, str, str]) -> Record | None:
        message = self.pending.pop(key, None)
        if message is None or message.notice:
            if message is None:
                self.counts.incomplete += 1
            return None
        ip = LOCAL_IP if message.ip is None and message.local else message.ip
        if ip is None or message.sender is None or not message.recipients:
            self.counts.incomplete += 1
            return None
        return Record(
            sender=message.sender,
            recipients=tuple(message.recipients),
            ip=ip,
            authenticated=message.authenticated,
            id=key[2],
        )

    @staticmethod
    def _client(message: _Message, rest: str) -> None:
        m = _CLIENT.match(rest, 7)
        if m is None:
            raise _Unreadable(f"client=: expected NAME[IP], got {_cut(rest)}")
        ip = m.group(2)
        where = rest.find(_ORIG_CLIENT, m.end())
        if where >= 0:  # re-injected by a content filter: the client before it
            orig = _CLIENT.match(rest, where + len(_ORIG_CLIENT))
            if orig is not None:
                ip = orig.group(2)
        message.ip = _client_ip(ip)
        message.authenticated = rest.find(_SASL_USER, m.end()) >= 0

    @staticmethod
    def _sender(message: _Message, rest: str) -> None:
        end = rest.find(">, ", 6)
        if end < 0:
            raise _Unreadable(f"truncated from=<...>: {_cut(rest)}")
        if message.sender is None:
            message.sender = rest[6:end]

    @staticmethod
    def _reject(qid: str, rest: str, number: int, message: _Message | None) -> Record:
        client = _CLIENT.match(rest, 18)
        envelope = _ENVELOPE.search(rest)
        if client is None or envelope is None:
            raise _Unreadable(
                f"reject: RCPT line without NAME[IP] or from=<S> to=<R>: {_cut(rest)}"
            )
        return Record(
            sender=envelope.group(1),
            recipients=(envelope.group(2),),
            ip=_client_ip(client.group(2)),
            # a recipient refused within an accepted transaction: that client's login
            authenticated=message is not None and message.authenticated,
            id=number if qid == "NOQUEUE" else qid,
        )


class _Unreadable(ValueError):
    """A line of a known form that cannot be read (its message says why)."""


def _cut(text: str) -> str:
    """*text* for an error message: its repr, cut short when long."""
    shown = repr(text)
    return shown if len(shown) <= 80 else shown[:77] + "..."
