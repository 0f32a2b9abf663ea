"""RFC 5321 recipient paths: one ``RCPT TO`` argument parsed into a value.

:func:`parse_path` reads the path the way the Exchange 5.5 Internet Mail Service
has to see it before it decides anything, and sees through every address trick
the relay testers send:

- optional angle brackets, ``Path = "<" [ A-d-l ":" ] Mailbox ">"`` (RFC 5321
  §4.1.2); the null path ``<>`` is not a recipient;
- an RFC 821 source route ``@hosta.int,@jkl.org:userc@d.bar.org`` is stripped and
  kept in :attr:`Path.route` (the ``A-d-l`` of RFC 5321 §4.1.2; §4.1.1.3 and
  appendix C: a server must be prepared to meet one and should ignore it);
- the domain is what follows the **last** ``@`` outside quotes; a host name is put
  in the comparison form of :mod:`imcea.domains` (lower case, no trailing dot,
  A-labels), ``[192.0.2.1]`` and ``[IPv6:2001:db8::1]`` are address literals;
- the local part is unquoted (``"user@remote"@local`` has the local part
  ``user@remote``).  Unquoted local parts are lenient: the percent hack
  ``user%remote@local``, bang paths ``remote!user@local``, ``user@remote@local``
  and ``IMCEASMTP-...@local`` are ordinary local parts, because the IMS treats
  them as such and never relays on them (KB Q244346);
- a bare ``Postmaster`` with no domain is the one path without a domain (RFC 5321
  §4.5.1: a server must accept it).

Bad input never raises: a malformed path is a :class:`Malformed` value, which the
decision turns into ``553 malformed address``.  Paths longer than
:data:`MAX_PATH_LENGTH` characters are refused before anything else is looked at
(the IMS itself crashed on recipients over 1,024 characters, KB 822992), and every
step is a single pass or a precompiled regular expression without nested
quantifiers, so the cost is linear in the input.

The plain ``local@domain`` and ``<local@domain>`` with a dot-atom local part and an
ASCII host name take a fast path: one ``fullmatch`` and the value is built.  Address
literals and non-ASCII domain names go through small bounded caches, since
``ipaddress`` and ``idna`` would otherwise cost more than the rest of the parse.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import NamedTuple

import attrs

from .domains import DomainError, normalise_domain
from .errors import Error

__all__ = ["MAX_PATH_LENGTH", "Malformed", "Path", "parse_path"]

MAX_PATH_LENGTH = 1024
"""Longest path accepted, in characters (KB 822992: the IMS crashed on longer ones)."""

_POSTMASTER = "postmaster"

# RFC 5321 atext (RFC 5322 §3.2.3)
_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
# One LDH label (as in imcea.domains: no hyphen at either end), written possessively:
# the hyphen check is a look-behind, so nothing backtracks.  Its length (at most 63) is
# checked after the match (see _short_labels): a counted repeat would cost more.
_LABEL = r"[A-Za-z0-9][A-Za-z0-9-]*+(?<!-)"
_MAX_LABEL = 63

# The fast path: an optional pair of angle brackets (the conditional group asks for
# the '>' only when the '<' was there), a dot-atom, '@', an LDH host name and an
# optional trailing dot (outside the group).  A label longer than 63 characters sends
# the path the general way, whose parser gives the reason.
_FAST = re.compile(rf"(<)?([{_ATEXT}]++(?:\.[{_ATEXT}]++)*+)@({_LABEL}(?:\.{_LABEL})*+)\.?(?(1)>)")

_fast_match = _FAST.fullmatch
# the same without the brackets, for the mailbox after a source route or blanks
_FAST_MAILBOX = re.compile(rf"([{_ATEXT}]++(?:\.[{_ATEXT}]++)*+)@({_LABEL}(?:\.{_LABEL})*+)\.?")
# Longer names (up to the 254 of imcea.domains.is_hostname) go the general way.
_FAST_HOSTNAME = 253


def _short_labels(domain: str) -> bool:
    """Whether the host name of a fast-path match may stay on it: not too long, and no
    label longer than 63 characters (a name of 63 characters or less needs no look)."""
    return len(domain) <= _FAST_HOSTNAME and max(map(len, domain.split("."))) <= _MAX_LABEL


# Bound of the caches of IDN names and address literals (idna and ipaddress are slow;
# real traffic repeats its domains).
_CACHE_SIZE = 1024

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# One token of a mailbox: a quoted string, a backslash escape (RFC 821 allowed them
# outside quotes), or a run of anything else.  The alternatives are disjoint and
# possessive, so a token never backtracks.
_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+"|\\.|[^"\\]++', re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)

# What an unquoted local part may not contain: white space and the RFC 5321 specials
# other than '@' and '.' (quotes and backslashes are tokens of their own).
_BAD_UNQUOTED = re.compile(r"[\s()<>\[\],:;]")

# RFC 5321 Dot-string, with RFC 6531's non-ASCII characters (white space excluded,
# since the parser refuses it unquoted).
_DOT_STRING = re.compile(rf"[{_ATEXT}\x80-\U0010ffff]++(?:\.[{_ATEXT}\x80-\U0010ffff]++)*+")
_SPACE = re.compile(r"\s")
_ASCII_DOT_STRING = re.compile(rf"[{_ATEXT}]++(?:\.[{_ATEXT}]++)*+")
_ROUTE_HOP_END = re.compile(r"[,:]")


class Path(NamedTuple):
    """A parsed recipient path (a named tuple: it is built for every recipient decided).

    ``local`` is the local part unquoted; ``domain`` is the comparison form of the
    domain (lower case, no trailing dot, IDN as A-labels) or, for an address
    literal, the normalised literal text (``[192.0.2.1]``, ``[IPv6:2001:db8::1]``),
    whose address is ``literal``; ``domain`` is ``None`` only for the bare
    ``Postmaster`` path.  ``route`` holds the source-route hops that were stripped,
    normalised like domains; ``quoted`` tells that the local part was (wholly or
    partly) quoted or backslash-escaped.
    """

    raw: str
    local: str
    domain: str | None
    literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    route: tuple[str, ...] = ()
    quoted: bool = False

    @property
    def address(self) -> str:
        """``local@domain``, the local part quoted when it is not a Dot-string.

        The bare Postmaster path gives just its local part.  The result may be
        longer than the raw text (A-labels, added quotes).
        """
        local = self.local
        if self.domain is None:
            return local
        if local.isascii():  # the common case: one regex, no Unicode ranges
            plain = _ASCII_DOT_STRING.fullmatch(local) is not None
        else:
            plain = _DOT_STRING.fullmatch(local) is not None and _SPACE.search(local) is None
        if not plain:
            local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{local}@{self.domain}"

    @property
    def is_postmaster(self) -> bool:
        """Whether this is the bare ``Postmaster`` path (any case, no domain), RFC 5321 §4.5.1."""
        return self.domain is None and self.local.lower() == _POSTMASTER


class _PlainPath(Path):
    """A :class:`Path` from the fast path: its local part is a plain ASCII Dot-string.

    Equal to the same :class:`Path`; only :attr:`address` is cheaper, since the local
    part never needs quoting.
    """

    __slots__ = ()

    @property
    def address(self) -> str:
        """``local@domain`` (see :attr:`Path.address`)."""
        return f"{self.local}@{self.domain}"

    def __repr__(self) -> str:
        return "Path" + super().__repr__()[len("_PlainPath") :]


@attrs.frozen
class Malformed:
    """A path that does not parse: ``reason`` says what and where.

    ``position`` is the 0-based index in ``raw`` where it went wrong, when there is
    one.
    """

    raw: str
    reason: str
    position: int | None = None


def _show(text: str) -> str:
    """*text* quoted for a reason, shortened when it is long."""
    return repr(text) if len(text) <= 60 else repr(text[:57]) + "..."


_new = tuple.__new__  # a Path without the keyword handling of its generated __new__


def parse_path(text: str) -> Path | Malformed:
    """Parse one RFC 5321 recipient path (the argument of ``RCPT TO``).

    >>> path = parse_path("<@relay.example:user@Example.COM.>")
    >>> path.local, path.domain, path.route
    ('user', 'example.com', ('relay.example',))
    >>> parse_path("user@exa mple.com").reason
    "'exa mple.com' is not a valid domain"

    Never raises for a string: bad input gives a :class:`Malformed`.  Raises
    :class:`imcea.Error` when *text* is not a string.
    """
    if not isinstance(text, str):
        raise Error(f"expected a string, got {type(text).__name__}")
    if len(text) > MAX_PATH_LENGTH:
        return Malformed(
            text,
            f"longer than {MAX_PATH_LENGTH} characters ({len(text)} characters)",
            MAX_PATH_LENGTH,
        )
    match = _fast_match(text)
    if match is not None:
        local, domain = match.group(2, 3)
        if len(domain) <= _MAX_LABEL or _short_labels(domain):
            return _new(_PlainPath, (text, local, domain.lower(), None, (), False))
    return _parse(text)


def _parse(raw: str) -> Path | Malformed:
    """The general parser: every form, every error."""
    control = _CONTROL.search(raw)
    if control is not None:
        return Malformed(
            raw, f"control character {control[0]!r} at position {control.start()}", control.start()
        )
    start = len(raw) - len(raw.lstrip())
    end = len(raw.rstrip())
    if start >= end:
        return Malformed(raw, "empty path", None)
    if raw[start] == "<":
        if end - start < 2 or raw[end - 1] != ">":
            return Malformed(raw, f"unbalanced '<' at position {start}", start)
        if end - start == 2:
            return Malformed(
                raw, f"the null path '<>' at position {start} is not a recipient", start
            )
        start += 1
        end -= 1
    elif raw[end - 1] == ">":
        return Malformed(raw, f"unbalanced '>' at position {end - 1}", end - 1)

    route: tuple[str, ...] = ()
    if raw[start] == "@":
        parsed = _parse_route(raw, start, end)
        if isinstance(parsed, Malformed):
            return parsed
        route, start = parsed
    return _parse_mailbox(raw, start, end, route)


def _parse_route(raw: str, start: int, end: int) -> tuple[tuple[str, ...], int] | Malformed:
    """The RFC 821 source route ``@a,@b:`` at *start*: its hops and where the mailbox starts."""
    hops: list[str] = []
    at = start  # raw[at] == "@"
    while True:
        first = at + 1
        if first < end and raw[first] == "[":
            close = raw.find("]", first, end)
            if close < 0:
                return Malformed(raw, f"unbalanced '[' at position {first}", first)
            stop = close + 1
            if stop < end and raw[stop] not in ",:":
                return Malformed(
                    raw,
                    f"unexpected {raw[stop]!r} at position {stop} after an address literal "
                    "in the source route",
                    stop,
                )
        else:
            sep = _ROUTE_HOP_END.search(raw, first, end)
            stop = sep.start() if sep is not None else end
        if stop >= end:
            if not hops:  # "@domain": no source route, only a missing local part
                return Malformed(raw, f"empty local part at position {start}", start)
            return Malformed(raw, f"source route at position {start} is not ended by ':'", start)
        if stop == first:
            return Malformed(raw, f"empty domain in the source route at position {first}", first)
        hop = _parse_domain(raw, first, stop)
        if isinstance(hop, Malformed):
            return hop
        hops.append(hop[0])
        if raw[stop] == ":":
            return tuple(hops), stop + 1
        at = stop + 1
        if at >= end or raw[at] != "@":
            return Malformed(
                raw, f"expected '@' after the ',' at position {stop} in the source route", stop
            )


def _parse_mailbox(raw: str, start: int, end: int, route: tuple[str, ...]) -> Path | Malformed:
    """``local@domain`` in ``raw[start:end]``, split at the last '@' outside quotes."""
    if start >= end:
        return Malformed(raw, f"no mailbox after the source route at position {start}", start)
    plain = _FAST_MAILBOX.fullmatch(raw, start, end)
    if plain is not None:
        local, domain = plain.group(1, 2)
        if len(domain) <= _MAX_LABEL or _short_labels(domain):
            return Path(raw, local, domain.lower(), None, route)
    if raw.find('"', start, end) < 0 and raw.find("\\", start, end) < 0:
        tokens = [(start, end)]  # nothing quoted: one plain run
        at = raw.rfind("@", start, end)
    else:
        scanned = _tokens(raw, start, end)
        if isinstance(scanned, Malformed):
            return scanned
        tokens, at = scanned

    # The local part is everything before the last '@'; with no '@' the whole
    # mailbox is checked as one, so that its first fault is the one reported.
    limit = at if at >= 0 else end
    parts: list[str] = []
    quoted = False
    for first, stop in tokens:
        if first >= limit:
            break
        kind = raw[first]
        if kind == '"':
            inner = raw[first + 1 : stop - 1]
            parts.append(_QUOTED_PAIR.sub(r"\1", inner) if "\\" in inner else inner)
            quoted = True
        elif kind == "\\":
            parts.append(raw[first + 1])
            quoted = True
        else:
            stop = min(stop, limit)
            bad = _BAD_UNQUOTED.search(raw, first, stop)
            if bad is not None:
                char, where = bad[0], bad.start()
                if char.isspace():
                    return Malformed(raw, f"white space {char!r} at position {where}", where)
                return Malformed(
                    raw,
                    f"{char!r} at position {where} is not allowed in an unquoted local part",
                    where,
                )
            parts.append(raw[first:stop])
    local = "".join(parts)
    if not local:
        return Malformed(raw, f"empty local part at position {start}", start)
    if at < 0:
        if not route and not quoted and local.isascii() and local.lower() == _POSTMASTER:
            return Path(raw, local, None)
        return Malformed(raw, f"no domain in {_show(raw[start:end])}", None)

    domain = _parse_domain(raw, at + 1, end)
    if isinstance(domain, Malformed):
        return domain
    return Path(raw, local, domain[0], domain[1], route, quoted)


def _tokens(raw: str, start: int, end: int) -> tuple[list[tuple[int, int]], int] | Malformed:
    """The tokens of ``raw[start:end]`` (start, stop) and the last '@' outside quotes (or -1)."""
    tokens: list[tuple[int, int]] = []
    at = -1
    pos = start
    while pos < end:
        token = _TOKEN.match(raw, pos, end)
        if token is None:
            if raw[pos] == '"':
                return Malformed(raw, f"unbalanced quote at position {pos}", pos)
            return Malformed(raw, f"backslash at position {pos} escapes nothing", pos)
        stop = token.end()
        if raw[pos] not in '"\\':
            last = raw.rfind("@", pos, stop)
            if last >= 0:
                at = last
        tokens.append((pos, stop))
        pos = stop
    return tokens, at


def _parse_domain(
    raw: str, start: int, end: int
) -> tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address | None] | Malformed:
    """The domain ``raw[start:end]``: its comparison form and, for a literal, its address."""
    if start >= end:
        return Malformed(raw, f"empty domain after the '@' at position {start - 1}", start - 1)
    text = raw[start:end]
    if text[0] == "[":
        return _parse_literal(raw, start, end)
    for bracket in "[]<>":
        where = raw.find(bracket, start, end)
        if where >= 0:
            return Malformed(raw, f"unbalanced {bracket!r} at position {where}", where)
    if text.isascii():
        try:
            return normalise_domain(text), None
        except DomainError:
            pass
    else:
        idn = _normalise_idn(text)
        if idn is not None:
            return idn, None
    return Malformed(raw, f"{_show(text)} is not a valid domain", start)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _normalise_idn(name: str) -> str | None:
    """:func:`normalise_domain` of a non-ASCII name, or ``None``; cached, as ``idna`` is slow."""
    try:
        return normalise_domain(name)
    except DomainError:
        return None


def _parse_literal(
    raw: str, start: int, end: int
) -> tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address] | Malformed:
    """The address literal ``raw[start:end]`` (it starts with '[')."""
    close = raw.find("]", start, end)
    if close < 0:
        return Malformed(raw, f"unbalanced '[' at position {start}", start)
    if close != end - 1:
        return Malformed(
            raw,
            f"unexpected {raw[close + 1]!r} at position {close + 1} after an address literal",
            close + 1,
        )
    nested = raw.find("[", start + 1, close)
    if nested >= 0:
        return Malformed(raw, f"unbalanced '[' at position {nested}", nested)
    text = raw[start:end]
    value = _literal(text)
    if value is not None:
        return value
    if text[1:6].lower() == "ipv6:":
        reason = f"{_show(text)} is not a valid IPv6 address literal"
    elif ":" in text:
        reason = f"{_show(text)} is not an IPv4 or IPv6 address literal (general tag)"
    else:
        reason = f"{_show(text)} is not a valid address literal"
    return Malformed(raw, reason, start)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _literal(text: str) -> tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address] | None:
    """The normalised text and the address of the literal *text* (``[...]``), or ``None``.

    Cached: ``ipaddress`` parsing costs more than the rest of a path.
    """
    inner = text[1:-1]
    if inner[:5].lower() == "ipv6:":
        value = inner[5:]
        if "%" in value:  # ipaddress takes a scope id; an address literal has none
            return None
        try:
            v6 = ipaddress.IPv6Address(value)
        except ValueError:
            return None
        mapped = v6.ipv4_mapped
        if mapped is None:
            return f"[IPv6:{v6.compressed}]", v6
        # Spelled out so that every Python gives the same text (3.13 writes the
        # IPv4 part of a mapped address in dotted form); it stays an IPv6 literal.
        low = int(mapped)
        return f"[IPv6:::ffff:{low >> 16:x}:{low & 0xFFFF:x}]", v6
    if ":" in inner:
        return None  # a general address literal (RFC 5321 General-address-literal)
    try:
        v4 = ipaddress.IPv4Address(inner)
    except ValueError:
        return None
    return text, v4  # ipaddress takes only the canonical dotted quad: no leading zeros
