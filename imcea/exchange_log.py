"""Exchange message tracking logs and message trace exports as replay records.

Three forms, all CSV with the columns named in the file: the ``MSGTRK*.LOG`` files of
Exchange 2007-2019 (``#`` comment lines, a ``#Fields:`` line naming the columns),
``Get-MessageTrackingLog | Export-Csv`` (a header row, ``#TYPE`` line optional) and
Exchange Online's message trace export (a header row: ``SenderAddress``,
``RecipientAddress``, ``FromIP``, ``ToIP``, ``MessageId``...).  Columns are found by
name, never by position; names compare without case, ``-`` or ``_``.  Where the file
has an event column, only ``RECEIVE`` events from source ``SMTP`` are SMTP
transactions; other rows are skipped.  Where Exchange 2013 and later logged an
``original-client-ip`` (the front end proxied the connection), it is the client.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final

from .reading import Counts, logged_ip
from .records import Record, RecordError

__all__ = ["COLUMNS", "ExchangeReader", "is_exchange_header"]

#: What a record needs -> the column names that give it: the tracking log's ``#Fields:``
#: name first, then ``Get-MessageTrackingLog``'s property, then message trace's.
COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "client_ip": ("client-ip", "ClientIp", "FromIP"),
    # Exchange 2013+: the client of a connection the front end proxied to transport
    "original_client_ip": ("original-client-ip", "OriginalClientIp"),
    "server_ip": ("server-ip", "ServerIp", "ToIP"),
    "sender": ("sender-address", "Sender", "SenderAddress"),
    "recipients": ("recipient-address", "Recipients", "RecipientAddress"),
    "id": ("message-id", "MessageId"),
    "event": ("event-id", "EventId"),
    "source": ("source", "Source"),
}

#: Columns every form must have; a ``#Fields:`` line must also name the event columns.
_REQUIRED: Final = ("client_ip", "sender", "recipients")
_REQUIRED_TRACKING: Final = (*_REQUIRED, "event", "source")

#: What PowerShell's Export-Csv writes for a list it was not told to join.
_UNJOINED: Final = "System.String[]"

_Fail = Callable[[str, int], None]


def _key(name: str) -> str:
    """A column name as compared: no case, no ``-``, ``_`` or surrounding space."""
    return name.strip().strip('"').lower().replace("-", "").replace("_", "")


#: Normalised column name -> what it gives.
_BY_NAME: Final = {_key(name): what for what, names in COLUMNS.items() for name in names}


def is_exchange_header(line: str) -> bool:
    """Whether *line* starts an Exchange log or export: a tracking log header line or a
    CSV header naming a client address and the recipients."""
    if line.startswith(("#Software: Microsoft Exchange", "#Fields:")):
        return True
    if line.startswith("#"):
        return False
    try:
        names = next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return False
    found = {_BY_NAME.get(_key(name)) for name in names}
    return "client_ip" in found and "recipients" in found and "sender" in found


class _Columns:
    """Where each needed value stands in a row, from one header."""

    __slots__ = (
        "client_ip",
        "event",
        "id",
        "need",
        "original_client_ip",
        "recipients",
        "sender",
        "server_ip",
        "source",
    )

    def __init__(self, names: Sequence[str], tracking: bool) -> None:
        where: dict[str, int] = {}
        for index, name in enumerate(names):
            what = _BY_NAME.get(_key(name))
            if what is not None and what not in where:
                where[what] = index
        for what in _REQUIRED_TRACKING if tracking else _REQUIRED:
            if what not in where:
                names_of = COLUMNS[what]
                wanted = repr(names_of[0]) if tracking else " or ".join(map(repr, names_of[1:]))
                header = "the #Fields: line" if tracking else "the header row"
                raise ValueError(f"{header} has no {wanted} column")
        self.client_ip = where["client_ip"]
        self.sender = where["sender"]
        self.recipients = where["recipients"]
        self.original_client_ip = where.get("original_client_ip")
        self.server_ip = where.get("server_ip")
        self.id = where.get("id")
        self.event = where.get("event")
        self.source = where.get("source")
        self.need = max(where.values()) + 1


class ExchangeReader:
    """Reads one file of message tracking log or export at a time (each file has its
    own header).  A row becomes one record, ``id`` its message id (the line number
    when it has none), recipients split at ``;``."""

    __slots__ = ("counts",)

    def __init__(self, counts: Counts) -> None:
        self.counts = counts

    def finish(self) -> None:
        """The end of the log (nothing is held across rows)."""

    def read(self, lines: Iterable[str], fail: _Fail) -> Iterator[Record]:
        """The records of one file's lines; *fail* gets each bad row with its line number.

        The lines come without their line breaks: a quoted field that goes on over
        several lines is read whole, without them (no column the reader uses has any).
        """
        rows = csv.reader(lines)
        columns: _Columns | None = None
        tracking = False  # a #Fields: line was seen: no header row
        skipped = 0
        while True:
            try:
                for row in rows:
                    if not row or row[0].startswith("#"):  # blank, or a comment line
                        skipped += 1
                        if row and row[0].startswith("#Fields:"):
                            tracking = True
                            columns = self._header(
                                [row[0][8:].strip(), *row[1:]], True, rows.line_num, fail
                            )
                        continue
                    if columns is None:
                        skipped += 1
                        if not tracking:  # the header row of an export
                            tracking = True  # (a bad one is reported once)
                            columns = self._header(row, False, rows.line_num, fail)
                        continue
                    if len(row) < columns.need:
                        fail(
                            f"truncated row: {len(row)} fields, expected at least {columns.need}",
                            rows.line_num,
                        )
                        continue
                    if columns.event is not None:
                        event = row[columns.event]
                        if event != "RECEIVE" and event.strip().upper() != "RECEIVE":
                            skipped += 1
                            continue
                    if columns.source is not None:
                        source = row[columns.source]
                        if source != "SMTP" and source.strip().upper() != "SMTP":
                            skipped += 1
                            continue
                    try:
                        record = self._record(row, columns, rows.line_num)
                    except (ValueError, RecordError) as exc:
                        fail(str(exc), rows.line_num)
                        continue
                    if record is None:
                        skipped += 1
                    else:
                        yield record
                break
            except csv.Error as exc:  # the reader goes on with the next line
                fail(f"not CSV: {exc}", rows.line_num)
        self.counts.skipped += skipped

    @staticmethod
    def _header(names: list[str], tracking: bool, number: int, fail: _Fail) -> _Columns | None:
        try:
            return _Columns(names, tracking)
        except ValueError as exc:
            fail(str(exc), number)
            return None

    @staticmethod
    def _record(row: list[str], columns: _Columns, number: int) -> Record | None:
        client = row[columns.client_ip].strip()
        if columns.original_client_ip is not None:  # proxied: the client behind the proxy
            client = row[columns.original_client_ip].strip() or client
        if not client:
            if columns.event is None:
                return None  # a message trace row of a message no client sent
            raise ValueError("RECEIVE event from SMTP with an empty client address")
        recipients_text = row[columns.recipients]
        if recipients_text.strip() == _UNJOINED:
            raise ValueError(
                f"the recipients column holds {_UNJOINED!r}: export it joined, e.g."
                ' @{n="Recipients";e={$_.Recipients -join ";"}}'
            )
        recipients = tuple(r for r in (part.strip() for part in recipients_text.split(";")) if r)
        if not recipients:
            raise ValueError("no recipient address")
        sender = row[columns.sender].strip()
        server = None if columns.server_ip is None else row[columns.server_ip].strip() or None
        ident: str | int = number
        if columns.id is not None and row[columns.id].strip():
            ident = row[columns.id].strip()
        return Record(
            sender="" if sender == "<>" else sender,
            recipients=recipients,
            ip=logged_ip(client, "client"),
            server_ip=None if server is None else logged_ip(server, "server"),
            id=ident,
        )
