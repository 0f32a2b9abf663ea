"""The Postfix SMTP Access Policy Delegation protocol, without any I/O.

Postfix's ``check_policy_service`` restriction asks an external server about each SMTP
command (Postfix SMTPD_POLICY_README, "Policy protocol description"): the request is a
sequence of ``name=value`` lines ended by an empty line, the reply is one
``action=...`` line ended by an empty line, and one connection carries many requests.
This module reads requests (:func:`parse_request`, or :class:`PolicyParser` for a
byte stream), answers them with the IMS decision (:func:`answer`, :func:`respond`) and
writes replies (:func:`format_reply`); :mod:`imcea.policy_server` does the I/O.

What each decision becomes (the access(5) actions Postfix accepts):

- Deliver and Reroute: ``DUNNO`` (no opinion: Postfix's other restrictions go on).
- Return at ``RCPT`` (``decision.ndr is None``): the IMS's own reply, e.g.
  ``550 Relaying is prohibited`` or ``553 malformed address: <...>`` (control
  characters replaced, cut to 400 characters).
- Return after acceptance (``decision.ndr`` set: the IMS said 250 and sent a
  non-delivery report later): rejected at ``RCPT`` too, with ``550``, an enhanced
  status code, the NDR text and the reason, so that Postfix never accepts mail it
  would have to bounce (no backscatter).  With ``bounce_like_ims=True``: ``DUNNO``.
- Requests that are not ``smtpd_access_policy`` requests at the ``RCPT`` stage, or
  that carry no recipient: ``DUNNO`` (the IMS decides per recipient).
- A client address that is unavailable (empty or Postfix's ``unknown``) or is not an IP
  address: ``451 4.3.0`` (the routing restrictions cannot be applied to an unknown
  client; a temporary failure lets the client retry instead of losing mail).
- A server address that is unavailable or not an IP address: the decision is made
  without it (``restrictions.internal`` then permits nobody, the safe direction).
- ``sasl_username`` not empty: the client authenticated.
- A sender-routed recipient (``sender_routed_refused``): the IMS reads
  ``user%remote@local``, ``remote!user@local``, ``"user@remote"@local`` and
  ``user@remote@local`` as local parts (KB Q244346), but Postfix, with its default
  ``allow_percent_hack``, ``swap_bangpath`` and ``resolve_dequoted_address``, unwraps
  them to ``user@remote`` and relays that for the clients it trusts (``mynetworks``).
  When Postfix's reading (:func:`postfix_reading`) leaves the local domains and the
  client may not relay there (rerouting off, or §2.3 refuses it), the answer is
  ``550 5.7.1 Relaying is prohibited`` instead of ``DUNNO``.  ``ims_local_parts=True``
  (``imcea policy --ims-local-parts``) keeps the IMS's reading, for a Postfix set up
  with all three parameters ``= no``; a source route exposed by unwrapping is stripped
  by Postfix whatever its settings, and is always read its way.
"""

from __future__ import annotations

import collections
import enum
import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

import attrs

from .decider import Decider
from .decision import Action, Decision
from .errors import Error, shorten
from .networks import IPAddress, Network, parse_ip
from .paths import Malformed, Path, parse_path
from .reasons import REASONS
from .settings import RouteAction, Settings

__all__ = [
    "DUNNO",
    "MAX_LINE",
    "MAX_REQUEST",
    "SENDER_ROUTED_REFUSED",
    "PolicyAnswer",
    "PolicyError",
    "PolicyParser",
    "PolicyRequest",
    "Reading",
    "Unwrap",
    "answer",
    "format_reply",
    "main_cf",
    "parse_request",
    "postfix_reading",
    "respond",
]

#: The longest attribute line accepted, in bytes without its newline.  Postfix's
#: longest values (a recipient, a certificate subject) are far shorter.
MAX_LINE = 8192
#: The largest request accepted, in bytes with its newlines and the empty line.
MAX_REQUEST = 65536

#: The longest action text written (RFC 5321 allows 512 octets for a whole reply line).
MAX_REPLY = 400

#: The access(5) action that says "no opinion": Postfix goes on with its restrictions.
DUNNO = "DUNNO"

#: Requests whose client cannot be checked, and unexpected failures, are deferred.
TEMPFAIL = "451 4.3.0"
_CLIENT_UNAVAILABLE = (
    f"{TEMPFAIL} Client address unavailable: the routing restrictions cannot be applied"
)

#: client_address values that mean "not available" (SMTPD_POLICY_README: an unavailable
#: value is not sent or sent empty; Postfix writes "unknown" for a client it cannot name).
_UNAVAILABLE = frozenset({"", "unknown", "[unavailable]"})


class PolicyError(Error):
    """A policy request is malformed: the server must log it and close the connection."""


# ---------------------------------------------------------------------------
# requests


@attrs.frozen
class PolicyRequest:
    """One delegated policy request: the attributes ``decide()`` uses, and all of them.

    Missing attributes are empty strings, as Postfix sends an unavailable value.  When
    an attribute is sent more than once, the last value counts (SMTPD_POLICY_README
    lets the server keep either).  :attr:`text` is the request as sent: every
    ``name=value`` line with its newline, without the empty line that ends it;
    :attr:`attributes` reads all of them from it, in order, when asked.
    """

    text: str = ""
    request: str = ""
    protocol_state: str = ""
    client_address: str = ""
    sender: str = ""
    recipient: str = ""
    sasl_username: str = ""
    server_address: str = ""
    instance: str = ""

    @classmethod
    def from_attributes(cls, pairs: Iterable[tuple[str, str]]) -> PolicyRequest:
        """The request for these ``(name, value)`` pairs; unknown names are kept, not used.

        Raises :class:`PolicyError` for a pair that no request line can carry: a name
        that is empty or holds ``=`` or a newline, a value that holds a newline.
        """
        pairs = tuple(pairs)
        for number, pair in enumerate(pairs, 1):
            if not (isinstance(pair, tuple | list) and len(pair) == 2):
                raise PolicyError(f"attribute {number}: expected a (name, value) pair")
            name, value = pair
            if not isinstance(name, str) or not isinstance(value, str):
                raise PolicyError(f"attribute {number}: the name and value must be strings")
            if not name or "=" in name or "\n" in name:
                raise PolicyError(f"attribute {number}: {_short(name)} is not an attribute name")
            if "\n" in value:
                raise PolicyError(f"attribute {name}: a value must not contain a newline")
        given = dict(pairs)  # the last value of a name sent twice counts
        text = "".join(f"{name}={value}\n" for name, value in pairs)
        return cls(text, *[given.get(name, "") for name in _FIELDS])

    @property
    def attributes(self) -> tuple[tuple[str, str], ...]:
        """Every ``(name, value)`` pair of the request, in the order sent."""
        lines = self.text.split("\n")
        lines.pop()  # after the last newline
        return tuple((name, value) for name, _, value in (line.partition("=") for line in lines))

    def get(self, name: str, default: str | None = None) -> str | None:
        """The (last) value of attribute *name*, or *default* when it was not sent."""
        for key, value in reversed(self.attributes):
            if key == name:
                return value
        return default

    @property
    def authenticated(self) -> bool:
        """Whether the client authenticated with SASL (``sasl_username`` is not empty)."""
        return bool(self.sasl_username)


#: The attributes a request names, in the order of its fields after ``text``.
_FIELDS = tuple(field.name for field in attrs.fields(PolicyRequest) if field.name != "text")

#: A request's lines, read in one pass: every line ``name=value`` with a non-empty
#: name, the known attributes captured.  A repeated group keeps its last match, so the
#: last of a name sent twice counts; the repetition is possessive (``++``), so a bad
#: line fails the match at once instead of retrying the lines before it.  Any other
#: line must start with neither ``=`` nor a newline and hold an ``=``: the regex runs
#: to the end of the line and back to its last ``=`` (a short way back: Postfix's
#: values are short), quicker than testing the name character by character.
_LINES = re.compile(
    "(?:(?:" + "".join(f"{re.escape(name)}=(.*)|" for name in _FIELDS) + r"[^=\n].*=.*)\n)++"
)


def _short(raw: bytes | str) -> str:
    """A piece of bad input as it may appear in a log line: bounded and escaped."""
    return shorten(raw if isinstance(raw, str) else raw.decode("utf-8", "backslashreplace"))


def _read_block(block: bytes | bytearray, max_line: int) -> PolicyRequest:
    """The request of one block of lines (*block* ends with a newline).

    Raises :class:`PolicyError` naming what is wrong: a line over *max_line* bytes, a
    null byte, invalid UTF-8, or a line (by its number) that is not ``name=value``.
    """
    if len(block) > max_line:  # else no line of it can be too long
        for number, raw in enumerate(block.split(b"\n")[:-1], 1):
            if len(raw) > max_line:
                raise PolicyError(f"line {number} is longer than {max_line} bytes")
    if 0 in block:  # a null byte (looked up as an int: quicker than as b"\0")
        raise PolicyError("a request must not contain a null byte")
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"invalid UTF-8 at byte {exc.start} of the request") from None
    match = _LINES.fullmatch(text)
    if match is None:
        raise _bad_line(text)
    return PolicyRequest(text, *match.groups(""))


def _bad_line(text: str) -> PolicyError:
    """The error for the first line of *text* that is not ``name=value``."""
    for number, line in enumerate(text.split("\n")[:-1], 1):
        name, sep, _ = line.partition("=")
        if not sep or not name:
            what = "is not name=value" if not sep else "has an empty attribute name"
            return PolicyError(f"line {number} {what}: {_short(line)}")
    return PolicyError("the request is not a sequence of name=value lines")  # not reached


def parse_request(
    lines: Iterable[str | bytes], *, max_line: int = MAX_LINE, max_request: int = MAX_REQUEST
) -> PolicyRequest:
    """The request made of *lines* (each with or without its newline).

    The empty line that ends a request may be given or not; nothing may follow it.
    Raises :class:`PolicyError` for a line that is not ``name=value``, a line or request
    over the bounds, a null byte, invalid UTF-8, or an empty request.
    """
    block = bytearray()
    ended = False
    for number, item in enumerate(lines, 1):
        try:
            raw = item.encode("utf-8", "surrogateescape") if isinstance(item, str) else bytes(item)
        except UnicodeEncodeError as exc:
            raise PolicyError(f"line {number}: no UTF-8 for the character at {exc.start}") from None
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        if b"\n" in raw:
            raise PolicyError("a line must not contain a newline")
        if ended:
            raise PolicyError("a line follows the empty line that ends the request")
        if not raw:
            ended = True
            continue
        block += raw + b"\n"
        if len(block) + 1 > max_request:
            raise PolicyError(f"the request is larger than {max_request} bytes")
    if not block:
        raise PolicyError("the request has no attributes")
    return _read_block(bytes(block), max_line)


class PolicyParser:
    """Reads requests from a byte stream, however it is cut into pieces.

    ``for request in parser.feed(data): ...`` yields every request completed so far, in
    order, then raises :class:`PolicyError` if the input is malformed: a line or a
    request over the bounds (checked as soon as the bytes arrive, so memory stays
    bounded), a line without ``=``, a null byte, invalid UTF-8, or an empty request.
    After an error the parser stays failed.  Requests not yet taken from the iterator
    stay buffered for the next call.

    :meth:`read` is the same without an iterator, for a server that answers each
    piece at once: it returns the requests, and :attr:`error` says whether the input
    went wrong after them.
    """

    __slots__ = (
        "_buffer",
        "_failed",
        "_line_start",
        "_ready",
        "_scanned",
        "max_line",
        "max_request",
    )

    def __init__(self, *, max_line: int = MAX_LINE, max_request: int = MAX_REQUEST) -> None:
        if max_line < 1 or max_request < 2:
            raise ValueError("max_line must be at least 1 and max_request at least 2")
        self.max_line = max_line
        self.max_request = max_request
        self._buffer = bytearray()  # the unfinished request
        self._scanned = 0  # bytes of the buffer already searched for the end of a request
        self._line_start = 0  # where the buffer's unfinished line starts
        self._failed: PolicyError | None = None
        self._ready: collections.deque[PolicyRequest] = collections.deque()  # not yet taken

    @property
    def pending(self) -> bool:
        """Whether part of a request is buffered (the peer stopped in the middle of one)."""
        return bool(self._buffer)

    @property
    def error(self) -> PolicyError | None:
        """What was wrong with the input, once it went wrong (the parser stays failed)."""
        return self._failed

    def feed(self, data: bytes) -> Iterator[PolicyRequest]:
        """Add *data* to the buffer; iterate over the result to get the complete requests."""
        self._ready.extend(self._parse(data))
        return self._take()

    def read(self, data: bytes) -> list[PolicyRequest]:
        """Add *data*; the requests completed so far, in order (those before an error).

        Never raises for bad input: :attr:`error` is set instead.
        """
        if self._ready:  # left behind by an iterator of :meth:`feed`
            self._ready.extend(self._parse(data))
            ready = list(self._ready)
            self._ready.clear()
            return ready
        return self._parse(data)

    def _take(self) -> Iterator[PolicyRequest]:
        ready = self._ready
        while ready:
            yield ready.popleft()
        if self._failed is not None:
            raise self._failed

    def _fail(self, message: str) -> None:
        self._failed = PolicyError(message)
        self._buffer.clear()
        self._scanned = self._line_start = 0

    def _parse(self, data: bytes) -> list[PolicyRequest]:
        """The requests *data* completes; the rest of it stays in the buffer."""
        if self._failed is not None:
            return []
        if type(data) is not bytes:  # a bytearray or a memoryview: read a copy
            data = bytes(data)
        buffer = self._buffer
        if not buffer and data.endswith(b"\n\n") and len(data) <= self.max_request:
            # what Postfix sends, as it waits for each reply: one whole request.  Its
            # lines cannot hold an empty one, so they are read without searching for
            # the end first; if that fails, the general way below finds out why.
            try:
                return [_read_block(data[:-1], self.max_line)]
            except PolicyError:
                pass
        source: bytes | bytearray
        if buffer:  # a request was cut: complete it in the buffer
            buffer += data
            source, scan = buffer, max(self._scanned - 1, 0)
        else:  # the usual case: data starts with a request, read it where it is
            source, scan = data, 0
        requests: list[PolicyRequest] = []
        start = 0  # where the request being read starts in source
        while True:
            if source.startswith(b"\n", start):
                self._fail("empty request: an empty line without attributes")
                return requests
            end = source.find(b"\n\n", scan)
            if end < 0:
                break
            if end + 2 - start > self.max_request:
                self._fail(f"a request is larger than {self.max_request} bytes")
                return requests
            try:
                requests.append(_read_block(source[start : end + 1], self.max_line))
            except PolicyError as exc:
                self._fail(str(exc))
                return requests
            start = scan = end + 2
        # the unfinished request, if any, stays in the buffer
        if source is buffer:
            if start:
                del buffer[:start]
                self._scanned = self._line_start = 0
        elif start < len(data):
            buffer += data[start:] if start else data
        if not buffer:
            self._scanned = self._line_start = 0
            return requests
        newline = buffer.rfind(b"\n", self._scanned)
        if newline >= 0:
            self._line_start = newline + 1
        self._scanned = len(buffer)
        if len(buffer) - self._line_start > self.max_line:
            self._fail(f"a line is longer than {self.max_line} bytes")
        elif len(buffer) > self.max_request:
            self._fail(f"a request is larger than {self.max_request} bytes")
        return requests


# ---------------------------------------------------------------------------
# Postfix's reading of a recipient

#: The policy's own reason for refusing a recipient that Postfix would unwrap and relay.
SENDER_ROUTED_REFUSED = "sender_routed_refused"

#: The reply that refuses it: the IMS's words, with the enhanced status code of a relay.
SENDER_ROUTED_REPLY = "550 5.7.1 Relaying is prohibited"


class Unwrap(enum.StrEnum):
    """One way Postfix's resolver (trivial-rewrite) routes on a local part."""

    PERCENT = "percent"
    BANG = "bang"
    AT = "at"
    ROUTE = "route"


#: What each unwrapping is, and the ``main.cf`` parameter that enables it (``None``:
#: Postfix does it whatever its settings).
UNWRAPS: dict[Unwrap, tuple[str, str | None]] = {
    Unwrap.PERCENT: ("the percent hack user%domain", "allow_percent_hack"),
    Unwrap.BANG: ("the bang path domain!user", "swap_bangpath"),
    Unwrap.AT: (
        'an @ inside the local part ("user@domain"@local, user@domain@local)',
        "resolve_dequoted_address",
    ),
    Unwrap.ROUTE: ("a source route @host:user@domain", None),
}

#: Characters that make Postfix quote a local part (quote_822_local: not a dot-string).
_SPECIALS = frozenset('()<>@,;:\\"[] ')


@attrs.frozen
class Reading:
    """Where Postfix's resolver sends a recipient: ``address``, whether that is in a
    local domain (``local``), and the unwrappings on the way (``steps``, in order)."""

    address: str
    local: bool
    steps: tuple[Unwrap, ...] = ()

    @property
    def unwrapped(self) -> bool:
        """Whether Postfix routed on the local part (it reads the address otherwise)."""
        return bool(self.steps)

    def describe(self) -> str:
        """The unwrappings in words, each with the parameter behind it."""
        parts = []
        for step in dict.fromkeys(self.steps):
            what, parameter = UNWRAPS[step]
            how = f"{parameter} = yes" if parameter else "always"
            parts.append(f"{what} ({how})")
        return ", then ".join(parts)


def _quoted(local: str) -> bool:
    """Whether Postfix holds *local* as a quoted string (it is not a plain dot-string)."""
    return (
        not local
        or local[0] == "."
        or local[-1] == "."
        or ".." in local
        or not local.isascii()
        or not local.isprintable()
        or not _SPECIALS.isdisjoint(local)
    )


def postfix_reading(
    path: Path,
    is_local: Callable[[str], bool],
    *,
    percent_hack: bool = True,
    swap_bangpath: bool = True,
    resolve_dequoted: bool = True,
) -> Reading:
    """Where Postfix's address resolver sends the recipient *path*.

    A model of trivial-rewrite's resolver loop (Postfix ``resolve.c``): while the
    domain is local (*is_local*), strip it and look at the local part: ``a!b`` becomes
    ``b@a`` (``swap_bangpath``), ``a%b`` becomes ``a@b`` (``allow_percent_hack``), a
    local part that holds an ``@`` (quoted, or a second ``@``) is split at its last
    ``@`` (``resolve_dequoted_address``), and a source route exposed that way is
    dropped.  The keywords are those ``main.cf`` parameters; Postfix's defaults are
    ``yes``.  *is_local* gets each domain as written, ``""`` for none.
    """
    local, domain = path.local, path.domain or ""
    steps: list[Unwrap] = []
    for _ in range(len(path.raw) + 8):  # every step shortens the local part
        if domain and not is_local(domain):
            return Reading(_address(local, domain), False, tuple(steps))
        cut = -1
        step: Unwrap | None = None
        if _quoted(local):
            if resolve_dequoted:
                for mark, kind, enabled in (
                    ("@", Unwrap.AT, True),
                    ("%", Unwrap.PERCENT, percent_hack),
                    ("!", Unwrap.BANG, swap_bangpath),
                ):
                    if enabled and mark in local:
                        cut, step = local.rindex(mark), kind
                        break
        elif swap_bangpath and "!" in local:
            cut, step = local.index("!"), Unwrap.BANG
        elif percent_hack and "%" in local:
            cut, step = local.rindex("%"), Unwrap.PERCENT
        if step is None:
            break
        steps.append(step)
        if step is Unwrap.BANG:
            domain, local = local[:cut], local[cut + 1 :]
        else:
            local, domain = local[:cut], local[cut + 1 :]
        if local.startswith("@") and ":" in local:  # rewrite_tree strips a source route
            local = local.partition(":")[2]
            steps.append(Unwrap.ROUTE)
    return Reading(_address(local, domain), True, tuple(steps))


def _address(local: str, domain: str) -> str:
    """``local@domain`` as an RFC 5321 path would write it (the local part quoted when
    Postfix holds it quoted), or the bare local part without a domain."""
    if _quoted(local):
        local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{local}@{domain}" if domain else local


def _local_domains(settings: Settings) -> Callable[[str], bool]:
    """Postfix's local domains as the IMS knows them: the ``inbound`` routing entries and
    the server's address literals (the domains a deployment gives Postfix to deliver)."""

    def is_local(domain: str) -> bool:
        path = parse_path(f"postmaster@{domain}")
        if isinstance(path, Malformed) or path.domain is None:
            return False
        if path.literal is not None:
            return settings.is_server_address(path.literal)
        route = settings.route_for(path.domain)
        return route is not None and route.action is RouteAction.INBOUND

    return is_local


# ---------------------------------------------------------------------------
# answers


@attrs.frozen
class PolicyAnswer:
    """The action for one request, and why: the IMS decision, or a note when none was made.

    ``reason`` is the decision's reason, or :data:`SENDER_ROUTED_REFUSED` when the policy
    refused what Postfix would relay although the IMS would not (``detail`` says why).
    """

    action: str
    decision: Decision | None = None
    note: str = ""
    reason: str = ""
    detail: str = ""


def _printable(text: str) -> str:
    """*text* with control characters replaced: a reply is one line of an SMTP response."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else "?" for c in text)


def answer(
    request: PolicyRequest,
    settings: Settings | Decider,
    *,
    bounce_like_ims: bool = False,
    ims_local_parts: bool = False,
) -> PolicyAnswer:
    """The access(5) action for *request* under *settings*, with the decision behind it.

    *settings* may be a :class:`~imcea.Decider` made from them, as a server that answers
    many requests keeps one.  The mapping is the module's (see its docstring).
    *ims_local_parts* trusts Postfix to read local parts as the IMS does
    (``allow_percent_hack``, ``swap_bangpath`` and ``resolve_dequoted_address`` all
    ``no``).  Never raises for anything a request can
    contain: what cannot be decided is a ``451 4.3.0`` temporary failure.
    """
    return PolicyAnswer(*_outcome(request, settings, bounce_like_ims, ims_local_parts))


def respond(
    request: PolicyRequest,
    settings: Settings | Decider,
    *,
    bounce_like_ims: bool = False,
    ims_local_parts: bool = False,
) -> str:
    """The action that answers *request*: what follows ``action=`` in the reply.

    The action of :func:`answer`, without building the answer around it.
    """
    return _outcome(request, settings, bounce_like_ims, ims_local_parts)[0]


#: :class:`PolicyAnswer`'s fields, in order, as :func:`_outcome` gives them.
_Outcome = tuple[str, Decision | None, str, str, str]


def _outcome(
    request: PolicyRequest,
    settings: Settings | Decider,
    bounce_like_ims: bool,
    ims_local_parts: bool,
) -> _Outcome:
    """The mapping of :func:`answer`: the action, the decision, a note, the reason and
    its detail."""
    if request.request != "smtpd_access_policy":
        return DUNNO, None, f"not an smtpd_access_policy request: {request.request!r}", "", ""
    state = request.protocol_state
    if state != "RCPT" and state.upper() != "RCPT":
        return DUNNO, None, f"protocol state {state!r}, not RCPT", "", ""
    recipient = request.recipient
    if not recipient:
        return DUNNO, None, "no recipient", "", ""
    client = request.client_address.strip()
    if client.lower() in _UNAVAILABLE:
        return _CLIENT_UNAVAILABLE, None, "client_address is unavailable", "", ""
    client = client.partition("%")[0]  # an IPv6 zone: networks in the settings have none
    server = _server_address(request.server_address)
    decider = settings if isinstance(settings, Decider) else Decider(settings)
    try:
        decision = decider.decide_recipient(
            recipient, client, authenticated=bool(request.sasl_username), server_ip=server.ip
        )
    except Error as exc:
        action = f"{TEMPFAIL} Client address {_printable(client)[:60]} is not an IP address"
        return action, None, str(exc), "", ""
    action = _action(decision, bounce_like_ims)
    if action == DUNNO:
        refusal = _sender_routed(request, client, server.ip, decider, ims_local_parts)
        if refusal:
            return SENDER_ROUTED_REPLY, decision, server.note, SENDER_ROUTED_REFUSED, refusal
    return action, decision, server.note, str(decision.reason), decision.detail


def _sender_routed(
    request: PolicyRequest,
    client: str,
    server: IPAddress | None,
    decider: Decider,
    ims_local_parts: bool,
) -> str:
    """Why Postfix must not take this recipient although the IMS would keep it, or "".

    Postfix relays what its resolver makes of the address (:func:`postfix_reading`);
    the IMS would relay that address only for a client it permits, and only with
    rerouting on.
    """
    recipient = request.recipient
    if "%" not in recipient and "!" not in recipient and recipient.count("@") < 2:
        return ""  # nothing for Postfix to route on: it reads the address as the IMS does
    path = parse_path(recipient)
    if isinstance(path, Malformed) or path.domain is None:
        return ""
    enabled = not ims_local_parts
    reading = postfix_reading(
        path,
        _local_domains(decider.settings),
        percent_hack=enabled,
        swap_bangpath=enabled,
        resolve_dequoted=enabled,
    )
    if reading.local or not reading.unwrapped:
        return ""
    because = (
        f"Postfix reads {request.recipient} as {reading.address} by {reading.describe()}"
        " and would relay it"
    )
    if not decider.settings.reroute:
        return f"{because}; rerouting is off, so the IMS relays for nobody (KB Q237927)"
    relayed = decider.decide_recipient(
        reading.address, client, authenticated=request.authenticated, server_ip=server
    )
    if relayed.action is Action.REROUTE:
        return ""
    return f"{because}; the IMS would refuse that relay: {relayed.detail}"


class _ServerAddress(NamedTuple):
    """A request's server address: ``ip`` (``None`` when unavailable or invalid, read
    without an IPv6 zone), and a ``note`` when it is invalid."""

    ip: IPAddress | None
    note: str


@functools.lru_cache(maxsize=256)
def _server_address(given: str) -> _ServerAddress:
    """The server address of a request, read once for all the requests that send it.

    Without it ``restrictions.internal`` permits nobody: the safe direction.  A server
    has few addresses, so the answers are remembered.
    """
    text = given.strip().partition("%")[0]  # an IPv6 zone: networks in the settings have none
    if text.lower() not in _UNAVAILABLE:
        try:
            return _ServerAddress(parse_ip(text, key="server_address"), "")
        except Error:
            pass
    if given.strip().lower() in _UNAVAILABLE:
        return _ServerAddress(None, "")
    return _ServerAddress(
        None, f"server_address {given!r} is not an IP address; decided without it"
    )


def _action(decision: Decision, bounce_like_ims: bool) -> str:
    if decision.action is not Action.RETURN:
        return DUNNO
    if decision.ndr is None:  # refused at RCPT: the IMS's own words
        reply = _printable(decision.reply)
        # a malformed path is echoed in the reply: keep it within an SMTP reply line
        return reply if len(reply) <= MAX_REPLY else reply[: MAX_REPLY - 3] + "..."
    if bounce_like_ims:
        return DUNNO
    status = REASONS[decision.reason].status
    return f"550 {status} {decision.ndr} ({decision.reason.value})"


def format_reply(action: str) -> bytes:
    """The reply that carries *action*: ``action=...``, a newline and an empty line."""
    if not action or "\n" in action or "\0" in action:
        raise PolicyError(f"an action must be one non-empty line: {_short(action)}")
    return b"action=" + action.encode("utf-8") + b"\n\n"


# ---------------------------------------------------------------------------
# main.cf for a deployment

#: Where ``imcea policy --listen`` serves by default in the generated configuration.
POLICY_SERVICE = "inet:127.0.0.1:10040"

#: The three resolver parameters, set so that Postfix reads local parts as the IMS does.
IMS_LOCAL_PARTS = ("allow_percent_hack", "swap_bangpath", "resolve_dequoted_address")


def _pattern(net: Network) -> str | None:
    """*net* as a Postfix match-list pattern, or ``None`` when Postfix cannot express it
    (a mask that is not a prefix: the IMS matched ``(ip AND mask) == net`` exactly)."""
    length = net.prefixlen
    if length is None:
        return None
    if net.version == 4:
        text = str(ipaddress.IPv4Address(net.address))
        return text if length == 32 else f"{text}/{length}"
    text = f"[{ipaddress.IPv6Address(net.address)}]"
    return text if length == 128 else f"{text}/{length}"


def _overlap(a: Network, b: Network) -> bool:
    """Whether some address matches both entries (masks of any shape)."""
    both = a.mask & b.mask
    return a.version == b.version and a.address & both == b.address & both


def _mynetworks(settings: Settings) -> tuple[list[str], list[str]]:
    """The ``mynetworks`` patterns (exclusions first: the first match wins) and notes on
    the entries that could not be carried over."""
    r = settings.restrictions
    notes: list[str] = []
    excluded: list[str] = []
    blocked: list[Network] = []  # never-route entries Postfix cannot exclude
    for index, net in enumerate(r.deny):
        if not net.matchable or not any(_overlap(net, a) for a in r.allow if a.matchable):
            continue
        pattern = _pattern(net)
        if pattern is None:
            blocked.append(net)
            notes.append(
                f"restrictions.deny[{index}] {net.text}: a mask Postfix cannot express; "
                "every allow entry it touches is left out"
            )
        else:
            excluded.append("!" + pattern)
    allowed: list[str] = []
    for index, net in enumerate(r.allow):
        where = f"restrictions.allow[{index}] {net.text}"
        pattern = _pattern(net)
        if not net.matchable:
            notes.append(f"{where}: host bits outside its mask, it never matches; left out")
        elif pattern is None:
            notes.append(f"{where}: a mask Postfix cannot express; left out")
        elif any(_overlap(net, b) for b in blocked):
            notes.append(f"{where}: holds a never-route entry Postfix cannot exclude; left out")
        else:
            allowed.append(pattern)
    return (excluded + allowed if allowed else []), notes


def main_cf(settings: Settings, *, policy_service: str = POLICY_SERVICE) -> str:
    """The ``main.cf`` lines that put Postfix in front of ``imcea policy`` for *settings*.

    ``mynetworks`` is ``restrictions.allow`` less ``restrictions.deny`` (each
    never-route entry inside an allow network is excluded with ``!``, ahead of the
    networks: Postfix takes the first match); ``smtpd_relay_restrictions`` asks the
    policy first, then permits what the IMS permits (``mynetworks``, and SASL clients
    when ``restrictions.authenticated`` is on), then refuses the rest; and the three
    resolver parameters are ``no``, so that Postfix reads ``%``, ``!`` and ``@`` in a
    local part as the IMS does (KB Q244346).  What Postfix cannot express is left out
    (the safe direction) and named in a comment.
    """
    if not isinstance(settings, Settings):
        raise Error(f"settings: expected an imcea.Settings, got {type(settings).__name__}")
    if not policy_service or any(c.isspace() or c == "," for c in policy_service):
        raise Error(f"policy service: {policy_service!r} is not a Postfix service address")
    r = settings.restrictions
    lines = ["# generated by imcea postfix-config: the IMS routing settings, for Postfix"]
    permits: list[str] = []
    networks: list[str] = []
    if not settings.reroute:
        lines.append("# reroute is off: the IMS relays for nobody, so neither does Postfix")
    elif not r.selected:
        lines.append(
            "# no routing restriction is selected: the IMS is an open relay (imcea check:"
            " open_relay); Postfix does not copy that"
        )
    else:
        networks, notes = _mynetworks(settings)
        lines.extend(f"# {note}" for note in notes)
        if r.internal:
            lines.append(
                "# restrictions.internal (clients of an internal interface) has no main.cf"
                " form: give that interface its own smtpd in master.cf"
            )
        if networks:
            permits.append("permit_mynetworks")
        if r.authenticated:
            permits.append("permit_sasl_authenticated")
    lines.append("# trusted clients: restrictions.allow less restrictions.deny (first match wins)")
    lines.append("mynetworks = " + ", ".join(networks))
    lines.append("# the policy first: it refuses what the IMS refuses; then Postfix's own rules")
    lines.append("smtpd_relay_restrictions =")
    rules = [f"check_policy_service {policy_service}", *permits, "reject_unauth_destination"]
    lines.extend(f"    {rule}{',' if i < len(rules) - 1 else ''}" for i, rule in enumerate(rules))
    lines.append("# read local parts as the IMS does: no routing on %, ! or @ in them (KB Q244346)")
    lines.extend(f"{name} = no" for name in IMS_LOCAL_PARTS)
    return "\n".join(lines) + "\n"
