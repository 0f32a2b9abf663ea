"""What an Exchange 5.5 Internet Mail Service does with each recipient of an envelope.

The rules of DESIGN §2.4 stand here in the order of the spec: parse the path (step 1),
classify the destination (step 2), ask for relay permission for a reroute (step 3),
then an encapsulated (step 4) or an ordinary (step 5) inbound recipient; §2.3, may
this client relay, comes last.  What goes with each reason (its action, the reply, the
NDR text) is the table :data:`~imcea.reasons.REASONS`.

Two answers come from outside the rules, through :class:`Answers`: the routing entry of
a domain (§2.2) and the §2.3 answer for the client.  :func:`decide` computes them afresh
for each call; an :class:`imcea.Decider` remembers them.  Either way a decision is pure:
the same envelope, client and settings always give the same verdict.

Relay safety: with release SP3 the only ways to a Reroute are a permitted client or an
"always relay" routing entry, whatever the address looks like (KB Q237927, MS99-027).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import attrs

from .codec import decode
from .errors import DecodeError, Error, shorten
from .networks import IPAddress, dotted_quad, ip_key, parse_ip
from .paths import Malformed, Path, parse_path
from .reasons import REASONS, Action, Reason
from .settings import Release, Route, RouteAction, Settings

__all__ = [
    "MAX_DEPTH",
    "Action",
    "Answers",
    "Client",
    "Decision",
    "Envelope",
    "Permission",
    "Reason",
    "Verdict",
    "decide",
    "decide_envelope",
    "decide_recipient",
    "permission",
]

#: More levels of encapsulation than this are returned (DESIGN §2.4, step 4).
MAX_DEPTH = 3

# ---------------------------------------------------------------------------
# the values: what goes in, what comes out


def _sender(_: object, __: object, value: str) -> None:
    if type(value) is not str and not isinstance(value, str):
        raise Error(f"sender: expected a string, got {shorten(value)}")


def _recipients(value: object) -> tuple[str, ...]:
    if type(value) is tuple or type(value) is list:  # the usual: a sequence of plain strings
        for item in value:
            if type(item) is not str:
                break
        else:
            return tuple(value)
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Sequence | Iterator) or isinstance(value, bytes):
        raise Error(f"recipients: expected a list of strings, got {shorten(value)}")
    out = tuple(value)
    for i, item in enumerate(out):
        if not isinstance(item, str):
            raise Error(f"recipients[{i}]: expected a string, got {shorten(item)}")
    return out


@attrs.frozen
class Envelope:
    """The SMTP envelope: ``MAIL FROM`` sender and the ``RCPT TO`` recipients, in order."""

    sender: str = attrs.field(validator=_sender)
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


class Client(NamedTuple):
    """The SMTP client as §2.3 sees it.

    ``text`` is the address as the caller wrote it (named in decisions); ``version`` and
    ``value`` are the address for matching networks (see :func:`imcea.networks.ip_key`);
    ``server`` is the server-side address the client connected to, if known.
    """

    text: str
    version: int
    value: int
    authenticated: bool
    server: IPAddress | None

    @classmethod
    def of(
        cls,
        sender_ip: object,
        authenticated: bool = False,
        server_ip: object = None,
    ) -> Client:
        """The client at *sender_ip*; raises :class:`imcea.Error` for anything but an IP
        address (a string or an ``ipaddress`` object), naming ``sender_ip``/``server_ip``."""
        if type(sender_ip) is str and (quad := dotted_quad(sender_ip)) is not None:
            text, version, value = sender_ip, 4, quad  # how most clients are given
        else:
            version, value = ip_key(sender_ip, key="sender_ip")
            if type(sender_ip) is str:
                text = sender_ip.strip()  # named as written
            else:
                text = str(parse_ip(sender_ip, key="sender_ip"))
        server = None if server_ip is None else parse_ip(server_ip, key="server_ip")
        return cls(text, version, value, bool(authenticated), server)


class Permission(NamedTuple):
    """The §2.3 answer for one client; ``detail`` says why, naming the client."""

    permitted: bool
    reason: Reason
    detail: str


class Answers:
    """Where the rules get the answers of §2.2 and §2.3: computed afresh here.

    :class:`imcea.Decider` is the subclass that remembers them.
    """

    __slots__ = ("settings",)

    def __init__(self, settings: Settings) -> None:
        if not isinstance(settings, Settings):
            raise Error(f"settings: expected an imcea.Settings, got {type(settings).__name__}")
        self.settings = settings

    def route(self, domain: str) -> Route | None:
        """The routing entry of *domain* (in normal form), or ``None`` (DESIGN §2.2)."""
        return self.settings.lookup_route(domain)

    def permission(self, client: Client) -> Permission:
        """May *client* relay (DESIGN §2.3)?"""
        return permission(self.settings, client)


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
    argument; a malformed recipient is a Return decision, never an exception.  Nothing
    is remembered from one call to the next: to decide many envelopes against the same
    settings, an :class:`imcea.Decider` is faster.
    """
    answers = Answers(settings)
    return decide_envelope(envelope, Client.of(sender_ip, authenticated, server_ip), answers)


def decide_envelope(envelope: Envelope, client: Client, answers: Answers) -> Verdict:
    """Every recipient of *envelope* from *client*, with the settings of *answers*."""
    if not isinstance(envelope, Envelope):
        raise Error(f"envelope: expected an imcea.Envelope, got {type(envelope).__name__}")
    recipients = envelope.recipients
    if len(recipients) == 1:  # most envelopes: no list to build
        return Verdict((_decide(recipients[0], client, answers),))
    return Verdict([_decide(recipient, client, answers) for recipient in recipients])


def decide_recipient(recipient: str, client: Client, answers: Answers) -> Decision:
    """One recipient from *client*, with the settings of *answers*: what
    :func:`decide_envelope` gives it in any envelope."""
    if not isinstance(recipient, str):
        raise Error(f"recipient: expected a string, got {shorten(recipient)}")
    return _decide(recipient, client, answers)


#: What :data:`REASONS` says of each reason, as :func:`_decision` reads it for every
#: recipient: the action, the reply cut where the recipient is echoed (the part before,
#: ``"{}"`` or ``""`` when nothing is echoed, the part after) and the NDR text.
_OUTCOMES: dict[Reason, tuple[Action, str, str, str, str | None]] = {
    reason: (info.action, *info.reply.partition("{}"), info.ndr) for reason, info in REASONS.items()
}


def _decision(
    recipient: str,
    reason: Reason,
    detail: str,
    resolved: str | None = None,
    next_hop: str | None = None,
) -> Decision:
    """The decision for *recipient* with *reason*: action, reply and NDR as REASONS says."""
    action, before, echo, after, ndr = _OUTCOMES[reason]
    if echo:  # the IMS echoes the recipient without blanks and angle brackets
        echoed = recipient.strip()
        if echoed[:1] == "<" and echoed[-1:] == ">":
            echoed = echoed[1:-1]
        reply = before + echoed + after
    else:
        reply = before
    return Decision(recipient, action, reason, detail, reply, ndr, resolved, next_hop)


# ---------------------------------------------------------------------------
# DESIGN §2.4, step by step


def _decide(recipient: str, client: Client, answers: Answers) -> Decision:
    """Step 1: parse the path; then the steps that follow for it."""
    path = parse_path(recipient)
    if isinstance(path, Malformed):
        return _decision(
            recipient, Reason.MALFORMED_ADDRESS, f"the path cannot be parsed: {path.reason}"
        )
    if path.domain is None:
        return _decision(
            recipient,
            Reason.POSTMASTER,
            "a bare Postmaster must be accepted (RFC 5321 section 4.5.1)",
            "postmaster",
        )
    destination = _classify(path, answers, rerouting=answers.settings.reroute)
    if destination is None:
        return _inbound(recipient, path, client, answers, depth=0)
    return _relay(recipient, destination, client, answers, refusal=None)


class Destination(NamedTuple):
    """Step 2's answer for a reroute: relayed to ``hop`` as ``resolved``; ``always`` for
    an always-relay entry; ``why`` names the rule."""

    hop: str
    resolved: str
    always: bool
    why: str


def _classify(path: Path, answers: Answers, *, rerouting: bool) -> Destination | None:
    """Step 2: ``None`` for an inbound destination, else where the reroute goes."""
    domain = path.domain
    assert domain is not None  # the bare postmaster never gets here
    if not rerouting:
        return None
    if path.literal is not None:
        if answers.settings.is_server_address(path.literal):
            return None
        why = f"{domain} is not one of server_addresses (KB Q193316)"
        return Destination(domain, path.address, False, why)
    route = answers.route(domain)
    if route is None:
        return Destination(domain, path.address, False, f"no routing entry matches {domain}")
    if route.action is RouteAction.INBOUND:
        return None
    if route.action is RouteAction.RELAY:
        why = f"routing entry {str(route)!r} always relays (KB Q195969)"
        return Destination(domain, path.address, True, why)
    target = route.to
    assert target is not None
    why = f"routing entry {str(route)!r} reroutes {domain} to {target} (KB Q190710)"
    local = path.address.rpartition("@")[0]
    return Destination(target, f"{local}@{target}", False, why)


def _relay(
    recipient: str,
    destination: Destination,
    client: Client,
    answers: Answers,
    *,
    refusal: Reason | None,
    context: str = "",
) -> Decision:
    """Step 3: a reroute needs permission, unless the destination is always relayed.

    Refused: ``550 Relaying is prohibited`` with the §2.3 reason, or *refusal* when
    given (an encapsulated one-off: ``encapsulated_relay_denied``).  *context* goes
    before the detail (the encapsulation the destination was found in).
    """
    why = context + destination.why
    if destination.always:
        hop = destination.hop
        return _decision(recipient, Reason.ALWAYS_RELAY, why, destination.resolved, hop)
    allowed = answers.permission(client)
    detail = f"{why}; {allowed.detail}"
    if allowed.permitted:
        return _decision(recipient, allowed.reason, detail, destination.resolved, destination.hop)
    return _decision(recipient, refusal or allowed.reason, detail)


def _inbound(recipient: str, path: Path, client: Client, answers: Answers, depth: int) -> Decision:
    """Steps 4 and 5: an inbound recipient, encapsulated or ordinary."""
    if path.local.startswith("IMCEA"):  # case-sensitive, as the IMS is (KB Q271575)
        return _encapsulated(recipient, path, client, answers, depth)
    return _ordinary(recipient, path, answers)


def _encapsulated(
    recipient: str, path: Path, client: Client, answers: Answers, depth: int
) -> Decision:
    """Step 4: a local part with the upper-case IMCEA prefix; *depth* counts the
    encapsulations unwrapped so far."""
    level = depth + 1
    if level > MAX_DEPTH:
        return _decision(
            recipient,
            Reason.ENCAPSULATION_TOO_DEEP,
            f"more than {MAX_DEPTH} levels of encapsulation",
        )
    try:
        value = decode(f"{path.local}@{path.domain}")
    except DecodeError as exc:
        why = f"the encapsulated address is bad: {exc}"
        return _decision(recipient, Reason.MALFORMED_ENCAPSULATION, why)
    addrtype = value.addrtype
    if addrtype in ("SMTP", "MAILTO"):
        return _encapsulated_smtp(recipient, value.address, client, answers, level)
    if addrtype in ("EX", "X500"):
        return _encapsulated_exchange(recipient, addrtype, value.address, answers.settings)
    if addrtype == "INVALID":
        why = "IMCEAINVALID- is an unresolved recipient and cannot be delivered"
        return _decision(recipient, Reason.MALFORMED_ENCAPSULATION, why)
    if answers.settings.routes_type(addrtype):
        return _decision(
            recipient,
            Reason.ENCAPSULATED_GATEWAY,
            f"encapsulated {addrtype} address handed to the connector for {addrtype}",
            value.address,
        )
    why = f"no gateway routes encapsulated {addrtype} addresses"
    return _decision(recipient, Reason.NO_GATEWAY, why)


def _encapsulated_smtp(
    recipient: str, inner_text: str, client: Client, answers: Answers, level: int
) -> Decision:
    """Step 4, ``SMTP``/``MAILTO``: the seed's case, before (SP2) and after (SP3) the fix."""
    settings = answers.settings
    sp2 = settings.release is Release.SP2
    if not sp2 and not settings.reroute:
        return _decision(
            recipient,
            Reason.ENCAPSULATED_NOT_REROUTED,
            f"encapsulated SMTP one-off {inner_text} with rerouting off is returned (KB Q237927)",
        )
    inner = parse_path(inner_text)
    if isinstance(inner, Malformed) or inner.domain is None:
        why = inner.reason if isinstance(inner, Malformed) else "no domain"
        return _decision(
            recipient,
            Reason.MALFORMED_ENCAPSULATION,
            f"the encapsulated SMTP address {inner_text!r} is not a valid path ({why})",
        )
    context = f"encapsulated {inner_text}: "
    destination = _classify(inner, answers, rerouting=True)
    if destination is None:  # the inner address is inbound: decided one level deeper
        decision = _inbound(recipient, inner, client, answers, level)
        return decision._replace(detail=context + decision.detail)
    if sp2:
        why = (
            f"release SP2 reroutes encapsulated SMTP one-off {inner_text} whatever the "
            f"settings ({destination.why}; KB Q237927, MS99-027)"
        )
        hop = destination.hop
        return _decision(recipient, Reason.ENCAPSULATED_BYPASS, why, destination.resolved, hop)
    refusal = Reason.ENCAPSULATED_RELAY_DENIED
    return _relay(recipient, destination, client, answers, refusal=refusal, context=context)


def _encapsulated_exchange(recipient: str, addrtype: str, dn: str, settings: Settings) -> Decision:
    """Step 4, ``EX``/``X500``: a legacy Exchange DN, delivered when the directory knows it."""
    if not dn.startswith("/"):
        why = f"encapsulated {addrtype} address {dn!r} is not a legacy Exchange DN"
        return _decision(recipient, Reason.MALFORMED_ENCAPSULATION, why)
    directory = settings.directory
    if directory is None or directory.has_dn(dn):
        known = "no directory is given to check it" if directory is None else "it is known"
        why = f"encapsulated {addrtype} address {dn}: {known} (KB Q245045)"
        return _decision(recipient, Reason.ENCAPSULATED_EXCHANGE, why, dn)
    why = f"encapsulated {addrtype} address {dn} is not in the directory"
    return _decision(recipient, Reason.UNKNOWN_RECIPIENT, why)


def _ordinary(recipient: str, path: Path, answers: Answers) -> Decision:
    """Step 5: an ordinary inbound recipient, checked against the directory if there is one."""
    settings = answers.settings
    directory = settings.directory
    address = path.address
    domain = path.domain
    assert domain is not None
    if directory is not None:
        if directory.has_address(path.local, domain):
            return _decision(
                recipient, Reason.LOCAL_RECIPIENT, f"{address} is in the directory", address
            )
        return _decision(recipient, Reason.UNKNOWN_RECIPIENT, f"{address} is not in the directory")
    if _is_inbound(path, answers):
        why = f"{domain} is an inbound domain and no directory is given to check {address}"
        return _decision(recipient, Reason.INBOUND_UNVERIFIED, why, address)
    if not settings.reroute:
        why = f"{domain} is not an inbound domain and rerouting is off (KB Q237927)"
        return _decision(recipient, Reason.REROUTING_DISABLED, why)
    return _decision(recipient, Reason.UNKNOWN_RECIPIENT, f"{domain} is not an inbound domain")


def _is_inbound(path: Path, answers: Answers) -> bool:
    """Whether §2.2 matching says inbound, or the domain is a server address literal."""
    if path.literal is not None:
        return answers.settings.is_server_address(path.literal)
    assert path.domain is not None
    route = answers.route(path.domain)
    return route is not None and route.action is RouteAction.INBOUND


# ---------------------------------------------------------------------------
# DESIGN §2.3: may this client relay?


def permission(settings: Settings, client: Client) -> Permission:
    """DESIGN §2.3, steps 1 to 4: deny first, then open relay, then the three grounds.

    (Step 0, the always-relay entry, is the destination's: see step 3 of §2.4.)
    """
    r = settings.restrictions
    name = client.text
    denied = r.deny.lookup(client.version, client.value)
    if denied is not None:
        why = f"client {name} is on the never-route list (restrictions.deny {denied.text!r})"
        return Permission(False, Reason.DENIED_HOST, why)
    if not r.selected:
        why = "no routing restriction is selected, so every client may relay (KB Q260562)"
        return Permission(True, Reason.OPEN_RELAY, why)
    if client.authenticated and r.authenticated:
        why = f"client {name} authenticated and restrictions.authenticated is on"
        return Permission(True, Reason.RELAY_AUTHENTICATED, why)
    allowed = r.allow.lookup(client.version, client.value)
    if allowed is not None:
        why = f"client {name} matches restrictions.allow {allowed.text!r}"
        return Permission(True, Reason.RELAY_ALLOWED_HOST, why)
    if client.server is not None and r.internal:
        internal = r.internal.match(client.server)
        if internal is not None:
            why = (
                f"client connected to {client.server}, "
                f"which matches restrictions.internal {internal.text!r}"
            )
            return Permission(True, Reason.RELAY_INTERNAL_INTERFACE, why)
    why = f"client {name} is not permitted by the routing restrictions (KB Q193922)"
    return Permission(False, Reason.RELAY_DENIED, why)
