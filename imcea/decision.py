"""What an Exchange 5.5 Internet Mail Service does with each recipient of an envelope.

:func:`decide` follows DESIGN §2.4 step by step, and this module keeps every rule of
it together: parse the path, classify the destination, check relay permission (§2.3)
for a reroute, then handle encapsulated and ordinary inbound recipients.  It is pure:
the same envelope, client and settings always give the same verdict.

Only step 3 looks at the client.  The other steps therefore make of a recipient either
its decision or a relay *pending* step 3 (:class:`_Pending`), a function of the
recipient and the immutable settings alone that is remembered with the settings;
:func:`_resolve` then applies the client's §2.3 answer, itself remembered by client.

Relay safety: with release SP3 the only ways to a Reroute are a permitted client or an
"always relay" routing entry, whatever the address looks like (KB Q237927, MS99-027).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import attrs

from .codec import decode
from .errors import DecodeError, Error
from .networks import IPAddress, parse_ip
from .paths import Malformed, Path, parse_path
from .settings import Release, RouteAction, Settings

__all__ = ["Action", "Decider", "Decision", "Envelope", "Reason", "Verdict", "decide"]

#: More levels of encapsulation than this are returned (DESIGN §2.4, step 4).
MAX_DEPTH = 3

UNKNOWN_RECIPIENT_NDR = "(000C05A6) Unknown Recipient"


class Action(enum.StrEnum):
    """What happens to one recipient."""

    DELIVER = "deliver"
    REROUTE = "reroute"
    RETURN = "return"


class Reason(enum.StrEnum):
    """Why: one value per rule of DESIGN §2.4."""

    LOCAL_RECIPIENT = "local_recipient"
    INBOUND_UNVERIFIED = "inbound_unverified"
    POSTMASTER = "postmaster"
    ENCAPSULATED_EXCHANGE = "encapsulated_exchange"
    ENCAPSULATED_GATEWAY = "encapsulated_gateway"
    OPEN_RELAY = "open_relay"
    RELAY_AUTHENTICATED = "relay_authenticated"
    RELAY_ALLOWED_HOST = "relay_allowed_host"
    RELAY_INTERNAL_INTERFACE = "relay_internal_interface"
    ALWAYS_RELAY = "always_relay"
    ENCAPSULATED_BYPASS = "encapsulated_bypass"
    RELAY_DENIED = "relay_denied"
    DENIED_HOST = "denied_host"
    ENCAPSULATED_RELAY_DENIED = "encapsulated_relay_denied"
    MALFORMED_ADDRESS = "malformed_address"
    REROUTING_DISABLED = "rerouting_disabled"
    UNKNOWN_RECIPIENT = "unknown_recipient"
    ENCAPSULATED_NOT_REROUTED = "encapsulated_not_rerouted"
    MALFORMED_ENCAPSULATION = "malformed_encapsulation"
    ENCAPSULATION_TOO_DEEP = "encapsulation_too_deep"
    NO_GATEWAY = "no_gateway"


#: The NDR diagnostic of each reason that is accepted at RCPT and returned afterwards.
NDR_TEXT: dict[Reason, str] = {
    Reason.REROUTING_DISABLED: UNKNOWN_RECIPIENT_NDR,
    Reason.UNKNOWN_RECIPIENT: UNKNOWN_RECIPIENT_NDR,
    Reason.MALFORMED_ENCAPSULATION: UNKNOWN_RECIPIENT_NDR,
    Reason.ENCAPSULATION_TOO_DEEP: UNKNOWN_RECIPIENT_NDR,
    Reason.ENCAPSULATED_NOT_REROUTED: (
        "the message is returned: encapsulated SMTP one-offs are not rerouted"
    ),
    Reason.NO_GATEWAY: "no route to the address type",
}

RELAY_PROHIBITED = "550 Relaying is prohibited"

# Named tuples built on the hot path skip their generated ``__new__`` (keyword handling
# that costs as much as the rest of building them): ``_new(Cls, (field, ...))``.
_new = tuple.__new__


def _sender(value: object) -> None:
    if not isinstance(value, str):
        raise Error(f"sender: expected a string, got {value!r}")


def _recipients(value: object) -> tuple[str, ...]:
    if type(value) is list or type(value) is tuple:  # the common case, checked cheaply
        out = tuple(value)
        for item in out:
            if type(item) is not str:
                break
        else:
            return out
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Sequence | Iterator) or isinstance(value, bytes):
        raise Error(f"recipients: expected a list of strings, got {value!r}")
    out = tuple(value)
    for i, item in enumerate(out):
        if not isinstance(item, str):
            raise Error(f"recipients[{i}]: expected a string, got {item!r}")
    return out


@attrs.frozen
class Envelope:
    """The SMTP envelope: ``MAIL FROM`` sender and the ``RCPT TO`` recipients, in order."""

    sender: str = attrs.field(validator=lambda _, __, value: _sender(value))
    recipients: tuple[str, ...] = attrs.field(converter=_recipients)


class Decision(NamedTuple):
    """The outcome for one recipient.

    ``reply`` is the IMS's reply to the ``RCPT TO``; ``ndr`` is the diagnostic of the
    non-delivery report when the recipient is accepted and returned afterwards;
    ``resolved`` and ``next_hop`` say where it is delivered or relayed to.
    """

    recipient: str
    action: Action
    reason: Reason
    detail: str
    reply: str
    ndr: str | None = None
    resolved: str | None = None
    next_hop: str | None = None

    @property
    def returned(self) -> bool:
        """Whether the recipient is returned (refused at RCPT or by NDR)."""
        return self.action is Action.RETURN


class Verdict(tuple[Decision, ...]):
    """The decisions for an envelope, one per recipient, in order (an immutable sequence)."""

    __slots__ = ()

    @property
    def any_returned(self) -> bool:
        """Whether some recipient is returned."""
        return any(d.action is Action.RETURN for d in self)

    @property
    def any_rerouted(self) -> bool:
        """Whether some recipient is relayed back out."""
        return any(d.action is Action.REROUTE for d in self)


class _Permission(NamedTuple):
    """The §2.3 answer for one client; ``detail`` names the client as it was written."""

    permitted: bool
    reason: Reason
    detail: str


class _Pending(NamedTuple):
    """A recipient that reached step 3: rerouted to ``hop`` or refused, as §2.3 answers
    for the client (see :func:`_resolve`).  ``refusal`` replaces the §2.3 reason of a
    refusal when given (``encapsulated_relay_denied``)."""

    recipient: str
    hop: str
    resolved: str
    why: str
    refusal: Reason | None


#: What the steps other than §2.3 make of a recipient: a decision, or a pending relay.
_Outcome = Decision | _Pending


class _Generations:
    """A bounded memo that keeps what is used again: two generations of at most *size*
    entries each.  A hit in the older generation moves the entry to the younger one;
    when the younger one is full it becomes the older one, and the older is dropped.

    Mail logs name a few thousand recipients again and again among many that appear
    once; clearing a full memo would forget the former along with the latter.  And a
    value is only kept the second time it is offered (the first time, the hash of its
    key is noted): storing the many that never come back would cost memory, and time
    in the garbage collector, for nothing.
    """

    __slots__ = ("old", "seen", "size", "young")

    def __init__(self, size: int) -> None:
        self.size = size
        self.young: dict[str, Any] = {}
        self.old: dict[str, Any] = {}
        self.seen: set[int] = set()

    def get(self, key: str) -> Any:
        """The value remembered for *key*, or ``None``."""
        value = self.young.get(key)
        if value is None:
            value = self.old.get(key)
            if value is not None:
                self.keep(key, value)
        return value

    def find(self, key: str, make: Callable[[str], Any]) -> Any:
        """The value remembered for *key*, else ``make(key)``, offered to the memo
        (unless *key* is longer than a path may be: such keys are not remembered)."""
        value = self.get(key)
        if value is None:
            value = make(key)
            if len(key) <= _MEMO_RECIPIENT_LENGTH:
                self.offer(key, value)
        return value

    def offer(self, key: str, value: Any) -> None:
        """Remember *value* for *key* if *key* was offered before."""
        mark = hash(key)
        seen = self.seen
        if mark in seen:
            self.keep(key, value)
        else:
            if len(seen) >= 4 * self.size:
                seen.clear()
            seen.add(mark)

    def keep(self, key: str, value: Any) -> None:
        """Remember *value* for *key*."""
        young = self.young
        young[key] = value
        if len(young) >= self.size:
            self.old = young
            self.young = {}


# The settings' memo holds, under this key, the §2.3 answers by client and the outcomes
# by recipient: both are functions of the immutable settings and of their key alone.
_MEMOS = "imcea.decision"
#: Recipients longer than this are decided afresh every time (RFC 5321's path limit).
_MEMO_RECIPIENT_LENGTH = 256
#: Clients remembered per settings (their §2.3 answers; the memo is cleared when full).
_PERMISSIONS_SIZE = 4096
#: Recipients remembered per settings, per generation (see :class:`_Generations`).
_OUTCOMES_SIZE = 8192
_DENIED_HOST, _OPEN_RELAY = Reason.DENIED_HOST, Reason.OPEN_RELAY
_RELAY_AUTHENTICATED, _RELAY_ALLOWED_HOST = Reason.RELAY_AUTHENTICATED, Reason.RELAY_ALLOWED_HOST
_RELAY_INTERNAL_INTERFACE, _RELAY_DENIED = Reason.RELAY_INTERNAL_INTERFACE, Reason.RELAY_DENIED
_PermissionKey = tuple[str, bool, IPAddress | None]


class _Memos:
    """What one :class:`~imcea.Settings` value remembers for :func:`decide`."""

    __slots__ = ("outcomes", "permissions", "settings")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.permissions: dict[_PermissionKey, _Permission] = {}
        self.outcomes = _Generations(_OUTCOMES_SIZE)

    def outcome(self, recipient: str) -> _Outcome:
        """Steps 1, 2, 4 and 5 for *recipient*, remembered: they do not depend on the
        client, so mail logs that name the same recipients again reuse them."""
        outcome: _Outcome | None = self.outcomes.young.get(recipient)
        if outcome is None:
            outcome = self.outcomes.find(recipient, self.afresh)
        return outcome

    def afresh(self, recipient: str) -> _Outcome:
        """Steps 1, 2, 4 and 5 for *recipient*, not remembered."""
        return _decide_afresh(recipient, self.settings)

    def permission(
        self, client: str | IPAddress, authenticated: bool, server: IPAddress | None
    ) -> _Permission:
        """§2.3 for *client* (an IP address, or a string known to be one), remembered by
        the client as written: a server sees the same clients again and again, and a
        string is hashed faster than it is parsed."""
        text = client.strip() if type(client) is str else str(client)
        key = (text, authenticated, server)
        memo = self.permissions
        found = memo.get(key)
        if found is None:
            address = _client_ip(client) if type(client) is str else parse_ip(client)
            found = _permission(self.settings, address, text, authenticated, server)
            if len(memo) >= _PERMISSIONS_SIZE:
                memo.clear()
            memo[key] = found
        return found


def _memos(settings: Settings) -> _Memos:
    """The memos kept with *settings* (made on first use)."""
    memo = settings.memo()
    memos: _Memos | None = memo.get(_MEMOS)
    if memos is None:
        memos = memo[_MEMOS] = _Memos(settings)
    return memos


def _permission(
    settings: Settings,
    client: IPAddress,
    client_text: str,
    authenticated: bool,
    server: IPAddress | None,
) -> _Permission:
    """DESIGN §2.3, steps 1 to 4: deny first, then open relay, then the three grounds."""
    r = settings.restrictions
    denied = r.deny.match(client) if r.deny else None
    if denied is not None:
        why = f"client {client_text} is on the never-route list (restrictions.deny {denied.text!r})"
        return _new(_Permission, (False, _DENIED_HOST, why))
    if not r.selected:
        why = "no routing restriction is selected, so every client may relay (KB Q260562)"
        return _new(_Permission, (True, _OPEN_RELAY, why))
    if authenticated and r.authenticated:
        why = f"client {client_text} authenticated and restrictions.authenticated is on"
        return _new(_Permission, (True, _RELAY_AUTHENTICATED, why))
    allowed = r.allow.match(client) if r.allow else None
    if allowed is not None:
        why = f"client {client_text} matches restrictions.allow {allowed.text!r}"
        return _new(_Permission, (True, _RELAY_ALLOWED_HOST, why))
    if server is not None and r.internal:
        internal = r.internal.match(server)
        if internal is not None:
            why = (
                f"client connected to {server}, "
                f"which matches restrictions.internal {internal.text!r}"
            )
            return _new(_Permission, (True, _RELAY_INTERNAL_INTERFACE, why))
    why = f"client {client_text} is not permitted by the routing restrictions (KB Q193922)"
    return _new(_Permission, (False, _RELAY_DENIED, why))


def _resolve(pending: _Pending, permission: _Permission) -> Decision:
    """Step 3 for a client: rerouted when §2.3 permits it, else ``550`` refused."""
    detail = f"{pending.why}; {permission.detail}"
    recipient = pending.recipient
    if permission.permitted:
        return _reroute(recipient, permission.reason, detail, pending.resolved, pending.hop)
    return _refused(recipient, pending.refusal or permission.reason, detail)


# ---------------------------------------------------------------------------
# the outcomes, each built in one place


def _accepted(recipient: str) -> str:
    return f"250 OK - Recipient <{_bare(recipient)}>"


def _bare(recipient: str) -> str:
    """The recipient as the IMS echoes it: without surrounding blanks and angle brackets."""
    text = recipient.strip()
    if text[:1] == "<" and text[-1:] == ">":
        text = text[1:-1]
    return text


# Enum members bound once: attribute lookups on an enum class cost as much as the rest
# of building a Decision, and this runs for every recipient.
_DELIVER, _REROUTE, _RETURN = Action.DELIVER, Action.REROUTE, Action.RETURN
_INBOUND_ROUTE, _RELAY_ROUTE = RouteAction.INBOUND, RouteAction.RELAY
_LOCAL_RECIPIENT = Reason.LOCAL_RECIPIENT
_INBOUND_UNVERIFIED = Reason.INBOUND_UNVERIFIED
_UNKNOWN_RECIPIENT = Reason.UNKNOWN_RECIPIENT


def _deliver(recipient: str, reason: Reason, detail: str, resolved: str) -> Decision:
    reply = _accepted(recipient)
    return _new(Decision, (recipient, _DELIVER, reason, detail, reply, None, resolved, None))


def _returned(recipient: str, reason: Reason, detail: str) -> Decision:
    """Accepted at RCPT, then returned with a non-delivery report."""
    reply = _accepted(recipient)
    return _new(Decision, (recipient, _RETURN, reason, detail, reply, NDR_TEXT[reason], None, None))


def _refused(recipient: str, reason: Reason, detail: str) -> Decision:
    """Refused at RCPT with ``550 Relaying is prohibited``."""
    return _new(Decision, (recipient, _RETURN, reason, detail, RELAY_PROHIBITED, None, None, None))


def _reroute(recipient: str, reason: Reason, detail: str, resolved: str, hop: str) -> Decision:
    reply = _accepted(recipient)
    return _new(Decision, (recipient, _REROUTE, reason, detail, reply, None, resolved, hop))


# ---------------------------------------------------------------------------
# DESIGN §2.4, step by step


class _Destination(NamedTuple):
    """Step 2: where the path goes.  ``hop`` is ``None`` for an inbound destination."""

    hop: str | None
    resolved: str
    always: bool
    why: str


#: Step 2's answer for every inbound destination (no strings to build on the hot path).
_INBOUND = _Destination(None, "", False, "")


def _classify(path: Path, settings: Settings, *, rerouting: bool) -> _Destination:
    """Step 2: inbound, always relay, or a reroute (to which next hop)."""
    domain = path.domain
    assert domain is not None  # the bare postmaster never gets here
    if not rerouting:
        return _INBOUND
    if path.literal is not None:
        if settings.is_server_address(path.literal):
            return _INBOUND
        why = f"{domain} is not one of server_addresses (KB Q193316)"
        return _new(_Destination, (domain, path.address, False, why))
    route = settings.lookup_route(domain)
    if route is None:
        why = f"no routing entry matches {domain}"
        return _new(_Destination, (domain, path.address, False, why))
    action = route.action
    if action is _INBOUND_ROUTE:
        return _INBOUND
    if action is _RELAY_ROUTE:
        why = f"routing entry {str(route)!r} always relays (KB Q195969)"
        return _new(_Destination, (domain, path.address, True, why))
    target = route.to
    assert target is not None
    why = f"routing entry {str(route)!r} reroutes {domain} to {target} (KB Q190710)"
    return _new(_Destination, (target, _with_domain(path, target), False, why))


def _with_domain(path: Path, domain: str) -> str:
    """The path's address with its domain rewritten (a reroute-to entry, KB Q190710)."""
    return f"{path.address.rpartition('@')[0]}@{domain}"


def _decide_path(recipient: str, path: Path, settings: Settings, depth: int) -> _Outcome:
    """Steps 2 to 5 for a parsed path; *depth* counts the encapsulations unwrapped so far."""
    dest = _classify(path, settings, rerouting=settings.reroute)
    if dest.hop is None:
        # classified inbound with rerouting on: the domain is ours by step 2
        return _inbound(recipient, path, settings, depth, ours=settings.reroute or None)
    return _relay(recipient, dest, dest.why, refusal=None)


def _relay(recipient: str, dest: _Destination, why: str, *, refusal: Reason | None) -> _Outcome:
    """Step 3: a reroute needs permission, unless the destination is always relayed.

    The answer waits for the client (see :func:`_resolve`): a refusal is ``550 Relaying
    is prohibited`` with the §2.3 reason, or *refusal* when given (an encapsulated
    one-off: ``encapsulated_relay_denied``).
    """
    assert dest.hop is not None
    if dest.always:
        return _reroute(recipient, Reason.ALWAYS_RELAY, why, dest.resolved, dest.hop)
    return _new(_Pending, (recipient, dest.hop, dest.resolved, why, refusal))


def _inbound(
    recipient: str, path: Path, settings: Settings, depth: int, *, ours: bool | None = None
) -> _Outcome:
    """Steps 4 and 5: an inbound recipient, encapsulated or ordinary.

    *ours* is ``True`` when step 2 already found the domain inbound, ``None`` when the
    routing table still has to say (rerouting off).
    """
    local = path.local
    if local.startswith("IMCEA"):  # case-sensitive, as the IMS is (KB Q271575)
        return _encapsulated(recipient, path, settings, depth)
    directory = settings.directory
    address = path.address
    if directory is not None:
        assert path.domain is not None
        if directory.has_address(local, path.domain):
            return _deliver(recipient, _LOCAL_RECIPIENT, f"{address} is in the directory", address)
        return _returned(recipient, _UNKNOWN_RECIPIENT, f"{address} is not in the directory")
    if ours or _is_ours(path, settings):
        return _deliver(
            recipient,
            _INBOUND_UNVERIFIED,
            f"{path.domain} is an inbound domain and no directory is given to check {address}",
            address,
        )
    if not settings.reroute:
        return _returned(
            recipient,
            Reason.REROUTING_DISABLED,
            f"{path.domain} is not an inbound domain and rerouting is off (KB Q237927)",
        )
    return _returned(recipient, Reason.UNKNOWN_RECIPIENT, f"{path.domain} is not an inbound domain")


def _is_ours(path: Path, settings: Settings) -> bool:
    """Whether §2.2 matching says inbound, or the domain is a server address literal."""
    if path.literal is not None:
        return settings.is_server_address(path.literal)
    assert path.domain is not None
    route = settings.lookup_route(path.domain)
    return route is not None and route.action is _INBOUND_ROUTE


def _encapsulated(recipient: str, path: Path, settings: Settings, depth: int) -> _Outcome:
    """Step 4: a local part with the upper-case IMCEA prefix."""
    level = depth + 1
    if level > MAX_DEPTH:
        return _returned(
            recipient,
            Reason.ENCAPSULATION_TOO_DEEP,
            f"more than {MAX_DEPTH} levels of encapsulation",
        )
    try:
        value = decode(f"{path.local}@{path.domain}")
    except DecodeError as exc:
        return _returned(
            recipient, Reason.MALFORMED_ENCAPSULATION, f"the encapsulated address is bad: {exc}"
        )
    addrtype = value.addrtype
    if addrtype in ("SMTP", "MAILTO"):
        return _encapsulated_smtp(recipient, value.address, settings, level)
    if addrtype in ("EX", "X500"):
        dn = value.address
        if not dn.startswith("/"):
            return _returned(
                recipient,
                Reason.MALFORMED_ENCAPSULATION,
                f"encapsulated {addrtype} address {dn!r} is not a legacy Exchange DN",
            )
        directory = settings.directory
        if directory is None or directory.has_dn(dn):
            why = "no directory is given to check it" if directory is None else "it is known"
            return _deliver(
                recipient,
                Reason.ENCAPSULATED_EXCHANGE,
                f"encapsulated {addrtype} address {dn}: {why} (KB Q245045)",
                dn,
            )
        return _returned(
            recipient,
            Reason.UNKNOWN_RECIPIENT,
            f"encapsulated {addrtype} address {dn} is not in the directory",
        )
    if addrtype == "INVALID":
        return _returned(
            recipient,
            Reason.MALFORMED_ENCAPSULATION,
            "IMCEAINVALID- is an unresolved recipient and cannot be delivered",
        )
    if settings.routes_type(addrtype):
        return _deliver(
            recipient,
            Reason.ENCAPSULATED_GATEWAY,
            f"encapsulated {addrtype} address handed to the connector for {addrtype}",
            value.address,
        )
    return _returned(
        recipient, Reason.NO_GATEWAY, f"no gateway routes encapsulated {addrtype} addresses"
    )


def _encapsulated_smtp(recipient: str, inner_text: str, settings: Settings, level: int) -> _Outcome:
    """Step 4, ``SMTP``/``MAILTO``: the seed's case, before (SP2) and after (SP3) the fix."""
    sp2 = settings.release is Release.SP2
    if not sp2 and not settings.reroute:
        return _returned(
            recipient,
            Reason.ENCAPSULATED_NOT_REROUTED,
            f"encapsulated SMTP one-off {inner_text} with rerouting off is returned (KB Q237927)",
        )
    inner = parse_path(inner_text)
    if isinstance(inner, Malformed) or inner.domain is None:
        why = inner.reason if isinstance(inner, Malformed) else "no domain"
        return _returned(
            recipient,
            Reason.MALFORMED_ENCAPSULATION,
            f"the encapsulated SMTP address {inner_text!r} is not a valid path ({why})",
        )
    dest = _classify(inner, settings, rerouting=True)
    if dest.hop is None:
        outcome = _inbound(recipient, inner, settings, level, ours=True)
        if isinstance(outcome, _Pending):  # nested deeper, and relayed there
            return outcome._replace(why=f"encapsulated {inner_text}: {outcome.why}")
        return outcome._replace(detail=f"encapsulated {inner_text}: {outcome.detail}")
    if sp2:
        return _reroute(
            recipient,
            Reason.ENCAPSULATED_BYPASS,
            f"release SP2 reroutes encapsulated SMTP one-off {inner_text} whatever the "
            f"settings ({dest.why}; KB Q237927, MS99-027)",
            dest.resolved,
            dest.hop,
        )
    why = f"encapsulated {inner_text}: {dest.why}"
    return _relay(recipient, dest, why, refusal=Reason.ENCAPSULATED_RELAY_DENIED)


def _decide_afresh(recipient: str, settings: Settings) -> _Outcome:
    """Step 1 (parse), then the rest; a relay is left pending step 3."""
    path = parse_path(recipient)
    if isinstance(path, Malformed):
        return Decision(
            recipient,
            Action.RETURN,
            Reason.MALFORMED_ADDRESS,
            f"the path cannot be parsed: {path.reason}",
            f"553 malformed address: <{_bare(recipient)}>",
        )
    if path.domain is None:
        return _deliver(
            recipient,
            Reason.POSTMASTER,
            "a bare Postmaster must be accepted (RFC 5321 section 4.5.1)",
            "postmaster",
        )
    return _decide_path(recipient, path, settings, 0)


@functools.lru_cache(maxsize=4096)
def _client_ip(text: str) -> IPAddress:
    """:func:`parse_ip` of a client address string, remembered: logs repeat their clients."""
    return parse_ip(text, key="sender_ip")


def decide(
    envelope: Envelope,
    sender_ip: str | IPAddress,
    settings: Settings,
    *,
    authenticated: bool = False,
    server_ip: str | IPAddress | None = None,
) -> Verdict:
    """Decide every recipient of *envelope* sent by the client at *sender_ip*.

    *server_ip* is the server-side address the client connected to (for
    ``restrictions.internal``).  Raises :class:`imcea.Error` for an invalid IP or
    argument; a malformed recipient is a Return decision, never an exception.
    """
    if not isinstance(envelope, Envelope):
        raise Error(f"envelope: expected an imcea.Envelope, got {type(envelope).__name__}")
    if not isinstance(settings, Settings):
        raise Error(f"settings: expected an imcea.Settings, got {type(settings).__name__}")
    client: str | IPAddress
    if type(sender_ip) is str:
        _client_ip(sender_ip)  # raises when it is not an IP address; remembered
        client = sender_ip
    else:
        client = parse_ip(sender_ip, key="sender_ip")
    server = None if server_ip is None else parse_ip(server_ip, key="server_ip")
    memos = _memos(settings)
    outcome = memos.outcome
    recipients = envelope.recipients
    if len(recipients) == 1:  # the common case, without a list
        found = outcome(recipients[0])
        if isinstance(found, _Pending):
            found = _resolve(found, memos.permission(client, bool(authenticated), server))
        return Verdict((found,))
    permission: _Permission | None = None
    decisions: list[Decision] = []
    for recipient in recipients:
        found = outcome(recipient)
        if isinstance(found, _Pending):  # step 3 asks about the client, once per call
            if permission is None:
                permission = memos.permission(client, bool(authenticated), server)
            found = _resolve(found, permission)
        decisions.append(found)
    return Verdict(decisions)


class Decider:
    """Settings compiled once for many decisions, like :func:`re.compile`.

    ``Decider(settings).decide(envelope, sender_ip)`` gives the same :class:`Verdict` as
    :func:`decide` with the same arguments.  A decider pickles as its settings.
    """

    __slots__ = ("settings",)

    def __init__(self, settings: Settings) -> None:
        if not isinstance(settings, Settings):
            raise Error(f"settings: expected an imcea.Settings, got {type(settings).__name__}")
        self.settings = settings

    def __repr__(self) -> str:
        return f"Decider({self.settings!r})"

    def __reduce__(self) -> tuple[type[Decider], tuple[Settings]]:
        return (Decider, (self.settings,))

    def decide(
        self,
        envelope: Envelope,
        sender_ip: str | IPAddress,
        *,
        authenticated: bool = False,
        server_ip: str | IPAddress | None = None,
    ) -> Verdict:
        """Decide every recipient of *envelope*: the same verdict as :func:`decide`."""
        return decide(
            envelope, sender_ip, self.settings, authenticated=authenticated, server_ip=server_ip
        )
