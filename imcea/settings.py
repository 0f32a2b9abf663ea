"""The Exchange 5.5 Internet Mail Service routing settings, as immutable values.

Everything is validated and normalised once, at construction, so that a decision only
looks things up (parse once, evaluate many).  The defaults are those of DESIGN §2.1:
rerouting off (the safe setting KB Q237927 recommends), no restrictions, release SP3.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Mapping, Sequence, Set
from pathlib import Path as FilePath
from typing import Any

import attrs

from .domains import DomainError, normalise_domain
from .errors import Error, SettingsError, shorten
from .networks import IPAddress, NetworkSet, parse_ip, parse_network
from .tomlfile import load_toml

__all__ = [
    "Directory",
    "Release",
    "Restrictions",
    "Route",
    "RouteAction",
    "Settings",
    "load_settings",
]

#: Encapsulated address types with rules of their own (DESIGN §2.4): never "gateways".
SPECIAL_TYPES = frozenset({"SMTP", "MAILTO", "EX", "X500", "INVALID"})


class Release(enum.StrEnum):
    """The IMS build: ``SP2`` before the KB Q237927 / MS99-027 fix, ``SP3`` after it."""

    SP2 = "SP2"
    SP3 = "SP3"


class RouteAction(enum.StrEnum):
    """What a routing-table entry does with a matching domain (Routing tab, KB Q169683)."""

    INBOUND = "inbound"
    REROUTE = "reroute"
    RELAY = "relay"


def _expect_bool(value: object, key: str) -> bool:
    if type(value) is not bool:
        raise SettingsError(f"{key}: expected true or false, got {shorten(value)}")
    return value


def _expect_list(value: object, key: str) -> list[Any]:
    if isinstance(value, str | bytes | Mapping | Set) or not isinstance(value, Iterable):
        raise SettingsError(f"{key}: expected a list, got {shorten(value)}")
    return list(value)


def _domain(value: object, key: str, *, allow_literal: bool = False) -> str:
    """Normalise a host name (or an ``[ip]`` literal), or raise naming *key*."""
    if not isinstance(value, str):
        raise SettingsError(f"{key}: expected a domain name, got {shorten(value)}")
    text = value.strip()
    if allow_literal and text.startswith("[") and text.endswith("]"):
        from .paths import Path, parse_path

        parsed = parse_path(f"x@{text}")
        if isinstance(parsed, Path) and parsed.domain is not None:
            return parsed.domain
        raise SettingsError(f"{key}: {shorten(value)} is not an address literal")
    try:
        return normalise_domain(text)
    except DomainError:
        raise SettingsError(f"{key}: {shorten(value)} is not a valid domain") from None


@attrs.frozen(init=False)
class Route:
    """One routing-table entry: *domain* -> *action* (and *to* for a reroute).

    A domain written ``#sea.com`` matches exactly ``sea.com``; a plain ``sea.com``
    matches it and every subdomain, on whole labels (KB Q169683, Q217217).
    """

    domain: str
    action: RouteAction
    to: str | None
    exact: bool

    def __init__(
        self, domain: str, action: str, to: str | None = None, *, key: str = "route"
    ) -> None:
        if not isinstance(domain, str):
            raise SettingsError(f"{key}.domain: expected a domain name, got {shorten(domain)}")
        exact = domain.startswith("#")
        try:
            name = _domain(domain[1:] if exact else domain, f"{key}.domain")
        except SettingsError:
            raise SettingsError(f"{key}.domain: {shorten(domain)} is not a valid domain") from None
        try:
            act = RouteAction(action)
        except ValueError:
            choices = ", ".join(repr(a.value) for a in RouteAction)
            raise SettingsError(
                f"{key}.action: {shorten(action)} is not one of {choices}"
            ) from None
        if act is RouteAction.REROUTE:
            if to is None:
                raise SettingsError(f"{key}.to: a 'reroute' entry needs 'to' (the domain to use)")
            target: str | None = _domain(to, f"{key}.to", allow_literal=True)
        elif to is not None:
            raise SettingsError(
                f"{key}.to: {shorten(to)} given, but only a 'reroute' entry takes 'to'"
            )
        else:
            target = None
        self.__attrs_init__(name, act, target, exact)

    def __str__(self) -> str:
        written = ("#" if self.exact else "") + self.domain
        return f"{written} -> {self.action.value}" + (f" {self.to}" if self.to else "")


def _lookup_form(domain: str) -> str | None:
    """*domain* in normal form for a lookup, or ``None`` when it is not a domain.

    A name already in normal form (the hot path: paths are normalised when parsed)
    costs one comparison; anything else goes through :func:`normalise_domain`.
    """
    if domain.isascii() and domain == domain.lower() and not domain.endswith("."):
        return domain
    if domain.startswith("[") and domain.endswith("]"):
        return domain  # an address literal, already in normal form from parse_path
    try:
        return normalise_domain(domain)
    except DomainError:
        return None


def _route(value: object, key: str) -> Route:
    if isinstance(value, Route):
        return value
    if isinstance(value, Mapping):
        _no_unknown_keys(value, {"domain", "action", "to"}, key)
        for needed in ("domain", "action"):
            if needed not in value:
                raise SettingsError(f"{key}.{needed}: missing")
        return Route(value["domain"], value["action"], value.get("to"), key=key)
    if isinstance(value, tuple) and len(value) in (2, 3):
        return Route(*value, key=key)
    raise SettingsError(
        f"{key}: expected a routing entry (domain, action, to), got {shorten(value)}"
    )


def _routes(value: object) -> tuple[Route, ...]:
    return tuple(_route(v, f"routing[{i}]") for i, v in enumerate(_expect_list(value, "routing")))


def _networks(value: object, key: str) -> NetworkSet:
    if isinstance(value, NetworkSet):
        return value
    return NetworkSet(_expect_list(value, key), key=key)


# converters: each names its key in its errors
def _authenticated_flag(value: object) -> bool:
    return _expect_bool(value, "restrictions.authenticated")


def _allow_list(value: object) -> NetworkSet:
    return _networks(value, "restrictions.allow")


def _internal_list(value: object) -> NetworkSet:
    return _networks(value, "restrictions.internal")


def _deny_list(value: object) -> NetworkSet:
    return _networks(value, "restrictions.deny")


def _reroute_flag(value: object) -> bool:
    return _expect_bool(value, "reroute")


def _site_connector_flag(value: object) -> bool:
    return _expect_bool(value, "site_connector")


@attrs.frozen
class Restrictions:
    """The Routing Restrictions dialog (KB Q193922, Q196626, Q260562).

    ``authenticated``, ``allow`` and ``internal`` each permit relaying; ``deny`` lists
    hosts that can never route.  Nothing selected means an open relay.
    """

    authenticated: bool = attrs.field(default=False, converter=_authenticated_flag)
    allow: NetworkSet = attrs.field(factory=NetworkSet, converter=_allow_list)
    internal: NetworkSet = attrs.field(factory=NetworkSet, converter=_internal_list)
    deny: NetworkSet = attrs.field(factory=NetworkSet, converter=_deny_list)

    @property
    def selected(self) -> bool:
        """Whether any restriction that permits relaying is selected (else: open relay)."""
        return self.authenticated or bool(self.allow) or bool(self.internal)


def _restrictions(value: object) -> Restrictions:
    if isinstance(value, Restrictions):
        return value
    if not isinstance(value, Mapping):
        raise SettingsError(f"restrictions: expected a table, got {shorten(value)}")
    _no_unknown_keys(value, {"authenticated", "allow", "internal", "deny"}, "restrictions")
    return Restrictions(**value)


@attrs.frozen(init=False)
class Directory:
    """The addresses the global address list knows, compared case-insensitively.

    Entries are SMTP addresses (``user@domain``, ``user@[ip]``) and legacy Exchange DNs
    (``/o=.../cn=...``), optionally with the ``SMTP:``, ``X500:`` or ``EX:`` prefix that
    Exchange export tools write.
    """

    entries: tuple[str, ...]
    addresses: frozenset[str]
    dns: frozenset[str]

    def __init__(
        self,
        entries: Iterable[str] = (),
        *,
        key: str = "directory",
        locations: Sequence[str] | None = None,
    ) -> None:
        written: list[str] = []
        addresses: set[str] = set()
        dns: set[str] = set()
        for i, entry in enumerate(_expect_list(entries, key)):
            where = locations[i] if locations is not None else f"{key}[{i}]"
            if not isinstance(entry, str):
                raise SettingsError(f"{where}: expected an address, got {shorten(entry)}")
            text = entry.strip()
            written.append(text)
            kind, sep, rest = text.partition(":")
            upper = kind.upper()
            if sep and upper in ("SMTP", "X500", "EX"):
                text = rest.strip()
            if text.startswith("/"):
                if upper == "SMTP" and sep:
                    raise SettingsError(f"{where}: {shorten(entry)} is an SMTP: entry holding a DN")
                dns.add(text.lower())
                continue
            addresses.add(_directory_address(text, entry, where))
        self.__attrs_init__(tuple(written), frozenset(addresses), frozenset(dns))

    def __len__(self) -> int:
        return len(self.entries)

    def has_address(self, local: str, domain: str) -> bool:
        """Whether ``local@domain`` is a known SMTP address (the domain in any form)."""
        if not (domain.isascii() and domain.islower() and domain[-1:] != "."):
            name = _lookup_form(domain)  # not in normal form, as paths give it
            if name is None:
                return False
            domain = name
        return f"{local.lower()}@{domain}" in self.addresses

    def has_dn(self, dn: str) -> bool:
        """Whether the legacy Exchange DN is known (case-insensitive)."""
        return dn.lower() in self.dns


def _directory_address(text: str, entry: str, where: str) -> str:
    from .paths import Path, parse_path

    parsed = parse_path(text)
    if not isinstance(parsed, Path) or parsed.domain is None:
        why = parsed.reason if not isinstance(parsed, Path) else "no domain"
        raise SettingsError(f"{where}: {shorten(entry)} is not an address or a legacy DN ({why})")
    return f"{parsed.local.lower()}@{parsed.domain}"


def _directory(value: object) -> Directory | None:
    if value is None or isinstance(value, Directory):
        return value
    return Directory(_expect_list(value, "directory"))


def _server_addresses(value: object) -> tuple[IPAddress, ...]:
    out = []
    for i, item in enumerate(_expect_list(value, "server_addresses")):
        try:
            out.append(parse_ip(item, key=f"server_addresses[{i}]"))
        except Error as exc:
            raise SettingsError(str(exc)) from None
    return tuple(out)


def _gateways(value: object) -> frozenset[str] | None:
    if value is None:
        return None
    items = sorted(value, key=str) if isinstance(value, Set) else _expect_list(value, "gateways")
    out = set()
    for i, item in enumerate(items):
        if not isinstance(item, str) or not (1 <= len(item) <= 9 and item.isascii()):
            raise SettingsError(f"gateways[{i}]: {shorten(item)} is not an address type")
        if not item.isalnum():
            raise SettingsError(f"gateways[{i}]: {shorten(item)} is not an address type")
        out.add(item.upper())
    return frozenset(out)


def _release(value: object) -> Release:
    if isinstance(value, str):
        try:
            return Release(value.upper())
        except ValueError:
            pass
    raise SettingsError(f"release: {shorten(value)} is not 'SP2' or 'SP3'")


@attrs.frozen
class Settings:
    """The IMS routing settings one decision is made against (DESIGN §2.1).

    ``directory=None`` means recipients are not checked; ``gateways=None`` means every
    encapsulated type without a rule of its own can be routed by a connector.
    """

    reroute: bool = attrs.field(default=False, converter=_reroute_flag)
    routing: tuple[Route, ...] = attrs.field(default=(), converter=_routes)
    restrictions: Restrictions = attrs.field(factory=Restrictions, converter=_restrictions)
    server_addresses: tuple[IPAddress, ...] = attrs.field(default=(), converter=_server_addresses)
    directory: Directory | None = attrs.field(default=None, converter=_directory)
    gateways: frozenset[str] | None = attrs.field(default=None, converter=_gateways)
    release: Release = attrs.field(default=Release.SP3, converter=_release)
    site_connector: bool = attrs.field(default=False, converter=_site_connector_flag)
    # lookup tables, derived once from the fields above
    _exact: dict[str, Route] = attrs.field(init=False, repr=False, eq=False)
    _suffix: dict[str, Route] = attrs.field(init=False, repr=False, eq=False)
    _suffix_ends: frozenset[str] = attrs.field(init=False, repr=False, eq=False)
    _servers: frozenset[IPAddress] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        exact: dict[str, Route] = {}
        suffix: dict[str, Route] = {}
        for route in self.routing:
            (exact if route.exact else suffix).setdefault(route.domain, route)
        object.__setattr__(self, "_exact", exact)
        object.__setattr__(self, "_suffix", suffix)
        # the last labels of the plain entries: a name ending otherwise matches none of them
        ends = frozenset(name.rpartition(".")[2] for name in suffix)
        object.__setattr__(self, "_suffix_ends", ends)
        object.__setattr__(self, "_servers", frozenset(self.server_addresses))

    def route_for(self, domain: str) -> Route | None:
        """The routing-table entry for *domain* (in normal form), or ``None`` (DESIGN §2.2).

        Exact ``#`` entries first; then the most specific plain entry on whole labels,
        wherever it stands in the list.
        """
        name = _lookup_form(domain)
        return None if name is None else self.lookup_route(name)

    def lookup_route(self, name: str) -> Route | None:
        """:meth:`route_for` of a domain already in normal form (as paths give it):
        a dictionary lookup per label of *name*, when its last label ends some entry."""
        route = self._exact.get(name)
        if route is not None:
            return route
        if name.rpartition(".")[2] not in self._suffix_ends:
            return None  # most names of a busy server's mail: no plain entry shares the top
        suffix = self._suffix
        while True:
            route = suffix.get(name)
            if route is not None:
                return route
            dot = name.find(".")
            if dot < 0:
                return None
            name = name[dot + 1 :]

    def is_server_address(self, ip: IPAddress) -> bool:
        """Whether *ip* is one of the server's own addresses."""
        return ip in self._servers

    def routes_type(self, addrtype: str) -> bool:
        """Whether a connector routes encapsulated addresses of *addrtype*."""
        if addrtype in SPECIAL_TYPES:
            return False
        return self.gateways is None or addrtype in self.gateways


_TOP_KEYS = {
    "reroute",
    "release",
    "routing",
    "restrictions",
    "server_addresses",
    "directory",
    "gateways",
    "site_connector",
}


def _no_unknown_keys(table: Mapping[Any, Any], known: set[str], where: str) -> None:
    for name in table:
        if name not in known:
            prefix = f"{where}." if where else ""
            expected = ", ".join(sorted(known))
            raise SettingsError(f"{prefix}{name}: unknown key (expected one of {expected})")


def _read_list_file(base: FilePath, name: str, key: str) -> tuple[list[str], list[str]]:
    """The entries of the list file *name* and where each stands (``key (file line N)``).

    One entry per line; blank lines and lines starting with ``#`` are skipped.
    """
    path = base / name
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SettingsError(f"{key}: the file {name!r} is not valid UTF-8") from None
    except OSError as exc:
        raise SettingsError(f"{key}: cannot read the file {name!r}: {exc.strerror}") from None
    entries: list[str] = []
    locations: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.strip()
        if entry and not entry.startswith("#"):
            entries.append(entry)
            locations.append(f"{key} ({path.name} line {number})")
    return entries, locations


def _looks_like_a_network(text: str) -> bool:
    """Whether *text* is a network entry (a common slip for a one-entry list)."""
    try:
        parse_network(text)
    except SettingsError:
        return False
    return True


def load_settings(source: str | os.PathLike[str] | Mapping[str, Any]) -> Settings:
    """Settings from a TOML file or from a mapping of the same shape (DESIGN §3).

    A ``directory``, or a ``restrictions`` network list, given as a string names a
    file with one entry per line (blank lines and ``#`` comments skipped), relative to
    the settings file (to the current directory for a mapping): the fast way to load
    very long lists.  Any problem raises :class:`SettingsError` naming the
    key path and the value; nothing half-loaded is returned.
    """
    if isinstance(source, Mapping):
        data: Mapping[str, Any] = source
        base = FilePath.cwd()
        where = "settings"
    elif isinstance(source, str | os.PathLike):
        path = FilePath(source)
        where = str(path)
        data = load_toml(
            path.read_bytes, "settings file", lambda message: SettingsError(f"{where}: {message}")
        )
        base = path.parent
    else:
        raise SettingsError(f"settings: expected a file path or a mapping, got {shorten(source)}")

    _no_unknown_keys(data, _TOP_KEYS, "")
    values = dict(data)
    directory = values.get("directory")
    if isinstance(directory, str):
        entries, locations = _read_list_file(base, directory, "directory")
        values["directory"] = Directory(entries, locations=locations)
    elif directory is not None and not isinstance(directory, list | tuple | Directory):
        raise SettingsError(f"directory: expected a file name or a list, got {shorten(directory)}")
    restrictions = values.get("restrictions")
    if isinstance(restrictions, Mapping):
        table = dict(restrictions)
        for name in ("allow", "internal", "deny"):
            value = table.get(name)
            if isinstance(value, str):  # a file of networks, one per line
                key = f"restrictions.{name}"
                if _looks_like_a_network(value):
                    raise SettingsError(
                        f"{key}: expected a list of networks or a file name, got {shorten(value)}"
                    )
                entries, locations = _read_list_file(base, value, key)
                table[name] = NetworkSet(entries, key=key, locations=locations)
        values["restrictions"] = table
    try:
        return Settings(**values)
    except SettingsError:
        raise
    except (TypeError, Error) as exc:  # pragma: no cover - converters raise SettingsError
        raise SettingsError(f"{where}: {exc}") from None
