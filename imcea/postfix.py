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
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator

import attrs

from .decision import Action, Decision, Envelope, decide
from .errors import Error
from .networks import IPAddress, parse_ip
from .reasons import REASONS
from .settings import Settings

__all__ = [
    "DUNNO",
    "MAX_LINE",
    "MAX_REQUEST",
    "PolicyAnswer",
    "PolicyError",
    "PolicyParser",
    "PolicyRequest",
    "answer",
    "format_reply",
    "parse_request",
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
    lets the server keep either); :attr:`attributes` keeps every line, in order.
    """

    request: str = ""
    protocol_state: str = ""
    client_address: str = ""
    sender: str = ""
    recipient: str = ""
    sasl_username: str = ""
    server_address: str = ""
    instance: str = ""
    attributes: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_attributes(cls, pairs: Iterable[tuple[str, str]]) -> PolicyRequest:
        """The request for these ``(name, value)`` pairs; unknown names are kept, not used."""
        pairs = tuple(pairs)
        known = dict.fromkeys(_FIELDS, "")
        for name, value in pairs:
            if name in known:
                known[name] = value
        return cls(**known, attributes=pairs)

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


_FIELDS = (
    "request",
    "protocol_state",
    "client_address",
    "sender",
    "recipient",
    "sasl_username",
    "server_address",
    "instance",
)


def _short(raw: bytes | str) -> str:
    """A piece of bad input as it may appear in a log line: bounded and escaped."""
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "backslashreplace")
    return repr(text[:60] + ("..." if len(text) > 60 else ""))


def _attribute_lines(block: bytes, max_line: int) -> list[tuple[str, str]]:
    """The ``(name, value)`` pairs of one request's lines (*block* ends with a newline)."""
    if len(block) > max_line:  # else no line of it can be too long
        for number, raw in enumerate(block.split(b"\n")[:-1], 1):
            if len(raw) > max_line:
                raise PolicyError(f"line {number} is longer than {max_line} bytes")
    if b"\0" in block:
        raise PolicyError("a request must not contain a null byte")
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"invalid UTF-8 at byte {exc.start} of the request") from None
    lines = text.split("\n")
    lines.pop()  # after the last newline
    split = [line.partition("=") for line in lines]
    for number, (name, sep, _) in enumerate(split, 1):
        if not sep or not name:
            what = "is not name=value" if not sep else "has an empty attribute name"
            raise PolicyError(f"line {number} {what}: {_short(lines[number - 1])}")
    return [(name, value) for name, _, value in split]


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
    for item in lines:
        raw = item.encode("utf-8", "surrogateescape") if isinstance(item, str) else bytes(item)
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
    return PolicyRequest.from_attributes(_attribute_lines(bytes(block), max_line))


class PolicyParser:
    """Reads requests from a byte stream, however it is cut into pieces.

    ``for request in parser.feed(data): ...`` yields every request completed so far, in
    order, then raises :class:`PolicyError` if the input is malformed: a line or a
    request over the bounds (checked as soon as the bytes arrive, so memory stays
    bounded), a line without ``=``, a null byte, invalid UTF-8, or an empty request.
    After an error the parser stays failed.  Requests not yet taken from the iterator
    stay buffered for the next call.
    """

    __slots__ = ("_buffer", "_failed", "_line_start", "_scanned", "max_line", "max_request")

    def __init__(self, *, max_line: int = MAX_LINE, max_request: int = MAX_REQUEST) -> None:
        if max_line < 1 or max_request < 2:
            raise ValueError("max_line must be at least 1 and max_request at least 2")
        self.max_line = max_line
        self.max_request = max_request
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer already searched for the end of a request
        self._line_start = 0  # where the buffer's unfinished line starts
        self._failed: PolicyError | None = None

    @property
    def pending(self) -> bool:
        """Whether part of a request is buffered (the peer stopped in the middle of one)."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> Iterator[PolicyRequest]:
        """Add *data* to the buffer; iterate over the result to get the complete requests."""
        if self._failed is None:
            self._buffer += data
        return self._requests()

    def _fail(self, message: str) -> PolicyError:
        self._failed = PolicyError(message)
        self._buffer.clear()
        return self._failed

    def _requests(self) -> Iterator[PolicyRequest]:
        buffer = self._buffer
        while True:
            if self._failed is not None:
                raise self._failed
            if buffer[:1] == b"\n":
                raise self._fail("empty request: an empty line without attributes")
            end = buffer.find(b"\n\n", max(self._scanned - 1, 0))
            if end < 0:
                newline = buffer.rfind(b"\n", self._scanned)
                if newline >= 0:
                    self._line_start = newline + 1
                self._scanned = len(buffer)
                if len(buffer) - self._line_start > self.max_line:
                    raise self._fail(f"a line is longer than {self.max_line} bytes")
                if len(buffer) > self.max_request:
                    raise self._fail(f"a request is larger than {self.max_request} bytes")
                return
            size = end + 2
            if size > self.max_request:
                raise self._fail(f"a request is larger than {self.max_request} bytes")
            block = bytes(buffer[: end + 1])
            del buffer[:size]
            self._scanned = self._line_start = 0
            try:
                pairs = _attribute_lines(block, self.max_line)
            except PolicyError as exc:
                raise self._fail(str(exc)) from None
            yield PolicyRequest.from_attributes(pairs)


# ---------------------------------------------------------------------------
# answers


@attrs.frozen
class PolicyAnswer:
    """The action for one request, and why: the IMS decision, or a note when none was made."""

    action: str
    decision: Decision | None = None
    note: str = ""


def _printable(text: str) -> str:
    """*text* with control characters replaced: a reply is one line of an SMTP response."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else "?" for c in text)


def answer(
    request: PolicyRequest, settings: Settings, *, bounce_like_ims: bool = False
) -> PolicyAnswer:
    """The access(5) action for *request* under *settings*, with the decision behind it.

    The mapping is the module's (see its docstring).  Never raises for anything a
    request can contain: what cannot be decided is a ``451 4.3.0`` temporary failure.
    """
    if request.request != "smtpd_access_policy":
        return PolicyAnswer(DUNNO, note=f"not an smtpd_access_policy request: {request.request!r}")
    if request.protocol_state.upper() != "RCPT":
        return PolicyAnswer(DUNNO, note=f"protocol state {request.protocol_state!r}, not RCPT")
    recipient = request.recipient
    if not recipient:
        return PolicyAnswer(DUNNO, note="no recipient")
    client = request.client_address.strip()
    if client.lower() in _UNAVAILABLE:
        return PolicyAnswer(
            f"{TEMPFAIL} Client address unavailable: the routing restrictions cannot be applied",
            note="client_address is unavailable",
        )
    client = client.partition("%")[0]  # an IPv6 zone: networks in the settings have none
    note = ""
    server = _server_ip(request.server_address)
    if server is None and request.server_address.strip().lower() not in _UNAVAILABLE:
        note = f"server_address {request.server_address!r} is not an IP address; decided without it"
    envelope = Envelope(request.sender, (recipient,))
    try:
        verdict = decide(
            envelope, client, settings, authenticated=request.authenticated, server_ip=server
        )
    except Error as exc:
        return PolicyAnswer(
            f"{TEMPFAIL} Client address {_printable(client)[:60]} is not an IP address",
            note=str(exc),
        )
    decision = verdict[0]
    return PolicyAnswer(_action(decision, bounce_like_ims), decision, note)


@functools.lru_cache(maxsize=256)
def _server_ip(text: str) -> IPAddress | None:
    """The server address of a request, or ``None`` when it is unavailable or invalid.

    Without it ``restrictions.internal`` permits nobody: the safe direction.  A server
    has few addresses, so the answers are remembered.
    """
    text = text.strip().partition("%")[0]  # an IPv6 zone: networks in the settings have none
    if text.lower() in _UNAVAILABLE:
        return None
    try:
        return parse_ip(text, key="server_address")
    except Error:
        return None


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


def respond(request: PolicyRequest, settings: Settings, *, bounce_like_ims: bool = False) -> str:
    """The action that answers *request*: what follows ``action=`` in the reply."""
    return answer(request, settings, bounce_like_ims=bounce_like_ims).action


def format_reply(action: str) -> bytes:
    """The reply that carries *action*: ``action=...``, a newline and an empty line."""
    if not action or "\n" in action or "\0" in action:
        raise PolicyError(f"an action must be one non-empty line: {_short(action)}")
    return b"action=" + action.encode("utf-8") + b"\n\n"
