"""Tests of imcea.networks: parsing, matching and the network set."""

from __future__ import annotations

import ipaddress
import pickle
import random
import re
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imcea
from imcea import networks
from imcea.errors import Error, SettingsError
from imcea.networks import Network, NetworkSet, dotted_quad, ip_key, parse_ip, parse_network

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address
FULL4 = 2**32 - 1
FULL6 = 2**128 - 1


def ip4(text: str) -> int:
    return int(V4(text))


# ---------------------------------------------------------------------------
# parse_ip


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("192.0.2.1", V4("192.0.2.1")),
        ("0.0.0.0", V4("0.0.0.0")),
        ("255.255.255.255", V4("255.255.255.255")),
        (" 10.0.0.5\n", V4("10.0.0.5")),
        ("2001:db8::1", V6("2001:db8::1")),
        ("2001:DB8::1", V6("2001:db8::1")),
        (" ::1 ", V6("::1")),
        ("::ffff:192.0.2.1", V4("192.0.2.1")),
        ("::ffff:c000:201", V4("192.0.2.1")),
        ("::192.0.2.1", V6("::c000:201")),  # IPv4-compatible, not mapped: stays IPv6
        (V4("10.1.2.3"), V4("10.1.2.3")),
        (V6("2001:db8::5"), V6("2001:db8::5")),
        (V6("::ffff:10.0.0.5"), V4("10.0.0.5")),
    ],
)
def test_parse_ip(value: object, expected: object) -> None:
    result = parse_ip(value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    "value",
    [
        "10.0.0.300",
        "10.0.0",
        "10.0.0.1.2",
        "010.0.0.1",  # a leading zero reads as octal to some parsers
        "10.0.0.01",
        "10.0.0.0/8",
        "10.0.0.1/32",
        "2001:db8::/32",
        "fe80::1%eth0",
        "1.2.3.4 5",
        "\u0661\u0660.0.0.1",  # Arabic-Indic digits
        "",
        "   ",
        "localhost",
        "::ffff:10.0.0.256",
        "2001:db8:::1",
        167772161,
        b"10.0.0.1",
        None,
        1.5,
        True,
        ["10.0.0.1"],
        ipaddress.ip_network("10.0.0.0/8"),
        V6("fe80::1%eth0"),
    ],
)
def test_parse_ip_rejects(value: object) -> None:
    with pytest.raises(Error) as info:
        parse_ip(value, key="sender_ip")
    assert type(info.value) is Error
    assert str(info.value) == f"sender_ip: {value!r} is not an IP address"


def test_parse_ip_message_default_key_and_huge_input() -> None:
    with pytest.raises(Error, match=r"^ip: '10\.0\.0\.300' is not an IP address$"):
        parse_ip("10.0.0.300")
    with pytest.raises(Error) as info:
        parse_ip("1" * 1_000_000)
    assert len(str(info.value)) < 200


def test_parse_ip_str_subclass() -> None:
    class Text(str):
        pass

    assert parse_ip(Text("10.0.0.1")) == V4("10.0.0.1")


@given(st.one_of(st.text(), st.binary(), st.integers(), st.none(), st.floats()))
def test_parse_ip_garbage_raises_only_imcea_errors(value: object) -> None:
    try:
        result = parse_ip(value)
    except Error:
        return
    assert isinstance(value, str)
    assert (result.version, int(result)) == reference_ip(value.strip())


@given(st.integers(0, FULL4))
def test_parse_ip_any_dotted_quad(value: int) -> None:
    text = str(V4(value))
    assert parse_ip(text) == V4(value)
    assert parse_ip(f"::ffff:{text}") == V4(value)


# ---------------------------------------------------------------------------
# parse_network


@pytest.mark.parametrize(
    ("text", "version", "address", "mask"),
    [
        ("192.168.0.1", 4, "192.168.0.1", "255.255.255.255"),
        ("10.0.0.0/255.255.255.0", 4, "10.0.0.0", "255.255.255.0"),
        ("10.0.0.0/255.0.0.0", 4, "10.0.0.0", "255.0.0.0"),
        ("10.0.0.0/24", 4, "10.0.0.0", "255.255.255.0"),
        ("10.0.0.0/08", 4, "10.0.0.0", "255.0.0.0"),
        ("0.0.0.0/0", 4, "0.0.0.0", "0.0.0.0"),
        ("0.0.0.0/0.0.0.0", 4, "0.0.0.0", "0.0.0.0"),
        ("10.0.0.5/32", 4, "10.0.0.5", "255.255.255.255"),
        ("10.0.0.5/255.0.0.255", 4, "10.0.0.5", "255.0.0.255"),
        ("10.0.0.0/0.0.0.255", 4, "10.0.0.0", "0.0.0.255"),  # a mask, never a host mask
        ("10.0.0.1/255.255.255.0", 4, "10.0.0.1", "255.255.255.0"),  # host bits kept
        ("10.0.0.1/24", 4, "10.0.0.1", "255.255.255.0"),
        ("  10.0.0.0/8 \t", 4, "10.0.0.0", "255.0.0.0"),
        ("::ffff:10.0.0.0/104", 4, "10.0.0.0", "255.0.0.0"),
        ("::ffff:192.0.2.7", 4, "192.0.2.7", "255.255.255.255"),
        ("::ffff:0:0/96", 4, "0.0.0.0", "0.0.0.0"),
        ("::ffff:10.0.0.1/104", 4, "10.0.0.1", "255.0.0.0"),
    ],
)
def test_parse_network_ipv4(text: str, version: int, address: str, mask: str) -> None:
    net = parse_network(text)
    assert (net.version, net.address, net.mask) == (version, ip4(address), ip4(mask))
    assert net.text == text.strip() == str(net)


@pytest.mark.parametrize(
    ("text", "address", "prefix"),
    [
        ("2001:db8::/32", "2001:db8::", 32),
        ("2001:db8::1", "2001:db8::1", 128),
        ("::/0", "::", 0),
        ("::ffff:0:0/95", "::ffff:0:0", 95),  # wider than the mapped block: stays IPv6
        ("2001:db8::1/64", "2001:db8::1", 64),
        ("fe80::/10", "fe80::", 10),
    ],
)
def test_parse_network_ipv6(text: str, address: str, prefix: int) -> None:
    net = parse_network(text)
    assert net.version == 6
    assert net.address == int(V6(address))
    assert net.mask == int(ipaddress.IPv6Network(f"::/{prefix}").netmask)
    assert net.prefixlen == prefix


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "10.0.0.0/255.255.x.0",
        "10.0.0.0/",
        "10.0.0.0/33",
        "10.0.0.0/100",
        "10.0.0.0/-1",
        "10.0.0.0/+8",
        "10.0.0.0/255.255.255",
        "10.0.0.256",
        "10.0.0.0/255.255.256.0",
        "010.0.0.0/8",
        "10.0.0.0/255.255.255.000",
        "10.0.0.0 / 8",
        "10.0.0.0/8/8",
        "10.0.0.0-10.0.0.255",
        "10.0.0.*",
        "10.0.0",
        "2001:db8::/129",
        "2001:db8::/ffff::",
        "2001:db8::/255.255.0.0",
        "2001:db8::/",
        "fe80::1%eth0/64",
        "fe80::1%eth0",
        "2001:db8:::/32",
        "example.com",
        "\u0661\u0660.0.0.0/8",
    ],
)
def test_parse_network_rejects(text: str) -> None:
    key = "restrictions.allow[2]"
    with pytest.raises(SettingsError) as info:
        parse_network(text, key=key)
    assert str(info.value) == f"{key}: {text!r} is not a network"


@pytest.mark.parametrize(
    ("value", "shown"), [(10, "10"), (None, "None"), (b"10.0.0.1", "b'10.0.0.1'")]
)
def test_parse_network_rejects_non_strings(value: object, shown: str) -> None:
    message = f"deny[0]: expected a network string, got {shown}"
    with pytest.raises(SettingsError, match=f"^{re.escape(message)}$"):
        parse_network(value, key="deny[0]")  # type: ignore[arg-type]


@given(st.integers(0, FULL4), st.integers(0, 32), st.booleans())
def test_parse_network_agrees_with_ipaddress_v4(address: int, length: int, dotted: bool) -> None:
    mask = ipaddress.IPv4Network(f"0.0.0.0/{length}").netmask
    text = f"{V4(address)}/{mask if dotted else length}"
    net = parse_network(text)
    expected = ipaddress.IPv4Network(text, strict=False)
    assert (net.version, net.mask, net.prefixlen) == (4, int(expected.netmask), length)
    assert net.address & net.mask == int(expected.network_address)
    assert net.matchable == (net.address == int(expected.network_address))


@given(st.integers(0, FULL6), st.integers(0, 128))
def test_parse_network_agrees_with_ipaddress_v6(address: int, length: int) -> None:
    text = f"{V6(address)}/{length}"
    net = parse_network(text)
    expected = ipaddress.IPv6Network(text, strict=False)
    if address >> 32 == 0xFFFF and length >= 96:
        assert (net.version, net.address, net.prefixlen) == (4, address & FULL4, length - 96)
    else:
        assert (net.version, net.address, net.prefixlen) == (6, address, length)
        assert net.mask == int(expected.netmask)


@given(st.one_of(st.text(), st.text(alphabet="0123456789./:abcdefABCDEF% ")))
def test_parse_network_garbage_raises_only_settings_errors(text: str) -> None:
    try:
        net = parse_network(text, key="allow[0]")
    except SettingsError as exc:
        assert str(exc).startswith("allow[0]: ")
        assert str(exc).endswith(" is not a network")
        with pytest.raises(SettingsError, match=r"^x\[0\]: "):
            NetworkSet([text], key="x")
        return
    assert net.text == text.strip()
    assert NetworkSet([text]).entries == (net,)


@pytest.mark.parametrize(
    ("text", "contiguous", "matchable", "prefixlen"),
    [
        ("10.0.0.0/8", True, True, 8),
        ("10.0.0.0/255.255.255.0", True, True, 24),
        ("10.0.0.1", True, True, 32),
        ("0.0.0.0/0", True, True, 0),
        ("10.0.0.5/255.0.0.255", False, True, None),
        ("10.0.0.0/255.0.255.0", False, True, None),
        ("10.0.0.1/255.255.255.0", True, False, 24),
        ("10.0.0.1/24", True, False, 24),
        ("10.0.0.0/0.0.0.255", False, False, None),
        ("2001:db8::/32", True, True, 32),
        ("2001:db8::1/32", True, False, 32),
    ],
)
def test_network_properties(
    text: str, contiguous: bool, matchable: bool, prefixlen: int | None
) -> None:
    net = parse_network(text)
    assert net.contiguous is contiguous
    assert net.matchable is matchable
    assert net.prefixlen == prefixlen


# ---------------------------------------------------------------------------
# Network.matches


@pytest.mark.parametrize(
    ("entry", "ip", "expected"),
    [
        # IMS dotted masks
        ("10.0.0.0/255.255.255.0", "10.0.0.0", True),
        ("10.0.0.0/255.255.255.0", "10.0.0.255", True),
        ("10.0.0.0/255.255.255.0", "10.0.1.0", False),
        ("10.0.0.0/255.255.255.0", "9.255.255.255", False),
        ("172.16.0.0/255.240.0.0", "172.31.255.255", True),
        ("172.16.0.0/255.240.0.0", "172.32.0.0", False),
        # CIDR
        ("192.168.0.0/16", "192.168.200.1", True),
        ("192.168.0.0/16", "192.169.0.1", False),
        ("0.0.0.0/0", "203.0.113.9", True),
        ("0.0.0.0/0", "2001:db8::1", False),
        # single addresses
        ("192.168.0.1", "192.168.0.1", True),
        ("192.168.0.1", "192.168.0.2", False),
        # host bits outside the mask: never matches (Q193922), dotted or CIDR
        ("10.0.0.1/255.255.255.0", "10.0.0.1", False),
        ("10.0.0.1/255.255.255.0", "10.0.0.0", False),
        ("10.0.0.1/24", "10.0.0.1", False),
        ("10.0.0.1/24", "10.0.0.77", False),
        ("10.0.0.0/0.0.0.255", "10.0.0.0", False),
        # non-contiguous masks: exactly (ip AND mask) == address
        ("10.0.0.5/255.0.0.255", "10.99.42.5", True),
        ("10.0.0.5/255.0.0.255", "10.0.0.6", False),
        ("10.0.0.5/255.0.0.255", "11.0.0.5", False),
        ("10.0.1.0/255.0.255.0", "10.7.1.200", True),
        ("10.0.1.0/255.0.255.0", "10.7.2.1", False),
        # IPv6
        ("2001:db8::/32", "2001:db8:ffff::1", True),
        ("2001:db8::/32", "2001:db9::", False),
        ("2001:db8::/32", "10.0.0.1", False),
        ("::/0", "2001:db8::1", True),
        ("::/0", "10.0.0.1", False),
        ("::/0", "::ffff:10.0.0.1", False),  # a mapped client is matched as IPv4
        ("2001:db8::1/64", "2001:db8::1", False),
        # IPv4-mapped clients and entries
        ("10.0.0.0/8", "::ffff:10.0.0.5", True),
        ("10.0.0.5", "::ffff:10.0.0.5", True),
        ("10.0.0.0/8", "::ffff:11.0.0.5", False),
        ("::ffff:10.0.0.0/104", "10.1.2.3", True),
        ("::ffff:10.0.0.0/104", "::ffff:10.1.2.3", True),
        ("::ffff:10.0.0.0/104", "11.1.2.3", False),
    ],
)
def test_matches(entry: str, ip: str, expected: bool) -> None:
    net = parse_network(entry)
    assert net.matches(ip) is expected
    assert net.matches(ipaddress.ip_address(ip)) is expected
    assert (parse_ip(ip) in NetworkSet([entry])) is expected


def test_matches_rejects_non_addresses() -> None:
    with pytest.raises(Error, match="is not an IP address"):
        parse_network("10.0.0.0/8").matches("10.0.0.0/8")


# ---------------------------------------------------------------------------
# Network.covers


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [
        ("10.0.0.0/8", "10.1.0.0/16", True),
        ("10.0.0.0/8", "10.0.0.0/8", True),
        ("10.0.0.0/8", "10.0.0.0/255.0.0.0", True),
        ("10.0.0.0/8", "10.1.2.3", True),
        ("10.1.0.0/16", "10.0.0.0/8", False),
        ("10.0.0.0/8", "11.0.0.0/16", False),
        ("0.0.0.0/0", "192.0.2.1", True),
        ("0.0.0.0/0", "2001:db8::1", False),
        ("10.0.0.0/8", "::ffff:10.1.0.0/112", True),
        # non-contiguous masks
        ("10.0.0.5/255.0.0.255", "10.1.2.5", True),
        ("10.0.0.5/255.0.0.255", "10.1.2.0/24", False),
        ("10.0.0.5/255.0.0.255", "10.1.0.5/255.255.0.255", True),
        ("10.0.0.0/255.255.0.0", "10.0.0.5/255.255.0.255", True),
        ("10.0.0.0/255.0.255.0", "10.0.0.0/16", False),
        ("10.0.0.0/8", "10.0.0.5/255.0.0.255", True),
        ("10.0.0.0/16", "10.0.0.5/255.0.0.255", False),
        # an unmatchable entry matches nothing: it is covered by anything, covers nothing
        ("10.0.0.0/8", "10.0.0.1/24", True),
        ("192.0.2.0/24", "10.0.0.1/24", True),
        ("10.0.0.1/24", "10.0.0.1", False),
        ("10.0.0.1/24", "10.0.0.0/24", False),
        # IPv6
        ("2001:db8::/32", "2001:db8:1::/48", True),
        ("2001:db8:1::/48", "2001:db8::/32", False),
        ("::/0", "10.0.0.0/8", False),
    ],
)
def test_covers(outer: str, inner: str, expected: bool) -> None:
    assert parse_network(outer).covers(parse_network(inner)) is expected


def _all_v4_in(net: Network, universe: range) -> set[int]:
    return {value for value in universe if value & net.mask == net.address}


@given(
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
)
def test_covers_agrees_with_sets_of_addresses(
    outer_address: int, outer_mask: int, inner_address: int, inner_mask: int
) -> None:
    # networks inside 10.0.0.0/24 with any last-octet mask: small enough to enumerate
    base = ip4("10.0.0.0")
    outer = Network("outer", 4, base | outer_address, 0xFFFFFF00 | outer_mask)
    inner = Network("inner", 4, base | inner_address, 0xFFFFFF00 | inner_mask)
    universe = range(base, base + 256)
    assert outer.covers(inner) == (_all_v4_in(inner, universe) <= _all_v4_in(outer, universe))


# ---------------------------------------------------------------------------
# NetworkSet


def test_most_specific_entry_is_named() -> None:
    allow = NetworkSet(
        ["10.0.0.0/255.0.0.0", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3", "0.0.0.0/0"]
    )
    entry = {net.text: net for net in allow}
    assert allow.match("10.1.2.3") is entry["10.1.2.3"]
    assert allow.match("10.1.2.4") is entry["10.1.2.0/24"]
    assert allow.match("10.1.3.4") is entry["10.1.0.0/16"]
    assert allow.match("10.2.3.4") is entry["10.0.0.0/255.0.0.0"]
    assert allow.match("11.2.3.4") is entry["0.0.0.0/0"]
    assert allow.match("2001:db8::1") is None


@pytest.mark.parametrize("kind", ["search", "block table"])
def test_ends_of_the_address_space(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(networks, "_BLOCK_TABLE_MIN", 0 if kind == "block table" else 10**9)
    nets = NetworkSet(
        [
            *("0.0.0.0/0", "0.0.0.0", "255.255.255.254", "255.255.255.0/24", "0.0.0.1/32"),
            *("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "::"),
        ]
    )
    assert [nets.match(ip) for ip in ("0.0.0.0", "0.0.0.1", "0.0.0.2")] == [
        nets.entries[1],
        nets.entries[4],
        nets.entries[0],
    ]
    assert [nets.match(ip) for ip in ("255.255.255.253", "255.255.255.254", "255.255.255.255")] == [
        nets.entries[3],
        nets.entries[2],
        nets.entries[3],
    ]
    top = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:"
    assert [nets.match(top + end) for end in ("fffd", "fffe", "ffff")] == [
        nets.entries[5],
        nets.entries[6],
        nets.entries[5],
    ]
    assert nets.match("::") is nets.entries[7]
    assert nets.match("::1") is nets.entries[5]
    assert NetworkSet(["255.255.255.255"]).match("255.255.255.255") is not None
    assert NetworkSet(["255.255.255.255"]).match("255.255.255.254") is None


def test_ties_go_to_the_first_written() -> None:
    allow = NetworkSet(["10.0.0.0/255.255.255.0", "10.0.0.0/24", "10.0.0.9", "10.0.0.9/32"])
    assert allow.match("10.0.0.1") is allow.entries[0]
    assert allow.match("10.0.0.9") is allow.entries[2]


def test_non_contiguous_entries_come_after_contiguous_ones() -> None:
    allow = NetworkSet(["10.0.0.5/255.0.0.255", "10.0.0.0/255.0.255.0", "10.0.0.0/8"])
    assert allow.match("10.1.0.5") is allow.entries[2]  # contiguous wins
    deny = NetworkSet(["10.0.0.5/255.0.0.255", "10.0.0.0/255.0.255.0", "192.168.0.0/16"])
    assert deny.match("10.1.0.5") is deny.entries[0]  # then the first written
    assert deny.match("10.1.0.6") is deny.entries[1]
    assert deny.match("10.1.1.5") is deny.entries[0]
    assert deny.match("10.1.1.6") is None
    assert "10.1.1.6" not in deny
    assert "10.1.1.5" in deny


def test_unmatchable_entries_never_match() -> None:
    deny = NetworkSet(["10.0.0.1/255.255.255.0", "10.0.0.1/24", "::ffff:10.0.0.1/120"])
    for ip in ("10.0.0.1", "10.0.0.0", "10.0.0.200", "::ffff:10.0.0.1"):
        assert deny.match(ip) is None
        assert ip not in deny
    assert [net.matchable for net in deny] == [False, False, False]


def test_mapped_clients_and_entries() -> None:
    allow = NetworkSet(["10.0.0.0/8", "::ffff:192.168.0.0/112", "2001:db8::/32", "::/0"])
    assert allow.match("::ffff:10.0.0.5") is allow.entries[0]
    assert allow.match(V6("::ffff:10.0.0.5")) is allow.entries[0]
    assert allow.match("192.168.7.7") is allow.entries[1]
    assert allow.match("2001:db8::7") is allow.entries[2]
    assert allow.match("2001:db9::7") is allow.entries[3]
    assert allow.match("172.16.0.1") is None  # ::/0 is IPv6 only


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            ["10.0.0.0/8", "10.0.0.0/255.255.x.0"],
            "allow[1]: '10.0.0.0/255.255.x.0' is not a network",
        ),
        (["10.0.0.300"], "allow[0]: '10.0.0.300' is not a network"),
        (["10.0.0.0/33"], "allow[0]: '10.0.0.0/33' is not a network"),
        (["::1", "2001:db8::/200"], "allow[1]: '2001:db8::/200' is not a network"),
        (["10.0.0.1", 10], "allow[1]: expected a network string, got 10"),
        ([None], "allow[0]: expected a network string, got None"),
        ("10.0.0.0/8", "allow: expected a list of networks, got str"),
        (b"10.0.0.0/8", "allow: expected a list of networks, got bytes"),
        (10, "allow: expected a list of networks, got int"),
        (None, "allow: expected a list of networks, got NoneType"),
    ],
)
def test_bad_entries_name_the_key(entries: object, message: str) -> None:
    with pytest.raises(SettingsError) as info:
        NetworkSet(entries, key="allow")  # type: ignore[arg-type]
    assert str(info.value) == message


def test_bad_network_values_are_rejected() -> None:
    with pytest.raises(SettingsError, match=r"^networks\[0\]: .* is not a valid network$"):
        NetworkSet([Network("x", 5, 0, 0)])
    with pytest.raises(SettingsError, match=r"^n\[0\]: Network\(.*'abc'.* is not a valid network$"):
        NetworkSet([Network("x", 4, "abc", 0)], key="n")  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match=r"^networks\[1\]: .* is not a valid network$"):
        NetworkSet(["10.0.0.1", Network("x", 4, 2**32, FULL4)])
    with pytest.raises(SettingsError, match=r"is not a valid network$"):
        NetworkSet([Network("x", 4, -1, FULL4)])


def test_set_accepts_network_values_and_generators() -> None:
    nets = NetworkSet(text for text in ["10.0.0.0/8", "192.0.2.1"])
    again = NetworkSet(nets)
    assert again == nets
    assert hash(again) == hash(nets)
    assert list(again) == list(nets.entries)
    assert "192.0.2.1" in again


def test_set_container_protocol() -> None:
    empty = NetworkSet()
    assert len(empty) == 0
    assert not empty
    assert list(empty) == []
    assert empty.match("10.0.0.1") is None
    assert "10.0.0.1" not in empty
    assert "::1" not in empty
    nets = NetworkSet(["10.0.0.0/8", " 192.0.2.1 ", "2001:db8::/32", "10.0.0.0/8"])
    assert len(nets) == 4
    assert nets
    assert [str(net) for net in nets] == ["10.0.0.0/8", "192.0.2.1", "2001:db8::/32", "10.0.0.0/8"]
    assert nets == NetworkSet(["10.0.0.0/8", "192.0.2.1", "2001:db8::/32", "10.0.0.0/8"])
    assert nets != NetworkSet(["192.0.2.1", "10.0.0.0/8", "2001:db8::/32", "10.0.0.0/8"])
    assert nets != ["10.0.0.0/8"]
    assert {nets: 1}[NetworkSet(list(nets))] == 1
    assert repr(NetworkSet(["10.0.0.0/8"])) == "NetworkSet(['10.0.0.0/8'])"
    assert repr(nets) == "NetworkSet(['10.0.0.0/8', '192.0.2.1', '2001:db8::/32', ...]) (4 entries)"
    assert pickle.loads(pickle.dumps(nets)) == nets


def test_set_is_immutable() -> None:
    nets = NetworkSet(["10.0.0.0/8"])
    with pytest.raises(AttributeError):
        nets.entries = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        nets._v4 = nets._v6
    with pytest.raises(AttributeError):
        del nets._entries
    with pytest.raises(AttributeError):
        nets.extra = 1
    with pytest.raises(AttributeError):
        parse_network("10.0.0.0/8").mask = 0  # type: ignore[misc]
    assert "10.1.1.1" in nets


@pytest.mark.parametrize("value", ["10.0.0.0/8", "garbage", 167772161, None, b"\x0a\0\0\1"])
def test_set_lookups_reject_non_addresses(value: object) -> None:
    nets = NetworkSet(["10.0.0.0/8", "2001:db8::/32"])
    with pytest.raises(Error, match="is not an IP address"):
        nets.match(value)  # type: ignore[arg-type]
    with pytest.raises(Error, match="is not an IP address"):
        value in nets  # noqa: B015


# ---------------------------------------------------------------------------
# property tests against a naive reference written with ipaddress and plain loops


@dataclass(frozen=True)
class Entry:
    """A generated entry: its text and what the entry means."""

    text: str
    version: int
    address: int
    mask: int


def reference_ip(value: object) -> tuple[int, int]:
    ip = value if isinstance(value, V4 | V6) else ipaddress.ip_address(value)  # type: ignore[arg-type]
    if isinstance(ip, V6) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.version, int(ip)


def is_prefix_mask(mask: int, width: int) -> bool:
    return re.fullmatch("1*0*", format(mask, f"0{width}b")) is not None


def reference_match(entries: list[Entry], ip: object) -> int | None:
    """The position of the entry the IMS names for *ip*, by the documented rule."""
    version, value = reference_ip(ip)
    width = 32 if version == 4 else 128
    best: int | None = None
    best_length = -1
    first_other: int | None = None
    for position, entry in enumerate(entries):
        if entry.version != version or value & entry.mask != entry.address:
            continue
        if is_prefix_mask(entry.mask, width):
            length = bin(entry.mask).count("1")
            if length > best_length:
                best, best_length = position, length
        elif first_other is None:
            first_other = position
    return best if best is not None else first_other


# the ends of the address space are among the bases
V4_BASES = [
    ip4(text) for text in ("10.0.0.0", "10.0.1.0", "192.168.0.0", "0.0.0.0", "255.255.252.0")
]
V6_BASES = [int(V6(text)) for text in ("2001:db8::", "::", "fe80::", "ffff:ffff:ffff:ffff::fc00")]


@st.composite
def v4_values(draw: st.DrawFn) -> int:
    """Mostly addresses near a few bases, so that entries nest and touch."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.integers(0, FULL4))
    return draw(st.sampled_from(V4_BASES)) | draw(st.integers(0, 0x3FF))


@st.composite
def v6_values(draw: st.DrawFn) -> int:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.integers(0, FULL6))
    return draw(st.sampled_from(V6_BASES)) | draw(st.integers(0, 0x3FF))


def prefix_mask(length: int, width: int) -> int:
    full = (1 << width) - 1
    return full ^ (full >> length)


PREFIX_LENGTHS4 = st.one_of(st.integers(0, 32), st.sampled_from([8, 16, 22, 24, 30, 31, 32]))


@st.composite
def v4_entries(draw: st.DrawFn) -> Entry:
    address = draw(v4_values())
    kind = draw(st.sampled_from(["single", "cidr", "dotted", "mask", "hostbits", "mapped"]))
    if kind == "single":
        return Entry(str(V4(address)), 4, address, FULL4)
    if kind == "mask":  # any mask, usually not contiguous
        mask = draw(st.integers(0, FULL4))
        address &= mask
        return Entry(f"{V4(address)}/{V4(mask)}", 4, address, mask)
    length = draw(PREFIX_LENGTHS4)
    mask = prefix_mask(length, 32)
    if kind != "hostbits":
        address &= mask
    if kind == "mapped":
        return Entry(f"::ffff:{V4(address)}/{96 + length}", 4, address, mask)
    if kind == "dotted" or (kind == "hostbits" and draw(st.booleans())):
        return Entry(f"{V4(address)}/{V4(mask)}", 4, address, mask)
    return Entry(f"{V4(address)}/{length}", 4, address, mask)


@st.composite
def v6_entries(draw: st.DrawFn) -> Entry:
    address = draw(v6_values())
    length = draw(st.one_of(st.integers(0, 128), st.sampled_from([32, 48, 64, 120, 127, 128])))
    mask = prefix_mask(length, 128)
    if draw(st.integers(0, 4)):  # now and then leave host bits set
        address &= mask
    if address >> 32 == 0xFFFF and length >= 96:
        return Entry(f"{V6(address)}/{length}", 4, address & FULL4, mask & FULL4)
    if length == 128 and draw(st.booleans()):
        return Entry(str(V6(address)), 6, address, mask)
    return Entry(f"{V6(address)}/{length}", 6, address, mask)


ENTRIES = st.lists(st.one_of(v4_entries(), v4_entries(), v6_entries()), max_size=40)


@st.composite
def client_ips(draw: st.DrawFn, entries: list[Entry]) -> object:
    """A client address: inside an entry, at or next to its edges, or anywhere."""
    choice = draw(st.integers(0, 5))
    if entries and choice < 4:
        entry = draw(st.sampled_from(entries))
        full = FULL4 if entry.version == 4 else FULL6
        first = entry.address & entry.mask
        last = first | (full & ~entry.mask)
        value = draw(
            st.sampled_from([first, last, first - 1, last + 1])
            if choice < 2
            else st.just(first | (draw(st.integers(0, full)) & ~entry.mask))
        )
        value &= full
        version = entry.version
    elif choice == 4:
        value, version = draw(v4_values()), 4
    else:
        value, version = draw(v6_values()), 6
    if version == 4:
        form = draw(st.integers(0, 3))
        if form == 0:
            return V4(value)
        if form == 1:
            return f"::ffff:{V4(value)}"
        if form == 2:
            return V6((0xFFFF << 32) | value)
        return str(V4(value))
    return V6(value) if draw(st.booleans()) else str(V6(value))


@pytest.fixture(params=["search", "block table"])
def index_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run with the plain search and with the block table, whatever the set's size."""
    if request.param == "block table":
        monkeypatch.setattr(networks, "_BLOCK_TABLE_MIN", 0)
    else:
        monkeypatch.setattr(networks, "_BLOCK_TABLE_MIN", 10**9)
    return str(request.param)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), entries=ENTRIES)
def test_match_agrees_with_reference(
    index_kind: str, data: st.DataObject, entries: list[Entry]
) -> None:
    nets = NetworkSet([entry.text for entry in entries], key="allow")
    assert [(net.version, net.address, net.mask) for net in nets] == [
        (entry.version, entry.address, entry.mask) for entry in entries
    ]
    assert (nets._v4[3] is not None) == (index_kind == "block table")
    for ip in data.draw(st.lists(client_ips(entries), min_size=12, max_size=12)):
        expected = reference_match(entries, ip)
        found = nets.match(ip)  # type: ignore[arg-type]
        if expected is None:
            assert found is None, ip
        else:
            assert found is nets.entries[expected], ip
        assert (ip in nets) is (expected is not None), ip
        if found is not None:
            assert found.matches(ip)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [1, 2])
def test_large_random_sets_agree_with_reference(seed: int) -> None:
    rng = random.Random(seed)
    entries = []
    for _ in range(600):
        base = rng.choice([ip4("10.0.0.0"), ip4("10.1.0.0"), rng.getrandbits(32)])
        address = base | rng.getrandbits(16)
        if rng.random() < 0.05:
            mask = rng.getrandbits(32)  # non-contiguous, or now and then unmatchable
        else:
            mask = prefix_mask(rng.choice([32, 32, 24, 24, 16, 20, 28, 8]), 32)
            if rng.random() < 0.95:
                address &= mask
        text = (
            f"{V4(address)}/{V4(mask)}"
            if rng.random() < 0.5
            else f"{V4(address)}/{mask.bit_count()}"
        )
        if not is_prefix_mask(mask, 32):
            text = f"{V4(address)}/{V4(mask)}"
        entries.append(Entry(text, 4, address, mask))
    nets = NetworkSet(entry.text for entry in entries)
    assert nets._v4[3] is not None  # large enough for the block table
    clients = []
    for entry in rng.sample(entries, 300):
        first = entry.address & entry.mask
        last = first | (FULL4 & ~entry.mask)
        clients += [first, last, (first - 1) & FULL4, (last + 1) & FULL4]
        clients.append(first | (rng.getrandbits(32) & ~entry.mask & FULL4))
    clients += [rng.getrandbits(32) for _ in range(300)]
    for value in clients:
        ip = V4(value)
        expected = reference_match(entries, ip)
        found = nets.match(ip)
        assert found is (None if expected is None else nets.entries[expected]), ip
        assert (ip in nets) is (expected is not None), ip


# ---------------------------------------------------------------------------
# dotted_quad: the one reader of dotted quads


@given(st.integers(0, 2**32 - 1))
def test_dotted_quad_reads_every_address_as_written(value: int) -> None:
    text = str(ipaddress.IPv4Address(value))
    assert dotted_quad(text) == value
    assert ip_key(text) == (4, value)


@given(st.text(alphabet="0123456789.:abcdef %/-+\n\u0661\uff11", max_size=20))
def test_dotted_quad_takes_what_ipaddress_takes_and_nothing_else(text: str) -> None:
    try:
        expected: int | None = int(ipaddress.IPv4Address(text))
    except ValueError:
        expected = None
    assert dotted_quad(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "010.0.0.1",
        "1.2.3",
        "1.2.3.4.5",
        "256.0.0.1",
        " 1.2.3.4",
        "1.2.3.4 ",
        "1..3.4",
        "",
        "+1.2.3.4",
    ],
)
def test_dotted_quad_refuses_what_people_do_not_write(text: str) -> None:
    assert dotted_quad(text) is None


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("192.0.2.1", (4, 0xC0000201)),
        (" 192.0.2.1\n", (4, 0xC0000201)),
        ("::ffff:192.0.2.1", (4, 0xC0000201)),
        ("2001:db8::1", (6, 0x20010DB8000000000000000000000001)),
        (ipaddress.IPv4Address("192.0.2.1"), (4, 0xC0000201)),
        (ipaddress.IPv6Address("::ffff:192.0.2.1"), (4, 0xC0000201)),
    ],
)
def test_ip_key_is_the_address_for_matching(value: object, key: tuple[int, int]) -> None:
    assert ip_key(value) == key
    version, number = key
    assert NetworkSet(["192.0.2.0/24", "2001:db8::/32"]).lookup(version, number) is not None


def test_a_long_bad_address_is_shortened_in_the_message() -> None:
    with pytest.raises(imcea.Error) as caught:
        parse_ip("1" * 5000, key="sender_ip")
    assert len(str(caught.value)) < 160
    assert "(5000 characters)" in str(caught.value)
