"""Tests of the IMS routing settings: defaults, normalisation, the routing table, loading."""

from __future__ import annotations

import ipaddress
import re
import textwrap
from pathlib import Path
from typing import Any

import attrs
import pytest
from expected import DESIGN_EXAMPLE
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

import imcea
from imcea import paths
from imcea.settings import Directory

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address


GAL = """\
# exported from the global address list

SMTP:JDoe@Contoso.com
   smtp:john.doe@contoso.com
# old@contoso.com left the company

X500:/o=Contoso/ou=Site/cn=Recipients/cn=JDoe
postmaster@[192.0.2.10]
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def written(route: imcea.Route | None) -> str | None:
    """A matched entry as the routing tab shows it: ``#domain`` for an exact one."""
    if route is None:
        return None
    return ("#" if route.exact else "") + route.domain


# ---------------------------------------------------------------------------
# defaults (DESIGN §2.1)


def test_defaults() -> None:
    settings = imcea.Settings()
    assert settings.reroute is False
    assert settings.release is imcea.Release.SP3
    assert settings.release == "SP3"
    assert settings.routing == ()
    assert settings.restrictions.authenticated is False
    assert len(settings.restrictions.allow) == 0
    assert len(settings.restrictions.internal) == 0
    assert len(settings.restrictions.deny) == 0
    assert settings.server_addresses == ()
    assert settings.directory is None
    assert settings.gateways is None
    assert settings.site_connector is False
    assert settings.route_for("contoso.com") is None


def test_defaults_are_those_of_an_empty_settings_mapping() -> None:
    assert imcea.load_settings({}) == imcea.Settings()
    assert imcea.Restrictions() == imcea.Settings().restrictions


def test_empty_settings_file_gives_the_defaults(tmp_path: Path) -> None:
    assert imcea.load_settings(write(tmp_path / "empty.toml", "")) == imcea.Settings()


@pytest.mark.parametrize("addrtype", ["SMTP", "MAILTO", "EX", "X500", "INVALID"])
def test_types_with_rules_of_their_own_are_never_gateways(addrtype: str) -> None:
    assert imcea.Settings().routes_type(addrtype) is False
    # listing one does not make it a gateway: it keeps its own rule (DESIGN §2.4)
    listed = imcea.Settings(gateways=[addrtype, "X400"])
    assert listed.routes_type(addrtype) is False
    assert listed.routes_type("X400") is True


@pytest.mark.parametrize("addrtype", ["X400", "MS", "CCMAIL", "NOTES", "FAX", "MSMAIL", "A", "X9"])
def test_default_gateways_route_every_other_type(addrtype: str) -> None:
    assert imcea.Settings().routes_type(addrtype) is True


def test_listed_gateways_route_only_those_types() -> None:
    settings = imcea.Settings(gateways=["X400", "FAX"])
    assert settings.gateways == frozenset({"X400", "FAX"})
    assert settings.routes_type("X400") is True
    assert settings.routes_type("FAX") is True
    assert settings.routes_type("MS") is False
    assert settings.routes_type("CCMAIL") is False
    assert settings.routes_type("SMTP") is False


def test_no_gateways_route_nothing() -> None:
    settings = imcea.Settings(gateways=[])
    assert settings.gateways == frozenset()
    for addrtype in ("X400", "MS", "FAX", "SMTP", "EX"):
        assert settings.routes_type(addrtype) is False


def test_gateway_types_compare_in_upper_case() -> None:
    # decode() returns the type in upper case (DESIGN §1.3), so a type listed in lower
    # case must match it
    settings = imcea.Settings(gateways=["x400", "Fax"])
    assert settings.routes_type("X400") is True
    assert settings.routes_type("FAX") is True


# ---------------------------------------------------------------------------
# normalisation at construction


@pytest.mark.parametrize(
    ("domain", "expected", "exact"),
    [
        ("sea.com", "sea.com", False),
        ("Sea.COM", "sea.com", False),
        ("sea.com.", "sea.com", False),
        ("SEA.Com.", "sea.com", False),
        ("#sea.com", "sea.com", True),
        ("#Sea.Com.", "sea.com", True),
        ("bücher.de", "xn--bcher-kva.de", False),
        ("BÜCHER.de.", "xn--bcher-kva.de", False),
        ("xn--bcher-kva.de", "xn--bcher-kva.de", False),
        ("XN--BCHER-KVA.DE", "xn--bcher-kva.de", False),
        ("#bücher.de", "xn--bcher-kva.de", True),
        ("localhost", "localhost", False),
        ("3com.com", "3com.com", False),
    ],
)
def test_route_domain_normal_form(domain: str, expected: str, exact: bool) -> None:
    route = imcea.Route(domain, "inbound")
    assert route.domain == expected
    assert route.exact is exact
    assert route.action is imcea.RouteAction.INBOUND
    assert route.to is None


def test_route_idn_forms_are_equal() -> None:
    assert imcea.Route("bücher.de", "inbound") == imcea.Route("xn--bcher-kva.de", "inbound")
    assert hash(imcea.Route("bücher.de", "inbound")) == hash(
        imcea.Route("xn--bcher-kva.de", "inbound")
    )
    assert imcea.Route("#bücher.de", "inbound") != imcea.Route("bücher.de", "inbound")


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("inbound", imcea.RouteAction.INBOUND),
        ("relay", imcea.RouteAction.RELAY),
        (imcea.RouteAction.INBOUND, imcea.RouteAction.INBOUND),
    ],
)
def test_route_actions_without_to(action: str, expected: imcea.RouteAction) -> None:
    route = imcea.Route("always.example", action)
    assert route.action is expected
    assert route.action == expected.value
    assert route.to is None


def test_reroute_route_to_is_normalised() -> None:
    route = imcea.Route("partner.example", "reroute", to="Mail.Partner.Example.")
    assert route.action is imcea.RouteAction.REROUTE
    assert route.action == "reroute"
    assert route.to == "mail.partner.example"
    assert imcea.Route("partner.example", "reroute", "mail.bücher.de").to == "mail.xn--bcher-kva.de"


def test_route_values_are_the_same_as_routing_entries_from_a_mapping() -> None:
    settings = imcea.Settings(
        routing=[
            {"domain": "Contoso.COM.", "action": "inbound"},
            {"domain": "#exact.contoso.com", "action": "inbound"},
            {"domain": "partner.example", "action": "reroute", "to": "mail.partner.example"},
        ]
    )
    assert settings.routing == (
        imcea.Route("contoso.com", "inbound"),
        imcea.Route("#exact.contoso.com", "inbound"),
        imcea.Route("partner.example", "reroute", to="mail.partner.example"),
    )
    assert imcea.Settings(routing=list(settings.routing)) == settings


def test_directory_addresses_are_case_insensitive() -> None:
    directory = Directory(["JDoe@Contoso.COM", "user@bücher.de", "Admin@Contoso.com."])
    assert directory.has_address("jdoe", "contoso.com")
    assert directory.has_address("JDOE", "contoso.com")
    assert directory.has_address("JDoe", "contoso.com")
    assert directory.has_address("admin", "contoso.com")
    assert directory.has_address("user", "xn--bcher-kva.de")
    assert not directory.has_address("jdoe", "contoso.org")
    assert not directory.has_address("jdoe", "sales.contoso.com")
    assert not directory.has_address("john", "contoso.com")
    assert not directory.has_address("jdoe@contoso.com", "contoso.com")


def test_directory_domain_argument_is_case_insensitive() -> None:
    # DESIGN §2.1: SMTP proxies compare case-insensitively, domain included
    directory = Directory(["jdoe@contoso.com", "user@xn--bcher-kva.de"])
    assert directory.has_address("jdoe", "CONTOSO.COM")
    assert directory.has_address("jdoe", "Contoso.Com")
    assert directory.has_address("user", "bücher.de")


def test_directory_prefixes() -> None:
    directory = Directory(
        [
            "SMTP:JDoe@contoso.com",
            "smtp:john.doe@contoso.com",  # a secondary proxy, as Exchange exports it
            "X500:/o=Contoso/ou=Site/cn=Recipients/cn=JDoe",
            "EX:/O=CONTOSO/OU=SITE/CN=RECIPIENTS/CN=ADMIN",
            "/o=Contoso/ou=Site/cn=Recipients/cn=Plain",
        ]
    )
    assert directory.has_address("jdoe", "contoso.com")
    assert directory.has_address("john.doe", "contoso.com")
    assert not directory.has_address("smtp:jdoe", "contoso.com")
    assert directory.has_dn("/o=Contoso/ou=Site/cn=Recipients/cn=JDoe")
    assert directory.has_dn("/O=CONTOSO/OU=SITE/CN=RECIPIENTS/CN=JDOE")
    assert directory.has_dn("/o=contoso/ou=site/cn=recipients/cn=admin")
    assert directory.has_dn("/O=CONTOSO/OU=SITE/CN=RECIPIENTS/CN=PLAIN")
    assert not directory.has_dn("/o=Contoso/ou=Site/cn=Recipients/cn=Other")
    assert not directory.has_dn("/o=Contoso/ou=Site/cn=Recipients")
    # a DN is not an SMTP address, nor an SMTP address a DN
    assert not directory.has_dn("jdoe@contoso.com")


def test_directory_ip_literals_are_normalised() -> None:
    directory = Directory(["postmaster@[192.0.2.10]", "Admin@[IPv6:2001:DB8:0:0::1]"])
    assert directory.has_address("postmaster", "[192.0.2.10]")
    assert directory.has_address("POSTMASTER", "[192.0.2.10]")
    assert not directory.has_address("postmaster", "[192.0.2.11]")
    # the same literal as a recipient path writes it
    path = paths.parse_path("admin@[IPv6:2001:db8::1]")
    assert isinstance(path, paths.Path)
    assert path.domain is not None
    assert directory.has_address("admin", path.domain)


def test_settings_directory_none_empty_and_list() -> None:
    assert imcea.Settings(directory=None).directory is None
    empty = imcea.Settings(directory=[]).directory
    assert empty is not None  # a directory that knows nobody, not "no directory"
    assert not empty.has_address("jdoe", "contoso.com")
    known = imcea.Settings(directory=["jdoe@contoso.com"]).directory
    assert known is not None
    assert known.has_address("jdoe", "contoso.com")


def test_server_addresses_are_ip_addresses() -> None:
    settings = imcea.Settings(server_addresses=["192.0.2.10", " 10.0.0.1 ", "2001:DB8::1"])
    assert settings.server_addresses == (V4("192.0.2.10"), V4("10.0.0.1"), V6("2001:db8::1"))


def test_restriction_networks_in_every_written_form() -> None:
    r = imcea.Restrictions(
        authenticated=True,
        allow=["192.168.0.1", "10.0.0.0/255.255.255.0", "172.16.0.0/12", "2001:db8::/32"],
        internal=["10.0.0.1"],
        deny=["10.0.0.66", "10.1.0.0/255.255.0.255"],  # a non-contiguous mask is legal
    )
    assert "192.168.0.1" in r.allow
    assert "192.168.0.2" not in r.allow
    assert "10.0.0.200" in r.allow
    assert "10.0.1.1" not in r.allow
    assert "172.31.255.255" in r.allow
    assert "172.32.0.0" not in r.allow
    assert "2001:db8:ffff::1" in r.allow
    assert "2001:db9::1" not in r.allow
    assert "::ffff:192.168.0.1" in r.allow  # an IPv4-mapped client is matched as IPv4
    assert "10.0.0.66" in r.deny
    assert "10.1.77.0" in r.deny  # (ip AND 255.255.0.255) == 10.1.0.0
    assert "10.1.77.1" not in r.deny


# ---------------------------------------------------------------------------
# the routing table (DESIGN §2.2, KB Q169683 and Q217217)


def table(*entries: tuple[str, str] | tuple[str, str, str]) -> imcea.Settings:
    return imcea.Settings(reroute=True, routing=[imcea.Route(*entry) for entry in entries])


# KB Q169683, "New IMS Routing Functionality in Exchange Server 5.0 SP2": the table
#   ms.com -> host1.ms.com, #ms.com -> <inbound>, x.ms.com -> <inbound>
# routes User@ms.com inbound, User@sales.ms.com to host1.ms.com, User@x.ms.com inbound,
# User@pms.com to pms.com (no match) and User@abc.x.ms.com inbound.
Q169683 = table(
    ("ms.com", "reroute", "host1.ms.com"),
    ("#ms.com", "inbound"),
    ("x.ms.com", "inbound"),
)


@pytest.mark.parametrize(
    ("domain", "entry", "action"),
    [
        ("ms.com", "#ms.com", "inbound"),
        ("sales.ms.com", "ms.com", "reroute"),
        ("x.ms.com", "x.ms.com", "inbound"),
        ("pms.com", None, None),
        ("abc.x.ms.com", "x.ms.com", "inbound"),
    ],
)
def test_q169683_example(domain: str, entry: str | None, action: str | None) -> None:
    route = Q169683.route_for(domain)
    assert written(route) == entry
    if route is not None:
        assert route.action == action
    if entry == "ms.com":
        assert route is not None
        assert route.to == "host1.ms.com"


# KB Q217217, "How to Control Routing of Subdomains in IMS Routing", first table:
#   sample.microsoft.com <inbound>, chicago.sample.microsoft.com <route to other host>
# accepts sample.microsoft.com and all its subdomains, chicago's being rerouted.
Q217217_PLAIN = table(
    ("sample.microsoft.com", "inbound"),
    ("chicago.sample.microsoft.com", "reroute", "chicagohost.sample.microsoft.com"),
)

# Second table: #sample.microsoft.com <inbound>, dallas.sample.microsoft.com <inbound>,
# chicago.sample.microsoft.com <route to other host>: only sample and dallas (and
# dallas's subdomains, plano.dallas...) are inbound, chicago is rerouted, seattle and
# any other unlisted domain have no entry.
Q217217_EXACT = table(
    ("#sample.microsoft.com", "inbound"),
    ("dallas.sample.microsoft.com", "inbound"),
    ("chicago.sample.microsoft.com", "reroute", "chicagohost.sample.microsoft.com"),
)


@pytest.mark.parametrize(
    ("domain", "entry"),
    [
        ("sample.microsoft.com", "sample.microsoft.com"),
        ("dallas.sample.microsoft.com", "sample.microsoft.com"),
        ("seattle.sample.microsoft.com", "sample.microsoft.com"),
        ("chicago.sample.microsoft.com", "chicago.sample.microsoft.com"),
        ("loop.chicago.sample.microsoft.com", "chicago.sample.microsoft.com"),
        ("microsoft.com", None),
        ("example.com", None),
    ],
)
def test_q217217_plain_table(domain: str, entry: str | None) -> None:
    assert written(Q217217_PLAIN.route_for(domain)) == entry


@pytest.mark.parametrize(
    ("domain", "entry", "action"),
    [
        ("sample.microsoft.com", "#sample.microsoft.com", "inbound"),
        ("dallas.sample.microsoft.com", "dallas.sample.microsoft.com", "inbound"),
        ("plano.dallas.sample.microsoft.com", "dallas.sample.microsoft.com", "inbound"),
        ("chicago.sample.microsoft.com", "chicago.sample.microsoft.com", "reroute"),
        ("seattle.sample.microsoft.com", None, None),
        ("microsoft.com", None, None),
        ("other.example", None, None),
    ],
)
def test_q217217_exact_table(domain: str, entry: str | None, action: str | None) -> None:
    route = Q217217_EXACT.route_for(domain)
    assert written(route) == entry
    if route is not None:
        assert route.action == action


def test_q217217_exact_dallas_entry_drops_its_subdomains() -> None:
    # "prepending with the '#' sign also forces this entry to be explicit"
    settings = table(
        ("#sample.microsoft.com", "inbound"), ("#dallas.sample.microsoft.com", "inbound")
    )
    assert (
        written(settings.route_for("dallas.sample.microsoft.com")) == "#dallas.sample.microsoft.com"
    )
    assert settings.route_for("plano.dallas.sample.microsoft.com") is None


# DESIGN §2.2 with the sea.com names: exact entries first, then the most specific plain
# entry wherever it stands in the list.
SEA_ENTRIES: list[tuple[str, str] | tuple[str, str, str]] = [
    ("com", "reroute", "smarthost.example"),
    ("sea.com", "inbound"),
    ("#sea.com", "reroute", "exact.example"),
    ("eng.sea.com", "relay"),
    ("#dev.eng.sea.com", "inbound"),
]
SEA_EXPECTED = [
    ("sea.com", "#sea.com"),
    ("hr.sea.com", "sea.com"),
    ("a.b.hr.sea.com", "sea.com"),
    ("eng.sea.com", "eng.sea.com"),
    ("qa.eng.sea.com", "eng.sea.com"),
    ("dev.eng.sea.com", "#dev.eng.sea.com"),
    ("x.dev.eng.sea.com", "eng.sea.com"),
    ("chelsea.com", "com"),
    ("example.com", "com"),
    ("com", "com"),
    ("sea.org", None),
    ("sea.com.example", None),
]


@pytest.mark.parametrize("order", ["as written", "reversed", "shuffled"])
@pytest.mark.parametrize(("domain", "entry"), SEA_EXPECTED)
def test_most_specific_entry_wins_wherever_it_stands(order: str, domain: str, entry: str) -> None:
    entries = list(SEA_ENTRIES)
    if order == "reversed":
        entries.reverse()
    elif order == "shuffled":
        entries = [entries[i] for i in (3, 0, 4, 2, 1)]
    assert written(table(*entries).route_for(domain)) == entry


@pytest.mark.parametrize(
    ("domain", "entry"),
    [
        ("sea.com", "sea.com"),
        ("www.sea.com", "sea.com"),
        ("chelsea.com", None),  # whole labels only
        ("xsea.com", None),
        ("sea-sea.com", None),
        ("sea.com.evil.example", None),
        ("com", None),
        ("sea.co", None),
        ("ea.com", None),
    ],
)
def test_plain_entry_matches_on_whole_labels(domain: str, entry: str | None) -> None:
    assert written(table(("sea.com", "inbound")).route_for(domain)) == entry


@pytest.mark.parametrize(
    ("domain", "entry"),
    [
        ("sea.com", "#sea.com"),
        ("www.sea.com", None),
        ("chelsea.com", None),
    ],
)
def test_exact_entry_matches_only_its_domain(domain: str, entry: str | None) -> None:
    assert written(table(("#sea.com", "inbound")).route_for(domain)) == entry


@pytest.mark.parametrize("first", ["exact", "plain"])
def test_exact_entry_is_checked_before_the_plain_one(first: str) -> None:
    entries = [("#sea.com", "inbound"), ("sea.com", "reroute", "mail.sea.com")]
    if first == "plain":
        entries.reverse()
    settings = table(*entries)
    route = settings.route_for("sea.com")
    assert written(route) == "#sea.com"
    assert route is not None and route.action == "inbound"
    route = settings.route_for("eng.sea.com")
    assert written(route) == "sea.com"
    assert route is not None and route.to == "mail.sea.com"


@pytest.mark.parametrize(
    ("written_entry", "domain", "entry"),
    [
        ("Sea.COM", "sea.com", "sea.com"),
        ("sea.com.", "eng.sea.com", "sea.com"),
        ("#SEA.com.", "sea.com", "#sea.com"),
        ("bücher.de", "xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("bücher.de", "www.xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("#BÜCHER.de", "xn--bcher-kva.de", "#xn--bcher-kva.de"),
    ],
)
def test_entries_written_in_any_case_with_dot_or_idn_match(
    written_entry: str, domain: str, entry: str
) -> None:
    assert written(table((written_entry, "inbound")).route_for(domain)) == entry


@pytest.mark.parametrize(
    ("written_entry", "domain", "entry"),
    [
        ("sea.com", "SEA.COM", "sea.com"),
        ("sea.com", "Eng.Sea.Com", "sea.com"),
        ("sea.com", "sea.com.", "sea.com"),
        ("sea.com", "ENG.SEA.COM.", "sea.com"),
        ("#sea.com", "Sea.Com.", "#sea.com"),
        ("sea.com", "CHELSEA.COM", None),
        ("xn--bcher-kva.de", "bücher.de", "xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "www.BÜCHER.de", "xn--bcher-kva.de"),
        ("#xn--bcher-kva.de", "Bücher.DE.", "#xn--bcher-kva.de"),
    ],
)
def test_route_for_compares_the_looked_up_domain_in_normal_form(
    written_entry: str, domain: str, entry: str | None
) -> None:
    # DESIGN §2.2: domains compare case-insensitively, without a trailing dot, IDN as
    # A-labels, whichever side is written which way
    assert written(table((written_entry, "inbound")).route_for(domain)) == entry


def test_no_routing_table_matches_nothing() -> None:
    settings = imcea.Settings(reroute=True)
    for domain in ("contoso.com", "com", "localhost", "xn--bcher-kva.de"):
        assert settings.route_for(domain) is None


def test_single_label_entry() -> None:
    settings = table(("localhost", "inbound"))
    assert written(settings.route_for("localhost")) == "localhost"
    assert written(settings.route_for("a.localhost")) == "localhost"
    assert settings.route_for("localhost.example") is None


# ---------------------------------------------------------------------------
# load_settings


def check_design_example(settings: imcea.Settings) -> None:
    assert settings.reroute is True
    assert settings.release is imcea.Release.SP3
    assert settings.server_addresses == (V4("192.0.2.10"), V4("10.0.0.1"))
    assert settings.site_connector is False
    assert settings.gateways == frozenset({"X400", "MS", "FAX"})
    assert settings.routes_type("X400") and settings.routes_type("FAX")
    assert not settings.routes_type("CCMAIL")
    assert settings.routing == (
        imcea.Route("contoso.com", "inbound"),
        imcea.Route("#exact.contoso.com", "inbound"),
        imcea.Route("partner.example", "reroute", to="mail.partner.example"),
        imcea.Route("always.example", "relay"),
    )
    assert [(r.domain, r.exact) for r in settings.routing] == [
        ("contoso.com", False),
        ("exact.contoso.com", True),
        ("partner.example", False),
        ("always.example", False),
    ]
    assert written(settings.route_for("contoso.com")) == "contoso.com"
    assert written(settings.route_for("sales.contoso.com")) == "contoso.com"
    assert written(settings.route_for("exact.contoso.com")) == "#exact.contoso.com"
    assert written(settings.route_for("sub.exact.contoso.com")) == "contoso.com"
    partner = settings.route_for("www.partner.example")
    assert partner is not None and partner.to == "mail.partner.example"
    relay = settings.route_for("x.always.example")
    assert relay is not None and relay.action is imcea.RouteAction.RELAY
    assert settings.route_for("example.org") is None

    r = settings.restrictions
    assert r.authenticated is True
    assert [net.text for net in r.allow] == [
        "192.168.0.1",
        "10.0.0.0/255.255.255.0",
        "2001:db8::/32",
    ]
    assert "192.168.0.1" in r.allow
    assert "10.0.0.77" in r.allow
    assert "10.0.1.77" not in r.allow
    assert "2001:db8:1::25" in r.allow
    assert "10.0.0.1" in r.internal
    assert "192.0.2.10" not in r.internal
    assert "10.0.0.66" in r.deny
    assert "10.0.0.67" not in r.deny


def test_load_design_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings_file = write(tmp_path / "conf" / "imcea.toml", DESIGN_EXAMPLE)
    write(tmp_path / "conf" / "gal.txt", GAL)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the directory file is relative to the settings file
    for source in (settings_file, str(settings_file)):
        settings = imcea.load_settings(source)
        check_design_example(settings)
        directory = settings.directory
        assert directory is not None
        assert directory.has_address("jdoe", "contoso.com")
        assert directory.has_address("john.doe", "contoso.com")
        assert directory.has_address("postmaster", "[192.0.2.10]")
        assert directory.has_dn("/O=CONTOSO/OU=SITE/CN=RECIPIENTS/CN=JDOE")
        assert not directory.has_address("old", "contoso.com")  # a comment line
        assert not directory.has_address("# old", "contoso.com")


def test_load_mapping_of_the_same_shape(tmp_path: Path) -> None:
    mapping: dict[str, Any] = {
        "reroute": True,
        "release": "SP3",
        "server_addresses": ["192.0.2.10", "10.0.0.1"],
        "site_connector": False,
        "gateways": ["X400", "MS", "FAX"],
        "directory": ["SMTP:JDoe@Contoso.com", "X500:/o=Contoso/ou=Site/cn=Recipients/cn=JDoe"],
        "routing": [
            {"domain": "contoso.com", "action": "inbound"},
            {"domain": "#exact.contoso.com", "action": "inbound"},
            {"domain": "partner.example", "action": "reroute", "to": "mail.partner.example"},
            {"domain": "always.example", "action": "relay"},
        ],
        "restrictions": {
            "authenticated": True,
            "allow": ["192.168.0.1", "10.0.0.0/255.255.255.0", "2001:db8::/32"],
            "internal": ["10.0.0.1"],
            "deny": ["10.0.0.66"],
        },
    }
    from_mapping = imcea.load_settings(mapping)
    check_design_example(from_mapping)
    inline = DESIGN_EXAMPLE.replace(
        'directory = "gal.txt"',
        'directory = ["SMTP:JDoe@Contoso.com", "X500:/o=Contoso/ou=Site/cn=Recipients/cn=JDoe"]',
    )
    from_file = imcea.load_settings(write(tmp_path / "inline.toml", inline))
    assert from_file == from_mapping
    assert hash(from_file) == hash(from_mapping)
    assert from_mapping.directory is not None
    assert from_mapping.directory.has_address("jdoe", "contoso.com")
    assert from_mapping.directory.has_dn("/o=contoso/ou=site/cn=recipients/cn=jdoe")


def test_mapping_with_a_directory_file_path(tmp_path: Path) -> None:
    gal = write(tmp_path / "gal.txt", GAL)
    settings = imcea.load_settings({"directory": str(gal)})
    assert settings.directory is not None
    assert settings.directory.has_address("jdoe", "contoso.com")


def test_directory_file_in_a_subdirectory_of_the_settings_file(tmp_path: Path) -> None:
    settings_file = write(tmp_path / "settings.toml", 'directory = "data/gal.txt"\n')
    write(tmp_path / "data" / "gal.txt", "\n\n  # nobody yet\n\njdoe@contoso.com\n")
    directory = imcea.load_settings(settings_file).directory
    assert directory is not None
    assert directory.has_address("jdoe", "contoso.com")


def test_directory_file_of_comments_only_is_an_empty_directory(tmp_path: Path) -> None:
    settings_file = write(tmp_path / "settings.toml", 'directory = "gal.txt"\n')
    write(tmp_path / "gal.txt", "# nobody\n\n   \n")
    directory = imcea.load_settings(settings_file).directory
    assert directory is not None
    assert not directory.has_address("jdoe", "contoso.com")


def test_directory_file_error_names_the_file_and_line(tmp_path: Path) -> None:
    settings_file = write(tmp_path / "settings.toml", 'directory = "gal.txt"\n')
    write(tmp_path / "gal.txt", "# header\n\njdoe@contoso.com\nnot-an-address\nx@contoso.com\n")
    with pytest.raises(imcea.SettingsError) as info:
        imcea.load_settings(settings_file)
    message = str(info.value)
    assert "gal.txt" in message
    assert re.search(r"\bline\s*4\b", message), message
    assert "not-an-address" in message


@pytest.mark.parametrize("name", ["allow", "internal", "deny"])
def test_network_list_file_relative_to_the_settings_file(tmp_path: Path, name: str) -> None:
    settings_file = write(
        tmp_path / "settings.toml", f'reroute = true\n[restrictions]\n{name} = "lists/{name}.txt"\n'
    )
    write(
        tmp_path / "lists" / f"{name}.txt",
        "# branch offices\n\n192.168.0.1\n10.1.0.0/255.255.0.0\n  2001:db8::/32  \n",
    )
    networks = getattr(imcea.load_settings(settings_file).restrictions, name)
    assert [n.text for n in networks] == ["192.168.0.1", "10.1.0.0/255.255.0.0", "2001:db8::/32"]
    assert "10.1.200.3" in networks
    assert "10.2.0.1" not in networks


def test_network_list_file_error_names_the_file_and_line(tmp_path: Path) -> None:
    settings_file = write(tmp_path / "settings.toml", '[restrictions]\nallow = "allow.txt"\n')
    write(tmp_path / "allow.txt", "192.168.0.1\n# the branch\n\n10.0.0.0/255.255.x.0\n")
    with pytest.raises(imcea.SettingsError) as info:
        imcea.load_settings(settings_file)
    assert str(info.value) == (
        "restrictions.allow (allow.txt line 4): '10.0.0.0/255.255.x.0' is not a network"
    )


def test_network_list_file_missing(tmp_path: Path) -> None:
    settings_file = write(tmp_path / "settings.toml", '[restrictions]\ndeny = "nowhere.txt"\n')
    with pytest.raises(imcea.SettingsError, match=r"^restrictions\.deny: cannot read .*nowhere"):
        imcea.load_settings(settings_file)


def test_directory_file_missing(tmp_path: Path) -> None:
    settings_file = write(tmp_path / "settings.toml", 'directory = "missing-gal.txt"\n')
    with pytest.raises(imcea.SettingsError) as info:
        imcea.load_settings(settings_file)
    assert "directory" in str(info.value)
    assert "missing-gal.txt" in str(info.value)


def test_directory_file_not_utf8(tmp_path: Path) -> None:
    settings_file = write(tmp_path / "settings.toml", 'directory = "gal.txt"\n')
    (tmp_path / "gal.txt").write_bytes(b"j\xf6rg@contoso.com\n")
    with pytest.raises(imcea.SettingsError, match=r"gal\.txt"):
        imcea.load_settings(settings_file)


def test_settings_file_missing(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-settings.toml"
    with pytest.raises(imcea.SettingsError) as info:
        imcea.load_settings(missing)
    assert "no-such-settings.toml" in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "reroute = \n",
        "reroute = yes\n",
        "[restrictions\nallow = []\n",
        'routing = [{domain = "a.com", action = "inbound"\n',
        "reroute = true\nreroute = false\n",  # a key defined twice
    ],
)
def test_toml_syntax_error(tmp_path: Path, text: str) -> None:
    settings_file = write(tmp_path / "broken.toml", text)
    with pytest.raises(imcea.SettingsError) as info:
        imcea.load_settings(settings_file)
    assert "broken.toml" in str(info.value)


def test_settings_file_not_utf8(tmp_path: Path) -> None:
    settings_file = tmp_path / "latin1.toml"
    settings_file.write_bytes(b"reroute = true  # r\xe9acheminement\n")
    with pytest.raises(imcea.SettingsError) as info:
        imcea.load_settings(settings_file)
    assert "latin1.toml" in str(info.value)


def test_settings_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(imcea.SettingsError):
        imcea.load_settings(tmp_path)


@pytest.mark.parametrize("source", [5, None, b"reroute = true", ["reroute"]])
def test_load_settings_of_something_else(source: object) -> None:
    with pytest.raises(imcea.Error):
        imcea.load_settings(source)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# broken settings: SettingsError naming the key path and the value

MISSING = object()


def assert_names(error: imcea.SettingsError, key: str, value: object = MISSING) -> None:
    assert isinstance(error, imcea.SettingsError)
    assert isinstance(error, imcea.Error)
    assert isinstance(error, ValueError)
    message = str(error)
    assert "\n" not in message
    assert key in message, message
    if value is not MISSING:
        rest = message.replace(key, "", 1)
        assert repr(value) in rest, message


def network_cases() -> list[Any]:
    cases = []
    for name in ("allow", "internal", "deny"):
        for bad in (
            "10.0.0.300",  # bad IP
            "10.0.0",
            "10.0.0.0/255.255.x.0",  # bad mask
            "10.0.0.0/255.255.256.0",
            "10.0.0.0/33",  # prefix too long
            "10.0.0.0/-1",
            "10.0.0.0/",
            "2001:db8::/129",  # v6 prefix too long
            "2001:db8:::/32",
            "fe80::1%eth0",
            "host.example.com",
            "",
            "10.0.0.0/255.255.255.0/24",
        ):
            cases.append(
                pytest.param(
                    {"restrictions": {name: ["192.168.0.1", "10.0.0.0/8", bad]}},
                    f"restrictions.{name}[2]",
                    bad,
                    id=f"{name}-{bad}",
                )
            )
        for bad_type in (10, True, ["10.0.0.1"], {"net": "10.0.0.1"}):
            cases.append(
                pytest.param(
                    {"restrictions": {name: ["192.168.0.1", "10.0.0.0/8", bad_type]}},
                    f"restrictions.{name}[2]",
                    bad_type,
                    id=f"{name}-entry-{type(bad_type).__name__}",
                )
            )
        for not_a_list in ("10.0.0.1", 10, True, {"net": "10.0.0.1"}):
            cases.append(
                pytest.param(
                    {"restrictions": {name: not_a_list}},
                    f"restrictions.{name}",
                    not_a_list,
                    id=f"{name}-not-a-list-{type(not_a_list).__name__}",
                )
            )
    return cases


BOOLEAN_CASES = [
    pytest.param(mapping(value), key, value, id=f"{key}-{value!r}")
    for key, mapping in (
        ("reroute", lambda v: {"reroute": v}),
        ("site_connector", lambda v: {"site_connector": v}),
        ("restrictions.authenticated", lambda v: {"restrictions": {"authenticated": v}}),
    )
    for value in ("yes", "true", 1, 0, 1.0, None, [True])
]

BROKEN: list[Any] = [
    *BOOLEAN_CASES,
    # unknown keys
    pytest.param({"rerout": True}, "rerout", MISSING, id="unknown-top-level-key"),
    pytest.param({"Reroute": True}, "Reroute", MISSING, id="unknown-top-level-key-case"),
    pytest.param(
        {"restrictions": {"alow": ["10.0.0.1"]}},
        "restrictions.alow",
        MISSING,
        id="unknown-restrictions-key",
    ),
    pytest.param(
        {"routing": [{"domain": "a.com", "action": "inbound", "too": "b.com"}]},
        "routing[0].too",
        MISSING,
        id="unknown-routing-entry-key",
    ),
    pytest.param(
        {
            "routing": [
                {"domain": "a.com", "action": "inbound"},
                {"domain": "b.com", "action": "relay", "via": "c.com"},
            ]
        },
        "routing[1].via",
        MISSING,
        id="unknown-routing-entry-key-second",
    ),
    # release
    *[
        pytest.param({"release": value}, "release", value, id=f"release-{value!r}")
        for value in ("SP4", "SP1", "", "5.5", 3, True, ["SP3"])
    ],
    # routing
    *[
        pytest.param({"routing": value}, "routing", value, id=f"routing-{value!r}")
        for value in ("contoso.com", 5, True, {"domain": "contoso.com", "action": "inbound"})
    ],
    *[
        pytest.param({"routing": [value]}, "routing[0]", value, id=f"routing-entry-{value!r}")
        for value in ("contoso.com", 5, ["contoso.com", "inbound"])
    ],
    pytest.param(
        {"routing": [{"action": "inbound"}]}, "routing[0].domain", MISSING, id="missing-domain"
    ),
    pytest.param(
        {"routing": [{"domain": "a.com", "action": "inbound"}, {"domain": "b.com"}]},
        "routing[1].action",
        MISSING,
        id="missing-action",
    ),
    *[
        pytest.param(
            {"routing": [{"domain": "a.com", "action": value}]},
            "routing[0].action",
            value,
            id=f"bad-action-{value!r}",
        )
        for value in ("forward", "Outbound", "", "<inbound>", 1, None)
    ],
    pytest.param(
        {"routing": [{"domain": "partner.example", "action": "reroute"}]},
        "routing[0].to",
        MISSING,
        id="reroute-without-to",
    ),
    *[
        pytest.param(
            {"routing": [{"domain": "a.com", "action": action, "to": "b.com"}]},
            "routing[0].to",
            "b.com",
            id=f"to-on-{action}",
        )
        for action in ("inbound", "relay")
    ],
    *[
        pytest.param(
            {
                "routing": [
                    {"domain": "a.com", "action": "inbound"},
                    {"domain": value, "action": "inbound"},
                ]
            },
            "routing[1].domain",
            value,
            id=f"bad-domain-{value!r}",
        )
        for value in (
            "exa mple.com",
            "-bad-.com",
            "bad-.com",
            "a..b.com",
            ".com",
            "sea.com..",
            "",
            "#",
            "##sea.com",
            "*.sea.com",
            "user@sea.com",
            "a" * 64 + ".com",
            5,
            None,
        )
    ],
    *[
        pytest.param(
            {"routing": [{"domain": "a.com", "action": "reroute", "to": value}]},
            "routing[0].to",
            value,
            id=f"bad-to-{value!r}",
        )
        for value in ("exa mple.com", "-bad-.com", "", 5)
    ],
    # restrictions
    *[
        pytest.param({"restrictions": value}, "restrictions", value, id=f"restrictions-{value!r}")
        for value in ("10.0.0.1", 5, ["10.0.0.1"], True)
    ],
    *network_cases(),
    # server_addresses
    *[
        pytest.param(
            {"server_addresses": ["192.0.2.10", value]},
            "server_addresses[1]",
            value,
            id=f"server-address-{value!r}",
        )
        for value in ("192.0.2.300", "10.0.0.0/24", "mail.contoso.com", "", "[192.0.2.1]", 5, None)
    ],
    *[
        pytest.param(
            {"server_addresses": value}, "server_addresses", value, id=f"server-addresses-{value!r}"
        )
        for value in ("192.0.2.10", 5, {"ip": "192.0.2.10"})
    ],
    # gateways
    *[
        pytest.param({"gateways": ["X400", value]}, "gateways[1]", value, id=f"gateway-{value!r}")
        for value in ("X-400", "", "ABCDEFGHIJ", "X 4", "X400 ", "CC:MAIL", "ÄB", "X४", 400, None)
    ],
    *[
        pytest.param({"gateways": value}, "gateways", value, id=f"gateways-{value!r}")
        for value in ("X400", 5, True, {"X400": True})
    ],
    # directory
    *[
        pytest.param(
            {"directory": ["jdoe@contoso.com", value]}, "directory[1]", value, id=f"gal-{value!r}"
        )
        for value in (
            "not an address",
            "jdoe",
            "user@",
            "@contoso.com",
            "user@exa mple.com",
            "SMTP:",
            "jdoe@contoso.com\nx@contoso.com",
            5,
            None,
        )
    ],
    *[
        pytest.param({"directory": value}, "directory", value, id=f"directory-{value!r}")
        for value in (5, True, {"jdoe@contoso.com": True})
    ],
]


@pytest.mark.parametrize(("mapping", "key", "value"), BROKEN)
def test_broken_settings(mapping: dict[str, Any], key: str, value: object) -> None:
    with pytest.raises(imcea.SettingsError) as info:
        imcea.load_settings(mapping)
    assert_names(info.value, key, value)


def test_bad_network_message_is_exact() -> None:
    with pytest.raises(imcea.SettingsError) as info:
        imcea.load_settings(
            {"restrictions": {"allow": ["192.168.0.1", "10.0.0.0/8", "10.0.0.0/255.255.x.0"]}}
        )
    assert str(info.value) == "restrictions.allow[2]: '10.0.0.0/255.255.x.0' is not a network"


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        (
            '[restrictions]\nallow = ["192.168.0.1", "10.0.0.0/8", "10.0.0.0/255.255.x.0"]\n',
            "restrictions.allow[2]",
            "10.0.0.0/255.255.x.0",
        ),
        ('reroute = "yes"\n', "reroute", "yes"),
        ("reroute = 1\n", "reroute", 1),
        ('release = "SP4"\n', "release", "SP4"),
        ('colour = "blue"\n', "colour", MISSING),
        ('[restrictions]\nauthenticated = "yes"\n', "restrictions.authenticated", "yes"),
        ("[restrictions]\nanonymous = true\n", "restrictions.anonymous", MISSING),
        (
            '[[routing]]\ndomain = "a.com"\naction = "inbound"\n'
            '[[routing]]\ndomain = "exa mple.com"\naction = "inbound"\n',
            "routing[1].domain",
            "exa mple.com",
        ),
        ('[[routing]]\ndomain = "a.com"\naction = "reroute"\n', "routing[0].to", MISSING),
        (
            '[[routing]]\ndomain = "a.com"\naction = "relay"\nto = "b.com"\n',
            "routing[0].to",
            "b.com",
        ),
        ('[routing]\ndomain = "a.com"\naction = "inbound"\n', "routing", MISSING),
        (
            'server_addresses = ["192.0.2.10", "192.0.2.300"]\n',
            "server_addresses[1]",
            "192.0.2.300",
        ),
        ('gateways = ["X400", "X-400"]\n', "gateways[1]", "X-400"),
        ('directory = ["jdoe@contoso.com", "nobody"]\n', "directory[1]", "nobody"),
    ],
)
def test_broken_settings_file(tmp_path: Path, text: str, key: str, value: object) -> None:
    settings_file = write(tmp_path / "settings.toml", text)
    with pytest.raises(imcea.SettingsError) as info:
        imcea.load_settings(settings_file)
    assert_names(info.value, key, value)


@pytest.mark.parametrize(
    ("make", "key", "value"),
    [
        (lambda: imcea.Settings(reroute="yes"), "reroute", "yes"),
        (lambda: imcea.Settings(site_connector=1), "site_connector", 1),
        (lambda: imcea.Settings(release="SP4"), "release", "SP4"),
        (lambda: imcea.Settings(gateways=["X-400"]), "gateways[0]", "X-400"),
        (lambda: imcea.Settings(server_addresses=["nope"]), "server_addresses[0]", "nope"),
        (lambda: imcea.Restrictions(authenticated="yes"), "restrictions.authenticated", "yes"),
        (lambda: imcea.Restrictions(allow=["10.0.0.0/33"]), "restrictions.allow[0]", "10.0.0.0/33"),
        (
            lambda: imcea.Restrictions(deny=["2001:db8::/129"]),
            "restrictions.deny[0]",
            "2001:db8::/129",
        ),
        (lambda: imcea.Route("exa mple.com", "inbound"), "domain", "exa mple.com"),
        (lambda: imcea.Route("a.com", "forward"), "action", "forward"),
        (lambda: imcea.Route("a.com", "reroute"), "to", MISSING),
        (lambda: imcea.Route("a.com", "inbound", to="b.com"), "to", "b.com"),
        (lambda: imcea.Route("a.com", "relay", "b.com"), "to", "b.com"),
        (lambda: Directory(["jdoe@contoso.com", "nobody"]), "[1]", "nobody"),
    ],
)
def test_constructors_raise_settings_error(make: Any, key: str, value: object) -> None:
    with pytest.raises(imcea.SettingsError) as info:
        make()
    assert_names(info.value, key, value)


def test_a_failed_load_returns_nothing_and_leaves_no_state(tmp_path: Path) -> None:
    good = write(tmp_path / "good.toml", "reroute = true\n")
    bad = write(
        tmp_path / "bad.toml",
        textwrap.dedent(
            """\
            reroute = true
            [[routing]]
            domain = "contoso.com"
            action = "inbound"
            [restrictions]
            allow = ["10.0.0.0/33"]
            """
        ),
    )
    result: object = "untouched"
    with pytest.raises(imcea.SettingsError):
        result = imcea.load_settings(bad)
    assert result == "untouched"
    assert imcea.load_settings(good) == imcea.Settings(reroute=True)


# ---------------------------------------------------------------------------
# immutable values


@pytest.mark.parametrize(
    "name",
    [
        "reroute",
        "routing",
        "restrictions",
        "server_addresses",
        "directory",
        "gateways",
        "release",
        "site_connector",
    ],
)
def test_settings_are_frozen(name: str) -> None:
    settings = imcea.Settings()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(settings, name, getattr(settings, name))


def test_parts_are_frozen() -> None:
    restrictions = imcea.Restrictions()
    route = imcea.Route("sea.com", "inbound")
    directory = Directory(["jdoe@contoso.com"])
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        restrictions.authenticated = True  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        route.domain = "chelsea.com"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        route.exact = True  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        directory.addresses = frozenset()  # type: ignore[misc]
    settings = imcea.Settings(routing=[route])
    assert isinstance(settings.routing, tuple)
    assert isinstance(settings.server_addresses, tuple)


def full_mapping() -> dict[str, Any]:
    return {
        "reroute": True,
        "routing": [
            {"domain": "contoso.com", "action": "inbound"},
            {"domain": "partner.example", "action": "reroute", "to": "mail.partner.example"},
        ],
        "restrictions": {"authenticated": True, "allow": ["10.0.0.0/8"], "deny": ["10.0.0.66"]},
        "server_addresses": ["192.0.2.10"],
        "directory": ["jdoe@contoso.com", "X500:/o=Contoso/cn=JDoe"],
        "gateways": ["X400"],
        "release": "SP3",
        "site_connector": True,
    }


def test_settings_are_hashable_and_equal_by_value() -> None:
    one = imcea.load_settings(full_mapping())
    two = imcea.load_settings(full_mapping())
    assert one is not two
    assert one == two
    assert hash(one) == hash(two)
    assert len({one, two, imcea.Settings()}) == 2
    assert {one: "x"}[two] == "x"


def test_differently_written_equal_values_are_equal() -> None:
    mapping = full_mapping()
    mapping["routing"][0]["domain"] = "Contoso.COM."
    mapping["server_addresses"] = [" 192.0.2.10 "]
    assert imcea.load_settings(mapping) == imcea.load_settings(full_mapping())
    assert hash(imcea.load_settings(mapping)) == hash(imcea.load_settings(full_mapping()))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("reroute", False),
        ("release", "SP2"),
        ("site_connector", False),
        ("gateways", ["X400", "FAX"]),
        ("server_addresses", ["192.0.2.11"]),
        ("directory", ["jdoe@contoso.com"]),
        ("routing", [{"domain": "contoso.com", "action": "inbound"}]),
        ("restrictions", {"authenticated": False, "allow": ["10.0.0.0/8"], "deny": ["10.0.0.66"]}),
    ],
)
def test_settings_differing_in_one_value_are_unequal(key: str, value: object) -> None:
    mapping = full_mapping()
    mapping[key] = value
    assert imcea.load_settings(mapping) != imcea.load_settings(full_mapping())


def test_no_directory_differs_from_an_empty_one() -> None:
    assert imcea.Settings(directory=None) != imcea.Settings(directory=[])


_LABELS = st.sampled_from(["sea", "com", "eng", "org", "example", "a", "co", "xn--bcher-kva"])


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    entries=st.lists(
        st.tuples(st.lists(_LABELS, min_size=1, max_size=3), st.booleans()), max_size=6
    ),
    name=st.lists(_LABELS, min_size=1, max_size=5),
)
def test_routing_lookup_is_the_whole_label_search_of_design_2_2(
    entries: list[tuple[list[str], bool]], name: list[str]
) -> None:
    """Exact entries first; then the longest plain entry that is the name or ends it on a
    whole label; the first written of equal ones."""
    written_entries = [("#" if exact else "") + ".".join(labels) for labels, exact in entries]
    config = table(*[(entry, "inbound") for entry in written_entries])
    domain = ".".join(name)
    want: str | None = None
    if "#" + domain in written_entries:
        want = "#" + domain
    else:
        for cut in range(len(name)):
            suffix = ".".join(name[cut:])
            if suffix in written_entries:
                want = suffix
                break
    assert written(config.route_for(domain)) == want
    assert written(config.lookup_route(domain)) == want
