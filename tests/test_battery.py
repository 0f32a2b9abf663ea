"""Tests of the relay-test battery against the published forms of each tester."""

from __future__ import annotations

import re
import string
import tomllib
from importlib import resources
from pathlib import Path

import pytest

import imcea
from imcea.battery import (
    ABUSE_NET,
    BATTERY,
    ENCAPSULATED,
    FORMS,
    LAYERS,
    MAPS,
    NMAP,
    ROUTES,
    BatteryError,
    Mangle,
    Trick,
    load_battery,
    mangle,
    tricks,
)

DATA = resources.files("imcea").joinpath("battery.toml")


def _pairs(group: tuple[Trick, ...], **values: str) -> list[tuple[str, str]]:
    return [trick.render(**values) for trick in group]


# ---------------------------------------------------------------------------
# sizes, names, order


def test_group_sizes() -> None:
    assert len(NMAP) == 16  # "Server is an open relay (16/16 tests)"
    assert len(MAPS) == 17  # from_l[0] .. from_l[16] in smtp_relay2.nasl
    assert len(ABUSE_NET) == 17  # "Relay test 1" .. "Relay test 17"
    assert len(BATTERY) == len(NMAP) + len(MAPS) + len(ABUSE_NET) + len(ENCAPSULATED)


def test_order_is_nmap_maps_abuse_net_encapsulation() -> None:
    assert BATTERY == NMAP + MAPS + ABUSE_NET + ENCAPSULATED
    assert [t.name for t, _, _ in tricks()] == [t.name for t in BATTERY]


def test_names_are_unique_and_stable_identifiers() -> None:
    names = [trick.name for trick in BATTERY]
    assert len(set(names)) == len(names)
    for name in names:
        assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", name), name


def test_every_trick_has_source_and_one_sentence_description() -> None:
    for trick in BATTERY:
        assert trick.source.strip()
        assert trick.description.endswith("."), trick.name
        assert "\n" not in trick.description


def test_sources_number_the_original_tests() -> None:
    assert [t.source for t in NMAP] == [f"nmap smtp-open-relay #{i}" for i in range(1, 17)]
    assert [t.source for t in MAPS] == [f"smtp_relay2.nasl #{i}" for i in range(1, 18)]
    assert [t.source for t in ABUSE_NET] == [f"abuse.net relay test #{i}" for i in range(1, 18)]


# ---------------------------------------------------------------------------
# every trick renders; the classic ones target the remote domain


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"user": "nobody", "remote": "example.com", "local": "mx.contoso.com"},
        {"server_ip": "2001:db8::25"},
        {"remote": "xn--bcher-kva.example", "local": "ims.contoso.com", "server_ip": "10.0.0.1"},
    ],
)
def test_every_trick_renders(values: dict[str, str]) -> None:
    rendered = tricks(**values)
    assert len(rendered) == len(BATTERY)
    for trick, sender, recipient in rendered:
        assert isinstance(sender, str)
        assert recipient.startswith("<") and recipient.endswith(">"), trick.name
        assert sender.startswith("<") and sender.endswith(">"), trick.name
        assert "{" not in sender + recipient and "}" not in sender + recipient


def test_classic_recipients_mention_the_remote_domain() -> None:
    remote = "relay-target.example"
    for trick, _, recipient in tricks(remote=remote):
        if trick in ENCAPSULATED:
            continue
        assert remote in recipient, trick.name


def test_ipv6_server_address_is_written_as_an_rfc5321_literal() -> None:
    sender, recipient = NMAP[4].render(
        user="u", remote="r.example", local="l.example", server_ip="2001:DB8::0:25"
    )
    assert sender == "<antispam@[IPv6:2001:db8::25]>"
    assert recipient == "<u%r.example@[IPv6:2001:db8::25]>"


@pytest.mark.parametrize("bad", ["", "mail.example", "192.0.2.300", "[192.0.2.1]"])
def test_bad_server_ip_is_an_imcea_error(bad: str) -> None:
    with pytest.raises(imcea.Error):
        tricks(server_ip=bad)


# ---------------------------------------------------------------------------
# nmap scripts/smtp-open-relay.nse: the script's 16 tests, as its output prints them
# with domain nmap.scanme.org, the server name from the banner and the target address.

NMAP_OUTPUT = """\
MAIL FROM:<> -> RCPT TO:<relaytest@nmap.scanme.org>
MAIL FROM:<antispam@nmap.scanme.org> -> RCPT TO:<relaytest@nmap.scanme.org>
MAIL FROM:<antispam@sysmailsrv.example.com> -> RCPT TO:<relaytest@nmap.scanme.org>
MAIL FROM:<antispam@[10.10.8.136]> -> RCPT TO:<relaytest@nmap.scanme.org>
MAIL FROM:<antispam@[10.10.8.136]> -> RCPT TO:<relaytest%nmap.scanme.org@[10.10.8.136]>
MAIL FROM:<antispam@[10.10.8.136]> -> RCPT TO:<relaytest%nmap.scanme.org@sysmailsrv.example.com>
MAIL FROM:<antispam@[10.10.8.136]> -> RCPT TO:<"relaytest@nmap.scanme.org">
MAIL FROM:<antispam@[10.10.8.136]> -> RCPT TO:<"relaytest%nmap.scanme.org">
MAIL FROM:<antispam@[10.10.8.136]> -> RCPT TO:<relaytest@nmap.scanme.org@[10.10.8.136]>
MAIL FROM:<antispam@[10.10.8.136]> -> RCPT TO:<"relaytest@nmap.scanme.org"@[10.10.8.136]>
MAIL FROM:<antispam@[10.10.8.136]> -> RCPT TO:<relaytest@nmap.scanme.org@sysmailsrv.example.com>
MAIL FROM:<antispam@[10.10.8.136]> -> RCPT TO:<@[10.10.8.136]:relaytest@nmap.scanme.org>
MAIL FROM:<antispam@[10.10.8.136]> -> RCPT TO:<@sysmailsrv.example.com:relaytest@nmap.scanme.org>
MAIL FROM:<antispam@[10.10.8.136]> -> RCPT TO:<nmap.scanme.org!relaytest>
MAIL FROM:<antispam@[10.10.8.136]> -> RCPT TO:<nmap.scanme.org!relaytest@[10.10.8.136]>
MAIL FROM:<antispam@[10.10.8.136]> -> RCPT TO:<nmap.scanme.org!relaytest@sysmailsrv.example.com>
"""

NMAP_VALUES = {
    "user": "relaytest",
    "remote": "nmap.scanme.org",
    "local": "sysmailsrv.example.com",
    "server_ip": "10.10.8.136",
}


def test_nmap_tests_match_the_script() -> None:
    lines = [
        f"MAIL FROM:{sender} -> RCPT TO:{recipient}"
        for sender, recipient in _pairs(NMAP, **NMAP_VALUES)
    ]
    assert lines == NMAP_OUTPUT.splitlines()


# ---------------------------------------------------------------------------
# smtp_relay2.nasl: from_l[i] / to_l[i], sent as "MAIL FROM: <...>" / "RCPT TO: <...>",
# with the plugin's default third-party domain example.com and recipient "nobody".

NASL_VALUES = {
    "user": "nobody",
    "remote": "example.com",
    "local": "smtp.target.example",
    "server_ip": "198.51.100.25",
}

NASL_PAIRS = [
    ("<nobody@example.com>", "<nobody@example.com>"),
    (None, "<nobody@example.com>"),  # nessus@<rand_str()>.example.com
    ("<nessus@localhost>", "<nobody@example.com>"),
    ("<nessus>", "<nobody@example.com>"),
    ("<>", "<nobody@example.com>"),
    ("<>", "<nobody@example.com>"),
    ("<nessus@smtp.target.example>", "<nobody@example.com>"),
    ("<nessus@[198.51.100.25]>", "<nobody@example.com>"),
    ("<nessus@smtp.target.example>", "<nobody%example.com@smtp.target.example>"),
    ("<nessus@smtp.target.example>", "<nobody%example.com@[198.51.100.25]>"),
    ("<nessus@smtp.target.example>", "<nobody@example.com@smtp.target.example>"),
    ("<nessus@smtp.target.example>", '<"nobody@example.com"@[198.51.100.25]>'),
    ("<nessus@smtp.target.example>", "<nobody@example.com@[198.51.100.25]>"),
    ("<nessus@[198.51.100.25]>", "<@smtp.target.example:nobody@example.com>"),
    ("<nessus@smtp.target.example>", "<@[198.51.100.25]:nobody@example.com>"),
    ("<nessus@smtp.target.example>", "<example.com!nobody@[198.51.100.25]>"),
    ("<postmaster@smtp.target.example>", "<nobody@example.com>"),
]


def test_maps_tests_match_smtp_relay2_nasl() -> None:
    rendered = _pairs(MAPS, **NASL_VALUES)
    assert len(rendered) == len(NASL_PAIRS)
    for (sender, recipient), (want_sender, want_recipient) in zip(
        rendered, NASL_PAIRS, strict=True
    ):
        assert recipient == want_recipient
        if want_sender is None:
            assert re.fullmatch(r"<nessus@[A-Za-z0-9-]+\.example\.com>", sender)
        else:
            assert sender == want_sender


def test_maps_test_6_repeats_test_5_as_in_the_plugin() -> None:
    assert _pairs(MAPS[4:6], **NASL_VALUES) == [("<>", "<nobody@example.com>")] * 2


# ---------------------------------------------------------------------------
# abuse.net relay tester


def test_abuse_net_published_transcript() -> None:
    # A published run against a Sendmail host: tests 1, 2 and 17 (the IP masked there;
    # any address stands in for it).
    values = {"user": "relaytest", "remote": "abuse.net", "local": "nonki.com"}
    first = ABUSE_NET[0].render(server_ip="211.0.30.1", **values)
    assert first == ("<spamtest@abuse.net>", "<relaytest@abuse.net>")
    assert ABUSE_NET[1].render(server_ip="211.0.30.1", **values)[0] == "<spamtest>"
    last = ABUSE_NET[16].render(server_ip="211.0.30.1", **values)
    assert last == ("<spamtest@[211.0.30.1]>", "<abuse.net!relaytest@nonki.com>")


def test_abuse_net_sender_tests_as_in_kb_q304897() -> None:
    # KB Q304897, relay tests 1-5: remote contoso.net, local northwindtraders.com.
    values = {
        "user": "relaytest",
        "remote": "contoso.net",
        "local": "northwindtraders.com",
        "server_ip": "10.10.10.10",
    }
    assert _pairs(ABUSE_NET[:5], **values) == [
        ("<spamtest@contoso.net>", "<relaytest@contoso.net>"),
        ("<spamtest>", "<relaytest@contoso.net>"),
        ("<>", "<relaytest@contoso.net>"),
        ("<spamtest@northwindtraders.com>", "<relaytest@contoso.net>"),
        ("<spamtest@[10.10.10.10]>", "<relaytest@contoso.net>"),
    ]


def test_abuse_net_recipient_tests_are_the_twelve_nmap_recipient_forms() -> None:
    # Tests 6-17 send from the server's literal and try the same twelve recipient forms
    # as nmap's tests 5-16 (nmap's first version used the tester's spamtest/relaytest).
    abuse = _pairs(ABUSE_NET[5:], **NMAP_VALUES)
    assert {sender for sender, _ in abuse} == {"<spamtest@[10.10.8.136]>"}
    nmap_recipients = [line.split(" -> RCPT TO:")[1] for line in NMAP_OUTPUT.splitlines()[4:]]
    assert [recipient for _, recipient in abuse] == nmap_recipients


# ---------------------------------------------------------------------------
# encapsulated tricks


BROKEN = {"imcea-smtp-bad-escape"}


def _unwrap(address: str) -> tuple[list[str], str]:
    """Decode repeatedly; return the types from the outside in and the innermost address."""
    types = []
    value = imcea.decode(address)
    types.append(value.addrtype)
    inner = value.address
    while inner[:5].upper() == "IMCEA":
        value = imcea.decode(inner)
        types.append(value.addrtype)
        inner = value.address
    return types, inner


def test_encapsulated_tricks_decode_to_the_remote_address() -> None:
    remote = "relay-target.example"
    seen = 0
    for trick, _, recipient in tricks(remote=remote):
        if trick not in ENCAPSULATED or trick.name in BROKEN:
            continue
        seen += 1
        _, inner = _unwrap(recipient)
        assert remote in inner, trick.name
    assert seen == len(ENCAPSULATED) - len(BROKEN)


def test_broken_tricks_do_not_decode() -> None:
    broken = [t for t in ENCAPSULATED if t.name in BROKEN]
    assert broken
    for trick in broken:
        _, recipient = trick.render(
            user="relaytest",
            remote="relay-target.example",
            local="mail.example",
            server_ip="192.0.2.10",
        )
        with pytest.raises(imcea.DecodeError):
            imcea.decode(recipient)


def _by_name(name: str) -> Trick:
    (trick,) = [t for t in BATTERY if t.name == name]
    return trick


DEFAULTS = {
    "user": "relaytest",
    "remote": "relay-target.example",
    "local": "mail.example",
    "server_ip": "192.0.2.10",
}


def test_q237927_one_off() -> None:
    # The shape of KB Q237927 / MS-OXCMAIL: IMCEASMTP-user+40domain+2Etld@ims-domain
    _, recipient = _by_name("imcea-smtp").render(**DEFAULTS)
    assert recipient == "<IMCEASMTP-relaytest+40relay-target+2Eexample@mail.example>"


def test_lower_case_prefix_q271575() -> None:
    _, recipient = _by_name("imcea-smtp-lower-prefix").render(**DEFAULTS)
    assert recipient == "<imceasmtp-relaytest+40relay-target+2Eexample@mail.example>"
    assert imcea.decode(recipient).addrtype == "SMTP"


def test_lower_case_hex_as_in_kb_q189492() -> None:
    # KB Q189492's title: IMCEASMTP-swadmin+40corporate+2ecom@*
    trick = _by_name("imcea-smtp-lower-hex")
    assert trick.mangle is Mangle.LOWER_HEX
    _, recipient = trick.render(
        user="swadmin", remote="corporate.com", local="ims.contoso.com", server_ip="192.0.2.10"
    )
    assert recipient == "<IMCEASMTP-swadmin+40corporate+2ecom@ims.contoso.com>"
    assert imcea.decode(recipient).address == "swadmin@corporate.com"


def test_mailto_ex_invalid_types() -> None:
    expected = {
        "imcea-mailto": "MAILTO",
        "imcea-ex-smtp-payload": "EX",
        "imcea-invalid": "INVALID",
    }
    for name, addrtype in expected.items():
        _, recipient = _by_name(name).render(**DEFAULTS)
        value = imcea.decode(recipient)
        assert value.addrtype == addrtype
        assert value.address == "relaytest@relay-target.example"
        assert value.domain == "mail.example"


@pytest.mark.parametrize(
    ("name", "depth"),
    [("imcea-smtp-nested-2", 2), ("imcea-smtp-nested-3", 3), ("imcea-smtp-nested-4", 4)],
)
def test_nesting_depth(name: str, depth: int) -> None:
    _, recipient = _by_name(name).render(**DEFAULTS)
    assert recipient.startswith("<" + "IMCEASMTP-" * depth + "relaytest+")
    types, inner = _unwrap(recipient)
    assert types == ["SMTP"] * depth
    assert inner == "relaytest@relay-target.example"


def test_encapsulated_percent_hack_and_literal() -> None:
    _, recipient = _by_name("imcea-smtp-percent-hack").render(**DEFAULTS)
    assert imcea.decode(recipient).address == "relaytest%relay-target.example@mail.example"
    _, recipient = _by_name("imcea-smtp-literal").render(**DEFAULTS)
    value = imcea.decode(recipient)
    assert value.domain == "[192.0.2.10]"
    assert value.address == "relaytest@relay-target.example"


def test_bad_escape_is_salvaged_only_by_the_lenient_reader() -> None:
    _, recipient = _by_name("imcea-smtp-bad-escape").render(**DEFAULTS)
    assert "+4O" in recipient
    assert imcea.decode(recipient, strict=False).addrtype == "SMTP"


# ---------------------------------------------------------------------------
# the data file: shipped in the package, read once, checked


def test_the_battery_is_the_package_data_file() -> None:
    battery = load_battery()
    assert battery.source.endswith("battery.toml")
    assert battery.tricks == BATTERY
    assert (battery.forms, battery.routes, battery.layers) == (FORMS, ROUTES, LAYERS)
    assert list(battery.groups) == ["nmap", "maps", "abuse-net", "encapsulated"]
    raw = tomllib.loads(DATA.read_text(encoding="utf-8"))
    assert sum(len(group["trick"]) for group in raw["group"]) == len(BATTERY) == 62
    assert [t["name"] for g in raw["group"] for t in g["trick"]] == [t.name for t in BATTERY]


def test_every_recipient_is_written_with_the_vocabulary() -> None:
    """A classic trick's recipient is <form> or <route:form>; an encapsulated one's inner
    address is a form and its layers are layers of the vocabulary."""
    paths = set(FORMS.values())
    routed = {f"{route}:{form}" for route in ROUTES.values() for form in paths}
    for trick in BATTERY:
        if trick.layers:
            assert trick.recipient == "<{imcea}>"
            assert trick.inner in paths
            assert set(trick.layers) <= set(LAYERS.values())
        else:
            assert trick.recipient[1:-1] in paths | routed, trick.name
            assert not trick.inner and trick.mangle is None


def test_templates_use_only_the_documented_placeholders() -> None:
    def fields(template: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}

    for template in FORMS.values():
        assert fields(template) <= {"user", "remote", "local", "ip", "other"}
    for trick in BATTERY:
        assert fields(trick.sender) <= {"user", "remote", "local", "ip"}
        assert "{other}" not in trick.recipient + trick.inner


@pytest.mark.parametrize(
    ("how", "address", "expected"),
    [
        (Mangle.LOWER_PREFIX, "IMCEASMTP-a+40b+2Ec@x.example", "imceasmtp-a+40b+2Ec@x.example"),
        (Mangle.MIXED_PREFIX, "IMCEASMTP-a+40b@x.example", "ImCeAsMtP-a+40b@x.example"),
        (Mangle.LOWER_HEX, "IMCEASMTP-a+40b+2Ec@X+2E.example", "IMCEASMTP-a+40b+2ec@X+2E.example"),
        (Mangle.BAD_ESCAPE, "IMCEASMTP-a+40b+40c@x.example", "IMCEASMTP-a+4Ob+40c@x.example"),
        (Mangle.BAD_ESCAPE, "IMCEASMTP-a+2Eb@x.example", "IMCEASMTP-a+2Eb@x.example"),
        (Mangle.UPPER_DOMAIN, "a@mail.example", "a@MAIL.EXAMPLE"),
        (Mangle.UPPER_DOMAIN, "a@[IPv6:2001:db8::1]", "a@[IPv6:2001:db8::1]"),
        (Mangle.TRAILING_DOT, "a@b@mail.example", "a@b@mail.example."),
        (Mangle.TRAILING_DOT, "a@[192.0.2.1]", "a@[192.0.2.1]"),
        (Mangle.TRAILING_DOT, "postmaster", "postmaster"),
        (Mangle.LOWER_PREFIX, "user@x.example", "user@x.example"),
    ],
)
def test_mangles(how: Mangle, address: str, expected: str) -> None:
    assert mangle(address, how) == expected


# A broken copy of the data file: each change is refused with the entry and the key named.
BROKEN_COPIES = [
    (
        'recipient = "percent-hack-literal"',
        'recipient = "percent-hak"',
        "group 1 'nmap': trick 5 'nmap-05-percent-hack-literal': recipient: "
        "'percent-hak' is not a form (did you mean 'percent-hack'?)",
    ),
    (
        'plain = "{user}@{remote}"',
        'plain = "{user}@{remot}"',
        "forms: plain: '{user}@{remot}': {remot} is not a placeholder here "
        "(expected {user}, {remote}, {local}, {ip}, {other})",
    ),
    (
        'plain = "{user}@{remote}"',
        'plain = "{user@{remote}"',
        "forms: plain: '{user@{remote}' is not a template: ",
    ),
    (
        'ex = { type = "EX" }',
        'ex = { type = "E X" }',
        "layers: ex: type: 'E X' is not 1-9 ASCII letters or digits",
    ),
    ('ex = { type = "EX" }', 'ex = { kind = "EX" }', "layers: ex: kind: unknown key"),
    ('ex = { type = "EX" }', 'ex = "EX"', "layers: ex: expected a table, got 'EX'"),
    (
        'mangle = "bad_escape"',
        'mangle = "bad_escapes"',
        "group 4 'encapsulated': trick 12 'imcea-smtp-bad-escape': mangle: "
        "'bad_escapes' is not one of lower_prefix, lower_hex, bad_escape, ",
    ),
    (
        'layers = ["smtp", "smtp"]',
        'layers = ["smtp", "smpt"]',
        "group 4 'encapsulated': trick 5 'imcea-smtp-nested-2': layers: "
        "'smpt' is not a layer (did you mean 'smtp'?)",
    ),
    (
        'layers = ["ex"]',
        "layers = []",
        "trick 10 'imcea-ex-smtp-payload': layers: expected a non-empty list of layer names",
    ),
    (
        'name = "maps-06-null-sender-again"',
        'name = "maps-05-null-sender"',
        "group 2 'maps': trick 6 'maps-05-null-sender': name: "
        "'maps-05-null-sender' is already a trick of group 'maps'",
    ),
    (
        'name = "maps-06-null-sender-again"',
        'name = "Maps 6"',
        "group 2 'maps': trick 6 'Maps 6': name: 'Maps 6' is not lower-case words joined by '-'",
    ),
    (
        'route = "host"',
        'rout = "host"',
        "group 1 'nmap': trick 13 'nmap-13-source-route-host': rout: unknown key",
    ),
    (
        'route = "literal"',
        'route = "literl"',
        "group 1 'nmap': trick 12 'nmap-12-source-route-literal': route: "
        "'literl' is not a route (did you mean 'literal'?)",
    ),
    (
        'recipient = "bang-path-bare"',
        'recipient = "other-literal"',
        "group 1 'nmap': trick 14 'nmap-14-bang-path': recipient: "
        "form 'other-literal' uses {other}, which a trick cannot fill",
    ),
    (
        'sender = "<antispam@{remote}>"',
        'sender = "<antispam@{imcea}>"',
        "group 1 'nmap': trick 2 'nmap-02-remote-sender': sender: "
        "'<antispam@{imcea}>': {imcea} is not a placeholder here",
    ),
    (
        'description = "UUCP bang path to the remote host with no domain."\n',
        "",
        "group 1 'nmap': trick 14 'nmap-14-bang-path': description: missing",
    ),
    ('id = "maps"', 'id = "nmap"', "group 2 'nmap': id: 'nmap' is already the id of a group"),
    (
        'source = "nmap smtp-open-relay #{number}"',
        'source = "nmap smtp-open-relay #{n}"',
        "group 1 'nmap': source: 'nmap smtp-open-relay #{n}': {n} is not a placeholder here",
    ),
    (
        'source = "nmap smtp-open-relay #{number}"\n',
        "",
        "group 1 'nmap': trick 1 'nmap-01-null-sender': source: "
        "missing (and the group gives no default)",
    ),
    (
        'layers = ["invalid"]',
        'layers = ["invalid"]\nrecipient = "plain"',
        "trick 11 'imcea-invalid': recipient: an encapsulated trick's recipient is <{imcea}>",
    ),
    (
        'name = "nmap-07-quoted-address"',
        'name = "nmap-07-quoted-address"\nmangle = "lower_hex"',
        "trick 7 'nmap-07-quoted-address': mangle: only an encapsulated trick",
    ),
    (
        "\n[routes]\n",
        "\n[routs]\n",
        ": routs: unknown key (expected one of forms, routes, layers, group)",
    ),
    ("\n[forms]\n", "\nforms = [\n", ": not valid TOML: "),
]


@pytest.mark.parametrize(
    ("right", "wrong", "message"), BROKEN_COPIES, ids=[b[2][:40] for b in BROKEN_COPIES]
)
def test_a_broken_data_file_names_the_entry_and_the_key(
    tmp_path: Path, right: str, wrong: str, message: str
) -> None:
    text = DATA.read_text(encoding="utf-8")
    assert right in text
    path = tmp_path / "battery.toml"
    path.write_text(text.replace(right, wrong, 1), encoding="utf-8")
    with pytest.raises(BatteryError) as caught:
        load_battery(path)
    assert isinstance(caught.value, imcea.Error)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_a_missing_group_or_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "battery.toml"
    path.write_text(DATA.read_text(encoding="utf-8").replace('id = "maps"', 'id = "mapz"'))
    battery = load_battery(path)
    with pytest.raises(BatteryError, match=f"^{re.escape(str(path))}: group 'maps': missing$"):
        battery.group("maps")
    with pytest.raises(BatteryError, match=r"absent\.toml: cannot read the battery"):
        load_battery(tmp_path / "absent.toml")
