"""Tests of check(settings): the configuration traps of DESIGN §2.5, and ``imcea check``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from expected import DESIGN_EXAMPLE as SETTINGS_FILE_EXAMPLE

import imcea

ROOT = Path(__file__).resolve().parents[1]

# DESIGN §2.5: code -> severity
SEVERITY = {
    "open_relay": "error",
    "internal_covers_all": "error",
    "vulnerable_release": "error",
    "site_connector_needs_reroute": "error",
    "unmatchable_network": "warning",
    "deny_covers_allow": "warning",
    "deny_inside_allow": "warning",
    "duplicate_route": "warning",
    "internal_without_server_addresses": "warning",
    "routes_ignored": "warning",
    "no_inbound_domain": "warning",
}

ARTICLE = re.compile(r"\bKB Q\d{6}\b|\bMS99-027\b")


# an inbound domain, so that a test of another code does not also meet no_inbound_domain
INBOUND = [{"domain": "contoso.com", "action": "inbound"}]


def settings(**kw: Any) -> imcea.Settings:
    """Settings from *kw*; unless *kw* names a routing table, contoso.com is inbound."""
    return imcea.load_settings({"routing": INBOUND, **kw})


def closed(**restrictions: Any) -> dict[str, Any]:
    """Restrictions that are selected (so rerouting on is not an open relay)."""
    return {"authenticated": True, **restrictions}


def codes(found: list[imcea.Finding]) -> list[str]:
    return [f.code for f in found]


def only(found: list[imcea.Finding], code: str) -> list[imcea.Finding]:
    return [f for f in found if f.code == code]


def assert_well_formed(finding: imcea.Finding) -> None:
    assert finding.code in SEVERITY
    assert finding.severity == SEVERITY[finding.code]
    assert finding.severity in ("error", "warning")
    assert isinstance(finding.message, str) and finding.message
    assert "\n" not in finding.message
    assert ARTICLE.search(finding.message), finding.message
    assert isinstance(finding.key, str) and finding.key


def assert_single(found: list[imcea.Finding], code: str) -> imcea.Finding:
    for finding in found:
        assert_well_formed(finding)
    assert codes(found) == [code]
    return found[0]


# ---------------------------------------------------------------------------
# clean configurations


def test_defaults_warn_that_no_domain_is_inbound() -> None:
    # the built-in defaults return every ordinary recipient: a warning, not silence
    assert_single(imcea.check(imcea.Settings()), "no_inbound_domain")


CLEAN = {
    "reroute": True,
    "release": "SP3",
    "server_addresses": ["192.0.2.10", "10.0.0.1"],
    "site_connector": True,
    "gateways": ["X400"],
    "directory": ["jdoe@contoso.com"],
    "routing": [
        {"domain": "contoso.com", "action": "inbound"},
        {"domain": "#contoso.com", "action": "inbound"},  # exact and plain: not duplicates
        {"domain": "partner.example", "action": "reroute", "to": "mail.partner.example"},
        {"domain": "always.example", "action": "relay"},
    ],
    "restrictions": {
        "authenticated": True,
        "allow": ["192.168.0.0/16", "10.0.0.0/255.255.255.0", "2001:db8::/32"],
        # only the internal interface: a client on the public one may not relay
        "internal": ["10.0.0.1"],
        # carve-outs: allow entries covering deny entries are fine
        "deny": ["192.168.5.5", "10.0.0.66", "2001:db8:bad::/48"],
    },
}


def test_clean_closed_configuration_has_no_findings_but_the_postfix_note() -> None:
    # the carve-outs are right for the IMS; only a Postfix that copies the allow list
    # into mynetworks would trust them
    found = imcea.check(settings(**CLEAN))
    for finding in found:
        assert_well_formed(finding)
    assert [f.key for f in found] == [f"restrictions.deny[{i}]" for i in range(3)]
    assert codes(found) == ["deny_inside_allow"] * 3
    assert "'10.0.0.0/255.255.255.0'" in found[1].message
    assert "postfix-config" in found[1].message
    clean = {**CLEAN, "restrictions": {**CLEAN["restrictions"], "deny": ["198.51.100.7"]}}
    assert imcea.check(settings(**clean)) == []


# DESIGN §3's settings file, with its directory inline
DESIGN_EXAMPLE = SETTINGS_FILE_EXAMPLE.replace(
    'directory = "gal.txt"            # one address or legacy DN per line; or an inline list',
    'directory = ["jdoe@contoso.com"]',
)


def test_design_example_has_only_the_postfix_note(tmp_path: Path) -> None:
    path = tmp_path / "imcea.toml"
    path.write_text(DESIGN_EXAMPLE, encoding="utf-8")
    finding = assert_single(imcea.check(imcea.load_settings(path)), "deny_inside_allow")
    assert finding.key == "restrictions.deny[0]"
    assert "'10.0.0.66'" in finding.message


def test_check_is_repeatable_and_leaves_settings_alone() -> None:
    s = settings(reroute=True, release="SP2", restrictions={"allow": ["10.0.0.1/24"]})
    copy = settings(reroute=True, release="SP2", restrictions={"allow": ["10.0.0.1/24"]})
    first = imcea.check(s)
    assert imcea.check(s) == first
    assert s == copy


# ---------------------------------------------------------------------------
# one test per code


def test_open_relay() -> None:
    finding = assert_single(imcea.check(settings(reroute=True)), "open_relay")
    assert finding.severity == "error"
    assert "reroute" in finding.message
    assert "Q260562" in finding.message


def test_open_relay_deny_list_is_no_restriction() -> None:
    # the never-route list does not permit anyone: it is not a selected restriction
    found = imcea.check(settings(reroute=True, restrictions={"deny": ["10.0.0.66"]}))
    assert codes(found) == ["open_relay"]


@pytest.mark.parametrize(
    "restrictions",
    [
        {"authenticated": True},
        {"allow": ["192.168.0.1"]},
        {"internal": ["10.0.0.1"]},
    ],
)
def test_any_selected_restriction_closes_the_relay(restrictions: dict[str, Any]) -> None:
    found = imcea.check(
        settings(
            reroute=True, server_addresses=["192.0.2.10", "10.0.0.1"], restrictions=restrictions
        )
    )
    assert "open_relay" not in codes(found)


def test_no_open_relay_when_rerouting_is_off() -> None:
    assert "open_relay" not in codes(imcea.check(settings(reroute=False)))


@pytest.mark.parametrize(
    ("servers", "internal"),
    [
        (["192.0.2.10", "10.0.0.1"], ["192.0.2.10", "10.0.0.1"]),
        (["192.0.2.10", "10.0.0.1"], ["0.0.0.0/0"]),
        (["192.0.2.10", "10.0.0.1"], ["192.0.2.0/24", "10.0.0.0/255.0.0.0"]),
        (["10.0.0.1"], ["10.0.0.1"]),
        (["2001:db8::25"], ["2001:db8::/32"]),
        (["192.0.2.10", "2001:db8::25"], ["192.0.2.10/32", "2001:db8::/64"]),
    ],
)
def test_internal_covers_all(servers: list[str], internal: list[str]) -> None:
    found = imcea.check(
        settings(reroute=True, server_addresses=servers, restrictions={"internal": internal})
    )
    finding = assert_single(found, "internal_covers_all")
    assert finding.severity == "error"
    assert "internal" in finding.message


@pytest.mark.parametrize(
    ("servers", "internal"),
    [
        (["192.0.2.10", "10.0.0.1"], ["10.0.0.1"]),
        (["192.0.2.10", "10.0.0.1"], ["10.0.0.0/8"]),
        (["192.0.2.10", "10.0.0.1"], ["192.0.2.11", "10.0.0.2"]),
        (["192.0.2.10", "2001:db8::25"], ["0.0.0.0/0"]),  # the IPv6 interface is not covered
        (["192.0.2.10"], ["192.0.2.10/255.255.255.0"]),  # host bits outside the mask: no match
    ],
)
def test_internal_covering_some_server_addresses_is_fine(
    servers: list[str], internal: list[str]
) -> None:
    found = imcea.check(
        settings(reroute=True, server_addresses=servers, restrictions={"internal": internal})
    )
    assert "internal_covers_all" not in codes(found)


def test_vulnerable_release() -> None:
    finding = assert_single(imcea.check(settings(release="SP2")), "vulnerable_release")
    assert finding.severity == "error"
    assert "release" in finding.message
    assert "SP2" in finding.message
    assert "MS99-027" in finding.message
    assert "vulnerable_release" not in codes(imcea.check(settings(release="SP3")))


def test_vulnerable_release_whatever_the_other_settings() -> None:
    s = settings(reroute=False, release="SP2", directory=[], restrictions={"deny": ["0.0.0.0/0"]})
    assert "vulnerable_release" in codes(imcea.check(s))


def test_site_connector_needs_reroute() -> None:
    finding = assert_single(
        imcea.check(settings(site_connector=True)), "site_connector_needs_reroute"
    )
    assert finding.severity == "error"
    assert "site_connector" in finding.message
    assert "reroute" in finding.message
    assert "Q237927" in finding.message
    ok = settings(site_connector=True, reroute=True, restrictions=closed())
    assert imcea.check(ok) == []


UNMATCHABLE = [
    "10.0.0.1/255.255.255.0",
    "10.0.0.1/24",
    "10.1.0.0/255.0.0.0",
    "10.1.0.0/8",
    "10.0.0.1/255.0.255.0",  # non-contiguous mask, host bit in the last octet
    "10.0.1.0/255.255.0.255",  # non-contiguous mask, host bit in the third octet
    "2001:db8::1/64",
    "2001:db8:0:1::/48",
]


@pytest.mark.parametrize("name", ["allow", "internal", "deny"])
@pytest.mark.parametrize("entry", UNMATCHABLE)
def test_unmatchable_network(name: str, entry: str) -> None:
    restrictions = closed(**{name: ["172.16.0.0/12", entry]})
    found = imcea.check(
        settings(reroute=True, server_addresses=["192.0.2.10"], restrictions=restrictions)
    )
    finding = assert_single(found, "unmatchable_network")
    assert finding.severity == "warning"
    assert f"restrictions.{name}[1]" in finding.message
    assert entry in finding.message
    assert "Q193922" in finding.message
    assert finding.key.startswith(f"restrictions.{name}")


@pytest.mark.parametrize("name", ["allow", "internal", "deny"])
def test_every_unmatchable_entry_is_reported(name: str) -> None:
    entries = ["10.0.0.1/255.255.255.0", "10.0.0.0/24", "10.0.0.1/24", "2001:db8::1/64"]
    found = imcea.check(
        settings(
            reroute=True, server_addresses=["192.0.2.10"], restrictions=closed(**{name: entries})
        )
    )
    messages = [f.message for f in only(found, "unmatchable_network")]
    assert len(messages) == 3
    for index in (0, 2, 3):
        assert any(f"restrictions.{name}[{index}]" in m for m in messages)
    assert not any(f"restrictions.{name}[1]" in m for m in messages)


@pytest.mark.parametrize(
    "entry",
    [
        "10.0.0.1",
        "10.0.0.1/32",
        "10.0.0.0/24",
        "10.0.0.0/255.255.255.0",
        "0.0.0.0/0",
        "10.0.0.0/255.0.255.0",  # non-contiguous but matchable
        "10.1.0.0/255.255.0.255",
        "2001:db8::/32",
        "2001:db8::1",
        "::/0",
    ],
)
def test_matchable_networks_are_not_reported(entry: str) -> None:
    for name in ("allow", "internal", "deny"):
        found = imcea.check(
            settings(
                reroute=True,
                server_addresses=["192.0.2.10"],
                restrictions=closed(**{name: [entry]}),
            )
        )
        assert "unmatchable_network" not in codes(found)


@pytest.mark.parametrize(
    ("allow", "deny"),
    [
        # contiguous masks, both forms
        ("10.1.2.0/24", "10.0.0.0/8"),
        ("10.1.2.0/255.255.255.0", "10.0.0.0/255.0.0.0"),
        ("10.1.2.0/24", "10.0.0.0/255.0.0.0"),
        ("10.1.2.3", "10.1.2.0/24"),
        ("10.0.0.5", "10.0.0.5"),  # the same entry in both lists
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("192.168.0.0/16", "0.0.0.0/0"),
        # non-contiguous masks
        ("10.1.2.5", "10.0.0.5/255.0.0.255"),  # deny 10.*.*.5 covers a host
        ("10.0.0.5/255.255.0.255", "10.0.0.5/255.0.0.255"),  # 10.0.*.5 inside 10.*.*.5
        ("10.0.0.5/255.255.0.255", "10.0.0.0/16"),  # 10.0.*.5 inside 10.0.0.0/16
        ("10.0.0.5/255.255.0.255", "0.0.0.0/0"),
        ("10.1.2.0/24", "10.0.2.0/255.0.255.0"),  # 10.*.2.* covers 10.1.2.0/24
        # IPv6
        ("2001:db8:1::/48", "2001:db8::/32"),
        ("2001:db8::25", "2001:db8::/64"),
        ("2001:db8::/32", "::/0"),
        ("2001:db8::/32", "2001:db8::/32"),
    ],
)
def test_deny_covers_allow(allow: str, deny: str) -> None:
    # a first allow entry of the other IP version, which the deny entry cannot cover
    other = "fd00::/8" if "." in deny else "172.16.0.0/12"
    restrictions = {"allow": [other, allow], "deny": ["198.51.100.0/24", deny]}
    found = imcea.check(settings(reroute=True, restrictions=restrictions))
    if allow == deny:  # equal entries lie inside each other
        found = only(found, "deny_covers_allow")
    finding = assert_single(found, "deny_covers_allow")
    assert finding.severity == "warning"
    assert "restrictions.allow[1]" in finding.message
    assert allow in finding.message
    assert finding.key.startswith("restrictions.allow")


@pytest.mark.parametrize(
    ("allow", "deny"),
    [
        # the documented carve-out: an allow entry covering a deny entry
        ("10.0.0.0/8", "10.1.2.0/24"),
        ("10.0.0.0/255.0.0.0", "10.1.2.3"),
        ("10.0.0.0/8", "10.0.0.5/255.0.0.255"),
        ("2001:db8::/32", "2001:db8:1::/48"),
        # overlapping, neither covering the other
        ("10.0.0.0/23", "10.0.1.0/24"),
        ("10.0.0.5/255.0.0.255", "10.0.0.0/16"),  # 10.*.*.5 is not inside 10.0.0.0/16
        ("10.0.0.0/16", "10.0.0.5/255.0.0.255"),
        # disjoint
        ("10.0.0.0/8", "11.0.0.0/8"),
        ("9.255.255.255", "10.0.0.0/8"),
        ("11.0.0.0", "10.0.0.0/8"),
        ("10.1.2.6", "10.0.0.5/255.0.0.255"),
        ("2001:db8::/32", "2001:db9::/32"),
        # another IP version
        ("2001:db8::/32", "0.0.0.0/0"),
        # a deny entry that never matches does not block anyone
        ("10.1.0.0/16", "10.0.0.1/8"),
    ],
)
def test_deny_not_covering_allow(allow: str, deny: str) -> None:
    restrictions = {"allow": [allow], "deny": [deny]}
    found = imcea.check(settings(reroute=True, restrictions=restrictions))
    assert "deny_covers_allow" not in codes(found)


def test_deny_covers_allow_reports_each_covered_entry() -> None:
    allow = [
        "10.1.0.0/16",  # covered by 10.0.0.0/8
        "192.168.0.0/16",  # not covered (192.168.5.5 is a carve-out)
        "172.16.5.0/24",  # covered by 172.16.0.0/12, listed after a bigger entry
        "11.0.0.1",  # not covered
        "2001:db8:1::/48",  # covered
        "10.200.0.0/255.255.0.255",  # covered by 10.0.0.0/8
    ]
    deny = ["192.168.5.5", "10.5.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "2001:db8::/32"]
    found = imcea.check(settings(reroute=True, restrictions={"allow": allow, "deny": deny}))
    messages = [f.message for f in only(found, "deny_covers_allow")]
    covered = {
        i for i in range(len(allow)) if any(f"restrictions.allow[{i}]" in m for m in messages)
    }
    assert covered == {0, 2, 4, 5}
    assert len(messages) == 4


def test_duplicate_route() -> None:
    routing = [
        {"domain": "contoso.com", "action": "inbound"},
        {"domain": "#contoso.com", "action": "inbound"},
        {"domain": "partner.example", "action": "reroute", "to": "mail.partner.example"},
        {"domain": "Contoso.COM.", "action": "reroute", "to": "elsewhere.example"},
    ]
    found = imcea.check(settings(reroute=True, routing=routing, restrictions=closed()))
    finding = assert_single(found, "duplicate_route")
    assert finding.severity == "warning"
    assert "routing[3]" in finding.message
    assert "contoso.com" in finding.message
    assert finding.key.startswith("routing")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("contoso.com", "contoso.com"),
        ("#contoso.com", "#Contoso.com."),
        ("bücher.de", "xn--bcher-kva.de"),
        ("#xn--bcher-kva.de", "#BÜCHER.de"),
    ],
)
def test_duplicate_route_after_normalisation(first: str, second: str) -> None:
    routing = [
        {"domain": first, "action": "inbound"},
        {"domain": "other.example", "action": "inbound"},
        {"domain": second, "action": "relay"},
    ]
    found = imcea.check(settings(reroute=True, routing=routing, restrictions=closed()))
    finding = assert_single(found, "duplicate_route")
    assert "routing[2]" in finding.message


def test_exact_and_plain_entries_for_one_domain_are_not_duplicates() -> None:
    routing = [
        {"domain": "sea.com", "action": "reroute", "to": "mail.sea.com"},
        {"domain": "#sea.com", "action": "inbound"},
        {"domain": "eng.sea.com", "action": "inbound"},
        {"domain": "#eng.sea.com", "action": "relay"},
    ]
    found = imcea.check(settings(reroute=True, routing=routing, restrictions=closed()))
    assert found == []


def test_every_duplicate_is_reported() -> None:
    routing = [
        {"domain": "a.example", "action": "inbound"},
        {"domain": "a.example", "action": "inbound"},
        {"domain": "a.example", "action": "relay"},
    ]
    found = imcea.check(settings(reroute=True, routing=routing, restrictions=closed()))
    messages = [f.message for f in only(found, "duplicate_route")]
    assert len(messages) == 2
    assert any("routing[1]" in m for m in messages)
    assert any("routing[2]" in m for m in messages)


def test_internal_without_server_addresses() -> None:
    found = imcea.check(settings(reroute=True, restrictions={"internal": ["10.0.0.1"]}))
    for finding in found:
        assert_well_formed(finding)
    (finding,) = only(found, "internal_without_server_addresses")
    assert finding.severity == "warning"
    assert "internal" in finding.message
    assert "server_addresses" in finding.message
    assert "open_relay" not in codes(found)


def test_internal_with_server_addresses_is_fine() -> None:
    found = imcea.check(
        settings(
            reroute=True,
            server_addresses=["192.0.2.10", "10.0.0.1"],
            restrictions={"internal": ["10.0.0.1"]},
        )
    )
    assert found == []
    assert imcea.check(settings(reroute=True, restrictions=closed())) == []


@pytest.mark.parametrize(
    "routing",
    [
        [{"domain": "partner.example", "action": "reroute", "to": "mail.partner.example"}],
        [{"domain": "always.example", "action": "relay"}],
        [
            {"domain": "contoso.com", "action": "inbound"},
            {"domain": "always.example", "action": "relay"},
            {"domain": "partner.example", "action": "reroute", "to": "mail.partner.example"},
        ],
    ],
)
def test_routes_ignored(routing: list[dict[str, str]]) -> None:
    s = settings(reroute=False, routing=routing, server_addresses=["192.0.2.10"])
    finding = assert_single(imcea.check(s), "routes_ignored")
    assert finding.severity == "warning"
    assert "routing" in finding.message
    assert "reroute" in finding.message


def test_routes_not_ignored() -> None:
    inbound_only = [{"domain": "contoso.com", "action": "inbound"}]
    assert imcea.check(settings(reroute=False, routing=inbound_only)) == []
    mixed = [
        {"domain": "contoso.com", "action": "inbound"},
        {"domain": "always.example", "action": "relay"},
    ]
    assert imcea.check(settings(reroute=True, routing=mixed, restrictions=closed())) == []


# no_inbound_domain: nothing can ever be delivered


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"reroute": True, "restrictions": closed()},
        {"routing": [{"domain": "partner.example", "action": "reroute", "to": "mail.example"}]},
        {"reroute": True, "routing": [{"domain": "a.example", "action": "relay"}]},
        # with rerouting on, a directory does not make a domain local
        {"reroute": True, "directory": ["jdoe@contoso.com"], "restrictions": closed()},
        # a directory that knows nobody, or only legacy DNs, delivers no ordinary recipient
        {"directory": []},
        {"directory": ["/O=ORG/OU=SITE/CN=RECIPIENTS/CN=JDOE"]},
    ],
    ids=[
        "defaults",
        "reroute",
        "reroute-entry",
        "relay-entry",
        "directory-rerouted",
        "empty",
        "dn",
    ],
)
def test_no_inbound_domain(values: dict[str, Any]) -> None:
    s = imcea.load_settings({"routing": [], **values})
    finding = only(imcea.check(s), "no_inbound_domain")
    assert len(finding) == 1
    assert_well_formed(finding[0])
    assert finding[0].key == "routing"
    assert "inbound" in finding[0].message
    # what the finding says is what decide() does: no ordinary recipient is delivered
    envelope = imcea.Envelope("a@b.example", ["jdoe@contoso.com", "user@elsewhere.example"])
    for client in ("192.168.0.1", "203.0.113.7"):
        for decision in imcea.decide(envelope, client, s, authenticated=True):
            assert decision.action is not imcea.Action.DELIVER, decision


@pytest.mark.parametrize(
    "values",
    [
        {"routing": [{"domain": "contoso.com", "action": "inbound"}]},
        {"routing": [{"domain": "#contoso.com", "action": "inbound"}]},
        # a server address literal, user@[192.0.2.10], is delivered
        {"server_addresses": ["192.0.2.10"]},
        # rerouting off: an address the directory knows is delivered whatever its domain
        {"directory": ["jdoe@contoso.com"]},
    ],
    ids=["inbound", "exact-inbound", "server-address", "directory"],
)
def test_some_recipient_can_be_delivered(values: dict[str, Any]) -> None:
    s = imcea.load_settings(values)
    assert "no_inbound_domain" not in codes(imcea.check(s))
    recipients = ["jdoe@contoso.com", "jdoe@[192.0.2.10]"]
    verdict = imcea.decide(imcea.Envelope("a@b.example", recipients), "203.0.113.7", s)
    assert any(d.action is imcea.Action.DELIVER for d in verdict)


# ---------------------------------------------------------------------------
# all of them at once


def test_errors_sort_before_warnings() -> None:
    s = settings(
        reroute=False,
        release="SP2",
        site_connector=True,
        routing=[
            {"domain": "a.example", "action": "relay"},
            {"domain": "b.example", "action": "inbound"},
            {"domain": "b.example", "action": "inbound"},
        ],
        restrictions={
            "allow": ["10.0.0.1/24", "10.1.0.0/16"],
            "internal": ["10.0.0.1"],
            "deny": ["10.0.0.0/8"],
        },
    )
    found = imcea.check(s)
    for finding in found:
        assert_well_formed(finding)
    severities = [f.severity for f in found]
    assert severities == sorted(severities, key=lambda s: s != "error")
    assert set(codes(found)) == {
        "vulnerable_release",
        "site_connector_needs_reroute",
        "unmatchable_network",
        "deny_covers_allow",
        "duplicate_route",
        "internal_without_server_addresses",
        "routes_ignored",
    }


# ---------------------------------------------------------------------------
# scale


def scale_settings(noncontiguous: int) -> imcea.Settings:
    # 20,000 allow entries: /24 blocks of 10.0.0.0/8, a few IPv6 blocks; the first 256
    # lie inside the never-route entry 10.0.0.0/16
    allow = [f"10.{i // 256}.{i % 256}.0/24" for i in range(19_900)]
    allow += [f"2001:db8:{i:x}::/48" for i in range(100)]
    # 20,000 deny entries: hosts elsewhere, one covering /16, and some entries with a
    # non-contiguous mask (legal in the IMS registry) that cover nothing
    deny = ["10.0.0.0/16"]
    deny += [f"{20 + i // 256}.0.0.{i % 256}/255.0.0.255" for i in range(noncontiguous)]
    deny += [f"11.{i // 256}.{i % 256}.1" for i in range(20_000 - len(deny))]
    s = imcea.Settings(
        reroute=True,
        routing=[imcea.Route("contoso.com", "inbound")],
        restrictions={"allow": allow, "deny": deny},
    )
    assert len(s.restrictions.allow) == 20_000
    assert len(s.restrictions.deny) == 20_000
    return s


@pytest.mark.parametrize("noncontiguous", [0, 200], ids=["contiguous", "1pc-noncontiguous"])
def test_check_scales(noncontiguous: int) -> None:
    s = scale_settings(noncontiguous)
    imcea.check(imcea.Settings())  # warm up imports
    start = time.perf_counter()
    found = imcea.check(s)
    elapsed = time.perf_counter() - start
    assert len(only(found, "deny_covers_allow")) == 256
    assert codes(found) == ["deny_covers_allow"] * 256
    assert elapsed < 2.0, f"check() took {elapsed:.2f} s"


# ---------------------------------------------------------------------------
# the command line


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imcea", "check", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def write(tmp_path: Path, text: str, name: str = "settings.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_cli_defaults_have_no_errors() -> None:
    result = run()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_cli_clean_settings(tmp_path: Path) -> None:
    result = run("--settings", write(tmp_path, DESIGN_EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "error" not in result.stdout


def test_cli_error_finding_exits_1(tmp_path: Path) -> None:
    result = run("--settings", write(tmp_path, "reroute = true\n"))
    assert result.returncode == 1
    assert "open_relay" in result.stdout
    assert "Traceback" not in result.stderr


def test_cli_warnings_only_exit_0(tmp_path: Path) -> None:
    text = '[[routing]]\ndomain = "always.example"\naction = "relay"\n'
    result = run("--settings", write(tmp_path, text))
    assert result.returncode == 0, result.stderr
    assert "routes_ignored" in result.stdout


def test_cli_json(tmp_path: Path) -> None:
    text = (
        'reroute = true\nrelease = "SP2"\n'
        '[[routing]]\ndomain = "a.example"\naction = "inbound"\n'
        '[[routing]]\ndomain = "A.example."\naction = "inbound"\n'
        '[restrictions]\nallow = ["10.0.0.1/24"]\n'
    )
    path = write(tmp_path, text)
    result = run("--settings", path, "--json")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert all(isinstance(r, dict) for r in records)
    for record in records:
        assert {"code", "severity", "key", "message"} <= set(record)
        assert record["severity"] == SEVERITY[record["code"]]
        assert ARTICLE.search(record["message"])
        assert isinstance(record["key"], str) and record["key"]
    assert sorted(r["code"] for r in records) == sorted(
        ["vulnerable_release", "unmatchable_network", "duplicate_route"]
    )
    severities = [r["severity"] for r in records]
    assert severities == sorted(severities, key=lambda s: s != "error")
    # the same findings as the library gives
    expected = imcea.check(imcea.load_settings(path))
    assert [(r["code"], r["severity"], r["key"], r["message"]) for r in records] == [
        (f.code, str(f.severity), f.key, f.message) for f in expected
    ]


def test_cli_json_without_findings(tmp_path: Path) -> None:
    text = DESIGN_EXAMPLE.replace('deny = ["10.0.0.66"]', 'deny = ["198.51.100.66"]')
    result = run("--json", "--settings", write(tmp_path, text))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert records == []


def test_cli_warns_of_a_never_route_host_inside_an_allow_network(tmp_path: Path) -> None:
    result = run("--json", "--settings", write(tmp_path, DESIGN_EXAMPLE))
    assert result.returncode == 0, result.stderr  # a warning is not an error
    records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [(r["code"], r["severity"], r["key"]) for r in records] == [
        ("deny_inside_allow", "warning", "restrictions.deny[0]")
    ]


@pytest.mark.parametrize(
    ("text", "name", "needle"),
    [
        ('release = "SP4"\n', "settings.toml", "release"),
        ("reroute = \n", "settings.toml", "settings.toml"),
        (
            '[restrictions]\nallow = ["10.0.0.0/255.255.x.0"]\n',
            "settings.toml",
            "restrictions.allow[0]",
        ),
        ('colour = "blue"\n', "settings.toml", "colour"),
        ('directory = "missing-gal.txt"\n', "settings.toml", "missing-gal.txt"),
        (None, "no-such-file.toml", "no-such-file.toml"),
    ],
)
def test_cli_bad_settings_is_one_line_on_stderr(
    tmp_path: Path, text: str | None, name: str, needle: str
) -> None:
    path = write(tmp_path, text, name) if text is not None else str(tmp_path / name)
    for extra in ((), ("--json",)):
        result = run("--settings", path, *extra)
        assert result.returncode == 2  # trouble, not a finding
        assert "Traceback" not in result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert needle in lines[0]
        assert result.stdout == ""


def test_cli_settings_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"reroute = true  # r\xe9acheminement\n")
    result = run("--settings", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
