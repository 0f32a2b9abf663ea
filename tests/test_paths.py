"""Tests of imcea.paths: one RFC 5321 recipient path parsed into a value."""

from __future__ import annotations

import ipaddress
import re
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from imcea.errors import Error
from imcea.paths import MAX_PATH_LENGTH, Malformed, Path, _parse, parse_path

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address


def ok(raw: str) -> Path:
    result = parse_path(raw)
    assert isinstance(result, Path), result
    assert result.raw == raw
    return result


def bad(raw: str) -> Malformed:
    result = parse_path(raw)
    assert isinstance(result, Malformed), result
    assert result.raw == raw
    return result


# ---------------------------------------------------------------------------
# well-formed paths: (raw, local, domain)

PLAIN = [
    ("user@example.com", "user", "example.com"),
    ("<user@example.com>", "user", "example.com"),
    ("John.Smith@Mail.Contoso.COM", "John.Smith", "mail.contoso.com"),
    ("<John.Smith@Mail.Contoso.COM>", "John.Smith", "mail.contoso.com"),
    ("user@example.com.", "user", "example.com"),
    ("<user@EXAMPLE.COM.>", "user", "example.com"),
    ("  <user@example.com>  ", "user", "example.com"),
    (" user@example.com ", "user", "example.com"),
    ("u@localhost", "u", "localhost"),
    ("first.last+tag@sub-domain.example.org", "first.last+tag", "sub-domain.example.org"),
    ("!#$%&'*+/=?^_`{|}~-@example.com", "!#$%&'*+/=?^_`{|}~-", "example.com"),
    ("user@123.example", "user", "123.example"),
    ("user@bücher.de", "user", "xn--bcher-kva.de"),
    ("user@xn--bcher-kva.de", "user", "xn--bcher-kva.de"),
    ("<user@BÜCHER.de.>", "user", "xn--bcher-kva.de"),
    ("user@XN--BCHER-KVA.DE", "user", "xn--bcher-kva.de"),
    ("用户@例子.广告", "用户", "xn--fsqu00a.xn--4rr70v"),
    ("jürgen@example.com", "jürgen", "example.com"),
    (
        "IMCEASMTP-user+40remote+2Ecom@ims.contoso.com",
        "IMCEASMTP-user+40remote+2Ecom",
        "ims.contoso.com",
    ),
    (
        "imceasmtp-user+40remote+2Ecom@ims.contoso.com",
        "imceasmtp-user+40remote+2Ecom",
        "ims.contoso.com",
    ),
    (
        "IMCEAEX-_O=ORG_OU=SITE_CN=RECIPIENTS_CN=JDOE@contoso.com",
        "IMCEAEX-_O=ORG_OU=SITE_CN=RECIPIENTS_CN=JDOE",
        "contoso.com",
    ),
    (".user@example.com", ".user", "example.com"),
    ("user.@example.com", "user.", "example.com"),
    ("a..b@example.com", "a..b", "example.com"),
]


@pytest.mark.parametrize(("raw", "local", "domain"), PLAIN)
def test_plain(raw: str, local: str, domain: str) -> None:
    assert ok(raw) == Path(raw, local, domain, None, (), False)


def test_idn_both_forms_give_the_same_domain() -> None:
    assert ok("user@bücher.de").domain == ok("user@xn--bcher-kva.de").domain


def test_domain_label_and_length_limits() -> None:
    label63 = "a" * 63
    assert ok(f"u@{label63}.example").domain == f"{label63}.example"
    assert "not a valid domain" in bad(f"u@{'a' * 64}.example").reason
    # 253 characters: the fast path; longer names are left to imcea.domains
    name253 = ".".join(["a" * 63] * 3 + ["b" * 61])
    assert len(name253) == 253
    assert ok(f"u@{name253}").domain == name253
    assert ok(f"u@{name253}.").domain == name253
    assert parse_path(f"u@{name253}c") == _parse(f"u@{name253}c")
    assert "not a valid domain" in bad(f"u@{name253}.c").reason


# ---------------------------------------------------------------------------
# address literals

LITERALS = [
    ("user@[192.0.2.10]", "[192.0.2.10]", V4("192.0.2.10")),
    ("<user@[127.0.0.1]>", "[127.0.0.1]", V4("127.0.0.1")),
    ("user@[0.0.0.0]", "[0.0.0.0]", V4("0.0.0.0")),
    ("user@[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]", V6("2001:db8::1")),
    ("user@[ipv6:2001:DB8:0:0:0:0:0:1]", "[IPv6:2001:db8::1]", V6("2001:db8::1")),
    ("user@[IPV6:::1]", "[IPv6:::1]", V6("::1")),
    ("user@[IPv6:2001:db8::192.0.2.1]", "[IPv6:2001:db8::c000:201]", V6("2001:db8::c000:201")),
    # an IPv4-mapped IPv6 literal stays an IPv6 literal, spelled the same on every Python
    ("user@[IPv6:::ffff:192.0.2.10]", "[IPv6:::ffff:c000:20a]", V6("::ffff:c000:20a")),
    ("user@[IPv6:0:0:0:0:0:FFFF:C000:020A]", "[IPv6:::ffff:c000:20a]", V6("::ffff:c000:20a")),
    ("user@[IPv6:::ffff:0.0.0.0]", "[IPv6:::ffff:0:0]", V6("::ffff:0:0")),
]


@pytest.mark.parametrize(("raw", "domain", "literal"), LITERALS)
def test_literal(raw: str, domain: str, literal: V4 | V6) -> None:
    path = ok(raw)
    assert path == Path(raw, "user", domain, literal, (), False)
    assert type(path.literal) is type(literal)


def test_mapped_literal_text_is_the_compressed_hex_form() -> None:
    # the same text as ipaddress writes for a plain (unmapped) IPv6 address
    path = ok("u@[IPv6:::ffff:1.2.3.4]")
    assert path.domain == "[IPv6:::ffff:102:304]"
    assert isinstance(path.literal, V6) and path.literal.ipv4_mapped == V4("1.2.3.4")


@settings(max_examples=50)
@given(st.ip_addresses(v=4))
def test_every_ipv4_literal(address: V4) -> None:
    path = ok(f"x@[{address}]")
    assert path.domain == f"[{address}]"
    assert path.literal == address


@settings(max_examples=50)
@given(st.ip_addresses(v=6), st.booleans(), st.sampled_from(["IPv6", "ipv6", "IPV6", "iPv6"]))
def test_every_ipv6_literal(address: V6, exploded: bool, tag: str) -> None:
    text = address.exploded.upper() if exploded else address.compressed
    path = ok(f"x@[{tag}:{text}]")
    assert path.literal == address
    assert isinstance(path.domain, str) and path.domain.startswith("[IPv6:")
    if address.ipv4_mapped is None:
        assert path.domain == f"[IPv6:{address.compressed}]"
    assert V6(path.domain[6:-1]) == address


BAD_LITERALS = [
    ("user@[garbage]", "'[garbage]'", 5),
    ("user@[192.0.2]", "'[192.0.2]'", 5),
    ("user@[192.0.2.256]", "'[192.0.2.256]'", 5),
    ("user@[192.0.2.010]", "'[192.0.2.010]'", 5),
    ("user@[ 192.0.2.1]", "'[ 192.0.2.1]'", 5),
    ("user@[]", "'[]'", 5),
    ("user@[IPv6:2001:db8::g]", "IPv6", 5),
    ("user@[IPv6:192.0.2.1]", "IPv6", 5),
    ("user@[IPv6:fe80::1%eth0]", "IPv6", 5),
    ("user@[IPv6:]", "IPv6", 5),
    ("user@[2001:db8::1]", "general tag", 5),
    ("user@[General-tag:anything]", "general tag", 5),
    ("user@[X400:c=us]", "general tag", 5),
]


@pytest.mark.parametrize(("raw", "what", "position"), BAD_LITERALS)
def test_bad_literal(raw: str, what: str, position: int) -> None:
    result = bad(raw)
    assert what in result.reason
    assert "address literal" in result.reason
    assert result.position == position


BAD_BRACKETS = [
    ("user@[192.0.2.1", "unbalanced '['", 5),
    ("user@192.0.2.1]", "unbalanced ']'", 14),
    ("user@[192.0.2.1]]", "unexpected ']'", 16),
    ("user@[192.0.2.1].com", "unexpected '.'", 16),
    ("user@[[192.0.2.1]", "unbalanced '['", 6),
    ("user@example.[com]", "unbalanced '['", 13),
    ("user[1]@example.com", "'['", 4),
]


@pytest.mark.parametrize(("raw", "what", "position"), BAD_BRACKETS)
def test_bad_brackets(raw: str, what: str, position: int) -> None:
    result = bad(raw)
    assert what in result.reason
    assert f"position {position}" in result.reason
    assert result.position == position


# ---------------------------------------------------------------------------
# source routes

ROUTES = [
    # RFC 5321 §4.1.2 and appendix C
    ("<@hosta.int,@jkl.org:userc@d.bar.org>", "userc", "d.bar.org", ("hosta.int", "jkl.org")),
    ("@hosta.int,@jkl.org:userc@d.bar.org", "userc", "d.bar.org", ("hosta.int", "jkl.org")),
    ("<@ONE.example.:user@two.example>", "user", "two.example", ("one.example",)),
    ("<@[192.0.2.10]:user@remote.example>", "user", "remote.example", ("[192.0.2.10]",)),
    (
        "<@[IPv6:2001:DB8::1],@b.example:u@c.example>",
        "u",
        "c.example",
        ("[IPv6:2001:db8::1]", "b.example"),
    ),
    ("<@bücher.de:u@c.example>", "u", "c.example", ("xn--bcher-kva.de",)),
    ("<@a.example:u@[192.0.2.1]>", "u", "[192.0.2.1]", ("a.example",)),
    ("<@a,@b,@c,@d:u@e>", "u", "e", ("a", "b", "c", "d")),
]


@pytest.mark.parametrize(("raw", "local", "domain", "route"), ROUTES)
def test_source_route(raw: str, local: str, domain: str, route: tuple[str, ...]) -> None:
    path = ok(raw)
    assert (path.local, path.domain, path.route, path.quoted) == (local, domain, route, False)
    assert path.address == f"{local}@{domain}"


def test_source_route_keeps_the_literal_of_the_mailbox() -> None:
    assert ok("<@a.example:u@[192.0.2.1]>").literal == V4("192.0.2.1")
    assert ok("<@[192.0.2.10]:u@b.example>").literal is None


def test_source_route_with_quoted_mailbox() -> None:
    path = ok('<@a.example:"x y"@b.example>')
    assert (path.local, path.domain, path.route, path.quoted) == (
        "x y",
        "b.example",
        ("a.example",),
        True,
    )


BAD_ROUTES = [
    ("<@a.example,@b.example>", "not ended by ':'", 1),
    ("@a,b:u@d", "expected '@' after the ','", 2),
    ("@a,:u@d", "expected '@' after the ','", 2),
    ("@:u@d", "empty domain in the source route", 1),
    ("@a,@:u@d", "empty domain in the source route", 4),
    ("@bad_host:u@d", "'bad_host' is not a valid domain", 1),
    ("@a b:u@d", "'a b' is not a valid domain", 1),
    ("@[192.0.2.1:u@d", "unbalanced '['", 1),
    ("@[192.0.2.1]x:u@d", "unexpected 'x'", 12),
    ("@[garbage]:u@d", "'[garbage]'", 1),
    ("@a.example:", "no mailbox after the source route", 11),
    ("@a:b:u@d", "':'", 4),
    ("@a:@b:u@d", "':'", 5),
]


@pytest.mark.parametrize(("raw", "what", "position"), BAD_ROUTES)
def test_bad_source_route(raw: str, what: str, position: int) -> None:
    result = bad(raw)
    assert what in result.reason
    assert result.position == position


# ---------------------------------------------------------------------------
# quoted local parts: (raw, local)

QUOTED = [
    ('"user"@example.com', "user"),
    ('"user@remote"@local.example', "user@remote"),
    ('"john smith"@example.com', "john smith"),
    ('"a\\"b"@example.com', 'a"b'),
    ('"a\\\\b"@example.com', "a\\b"),
    ('"\\a\\b\\c"@example.com', "abc"),
    ('"a@b@c"@example.com', "a@b@c"),
    ('"<a>"@example.com', "<a>"),
    ('"a,b;c:d(e)[f]"@example.com', "a,b;c:d(e)[f]"),
    ('a."b c"@example.com', "a.b c"),
    ('"a".b@example.com', "a.b"),
    ('a"b"c@example.com', "abc"),
    ('"a"."b"@example.com', "a.b"),
    ('"a"@"b"@example.com', "a@b"),
    ("user\\@remote@local.example", "user@remote"),
    ("a\\ b@example.com", "a b"),
    ('"müller"@example.com', "müller"),
    ('"\u00a0"@example.com', "\u00a0"),
]


@pytest.mark.parametrize(("raw", "local"), QUOTED)
def test_quoted(raw: str, local: str) -> None:
    path = ok(raw)
    assert path.local == local
    assert path.quoted is True
    assert path.route == ()
    assert path.literal is None


def test_brackets_must_be_the_outer_pair() -> None:
    # the closing '>' is not at the end: the brackets do not enclose the path
    result = bad('<"user@remote">@local.example')
    assert "unbalanced '<'" in result.reason


def test_quoted_domain_part_is_refused() -> None:
    # the last '@' outside quotes is the first one: the domain is a quoted string
    result = bad('a@"b@c"')
    assert "'\"b@c\"' is not a valid domain" in result.reason
    assert result.position == 2


# ---------------------------------------------------------------------------
# the address property

ADDRESSES = [
    ("<User@Example.COM.>", "User@example.com"),
    ('"user"@example.com', "user@example.com"),
    ('"user@remote"@local.example', '"user@remote"@local.example'),
    ("user@remote@local.example", '"user@remote"@local.example'),
    ('"john smith"@example.com', '"john smith"@example.com'),
    ('"a\\"b"@example.com', '"a\\"b"@example.com'),
    ('"a\\\\b"@example.com', '"a\\\\b"@example.com'),
    ('"\\a\\b\\c"@example.com', "abc@example.com"),
    ("a..b@example.com", '"a..b"@example.com'),
    (".a@example.com", '".a"@example.com'),
    ("user%remote@local.example", "user%remote@local.example"),
    ("<@a.example:u@b.example>", "u@b.example"),
    ("u@bücher.de", "u@xn--bcher-kva.de"),
    ("jürgen@example.com", "jürgen@example.com"),
    ('"a\u00a0b"@example.com', '"a\u00a0b"@example.com'),
    ("u@[IPv6:2001:DB8::1]", "u@[IPv6:2001:db8::1]"),
    ("<Postmaster>", "Postmaster"),
    ("POSTMASTER", "POSTMASTER"),
]


@pytest.mark.parametrize(("raw", "address"), ADDRESSES)
def test_address(raw: str, address: str) -> None:
    assert ok(raw).address == address


# ---------------------------------------------------------------------------
# Postmaster (RFC 5321 §4.5.1)


@pytest.mark.parametrize(
    "raw",
    [
        "Postmaster",
        "postmaster",
        "POSTMASTER",
        "PostMaster",
        "<Postmaster>",
        " <postmaster> ",
        " POSTMASTER",
    ],
)
def test_bare_postmaster(raw: str) -> None:
    path = ok(raw)
    assert path.domain is None
    assert path.literal is None
    assert path.local == raw.strip().strip("<>")
    assert path.is_postmaster
    assert path.address == path.local


@pytest.mark.parametrize(
    "raw", ["postmaster@example.com", "<Postmaster@[192.0.2.1]>", "user@example.com"]
)
def test_postmaster_with_a_domain_is_an_ordinary_path(raw: str) -> None:
    path = ok(raw)
    assert path.domain is not None
    assert not path.is_postmaster


@pytest.mark.parametrize(
    ("raw", "what"),
    [
        ('"Postmaster"', "no domain"),  # quoted: not the bare form
        ("<@a.example:Postmaster>", "no domain"),  # a route needs a mailbox
        ("Postmaster.", "no domain"),
        ("Postmasters", "no domain"),
        ("p\u0131stmaster", "no domain"),  # dotless i
        ("post master", "white space ' ' at position 4"),
    ],
)
def test_not_the_bare_postmaster(raw: str, what: str) -> None:
    assert what in bad(raw).reason


# ---------------------------------------------------------------------------
# malformed paths: (raw, what the reason must say, position)

MALFORMED = [
    ("", "empty path", None),
    ("   ", "empty path", None),
    ("<>", "null path", 0),
    (" <> ", "null path", 1),
    ("<", "unbalanced '<' at position 0", 0),
    ("<user@example.com", "unbalanced '<' at position 0", 0),
    ("  <user@example.com", "unbalanced '<' at position 2", 2),
    ("user@example.com>", "unbalanced '>' at position 16", 16),
    (">", "unbalanced '>' at position 0", 0),
    ("<<user@example.com>>", "'<' at position 1", 1),
    ("<user@example.com>>", "unbalanced '>' at position 17", 17),
    ("<user@exa<mple.com>", "unbalanced '<' at position 9", 9),
    ("<user>@example.com", "unbalanced '<'", 0),
    ('"user@example.com', "unbalanced quote at position 0", 0),
    ('user"@example.com', "unbalanced quote at position 4", 4),
    ('"user\\"@example.com', "unbalanced quote at position 0", 0),
    ('user@example.com"', "unbalanced quote at position 16", 16),
    ("user\\", "backslash at position 4", 4),
    ("user@example.com\\", "backslash at position 16", 16),
    ("us\x00er@example.com", "control character '\\x00' at position 2", 2),
    ("user@example.com\r\n", "control character '\\r' at position 16", 16),
    ("user\n@example.com", "control character '\\n' at position 4", 4),
    ('"a\tb"@example.com', "control character '\\t' at position 2", 2),
    ("user@exam\x7fple.com", "control character '\\x7f' at position 9", 9),
    ("\x1b[31muser@example.com", "control character '\\x1b' at position 0", 0),
    ("@example.com", "empty local part", 0),
    ("<@example.com>", "empty local part", 1),
    ('""@example.com', "empty local part", 0),
    ('<"">@example.com', "unbalanced '<'", 0),
    ("user@", "empty domain after the '@' at position 4", 4),
    ("user@example.com@", "empty domain after the '@' at position 16", 16),
    ("user", "no domain", None),
    ("<user>", "no domain", None),
    ('"user@example.com"', "no domain", None),
    ("user\\@example.com", "no domain", None),
    ("user@exa mple.com", "'exa mple.com' is not a valid domain", 5),
    ("< user@example.com>", "white space ' ' at position 1", 1),
    ("<user@example.com >", "'example.com ' is not a valid domain", 6),
    ("us er@example.com", "white space ' ' at position 2", 2),
    ("us\u00a0er@example.com", "white space '\\xa0' at position 2", 2),
    ("us\u3000er@example.com", "white space '\\u3000' at position 2", 2),
    ("user @example.com", "white space ' ' at position 4", 4),
    ("user(comment)@example.com", "'(' at position 4", 4),
    ("a,b@example.com", "',' at position 1", 1),
    ("a;b@example.com", "';' at position 1", 1),
    ("a:b@example.com", "':' at position 1", 1),
    ("user@-example.com", "'-example.com' is not a valid domain", 5),
    ("user@example-.com", "is not a valid domain", 5),
    ("user@exa_mple.com", "is not a valid domain", 5),
    ("user@example..com", "is not a valid domain", 5),
    ("user@.example.com", "is not a valid domain", 5),
    ("user@example.com..", "is not a valid domain", 5),
    ("user@*", "is not a valid domain", 5),
    ("user@\u00e9\u0301.\u2603\ufe0f", "is not a valid domain", 5),
]


@pytest.mark.parametrize(("raw", "what", "position"), MALFORMED)
def test_malformed(raw: str, what: str, position: int | None) -> None:
    result = bad(raw)
    assert what in result.reason, result.reason
    if position is not None:
        assert result.position == position
        if "position" in result.reason:
            assert f"position {position}" in result.reason


def test_trailing_blanks_are_not_part_of_the_path() -> None:
    assert ok("user@example.com ").domain == "example.com"


def test_length_is_checked_first() -> None:
    domain = "@example.com"
    fits = "a" * (MAX_PATH_LENGTH - len(domain)) + domain
    assert len(fits) == MAX_PATH_LENGTH
    assert ok(fits).domain == "example.com"
    too_long = "a" + fits
    result = bad(too_long)
    assert "longer than 1024 characters" in result.reason
    assert result.position == MAX_PATH_LENGTH
    # the length wins over every other fault
    assert "longer than" in bad("\x00" * 2000).reason
    assert "longer than" in bad(" " * 1025).reason


@pytest.mark.parametrize("value", [42, None, b"user@example.com", ["user@example.com"], 1.5])
def test_not_a_string_raises(value: object) -> None:
    with pytest.raises(Error, match=f"expected a string, got {type(value).__name__}"):
        parse_path(value)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# the relay tricks of the classic testers (nmap smtp-open-relay, the MAPS and
# abuse.net relay tests): remote.example is the victim, local.example the server
# under test, 192.0.2.10 its address.  (raw, local, domain, route)

TRICKS = [
    ("relaytest@remote.example", "relaytest", "remote.example", ()),
    ("<relaytest@remote.example>", "relaytest", "remote.example", ()),
    ("relaytest%remote.example@local.example", "relaytest%remote.example", "local.example", ()),
    ("relaytest%remote.example@[192.0.2.10]", "relaytest%remote.example", "[192.0.2.10]", ()),
    ('"relaytest@remote.example"@local.example', "relaytest@remote.example", "local.example", ()),
    ('"relaytest@remote.example"@[192.0.2.10]', "relaytest@remote.example", "[192.0.2.10]", ()),
    ('"relaytest%remote.example"@local.example', "relaytest%remote.example", "local.example", ()),
    ("relaytest@remote.example@local.example", "relaytest@remote.example", "local.example", ()),
    ("relaytest@remote.example@[192.0.2.10]", "relaytest@remote.example", "[192.0.2.10]", ()),
    ("remote.example!relaytest@local.example", "remote.example!relaytest", "local.example", ()),
    ("remote.example!relaytest@[192.0.2.10]", "remote.example!relaytest", "[192.0.2.10]", ()),
    ("@local.example:relaytest@remote.example", "relaytest", "remote.example", ("local.example",)),
    (
        "<@local.example:relaytest@remote.example>",
        "relaytest",
        "remote.example",
        ("local.example",),
    ),
    ("@[192.0.2.10]:relaytest@remote.example", "relaytest", "remote.example", ("[192.0.2.10]",)),
    ("relaytest@[192.0.2.10]", "relaytest", "[192.0.2.10]", ()),
    (
        "relaytest%remote.example%local.example@local.example",
        "relaytest%remote.example%local.example",
        "local.example",
        (),
    ),
    ("relaytest@remote.example.", "relaytest", "remote.example", ()),
    ("relaytest@REMOTE.EXAMPLE", "relaytest", "remote.example", ()),
    ("relaytest\\@remote.example@local.example", "relaytest@remote.example", "local.example", ()),
    ('"relaytest@remote.example@"@local.example', "relaytest@remote.example@", "local.example", ()),
    (
        "IMCEASMTP-relaytest+40remote+2Eexample@local.example",
        "IMCEASMTP-relaytest+40remote+2Eexample",
        "local.example",
        (),
    ),
    (
        "<IMCEASMTP-relaytest+40remote+2Eexample@[192.0.2.10]>",
        "IMCEASMTP-relaytest+40remote+2Eexample",
        "[192.0.2.10]",
        (),
    ),
]


@pytest.mark.parametrize(("raw", "local", "domain", "route"), TRICKS)
def test_relay_trick(raw: str, local: str, domain: str, route: tuple[str, ...]) -> None:
    path = ok(raw)
    assert (path.local, path.domain, path.route) == (local, domain, route)


@pytest.mark.parametrize(
    "raw",
    [
        '"relaytest@remote.example"',  # no domain outside the quotes
        '"relaytest%remote.example"',
        "remote.example!relaytest",  # a bang path with no domain
        "relaytest%remote.example",
        "<relaytest>",
    ],
)
def test_relay_trick_without_domain(raw: str) -> None:
    assert "no domain" in bad(raw).reason


# ---------------------------------------------------------------------------
# The address forms Postfix's trivial-rewrite documents (ADDRESS_REWRITING_README),
# with the values of OUR rules: the percent hack and bang paths are not rewritten,
# they stay in the local part.  (raw, local, domain)

POSTFIX = [
    ("user@domain.example", "user", "domain.example"),
    ("user%domain.example@localdomain.example", "user%domain.example", "localdomain.example"),
    ("domain.example!user@localdomain.example", "domain.example!user", "localdomain.example"),
    ("user@[192.0.2.1]", "user", "[192.0.2.1]"),
    ("user@domain.example.", "user", "domain.example"),
    ("@site.example,@site2.example:user@domain.example", "user", "domain.example"),
    ('"user@domain.example"@localdomain.example', "user@domain.example", "localdomain.example"),
]


@pytest.mark.parametrize(("raw", "local", "domain"), POSTFIX)
def test_postfix_address_forms(raw: str, local: str, domain: str) -> None:
    path = ok(raw)
    assert (path.local, path.domain) == (local, domain)


def test_postfix_unqualified_forms_have_no_domain() -> None:
    # Postfix appends $myorigin or swaps the bang path; the IMS path has no domain
    assert "no domain" in bad("domain.example!user").reason
    assert "no domain" in bad("user%domain.example").reason
    assert "no domain" in bad("user").reason


# ---------------------------------------------------------------------------
# the fast path gives what the general parser gives

_ATEXT = "abcxyzABCXYZ0189!#$%&'*+/=?^_`{|}~-"
_atoms = st.text(alphabet=_ATEXT, min_size=1, max_size=8)
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_labels = st.one_of(
    st.text(_ALNUM, min_size=1, max_size=10),
    st.tuples(st.text(_ALNUM, min_size=1, max_size=4), st.text(_ALNUM, min_size=1, max_size=4)).map(
        "-".join
    ),
)


@settings(max_examples=60)
@given(
    st.lists(_atoms, min_size=1, max_size=4).map(".".join),
    st.lists(_labels, min_size=1, max_size=4).map(".".join),
    st.booleans(),
    st.booleans(),
)
def test_fast_path_agrees_with_the_general_parser(
    local: str, domain: str, brackets: bool, dot: bool
) -> None:
    raw = f"{local}@{domain}{'.' if dot else ''}"
    if brackets:
        raw = f"<{raw}>"
    fast = parse_path(raw)
    assert fast == _parse(raw)
    assert fast == Path(raw, local, domain.lower())


# ---------------------------------------------------------------------------
# robustness: never raises, linear time

VOCABULARY = [
    "@",
    ",",
    ":",
    "%",
    "!",
    '"',
    "\\",
    "<",
    ">",
    "[",
    "]",
    ".",
    " ",
    "IMCEA",
    "IMCEASMTP-",
    "IPv6:",
    "127.0.0.1",
    "postmaster",
    "Postmaster",
    "user",
    "example.com",
    "bücher",
    "xn--",
    "-",
    "+40",
    "::1",
    "\x00",
    "\t",
    "\u00a0",
    "é",
    "中",
]

_vocabulary_text = st.lists(
    st.one_of(st.sampled_from(VOCABULARY), st.characters()), max_size=40
).map("".join)


def check_result(raw: str, result: Path | Malformed) -> None:
    assert result.raw == raw
    if isinstance(result, Malformed):
        assert result.reason
        if result.position is not None:
            assert 0 <= result.position <= len(raw)
            if "at position" in result.reason and len(raw) <= MAX_PATH_LENGTH:
                assert f"at position {result.position}" in result.reason
        return
    assert result.local
    assert not re.search(r"[\x00-\x1f\x7f]", result.local)
    if result.domain is None:
        assert result.is_postmaster
        assert result.literal is None and result.route == ()
    elif result.domain.startswith("["):
        assert result.literal is not None
    else:
        assert result.literal is None
        assert result.domain == result.domain.lower()
        assert result.domain.isascii()
        assert not result.domain.endswith(".")


@settings(max_examples=200)
@given(st.text(max_size=60))
def test_arbitrary_text_never_raises(raw: str) -> None:
    check_result(raw, parse_path(raw))


@settings(max_examples=250)
@given(_vocabulary_text)
@example('"a"@"b"@[IPv6:::1]')
@example("@[IPv6:::1],@a:<b>@c")
@example("\\\\@postmaster")
def test_vocabulary_never_raises(raw: str) -> None:
    check_result(raw, parse_path(raw))


_domains = st.one_of(
    st.lists(_labels, min_size=1, max_size=3).map(".".join),
    st.sampled_from(["bücher.de", "Example.COM.", "例子.广告"]),
    st.ip_addresses(v=4).map(lambda a: f"[{a}]"),
    st.ip_addresses(v=6).map(lambda a: f"[IPv6:{a}]"),
)

# local parts that are often valid, often quoted, and full of tricks
_locals = st.lists(
    st.one_of(
        st.sampled_from(['"', "\\", ".", "@", "%", "!", " ", "user", "IMCEA", "é", '\\"', '"a b"']),
        st.characters(min_codepoint=0x20, exclude_characters="\x7f"),
    ),
    min_size=1,
    max_size=12,
).map("".join)


@settings(max_examples=150)
@given(_locals, _domains, st.sampled_from(["{}", "<{}>", "<@relay.example:{}>"]))
@example('"a b"', "example.com", "{}")
@example('"\\\\\\""', "x", "{}")
@example("a..b", "c", "{}")
@example("b", "[IPv6:::ffff:1.2.3.4]", "<@a:{}>")
def test_address_reparses_to_the_same_path(local: str, domain: str, form: str) -> None:
    raw = form.format(f"{local}@{domain}")
    first = parse_path(raw)
    check_result(raw, first)
    if not isinstance(first, Path):
        return
    again = parse_path(first.address)
    assert isinstance(again, Path), (first, again)
    assert (again.local, again.domain, again.literal) == (first.local, first.domain, first.literal)
    assert again.route == ()


@st.composite
def _quoted_paths(draw: st.DrawFn) -> str:
    """Paths with any printable local part, quoted."""
    local = draw(
        st.text(
            st.characters(min_codepoint=0x20, exclude_characters="\x7f"), min_size=1, max_size=20
        )
    )
    quoted = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{quoted}@{draw(_domains)}"


@settings(max_examples=60)
@given(_quoted_paths())
def test_any_quoted_local_part_parses(raw: str) -> None:
    path = ok(raw)
    assert path.quoted
    again = parse_path(path.address)
    assert isinstance(again, Path) and again.local == path.local


HOSTILE = [
    "@" * 10**6,
    '"' * 10**6,
    "<" * 10**6,
    ">" * 10**6,
    "a" * 10**6,
    "\\" * 10**6,
    "[" * 10**6,
    "@a," * 300_000,
    "a@" * 500_000,
    '"a' * 500_000,
    "<" * 500_000 + ">" * 500_000,
    "a." * 500_000 + "@example.com",
    "user@" + "a." * 500_000 + "com",
    "\x00" * 10**6,
    " " * 10**6,
]


@pytest.mark.parametrize("raw", HOSTILE, ids=lambda s: repr(s[:6]))
def test_one_megabyte_hostile_string(raw: str) -> None:
    started = time.perf_counter()
    result = parse_path(raw)
    elapsed = time.perf_counter() - started
    assert isinstance(result, Malformed)
    assert "longer than" in result.reason
    assert elapsed < 2.0


NEAR_LIMIT = [
    '"' * 1024,
    '"' * 1023 + "a",
    "\\" * 1024,
    "@" * 1024,
    "@a," * 341,
    "@a," * 340 + "@a:",
    "@[" * 512,
    "@[1]" * 256,
    "a@" * 512,
    '"\\' * 512,
    "<" + "a" * 1021 + "@",
    "a" * 1019 + "@b.c-",
    "a@" + "a" * 63 + "." + "b-" * 478,
    "a@" + "a-" * 511,
    "a@[" + "1." * 510 + "]",
    "a@[IPv6:" + ":" * 1015 + "]",
    "a." * 511 + "@",
    " " * 512 + "a" * 512,
]


def test_hostile_strings_just_under_the_limit_are_linear() -> None:
    for raw in NEAR_LIMIT:
        assert len(raw) <= MAX_PATH_LENGTH
    started = time.perf_counter()
    for _ in range(20):
        for raw in NEAR_LIMIT:
            check_result(raw, parse_path(raw))
    # 360 parses of 1 KB strings; a quadratic step would take seconds
    assert time.perf_counter() - started < 2.0
