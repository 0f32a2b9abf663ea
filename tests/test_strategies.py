"""imcea.strategies: each strategy produces values of the kind it promises.

Membership in networks is checked here with plain integer arithmetic on the masks
written in the test (``(ip AND mask) == address``, KB Q193922), not with imcea's own
matcher.
"""

from __future__ import annotations

import ipaddress
import re
import string
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import imcea
from imcea import strategies
from imcea.battery import FORMS, LAYERS
from imcea.networks import IPAddress
from imcea.strategies import client_ips, encapsulated_addresses, relay_tricks

REPO = Path(__file__).resolve().parent.parent

T = TypeVar("T")

budget = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def some(strategy: st.SearchStrategy[T], condition: Callable[[T], bool]) -> T:
    """An example of *strategy* that meets *condition* (fails the test when none is found).

    The first one found: shrinking it to the simplest would cost more than the search.
    """
    return find(
        strategy,
        condition,
        settings=settings(max_examples=2000, deadline=None, database=None, phases=[Phase.generate]),
    )


# ---------------------------------------------------------------------------
# encapsulated_addresses

KNOWN = set(strategies.KNOWN_TYPES)


@budget
@given(encapsulated_addresses())
def test_encapsulated_addresses_decode_strictly(address: str) -> None:
    value = imcea.decode(address)
    assert re.fullmatch(r"[A-Z0-9]{1,9}", value.addrtype)
    assert re.fullmatch(r"IMCEA[A-Z0-9]{1,9}-[A-Za-z0-9=_+-]+", address.rpartition("@")[0])
    assert str(value) == address  # canonical: upper-case prefix and hex


@budget
@given(encapsulated_addresses(["smtp", "X400", "ex"], ["contoso.example", "[192.0.2.10]", "*"]))
def test_encapsulated_addresses_have_the_promised_types_and_domains(address: str) -> None:
    value = imcea.decode(address)
    assert value.addrtype in {"SMTP", "X400", "EX"}
    assert value.domain in {"contoso.example", "[192.0.2.10]", "*"}


@budget
@given(encapsulated_addresses(["SMTP"], ["contoso.example"], variants=True))
def test_encapsulated_address_variants_still_decode(address: str) -> None:
    assert imcea.decode(address).addrtype == "SMTP"


def test_encapsulated_addresses_reach_every_kind() -> None:
    any_type = encapsulated_addresses()
    some(any_type, lambda a: imcea.decode(a).addrtype not in KNOWN)  # made-up types
    some(any_type, lambda a: "UTF8-" in a)  # beyond Latin-1
    some(any_type, lambda a: imcea.decode(a).domain.startswith("["))
    smtp = some(encapsulated_addresses(["SMTP"]), lambda a: "+40" in a)
    assert "@" in imcea.decode(smtp).address
    dn = some(encapsulated_addresses(["EX"]), lambda a: imcea.decode(a).address.startswith("/O="))
    assert imcea.x500(dn).startswith("X500:/O=")
    variants = encapsulated_addresses(["SMTP"], variants=True)
    some(variants, lambda a: a.startswith("imceasmtp-"))
    some(variants, lambda a: re.search(r"\+[0-9a-f]*[a-f][0-9a-f]*", a) is not None)
    slashed = some(encapsulated_addresses(["EX"], variants=True), lambda a: "+2F" in a)
    assert "/" in imcea.decode(slashed).address


@pytest.mark.parametrize(
    "arguments",
    [
        {"types": []},
        {"types": "SMTP"},
        {"types": ["TOOLONGTYPE"]},
        {"types": ["X-400"]},
        {"domains": []},
        {"domains": ["not a domain"]},
    ],
)
def test_encapsulated_addresses_check_their_arguments(arguments: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        encapsulated_addresses(**arguments)


# ---------------------------------------------------------------------------
# relay_tricks

LOCAL = ["contoso.example", "mail.contoso.example"]
REMOTE = ["example.org"]
SERVER = "192.0.2.10"
tricks = relay_tricks(LOCAL, REMOTE, server_ips=[SERVER])


def unwrap(recipient: str) -> str:
    """The recipient without its angle brackets and source route."""
    text = recipient.strip("<>")
    return text.split(":", 1)[1] if text.startswith("@") else text


def nesting(recipient: str) -> int:
    """How many levels of encapsulation the recipient carries (upper-case prefix)."""
    depth, text = 0, unwrap(recipient)
    while text.startswith("IMCEA"):
        try:
            text = imcea.decode(text).address
        except imcea.DecodeError:
            break
        depth += 1
    return depth


@budget
@given(tricks)
def test_relay_tricks_aim_at_the_given_domains(recipient: str) -> None:
    lowered = recipient.lower()
    # our domains, the remote ones, the server's literal, or a third party's literal
    assert any(name in lowered for name in [*LOCAL, *REMOTE, "@["])
    # and the IMS decides them without an exception, whatever their form
    decision = imcea.decide(imcea.Envelope("", [recipient]), "203.0.113.7", imcea.Settings())
    assert len(decision) == 1


@pytest.mark.parametrize(
    ("kind", "condition"),
    [
        ("plain remote", lambda r: unwrap(r) == "relaytest@example.org"),
        ("percent hack", lambda r: re.search(r"%example\.org@contoso\.example$", unwrap(r))),
        ("quoted", lambda r: '"' in r and r.endswith("@contoso.example")),
        ("source route", lambda r: r.startswith("<@contoso.example:")),
        ("two hops", lambda r: r.startswith(f"<@[{SERVER}],@")),
        ("bang path", lambda r: "example.org!" in r),
        ("server literal", lambda r: unwrap(r).endswith(f"@[{SERVER}]")),
        ("other literal", lambda r: re.search(r"@\[(?!192\.0\.2\.10\])", unwrap(r))),
        ("escaped at", lambda r: "\\@" in r),
        ("upper-case domain", lambda r: r.rstrip(">").endswith("@CONTOSO.EXAMPLE")),
        ("trailing dot", lambda r: r.rstrip(">").endswith(".")),
        ("encapsulated", lambda r: nesting(r) == 1),
        ("nested twice", lambda r: nesting(r) >= 2),
        ("past the bound of 3", lambda r: nesting(r) >= 4),
        ("lower-case prefix", lambda r: unwrap(r).startswith("imcea")),
        ("mixed-case prefix", lambda r: unwrap(r).startswith("ImCeA")),
        ("lower-case hex", lambda r: unwrap(r).startswith("IMCEA") and "+2e" in r),
        ("broken escape", lambda r: "+4O" in r),
        ("MAILTO", lambda r: unwrap(r).startswith("IMCEAMAILTO-")),
    ],
)
def test_relay_tricks_cover_the_vocabulary(kind: str, condition: Callable[[str], Any]) -> None:
    some(tricks, lambda r: bool(condition(r)))


def _form_pattern(template: str) -> re.Pattern[str]:
    """A regular expression for the paths *template* (a battery form) gives here: any
    user, our names and the remote name in any case (perhaps with a trailing dot)."""
    values = {
        "user": "[^@%!]+?",
        "remote": "example\\.org",
        "local": "(?:mail\\.)?contoso\\.example",
        "ip": re.escape(SERVER),
        "other": "[^]]+",
    }
    parts = string.Formatter().parse(template)
    text = "".join(
        re.escape(literal) + (values[name] if name else "") for literal, name, _, _ in parts
    )
    return re.compile(text + r"\.?", re.IGNORECASE)


@pytest.mark.parametrize("name", list(FORMS))
def test_relay_tricks_draw_every_form_of_the_battery(name: str) -> None:
    """The battery's vocabulary is the strategy's: each form comes out as it is written."""
    pattern = _form_pattern(FORMS[name])
    plain = relay_tricks(LOCAL, REMOTE, server_ips=[SERVER], max_depth=0)
    some(plain, lambda r: bool(pattern.fullmatch(unwrap(r))))


def test_relay_tricks_encapsulate_with_every_type_of_the_battery_layers() -> None:
    types = {layer.addrtype for layer in LAYERS.values()}
    assert types == {"SMTP", "MAILTO", "EX", "INVALID"}
    for addrtype in types:
        some(tricks, lambda r, t=addrtype: unwrap(r).startswith(f"IMCEA{t}-"))


def test_relay_tricks_nest_with_encode() -> None:
    def canonical_smtp(recipient: str) -> bool:
        text = unwrap(recipient)
        return (
            nesting(text) >= 2 and text.startswith("IMCEASMTP-") and str(imcea.decode(text)) == text
        )

    outer = unwrap(some(tricks, canonical_smtp))
    value = imcea.decode(outer)
    assert imcea.is_encapsulated(value.address)
    assert imcea.encode("SMTP", value.address, value.domain) == outer


@pytest.mark.parametrize(
    "arguments",
    [
        {"local_domains": []},
        {"local_domains": "contoso.example"},
        {"remote_domains": ["exa mple.org"]},
        {"server_ips": ["192.0.2.300"]},
        {"max_depth": -1},
    ],
)
def test_relay_tricks_check_their_arguments(arguments: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        relay_tricks(**arguments)


# ---------------------------------------------------------------------------
# client_ips


def network(text: str) -> tuple[int, int, int]:
    """(version, address, mask) of an entry written IP, IP/MASK or IP/len."""
    ip, _, mask = text.partition("/")
    address = ipaddress.ip_address(ip)
    full = (1 << address.max_prefixlen) - 1
    if not mask:
        value = full
    elif "." in mask:
        value = int(ipaddress.IPv4Address(mask))
    else:
        value = full ^ (full >> int(mask))
    return address.version, int(address), value


ALLOW = ["192.168.0.0/24", "10.0.0.0/255.0.255.0", "2001:db8::/32"]  # a non-contiguous mask
INTERNAL = ["10.1.1.1"]
DENY = ["172.16.0.0/12", "198.51.100.7/24"]  # the second has host bits set: never matches
POLICY = imcea.Settings(
    reroute=True,
    restrictions=imcea.Restrictions(allow=ALLOW, internal=INTERNAL, deny=DENY),
)


def in_network(ip: IPAddress, version: int, address: int, mask: int) -> bool:
    """``(ip AND mask) == address``, an IPv4-mapped IPv6 client as its IPv4 address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.version == version and int(ip) & mask == address


def matches(ip: IPAddress, entries: list[str]) -> bool:
    return any(in_network(ip, *network(entry)) for entry in entries)


@budget
@given(client_ips(POLICY, inside=True))
def test_inside_clients_are_inside(ip: IPAddress) -> None:
    assert isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)
    assert matches(ip, ALLOW + INTERNAL + DENY)


@budget
@given(client_ips(POLICY, inside=False))
def test_outside_clients_are_outside(ip: IPAddress) -> None:
    assert not matches(ip, ALLOW + INTERNAL + DENY)


@budget
@given(client_ips(POLICY, inside=True, lists=["allow"], versions=[4]))
def test_inside_one_list_of_one_version(ip: IPAddress) -> None:
    assert ip.version == 4 and matches(ip, ALLOW)
    decision = imcea.decide(imcea.Envelope("", ["a@example.org"]), ip, POLICY)[0]
    assert decision.reason is imcea.Reason.RELAY_ALLOWED_HOST


@budget
@given(client_ips(POLICY, inside=False, lists=["allow", "internal"]))
def test_outside_the_permitting_lists_nobody_relays(ip: IPAddress) -> None:
    assert not matches(ip, ALLOW + INTERNAL)
    decision = imcea.decide(imcea.Envelope("", ["a@example.org"]), ip, POLICY)[0]
    assert decision.action is imcea.Action.RETURN


def test_client_ips_reach_every_entry_and_near_misses() -> None:
    inside = client_ips(POLICY, inside=True)
    some(inside, lambda ip: ip.version == 6)
    some(inside, lambda ip: matches(ip, ["10.0.0.0/255.0.255.0"]) and int(ip) & 0xFF00FF != 0)
    some(inside, lambda ip: str(ip) == "10.1.1.1")
    some(inside, lambda ip: matches(ip, ["172.16.0.0/12"]))
    outside = client_ips(POLICY, inside=False, versions=[4])
    # a near miss: next to an allow entry, one mask bit away
    some(outside, lambda ip: matches(ip, ["192.168.0.0/16"]))
    either = client_ips(POLICY)
    some(either, lambda ip: matches(ip, ALLOW))
    some(either, lambda ip: not matches(ip, ALLOW + INTERNAL + DENY))


def test_an_unmatchable_entry_is_never_inside() -> None:
    only_unmatchable = imcea.Settings(restrictions=imcea.Restrictions(deny=["198.51.100.7/24"]))
    with pytest.raises(InvalidArgument):
        client_ips(only_unmatchable, inside=True)


def test_lists_that_cover_everything_have_no_outside() -> None:
    everyone = imcea.Settings(restrictions=imcea.Restrictions(allow=["0.0.0.0/0"]))
    with pytest.raises(InvalidArgument):
        client_ips(everyone, inside=False, versions=[4])
    ip = some(client_ips(everyone, inside=False), lambda ip: True)
    assert ip.version == 6 and ip.ipv4_mapped is None  # an IPv4 entry never matches IPv6


@pytest.mark.parametrize(
    "arguments",
    [{"lists": ["allowed"]}, {"lists": []}, {"lists": "allow"}, {"versions": [5]}, {"versions": 4}],
)
def test_client_ips_check_their_arguments(arguments: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        client_ips(POLICY, **arguments)


def test_client_ips_need_settings() -> None:
    with pytest.raises(InvalidArgument):
        client_ips({"restrictions": {}}, inside=True)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# settings


@budget
@given(strategies.settings())
def test_settings_are_settings(value: imcea.Settings) -> None:
    assert isinstance(value, imcea.Settings)
    imcea.check(value)  # every generated value is one the rest of the library takes


@budget
@given(
    strategies.settings(
        reroute=st.just(True),
        release=st.just(imcea.Release.SP3),
        directory=st.none(),
        gateways=st.just(frozenset({"X400"})),
    )
)
def test_settings_fields_can_be_fixed(value: imcea.Settings) -> None:
    assert value.reroute is True
    assert value.release is imcea.Release.SP3
    assert value.directory is None
    assert value.gateways == frozenset({"X400"})


def test_settings_reach_every_kind_of_field() -> None:
    values = strategies.settings()
    some(values, lambda s: s.directory is not None and len(s.directory.dns) > 0)
    some(values, lambda s: s.directory is not None and any("[" in a for a in s.directory.addresses))
    some(values, lambda s: s.gateways is not None and len(s.gateways) > 0)
    some(values, lambda s: s.gateways is None)
    for action in imcea.RouteAction:
        some(values, lambda s, a=action: any(r.action is a for r in s.routing))
    some(values, lambda s: any(r.exact for r in s.routing))
    some(values, lambda s: any(n.version == 6 for n in s.restrictions.allow))
    some(values, lambda s: any(n.prefixlen is None for n in s.restrictions.allow))  # non-contiguous
    some(values, lambda s: any(not n.matchable for n in s.restrictions.deny))
    some(values, lambda s: any(s.restrictions.internal.match(ip) for ip in s.server_addresses))
    some(values, lambda s: s.release is imcea.Release.SP2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_client_ips_of_generated_settings(data: st.DataObject) -> None:
    value = data.draw(strategies.settings())
    networks = [n for group in (value.restrictions.allow, value.restrictions.deny) for n in group]
    lists = ["allow", "deny"]
    if any(n.matchable for n in networks):
        ip = data.draw(client_ips(value, inside=True, lists=lists))
        assert any(in_network(ip, n.version, n.address, n.mask) for n in networks)
    if not any(n.matchable and n.mask == 0 for n in networks):
        ip = data.draw(client_ips(value, inside=False, lists=lists))
        assert not any(in_network(ip, n.version, n.address, n.mask) for n in networks)


# ---------------------------------------------------------------------------
# imports


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_without_hypothesis_the_import_error_says_what_to_install() -> None:
    result = run_python(
        "import sys; sys.modules['hypothesis'] = None\n"
        "try:\n    import imcea.strategies\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    assert "imcea.strategies needs the hypothesis package: pip install hypothesis" in result.stdout


def test_the_package_imports_neither_hypothesis_nor_pytest() -> None:
    result = run_python(
        "import sys, imcea, imcea.cases, imcea.cli\n"
        "print(sorted(m for m in ('hypothesis', 'pytest', '_pytest') if m in sys.modules))"
    )
    assert result.stdout.strip() == "[]", result.stderr
