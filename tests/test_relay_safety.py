"""The relay-safety invariant of DESIGN §2.4, tested with hypothesis.

With release SP3, ``decide()`` returns Reroute only when §2.3 permits the client or the
destination is an "always relay" routing entry; with ``reroute=False`` (and SP3) it never
returns Reroute, whatever the recipient string (KB Q237927, MS99-027).

Permission is recomputed here by an independent reference written from DESIGN §2.3 with
plain :mod:`ipaddress` (``(ip AND mask) == net``, KB Q193922), and routing-table matching
from §2.2 (KB Q169683, Q217217).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from expected import check_against_table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imcea
from imcea import Action, Reason

PERMITTED_REASONS = {
    Reason.OPEN_RELAY,
    Reason.RELAY_AUTHENTICATED,
    Reason.RELAY_ALLOWED_HOST,
    Reason.RELAY_INTERNAL_INTERFACE,
}


def budget(examples: int) -> Any:
    """Hypothesis settings: *examples* runs, no deadline (the file stays well under 30 s)."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# ---------------------------------------------------------------------------
# vocabulary

OURS = ["contoso.com", "mail.contoso.com", "exact.contoso.com", "ims.contoso.com"]
REMOTES = [
    "example.net",
    "relay-target.example",
    "partner.example",
    "always.example",
    "sub.always.example",
    "chelsea.com",
    "sea.com",
]
ROUTE_DOMAINS = [
    "contoso.com",
    "exact.contoso.com",
    "always.example",
    "partner.example",
    "example.net",
    "sea.com",
    "com",
]
REROUTE_TARGETS = ["mail.partner.example", "gw.example", "contoso.com", "[198.51.100.7]"]
SERVER_POOL = ["192.0.2.10", "10.0.0.1", "2001:db8::25", "1.2.3.4"]
LITERALS = [
    "[192.0.2.10]",
    "[10.0.0.1]",
    "[198.51.100.7]",
    "[1.2.3.4]",
    "[IPv6:::1]",
    "[IPv6:2001:db8::25]",
    "[IPv6:2001:DB8:0::25]",
    "[IPv6:::ffff:192.0.2.10]",
]
CLIENT_POOL = [
    "192.168.0.1",
    "192.168.0.7",
    "192.168.0.66",
    "192.168.1.1",
    "10.0.0.5",
    "10.0.0.1",
    "203.0.113.5",
    "198.51.100.7",
    "192.0.2.10",
    "2001:db8::1",
    "2001:db8:1::5",
    "::1",
    "::ffff:192.168.0.7",
    "::ffff:203.0.113.5",
]
NETWORK_BASES = [
    "192.168.0.0",
    "192.168.0.1",
    "192.168.0.66",
    "10.0.0.0",
    "10.0.0.1",
    "203.0.113.0",
    "203.0.113.5",
    "192.0.2.10",
    "0.0.0.0",
]
NETWORK_BASES6 = ["2001:db8::", "2001:db8::1", "2001:db8:1::", "::1", "::"]

LOCALS = [
    "user",
    "relaytest",
    "Alice",
    "alice",
    "postmaster",
    "Postmaster",
    "user.name",
    "user+tag",
    "user%example.net",
    "user%example.net%contoso.com",
    "example.net!user",
    "contoso.com!example.net!user",
    '"user@example.net"',
    '"user%example.net"',
    '"us\\"er"',
    '"user name"',
    "user@example.net",
    "user\\@example.net",
    "IMCEASMTP-user+40example+2Enet",
    "IMCEASMTP-user+40example+2enet",
    "imceasmtp-user+40example+2Enet",
    "ImceaSmtp-user+40example+2Enet",
    "IMCEAMAILTO-user+40example+2Enet",
    "IMCEASMTP-user+40+5B198+2E51+2E100+2E7+5D",
    "IMCEASMTP-user+40always+2Eexample",
    "IMCEASMTP-alice+40contoso+2Ecom",
    "IMCEASMTP-user+4Oexample+2Enet",
    "IMCEASMTP-user+4",
    "IMCEASMTP-",
    "IMCEA-user",
    "IMCEAEX-_O=ORG_OU=SITE_CN=RECIPIENTS_CN=JDOE",
    "IMCEAEX-user+40example+2Enet",
    "IMCEAX400-c=US+3Ba=+20+3B",
    "IMCEAINVALID-user+40example+2Enet",
    "+40",
    "+2E",
    "user+40example+2Enet",
]
TOKENS = [
    "user",
    "@",
    "%",
    "!",
    '"',
    "\\",
    "<",
    ">",
    ".",
    ",",
    ":",
    " ",
    "@a,@b:",
    "@contoso.com:",
    "[1.2.3.4]",
    "[192.0.2.10]",
    "[IPv6:::1]",
    "IMCEASMTP-",
    "imceasmtp-",
    "IMCEAMAILTO-",
    "IMCEAEX-",
    "+40",
    "+2E",
    "+2e",
    "+4O",
    "_",
    *OURS,
    *REMOTES,
    "CONTOSO.COM.",
    "Example.NET.",
]


_VARIANTS = (
    lambda d: d,
    str.upper,
    str.title,
    lambda d: d + ".",
    lambda d: d.upper() + ".",
)


def variants(names: list[str]) -> st.SearchStrategy[str]:
    """The names, in any case and with or without the trailing dot."""
    return st.builds(
        lambda name, how: how(name), st.sampled_from(names), st.sampled_from(_VARIANTS)
    )


literals = st.sampled_from(LITERALS)
domains = st.one_of(variants(OURS + REMOTES), literals)
plain_domains = st.sampled_from(OURS + REMOTES)


def _assemble(local: str, domain: str, hops: list[str], brackets: bool) -> str:
    address = f"{local}@{domain}"
    if hops:  # an RFC 821 source route
        address = ",".join("@" + h for h in hops) + ":" + address
    return f"<{address}>" if brackets else address


structured = st.builds(
    _assemble,
    st.sampled_from(LOCALS),
    domains,
    st.lists(st.one_of(plain_domains, literals), max_size=2),
    st.booleans(),
)

_HEX = re.compile(r"\+([0-9A-F]{2})")


def _mangle(address: str, how: str | None) -> str:
    local, at, domain = address.rpartition("@")
    if not at or how is None:
        return address
    if how == "lower_prefix":
        dash = local.find("-")
        local = local[:dash].lower() + local[dash:]
    elif how == "lower_hex":
        local = _HEX.sub(lambda m: "+" + m.group(1).lower(), local)
    else:
        local = local.replace("+40", "+4O", 1)
    return f"{local}@{domain}"


def _encapsulate(inner: str, layers: list[tuple[str, str]], how: str | None, brackets: bool) -> str:
    """*inner* encapsulated by each layer in turn (innermost first), then mangled."""
    address = inner
    for addrtype, domain in layers:
        try:
            address = imcea.encode(addrtype, address, domain)
        except imcea.Error:
            break
    address = _mangle(address, how)
    return f"<{address}>" if brackets else address


nested = st.builds(
    _encapsulate,
    st.one_of(
        st.builds(
            "{}@{}".format,
            st.sampled_from(["user", "alice", "user%example.net", "example.net!user"]),
            st.one_of(plain_domains, literals),
        ),
        st.sampled_from(LOCALS).map(lambda local: local + "@contoso.com"),
        st.sampled_from(["/O=ORG/OU=SITE/CN=RECIPIENTS/CN=JDOE", "nodomain", "Postmaster"]),
    ),
    st.lists(
        st.tuples(
            st.sampled_from(["SMTP", "SMTP", "MAILTO", "EX", "X500", "X400", "FAX", "INVALID"]),
            st.sampled_from([*OURS, *REMOTES, "[192.0.2.10]", "[198.51.100.7]"]),
        ),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from([None, None, "lower_prefix", "lower_hex", "bad_escape"]),
    st.booleans(),
)

soup = st.lists(st.sampled_from(TOKENS), max_size=12).map("".join)
recipients = st.one_of(
    structured, structured, structured, nested, nested, nested, soup, st.text(max_size=80)
)


def _mask_text(mask: int) -> str:
    return str(ipaddress.IPv4Address(mask))


def _prefix_mask(length: int) -> int:
    return (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF


_bases4 = st.sampled_from(NETWORK_BASES)
network_text = st.one_of(
    _bases4,  # a single address
    st.builds("{}/{}".format, _bases4, st.integers(0, 32)),  # CIDR, host bits or not
    st.builds("{}/{}".format, _bases4, st.integers(0, 32).map(_prefix_mask).map(_mask_text)),
    # a non-contiguous mask, legal in the IMS registry (DESIGN §2.1)
    st.builds("{}/{}".format, _bases4, st.integers(0, 0xFFFFFFFF).map(_mask_text)),
    st.builds("{}/{}".format, st.sampled_from(NETWORK_BASES6), st.integers(0, 128)),
)
networks = st.lists(network_text, max_size=3)


def _entry(key: tuple[str, bool], action: str, to: str) -> dict[str, str]:
    domain, exact = key
    entry = {"domain": ("#" if exact else "") + domain, "action": action}
    if action == "reroute":
        entry["to"] = to
    return entry


_random_routes = st.lists(
    st.builds(
        _entry,
        st.tuples(st.sampled_from(ROUTE_DOMAINS), st.booleans()),
        st.sampled_from(["inbound", "reroute", "relay"]),
        st.sampled_from(REROUTE_TARGETS),
    ),
    max_size=5,
    unique_by=lambda entry: entry["domain"],
)


def _with_home(home: bool, routes: list[dict[str, str]]) -> list[dict[str, str]]:
    """Usually our own domain is inbound (so encapsulated addresses reach step 4)."""
    if not home:
        return routes
    return [
        {"domain": "contoso.com", "action": "inbound"},
        *(r for r in routes if r["domain"] != "contoso.com"),
    ]


route_entries = st.builds(_with_home, st.integers(0, 3).map(bool), _random_routes)
restrictions_maps = st.fixed_dictionaries(
    {
        "authenticated": st.booleans(),
        "allow": networks,
        "internal": networks,
        "deny": networks,
    }
)
directories = st.one_of(
    st.none(),
    st.lists(
        st.sampled_from(
            [
                "alice@contoso.com",
                "SMTP:user@example.net",
                "X500:/o=org/ou=site/cn=recipients/cn=jdoe",
                "alice@[192.0.2.10]",
            ]
        ),
        max_size=3,
    ),
)
gateway_lists = st.one_of(st.none(), st.lists(st.sampled_from(["X400", "FAX", "MS"]), max_size=2))
server_address_lists = st.lists(st.sampled_from(SERVER_POOL), max_size=3, unique=True)


def settings_maps(
    *, release: str | None = None, reroute: bool | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "reroute": st.booleans() if reroute is None else st.just(reroute),
            "release": st.sampled_from(["SP2", "SP3"]) if release is None else st.just(release),
            "routing": route_entries,
            "restrictions": restrictions_maps,
            "server_addresses": server_address_lists,
            "directory": directories,
            "gateways": gateway_lists,
        }
    )


clients = st.one_of(st.sampled_from(CLIENT_POOL), st.ip_addresses().map(str))
server_ips = st.one_of(st.none(), st.sampled_from([*SERVER_POOL, "203.0.113.1"]))

# ---------------------------------------------------------------------------
# the independent reference (DESIGN §2.2, §2.3)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(text)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # matched as its IPv4 address
    return ip


def ref_in(networks_written: list[str], ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether *ip* matches one entry: ``(ip AND mask) == net``, masks as the IMS held them."""
    for text in networks_written:
        address_text, sep, mask_text = text.partition("/")
        net = ipaddress.ip_address(address_text)
        if net.version != ip.version:
            continue
        width = 32 if net.version == 4 else 128
        if not sep:
            mask = (1 << width) - 1
        elif "." in mask_text:
            mask = int(ipaddress.IPv4Address(mask_text))
        else:
            length = int(mask_text)
            mask = ((1 << length) - 1) << (width - length)
        if int(ip) & mask == int(net):
            return True
    return False


def ref_permissions(
    restr: dict[str, Any], client: str, authenticated: bool, server_ip: str | None
) -> set[Reason]:
    """Every §2.3 ground on which the client may relay (empty: it may not)."""
    ip = _ip(client)
    if ref_in(restr["deny"], ip):
        return set()
    if not (restr["authenticated"] or restr["allow"] or restr["internal"]):
        return {Reason.OPEN_RELAY}
    grounds = set()
    if authenticated and restr["authenticated"]:
        grounds.add(Reason.RELAY_AUTHENTICATED)
    if ref_in(restr["allow"], ip):
        grounds.add(Reason.RELAY_ALLOWED_HOST)
    if server_ip is not None and ref_in(restr["internal"], _ip(server_ip)):
        grounds.add(Reason.RELAY_INTERNAL_INTERFACE)
    return grounds


def ref_denied(restr: dict[str, Any], client: str) -> bool:
    return ref_in(restr["deny"], _ip(client))


def ref_route(domain: str, routing: list[dict[str, str]]) -> dict[str, str] | None:
    """§2.2: exact ``#`` entries first, then the longest plain entry on whole labels."""
    name = domain.lower()
    if name.endswith("."):
        name = name[:-1]
    for entry in routing:
        if entry["domain"].startswith("#") and entry["domain"][1:] == name:
            return entry
    best = None
    for entry in routing:
        written = entry["domain"]
        if written.startswith("#"):
            continue
        if (name == written or name.endswith("." + written)) and (
            best is None or len(written) > len(best["domain"])
        ):
            best = entry
    return best


def _host(name: str | None) -> str | None:
    """A domain in comparison form (case and one trailing dot ignored)."""
    if name is None:
        return None
    name = name.lower()
    return name[:-1] if name.endswith(".") else name


def _run(
    source: dict[str, Any], rcpts: list[str], client: str, auth: bool, server_ip: str | None
) -> imcea.Verdict:
    verdict = imcea.decide(
        imcea.Envelope("<probe@example.org>", rcpts),
        client,
        imcea.load_settings(source),
        authenticated=auth,
        server_ip=server_ip,
    )
    assert len(verdict) == len(rcpts)
    assert [d.recipient for d in verdict] == rcpts
    return verdict


envelopes = st.lists(recipients, min_size=1, max_size=4)

# ---------------------------------------------------------------------------
# the properties


@budget(200)
@given(settings_maps(release="SP3"), envelopes, clients, st.booleans(), server_ips)
def test_sp3_reroutes_only_permitted_clients_or_always_relay(
    source: dict[str, Any], rcpts: list[str], client: str, auth: bool, server_ip: str | None
) -> None:
    """(a) SP3: a Reroute is an always-relay destination or a client §2.3 permits."""
    grounds = ref_permissions(source["restrictions"], client, auth, server_ip)
    for decision in _run(source, rcpts, client, auth, server_ip):
        if decision.action is not Action.REROUTE:
            continue
        assert decision.reason is not Reason.ENCAPSULATED_BYPASS  # SP2 only
        if decision.reason is Reason.ALWAYS_RELAY:
            entry = ref_route(_host(decision.next_hop), source["routing"])
            assert entry is not None and entry["action"] == "relay", decision
        else:
            assert decision.reason in grounds, (decision, grounds)


@budget(150)
@given(settings_maps(release="SP3", reroute=False), envelopes, clients, st.booleans(), server_ips)
def test_sp3_without_rerouting_never_reroutes(
    source: dict[str, Any], rcpts: list[str], client: str, auth: bool, server_ip: str | None
) -> None:
    """(b) SP3 with rerouting off: never a Reroute, whatever the recipient string."""
    for decision in _run(source, rcpts, client, auth, server_ip):
        assert decision.action is not Action.REROUTE, decision
        check_against_table(decision)


@budget(150)
@given(settings_maps(), envelopes, clients, st.booleans(), server_ips)
def test_decide_never_raises_and_agrees_with_the_reasons_table(
    source: dict[str, Any], rcpts: list[str], client: str, auth: bool, server_ip: str | None
) -> None:
    """(c) no exception for string recipients; (d) action, reason, reply and NDR agree
    with the reasons table of DESIGN §2.4."""
    verdict = _run(source, rcpts, client, auth, server_ip)
    for decision in verdict:
        check_against_table(decision)
        if decision.reason is Reason.ENCAPSULATED_BYPASS:
            assert source["release"] == "SP2"
        if decision.reason is Reason.DENIED_HOST:
            assert ref_denied(source["restrictions"], client)


@budget(100)
@given(
    settings_maps(release="SP3", reroute=True),
    st.sampled_from(["user", "relaytest", "Alice"]),
    st.one_of(
        variants([*OURS, *REMOTES, "gw.example", "mail.partner.example"]),
        st.sampled_from(["[192.0.2.10]", "[10.0.0.1]", "[198.51.100.7]", "[1.2.3.4]"]),
    ),
    clients,
    st.booleans(),
    server_ips,
)
def test_plain_recipients_follow_the_reference(
    source: dict[str, Any],
    local: str,
    domain: str,
    client: str,
    auth: bool,
    server_ip: str | None,
) -> None:
    """(e) the converse for plain ``local@domain``: refused exactly when §2.3 refuses."""
    (decision,) = _run(source, [f"<{local}@{domain}>"], client, auth, server_ip)
    check_against_table(decision)
    restr = source["restrictions"]
    grounds = ref_permissions(restr, client, auth, server_ip)
    if domain.startswith("["):
        literal = _ip(domain[1:-1])
        servers = {_ip(s) for s in source["server_addresses"]}
        entry = {"action": "inbound"} if literal in servers else None
        hop = domain
    else:
        entry = ref_route(domain, source["routing"])
        hop = _host(domain)
    if entry is not None and entry["action"] == "inbound":
        assert decision.action is not Action.REROUTE
        assert decision.reply.startswith("250 "), decision
        return
    if entry is not None and entry["action"] == "relay":
        assert (decision.action, decision.reason) == (Action.REROUTE, Reason.ALWAYS_RELAY)
        assert _host(decision.next_hop) == hop
        return
    if entry is not None:  # reroute to another domain (KB Q190710)
        hop = entry["to"]
    if grounds:
        assert decision.action is Action.REROUTE, decision
        assert decision.reason in grounds, (decision, grounds)
        assert _host(decision.next_hop) == _host(hop)
        assert decision.resolved.lower() == f"{local}@{hop}".lower()
    else:
        expected = Reason.DENIED_HOST if ref_denied(restr, client) else Reason.RELAY_DENIED
        assert (decision.action, decision.reason) == (Action.RETURN, expected), decision
        assert decision.reply == "550 Relaying is prohibited"


@budget(100)
@given(
    settings_maps(release="SP3", reroute=True),
    st.sampled_from(
        [
            "user@example.net",
            "user@relay-target.example",
            "user@always.example",
            "user@partner.example",
        ]
    ),
    st.integers(1, 3),
    clients,
    st.booleans(),
    server_ips,
)
def test_sp3_encapsulated_one_offs_obey_the_restrictions(
    source: dict[str, Any],
    inner: str,
    levels: int,
    client: str,
    auth: bool,
    server_ip: str | None,
) -> None:
    """The seed's fix: an encapsulated one-off of a remote address, at our own inbound
    domain, is relayed only as the inner address would be (or refused with 550)."""
    source = {
        **source,
        "routing": [{"domain": "#ims.contoso.com", "action": "inbound"}, *source["routing"]],
    }
    address = inner
    for _ in range(levels):
        address = imcea.encode("SMTP", address, "ims.contoso.com")
    (decision,) = _run(source, [address], client, auth, server_ip)
    check_against_table(decision)
    entry = ref_route(inner.partition("@")[2], source["routing"])
    grounds = ref_permissions(source["restrictions"], client, auth, server_ip)
    if entry is not None and entry["action"] == "inbound":
        assert decision.action is not Action.REROUTE
    elif entry is not None and entry["action"] == "relay":
        assert decision.reason is Reason.ALWAYS_RELAY
    elif grounds:
        assert decision.action is Action.REROUTE
        assert decision.reason in grounds
    else:
        assert decision.reason is Reason.ENCAPSULATED_RELAY_DENIED, decision
        assert decision.reply == "550 Relaying is prohibited"


# ---------------------------------------------------------------------------
# the reference itself (so that a wrong reference cannot hide a bug)


def test_reference_network_matching() -> None:
    ip = ipaddress.IPv4Address
    assert ref_in(["192.168.0.0/255.255.255.0"], ip("192.168.0.7"))
    assert ref_in(["192.168.0.0/24"], ip("192.168.0.255"))
    assert not ref_in(["192.168.0.1/255.255.255.0"], ip("192.168.0.1"))  # host bits
    assert not ref_in(["192.168.0.1/24"], ip("192.168.0.1"))
    assert ref_in(["10.0.0.0/255.0.255.0"], ip("10.7.0.9"))  # non-contiguous
    assert not ref_in(["10.0.0.0/255.0.255.0"], ip("10.7.1.9"))
    assert ref_in(["0.0.0.0/0"], ip("203.0.113.5"))
    assert ref_in(["2001:db8::/32"], ipaddress.IPv6Address("2001:db8::1"))
    assert not ref_in(["2001:db8::/32"], ip("192.168.0.1"))
    assert _ip("::ffff:192.168.0.7") == ip("192.168.0.7")


def test_reference_permissions() -> None:
    restr = {"authenticated": False, "allow": [], "internal": [], "deny": []}
    assert ref_permissions(restr, "203.0.113.5", False, None) == {Reason.OPEN_RELAY}
    assert (
        ref_permissions({**restr, "deny": ["203.0.113.0/24"]}, "203.0.113.5", True, None) == set()
    )
    closed = {**restr, "allow": ["192.168.0.0/24"], "internal": ["10.0.0.1"]}
    assert ref_permissions(closed, "203.0.113.5", True, None) == set()
    assert ref_permissions(closed, "192.168.0.9", False, None) == {Reason.RELAY_ALLOWED_HOST}
    assert ref_permissions(closed, "203.0.113.5", False, "10.0.0.1") == {
        Reason.RELAY_INTERNAL_INTERFACE
    }
    assert ref_permissions({**closed, "authenticated": True}, "1.1.1.1", True, None) == {
        Reason.RELAY_AUTHENTICATED
    }


def test_reference_routes() -> None:
    routing = [
        {"domain": "contoso.com", "action": "inbound"},
        {"domain": "#exact.example", "action": "inbound"},
        {"domain": "ext.contoso.com", "action": "relay"},
    ]
    assert ref_route("a.b.CONTOSO.com.", routing)["action"] == "inbound"
    assert ref_route("x.ext.contoso.com", routing)["action"] == "relay"
    assert ref_route("exact.example", routing) is not None
    assert ref_route("sub.exact.example", routing) is None
    assert ref_route("notcontoso.com", routing) is None


def test_nested_strategy_reaches_deep_encodings() -> None:
    """The generated recipients do exercise 4 and more levels (else the bound is untested)."""
    address = "user@example.net"
    for _ in range(4):
        address = imcea.encode("SMTP", address, "contoso.com")
    verdict = imcea.decide(
        imcea.Envelope("", [address]),
        "203.0.113.5",
        imcea.load_settings(
            {"reroute": True, "routing": [{"domain": "contoso.com", "action": "inbound"}]}
        ),
    )
    assert verdict[0].action is not Action.REROUTE
    assert verdict[0].reason is Reason.ENCAPSULATION_TOO_DEEP
