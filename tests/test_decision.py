"""The Exchange 5.5 IMS decision (DESIGN §2), one recipient at a time.

Every expected value below is read off DESIGN §2.3 / §2.4 (the reasons table gives the
action, the RCPT reply and the NDR of each reason) and the KB articles it cites:

- Q237927 (the seed): encapsulated SMTP one-offs are rerouted even when the IMS does not
  reroute; fixed in SP3, where they are returned (rerouting off) or obey the routing
  restrictions (rerouting on).
- Q193922, Q196626, Q260562: the Routing Restrictions (RelayFlags, allow / internal / deny
  lists); nothing selected is an open relay; "550 relaying prohibited" at RCPT.
- Q169683, Q217217: routing-table matching (whole labels, ``#`` exact entries, longest wins).
- Q195969: 'Override relay restrictions. Always "relay"'.
- Q190710: reroute to another domain.
- Q193316: ``user@[ip]`` is inbound when the literal is one of the server's addresses.
- Q244346: the percent hack and friends are never relayed on.
- Q245045: IMCEAEX delivery.  Q271575: the IMCEA prefix is case-sensitive.
"""

from __future__ import annotations

import collections.abc
import copy
import ipaddress
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest
from expected import (
    NDR_NO_GATEWAY,
    NDR_NOT_REROUTED,
    NDR_UNKNOWN,
    REASONS_TABLE,
    D,
    R,
    X,
    check_against_table,
)

import imcea
from imcea import Action, Reason

OUR = "contoso.com"
SERVER = "192.0.2.10"
INTERNAL_IF = "10.0.0.1"
OUTSIDER = "203.0.113.5"
ALLOWED = "192.168.0.7"
SEED_HOST = "192.168.0.1"  # the server the seed wants to let relay

RELAY_PROHIBITED = "550 Relaying is prohibited"

# The seed's recipient: user@example.com encapsulated at our (inbound) domain.
SEED = "IMCEASMTP-user+40example+2Ecom@contoso.com"
SEED_MAILTO = "IMCEAMAILTO-user+40example+2Ecom@contoso.com"
EX_DN = "/O=ORG/OU=SITE/CN=RECIPIENTS/CN=JDOE"
IMCEAEX = "IMCEAEX-_O=ORG_OU=SITE_CN=RECIPIENTS_CN=JDOE@contoso.com"
X400 = "IMCEAX400-c=US+3Ba=+20+3Bp=MS+3Bo=PARIS+3Bs=user+3B@contoso.com"


def nested(levels: int, inner: str = "user@example.net", domain: str = OUR) -> str:
    """*inner* encapsulated *levels* times as an SMTP one-off at *domain*."""
    address = inner
    for _ in range(levels):
        address = imcea.encode("SMTP", address, domain)
    return address


# ---------------------------------------------------------------------------
# settings as the mapping load_settings takes

CLOSED = {"allow": ["192.168.0.0/255.255.255.0"]}  # Q193922: the dotted-mask form
INBOUND = {"domain": OUR, "action": "inbound"}
ALWAYS = {"domain": "always.example", "action": "relay"}
PARTNER = {"domain": "partner.example", "action": "reroute", "to": "mail.partner.example"}


def cfg(**overrides: Any) -> dict[str, Any]:
    """Rerouting on, SP3, our domain inbound, the server's address; *overrides* on top."""
    base: dict[str, Any] = {
        "reroute": True,
        "release": "SP3",
        "routing": [INBOUND],
        "server_addresses": [SERVER],
    }
    base.update(overrides)
    return base


NOREROUTE = cfg(reroute=False)
SP2_NOREROUTE = cfg(reroute=False, release="SP2")
OPEN = cfg()
RESTRICTED = cfg(restrictions=CLOSED)
SP2_RESTRICTED = cfg(release="SP2", restrictions=CLOSED)

ANY: Any = object()  # no specific expectation beyond the reasons table


class Row(NamedTuple):
    settings: dict[str, Any]
    ip: str
    recipient: str
    action: Action
    reason: Reason
    auth: bool = False
    server_ip: str | None = None
    reply: Any = ANY
    ndr: Any = ANY
    resolved: Any = ANY  # a value, or a predicate
    next_hop: Any = ANY


def ok(addr: str) -> str:
    return f"250 OK - Recipient <{addr}>"


def lower_is(expected: str) -> Callable[[str | None], bool]:
    return lambda value: value is not None and value.lower() == expected


def host_is(expected: str) -> Callable[[str | None], bool]:
    """A domain compared as §2.2 compares them: case-insensitively, no trailing dot."""
    return lambda value: value is not None and value.lower().removesuffix(".") == expected


ROWS = [
    # --- RFC 5321 §4.5.1: a bare Postmaster -----------------------------------------
    pytest.param(
        Row(
            {},
            OUTSIDER,
            "Postmaster",
            D,
            Reason.POSTMASTER,
            reply=ok("Postmaster"),
            resolved=lower_is("postmaster"),
            next_hop=None,
        ),
        id="rfc5321-bare-postmaster-default-settings",
    ),
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            "<POSTMASTER>",
            D,
            Reason.POSTMASTER,
            reply=ok("POSTMASTER"),
            resolved=lower_is("postmaster"),
        ),
        id="rfc5321-bare-postmaster-any-case-in-brackets",
    ),
    # --- malformed paths: 553 at RCPT ------------------------------------------------
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            "relaytest",
            X,
            Reason.MALFORMED_ADDRESS,
            reply="553 malformed address: <relaytest>",
        ),
        id="malformed-no-domain",
    ),
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            "user@",
            X,
            Reason.MALFORMED_ADDRESS,
            reply="553 malformed address: <user@>",
        ),
        id="malformed-empty-domain",
    ),
    pytest.param(
        Row(
            OPEN,
            OUTSIDER,
            "<user@exa mple.com>",
            X,
            Reason.MALFORMED_ADDRESS,
            reply="553 malformed address: <user@exa mple.com>",
        ),
        id="malformed-space-in-domain",
    ),
    pytest.param(
        Row(OPEN, OUTSIDER, "<>", X, Reason.MALFORMED_ADDRESS),
        id="malformed-null-path-is-not-a-recipient",
    ),
    pytest.param(
        Row(OPEN, OUTSIDER, '"user@contoso.com', X, Reason.MALFORMED_ADDRESS),
        id="malformed-unbalanced-quote",
    ),
    pytest.param(
        Row(OPEN, OUTSIDER, "user@[192.0.2.10", X, Reason.MALFORMED_ADDRESS),
        id="malformed-unterminated-literal",
    ),
    pytest.param(
        Row(OPEN, OUTSIDER, '<"user@example.net">', X, Reason.MALFORMED_ADDRESS),
        id="malformed-quoted-remote-address-without-domain-nmap7",
    ),
    pytest.param(
        Row(OPEN, OUTSIDER, "<example.net!user>", X, Reason.MALFORMED_ADDRESS),
        id="malformed-bang-path-without-domain-nmap14",
    ),
    # --- Q237927: "Do not reroute incoming SMTP mail" --------------------------------
    pytest.param(
        Row(
            NOREROUTE,
            OUTSIDER,
            "alice@contoso.com",
            D,
            Reason.INBOUND_UNVERIFIED,
            reply=ok("alice@contoso.com"),
            ndr=None,
            resolved="alice@contoso.com",
            next_hop=None,
        ),
        id="Q237927-noreroute-no-directory-inbound-domain-delivered",
    ),
    pytest.param(
        Row(
            NOREROUTE,
            OUTSIDER,
            "user@example.net",
            X,
            Reason.REROUTING_DISABLED,
            reply=ok("user@example.net"),
            ndr=NDR_UNKNOWN,
            resolved=None,
            next_hop=None,
        ),
        id="Q237927-noreroute-no-directory-remote-domain-returned",
    ),
    pytest.param(
        Row(
            cfg(reroute=False, directory=["SMTP:alice@contoso.com"]),
            OUTSIDER,
            "Alice@Contoso.COM",
            D,
            Reason.LOCAL_RECIPIENT,
            ndr=None,
            resolved=lower_is("alice@contoso.com"),
            next_hop=None,
        ),
        id="Q237927-noreroute-gal-hit-case-insensitive",
    ),
    pytest.param(
        Row(
            cfg(reroute=False, directory=["alice@contoso.com"]),
            OUTSIDER,
            "carol@contoso.com",
            X,
            Reason.UNKNOWN_RECIPIENT,
            reply=ok("carol@contoso.com"),
            ndr=NDR_UNKNOWN,
        ),
        id="Q237927-noreroute-gal-miss-local-domain",
    ),
    pytest.param(
        Row(
            cfg(reroute=False, directory=["alice@contoso.com"]),
            OUTSIDER,
            "user@example.net",
            X,
            Reason.UNKNOWN_RECIPIENT,
            ndr=NDR_UNKNOWN,
        ),
        id="Q237927-noreroute-gal-miss-remote-domain",
    ),
    pytest.param(
        Row(
            NOREROUTE,
            OUTSIDER,
            "user@[198.51.100.7]",
            X,
            Reason.REROUTING_DISABLED,
            ndr=NDR_UNKNOWN,
        ),
        id="Q193316-noreroute-foreign-literal-returned",
    ),
    pytest.param(
        Row(
            NOREROUTE,
            OUTSIDER,
            "user@[192.0.2.10]",
            D,
            Reason.INBOUND_UNVERIFIED,
            resolved="user@[192.0.2.10]",
            next_hop=None,
        ),
        id="Q193316-noreroute-server-literal-delivered",
    ),
    pytest.param(
        Row(
            cfg(reroute=False, routing=[INBOUND, ALWAYS]),
            OUTSIDER,
            "user@always.example",
            X,
            Reason.REROUTING_DISABLED,
            ndr=NDR_UNKNOWN,
        ),
        id="Q195969-noreroute-always-relay-entry-never-applies",
    ),
    pytest.param(
        Row(NOREROUTE, OUTSIDER, "<@contoso.com:user@example.net>", X, Reason.REROUTING_DISABLED),
        id="rfc821-noreroute-source-route-stripped-still-inbound",
    ),
    # --- Q260562: nothing selected = open relay ---------------------------------------
    pytest.param(
        Row(
            OPEN,
            OUTSIDER,
            "<user@example.net>",
            R,
            Reason.OPEN_RELAY,
            reply=ok("user@example.net"),
            ndr=None,
            resolved="user@example.net",
            next_hop="example.net",
        ),
        id="Q260562-open-relay-nothing-selected",
    ),
    pytest.param(
        Row(
            cfg(restrictions={"deny": ["203.0.113.0/24"]}),
            OUTSIDER,
            "user@example.net",
            X,
            Reason.DENIED_HOST,
            reply=RELAY_PROHIBITED,
            ndr=None,
            resolved=None,
            next_hop=None,
        ),
        id="Q260562-open-relay-deny-list-still-applies",
    ),
    pytest.param(
        Row(
            OPEN,
            OUTSIDER,
            "user%example.net@contoso.com",
            D,
            Reason.INBOUND_UNVERIFIED,
            resolved="user%example.net@contoso.com",
        ),
        id="Q244346-open-relay-still-not-on-percent-hack",
    ),
    # --- Q193922 / Q196626: Routing Restrictions --------------------------------------
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            "user@example.net",
            X,
            Reason.RELAY_DENIED,
            reply=RELAY_PROHIBITED,
            ndr=None,
            resolved=None,
            next_hop=None,
        ),
        id="Q193922-client-outside-allow-list-refused",
    ),
    pytest.param(
        Row(
            RESTRICTED,
            ALLOWED,
            "user@example.net",
            R,
            Reason.RELAY_ALLOWED_HOST,
            reply=ok("user@example.net"),
            resolved="user@example.net",
            next_hop="example.net",
        ),
        id="Q193922-allow-list-dotted-mask",
    ),
    pytest.param(
        Row(
            cfg(restrictions={"allow": ["192.168.0.0/24"]}),
            ALLOWED,
            "user@example.net",
            R,
            Reason.RELAY_ALLOWED_HOST,
        ),
        id="Q193922-allow-list-cidr",
    ),
    pytest.param(
        Row(RESTRICTED, "::ffff:192.168.0.7", "user@example.net", R, Reason.RELAY_ALLOWED_HOST),
        id="Q193922-allow-list-ipv4-mapped-client",
    ),
    pytest.param(
        Row(
            cfg(restrictions={"allow": ["2001:db8::/32"]}),
            "2001:db8::1:5",
            "user@example.net",
            R,
            Reason.RELAY_ALLOWED_HOST,
        ),
        id="Q193922-allow-list-ipv6",
    ),
    pytest.param(
        Row(
            cfg(restrictions={"allow": ["192.168.0.1/255.255.255.0"]}),
            SEED_HOST,
            "user@example.net",
            X,
            Reason.RELAY_DENIED,
            reply=RELAY_PROHIBITED,
        ),
        id="Q193922-host-bits-outside-mask-never-match",
    ),
    pytest.param(
        Row(
            cfg(restrictions={"authenticated": True}),
            OUTSIDER,
            "user@example.net",
            R,
            Reason.RELAY_AUTHENTICATED,
            auth=True,
            resolved="user@example.net",
            next_hop="example.net",
        ),
        id="Q193922-authenticated-client-may-relay",
    ),
    pytest.param(
        Row(
            cfg(restrictions={"authenticated": True}),
            OUTSIDER,
            "user@example.net",
            X,
            Reason.RELAY_DENIED,
            auth=False,
            reply=RELAY_PROHIBITED,
        ),
        id="Q193922-authenticated-selected-client-anonymous",
    ),
    pytest.param(
        Row(RESTRICTED, OUTSIDER, "user@example.net", X, Reason.RELAY_DENIED, auth=True),
        id="Q193922-authenticated-client-but-flag-not-selected",
    ),
    pytest.param(
        Row(
            cfg(server_addresses=[SERVER, INTERNAL_IF], restrictions={"internal": [INTERNAL_IF]}),
            OUTSIDER,
            "user@example.net",
            R,
            Reason.RELAY_INTERNAL_INTERFACE,
            server_ip=INTERNAL_IF,
            resolved="user@example.net",
            next_hop="example.net",
        ),
        id="Q193922-internal-interface-via-server-ip",
    ),
    pytest.param(
        Row(
            cfg(server_addresses=[SERVER, INTERNAL_IF], restrictions={"internal": [INTERNAL_IF]}),
            OUTSIDER,
            "user@example.net",
            X,
            Reason.RELAY_DENIED,
            server_ip=SERVER,
        ),
        id="Q193922-external-interface-refused",
    ),
    pytest.param(
        Row(
            cfg(server_addresses=[SERVER, INTERNAL_IF], restrictions={"internal": [INTERNAL_IF]}),
            OUTSIDER,
            "user@example.net",
            X,
            Reason.RELAY_DENIED,
        ),
        id="Q193922-internal-selected-server-ip-unknown",
    ),
    pytest.param(
        Row(
            cfg(restrictions={"allow": ["192.168.0.0/24"], "deny": ["192.168.0.66"]}),
            "192.168.0.66",
            "user@example.net",
            X,
            Reason.DENIED_HOST,
            reply=RELAY_PROHIBITED,
            ndr=None,
        ),
        id="Q193922-deny-list-beats-allow-list",
    ),
    pytest.param(
        Row(
            cfg(restrictions={"allow": ["192.168.0.0/24"], "deny": ["192.168.0.66"]}),
            "192.168.0.65",
            "user@example.net",
            R,
            Reason.RELAY_ALLOWED_HOST,
        ),
        id="Q193922-deny-list-carve-out-neighbour-allowed",
    ),
    pytest.param(
        Row(
            cfg(restrictions={"authenticated": True, "deny": [OUTSIDER]}),
            OUTSIDER,
            "user@example.net",
            X,
            Reason.DENIED_HOST,
            auth=True,
        ),
        id="Q193922-deny-list-beats-authentication",
    ),
    # --- Q195969: always relay --------------------------------------------------------
    pytest.param(
        Row(
            cfg(routing=[INBOUND, ALWAYS], restrictions=CLOSED),
            OUTSIDER,
            "user@always.example",
            R,
            Reason.ALWAYS_RELAY,
            reply=ok("user@always.example"),
            resolved="user@always.example",
            next_hop="always.example",
        ),
        id="Q195969-always-relay-overrides-restrictions",
    ),
    pytest.param(
        Row(
            cfg(routing=[INBOUND, ALWAYS], restrictions={**CLOSED, "deny": [OUTSIDER]}),
            OUTSIDER,
            "user@always.example",
            R,
            Reason.ALWAYS_RELAY,
            next_hop="always.example",
        ),
        id="Q195969-always-relay-overrides-deny-list",
    ),
    pytest.param(
        Row(
            cfg(routing=[INBOUND, ALWAYS], restrictions=CLOSED),
            OUTSIDER,
            "user@Host.Always.Example.",
            R,
            Reason.ALWAYS_RELAY,
            next_hop=host_is("host.always.example"),
        ),
        id="Q195969-Q169683-always-relay-subdomain-case-trailing-dot",
    ),
    # --- Q190710: reroute to another domain ------------------------------------------
    pytest.param(
        Row(
            cfg(routing=[INBOUND, PARTNER]),
            OUTSIDER,
            "user@partner.example",
            R,
            Reason.OPEN_RELAY,
            resolved="user@mail.partner.example",
            next_hop="mail.partner.example",
        ),
        id="Q190710-reroute-to-domain-rewrites-resolved",
    ),
    pytest.param(
        Row(
            cfg(routing=[INBOUND, PARTNER], restrictions=CLOSED),
            OUTSIDER,
            "user@partner.example",
            X,
            Reason.RELAY_DENIED,
            reply=RELAY_PROHIBITED,
        ),
        id="Q190710-reroute-to-domain-needs-permission",
    ),
    pytest.param(
        Row(
            cfg(routing=[INBOUND, PARTNER], restrictions=CLOSED),
            ALLOWED,
            "user@sub.partner.example",
            R,
            Reason.RELAY_ALLOWED_HOST,
            resolved="user@mail.partner.example",
            next_hop="mail.partner.example",
        ),
        id="Q190710-reroute-to-domain-subdomain-allowed-client",
    ),
    # --- Q169683 / Q217217: routing-table matching ------------------------------------
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            "user@mail.contoso.com",
            D,
            Reason.INBOUND_UNVERIFIED,
            resolved=lower_is("user@mail.contoso.com"),
        ),
        id="Q169683-plain-entry-matches-subdomains",
    ),
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            "USER@CONTOSO.COM.",
            D,
            Reason.INBOUND_UNVERIFIED,
            resolved=lower_is("user@contoso.com"),
        ),
        id="Q169683-case-and-trailing-dot-ignored",
    ),
    pytest.param(
        Row(
            cfg(routing=[{"domain": "sea.com", "action": "inbound"}], restrictions=CLOSED),
            OUTSIDER,
            "user@chelsea.com",
            X,
            Reason.RELAY_DENIED,
        ),
        id="Q169683-whole-labels-only-chelsea-is-not-sea",
    ),
    pytest.param(
        Row(
            cfg(routing=[{"domain": "#exact.example", "action": "inbound"}], restrictions=CLOSED),
            OUTSIDER,
            "user@exact.example",
            D,
            Reason.INBOUND_UNVERIFIED,
        ),
        id="Q169683-exact-entry-matches-itself",
    ),
    pytest.param(
        Row(
            cfg(routing=[{"domain": "#exact.example", "action": "inbound"}], restrictions=CLOSED),
            OUTSIDER,
            "user@sub.exact.example",
            X,
            Reason.RELAY_DENIED,
        ),
        id="Q169683-exact-entry-not-subdomains",
    ),
    pytest.param(
        Row(
            cfg(
                routing=[
                    {"domain": "contoso.com", "action": "relay"},
                    {"domain": "#contoso.com", "action": "inbound"},
                ],
                restrictions=CLOSED,
            ),
            OUTSIDER,
            "user@contoso.com",
            D,
            Reason.INBOUND_UNVERIFIED,
        ),
        id="Q217217-exact-entry-checked-first",
    ),
    pytest.param(
        Row(
            cfg(
                routing=[
                    INBOUND,
                    {"domain": "ext.contoso.com", "action": "reroute", "to": "gw.example"},
                ]
            ),
            OUTSIDER,
            "user@a.ext.contoso.com",
            R,
            Reason.OPEN_RELAY,
            resolved="user@gw.example",
            next_hop="gw.example",
        ),
        id="Q217217-longest-plain-entry-wins-listed-last",
    ),
    pytest.param(
        Row(
            cfg(
                routing=[
                    {"domain": "ext.contoso.com", "action": "inbound"},
                    {"domain": "contoso.com", "action": "relay"},
                ],
                restrictions=CLOSED,
            ),
            OUTSIDER,
            "user@x.ext.contoso.com",
            D,
            Reason.INBOUND_UNVERIFIED,
        ),
        id="Q217217-longest-plain-entry-wins-listed-first",
    ),
    # --- Q193316: address literals ----------------------------------------------------
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            "user@[192.0.2.10]",
            D,
            Reason.INBOUND_UNVERIFIED,
            reply=ok("user@[192.0.2.10]"),
            resolved="user@[192.0.2.10]",
            next_hop=None,
        ),
        id="Q193316-server-literal-is-inbound",
    ),
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            "user@[198.51.100.7]",
            X,
            Reason.RELAY_DENIED,
            reply=RELAY_PROHIBITED,
        ),
        id="Q193316-other-literal-is-a-reroute-refused",
    ),
    pytest.param(
        Row(
            OPEN,
            OUTSIDER,
            "user@[198.51.100.7]",
            R,
            Reason.OPEN_RELAY,
            resolved="user@[198.51.100.7]",
            next_hop="[198.51.100.7]",
        ),
        id="Q193316-other-literal-is-a-reroute-open",
    ),
    pytest.param(
        Row(
            cfg(server_addresses=[SERVER, "2001:db8::25"], restrictions=CLOSED),
            OUTSIDER,
            "user@[IPv6:2001:db8::25]",
            D,
            Reason.INBOUND_UNVERIFIED,
        ),
        id="Q193316-ipv6-server-literal-is-inbound",
    ),
    pytest.param(
        Row(
            cfg(directory=["alice@[192.0.2.10]"], restrictions=CLOSED),
            OUTSIDER,
            "alice@[192.0.2.10]",
            D,
            Reason.LOCAL_RECIPIENT,
            resolved=lower_is("alice@[192.0.2.10]"),
        ),
        id="Q193316-literal-proxy-in-directory",
    ),
    pytest.param(
        Row(
            cfg(directory=["alice@[192.0.2.10]"], restrictions=CLOSED),
            OUTSIDER,
            "bob@[192.0.2.10]",
            X,
            Reason.UNKNOWN_RECIPIENT,
            ndr=NDR_UNKNOWN,
        ),
        id="Q193316-literal-without-proxy-returned",
    ),
    # --- Q244346: address tricks are ordinary local parts -----------------------------
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            "<user%example.net@contoso.com>",
            D,
            Reason.INBOUND_UNVERIFIED,
            reply=ok("user%example.net@contoso.com"),
        ),
        id="Q244346-percent-hack-at-local-name",
    ),
    pytest.param(
        Row(RESTRICTED, OUTSIDER, "user%example.net@[192.0.2.10]", D, Reason.INBOUND_UNVERIFIED),
        id="Q244346-percent-hack-at-server-literal",
    ),
    pytest.param(
        Row(RESTRICTED, OUTSIDER, "example.net!user@contoso.com", D, Reason.INBOUND_UNVERIFIED),
        id="Q244346-bang-path",
    ),
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            '"user@example.net"@contoso.com',
            D,
            Reason.INBOUND_UNVERIFIED,
            next_hop=None,
        ),
        id="Q244346-quoted-remote-address-at-local",
    ),
    pytest.param(
        Row(RESTRICTED, OUTSIDER, "user@example.net@contoso.com", D, Reason.INBOUND_UNVERIFIED),
        id="Q244346-double-at",
    ),
    pytest.param(
        Row(
            cfg(directory=["alice@contoso.com"]),
            OUTSIDER,
            "user%example.net@contoso.com",
            X,
            Reason.UNKNOWN_RECIPIENT,
            ndr=NDR_UNKNOWN,
        ),
        id="Q244346-percent-hack-with-directory-unknown",
    ),
    pytest.param(
        Row(
            cfg(directory=["alice@contoso.com"]),
            OUTSIDER,
            "user@example.net@contoso.com",
            X,
            Reason.UNKNOWN_RECIPIENT,
            ndr=NDR_UNKNOWN,
        ),
        id="Q244346-double-at-with-directory-unknown",
    ),
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            "<@contoso.com,@[192.0.2.10]:user@example.net>",
            X,
            Reason.RELAY_DENIED,
            reply=RELAY_PROHIBITED,
        ),
        id="rfc821-source-route-stripped-then-refused",
    ),
    pytest.param(
        Row(
            OPEN,
            OUTSIDER,
            "<@contoso.com:user@example.net>",
            R,
            Reason.OPEN_RELAY,
            resolved="user@example.net",
            next_hop="example.net",
        ),
        id="rfc821-source-route-stripped-then-open-relay",
    ),
    # --- Q237927 (the seed): encapsulated SMTP one-offs, SP2 and SP3 ------------------
    pytest.param(
        Row(
            NOREROUTE,
            OUTSIDER,
            SEED,
            X,
            Reason.ENCAPSULATED_NOT_REROUTED,
            reply=ok(SEED),
            ndr=NDR_NOT_REROUTED,
            resolved=None,
            next_hop=None,
        ),
        id="Q237927-sp3-noreroute-encapsulated-returned",
    ),
    pytest.param(
        Row(
            SP2_NOREROUTE,
            OUTSIDER,
            SEED,
            R,
            Reason.ENCAPSULATED_BYPASS,
            reply=ok(SEED),
            ndr=None,
            resolved="user@example.com",
            next_hop="example.com",
        ),
        id="Q237927-sp2-noreroute-encapsulated-rerouted-anyway",
    ),
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            SEED,
            X,
            Reason.ENCAPSULATED_RELAY_DENIED,
            reply=RELAY_PROHIBITED,
            ndr=None,
            resolved=None,
            next_hop=None,
        ),
        id="Q237927-sp3-restrictions-refuse-client",
    ),
    pytest.param(
        Row(
            SP2_RESTRICTED,
            OUTSIDER,
            SEED,
            R,
            Reason.ENCAPSULATED_BYPASS,
            resolved="user@example.com",
            next_hop="example.com",
        ),
        id="Q237927-sp2-restrictions-bypassed",
    ),
    pytest.param(
        Row(
            cfg(release="SP2", restrictions={**CLOSED, "deny": [OUTSIDER]}),
            OUTSIDER,
            SEED,
            R,
            Reason.ENCAPSULATED_BYPASS,
        ),
        id="Q237927-sp2-deny-list-bypassed",
    ),
    pytest.param(
        Row(
            cfg(restrictions={"allow": [SEED_HOST]}),
            SEED_HOST,
            SEED,
            R,
            Reason.RELAY_ALLOWED_HOST,
            reply=ok(SEED),
            resolved="user@example.com",
            next_hop="example.com",
        ),
        id="Q237927-sp3-192.168.0.1-in-allow-list-relays",
    ),
    pytest.param(
        Row(
            OPEN,
            OUTSIDER,
            SEED,
            R,
            Reason.OPEN_RELAY,
            resolved="user@example.com",
            next_hop="example.com",
        ),
        id="Q237927-sp3-no-restriction-selected-open",
    ),
    pytest.param(
        Row(
            cfg(restrictions={**CLOSED, "deny": [OUTSIDER]}),
            OUTSIDER,
            SEED,
            X,
            Reason.ENCAPSULATED_RELAY_DENIED,
            reply=RELAY_PROHIBITED,
        ),
        id="Q237927-sp3-deny-list-refuses-encapsulated",
    ),
    pytest.param(
        Row(
            cfg(restrictions={"authenticated": True}),
            OUTSIDER,
            SEED,
            R,
            Reason.RELAY_AUTHENTICATED,
            auth=True,
            resolved="user@example.com",
        ),
        id="Q237927-sp3-authenticated-client",
    ),
    pytest.param(
        Row(
            cfg(server_addresses=[SERVER, INTERNAL_IF], restrictions={"internal": [INTERNAL_IF]}),
            OUTSIDER,
            SEED,
            R,
            Reason.RELAY_INTERNAL_INTERFACE,
            server_ip=INTERNAL_IF,
        ),
        id="Q237927-sp3-internal-interface",
    ),
    pytest.param(
        Row(
            cfg(routing=[INBOUND, ALWAYS], restrictions=CLOSED),
            OUTSIDER,
            "IMCEASMTP-user+40always+2Eexample@contoso.com",
            R,
            Reason.ALWAYS_RELAY,
            resolved="user@always.example",
            next_hop="always.example",
        ),
        id="Q237927-Q195969-sp3-encapsulated-always-relay",
    ),
    pytest.param(
        Row(
            cfg(routing=[INBOUND, PARTNER]),
            OUTSIDER,
            "IMCEASMTP-user+40partner+2Eexample@contoso.com",
            R,
            Reason.OPEN_RELAY,
            resolved="user@mail.partner.example",
            next_hop="mail.partner.example",
        ),
        id="Q237927-Q190710-sp3-encapsulated-reroute-to-domain",
    ),
    pytest.param(
        Row(
            cfg(restrictions=CLOSED, directory=["alice@contoso.com"]),
            OUTSIDER,
            "IMCEASMTP-alice+40contoso+2Ecom@contoso.com",
            D,
            Reason.LOCAL_RECIPIENT,
            resolved=lower_is("alice@contoso.com"),
            next_hop=None,
        ),
        id="Q237927-sp3-encapsulated-local-address-delivered",
    ),
    pytest.param(
        Row(
            SP2_NOREROUTE,
            OUTSIDER,
            "IMCEASMTP-alice+40contoso+2Ecom@contoso.com",
            D,
            Reason.INBOUND_UNVERIFIED,
            resolved="alice@contoso.com",
            next_hop=None,
        ),
        id="Q237927-sp2-encapsulated-local-address-delivered-as-usual",
    ),
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            "IMCEASMTP-nodomain@contoso.com",
            X,
            Reason.MALFORMED_ENCAPSULATION,
            reply=ok("IMCEASMTP-nodomain@contoso.com"),
            ndr=NDR_UNKNOWN,
        ),
        id="Q237927-sp3-inner-address-not-a-path",
    ),
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            "IMCEASMTP-user+40example+2ecom@contoso.com",
            X,
            Reason.ENCAPSULATED_RELAY_DENIED,
            reply=RELAY_PROHIBITED,
        ),
        id="Q189492-sp3-lower-case-hex-still-decodes",
    ),
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            "IMCEASMTP-user+40example+2Ecom@[192.0.2.10]",
            X,
            Reason.ENCAPSULATED_RELAY_DENIED,
        ),
        id="Q237927-Q193316-sp3-encapsulated-at-server-literal",
    ),
    pytest.param(
        Row(
            SP2_NOREROUTE,
            OUTSIDER,
            "IMCEASMTP-user+40example+2Ecom@[192.0.2.10]",
            R,
            Reason.ENCAPSULATED_BYPASS,
            next_hop="example.com",
        ),
        id="Q237927-Q193316-sp2-encapsulated-at-server-literal",
    ),
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            "IMCEASMTP-user+40example+2Ecom@example.net",
            X,
            Reason.RELAY_DENIED,
            reply=RELAY_PROHIBITED,
        ),
        id="Q237927-encapsulated-at-remote-domain-is-a-plain-reroute",
    ),
    # --- MAILTO, handled like SMTP ----------------------------------------------------
    pytest.param(
        Row(
            NOREROUTE,
            OUTSIDER,
            SEED_MAILTO,
            X,
            Reason.ENCAPSULATED_NOT_REROUTED,
            ndr=NDR_NOT_REROUTED,
        ),
        id="mailto-sp3-noreroute-returned",
    ),
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            SEED_MAILTO,
            X,
            Reason.ENCAPSULATED_RELAY_DENIED,
            reply=RELAY_PROHIBITED,
        ),
        id="mailto-sp3-restrictions-refuse",
    ),
    pytest.param(
        Row(
            RESTRICTED,
            ALLOWED,
            SEED_MAILTO,
            R,
            Reason.RELAY_ALLOWED_HOST,
            resolved="user@example.com",
            next_hop="example.com",
        ),
        id="mailto-sp3-allowed-client",
    ),
    pytest.param(
        Row(
            SP2_NOREROUTE,
            OUTSIDER,
            SEED_MAILTO,
            R,
            Reason.ENCAPSULATED_BYPASS,
            resolved="user@example.com",
            next_hop="example.com",
        ),
        id="mailto-sp2-bypass",
    ),
    # --- Q271575: the prefix is case-sensitive ----------------------------------------
    pytest.param(
        Row(
            NOREROUTE,
            OUTSIDER,
            "imceasmtp-user+40example+2Ecom@contoso.com",
            D,
            Reason.INBOUND_UNVERIFIED,
            resolved="imceasmtp-user+40example+2Ecom@contoso.com",
        ),
        id="Q271575-lower-case-prefix-sp3-ordinary-local-part",
    ),
    pytest.param(
        Row(
            SP2_NOREROUTE,
            OUTSIDER,
            "imceasmtp-user+40example+2Ecom@contoso.com",
            D,
            Reason.INBOUND_UNVERIFIED,
        ),
        id="Q271575-lower-case-prefix-sp2-not-bypassed",
    ),
    pytest.param(
        Row(
            cfg(reroute=False, directory=["alice@contoso.com"]),
            OUTSIDER,
            "imceasmtp-user+40example+2Ecom@contoso.com",
            X,
            Reason.UNKNOWN_RECIPIENT,
            ndr=NDR_UNKNOWN,
        ),
        id="Q271575-lower-case-prefix-not-in-directory",
    ),
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            "ImceaSMTP-user+40example+2Ecom@contoso.com",
            D,
            Reason.INBOUND_UNVERIFIED,
        ),
        id="Q271575-mixed-case-prefix-ordinary-local-part",
    ),
    # --- Q245045: IMCEAEX -------------------------------------------------------------
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            IMCEAEX,
            D,
            Reason.ENCAPSULATED_EXCHANGE,
            reply=ok(IMCEAEX),
            ndr=None,
            resolved=EX_DN,
            next_hop=None,
        ),
        id="Q245045-imceaex-no-directory-delivered",
    ),
    pytest.param(
        Row(
            cfg(directory=["X500:/o=org/ou=site/cn=recipients/cn=jdoe"]),
            OUTSIDER,
            IMCEAEX,
            D,
            Reason.ENCAPSULATED_EXCHANGE,
            resolved=lower_is(EX_DN.lower()),
        ),
        id="Q245045-imceaex-directory-knows-dn-case-insensitive",
    ),
    pytest.param(
        Row(
            cfg(reroute=False, directory=[EX_DN]),
            OUTSIDER,
            IMCEAEX,
            D,
            Reason.ENCAPSULATED_EXCHANGE,
        ),
        id="Q245045-imceaex-noreroute-directory-knows-dn",
    ),
    pytest.param(
        Row(
            cfg(directory=["alice@contoso.com"]),
            OUTSIDER,
            IMCEAEX,
            X,
            Reason.UNKNOWN_RECIPIENT,
            reply=ok(IMCEAEX),
            ndr=NDR_UNKNOWN,
        ),
        id="Q245045-imceaex-unknown-dn-returned",
    ),
    pytest.param(
        Row(
            NOREROUTE,
            OUTSIDER,
            "IMCEAX500-_O=ORG_OU=SITE_CN=RECIPIENTS_CN=JDOE@contoso.com",
            D,
            Reason.ENCAPSULATED_EXCHANGE,
            resolved=EX_DN,
        ),
        id="Q245045-imceax500-no-directory-delivered",
    ),
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            "IMCEAEX-user+40elsewhere+2Eexample@contoso.com",
            X,
            Reason.MALFORMED_ENCAPSULATION,
            reply=ok("IMCEAEX-user+40elsewhere+2Eexample@contoso.com"),
            ndr=NDR_UNKNOWN,
        ),
        id="imceaex-carrying-no-legacy-dn-is-malformed",
    ),
    # --- gateways ---------------------------------------------------------------------
    pytest.param(
        Row(
            cfg(gateways=["X400"], restrictions=CLOSED),
            OUTSIDER,
            X400,
            D,
            Reason.ENCAPSULATED_GATEWAY,
            reply=ok(X400),
            ndr=None,
            resolved="c=US;a= ;p=MS;o=PARIS;s=user;",
            next_hop=None,
        ),
        id="gateway-x400-listed-delivered",
    ),
    pytest.param(
        Row(
            cfg(gateways=["FAX", "MS"]),
            OUTSIDER,
            X400,
            X,
            Reason.NO_GATEWAY,
            reply=ok(X400),
            ndr=NDR_NO_GATEWAY,
            resolved=None,
            next_hop=None,
        ),
        id="gateway-x400-not-listed-no-gateway",
    ),
    pytest.param(
        Row(
            cfg(gateways=[]),
            OUTSIDER,
            "IMCEAFAX-1234567890@contoso.com",
            X,
            Reason.NO_GATEWAY,
            ndr=NDR_NO_GATEWAY,
        ),
        id="gateway-empty-list-no-gateway",
    ),
    pytest.param(
        Row(
            NOREROUTE,
            OUTSIDER,
            "IMCEAFAX-1234567890@contoso.com",
            D,
            Reason.ENCAPSULATED_GATEWAY,
            resolved="1234567890",
        ),
        id="gateway-default-every-other-type-routed",
    ),
    # --- IMCEAINVALID, bad escapes, bad shapes ---------------------------------------
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            "IMCEAINVALID-user+40example+2Ecom@contoso.com",
            X,
            Reason.MALFORMED_ENCAPSULATION,
            ndr=NDR_UNKNOWN,
        ),
        id="outlook-imceainvalid-returned",
    ),
    pytest.param(
        Row(
            cfg(gateways=["INVALID", "X400"]),
            OUTSIDER,
            "IMCEAINVALID-user+40example+2Ecom@contoso.com",
            X,
            Reason.MALFORMED_ENCAPSULATION,
        ),
        id="outlook-imceainvalid-never-a-gateway-type",
    ),
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            "IMCEASMTP-user+4Oexample+2Ecom@contoso.com",
            X,
            Reason.MALFORMED_ENCAPSULATION,
            reply=ok("IMCEASMTP-user+4Oexample+2Ecom@contoso.com"),
            ndr=NDR_UNKNOWN,
        ),
        id="bad-escape-letter-O-sp3",
    ),
    pytest.param(
        Row(
            SP2_NOREROUTE,
            OUTSIDER,
            "IMCEASMTP-user+4Oexample+2Ecom@contoso.com",
            X,
            Reason.MALFORMED_ENCAPSULATION,
        ),
        id="bad-escape-letter-O-sp2-not-bypassed",
    ),
    pytest.param(
        Row(
            NOREROUTE,
            OUTSIDER,
            "IMCEASMTP-user+4Oexample+2Ecom@contoso.com",
            X,
            Reason.MALFORMED_ENCAPSULATION,
        ),
        id="bad-escape-sp3-noreroute",
    ),
    pytest.param(
        Row(OPEN, OUTSIDER, "IMCEASMTP-user+4@contoso.com", X, Reason.MALFORMED_ENCAPSULATION),
        id="bad-escape-truncated",
    ),
    pytest.param(
        Row(
            OPEN,
            OUTSIDER,
            "IMCEASMTP-user+40example+2Ecom=x+@contoso.com",
            X,
            Reason.MALFORMED_ENCAPSULATION,
        ),
        id="bad-escape-trailing-plus",
    ),
    pytest.param(
        Row(
            OPEN,
            OUTSIDER,
            "IMCEA-user+40example+2Ecom@contoso.com",
            X,
            Reason.MALFORMED_ENCAPSULATION,
        ),
        id="bad-shape-empty-type",
    ),
    pytest.param(
        Row(OPEN, OUTSIDER, "IMCEAABCDEFGHIJ-user@contoso.com", X, Reason.MALFORMED_ENCAPSULATION),
        id="bad-shape-type-longer-than-9",
    ),
    pytest.param(
        Row(OPEN, OUTSIDER, "IMCEASMTP-@contoso.com", X, Reason.MALFORMED_ENCAPSULATION),
        id="bad-shape-empty-address",
    ),
    pytest.param(
        Row(
            SP2_RESTRICTED,
            OUTSIDER,
            "IMCEASMTP-user.name@contoso.com",
            X,
            Reason.MALFORMED_ENCAPSULATION,
        ),
        id="bad-shape-raw-dot-in-encoded-part-sp2",
    ),
    # --- nesting ----------------------------------------------------------------------
    pytest.param(
        Row(
            OPEN,
            OUTSIDER,
            nested(2),
            R,
            Reason.OPEN_RELAY,
            resolved="user@example.net",
            next_hop="example.net",
        ),
        id="nesting-2-levels-sp3-open",
    ),
    pytest.param(
        Row(
            OPEN,
            OUTSIDER,
            nested(3),
            R,
            Reason.OPEN_RELAY,
            resolved="user@example.net",
            next_hop="example.net",
        ),
        id="nesting-3-levels-still-decided",
    ),
    pytest.param(
        Row(
            RESTRICTED,
            OUTSIDER,
            nested(3),
            X,
            Reason.ENCAPSULATED_RELAY_DENIED,
            reply=RELAY_PROHIBITED,
        ),
        id="nesting-3-levels-sp3-refused",
    ),
    pytest.param(
        Row(
            OPEN,
            OUTSIDER,
            nested(4),
            X,
            Reason.ENCAPSULATION_TOO_DEEP,
            reply=ok(nested(4)),
            ndr=NDR_UNKNOWN,
        ),
        id="nesting-4-levels-too-deep-sp3",
    ),
    pytest.param(
        Row(SP2_NOREROUTE, OUTSIDER, nested(4), X, Reason.ENCAPSULATION_TOO_DEEP),
        id="nesting-4-levels-too-deep-sp2",
    ),
    pytest.param(
        Row(
            SP2_NOREROUTE,
            OUTSIDER,
            nested(2),
            R,
            Reason.ENCAPSULATED_BYPASS,
            resolved="user@example.net",
            next_hop="example.net",
        ),
        id="nesting-2-levels-sp2-bypass",
    ),
]


def _bare(recipient: str) -> str:
    text = recipient.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    return text


def _expect(name: str, expected: Any, actual: Any) -> None:
    if expected is ANY:
        return
    if callable(expected):
        assert expected(actual), f"{name}: {actual!r}"
    else:
        assert actual == expected, f"{name}: {actual!r} != {expected!r}"


def decide_one(row: Row) -> imcea.Decision:
    settings = imcea.load_settings(row.settings)
    verdict = imcea.decide(
        imcea.Envelope("<sender@example.org>", [row.recipient]),
        row.ip,
        settings,
        authenticated=row.auth,
        server_ip=row.server_ip,
    )
    assert len(verdict) == 1
    return verdict[0]


@pytest.mark.parametrize("row", ROWS)
def test_decision_table(row: Row) -> None:
    decision = decide_one(row)
    assert decision.recipient == row.recipient
    assert (decision.action, decision.reason) == (row.action, row.reason), decision.detail
    check_against_table(decision)
    _expect("reply", row.reply, decision.reply)
    _expect("ndr", row.ndr, decision.ndr)
    _expect("resolved", row.resolved, decision.resolved)
    _expect("next_hop", row.next_hop, decision.next_hop)
    # a plain address (bracketed or not) accepted at RCPT is echoed in angle brackets
    bare = _bare(row.recipient)
    if decision.reply.startswith("250") and not set(bare) & set(' "\\') and bare[0] != "@":
        assert decision.reply == ok(bare)


def test_table_covers_every_reason() -> None:
    covered = {p.values[0].reason for p in ROWS}
    assert covered == set(Reason)
    assert set(REASONS_TABLE) == set(Reason)


def test_table_rows_agree_with_reasons_table() -> None:
    for p in ROWS:
        row = p.values[0]
        assert REASONS_TABLE[row.reason][0] is row.action, p.id


def test_table_ids_are_unique_and_rows_numerous() -> None:
    ids = [p.id for p in ROWS]
    assert len(ids) == len(set(ids))
    assert len(ROWS) >= 40


def test_reason_and_action_values() -> None:
    assert {a.value for a in Action} == {"deliver", "reroute", "return"}
    assert {r.value for r in Reason} == {r.value for r in REASONS_TABLE}
    for reason in Reason:
        assert isinstance(reason, str)
        assert reason == reason.value
        assert reason.value == reason.name.lower()


# ---------------------------------------------------------------------------
# the decide() API


def _decide(recipients: list[str], ip: Any = OUTSIDER, settings: Any = None, **kw: Any):
    if settings is None:
        settings = imcea.load_settings(RESTRICTED)
    return imcea.decide(imcea.Envelope("<s@example.org>", recipients), ip, settings, **kw)


def test_one_decision_per_recipient_in_order() -> None:
    recipients = [
        "alice@contoso.com",
        "user@",
        "user@example.net",
        "Postmaster",
        SEED,
        "alice@contoso.com",
    ]
    verdict = _decide(recipients)
    assert isinstance(verdict, collections.abc.Sequence)
    assert len(verdict) == len(recipients)
    assert [d.recipient for d in verdict] == recipients
    assert [d.reason for d in verdict] == [
        Reason.INBOUND_UNVERIFIED,
        Reason.MALFORMED_ADDRESS,
        Reason.RELAY_DENIED,
        Reason.POSTMASTER,
        Reason.ENCAPSULATED_RELAY_DENIED,
        Reason.INBOUND_UNVERIFIED,
    ]
    assert verdict[0] == verdict[-1]
    assert list(verdict[1:3]) == list(verdict)[1:3]
    for decision in verdict:
        assert isinstance(decision, imcea.Decision)
        check_against_table(decision)


def test_empty_envelope_gives_empty_verdict() -> None:
    verdict = _decide([])
    assert len(verdict) == 0
    assert list(verdict) == []


@pytest.mark.parametrize(
    "ip",
    [
        ALLOWED,
        ipaddress.IPv4Address(ALLOWED),
        "::ffff:192.168.0.7",
        ipaddress.IPv6Address("::ffff:192.168.0.7"),
        ipaddress.ip_address("::ffff:c0a8:7"),
    ],
    ids=["str", "IPv4Address", "mapped-str", "mapped-IPv6Address", "mapped-hex"],
)
def test_sender_ip_forms_are_equivalent(ip: Any) -> None:
    verdict = _decide(["user@example.net"], ip)
    assert verdict[0].action is Action.REROUTE
    assert verdict[0].reason is Reason.RELAY_ALLOWED_HOST


@pytest.mark.parametrize("ip", ["::ffff:203.0.113.5", ipaddress.IPv6Address("::ffff:203.0.113.5")])
def test_ipv4_mapped_client_on_deny_list_is_denied(ip: Any) -> None:
    settings = imcea.load_settings(cfg(restrictions={**CLOSED, "deny": ["203.0.113.0/24"]}))
    verdict = _decide(["user@example.net"], ip, settings)
    assert verdict[0].reason is Reason.DENIED_HOST


@pytest.mark.parametrize(
    "server_ip", [INTERNAL_IF, ipaddress.IPv4Address(INTERNAL_IF), "::ffff:10.0.0.1"]
)
def test_server_ip_forms_are_equivalent(server_ip: Any) -> None:
    settings = imcea.load_settings(
        cfg(server_addresses=[SERVER, INTERNAL_IF], restrictions={"internal": [INTERNAL_IF]})
    )
    verdict = _decide(["user@example.net"], OUTSIDER, settings, server_ip=server_ip)
    assert verdict[0].reason is Reason.RELAY_INTERNAL_INTERFACE


BAD_IPS = [
    pytest.param("garbage", id="garbage"),
    pytest.param("", id="empty"),
    pytest.param("10.0.0.0/8", id="network-str"),
    pytest.param(ipaddress.ip_network("10.0.0.0/8"), id="network-object"),
    pytest.param("10.0.0.256", id="octet-out-of-range"),
    pytest.param(167772161, id="int"),
    pytest.param(b"10.0.0.1", id="bytes"),
    pytest.param(["10.0.0.1"], id="list"),
]


@pytest.mark.parametrize("ip", [*BAD_IPS, pytest.param(None, id="None")])
def test_invalid_sender_ip_raises_error(ip: Any) -> None:
    with pytest.raises(imcea.Error):
        _decide(["user@example.net"], ip)


@pytest.mark.parametrize("server_ip", BAD_IPS)
def test_invalid_server_ip_raises_error(server_ip: Any) -> None:
    with pytest.raises(imcea.Error):
        _decide(["user@example.net"], OUTSIDER, server_ip=server_ip)


@pytest.mark.parametrize(
    "recipient",
    [
        "",
        " ",
        "<",
        ">",
        "<<user@example.net>>",
        "@",
        "@@",
        "\x00user@contoso.com",
        "user@contoso.com\r\nRCPT TO:<x@example.net>",
        "<@contoso.com>",
        "<@contoso.com:>",
        '"',
        "\\",
        "user@[]",
        "user@[IPv6:nonsense]",
        "user@[1.2.3.4.5]",
        "IMCEASMTP-",
        "x" * 5000 + "@contoso.com",
    ],
)
def test_malformed_recipient_is_a_return_never_an_exception(recipient: str) -> None:
    verdict = _decide([recipient, "alice@contoso.com"], settings=imcea.load_settings(OPEN))
    decision = verdict[0]
    assert decision.recipient == recipient
    assert decision.action is Action.RETURN
    check_against_table(decision)
    assert verdict[1].reason is Reason.INBOUND_UNVERIFIED


def test_decide_is_pure() -> None:
    source = cfg(
        routing=[INBOUND, ALWAYS, PARTNER],
        restrictions={**CLOSED, "authenticated": True, "deny": ["192.168.0.66"]},
        directory=["alice@contoso.com", EX_DN],
        gateways=["X400"],
    )
    pristine = copy.deepcopy(source)
    settings = imcea.load_settings(source)
    twin = imcea.load_settings(copy.deepcopy(source))
    recipients = [
        "alice@contoso.com",
        "bob@contoso.com",
        "user@example.net",
        "user@always.example",
        "user@partner.example",
        SEED,
        IMCEAEX,
        X400,
        nested(4),
        "user@",
        "Postmaster",
    ]
    envelope = imcea.Envelope("<s@example.org>", recipients)
    first = imcea.decide(envelope, OUTSIDER, settings)
    allowed = imcea.decide(envelope, ALLOWED, settings)
    second = imcea.decide(envelope, OUTSIDER, settings)
    assert list(first) == list(second)
    assert first == second
    assert list(allowed) != list(first)  # the client matters, and is not remembered
    assert [d.action for d in second].count(Action.REROUTE) == 1  # only always.example
    assert settings == twin
    assert source == pristine


def test_permission_is_not_shared_between_calls() -> None:
    settings = imcea.load_settings(RESTRICTED)
    outcomes = [
        _decide(["user@example.net"], ip, settings)[0].reason
        for ip in (ALLOWED, OUTSIDER, ALLOWED, "192.168.1.1")
    ]
    assert outcomes == [
        Reason.RELAY_ALLOWED_HOST,
        Reason.RELAY_DENIED,
        Reason.RELAY_ALLOWED_HOST,
        Reason.RELAY_DENIED,
    ]


def test_many_clients_each_get_their_own_answer() -> None:
    """Purity over many calls: thousands of distinct clients, in str and ipaddress form,
    interleaved and repeated, each decided by the allow list alone (Q193922)."""
    settings = imcea.load_settings(cfg(restrictions={"allow": ["192.168.0.0/255.255.248.0"]}))
    envelope = imcea.Envelope("<s@example.org>", ["user@example.net"])
    clients = [f"192.168.{i // 250}.{i % 250 + 1}" for i in range(5000)]
    order = clients + clients[:300] + clients[-300:]
    for n, text in enumerate(order):
        client: Any = ipaddress.IPv4Address(text) if n % 3 == 0 else text
        if n % 7 == 0:
            client = f"::ffff:{text}"
        decision = imcea.decide(envelope, client, settings)[0]
        third = int(text.split(".")[2])
        expected = Reason.RELAY_ALLOWED_HOST if third < 8 else Reason.RELAY_DENIED
        assert decision.reason is expected, (text, decision)


def test_remembered_decisions_equal_fresh_ones() -> None:
    """Decisions are remembered with the settings; reusing them must change nothing.

    The same recipients are decided for clients that may and may not relay, in turns,
    on one settings value, and each decision is compared with one made on a fresh copy
    of the settings (which remembers nothing yet)."""
    data = cfg(
        server_addresses=[SERVER],
        directory=["alice@contoso.com", EX_DN],
        restrictions={"allow": [ALLOWED], "deny": ["10.9.9.9"], "authenticated": True},
        routing=[
            {"domain": "contoso.com", "action": "inbound"},
            {"domain": "always.example", "action": "relay"},
        ],
    )
    shared = imcea.load_settings(data)
    recipients = [
        "alice@contoso.com",
        "bob@contoso.com",
        "user@example.net",
        "IMCEASMTP-user+40example+2Enet@contoso.com",
        IMCEAEX,
        "x@always.example",
        f"user@[{SERVER}]",
        "bad address",
        "Postmaster",
        "u" * 300 + "@example.net",
    ]
    clients = [(ALLOWED, False), (OUTSIDER, False), ("10.9.9.9", False), (OUTSIDER, True)]
    for _ in range(3):
        for client, auth in clients:
            for recipient in recipients:
                envelope = imcea.Envelope("s@example.org", [recipient])
                got = imcea.decide(envelope, client, shared, authenticated=auth)[0]
                fresh = imcea.load_settings(data)
                want = imcea.decide(envelope, client, fresh, authenticated=auth)[0]
                assert got == want, (client, auth, recipient)


def test_authenticated_and_server_ip_are_per_call() -> None:
    settings = imcea.load_settings(
        cfg(
            server_addresses=[SERVER, INTERNAL_IF],
            restrictions={"authenticated": True, "internal": [INTERNAL_IF]},
        )
    )
    assert _decide(["u@example.net"], OUTSIDER, settings, authenticated=True)[0].reason is (
        Reason.RELAY_AUTHENTICATED
    )
    assert _decide(["u@example.net"], OUTSIDER, settings)[0].reason is Reason.RELAY_DENIED
    assert _decide(["u@example.net"], OUTSIDER, settings, server_ip=INTERNAL_IF)[0].reason is (
        Reason.RELAY_INTERNAL_INTERFACE
    )
    assert _decide(["u@example.net"], OUTSIDER, settings, server_ip=SERVER)[0].reason is (
        Reason.RELAY_DENIED
    )


# ---------------------------------------------------------------------------
# the seed (KB Q237927), end to end


def _seed(settings: dict[str, Any], ip: str = SEED_HOST) -> imcea.Decision:
    verdict = imcea.decide(
        imcea.Envelope("<admin@othersite.example>", [SEED]), ip, imcea.load_settings(settings)
    )
    return verdict[0]


def test_seed_rerouting_disabled() -> None:
    """'After you apply the fix, if rerouting is disabled, the IMS returns all messages
    that are sent to an encapsulated SMTP one-off address.'  Before it: rerouted."""
    after = _seed(cfg(reroute=False, release="SP3"))
    assert after.action is Action.RETURN
    assert after.reason is Reason.ENCAPSULATED_NOT_REROUTED
    assert after.reply == ok(SEED)  # accepted at RCPT, returned afterwards
    assert after.ndr == NDR_NOT_REROUTED
    before = _seed(cfg(reroute=False, release="SP2"))
    assert before.action is Action.REROUTE
    assert before.reason is Reason.ENCAPSULATED_BYPASS
    assert (before.resolved, before.next_hop) == ("user@example.com", "example.com")


def test_seed_rerouting_enabled_restrictions_refuse() -> None:
    """'If rerouting is enabled, but one or more routing restrictions have been defined,
    the messages are rerouted or returned based on these restrictions.'"""
    restricted = {"allow": ["10.1.0.0/16"], "authenticated": True}
    after = _seed(cfg(release="SP3", restrictions=restricted))
    assert after.action is Action.RETURN
    assert after.reason is Reason.ENCAPSULATED_RELAY_DENIED
    assert after.reply == RELAY_PROHIBITED
    assert after.ndr is None
    before = _seed(cfg(release="SP2", restrictions=restricted))
    assert before.action is Action.REROUTE
    assert before.reason is Reason.ENCAPSULATED_BYPASS


def test_seed_site_connector_192_168_0_1() -> None:
    """The side effect: SP2 let 192.168.0.1 relay though it was not in the list; after
    the fix it no longer works, until 192.168.0.1 is added to the list."""
    missing = cfg(site_connector=True, restrictions={"allow": ["10.1.0.0/16"]})
    added = cfg(site_connector=True, restrictions={"allow": ["10.1.0.0/16", SEED_HOST]})

    sp2 = _seed({**missing, "release": "SP2"})
    assert sp2.action is Action.REROUTE  # "relay mail ... even if you had not added"
    assert sp2.reason is Reason.ENCAPSULATED_BYPASS

    sp3 = _seed({**missing, "release": "SP3"})
    assert sp3.action is Action.RETURN  # "mail relaying from 192.168.0.1 no longer works"
    assert sp3.reason is Reason.ENCAPSULATED_RELAY_DENIED
    assert sp3.reply == RELAY_PROHIBITED

    fixed = _seed({**added, "release": "SP3"})
    assert fixed.action is Action.REROUTE  # "restore proper functionality by adding"
    assert fixed.reason is Reason.RELAY_ALLOWED_HOST
    assert (fixed.resolved, fixed.next_hop) == ("user@example.com", "example.com")

    # other hosts stay refused after the fix
    assert _seed({**added, "release": "SP3"}, "192.168.0.2").reason is (
        Reason.ENCAPSULATED_RELAY_DENIED
    )


def test_seed_do_not_reroute_delivers_gal_and_returns_the_rest() -> None:
    """'messages addressed to recipients that are listed in the global address list are
    delivered, but all other messages are normally returned with an NDR.'"""
    settings = imcea.load_settings(
        cfg(reroute=False, directory=["alice@contoso.com", "SMTP:bob@contoso.com", EX_DN])
    )
    recipients = [
        "alice@contoso.com",
        "<BOB@contoso.com>",
        "carol@contoso.com",
        "user@example.net",
        "user%example.net@contoso.com",
        "user@[198.51.100.7]",
        SEED,
    ]
    verdict = imcea.decide(imcea.Envelope("<x@example.org>", recipients), OUTSIDER, settings)
    delivered = [d.recipient for d in verdict if d.action is Action.DELIVER]
    assert delivered == ["alice@contoso.com", "<BOB@contoso.com>"]
    for decision in verdict[2:]:
        assert decision.action is Action.RETURN
        assert decision.reply.startswith("250 ")  # accepted, then an NDR
        assert decision.ndr
    assert Action.REROUTE not in {d.action for d in verdict}


@pytest.mark.parametrize(
    "call",
    [
        lambda: imcea.Envelope(None, ["a@example.org"]),  # type: ignore[arg-type]
        lambda: imcea.Envelope(b"a@example.org", ["a@example.org"]),  # type: ignore[arg-type]
        lambda: imcea.check(None),  # type: ignore[arg-type]
        lambda: imcea.replay(None, imcea.Settings()),  # type: ignore[arg-type]
        lambda: imcea.replay("not a list", imcea.Settings()),
    ],
    ids=["sender-none", "sender-bytes", "check-none", "replay-none", "replay-str"],
)
def test_wrong_argument_types_raise_imcea_error(call: Callable[[], object]) -> None:
    with pytest.raises(imcea.Error):
        call()
