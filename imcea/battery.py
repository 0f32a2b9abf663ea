"""The classic relay-test battery: the tricks of nmap's smtp-open-relay, the MAPS and
abuse.net relay testers and the IMCEA encapsulation tricks, each a MAIL FROM / RCPT TO pair.

The tricks are data, ``battery.toml`` in this package, read once when the module is
imported: a vocabulary of recipient forms, source routes and encapsulation layers, and
the testers' tricks written with it.  This module checks and expands that data into
:class:`Trick` values; :mod:`imcea.strategies` builds its relay tricks from the same
vocabulary (:data:`FORMS`, :data:`ROUTES`, :data:`LAYERS`, :class:`Mangle`).
"""

from __future__ import annotations

import enum
import ipaddress
import os
import re
import string
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from .codec import encode
from .errors import Error
from .tomlfile import load_toml

__all__ = [
    "ABUSE_NET",
    "BATTERY",
    "ENCAPSULATED",
    "FORMS",
    "LAYERS",
    "MAPS",
    "NMAP",
    "ROUTES",
    "Battery",
    "BatteryError",
    "Layer",
    "Mangle",
    "Trick",
    "literal_text",
    "load_battery",
    "mangle",
    "tricks",
]


class BatteryError(Error):
    """The battery data is not readable or not valid; the message names the file, the
    entry and the key."""


class Mangle(enum.StrEnum):
    """A deliberate change to an address, made after :func:`~imcea.codec.encode`.

    The battery's tricks use the first three; :func:`imcea.strategies.relay_tricks` uses
    them all.
    """

    LOWER_PREFIX = "lower_prefix"  # ``imceasmtp-...``: the outermost prefix in lower case
    LOWER_HEX = "lower_hex"  # ``+2e`` for ``+2E``: every escape with lower-case hex digits
    BAD_ESCAPE = "bad_escape"  # the first ``+40`` (the '@') retyped as ``+4O`` (letter O)
    MIXED_PREFIX = "mixed_prefix"  # ``ImCeAsMtP-...``: the outermost prefix in mixed case
    UPPER_DOMAIN = "upper_domain"  # the domain in upper case (not an address literal)
    TRAILING_DOT = "trailing_dot"  # the domain with a trailing dot (not an address literal)


_HEX_ESCAPE = re.compile(r"\+([0-9A-F]{2})")


def mangle(address: str, how: Mangle) -> str:
    """*address* changed as *how* says.

    The prefix and escape mangles change the local part (the prefix is what precedes
    its first ``-``), the domain mangles a domain that is not an address literal; an
    address they do not apply to is returned unchanged.
    """
    local, at, domain = address.rpartition("@")
    if not at:
        local, domain = address, ""
    if how is Mangle.LOWER_PREFIX or how is Mangle.MIXED_PREFIX:
        dash = local.find("-")
        if dash > 0:
            head = local[:dash]
            if how is Mangle.LOWER_PREFIX:
                head = head.lower()
            else:
                head = "".join(c.lower() if i % 2 else c.upper() for i, c in enumerate(head))
            local = head + local[dash:]
    elif how is Mangle.LOWER_HEX:
        local = _HEX_ESCAPE.sub(lambda m: "+" + m.group(1).lower(), local)
    elif how is Mangle.BAD_ESCAPE:
        local = local.replace("+40", "+4O", 1)
    elif at and not domain.startswith("["):
        domain = domain.upper() if how is Mangle.UPPER_DOMAIN else domain + "."
    return local + at + domain


def literal_text(ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The text inside an address literal for *ip* (RFC 5321 §4.1.3: ``IPv6:`` prefixed
    for IPv6).  Raises :class:`imcea.Error` when *ip* is not an IP address."""
    if isinstance(ip, str):
        try:
            ip = ipaddress.ip_address(ip)
        except ValueError:
            raise Error(f"server_ip {ip!r} is not an IP address") from None
    if isinstance(ip, ipaddress.IPv6Address):
        return f"IPv6:{ip.compressed}"
    return str(ip)


@attrs.frozen
class Layer:
    """One level of encapsulation: the type and the domain template of the outer address."""

    addrtype: str
    domain: str = "{local}"


@attrs.frozen
class Trick:
    """One relay trick: a MAIL FROM / RCPT TO template pair and where it comes from.

    Templates are ``str.format`` strings, written as the testers send them (angle brackets
    included), with the placeholders ``{user}`` (the mailbox on the relay target),
    ``{remote}`` (the third-party relay target domain), ``{local}`` (the domain or host
    name of the server under test) and ``{ip}`` (the server's address as written inside an
    address literal: ``[{ip}]`` is ``[192.0.2.10]`` or ``[IPv6:2001:db8::1]``).

    Encapsulated tricks also use ``{imcea}``, computed with :func:`imcea.codec.encode`:
    ``inner`` is the template of the innermost address, ``layers`` the encapsulations
    applied to it (innermost first), then the optional ``mangle`` alters the result.
    """

    source: str
    name: str
    description: str
    sender: str
    recipient: str
    inner: str = ""
    layers: tuple[Layer, ...] = ()
    mangle: Mangle | None = None

    def render(self, *, user: str, remote: str, local: str, server_ip: str) -> tuple[str, str]:
        """The (sender, recipient) pair with every placeholder filled.

        Raises :class:`imcea.Error` when *server_ip* is not an IP address or an
        encapsulated address cannot be encoded (for instance an invalid *local* domain).
        """
        values = {"user": user, "remote": remote, "local": local, "ip": literal_text(server_ip)}
        if self.layers:
            address = self.inner.format_map(values)
            for layer in self.layers:
                address = encode(layer.addrtype, address, layer.domain.format_map(values))
            if self.mangle is not None:
                address = mangle(address, self.mangle)
            values["imcea"] = address
        return self.sender.format_map(values), self.recipient.format_map(values)


@attrs.frozen
class Battery:
    """The battery data, checked and expanded: the vocabulary and the testers' tricks.

    ``source`` names the file read; ``forms`` are bare recipient templates, ``routes``
    RFC 821 source routes and ``layers`` encapsulations, each by name; ``groups`` the
    tricks of each tester, by the group's id, in the order of the file.
    """

    source: str
    forms: Mapping[str, str]
    routes: Mapping[str, str]
    layers: Mapping[str, Layer]
    groups: Mapping[str, tuple[Trick, ...]]

    @property
    def tricks(self) -> tuple[Trick, ...]:
        """Every trick, group after group."""
        return tuple(trick for group in self.groups.values() for trick in group)

    def group(self, ident: str) -> tuple[Trick, ...]:
        """The tricks of the group *ident*; :class:`BatteryError` when there is none."""
        try:
            return self.groups[ident]
        except KeyError:
            raise BatteryError(f"{self.source}: group {ident!r}: missing") from None


# ---------------------------------------------------------------------------
# reading the data

#: The placeholders each kind of template may use.
_TRICK_VALUES = ("user", "remote", "local", "ip")
_FORM_VALUES = (*_TRICK_VALUES, "other")  # {other}: filled by the strategies only
_SOURCE_VALUES = ("number",)

_TOP_KEYS = ("forms", "routes", "layers", "group")
_LAYER_KEYS = ("type", "domain")
_GROUP_KEYS = ("id", "source", "sender", "recipient", "inner", "trick")
_TRICK_KEYS = (
    "name",
    "description",
    "source",
    "sender",
    "route",
    "recipient",
    "inner",
    "layers",
    "mangle",
)
_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_TYPE = re.compile(r"[A-Za-z0-9]{1,9}")


class _Bad(Exception):
    """Internal: a bad value of *key*; the caller says in which entry."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key = key
        self.problem = problem


def _text(table: Mapping[str, Any], key: str) -> str:
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        raise _Bad(key, f"expected a non-empty string, got {value!r}")
    if "\n" in value:
        raise _Bad(key, "expected one line")
    return value


def _template(table: Mapping[str, Any], key: str, allowed: Sequence[str]) -> str:
    """*table*[*key*]: a ``str.format`` template using only the *allowed* placeholders."""
    value = _text(table, key)
    try:
        fields = [
            (name, spec, conversion)
            for _, name, spec, conversion in string.Formatter().parse(value)
            if name is not None
        ]
    except ValueError as exc:
        raise _Bad(key, f"{value!r} is not a template: {exc}") from None
    for name, spec, conversion in fields:
        if name not in allowed or spec or conversion:
            raise _Bad(
                key,
                f"{value!r}: {{{name}}} is not a placeholder here "
                f"(expected {', '.join('{' + a + '}' for a in allowed)})",
            )
    return value


def _check_keys(table: Mapping[str, Any], allowed: Sequence[str]) -> None:
    for key in table:
        if key not in allowed:
            raise _Bad(str(key), f"unknown key (expected one of {', '.join(allowed)})")


def _table(value: object, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Bad(key, f"expected a table, got {value!r}")
    return value


def _named(vocabulary: Mapping[str, object], what: str, table: Mapping[str, Any], key: str) -> str:
    """*table*[*key*]: the name of an entry of *vocabulary* (a form, route or layer)."""
    value = table[key]
    if not isinstance(value, str) or value not in vocabulary:
        import difflib

        close = difflib.get_close_matches(str(value), list(vocabulary), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"one of {', '.join(vocabulary)}"
        raise _Bad(key, f"{value!r} is not a {what} ({hint})")
    return value


def load_battery(path: str | os.PathLike[str] | None = None) -> Battery:
    """Read and check battery data: the file at *path*, by default the package's own.

    Raises :class:`BatteryError` naming the file, the entry (``group 2 'maps': trick 5
    'maps-05-null-sender'``) and the key.
    """
    if path is None:
        resource = resources.files("imcea").joinpath("battery.toml")
        source, reader = str(resource), resource.read_bytes
    else:
        source, reader = os.fspath(path), Path(path).read_bytes
    data = load_toml(reader, "battery", lambda message: BatteryError(f"{source}: {message}"))
    return _parse(data, source)


def _parse(data: Mapping[str, Any], source: str) -> Battery:
    def fail(where: str, bad: _Bad) -> BatteryError:
        return BatteryError(f"{source}: {where}{bad.key}: {bad.problem}")

    try:
        _check_keys(data, _TOP_KEYS)
        for key in _TOP_KEYS:
            if key not in data:
                raise _Bad(key, "missing")
        forms_table = _table(data["forms"], "forms")
        routes_table = _table(data["routes"], "routes")
        layers_table = _table(data["layers"], "layers")
        groups = data["group"]
        if not isinstance(groups, list) or not groups:
            raise _Bad("group", "expected [[group]] tables")
    except _Bad as bad:
        raise fail("", bad) from None

    try:
        forms = {str(k): _template(forms_table, k, _FORM_VALUES) for k in forms_table}
    except _Bad as bad:
        raise fail("forms: ", bad) from None
    try:
        routes = {str(k): _template(routes_table, k, _TRICK_VALUES) for k in routes_table}
    except _Bad as bad:
        raise fail("routes: ", bad) from None
    layers: dict[str, Layer] = {}
    for name, entry in layers_table.items():
        try:
            layer = _table(entry, str(name))
        except _Bad as bad:
            raise fail("layers: ", bad) from None
        try:
            _check_keys(layer, _LAYER_KEYS)
            if "type" not in layer:
                raise _Bad("type", "missing")
            addrtype = _text(layer, "type")
            if not _TYPE.fullmatch(addrtype):
                raise _Bad("type", f"{addrtype!r} is not 1-9 ASCII letters or digits")
            domain = _template(layer, "domain", _TRICK_VALUES) if "domain" in layer else None
        except _Bad as bad:
            raise fail(f"layers: {name}: ", bad) from None
        layers[str(name)] = Layer(addrtype) if domain is None else Layer(addrtype, domain)

    vocabulary = _Vocabulary(forms, routes, layers)
    expanded: dict[str, tuple[Trick, ...]] = {}
    names: dict[str, str] = {}
    for number, group in enumerate(groups, 1):
        shown = group.get("id") if isinstance(group, Mapping) else None
        where = f"group {number}" + (f" {shown!r}" if isinstance(shown, str) else "") + ": "
        try:
            table = _table(group, "group")
            _check_keys(table, _GROUP_KEYS)
            for key in ("id", "trick"):
                if key not in table:
                    raise _Bad(key, "missing")
            ident = _text(table, "id")
            if ident in expanded:
                raise _Bad("id", f"{ident!r} is already the id of a group")
            defaults = vocabulary.defaults(table)
            entries = table["trick"]
            if not isinstance(entries, list) or not entries:
                raise _Bad("trick", "expected [[group.trick]] tables")
        except _Bad as bad:
            raise fail(where, bad) from None
        members: list[Trick] = []
        for position, entry in enumerate(entries, 1):
            written = entry.get("name") if isinstance(entry, Mapping) else None
            at = f"trick {position}" + (f" {written!r}" if isinstance(written, str) else "") + ": "
            try:
                trick = vocabulary.trick(_table(entry, "trick"), defaults, position)
                if trick.name in names:
                    raise _Bad("name", f"{trick.name!r} is already a trick of {names[trick.name]}")
            except _Bad as bad:
                raise fail(where + at, bad) from None
            names[trick.name] = f"group {ident!r}"
            members.append(trick)
        expanded[ident] = tuple(members)
    return Battery(
        source,
        MappingProxyType(forms),
        MappingProxyType(routes),
        MappingProxyType(layers),
        MappingProxyType(expanded),
    )


@attrs.frozen
class _Vocabulary:
    """The checked forms, routes and layers, with which the tricks are expanded."""

    forms: dict[str, str]
    routes: dict[str, str]
    layers: dict[str, Layer]

    def defaults(self, group: Mapping[str, Any]) -> dict[str, str]:
        """The group's checked defaults: its source template, sender, recipient, inner."""
        out: dict[str, str] = {}
        if "source" in group:
            out["source"] = _template(group, "source", _SOURCE_VALUES)
        if "sender" in group:
            out["sender"] = _template(group, "sender", _TRICK_VALUES)
        for key in ("recipient", "inner"):
            if key in group:
                out[key] = self.form(group, key)
        return out

    def form(self, table: Mapping[str, Any], key: str) -> str:
        """*table*[*key*]: the name of a form that a trick can render."""
        name = _named(self.forms, "form", table, key)
        if "{other}" in self.forms[name]:
            raise _Bad(key, f"form {name!r} uses {{other}}, which a trick cannot fill")
        return name

    def trick(self, entry: Mapping[str, Any], defaults: Mapping[str, str], position: int) -> Trick:
        """One trick entry, with the group's *defaults*, as a :class:`Trick`."""
        _check_keys(entry, _TRICK_KEYS)
        merged = {**defaults, **entry}
        for key in ("name", "description"):
            if key not in entry:
                raise _Bad(key, "missing")
        for key in ("source", "sender"):
            if key not in merged:
                raise _Bad(key, "missing (and the group gives no default)")
        name = _text(entry, "name")
        if not _NAME.fullmatch(name):
            raise _Bad("name", f"{name!r} is not lower-case words joined by '-'")
        description = _text(entry, "description")
        if "source" in entry:
            source = _text(entry, "source")
        else:
            source = defaults["source"].format(number=position)
        sender = _template(merged, "sender", _TRICK_VALUES)
        if "layers" not in entry:
            for key in ("inner", "mangle"):
                if key in entry:
                    raise _Bad(key, "only an encapsulated trick (one with layers) has one")
            if "recipient" not in merged:
                raise _Bad("recipient", "missing (and the group gives no default)")
            path = self.forms[self.form(merged, "recipient")]
            if "route" in entry:
                path = f"{self.routes[_named(self.routes, 'route', entry, 'route')]}:{path}"
            return Trick(source, name, description, sender, f"<{path}>")
        for key in ("recipient", "route"):
            if key in entry:
                raise _Bad(key, "an encapsulated trick's recipient is <{imcea}>: leave it out")
        if "inner" not in merged:
            raise _Bad("inner", "missing (and the group gives no default)")
        inner = self.forms[self.form(merged, "inner")]
        names = entry["layers"]
        if not isinstance(names, list) or not names:
            raise _Bad("layers", f"expected a non-empty list of layer names, got {names!r}")
        layers = tuple(
            self.layers[_named(self.layers, "layer", {"layers": n}, "layers")] for n in names
        )
        how = None
        if "mangle" in entry:
            value = entry["mangle"]
            try:
                how = Mangle(value)
            except ValueError:
                choices = ", ".join(m.value for m in Mangle)
                raise _Bad("mangle", f"{value!r} is not one of {choices}") from None
        return Trick(source, name, description, sender, "<{imcea}>", inner, layers, how)


_DATA = load_battery()

#: The recipient forms of the relay tests, bare (no angle brackets), by name.
FORMS: Mapping[str, str] = _DATA.forms
#: RFC 821 source routes, put before a form as in ``<@route:form>``, by name.
ROUTES: Mapping[str, str] = _DATA.routes
#: The encapsulations the tricks apply, by name.
LAYERS: Mapping[str, Layer] = _DATA.layers

NMAP: tuple[Trick, ...] = _DATA.group("nmap")
MAPS: tuple[Trick, ...] = _DATA.group("maps")
ABUSE_NET: tuple[Trick, ...] = _DATA.group("abuse-net")
ENCAPSULATED: tuple[Trick, ...] = _DATA.group("encapsulated")
BATTERY: tuple[Trick, ...] = _DATA.tricks


def tricks(
    *,
    user: str = "relaytest",
    remote: str = "relay-target.example",
    local: str = "mail.example",
    server_ip: str = "192.0.2.10",
) -> list[tuple[Trick, str, str]]:
    """Every trick of :data:`BATTERY` rendered, in order: ``(trick, sender, recipient)``."""
    out: list[tuple[Trick, str, str]] = []
    for trick in BATTERY:
        sender, recipient = trick.render(user=user, remote=remote, local=local, server_ip=server_ip)
        out.append((trick, sender, recipient))
    return out
