"""The command's short way through a log gives the very bytes :func:`imcea.decide` implies.

``imcea replay`` decides records of the usual shape through a decider that remembers
each recipient's output text, and the §2.3 answer of the last client; these tests hold
it to a reference built here from :func:`imcea.decide` and :func:`json.dumps` alone,
record by record, over logs that mix clients that may and may not relay, remembered
and new recipients, and memos small enough to be rotated many times over.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imcea
import imcea.decider
import imcea.decision
import imcea.logs
from imcea.logs import Summary, _Engine

SETTINGS = {
    "SP3": {
        "reroute": True,
        "release": "SP3",
        "server_addresses": ["192.0.2.10", "10.0.0.1"],
        "routing": [
            {"domain": "contoso.com", "action": "inbound"},
            {"domain": "always.example", "action": "relay"},
        ],
        "restrictions": {
            "authenticated": True,
            "allow": ["10.0.0.0/255.255.255.0"],
            "internal": ["10.0.0.1"],
            "deny": ["10.0.0.66"],
        },
        "directory": ["alice@contoso.com", "/o=Contoso/ou=Site/cn=Recipients/cn=bob"],
    },
    "SP2": {
        "reroute": True,
        "release": "SP2",
        "routing": [{"domain": "contoso.com", "action": "inbound"}],
        "restrictions": {"allow": ["10.0.0.0/255.255.255.0"]},
    },
    "FIXED": {
        "reroute": True,
        "release": "SP3",
        "routing": [{"domain": "contoso.com", "action": "inbound"}],
        "restrictions": {"allow": ["10.0.0.0/255.255.255.0", "192.168.0.1"]},
    },
    "OFF": {"reroute": False, "routing": [{"domain": "contoso.com", "action": "inbound"}]},
}

CLIENTS = [
    "10.0.0.5",  # on the allow list
    "10.0.0.66",  # never route
    "192.168.0.1",  # the other site's bridgehead (allowed only once fixed)
    "203.0.113.7",  # an outsider
    " 203.0.113.8 ",  # blanks around it
    "::ffff:10.0.0.9",  # mapped IPv6: matched as IPv4
    "2001:db8::1",
]
RECIPIENTS = [
    "alice@contoso.com",
    "carol@contoso.com",
    "<alice@contoso.com>",
    "user@example.net",
    "x@always.example",
    "IMCEASMTP-user+40example+2Enet@contoso.com",
    "IMCEASMTP-alice+40contoso+2Ecom@contoso.com",
    "IMCEASMTP-IMCEASMTP-u+2B40example+2Bnet+40contoso+2Ecom@contoso.com",
    "IMCEAEX-_O=CONTOSO_OU=SITE_CN=RECIPIENTS_CN=BOB@contoso.com",
    "IMCEAX400-c=US;a=+20;p=Contoso;s=Doe;@contoso.com",
    "user@[192.0.2.10]",
    "user@[203.0.113.1]",
    "a%b@contoso.com",
    "@a,@b:c@contoso.com",
    "Postmaster",
    "bad address",
    "u" * 300 + "@example.net",
    "ü@contoso.com",
    "\udc80@example.net",  # a lone surrogate, as a hostile log may hold
]


def load(name: str) -> imcea.Settings:
    return imcea.load_settings(SETTINGS[name])


def fields(d: imcea.Decision) -> dict[str, Any]:
    return {
        "action": d.action.value,
        "reason": d.reason.value,
        "reply": d.reply,
        "detail": d.detail,
    }


def dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":")) + "\n"


def reference(
    records: list[dict[str, Any]], settings: imcea.Settings, compare: imcea.Settings | None
) -> tuple[str, Summary]:
    """What the command must write for *records*, from decide() and json.dumps() alone,
    each decision made on a fresh copy of the settings (which remembers nothing)."""
    out = []
    counts = Summary(compared=compare is not None)
    for number, record in enumerate(records, 1):
        ident = record.get("id", number)
        kwargs = {"authenticated": record.get("authenticated", False)}
        kwargs["server_ip"] = record.get("server_ip")
        envelope = imcea.Envelope(record["sender"], record["recipients"])
        verdict = imcea.decide(envelope, record["ip"], _fresh(settings), **kwargs)
        counts.records += 1
        if compare is None:
            for d in verdict:
                counts.add_decision(d)
                out.append(dumps({"id": ident, "recipient": d.recipient, **fields(d)}))
            continue
        other = imcea.decide(envelope, record["ip"], _fresh(compare), **kwargs)
        counts.recipients += len(verdict)
        for old, new in zip(verdict, other, strict=True):
            if (old.action, old.reason) != (new.action, new.reason):
                counts.changed += 1
                pair = (
                    f"{old.action.value} -> {new.action.value}",
                    f"{old.reason.value} -> {new.reason.value}",
                )
                counts.transitions[pair] = counts.transitions.get(pair, 0) + 1
                row = {"id": ident, "recipient": old.recipient}
                out.append(dumps({**row, "before": fields(old), "after": fields(new)}))
    return "".join(out), counts


def _fresh(settings: imcea.Settings) -> imcea.Settings:
    """A new, equal settings value: nothing remembered yet."""
    for name in SETTINGS:
        candidate = load(name)
        if candidate == settings:
            return candidate
    raise AssertionError("unknown settings")


def engine_output(
    records: list[dict[str, Any]], settings: imcea.Settings, compare: imcea.Settings | None
) -> tuple[str, Summary]:
    lines = [json.dumps(r).encode() + b"\n" for r in records]
    engine = _Engine(settings, compare)
    text, total = [], Summary(compared=compare is not None)
    for first in range(0, len(lines), 7):  # several chunks through one engine
        segments, counts = engine.run(first + 1, lines[first : first + 7])
        assert not any(is_error for is_error, _ in segments)
        text.extend(t for _, t in segments)
        total.merge(counts)
    return "".join(text), total


records_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "sender": st.sampled_from(["", "s@example.org", "<s@mail.example>"]),
            "recipients": st.lists(
                st.one_of(st.sampled_from(RECIPIENTS), st.text(max_size=30)), max_size=4
            ),
            "ip": st.sampled_from(CLIENTS),
        },
        optional={
            "authenticated": st.booleans(),
            "server_ip": st.sampled_from([None, "10.0.0.1", "192.0.2.10"]),
            "id": st.one_of(st.text(max_size=8), st.integers(-(2**70), 2**70)),
            "size": st.integers(0, 10**6),  # other keys are ignored
        },
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=records_strategy, name=st.sampled_from(sorted(SETTINGS)))
def test_replay_output_is_decide_and_json_dumps(records: list[dict[str, Any]], name: str) -> None:
    settings_value = load(name)
    want, want_counts = reference(records, settings_value, None)
    got, got_counts = engine_output(records, settings_value, None)
    assert got == want
    assert (got_counts.records, got_counts.recipients, got_counts.bad) == (
        want_counts.records,
        want_counts.recipients,
        0,
    )
    merged = Summary()
    merged.merge(got_counts)
    assert merged.outcomes == want_counts.outcomes


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=records_strategy,
    names=st.sampled_from([("SP2", "SP3"), ("SP3", "FIXED"), ("SP3", "OFF"), ("FIXED", "SP2")]),
)
def test_compare_output_is_decide_and_json_dumps(
    records: list[dict[str, Any]], names: tuple[str, str]
) -> None:
    before, after = load(names[0]), load(names[1])
    want, want_counts = reference(records, before, after)
    got, got_counts = engine_output(records, before, after)
    assert got == want
    assert (got_counts.changed, got_counts.recipients) == (
        want_counts.changed,
        want_counts.recipients,
    )
    merged = Summary(compared=True)
    merged.merge(got_counts)
    assert merged.transitions == want_counts.transitions


def test_remembered_text_follows_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """One relay recipient, clients that may and may not relay in turns, and memos of
    two entries: each line must name its own client and outcome."""
    monkeypatch.setattr(imcea.decider, "ROUTES_REMEMBERED", 2)
    monkeypatch.setattr(imcea.decider, "CLIENTS_REMEMBERED", 2)
    settings_value = load("SP3")
    records = []
    for n in range(60):
        ip = CLIENTS[n % len(CLIENTS)]
        recipients = [RECIPIENTS[(n * 7 + k) % len(RECIPIENTS)] for k in range(n % 3 + 1)]
        recipients.append("user@example.net")
        records.append({"sender": "s@example.org", "recipients": recipients, "ip": ip})
    want, _ = reference(records, settings_value, None)
    got, _ = engine_output(records, settings_value, None)
    assert got == want
    rerouted = [json.loads(line) for line in got.splitlines()]
    relays = [r for r in rerouted if r["recipient"] == "user@example.net"]
    assert {r["action"] for r in relays} == {"reroute", "return"}
    for row in relays:
        assert records[row["id"] - 1]["ip"].strip() in row["detail"], row


def test_a_non_string_recipient_is_a_bad_line_and_counts_nothing() -> None:
    settings_value = load("SP3")
    good = {"sender": "s", "recipients": ["alice@contoso.com"], "ip": "10.0.0.5"}
    bad = {"sender": "s", "recipients": ["alice@contoso.com", 7], "ip": "10.0.0.5"}
    lines = [json.dumps(r).encode() for r in (good, bad, good)]
    segments, counts = _Engine(settings_value, None).run(1, lines)
    assert [is_error for is_error, _ in segments] == [False, True, False]
    assert "line 2: recipients[1]: expected a string, got 7" in segments[1][1]
    assert (counts.records, counts.recipients, counts.bad) == (2, 2, 1)
    assert sum(counts.outcomes.values()) == 2


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"sender": "s", "recipients": [], "ip": "10.0.0.300"}', "ip: '10.0.0.300'"),
        (b'{"sender": "s", "recipients": [], "ip": "10.0.0.1", "server_ip": "x"}', "server_ip"),
        (b'{"sender": "s", "recipients": [], "ip": "10.0.0.1", "id": 1.5}', "id: expected"),
        (b'{"sender": "s", "recipients": [], "ip": "10.0.0.1", "authenticated": 1}', "true"),
        (b'{"sender": "s", "recipients": [], "ip": "10.0.0.1"} x', "not JSON"),
        (b'\xef\xbb\xbf{"sender": "s", "recipients": [], "ip": "10.0.0.1"}', None),
        (b'  {"sender": "s", "recipients": [], "ip": "10.0.0.1"}  ', None),
    ],
)
def test_lines_off_the_short_way(line: bytes, message: str | None) -> None:
    """Lines the short way does not take: reported by the checked way, or read by it."""
    segments, counts = _Engine(load("SP3"), None).run(1, [line])
    if message is None:
        assert (counts.records, counts.bad, segments) == (1, 0, [])
    else:
        assert counts.bad == 1 and message in segments[0][1], segments


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
record_like = st.fixed_dictionaries(
    {},
    optional={
        "sender": json_values | st.just("s@example.org"),
        "recipients": json_values | st.lists(st.sampled_from(RECIPIENTS), max_size=3),
        "ip": json_values | st.sampled_from([*CLIENTS, "10.0.0.300", "", "010.0.0.1"]),
        "authenticated": json_values,
        "server_ip": json_values | st.sampled_from(["10.0.0.1", "x"]),
        "id": json_values,
    },
)
lines_strategy = st.lists(
    st.one_of(
        st.binary(max_size=40),
        record_like.map(lambda r: json.dumps(r).encode()),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.sampled_from([b"", b"  ", b"\xef\xbb\xbf{}", b"[", b'{"ip": "1.2.3.4"} {}']),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=lines_strategy, compare=st.booleans())
def test_any_line_is_replayed_or_reported_never_raised(lines: list[bytes], compare: bool) -> None:
    """Whatever bytes a log holds, each non-blank line is a record or a bad line,
    reported with its number; output and reports come in line order."""
    engine = _Engine(load("SP3"), load("FIXED") if compare else None)
    segments, counts = engine.run(1, lines)
    blank = sum(1 for line in lines if not line.strip())
    assert counts.records + counts.bad + blank == len(lines)
    reports = [text for is_error, text in segments if is_error]
    assert len(reports) == counts.bad
    numbers = [int(text.split("line ", 1)[1].split(":", 1)[0]) for text in reports]
    assert numbers == sorted(numbers) and all(1 <= n <= len(lines) for n in numbers)
    for text in reports:
        assert text.startswith("imcea replay: line ") and text.endswith("\n")
        assert text.count("\n") == 1
    for is_error, text in segments:
        if not is_error:
            for row in text.splitlines():
                assert json.loads(row)["recipient"] is not None
