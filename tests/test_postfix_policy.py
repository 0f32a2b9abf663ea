"""The Postfix policy protocol (imcea.postfix) and the policy server (imcea.policy_server).

The protocol is Postfix SMTPD_POLICY_README's: ``name=value`` lines ended by an empty
line, one ``action=...`` line and an empty line in reply, many requests per connection,
and on malformed input a log line and a closed connection without a reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import imcea
from imcea import policy_server
from imcea.postfix import (
    DUNNO,
    MAX_LINE,
    MAX_REQUEST,
    SENDER_ROUTED_REFUSED,
    PolicyError,
    PolicyParser,
    PolicyRequest,
    answer,
    format_reply,
    parse_request,
    respond,
)

ROOT = Path(__file__).resolve().parents[1]

OUTSIDER = "203.0.113.7"
LISTED = "192.168.0.1"  # the seed's site connector, on the allow list
ONE_OFF = "IMCEASMTP-victim+40elsewhere+2Eexample@contoso.com"

RESTRICTED = imcea.load_settings(
    {
        "reroute": True,
        "server_addresses": ["10.0.0.1"],
        "routing": [{"domain": "contoso.com", "action": "inbound"}],
        "directory": ["jdoe@contoso.com"],
        "gateways": ["X400"],
        "restrictions": {
            "authenticated": True,
            "allow": [LISTED],
            "internal": ["10.0.0.1"],
            "deny": ["198.51.100.66"],
        },
    }
)
CLOSED = imcea.load_settings(
    {
        "reroute": False,
        "routing": [{"domain": "contoso.com", "action": "inbound"}],
        "directory": ["jdoe@contoso.com"],
    }
)

RELAY_PROHIBITED = "550 Relaying is prohibited"
UNKNOWN = "550 5.1.1 (000C05A6) Unknown Recipient (unknown_recipient)"
NOT_REROUTED = (
    "550 5.7.1 the message is returned: encapsulated SMTP one-offs are not rerouted"
    " (encapsulated_not_rerouted)"
)


def request(**attributes: str) -> PolicyRequest:
    """An RCPT-stage request from the outsider, with *attributes* on top."""
    base = {
        "request": "smtpd_access_policy",
        "protocol_state": "RCPT",
        "protocol_name": "ESMTP",
        "client_address": OUTSIDER,
        "client_name": "unknown",
        "sender": "someone@outside.example",
        "recipient": "jdoe@contoso.com",
        "sasl_username": "",
        "server_address": "192.0.2.10",
        "instance": "1a2b.3c4d.1",
    }
    base.update(attributes)
    return PolicyRequest.from_attributes(base.items())


def wire(**attributes: str) -> bytes:
    """The bytes Postfix sends for :func:`request`."""
    return b"".join(f"{k}={v}\n".encode() for k, v in request(**attributes).attributes) + b"\n"


# ---------------------------------------------------------------------------
# parsing


def test_parse_request_reads_the_known_attributes_and_keeps_all() -> None:
    parsed = parse_request(
        [
            "request=smtpd_access_policy\n",
            "protocol_state=RCPT\n",
            "client_address=192.0.2.1\n",
            "ccert_subject=solaris9.porcupine.org\n",  # unknown here: kept, not used
            "sender=\n",  # the null sender
            "recipient=a=b@contoso.com\n",  # only the first '=' separates
            "sasl_username=alice\n",
            "server_address=10.0.0.1\n",
            "\n",
        ]
    )
    assert parsed.request == "smtpd_access_policy"
    assert parsed.protocol_state == "RCPT"
    assert parsed.client_address == "192.0.2.1"
    assert parsed.sender == ""
    assert parsed.recipient == "a=b@contoso.com"
    assert parsed.authenticated
    assert parsed.server_address == "10.0.0.1"
    assert parsed.get("ccert_subject") == "solaris9.porcupine.org"
    assert parsed.get("size") is None
    assert parsed.instance == ""
    assert len(parsed.attributes) == 8


def test_parse_request_without_newlines_and_the_last_duplicate_wins() -> None:
    parsed = parse_request(["recipient=a@b", "recipient=c@d", b"client_address=192.0.2.1"])
    assert parsed.recipient == "c@d"
    assert parsed.get("recipient") == "c@d"
    assert parsed.attributes[:2] == (("recipient", "a@b"), ("recipient", "c@d"))
    assert not parsed.authenticated


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["request=smtpd_access_policy", "no equals sign"], "line 2 is not name=value"),
        (["=value"], "empty attribute name"),
        (["name=va\0lue"], "null byte"),
        ([b"name=\xff\xfe"], "invalid UTF-8"),
        (["a=b", "name=\ud800"], "line 2: no UTF-8 for the character at 5"),
        ([], "no attributes"),
        (["", ""], "follows the empty line"),
        (["a=b", "", "c=d"], "follows the empty line"),
        (["a=b\nc=d"], "newline"),
        (["name=" + "x" * MAX_LINE], f"longer than {MAX_LINE} bytes"),
        ([f"n{i}=" + "x" * 1000 for i in range(70)], f"larger than {MAX_REQUEST} bytes"),
    ],
    ids=[
        "no-equals",
        "empty-name",
        "nul",
        "bad-utf8",
        "surrogate",
        "empty",
        "two-empty-lines",
        "after-end",
        "embedded-newline",
        "long-line",
        "large-request",
    ],
)
def test_parse_request_rejects_malformed_input(lines: list[Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message) as raised:
        parse_request(lines)
    assert isinstance(raised.value, imcea.Error)


def test_a_line_exactly_at_the_bound_is_accepted() -> None:
    line = "name=" + "x" * (MAX_LINE - 5)
    assert parse_request([line]).get("name") == "x" * (MAX_LINE - 5)
    with pytest.raises(PolicyError):
        parse_request([line + "x"])


KNOWN = ("request", "protocol_state", "client_address", "sender", "recipient")
KNOWN += ("sasl_username", "server_address", "instance")


def reference(block: bytes) -> PolicyRequest | None:
    """The request SMTPD_POLICY_README describes, read line by line, or ``None`` when
    *block* (lines, each with its newline) is not one: a line without ``=`` or with an
    empty name, a null byte, invalid UTF-8."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\0" in text:
        return None
    pairs = []
    for line in text.split("\n")[:-1]:
        name, sep, value = line.partition("=")
        if not sep or not name:
            return None
        pairs.append((name, value))
    last = dict(pairs)
    known = {name: last.get(name, "") for name in KNOWN}
    return PolicyRequest(**known, text=text)


_NAMES = st.one_of(
    st.sampled_from(KNOWN),
    st.sampled_from(KNOWN).map(lambda name: name + "x"),  # a known name as a prefix
    st.sampled_from(KNOWN).map(lambda name: "x_" + name),  # and as a suffix
    st.text(st.characters(codec="utf-8", exclude_characters="=\n\0"), min_size=1, max_size=12),
)
_VALUES = st.text(st.characters(codec="utf-8", exclude_characters="\n\0"), max_size=20)


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.tuples(_NAMES, _VALUES), min_size=1, max_size=40))
def test_parsing_agrees_with_the_attributes_it_was_written_from(
    pairs: list[tuple[str, str]],
) -> None:
    """Parsed in one pass, a request is the one its pairs make: every known attribute
    its last value, every pair kept in order, duplicates and odd names included."""
    written = PolicyRequest.from_attributes(pairs)
    lines = [f"{name}={value}\n" for name, value in pairs]
    assert parse_request(lines) == written
    assert list(PolicyParser().feed("".join(lines).encode() + b"\n")) == [written]
    assert written.attributes == tuple(pairs)
    last = dict(pairs)
    for name in KNOWN:
        assert getattr(written, name) == last.get(name, "")
        assert written.get(name) == last.get(name)
    assert written == reference("".join(lines).encode())


_PIECES = [b"a", b"=", b"\n", b"\0", b"\xff", b"\xc3\xa9", b"x=y\n", b"==", b" "]
_PIECES += [name.encode() + b"=" for name in KNOWN]


@settings(max_examples=500, deadline=None)
@given(pieces=st.lists(st.sampled_from(_PIECES), min_size=1, max_size=30))
def test_parsing_odd_blocks_agrees_with_reading_line_by_line(pieces: list[bytes]) -> None:
    block = odd_block(pieces)
    if block == b"\n":
        return
    expected = reference(block)
    parser = PolicyParser()
    if expected is None:
        with pytest.raises(PolicyError):
            list(parser.feed(block + b"\n"))
    else:
        assert list(parser.feed(block + b"\n")) == [expected]
        assert parse_request(block.split(b"\n")) == expected


def odd_block(pieces: list[bytes]) -> bytes:
    """The lines of one request made of *pieces*: no empty line, a newline at the end."""
    block = b"".join(pieces)
    while b"\n\n" in block:  # an empty line would end the request
        block = block.replace(b"\n\n", b"\n")
    block = block.lstrip(b"\n")
    return block if block.endswith(b"\n") else block + b"\n"


_BLOCKS = st.one_of(
    st.lists(st.tuples(_NAMES, _VALUES), min_size=1, max_size=12).map(
        lambda pairs: "".join(f"{name}={value}\n" for name, value in pairs).encode()
    ),
    st.lists(st.sampled_from(_PIECES), min_size=1, max_size=12).map(odd_block),
)


@settings(max_examples=300, deadline=None)
@given(
    blocks=st.lists(_BLOCKS, min_size=1, max_size=5),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=6),
)
def test_reading_a_stream_agrees_with_reading_each_request(
    blocks: list[bytes], cuts: list[int]
) -> None:
    """However the stream is cut, read() and feed() give the requests before the first
    malformed one, each as reading it line by line gives it, and then the error."""
    stream = b"".join(block + b"\n" for block in blocks)
    expected: list[PolicyRequest] = []
    for block in blocks:
        request = reference(block)
        if request is None:
            break
        expected.append(request)
    malformed = len(expected) < len(blocks)
    edges = [0, *sorted(min(cut, len(stream)) for cut in cuts), len(stream)]
    pieces = [stream[a:b] for a, b in itertools.pairwise(edges)]
    parser = PolicyParser()
    assert [request for piece in pieces for request in parser.read(piece)] == expected
    assert (parser.error is not None) == malformed
    assert not parser.pending
    fed = PolicyParser()
    taken: list[PolicyRequest] = []
    with pytest.raises(PolicyError) if malformed else contextlib.nullcontext():
        for piece in pieces:
            taken.extend(fed.feed(piece))
    assert taken == expected


def test_read_takes_whole_requests_however_many_a_piece_holds() -> None:
    parser = PolicyParser()
    assert [r.recipient for r in parser.read(wire(recipient="a@b"))] == ["a@b"]
    two = wire(recipient="c@d") + wire(recipient="e@f")
    assert [r.recipient for r in parser.read(two + b"request=smtpd")] == ["c@d", "e@f"]
    assert parser.pending and parser.error is None
    assert [r.recipient for r in parser.read(b"_access_policy\nrecipient=g@h\n\n")] == ["g@h"]
    assert not parser.pending
    iterator = parser.feed(wire(recipient="i@j") + wire(recipient="k@l"))
    assert next(iterator).recipient == "i@j"
    assert [r.recipient for r in parser.read(wire(recipient="m@n"))] == ["k@l", "m@n"]
    assert parser.read(wire() + b"bad\n\n" + wire()) == [request()]
    assert parser.error is not None and "line 1 is not name=value" in str(parser.error)
    assert parser.read(wire()) == []  # failed for good


def test_a_bad_line_after_many_known_ones_fails_at_once() -> None:
    block = b"request=smtpd_access_policy\nrecipient=a@b\n" * 500 + b"bad\n"
    started = time.perf_counter()
    with pytest.raises(PolicyError, match="line 1001 is not name=value"):
        list(PolicyParser().feed(block + b"\n"))
    assert time.perf_counter() - started < 1.0


def test_from_attributes_takes_pairs_as_lists_too() -> None:
    made = PolicyRequest.from_attributes([["recipient", "a@b"], ("sender", "")])
    assert made.recipient == "a@b" and made.attributes == (("recipient", "a@b"), ("sender", ""))


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("", "x")], "attribute 1: '' is not an attribute name"),
        ([("a", "b"), ("a=b", "c")], "attribute 2: 'a=b' is not an attribute name"),
        ([("a\nb", "c")], "attribute 1: .* is not an attribute name"),
        ([("recipient", "a@b\nc=d")], "attribute recipient: .* newline"),
        ([("recipient", 7)], "attribute 1: the name and value must be strings"),
        (["recipient=a@b"], "attribute 1: expected a .name, value. pair"),
    ],
)
def test_from_attributes_refuses_what_no_request_line_can_carry(
    pairs: list[Any], message: str
) -> None:
    with pytest.raises(PolicyError, match=message):
        PolicyRequest.from_attributes(pairs)


def test_parser_gives_the_same_requests_however_the_bytes_are_cut() -> None:
    data = wire() + wire(recipient="victim@elsewhere.example") + wire(protocol_state="DATA")
    whole = list(PolicyParser().feed(data))
    assert [r.recipient for r in whole] == [
        "jdoe@contoso.com",
        "victim@elsewhere.example",
        "jdoe@contoso.com",
    ]
    for size in (1, 2, 7, 64):
        parser = PolicyParser()
        pieces = [data[i : i + size] for i in range(0, len(data), size)]
        assert [r for piece in pieces for r in parser.feed(piece)] == whole
        assert not parser.pending


def test_parser_reports_a_partial_request_as_pending() -> None:
    parser = PolicyParser()
    assert list(parser.feed(b"request=smtpd_access_policy\nrecipient=a@b\n")) == []
    assert parser.pending
    [done] = parser.feed(b"\n")
    assert done.recipient == "a@b"
    assert not parser.pending


def test_parser_keeps_requests_not_taken_from_the_iterator() -> None:
    parser = PolicyParser()
    iterator = parser.feed(wire(recipient="a@contoso.com") + wire(recipient="b@contoso.com"))
    assert next(iterator).recipient == "a@contoso.com"
    assert [r.recipient for r in parser.feed(b"")] == ["b@contoso.com"]


def test_parser_bounds_an_unfinished_line_as_the_bytes_arrive() -> None:
    parser = PolicyParser(max_line=100)
    assert list(parser.feed(b"name=" + b"x" * 95)) == []
    with pytest.raises(PolicyError, match="longer than 100 bytes"):
        list(parser.feed(b"x"))
    with pytest.raises(PolicyError):  # failed for good
        list(parser.feed(wire()))


def test_parser_bounds_an_unfinished_request_as_the_bytes_arrive() -> None:
    parser = PolicyParser(max_line=100, max_request=1000)
    with pytest.raises(PolicyError, match="larger than 1000 bytes"):
        for i in range(100):
            list(parser.feed(f"n{i}={'x' * 20}\n".encode()))
    assert i < 50


def test_parser_yields_the_requests_before_a_malformed_one() -> None:
    parser = PolicyParser()
    taken: list[PolicyRequest] = []
    with pytest.raises(PolicyError, match="line 1 is not name=value"):
        for r in parser.feed(wire() + b"garbage\n\n" + wire()):
            taken.append(r)
    assert [r.recipient for r in taken] == ["jdoe@contoso.com"]


@pytest.mark.parametrize(
    "data",
    [b"\n", b"a=b\n\n\n", b"a\xc3=b\n\n", b"a=b\0\n\n"],
    ids=["empty-request", "extra-empty-line", "bad-utf8", "nul"],
)
def test_parser_rejects_malformed_streams(data: bytes) -> None:
    with pytest.raises(PolicyError):
        list(PolicyParser().feed(data))


def test_parser_rejects_silly_bounds() -> None:
    with pytest.raises(ValueError):
        PolicyParser(max_line=0)


# ---------------------------------------------------------------------------
# the mapping


R, C, D = RESTRICTED, CLOSED, imcea.Settings()  # D: the built-in defaults
REMOTE = "v@elsewhere.example"
UNAVAILABLE = "451 4.3.0 Client address unavailable: the routing restrictions cannot be applied"

# settings, recipient, other attributes, bounce_like_ims, the expected action
MAPPING: list[tuple[imcea.Settings, str, dict[str, str], bool, str]] = [
    # Deliver -> DUNNO
    (R, "jdoe@contoso.com", {}, False, DUNNO),
    (R, "Postmaster", {}, False, DUNNO),
    (R, "IMCEAX400-c=US+3Bp=MS+3Bs=user+3B@contoso.com", {}, False, DUNNO),
    # Reroute -> DUNNO
    (R, REMOTE, {"client_address": LISTED}, False, DUNNO),
    (R, REMOTE, {"client_address": f"::ffff:{LISTED}"}, False, DUNNO),
    (R, REMOTE, {"sasl_username": "alice"}, False, DUNNO),
    (R, REMOTE, {"server_address": "10.0.0.1"}, False, DUNNO),
    (R, ONE_OFF, {"client_address": LISTED}, False, DUNNO),
    # Return at RCPT -> the IMS's own reply, whatever bounce_like_ims says
    (R, REMOTE, {}, False, RELAY_PROHIBITED),
    (R, REMOTE, {}, True, RELAY_PROHIBITED),
    (R, ONE_OFF, {}, False, RELAY_PROHIBITED),
    (R, REMOTE, {"client_address": "198.51.100.66", "sasl_username": "x"}, False, RELAY_PROHIBITED),
    (R, "a b@contoso.com", {}, False, "553 malformed address: <a b@contoso.com>"),
    (R, "a\r@contoso.com", {}, True, "553 malformed address: <a?@contoso.com>"),
    # a server address that is not one: decided without it (internal permits nobody)
    (R, REMOTE, {"server_address": "not-an-ip"}, False, RELAY_PROHIBITED),
    (R, REMOTE, {"server_address": "unknown"}, False, RELAY_PROHIBITED),
    # Return after acceptance -> rejected at RCPT by default, DUNNO like the IMS
    (R, "nobody@contoso.com", {}, False, UNKNOWN),
    (R, "nobody@contoso.com", {}, True, DUNNO),
    (C, ONE_OFF, {}, False, NOT_REROUTED),
    (C, ONE_OFF, {}, True, DUNNO),
    (D, REMOTE, {}, False, "550 5.1.1 (000C05A6) Unknown Recipient (rerouting_disabled)"),
    (R, "IMCEAFAX-1234@contoso.com", {}, False,
     "550 5.4.4 no route to the address type (no_gateway)"),
    (R, "IMCEASMTP-a+4G@contoso.com", {}, False,
     "550 5.1.1 (000C05A6) Unknown Recipient (malformed_encapsulation)"),
    # not a recipient decision -> DUNNO
    (R, REMOTE, {"protocol_state": "DATA"}, False, DUNNO),
    (R, REMOTE, {"protocol_state": "END-OF-MESSAGE"}, False, DUNNO),
    (R, "", {}, False, DUNNO),
    (R, REMOTE, {"request": "junk"}, False, DUNNO),
    (R, REMOTE, {"protocol_state": "rcpt"}, False, RELAY_PROHIBITED),  # any case
    # the client cannot be checked -> a temporary failure
    (R, REMOTE, {"client_address": ""}, False, UNAVAILABLE),
    (R, "jdoe@contoso.com", {"client_address": "unknown"}, False, UNAVAILABLE),
    (R, REMOTE, {"client_address": "1.2.3"}, False,
     "451 4.3.0 Client address 1.2.3 is not an IP address"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("settings", "recipient", "attributes", "bounce_like_ims", "action"), MAPPING
)
def test_mapping(
    settings: imcea.Settings,
    recipient: str,
    attributes: dict[str, str],
    bounce_like_ims: bool,
    action: str,
) -> None:
    req = request(recipient=recipient, **attributes)
    assert respond(req, settings, bounce_like_ims=bounce_like_ims) == action
    assert format_reply(action) == f"action={action}\n\n".encode()


def test_answer_carries_the_decision_it_was_made_from() -> None:
    result = answer(request(recipient="nobody@contoso.com"), RESTRICTED)
    assert result.decision is not None
    expected = imcea.decide(
        imcea.Envelope("someone@outside.example", ["nobody@contoso.com"]),
        OUTSIDER,
        RESTRICTED,
        server_ip="192.0.2.10",
    )[0]
    assert result.decision == expected
    assert answer(request(protocol_state="DATA"), RESTRICTED).decision is None
    noted = answer(request(server_address="bogus"), RESTRICTED)
    assert "server_address" in noted.note


def test_a_missing_client_address_is_like_an_empty_one() -> None:
    attributes = [
        ("request", "smtpd_access_policy"),
        ("protocol_state", "RCPT"),
        ("recipient", "a@b"),
    ]
    assert respond(PolicyRequest.from_attributes(attributes), RESTRICTED).startswith("451 4.3.0 ")


def test_a_long_malformed_recipient_is_not_echoed_in_full() -> None:
    action = respond(request(recipient="x" * 3000 + "@contoso.com"), RESTRICTED)
    assert action.startswith("553 malformed address: <xxx") and action.endswith("...")
    assert len(action) == 400


def test_ipv6_zone_is_ignored() -> None:
    settings = imcea.load_settings({"reroute": True, "restrictions": {"allow": ["fe80::/10"]}})
    assert (
        respond(request(client_address="fe80::1%eth0", recipient="v@e.example"), settings) == DUNNO
    )


_SAFE_TEXT = st.text(st.characters(blacklist_characters="\n\0"), max_size=80)


@settings(max_examples=300, deadline=None)
@given(
    recipient=_SAFE_TEXT,
    client=st.sampled_from([OUTSIDER, LISTED, "10.0.0.5", "198.51.100.66", "2001:db8::1"]),
    sasl=st.sampled_from(["", "alice"]),
    bounce=st.booleans(),
)
def test_every_answer_agrees_with_decide(
    recipient: str, client: str, sasl: str, bounce: bool
) -> None:
    """DUNNO exactly when the IMS does not refuse (or, by default, return) the recipient,
    but for a sender-routed recipient that Postfix would relay and the IMS would not."""
    req = request(recipient=recipient, client_address=client, sasl_username=sasl)
    result = answer(req, RESTRICTED, bounce_like_ims=bounce)
    action = result.action
    assert action == respond(req, RESTRICTED, bounce_like_ims=bounce)
    reply = format_reply(action)  # always one line
    assert reply.count(b"\n") == 2
    if not recipient:
        assert action == DUNNO
        return
    decision = imcea.decide(
        imcea.Envelope("someone@outside.example", [recipient]),
        client,
        RESTRICTED,
        authenticated=bool(sasl),
        server_ip="192.0.2.10",
    )[0]
    refused = decision.action is imcea.Action.RETURN and (decision.ndr is None or not bounce)
    if result.reason == SENDER_ROUTED_REFUSED:
        assert not refused and decision.action is not imcea.Action.REROUTE
        assert action == "550 5.7.1 Relaying is prohibited"
        return
    assert result.reason == decision.reason.value
    assert (action != DUNNO) == refused
    if decision.action is imcea.Action.REROUTE:
        assert action == DUNNO
    if refused:
        assert action[:3] in ("550", "553")


@pytest.mark.parametrize("bad", ["", "two\nlines", "nul\0"])
def test_format_reply_refuses_what_is_not_one_line(bad: str) -> None:
    with pytest.raises(PolicyError):
        format_reply(bad)


# ---------------------------------------------------------------------------
# the asyncio server, in process


class Log(io.StringIO):
    def lines(self) -> list[str]:
        return self.getvalue().splitlines()


def run_server(
    scenario: Callable[[int, Log], Awaitable[None]],
    *,
    settings: imcea.Settings = RESTRICTED,
    **options: Any,
) -> Log:
    """Run *scenario(port, log)* against a server on a free loopback port, then stop it."""
    log = Log()
    service = policy_server.PolicyService(settings, log=log, **options)

    async def main() -> None:
        stop = asyncio.Event()
        bound: list[tuple[str, int]] = []
        server = asyncio.create_task(
            policy_server.serve_tcp(
                service, "127.0.0.1", 0, stop=stop, ready=bound.extend, handle_signals=False
            )
        )
        for _ in range(200):
            if bound or server.done():
                break
            await asyncio.sleep(0.01)
        assert bound, "the server did not start"
        try:
            await asyncio.wait_for(scenario(bound[0][1], log), timeout=60)
        finally:
            stop.set()
            await asyncio.wait_for(server, timeout=10)

    asyncio.run(main())
    return log


async def read_reply(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\n\n"), timeout=10)


RECIPIENTS = [
    ("jdoe@contoso.com", DUNNO),
    ("victim@elsewhere.example", RELAY_PROHIBITED),
    ("nobody@contoso.com", UNKNOWN),
    (ONE_OFF, RELAY_PROHIBITED),
]


def test_many_requests_per_connection_and_many_connections() -> None:
    async def one_connection(port: int, index: int) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answered = 0
        for n in range(60):
            recipient, expected = RECIPIENTS[(n + index) % len(RECIPIENTS)]
            writer.write(wire(recipient=recipient, instance=f"{index}.{n}"))
            await writer.drain()
            assert await read_reply(reader) == format_reply(expected)
            answered += 1
        writer.close()
        await writer.wait_closed()
        return answered

    async def scenario(port: int, log: Log) -> None:
        counts = await asyncio.gather(*(one_connection(port, i) for i in range(12)))
        assert counts == [60] * 12

    log = run_server(scenario)
    assert log.lines() == []


def test_pipelined_and_fragmented_requests_are_answered_in_order() -> None:
    async def scenario(port: int, log: Log) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        data = b"".join(wire(recipient=r) for r, _ in RECIPIENTS)
        writer.write(data[:5])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(data[5:])
        for _, expected in RECIPIENTS:
            assert await read_reply(reader) == format_reply(expected)
        writer.close()

    run_server(scenario)


@pytest.mark.parametrize(
    "bad",
    [b"this line has no equals sign\n\n", b"name=\xff\n\n", b"x=" + b"y" * (MAX_LINE + 10)],
    ids=["no-equals", "bad-utf8", "long-line"],
)
def test_malformed_request_closes_the_connection_without_a_reply(bad: bytes) -> None:
    async def scenario(port: int, log: Log) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(wire())
        assert await read_reply(reader) == b"action=DUNNO\n\n"
        writer.write(bad)
        assert await asyncio.wait_for(reader.read(), timeout=10) == b""  # EOF, no reply
        writer.close()
        # the server still serves other connections
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(wire())
        assert await read_reply(reader) == b"action=DUNNO\n\n"
        writer.close()

    log = run_server(scenario)
    [line] = log.lines()
    assert "malformed request, connection closed without a reply" in line


def test_request_larger_than_the_bound_closes_the_connection() -> None:
    async def scenario(port: int, log: Log) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        received = b""
        try:
            for i in range(MAX_REQUEST // 100 + 10):
                writer.write(f"attr{i}={'x' * 100}\n".encode())
                await writer.drain()
            received = await asyncio.wait_for(reader.read(), timeout=10)
        except ConnectionError:
            pass  # the server closed while we were still writing: no reply either
        assert received == b""
        writer.close()

    log = run_server(scenario)
    assert any(f"larger than {MAX_REQUEST} bytes" in line for line in log.lines())


@pytest.mark.parametrize("verbose", [False, True])
def test_an_internal_error_is_a_temporary_failure(
    monkeypatch: pytest.MonkeyPatch, verbose: bool
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(policy_server, "answer", broken)  # with verbose
    monkeypatch.setattr(policy_server, "respond", broken)  # without

    async def scenario(port: int, log: Log) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(2):  # and the connection stays usable
            writer.write(wire())
            assert await read_reply(reader) == b"action=451 4.3.0 Policy service internal error\n\n"
        writer.close()

    log = run_server(scenario, verbose=verbose)
    assert len(log.lines()) == 2 and "RuntimeError: boom" in log.lines()[0]


def test_replies_are_remembered_within_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each reply is the one its action makes, before and after the remembered replies
    are emptied (malformed recipients echoed in the reply all differ)."""
    monkeypatch.setattr(policy_server, "REPLIES_REMEMBERED", 4)
    service = policy_server.PolicyService(RESTRICTED, log=Log())
    recipients = [f"a{i} b@contoso.com" for i in range(10)] + ["jdoe@contoso.com", REMOTE] * 3
    for recipient in recipients:
        req = request(recipient=recipient)
        assert service.reply(req) == format_reply(respond(req, RESTRICTED))
    assert service.reply(request(recipient="a3 b@contoso.com")) == (
        b"action=553 malformed address: <a3 b@contoso.com>\n\n"
    )


def test_verbose_logs_each_decision() -> None:
    async def scenario(port: int, log: Log) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(wire(recipient="victim@elsewhere.example"))
        await read_reply(reader)
        writer.close()

    log = run_server(scenario, verbose=True)
    [line] = log.lines()
    assert "recipient='victim@elsewhere.example' -> 550 Relaying is prohibited" in line
    assert "(return relay_denied)" in line


def test_idle_connection_is_closed() -> None:
    async def scenario(port: int, log: Log) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), timeout=10) == b""
        writer.close()

    log = run_server(scenario, idle_timeout=0.2)
    assert "idle for 0.2 s" in log.getvalue()


def test_stop_closes_open_connections() -> None:
    log = Log()
    service = policy_server.PolicyService(RESTRICTED, log=log)

    async def main() -> None:
        stop = asyncio.Event()
        bound: list[tuple[str, int]] = []
        server = asyncio.create_task(
            policy_server.serve_tcp(
                service, "127.0.0.1", 0, stop=stop, ready=bound.extend, handle_signals=False
            )
        )
        while not bound:
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", bound[0][1])
        writer.write(wire())
        assert await read_reply(reader) == b"action=DUNNO\n\n"
        stop.set()
        await asyncio.wait_for(server, timeout=10)
        assert await asyncio.wait_for(reader.read(), timeout=10) == b""
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", bound[0][1])

    asyncio.run(main())


def test_parse_listen() -> None:
    assert policy_server.parse_listen("127.0.0.1:10040") == ("127.0.0.1", 10040)
    assert policy_server.parse_listen("[::1]:0") == ("::1", 0)
    for bad in ("127.0.0.1", ":25", "host:port", "127.0.0.1:70000", ""):
        with pytest.raises(imcea.Error):
            policy_server.parse_listen(bad)


def test_policy_command_in_process_on_text_streams() -> None:
    out, err = io.StringIO(), io.StringIO()
    stdin = io.StringIO((wire(recipient="nobody@contoso.com") + wire()).decode())
    command = policy_server.policy_command
    assert command(imcea.Settings(), bounce_like_ims=True, out=out, err=err, stdin=stdin) == 0
    # built-in settings: rerouting off, no directory, no inbound domain
    assert out.getvalue() == "action=DUNNO\n\naction=DUNNO\n\n"
    assert err.getvalue() == ""


# ---------------------------------------------------------------------------
# the command, as a real subprocess


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUTF8": "1"}


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "imcea", "policy", *args]


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    path = tmp_path / "ims.toml"
    path.write_text(
        'reroute = true\ndirectory = ["jdoe@contoso.com"]\n'
        '[[routing]]\ndomain = "contoso.com"\naction = "inbound"\n'
        f'[restrictions]\nallow = ["{LISTED}"]\n',
        encoding="utf-8",
    )
    return path


def test_stdio_loop_answers_every_request(settings_file: Path) -> None:
    data = b"".join(wire(recipient=r) for r, _ in RECIPIENTS)
    result = subprocess.run(
        _command("--settings", str(settings_file)),
        input=data,
        capture_output=True,
        env=_env(),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"".join(format_reply(expected) for _, expected in RECIPIENTS)
    assert result.stderr == b""


def test_imcea_policy_command(settings_file: Path) -> None:
    """``imcea policy`` is the same server, from the command line."""
    result = subprocess.run(
        [sys.executable, "-m", "imcea", "policy", "--settings", str(settings_file)],
        input=wire(recipient="victim@elsewhere.example"),
        capture_output=True,
        env=_env(),
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout == b"action=550 Relaying is prohibited\n\n"


def test_stdio_loop_bounce_like_ims(settings_file: Path) -> None:
    result = subprocess.run(
        _command("--settings", str(settings_file), "--bounce-like-ims"),
        input=wire(recipient="nobody@contoso.com"),
        capture_output=True,
        env=_env(),
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (0, b"action=DUNNO\n\n")


def test_stdio_loop_stops_at_a_malformed_request(settings_file: Path) -> None:
    result = subprocess.run(
        _command("--settings", str(settings_file)),
        input=wire() + b"garbage\n\n" + wire(),
        capture_output=True,
        env=_env(),
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == b"action=DUNNO\n\n"  # the first request only
    assert b"malformed request" in result.stderr
    assert b"Traceback" not in result.stderr


def test_stdio_loop_stops_cleanly_on_sigterm(settings_file: Path) -> None:
    process = subprocess.Popen(
        _command("--settings", str(settings_file)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(wire())
    process.stdin.flush()
    assert process.stdout.read(len(b"action=DUNNO\n\n")) == b"action=DUNNO\n\n"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err


def _start_tcp(*args: str) -> tuple[subprocess.Popen[bytes], int]:
    process = subprocess.Popen(
        _command("--listen", "127.0.0.1:0", *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    assert process.stderr is not None
    line = process.stderr.readline().decode()
    assert line.startswith("imcea policy: listening on 127.0.0.1:"), line
    return process, int(line.rsplit(":", 1)[1])


def test_tcp_server_stops_cleanly_on_sigterm(settings_file: Path) -> None:
    process, port = _start_tcp("--settings", str(settings_file))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(wire(client_address=LISTED, recipient="v@elsewhere.example"))
            assert sock.recv(100) == b"action=DUNNO\n\n"
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)  # with the connection still open
            assert sock.recv(100) == b""
            _, err = process.communicate(timeout=30)
            assert time.monotonic() - started < 5
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert err.decode().splitlines() == ["imcea policy: stopped"]


def test_bad_listen_address_and_bad_settings_fail_in_one_line(
    settings_file: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("reroute = 3\n", encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = f"127.0.0.1:{taken.getsockname()[1]}"
        for args, text in [
            (("--listen", "nowhere"), "is not HOST:PORT"),
            (("--settings", str(bad)), "reroute"),
            (("--listen", busy), f"cannot listen on {busy}"),
        ]:
            result = subprocess.run(
                _command(*args), capture_output=True, env=_env(), timeout=60, input=b""
            )
            assert result.returncode == 2, (args, result)
            lines = result.stderr.decode().splitlines()
            assert len(lines) == 1 and text in lines[0], (args, lines)


@pytest.fixture(autouse=True)
def _no_leftover_signal_handlers() -> Iterator[None]:
    before = signal.getsignal(signal.SIGTERM)
    yield
    assert signal.getsignal(signal.SIGTERM) == before
