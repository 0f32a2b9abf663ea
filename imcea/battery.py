"""The classic relay-test battery as data: the tricks of nmap's smtp-open-relay, the MAPS and
abuse.net relay testers and the IMCEA encapsulation tricks, each a MAIL FROM / RCPT TO pair.
"""

from __future__ import annotations

import enum
import ipaddress
import re

import attrs

from .codec import encode
from .errors import Error

__all__ = [
    "ABUSE_NET",
    "BATTERY",
    "ENCAPSULATED",
    "MAPS",
    "NMAP",
    "Layer",
    "Mangle",
    "Trick",
    "tricks",
]


class Mangle(enum.Enum):
    """A deliberate change applied to an encoded address after :func:`encode`."""

    LOWER_PREFIX = "lower_prefix"  # ``imceasmtp-...``: the outermost prefix in lower case
    LOWER_HEX = "lower_hex"  # ``+2e`` for ``+2E``: every escape with lower-case hex digits
    BAD_ESCAPE = "bad_escape"  # the first ``+40`` (the '@') retyped as ``+4O`` (letter O)


@attrs.frozen
class Layer:
    """One level of encapsulation: the type and the domain template of the outer address."""

    addrtype: str
    domain: str = "{local}"


_HEX_ESCAPE = re.compile(r"\+([0-9A-F]{2})")


def _mangle(address: str, mangle: Mangle) -> str:
    local, at, domain = address.rpartition("@")
    if mangle is Mangle.LOWER_PREFIX:
        dash = local.index("-")
        local = local[:dash].lower() + local[dash:]
    elif mangle is Mangle.LOWER_HEX:
        local = _HEX_ESCAPE.sub(lambda m: "+" + m.group(1).lower(), local)
    else:
        local = local.replace("+40", "+4O", 1)
    return local + at + domain


def _literal_text(server_ip: str) -> str:
    """The text inside an address literal for *server_ip* (``IPv6:`` prefixed for IPv6)."""
    try:
        address = ipaddress.ip_address(server_ip)
    except ValueError:
        raise Error(f"server_ip {server_ip!r} is not an IP address") from None
    if isinstance(address, ipaddress.IPv6Address):
        return f"IPv6:{address.compressed}"
    return str(address)


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
        values = {"user": user, "remote": remote, "local": local, "ip": _literal_text(server_ip)}
        if self.layers:
            address = self.inner.format_map(values)
            for layer in self.layers:
                address = encode(layer.addrtype, address, layer.domain.format_map(values))
            if self.mangle is not None:
                address = _mangle(address, self.mangle)
            values["imcea"] = address
        return self.sender.format_map(values), self.recipient.format_map(values)


# ---------------------------------------------------------------------------
# nmap scripts/smtp-open-relay.nse: 16 MAIL FROM / RCPT TO pairs.  The script's relay
# domain (default nmap.scanme.org) is {remote}, the server name taken from the banner is
# {local}, the target address is {ip}; the sender mailbox is "antispam" and the recipient
# mailbox (default "relaytest") is {user}.

_N_FROM_LITERAL = "<antispam@[{ip}]>"

NMAP: tuple[Trick, ...] = (
    Trick(
        "nmap smtp-open-relay #1",
        "nmap-01-null-sender",
        "Null reverse path (as in a bounce) to a remote recipient.",
        "<>",
        "<{user}@{remote}>",
    ),
    Trick(
        "nmap smtp-open-relay #2",
        "nmap-02-remote-sender",
        "Remote sender to a remote recipient: the plain third-party relay.",
        "<antispam@{remote}>",
        "<{user}@{remote}>",
    ),
    Trick(
        "nmap smtp-open-relay #3",
        "nmap-03-server-name-sender",
        "Sender forged in the server's own name, to a remote recipient.",
        "<antispam@{local}>",
        "<{user}@{remote}>",
    ),
    Trick(
        "nmap smtp-open-relay #4",
        "nmap-04-literal-sender",
        "Sender forged at the server's address literal, to a remote recipient.",
        _N_FROM_LITERAL,
        "<{user}@{remote}>",
    ),
    Trick(
        "nmap smtp-open-relay #5",
        "nmap-05-percent-hack-literal",
        "Percent hack: remote address in the local part, addressed to the server's literal.",
        _N_FROM_LITERAL,
        "<{user}%{remote}@[{ip}]>",
    ),
    Trick(
        "nmap smtp-open-relay #6",
        "nmap-06-percent-hack-host",
        "Percent hack: remote address in the local part, addressed to the server's name.",
        _N_FROM_LITERAL,
        "<{user}%{remote}@{local}>",
    ),
    Trick(
        "nmap smtp-open-relay #7",
        "nmap-07-quoted-address",
        "Whole remote address quoted as a local part with no domain.",
        _N_FROM_LITERAL,
        '<"{user}@{remote}">',
    ),
    Trick(
        "nmap smtp-open-relay #8",
        "nmap-08-quoted-percent",
        "Quoted percent-hack local part with no domain.",
        _N_FROM_LITERAL,
        '<"{user}%{remote}">',
    ),
    Trick(
        "nmap smtp-open-relay #9",
        "nmap-09-double-at-literal",
        "Two at signs: remote address followed by the server's literal.",
        _N_FROM_LITERAL,
        "<{user}@{remote}@[{ip}]>",
    ),
    Trick(
        "nmap smtp-open-relay #10",
        "nmap-10-quoted-address-literal",
        "Quoted remote address as the local part at the server's literal.",
        _N_FROM_LITERAL,
        '<"{user}@{remote}"@[{ip}]>',
    ),
    Trick(
        "nmap smtp-open-relay #11",
        "nmap-11-double-at-host",
        "Two at signs: remote address followed by the server's name.",
        _N_FROM_LITERAL,
        "<{user}@{remote}@{local}>",
    ),
    Trick(
        "nmap smtp-open-relay #12",
        "nmap-12-source-route-literal",
        "RFC 821 source route through the server's literal to the remote address.",
        _N_FROM_LITERAL,
        "<@[{ip}]:{user}@{remote}>",
    ),
    Trick(
        "nmap smtp-open-relay #13",
        "nmap-13-source-route-host",
        "RFC 821 source route through the server's name to the remote address.",
        _N_FROM_LITERAL,
        "<@{local}:{user}@{remote}>",
    ),
    Trick(
        "nmap smtp-open-relay #14",
        "nmap-14-bang-path",
        "UUCP bang path to the remote host with no domain.",
        _N_FROM_LITERAL,
        "<{remote}!{user}>",
    ),
    Trick(
        "nmap smtp-open-relay #15",
        "nmap-15-bang-path-literal",
        "UUCP bang path to the remote host, addressed to the server's literal.",
        _N_FROM_LITERAL,
        "<{remote}!{user}@[{ip}]>",
    ),
    Trick(
        "nmap smtp-open-relay #16",
        "nmap-16-bang-path-host",
        "UUCP bang path to the remote host, addressed to the server's name.",
        _N_FROM_LITERAL,
        "<{remote}!{user}@{local}>",
    ),
)

# ---------------------------------------------------------------------------
# The MAPS relay tester (relay-test.mail-abuse.org) as reproduced in the Nessus / OpenVAS
# plugin smtp_relay2.nasl ("Mail relaying (thorough test)"): 17 pairs.  The plugin's third
# party domain is {remote}, the target's host name {local}, its address {ip}; the recipient
# mailbox ("nobody") is {user}; the sender mailbox is the scanner's name, "nessus" in the
# original plugin.  Test 2 uses a random label under the third-party domain, fixed here;
# test 6 repeats test 5 exactly, as the plugin's list does.

_M_FROM_HOST = "<nessus@{local}>"
_M_TO = "<{user}@{remote}>"

MAPS: tuple[Trick, ...] = (
    Trick(
        "smtp_relay2.nasl #1",
        "maps-01-remote-sender",
        "Remote sender to the same remote recipient: the plain third-party relay.",
        "<{user}@{remote}>",
        _M_TO,
    ),
    Trick(
        "smtp_relay2.nasl #2",
        "maps-02-random-subdomain-sender",
        "Sender in a random subdomain of the relay target (label fixed here), remote recipient.",
        "<nessus@rand0m.{remote}>",
        _M_TO,
    ),
    Trick(
        "smtp_relay2.nasl #3",
        "maps-03-localhost-sender",
        "Sender forged at localhost, to a remote recipient.",
        "<nessus@localhost>",
        _M_TO,
    ),
    Trick(
        "smtp_relay2.nasl #4",
        "maps-04-unqualified-sender",
        "Sender with no domain (the server may add its own), to a remote recipient.",
        "<nessus>",
        _M_TO,
    ),
    Trick(
        "smtp_relay2.nasl #5",
        "maps-05-null-sender",
        "Null reverse path (as in a bounce) to a remote recipient.",
        "<>",
        _M_TO,
    ),
    Trick(
        "smtp_relay2.nasl #6",
        "maps-06-null-sender-again",
        "Null reverse path to a remote recipient again: the plugin lists this pair twice.",
        "<>",
        _M_TO,
    ),
    Trick(
        "smtp_relay2.nasl #7",
        "maps-07-host-sender",
        "Sender forged in the server's own name, to a remote recipient.",
        _M_FROM_HOST,
        _M_TO,
    ),
    Trick(
        "smtp_relay2.nasl #8",
        "maps-08-literal-sender",
        "Sender forged at the server's address literal, to a remote recipient.",
        "<nessus@[{ip}]>",
        _M_TO,
    ),
    Trick(
        "smtp_relay2.nasl #9",
        "maps-09-percent-hack-host",
        "Percent hack: remote address in the local part, addressed to the server's name.",
        _M_FROM_HOST,
        "<{user}%{remote}@{local}>",
    ),
    Trick(
        "smtp_relay2.nasl #10",
        "maps-10-percent-hack-literal",
        "Percent hack: remote address in the local part, addressed to the server's literal.",
        _M_FROM_HOST,
        "<{user}%{remote}@[{ip}]>",
    ),
    Trick(
        "smtp_relay2.nasl #11",
        "maps-11-double-at-host",
        "Two at signs: remote address followed by the server's name.",
        _M_FROM_HOST,
        "<{user}@{remote}@{local}>",
    ),
    Trick(
        "smtp_relay2.nasl #12",
        "maps-12-quoted-address-literal",
        "Quoted remote address as the local part at the server's literal.",
        _M_FROM_HOST,
        '<"{user}@{remote}"@[{ip}]>',
    ),
    Trick(
        "smtp_relay2.nasl #13",
        "maps-13-double-at-literal",
        "Two at signs: remote address followed by the server's literal.",
        _M_FROM_HOST,
        "<{user}@{remote}@[{ip}]>",
    ),
    Trick(
        "smtp_relay2.nasl #14",
        "maps-14-source-route-host",
        "RFC 821 source route through the server's name, sender at the server's literal.",
        "<nessus@[{ip}]>",
        "<@{local}:{user}@{remote}>",
    ),
    Trick(
        "smtp_relay2.nasl #15",
        "maps-15-source-route-literal",
        "RFC 821 source route through the server's literal to the remote address.",
        _M_FROM_HOST,
        "<@[{ip}]:{user}@{remote}>",
    ),
    Trick(
        "smtp_relay2.nasl #16",
        "maps-16-bang-path-literal",
        "UUCP bang path to the remote host, addressed to the server's literal.",
        _M_FROM_HOST,
        "<{remote}!{user}@[{ip}]>",
    ),
    Trick(
        "smtp_relay2.nasl #17",
        "maps-17-postmaster-sender",
        "Sender forged as the server's postmaster, to a remote recipient.",
        "<postmaster@{local}>",
        _M_TO,
    ),
)

# ---------------------------------------------------------------------------
# The abuse.net relay tester (www.abuse.net/relay.html): 17 pairs, sender mailbox
# "spamtest", recipient mailbox ("relaytest", later "securitytest") {user}, relay target
# {remote} (abuse.net itself), the tested host {local}.  Tests 1-5 vary the sender (they
# are the five tests KB Q304897 walks through); tests 6-17 send from the server's literal
# and vary the recipient, ending with the bang path addressed to the server's name.  The
# recipient forms of tests 6-16 follow the order of nmap's smtp-open-relay list, whose
# first version used the same spamtest / relaytest mailboxes.

_A_FROM_LITERAL = "<spamtest@[{ip}]>"
_A_TO = "<{user}@{remote}>"

ABUSE_NET: tuple[Trick, ...] = (
    Trick(
        "abuse.net relay test #1",
        "abuse-01-remote-sender",
        "Remote sender to a remote recipient: the plain third-party relay.",
        "<spamtest@{remote}>",
        _A_TO,
    ),
    Trick(
        "abuse.net relay test #2",
        "abuse-02-unqualified-sender",
        "Sender with no domain (the server may add its own), to a remote recipient.",
        "<spamtest>",
        _A_TO,
    ),
    Trick(
        "abuse.net relay test #3",
        "abuse-03-null-sender",
        "Null reverse path (as in a bounce) to a remote recipient.",
        "<>",
        _A_TO,
    ),
    Trick(
        "abuse.net relay test #4",
        "abuse-04-local-sender",
        "Sender forged in the server's own domain, to a remote recipient.",
        "<spamtest@{local}>",
        _A_TO,
    ),
    Trick(
        "abuse.net relay test #5",
        "abuse-05-literal-sender",
        "Sender forged at the server's address literal, to a remote recipient.",
        _A_FROM_LITERAL,
        _A_TO,
    ),
    Trick(
        "abuse.net relay test #6",
        "abuse-06-percent-hack-literal",
        "Percent hack: remote address in the local part, addressed to the server's literal.",
        _A_FROM_LITERAL,
        "<{user}%{remote}@[{ip}]>",
    ),
    Trick(
        "abuse.net relay test #7",
        "abuse-07-percent-hack-host",
        "Percent hack: remote address in the local part, addressed to the server's name.",
        _A_FROM_LITERAL,
        "<{user}%{remote}@{local}>",
    ),
    Trick(
        "abuse.net relay test #8",
        "abuse-08-quoted-address",
        "Whole remote address quoted as a local part with no domain.",
        _A_FROM_LITERAL,
        '<"{user}@{remote}">',
    ),
    Trick(
        "abuse.net relay test #9",
        "abuse-09-quoted-percent",
        "Quoted percent-hack local part with no domain.",
        _A_FROM_LITERAL,
        '<"{user}%{remote}">',
    ),
    Trick(
        "abuse.net relay test #10",
        "abuse-10-double-at-literal",
        "Two at signs: remote address followed by the server's literal.",
        _A_FROM_LITERAL,
        "<{user}@{remote}@[{ip}]>",
    ),
    Trick(
        "abuse.net relay test #11",
        "abuse-11-quoted-address-literal",
        "Quoted remote address as the local part at the server's literal.",
        _A_FROM_LITERAL,
        '<"{user}@{remote}"@[{ip}]>',
    ),
    Trick(
        "abuse.net relay test #12",
        "abuse-12-double-at-host",
        "Two at signs: remote address followed by the server's name.",
        _A_FROM_LITERAL,
        "<{user}@{remote}@{local}>",
    ),
    Trick(
        "abuse.net relay test #13",
        "abuse-13-source-route-literal",
        "RFC 821 source route through the server's literal to the remote address.",
        _A_FROM_LITERAL,
        "<@[{ip}]:{user}@{remote}>",
    ),
    Trick(
        "abuse.net relay test #14",
        "abuse-14-source-route-host",
        "RFC 821 source route through the server's name to the remote address.",
        _A_FROM_LITERAL,
        "<@{local}:{user}@{remote}>",
    ),
    Trick(
        "abuse.net relay test #15",
        "abuse-15-bang-path",
        "UUCP bang path to the remote host with no domain.",
        _A_FROM_LITERAL,
        "<{remote}!{user}>",
    ),
    Trick(
        "abuse.net relay test #16",
        "abuse-16-bang-path-literal",
        "UUCP bang path to the remote host, addressed to the server's literal.",
        _A_FROM_LITERAL,
        "<{remote}!{user}@[{ip}]>",
    ),
    Trick(
        "abuse.net relay test #17",
        "abuse-17-bang-path-host",
        "UUCP bang path to the remote host, addressed to the server's name.",
        _A_FROM_LITERAL,
        "<{remote}!{user}@{local}>",
    ),
)

# ---------------------------------------------------------------------------
# Encapsulated-address tricks against the Internet Mail Service.  The address is built
# with encode(); only the mangled forms are altered by hand afterwards.

_E_FROM = "<spamtest@{remote}>"
_E_TO = "<{imcea}>"
_E_INNER = "{user}@{remote}"
_SMTP = Layer("SMTP")

ENCAPSULATED: tuple[Trick, ...] = (
    Trick(
        "KB Q237927 / MS99-027",
        "imcea-smtp",
        "Encapsulated SMTP one-off of the remote address at the server's domain.",
        _E_FROM,
        _E_TO,
        _E_INNER,
        (_SMTP,),
    ),
    Trick(
        "KB Q271575",
        "imcea-smtp-lower-prefix",
        "The same one-off with a lower-case imceasmtp- prefix, which the IMS prefix check misses.",
        _E_FROM,
        _E_TO,
        _E_INNER,
        (_SMTP,),
        Mangle.LOWER_PREFIX,
    ),
    Trick(
        "Outlook mailto: one-off (IMCEAMAILTO)",
        "imcea-mailto",
        "Encapsulated MAILTO one-off of the remote address at the server's domain.",
        _E_FROM,
        _E_TO,
        _E_INNER,
        (Layer("MAILTO"),),
    ),
    Trick(
        "KB Q189492",
        "imcea-smtp-lower-hex",
        "Encapsulated SMTP one-off written with lower-case hex escapes (+40, +2e).",
        _E_FROM,
        _E_TO,
        _E_INNER,
        (_SMTP,),
        Mangle.LOWER_HEX,
    ),
    Trick(
        "KB Q237927 / MS99-027, nested",
        "imcea-smtp-nested-2",
        "A one-off of a one-off: the remote address encapsulated twice.",
        _E_FROM,
        _E_TO,
        _E_INNER,
        (_SMTP, _SMTP),
    ),
    Trick(
        "KB Q237927 / MS99-027, nested",
        "imcea-smtp-nested-3",
        "The remote address encapsulated three times, the deepest nesting still decided.",
        _E_FROM,
        _E_TO,
        _E_INNER,
        (_SMTP, _SMTP, _SMTP),
    ),
    Trick(
        "KB Q237927 / MS99-027, nested",
        "imcea-smtp-nested-4",
        "The remote address encapsulated four times, past the nesting bound.",
        _E_FROM,
        _E_TO,
        _E_INNER,
        (_SMTP, _SMTP, _SMTP, _SMTP),
    ),
    Trick(
        "KB Q237927 + KB Q244346",
        "imcea-smtp-percent-hack",
        "Encapsulated SMTP one-off whose inner address is a percent hack through the server.",
        _E_FROM,
        _E_TO,
        "{user}%{remote}@{local}",
        (_SMTP,),
    ),
    Trick(
        "KB Q237927 + KB Q193316",
        "imcea-smtp-literal",
        "Encapsulated SMTP one-off addressed to the server's address literal.",
        _E_FROM,
        _E_TO,
        _E_INNER,
        (Layer("SMTP", "[{ip}]"),),
    ),
    Trick(
        "KB Q245045",
        "imcea-ex-smtp-payload",
        "IMCEAEX- address carrying the remote SMTP address instead of a legacy Exchange DN.",
        _E_FROM,
        _E_TO,
        _E_INNER,
        (Layer("EX"),),
    ),
    Trick(
        "Outlook unresolved recipient (IMCEAINVALID)",
        "imcea-invalid",
        "IMCEAINVALID- address (an unresolved Outlook recipient) of the remote address.",
        _E_FROM,
        _E_TO,
        _E_INNER,
        (Layer("INVALID"),),
    ),
    Trick(
        "MS-OXCMAIL 2.1.3.1.8",
        "imcea-smtp-bad-escape",
        "Encapsulated SMTP one-off whose '@' escape is retyped +4O (letter O): not decodable.",
        _E_FROM,
        _E_TO,
        _E_INNER,
        (_SMTP,),
        Mangle.BAD_ESCAPE,
    ),
)

BATTERY: tuple[Trick, ...] = NMAP + MAPS + ABUSE_NET + ENCAPSULATED


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
