"""Log records: one logged SMTP transaction each, checked before it is replayed.

A :class:`Record` is what :func:`~imcea.replay` decides: the client's address, the
envelope it sent, whether it authenticated and the server address it reached.  Every
record is checked in one place, :class:`Record`'s constructor, whatever it was read
from (a JSON line, a mapping, an object with the same attributes), so that a bad one is
reported by itself, as a :class:`RecordError` naming the field and the line, instead of
failing inside :func:`~imcea.decide`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Final

import attrs

from .decision import Envelope
from .errors import Error, shorten
from .networks import IPAddress, dotted_quad, parse_ip

__all__ = ["Fields", "Record", "RecordError", "read_fields", "read_record", "record_from_mapping"]


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


def _recipients(value: object) -> tuple[str, ...]:
    if type(value) is list or type(value) is tuple:
        items: tuple[object, ...] = tuple(value)
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray):
        items = tuple(value)
    else:
        raise RecordError(f"recipients: expected a list of strings, got {shorten(value)}")
    for i, item in enumerate(items):
        if type(item) is not str:
            if not isinstance(item, str):
                raise RecordError(f"recipients[{i}]: expected a string, got {shorten(item)}")
            return tuple(str(x) for x in items)  # str subclasses: keep plain strings
    return items  # type: ignore[return-value]


def _ip_type(value: object, key: str) -> str | IPAddress:
    """*value* if it may be an IP address (a string or an address object)."""
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, IPAddress):
        return value
    raise RecordError(f"{key}: expected an IP address string, got {shorten(value)}")


def _ip_value(value: str | IPAddress, key: str) -> None:
    """Check that *value* (a string as written) is an IP address."""
    if type(value) is str and dotted_quad(value) is not None:
        return  # the usual dotted quad: nothing to parse
    try:
        parse_ip(value, key=key)
    except Error as exc:
        raise RecordError(str(exc)) from None


#: A record's checked fields, in :class:`Record`'s order: sender, recipients, ip,
#: authenticated, server_ip, id.
Fields = tuple[
    str, tuple[str, ...], str | IPAddress, bool, str | IPAddress | None, str | int | None
]


def _checked(
    sender: object,
    recipients: object,
    ip: object,
    authenticated: object,
    server_ip: object,
    ident: object,
) -> Fields:
    """The fields of a record, checked and made plain; the first fault raises.

    The one check of a record, whatever it was read from.  The usual record (plain
    strings, a list of strings, a dotted-quad client) is recognised at a glance;
    any other is checked field by field: the types first, in field order, then the
    addresses, as they are the costliest to parse.
    """
    if (
        type(sender) is str
        and (type(recipients) is list or type(recipients) is tuple)
        and type(ip) is str
        and (authenticated is False or authenticated is True)
        and server_ip is None
        and (ident is None or type(ident) is str or type(ident) is int)
        and dotted_quad(ip) is not None
    ):
        items = tuple(recipients)
        for item in items:
            if type(item) is not str:
                break
        else:
            return sender, items, ip, authenticated, None, ident
    if type(sender) is not str:
        if not isinstance(sender, str):
            raise RecordError(f"sender: expected a string, got {shorten(sender)}")
        sender = str(sender)
    recipients = _recipients(recipients)
    ip = _ip_type(ip, "ip")
    if authenticated is not False and authenticated is not True:
        raise RecordError(f"authenticated: expected true or false, got {shorten(authenticated)}")
    if server_ip is not None:
        server_ip = _ip_type(server_ip, "server_ip")
    if not (ident is None or type(ident) is str or type(ident) is int):
        if isinstance(ident, str):
            ident = str(ident)
        elif isinstance(ident, int) and not isinstance(ident, bool):
            ident = int(ident)
        else:
            raise RecordError(f"id: expected a string or an integer, got {shorten(ident)}")
    _ip_value(ip, "ip")
    if server_ip is not None:
        _ip_value(server_ip, "server_ip")
    return sender, recipients, ip, authenticated, server_ip, ident


@attrs.frozen(init=False)
class Record:
    """One logged SMTP transaction: who connected, and the envelope they sent.

    Every field is checked when the record is built, so that a bad record is reported
    by itself (as a :class:`RecordError` naming the field).  ``ip`` and ``server_ip``
    are kept as given, once checked to be IP addresses, so that a decision names the
    client as the log wrote it.  ``id`` is whatever identifies the message in the log
    (a queue id, a message id); ``None`` means "use the line number".
    """

    sender: str
    recipients: tuple[str, ...]
    ip: str | IPAddress
    authenticated: bool = False
    server_ip: str | IPAddress | None = None
    id: str | int | None = None

    def __init__(
        self,
        *,
        sender: str,
        recipients: Sequence[str],
        ip: str | IPAddress,
        authenticated: bool = False,
        server_ip: str | IPAddress | None = None,
        id: str | int | None = None,
    ) -> None:
        self.__attrs_init__(*_checked(sender, recipients, ip, authenticated, server_ip, id))

    @classmethod
    def read_as(
        cls,
        sender: str,
        recipients: tuple[str, ...],
        ip: str,
        authenticated: bool,
        id: str | int | None,
    ) -> Record:
        """A record from a log reader whose fields are right by construction: strings
        cut from a line, a tuple of them, a client address checked as it was read.

        Nothing is checked again (a record is built for every message of a log, and
        the checks would cost as much as reading the line); what a decision uses is
        checked by :func:`~imcea.decide` in any case.  Anything else builds records
        with ``Record(...)``.
        """
        record = object.__new__(cls)
        record.__attrs_init__(sender, recipients, ip, authenticated, None, id)
        return record

    def envelope(self) -> Envelope:
        """The SMTP envelope of the record, as :func:`~imcea.decide` takes it."""
        return Envelope(self.sender, self.recipients)


_REQUIRED: Final = ("sender", "recipients", "ip")


def _record(fields: Fields) -> Record:
    """The :class:`Record` of fields already checked by :func:`_checked`."""
    record = object.__new__(Record)
    record.__attrs_init__(*fields)
    return record


def _mapping_fields(obj: object, line: int | None) -> Fields:
    """The checked fields of a JSON object (see :func:`record_from_mapping`)."""
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
    try:
        return _checked(
            sender, recipients, ip, get("authenticated", False), get("server_ip"), get("id")
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
    return _record(_mapping_fields(obj, line))


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


_DECODE: Final = json.JSONDecoder().raw_decode


def _loads(line: str | bytes, number: int | None) -> object:
    """The JSON value of one line of a log (a bad line raises :class:`RecordError`)."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError as exc:
            bad = exc.object[exc.start : exc.start + 1].hex()
            where = f"byte 0x{bad} at column {exc.start + 1}"
            raise RecordError(f"not JSON: not valid UTF-8 ({where})", number) from None
    try:
        # json.loads() less its wrappers, for the usual line: a document at its start,
        # then nothing but white space
        obj, end = _DECODE(line)
        if end == len(line) or line[end:].isspace():
            return obj
    except (ValueError, RecursionError):
        pass
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


_ABSENT: Final = object()


def _attribute_fields(obj: object, line: int | None) -> Fields:
    """The checked fields of an object with ``sender``/``recipients``/``ip`` attributes."""
    fields: dict[str, object] = {}
    for name in attrs.fields_dict(Record):
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
    return _mapping_fields(fields, line)


def read_fields(item: object, line: int | None = None) -> Fields | None:
    """The checked fields of one item of a log (see :func:`read_record`), as a tuple in
    :class:`Record`'s order; ``None`` for a blank line.

    It is :func:`read_record` without building the :class:`Record`: the replay of a
    large log that only writes what it decides has no use for one.
    """
    if isinstance(item, RecordError):  # a reader's report of a line it could not read
        raise item
    if type(item) is bytes:
        try:  # the usual line, read at once: see _loads()
            text = item.decode("utf-8", "surrogatepass")
            obj, end = _DECODE(text)
            usual = end == len(text) or text[end:].isspace()
        except (ValueError, RecursionError):
            usual = False
        if usual:
            return _mapping_fields(obj, line)
    if type(item) is bytes or type(item) is str:
        try:
            obj = _loads(item, line)
        except RecordError:
            if not item.strip():
                return None
            raise
        return _mapping_fields(obj, line)
    if type(item) is dict:
        return _mapping_fields(item, line)
    if isinstance(item, Record):
        return (item.sender, item.recipients, item.ip, item.authenticated, item.server_ip, item.id)
    if isinstance(item, str):  # a str or bytes subclass: as the plain value
        return read_fields(str(item), line)
    if isinstance(item, bytes):
        return read_fields(bytes(item), line)
    if isinstance(item, Mapping):
        return _mapping_fields(item, line)
    return _attribute_fields(item, line)


def read_record(item: object, line: int | None = None) -> Record | None:
    """The :class:`Record` one item of a log is; ``None`` for a blank line.

    *item* may be a JSON line (``str`` or ``bytes``: a blank one is skipped, not bad),
    a mapping (see :func:`record_from_mapping`), a :class:`Record`, or an object with
    the same attributes.  Raises :class:`RecordError`, carrying *line*, for an item
    that is not a good record; an item that is itself a :class:`RecordError` (a log
    reader's report of a line it could not read, in the line's place) is raised as it
    is.
    """
    if isinstance(item, Record):
        return item
    fields = read_fields(item, line)
    return None if fields is None else _record(fields)
