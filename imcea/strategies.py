"""Hypothesis strategies for property tests of routing policies.

With these, a policy's invariants can be tested over generated inputs in a few lines::

    from hypothesis import given
    import imcea
    from imcea.strategies import client_ips, relay_tricks

    SETTINGS = imcea.load_settings("ims.toml")

    @given(client_ips(SETTINGS, inside=False), relay_tricks(["contoso.example"]))
    def test_no_outsider_relays(ip, recipient):
        verdict = imcea.decide(imcea.Envelope("", [recipient]), ip, SETTINGS)
        assert not verdict.any_rerouted

- :func:`encapsulated_addresses`: IMCEA addresses of any type, or of the types given;
- :func:`relay_tricks`: recipients built from the relay-trick vocabulary (percent hack,
  quoting, source routes, bang paths, address literals, nested encapsulation, case and
  escape variants);
- :func:`client_ips`: client addresses inside or outside the networks of a
  :class:`~imcea.Settings`;
- :func:`settings`: whole :class:`~imcea.Settings` values.

This module needs the ``hypothesis`` package; ``import imcea`` never imports it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Sequence

try:
    from hypothesis import strategies as st
    from hypothesis.errors import InvalidArgument
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "imcea.strategies needs the hypothesis package: pip install hypothesis "
        "(or pip install 'imcea[test]')"
    ) from exc

from .battery import FORMS, LAYERS, ROUTES, Mangle, literal_text, mangle
from .codec import encode
from .domains import DomainError, normalise_domain
from .errors import EncodeError, Error
from .networks import IPAddress, Network, NetworkSet, parse_ip
from .settings import Directory, Release, Restrictions, Route, Settings

__all__ = [
    "KNOWN_TYPES",
    "NETWORK_LISTS",
    "client_ips",
    "encapsulated_addresses",
    "relay_tricks",
    "settings",
]

#: The encapsulated address types Exchange writes (MS-OXCMAIL, the KB articles).
KNOWN_TYPES = ("SMTP", "MAILTO", "EX", "X500", "X400", "MS", "CCMAIL", "NOTES", "FAX", "INVALID")

#: The network lists of :class:`~imcea.Restrictions` that :func:`client_ips` knows.
NETWORK_LISTS = ("allow", "internal", "deny")

_TYPE = re.compile(r"[A-Za-z0-9]{1,9}")
_FULL = {4: (1 << 32) - 1, 6: (1 << 128) - 1}

# ---------------------------------------------------------------------------
# building blocks

# (st.text over an alphabet draws several times faster than st.from_regex.)
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_DIGITS = "0123456789"
_ALNUM = _LOWER + _LOWER.upper() + _DIGITS
_WORD = st.text(_LOWER + _DIGITS, min_size=1, max_size=7)
_LABEL = st.one_of(_WORD, _WORD, st.builds("{}-{}".format, _WORD, _WORD))
_TLDS = st.sampled_from(["example", "test", "org", "com", "net"])


# Host names of 2 to 4 labels, some from a small vocabulary so that they repeat.  (Every
# strategy that does not depend on an argument is built once, here: building them
# inside a draw would cost more than the draw.)
_HOSTNAMES = st.one_of(
    st.sampled_from(
        ["example.org", "contoso.example", "mail.contoso.example", "partner.example", "sea.com"]
    ),
    st.builds(
        lambda labels, tld: ".".join([*labels, tld]),
        st.lists(_LABEL, min_size=1, max_size=3),
        _TLDS,
    ),
)


def _literal(ip: IPAddress) -> str:
    """The address literal of *ip* (``[192.0.2.1]``, ``[IPv6:2001:db8::1]``)."""
    return f"[{literal_text(ip)}]"


_USERS = st.one_of(
    st.sampled_from(["relaytest", "user", "victim", "Alice.Smith", "postmaster", "o'brien"]),
    st.builds(
        "{}{}".format, st.sampled_from(_LOWER), st.text(_LOWER + _DIGITS + "_+=-", max_size=10)
    ),
)

# ---------------------------------------------------------------------------
# encapsulated addresses


def _check_types(types: Sequence[str]) -> list[str]:
    if isinstance(types, str) or not types:
        raise InvalidArgument(f"types: expected a non-empty list of address types, got {types!r}")
    out = []
    for addrtype in types:
        if not isinstance(addrtype, str) or not _TYPE.fullmatch(addrtype):
            raise InvalidArgument(f"types: {addrtype!r} is not 1-9 ASCII letters or digits")
        out.append(addrtype.upper())
    return out


def _check_domains(domains: Sequence[str], name: str, *, literals: bool) -> list[str]:
    if isinstance(domains, str) or not domains:
        raise InvalidArgument(f"{name}: expected a non-empty list of domains, got {domains!r}")
    out = []
    for domain in domains:
        if not isinstance(domain, str):
            raise InvalidArgument(f"{name}: {domain!r} is not a domain")
        try:
            if literals:
                encode("X", "x", domain)  # a host name, an address literal or '*'
            else:
                normalise_domain(domain)
        except (EncodeError, DomainError):
            raise InvalidArgument(f"{name}: {domain!r} is not a valid domain") from None
        out.append(domain)
    return out


_ANY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30)
_DN_NAME = st.text(
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 _,+'@.-é"),
    min_size=1,
    max_size=16,
)


_SMTP_PAYLOADS = st.builds("{}@{}".format, _USERS, _HOSTNAMES)
_DN_PAYLOADS = st.builds(
    "/O={}/OU={}/CN=RECIPIENTS/CN={}".format,
    st.sampled_from(["CONTOSO", "ORG", "First Organization"]),
    st.sampled_from(["HQ", "SITE", "Exchange Administrative Group (FYDIBOHF23SPDLT)"]),
    _DN_NAME,
)
_X400_PAYLOADS = st.builds(
    "c=US;a= ;p={};o={};s={};".format,
    st.sampled_from(["MS", "CONTOSO"]),
    st.sampled_from(["PARIS", "HQ"]),
    st.text(_LOWER + _LOWER.upper(), min_size=1, max_size=12),
)
_FAX_PAYLOADS = st.builds(
    "{}{}".format, st.sampled_from(["", "+"]), st.text(_DIGITS, min_size=6, max_size=14)
)


def _mostly(real: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """*real* values, and now and then any text at all."""
    return st.one_of(real, real, real, _ANY_TEXT)


#: The payload of each known type: realistic addresses, and now and then any text.
_PAYLOADS: dict[str, st.SearchStrategy[str]] = {
    "SMTP": _mostly(_SMTP_PAYLOADS),
    "MAILTO": _mostly(_SMTP_PAYLOADS),
    "EX": _mostly(_DN_PAYLOADS),
    "X500": _mostly(_DN_PAYLOADS),
    "X400": _mostly(_X400_PAYLOADS),
    "FAX": _mostly(_FAX_PAYLOADS),
}


_ENCAPSULATION_DOMAINS = st.one_of(_HOSTNAMES, st.ip_addresses().map(_literal), st.just("*"))


def _slash_escaped(address: str) -> str:
    """The first ``_`` (a ``/``) of the local part written ``+2F``, which reads the same."""
    local, at, domain = address.rpartition("@")
    return local.replace("_", "+2F", 1) + at + domain


def encapsulated_addresses(
    types: Sequence[str] | None = None,
    domains: Sequence[str] | None = None,
    *,
    variants: bool = False,
) -> st.SearchStrategy[str]:
    """Encapsulated addresses, each of which ``imcea.decode`` reads (strict mode).

    *types* restricts the type (the decoded type is its upper-case form); by default
    any type: those Exchange writes (:data:`KNOWN_TYPES`) and made-up ones of 1-9
    letters and digits.  The encoded address is a realistic value of its type (an SMTP
    address, a legacy Exchange DN, an X.400 O/R address, a fax number) or, now and
    then, any text, non-Latin-1 included (the ``UTF8-`` form).  *domains* are the
    domains after the ``@`` (host names, address literals or ``*``); by default host
    names, literals and ``*``.

    With *variants*, the prefix and type are sometimes written in lower or mixed case,
    the hex digits in lower case and a ``/`` as ``+2F`` rather than ``_``: ``decode``
    reads those the same, but the IMS takes only an upper-case ``IMCEA`` prefix for
    encapsulation (KB Q271575).
    """
    type_strategy: st.SearchStrategy[str]
    if types is None:
        type_strategy = st.one_of(
            st.sampled_from(KNOWN_TYPES), st.text(_ALNUM, min_size=1, max_size=9)
        )
    else:
        type_strategy = st.sampled_from(_check_types(types))
    domain_strategy: st.SearchStrategy[str]
    if domains is None:
        domain_strategy = _ENCAPSULATION_DOMAINS
    else:
        domain_strategy = st.sampled_from(_check_domains(domains, "domains", literals=True))

    @st.composite
    def build(draw: st.DrawFn) -> str:
        addrtype = draw(type_strategy)
        payload = draw(_PAYLOADS.get(addrtype.upper(), _ANY_TEXT))
        address = encode(addrtype, payload, draw(domain_strategy))
        if variants:
            prefix = draw(_PREFIX_CASES)
            if prefix is not None:
                address = mangle(address, prefix)
            if draw(st.booleans()):
                address = mangle(address, Mangle.LOWER_HEX)
            if draw(st.booleans()):
                address = _slash_escaped(address)
        return address

    return build()


# ---------------------------------------------------------------------------
# relay tricks: the vocabulary of the relay-test battery (imcea/battery.toml)

#: The encapsulating types of the battery's layers, SMTP (two layers) the most frequent.
_ENCAPSULATING_TYPES = tuple(layer.addrtype for layer in LAYERS.values())


def _quote(local: str) -> str:
    return '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _with_domain(address: str, domain: str) -> str:
    """*address* used as a local part at *domain* with the percent hack (KB Q244346)."""
    return address.replace("@", "%") + "@" + domain


def _dress(
    address: str,
    *,
    route: str | None,
    brackets: bool,
    mangles: Sequence[Mangle | None],
) -> str:
    """The outer form of a trick: case and escape mangles, source route, brackets.

    The prefix and escape mangles apply to an encapsulated address only (one with the
    upper-case ``IMCEA`` prefix, before any of them).
    """
    encapsulated = address.startswith("IMCEA")
    for how in mangles:
        if how is None:
            continue
        if how in (Mangle.UPPER_DOMAIN, Mangle.TRAILING_DOT) or encapsulated:
            address = mangle(address, how)
    if route is not None:
        address = f"{route}:{address}"
        brackets = True
    return f"<{address}>" if brackets else address


def relay_tricks(
    local_domains: Sequence[str] = ("mail.example",),
    remote_domains: Sequence[str] = ("relay-target.example",),
    *,
    server_ips: Sequence[str] = ("192.0.2.10",),
    max_depth: int = 4,
) -> st.SearchStrategy[str]:
    """Recipient paths built from the vocabulary of relay tests.

    Each value is one ``RCPT TO`` path aimed at a domain of *remote_domains* (or at an
    address literal that is not the server's) through a server that owns
    *local_domains* and the address literals of *server_ips*.  The vocabulary is the
    relay-test battery's (:data:`imcea.battery.FORMS`, ``ROUTES``, ``LAYERS`` and
    :class:`~imcea.battery.Mangle`): the plain address, the percent hack, quoted local
    parts, two at signs, escaped at signs, bang paths, address literals; these wrapped
    again (percent hack or quoting of a whole address) and encapsulated with
    :func:`imcea.encode` (``SMTP``, ``MAILTO``, ``EX``, ``INVALID``), from 0 to
    *max_depth* levels deep (the default, 4, is past the IMS's bound of 3 levels of
    encapsulation); and then the outer form varied: an RFC 821 source route, angle
    brackets, the domain in upper case or with a trailing dot, the ``IMCEA`` prefix in
    lower or mixed case (KB Q271575), lower-case hex, and a broken escape (``+4O``).
    """
    local = _check_domains(local_domains, "local_domains", literals=False)
    remote = _check_domains(remote_domains, "remote_domains", literals=False)
    if isinstance(server_ips, str) or not server_ips:
        raise InvalidArgument(f"server_ips: expected a non-empty list, got {server_ips!r}")
    try:
        servers = [parse_ip(ip, key="server_ips") for ip in server_ips]
    except Error as exc:
        raise InvalidArgument(str(exc)) from None
    if max_depth < 0:
        raise InvalidArgument(f"max_depth: expected 0 or more, got {max_depth!r}")
    local_names = st.sampled_from(local)
    literal_texts = st.sampled_from([literal_text(ip) for ip in servers])
    ours = st.one_of(local_names, literal_texts.map("[{}]".format))

    base = st.builds(
        lambda template, user, remote_name, local_name, ip, other: template.format(
            user=user, remote=remote_name, local=local_name, ip=ip, other=other
        ),
        st.sampled_from(list(FORMS.values())),
        _USERS,
        st.sampled_from(remote),
        local_names,
        literal_texts,
        st.ip_addresses().filter(lambda ip: ip not in servers).map(literal_text),
    )
    routes = st.one_of(
        st.none(),
        st.builds(
            lambda template, local_name, ip: template.format(local=local_name, ip=ip),
            st.sampled_from(list(ROUTES.values())),
            local_names,
            literal_texts,
        ),
    )
    wrappers = st.sampled_from(["encode", "encode", "encode", "percent", "quote"])
    encapsulating = st.sampled_from(_ENCAPSULATING_TYPES)

    @st.composite
    def build(draw: st.DrawFn) -> str:
        address = draw(base)
        # each level wraps the whole address: encapsulated, or as a local part of ours
        for _ in range(draw(st.integers(0, max_depth))):
            wrapper, domain = draw(wrappers), draw(ours)
            if wrapper == "encode":
                address = encode(draw(encapsulating), address, domain)
            elif wrapper == "percent":
                address = _with_domain(address, domain)
            else:
                address = f"{_quote(address)}@{domain}"
        return _dress(
            address,
            route=draw(routes),
            brackets=draw(st.booleans()),
            mangles=[draw(_PREFIX_CASES), draw(_ESCAPES), draw(_DOMAIN_CASES)],
        )

    return build()


_DOMAIN_CASES = st.sampled_from([None, None, Mangle.UPPER_DOMAIN, Mangle.TRAILING_DOT])
_ESCAPES = st.sampled_from([None, None, Mangle.LOWER_HEX, Mangle.BAD_ESCAPE])
_PREFIX_CASES = st.sampled_from([None, None, None, Mangle.LOWER_PREFIX, Mangle.MIXED_PREFIX])


# ---------------------------------------------------------------------------
# client addresses


def _ip_of(version: int, value: int) -> IPAddress:
    if version == 4:
        return ipaddress.IPv4Address(value)
    return ipaddress.IPv6Address(value)


def _selected(settings: Settings, lists: Sequence[str]) -> list[NetworkSet]:
    if not isinstance(settings, Settings):
        raise InvalidArgument(f"settings: expected an imcea.Settings, got {settings!r}")
    if isinstance(lists, str) or not lists:
        raise InvalidArgument(f"lists: expected a non-empty list of names, got {lists!r}")
    out = []
    for name in lists:
        if name not in NETWORK_LISTS:
            raise InvalidArgument(f"lists: {name!r} is not one of {', '.join(NETWORK_LISTS)}")
        out.append(getattr(settings.restrictions, name))
    return out


def _inside(network: Network) -> st.SearchStrategy[IPAddress]:
    """Addresses that *network* matches: its address with any host bits (any mask)."""
    host = ~network.mask & _FULL[network.version]
    return st.integers(0, host).map(
        lambda bits: _ip_of(network.version, network.address | (bits & host))
    )


def _near_misses(network: Network) -> st.SearchStrategy[IPAddress]:
    """Addresses that *network* does not match: one bit of the mask flipped."""
    mask_bits = [i for i in range(network.mask.bit_length()) if network.mask >> i & 1]
    host = ~network.mask & _FULL[network.version]
    return st.builds(
        lambda bit, bits: _ip_of(network.version, (network.address | (bits & host)) ^ (1 << bit)),
        st.sampled_from(mask_bits),
        st.integers(0, host),
    )


def client_ips(
    settings: Settings,
    inside: bool | None = None,
    *,
    lists: Sequence[str] = NETWORK_LISTS,
    versions: Sequence[int] = (4, 6),
) -> st.SearchStrategy[IPAddress]:
    """IP addresses inside or outside the network lists of *settings*.

    ``inside=True``: addresses that some entry of the selected *lists* (of
    ``restrictions.allow``, ``internal`` and ``deny``) matches; ``inside=False``:
    addresses that none of them matches; ``None``: either.  *versions* are the IP
    versions to draw (4, 6).  Values are ``ipaddress`` objects (``str()`` them for
    text).

    Matching is the IMS's ``(ip AND mask) == address`` with any mask, so entries with
    non-contiguous masks are handled exactly, not approximated; entries with host bits
    outside their mask match nothing and are skipped.  Outside addresses are random
    addresses and near misses of each entry (one mask bit flipped), filtered with the
    settings' own matching: when the lists cover nearly the whole address space of the
    versions asked for, few candidates survive and Hypothesis may report a health
    check failure.  Raises ``InvalidArgument`` when nothing can be drawn (no matchable
    entry to be inside of; lists that cover every address of the versions asked for).
    """
    sets = _selected(settings, lists)
    if isinstance(versions, int | str) or not versions or not set(versions) <= {4, 6}:
        raise InvalidArgument(f"versions: expected a list of 4 and/or 6, got {versions!r}")
    wanted = set(versions)
    networks = [net for group in sets for net in group if net.matchable and net.version in wanted]
    names = ", ".join(f"restrictions.{name}" for name in lists)

    def is_inside(ip: IPAddress) -> bool:
        return any(ip in group for group in sets)

    inner: st.SearchStrategy[IPAddress] | None = None
    if networks:
        inner = st.sampled_from(networks).flatmap(_inside)
    elif inside:
        raise InvalidArgument(
            f"no entry of {names} matches any IPv{'/IPv'.join(map(str, sorted(wanted)))} address"
        )

    # a matchable /0 entry covers its whole version: nothing of that version is outside
    open_versions = [
        v for v in sorted(wanted) if not any(n.mask == 0 and n.version == v for n in networks)
    ]
    outer: st.SearchStrategy[IPAddress] | None = None
    if open_versions:
        candidates: list[st.SearchStrategy[IPAddress]] = []
        if 4 in open_versions:
            candidates.append(st.ip_addresses(v=4))
        if 6 in open_versions:
            candidates.append(st.ip_addresses(v=6))
        flippable = [n for n in networks if n.mask and n.version in open_versions]
        if flippable:
            candidates.append(st.sampled_from(flippable).flatmap(_near_misses))
        outer = st.one_of(candidates).filter(lambda ip: not is_inside(ip))
    elif inside is False:
        raise InvalidArgument(f"{names} cover every address of the IP versions asked for")

    if inside is True:
        assert inner is not None
        return inner
    if inside is False:
        assert outer is not None
        return outer
    choices = [s for s in (inner, outer) if s is not None]
    return st.one_of(choices)


# ---------------------------------------------------------------------------
# whole settings

_V4_POOL = ["192.168.0.0", "192.168.0.1", "10.0.0.0", "10.0.0.1", "203.0.113.0", "192.0.2.10"]


def _dotted(mask: int) -> str:
    return str(ipaddress.IPv4Address(mask))


def _prefix_mask(length: int) -> int:
    return _FULL[4] ^ (_FULL[4] >> length)


def _cidr4(base: str, length: int) -> str:
    network = ipaddress.IPv4Network(f"{base}/{length}", strict=False)
    return f"{network.network_address}/{length}"


def _dotted4(base: str, length: int) -> str:
    network = ipaddress.IPv4Network(f"{base}/{length}", strict=False)
    return f"{network.network_address}/{_dotted(_prefix_mask(length))}"


def _non_contiguous4(base: str, mask: int) -> str:
    address = int(ipaddress.IPv4Address(base)) & mask
    return f"{ipaddress.IPv4Address(address)}/{_dotted(mask)}"


def _cidr6(base: IPAddress, length: int) -> str:
    return str(ipaddress.IPv6Network(f"{base}/{length}", strict=False))


_V4_BASES = st.one_of(st.sampled_from(_V4_POOL), st.ip_addresses(v=4).map(str))
# Network entries as the IMS wrote them: IP, IP/MASK (any mask), IP/len; IPv6 CIDR.
_ENTRIES = st.one_of(
    _V4_BASES,
    st.builds(_cidr4, _V4_BASES, st.integers(8, 32)),
    st.builds(_dotted4, _V4_BASES, st.integers(8, 32)),
    st.builds(_non_contiguous4, _V4_BASES, st.integers(0, _FULL[4])),
    st.builds("{}/{}".format, _V4_BASES, st.integers(0, 32)),  # host bits may be set
    st.builds(_cidr6, st.ip_addresses(v=6), st.integers(16, 128)),
)
_REROUTE_TARGETS = st.one_of(_HOSTNAMES, st.ip_addresses(v=4).map(_literal))
_ROUTE_ACTIONS = st.sampled_from(["inbound", "inbound", "reroute", "relay"])
_SERVERS = st.lists(
    st.one_of(st.sampled_from(_V4_POOL).map(ipaddress.IPv4Address), st.ip_addresses()),
    max_size=3,
    unique=True,
)
_MAILBOXES = st.builds(
    "{}{}{}".format,
    st.sampled_from(_LOWER),
    st.text(_LOWER + _DIGITS + "_-", max_size=8),
    st.sampled_from(["", ".smith", ".o-brien"]),
)
_PROXY_PREFIXES = st.sampled_from(["", "", "SMTP:", "smtp:"])
_DN_PREFIXES = st.sampled_from(["", "X500:", "EX:"])


@st.composite
def _routing(draw: st.DrawFn, pool: list[str]) -> tuple[Route, ...]:
    routes = []
    for _ in range(draw(st.integers(0, 5))):
        domain = pool[draw(st.integers(0, len(pool) - 1))]
        if draw(st.booleans()):
            domain = f"{draw(_LABEL)}.{domain}"
        exact = draw(st.integers(0, 3)) == 0
        action = draw(_ROUTE_ACTIONS)
        to = draw(_REROUTE_TARGETS) if action == "reroute" else None
        routes.append(Route(("#" if exact else "") + domain, action, to))
    return tuple(routes)


@st.composite
def _restrictions(draw: st.DrawFn, servers: tuple[IPAddress, ...]) -> Restrictions:
    internal = []
    for _ in range(draw(st.integers(0, 2))):
        if len(servers) > 0 and draw(st.booleans()):  # the internal interface itself
            internal.append(str(servers[draw(st.integers(0, len(servers) - 1))]))
        else:
            internal.append(draw(_ENTRIES))
    return Restrictions(
        authenticated=draw(st.booleans()),
        allow=draw(st.lists(_ENTRIES, max_size=3)),
        internal=internal,
        deny=draw(st.lists(_ENTRIES, max_size=2)),
    )


@st.composite
def _directory(draw: st.DrawFn, pool: list[str], servers: tuple[IPAddress, ...]) -> Directory:
    domains = pool + [_literal(ip) for ip in servers]
    entries = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 2)):
            domain = domains[draw(st.integers(0, len(domains) - 1))]
            entries.append(f"{draw(_PROXY_PREFIXES)}{draw(_MAILBOXES)}@{domain}")
        else:
            entries.append(draw(_DN_PREFIXES) + draw(_DN_PAYLOADS))
    return Directory(entries)


_GATEWAYS = st.one_of(
    st.none(),
    st.frozensets(
        st.one_of(
            st.sampled_from(["X400", "MS", "CCMAIL", "NOTES", "FAX"]),
            st.text(_LOWER.upper() + _DIGITS, min_size=1, max_size=9),
        ),
        max_size=4,
    ),
)


def _type_list(types: Collection[str] | None) -> list[str] | None:
    """The gateway types as the list ``Settings`` takes (it refuses a set)."""
    return None if types is None else sorted(types)


def settings(
    *,
    reroute: st.SearchStrategy[bool] | None = None,
    routing: st.SearchStrategy[Sequence[Route]] | None = None,
    restrictions: st.SearchStrategy[Restrictions] | None = None,
    server_addresses: st.SearchStrategy[Sequence[IPAddress]] | None = None,
    directory: st.SearchStrategy[Directory | None] | None = None,
    gateways: st.SearchStrategy[Collection[str] | None] | None = None,
    release: st.SearchStrategy[Release] | None = None,
    site_connector: st.SearchStrategy[bool] | None = None,
) -> st.SearchStrategy[Settings]:
    """Whole :class:`~imcea.Settings` values.

    Every field is drawn, unless a strategy is given for it (``release=st.just(
    imcea.Release.SP3)`` to test the fixed release only).  The defaults make values
    whose parts refer to each other: routing entries, the directory and reroute targets
    share a small pool of domains; ``restrictions.internal`` often holds a server
    address; the directory holds SMTP addresses (some with ``SMTP:``), ``user@[ip]``
    entries and legacy DNs; network entries come in every form the IMS reads, IPv6 and
    non-contiguous masks and unmatchable entries (host bits outside the mask) included.
    """

    @st.composite
    def build(draw: st.DrawFn) -> Settings:
        pool = draw(st.lists(_HOSTNAMES, min_size=1, max_size=4, unique=True))
        servers = tuple(draw(server_addresses if server_addresses is not None else _SERVERS))
        return Settings(
            reroute=draw(reroute if reroute is not None else st.booleans()),
            routing=draw(routing if routing is not None else _routing(pool)),
            restrictions=draw(restrictions if restrictions is not None else _restrictions(servers)),
            server_addresses=servers,
            directory=(
                draw(directory)
                if directory is not None
                else draw(_directory(pool, servers))
                if draw(st.booleans())
                else None
            ),
            gateways=_type_list(draw(gateways if gateways is not None else _GATEWAYS)),
            release=draw(release if release is not None else st.sampled_from(Release)),
            site_connector=draw(site_connector if site_connector is not None else st.booleans()),
        )

    return build()
