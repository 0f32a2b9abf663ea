"""imcea.Decider: the same verdicts as imcea.decide(), what it remembers kept within its
bounds, safe to share between threads, pickled as its settings; and Settings, which
remembers nothing, as the value it is."""

from __future__ import annotations

import gc
import ipaddress
import pickle
import re
import threading
import weakref
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imcea
import imcea.decider
from imcea import strategies

LOCAL = ("contoso.com", "mail.example")

MAPPING: dict[str, Any] = {
    "reroute": True,
    "server_addresses": ["192.0.2.10", "10.0.0.1"],
    "directory": [f"user{n}@contoso.com" for n in range(50)],
    "routing": [
        {"domain": "contoso.com", "action": "inbound"},
        {"domain": "#exact.example", "action": "relay"},
        {"domain": "partner.example", "action": "reroute", "to": "mx.partner.example"},
    ],
    "restrictions": {
        "authenticated": True,
        "allow": ["10.0.0.0/255.255.255.0", "2001:db8::/32"],
        "internal": ["10.0.0.1"],
        "deny": ["10.0.0.66"],
    },
}

CONFIG = imcea.load_settings(MAPPING)


def envelopes(count: int) -> list[tuple[imcea.Envelope, str, bool, str | None]]:
    """Envelopes of many different recipients and clients (most seen once)."""
    out = []
    for n in range(count):
        recipients = [
            f"user{n % 60}@contoso.com",
            f"someone{n}@h{n % 97}.partner.example",
            f"x{n}@exact.example",
            imcea.encode("SMTP", f"y{n}@far{n % 13}.example", "contoso.com"),
        ][: 1 + n % 4]
        ip = ("10.0.0.5", f"203.0.{n % 250}.{n % 199}", "10.0.0.66", " ::ffff:10.0.0.9 ")[n % 4]
        server = (None, "10.0.0.1", "192.0.2.10")[n % 3]
        out.append((imcea.Envelope("s@x.example", recipients), ip, n % 5 == 0, server))
    return out


def test_a_decider_decides_what_decide_decides() -> None:
    config = imcea.load_settings(MAPPING)
    decider = imcea.Decider(config)
    for _ in range(2):  # the second time, from what it remembered
        for envelope, ip, authenticated, server in envelopes(600):
            got = decider.decide(envelope, ip, authenticated=authenticated, server_ip=server)
            want = imcea.decide(envelope, ip, config, authenticated=authenticated, server_ip=server)
            assert got == want


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), config=strategies.settings())
def test_a_decider_agrees_with_decide_on_any_settings(data: st.DataObject, config: Any) -> None:
    decider = imcea.Decider(config)
    recipients = data.draw(st.lists(strategies.relay_tricks(LOCAL), min_size=1, max_size=4))
    for ip in data.draw(st.lists(strategies.client_ips(config), min_size=1, max_size=3)):
        for authenticated in (False, True):
            envelope = imcea.Envelope("s@x.example", recipients)
            want = imcea.decide(envelope, ip, config, authenticated=authenticated)
            assert decider.decide(envelope, ip, authenticated=authenticated) == want
            assert decider.decide(envelope, str(ip), authenticated=authenticated) == (
                imcea.decide(envelope, str(ip), config, authenticated=authenticated)
            )


def test_what_a_decider_remembers_stays_within_its_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(imcea.decider, "ROUTES_REMEMBERED", 50)
    monkeypatch.setattr(imcea.decider, "CLIENTS_REMEMBERED", 40)
    config = imcea.load_settings(MAPPING)
    decider = imcea.Decider(config)
    for envelope, ip, authenticated, server in envelopes(3000):
        decider.decide(envelope, ip, authenticated=authenticated, server_ip=server)
        assert len(decider._routes) <= 50
        assert len(decider._permissions) <= 40
    assert decider._routes and decider._permissions  # it did remember


def test_remembered_routing_entries_are_those_of_a_fresh_search(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Thousands of lookups (most domains new, some again) through a memory of 50
    domains give what the settings' own lookup gives."""
    monkeypatch.setattr(imcea.decider, "ROUTES_REMEMBERED", 50)
    config = imcea.load_settings(MAPPING)
    decider = imcea.Decider(config)
    names = []
    for n in range(600):
        names += [f"h{n}.contoso.com", f"h{n}.partner.example", "exact.example"]
        names += [f"a.exact.example{'' if n % 2 else '.x'}", f"other{n % 70}.example"]
    for name in names:
        assert decider.route(name) == config.lookup_route(name), name
        assert len(decider._routes) <= 50
    assert decider.route("a.contoso.com") is config.routing[0]
    assert decider.route("exact.example") is config.routing[1]
    assert decider.route("sub.exact.example") is None


def test_a_decider_may_be_shared_by_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads deciding at once through one decider whose memories fill and empty all
    the time get the verdicts of decide()."""
    monkeypatch.setattr(imcea.decider, "ROUTES_REMEMBERED", 8)
    monkeypatch.setattr(imcea.decider, "CLIENTS_REMEMBERED", 8)
    config = imcea.load_settings(MAPPING)
    work = envelopes(400)
    want = [imcea.decide(e, ip, config, authenticated=a, server_ip=s) for e, ip, a, s in work]
    decider = imcea.Decider(config)
    failures: list[str] = []

    def run(offset: int) -> None:
        for i in range(len(work)):
            k = (i + offset) % len(work)
            envelope, ip, authenticated, server = work[k]
            got = decider.decide(envelope, ip, authenticated=authenticated, server_ip=server)
            if got != want[k]:
                failures.append(f"{k}: {got} != {want[k]}")

    threads = [threading.Thread(target=run, args=(n * 97,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_a_decider_pickles_as_its_settings() -> None:
    config = imcea.load_settings(MAPPING)
    decider = imcea.Decider(config)
    for envelope, ip, authenticated, server in envelopes(500):
        decider.decide(envelope, ip, authenticated=authenticated, server_ip=server)
    data = pickle.dumps(decider)
    assert len(data) < len(pickle.dumps(config)) + 100
    again = pickle.loads(data)
    assert type(again) is imcea.Decider and again.settings == config
    assert not again._routes and not again._permissions and again._last is None
    envelope, ip, authenticated, server = envelopes(1)[0]
    assert again.decide(envelope, ip) == decider.decide(envelope, ip)
    assert repr(decider) == f"Decider({config!r})"


def test_a_used_settings_value_pickles_as_a_fresh_one() -> None:
    used = imcea.load_settings(MAPPING)
    decider = imcea.Decider(used)
    for envelope, ip, authenticated, server in envelopes(2000):
        imcea.decide(envelope, ip, used, authenticated=authenticated, server_ip=server)
        decider.decide(envelope, ip, authenticated=authenticated, server_ip=server)
    fresh = imcea.load_settings(MAPPING)
    assert pickle.dumps(used) == pickle.dumps(fresh)
    assert pickle.loads(pickle.dumps(used)) == fresh
    assert hash(used) == hash(fresh) and used == fresh


def test_settings_hold_no_memory() -> None:
    assert not hasattr(imcea.Settings, "memo")
    config = imcea.load_settings(MAPPING)
    before = {name: getattr(config, name) for name in config.__slots__ if hasattr(config, name)}
    imcea.decide(imcea.Envelope("s@x.example", ["a@h.partner.example"]), "10.0.0.5", config)
    after = {name: getattr(config, name) for name in config.__slots__ if hasattr(config, name)}
    assert before == after


def test_settings_are_freed_without_the_cyclic_collector() -> None:
    """Nothing that decide() or a decider leaves behind points back at the settings."""
    config = imcea.load_settings(MAPPING)
    ref = weakref.ref(config)
    gc.disable()
    try:
        for envelope, ip, authenticated, server in envelopes(200):
            imcea.decide(envelope, ip, config, authenticated=authenticated, server_ip=server)
        decider = imcea.Decider(config)
        for envelope, ip, authenticated, server in envelopes(200):
            decider.decide(envelope, ip, authenticated=authenticated, server_ip=server)
        del decider, config
        assert ref() is None
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("10.0.0.300",), "sender_ip: '10.0.0.300' is not an IP address"),
        ((b"10.0.0.1",), "sender_ip: b'10.0.0.1' is not an IP address"),
        (("10.0.0.1", "nope"), "server_ip: 'nope' is not an IP address"),
    ],
)
def test_a_decider_refuses_what_decide_refuses(arguments: tuple[Any, ...], message: str) -> None:
    decider = imcea.Decider(imcea.load_settings(MAPPING))
    envelope = imcea.Envelope("s@x.example", ["a@contoso.com"])
    ip, *server = arguments
    for _ in range(2):  # a refused client is not remembered
        with pytest.raises(imcea.Error, match=re.escape(message)):
            decider.decide(envelope, ip, server_ip=server[0] if server else None)
        with pytest.raises(imcea.Error, match=re.escape(message)):
            imcea.decide(envelope, ip, decider.settings, server_ip=server[0] if server else None)


def test_a_decider_needs_settings() -> None:
    with pytest.raises(imcea.Error, match=r"settings: expected an imcea\.Settings, got dict"):
        imcea.Decider(MAPPING)  # type: ignore[arg-type]


def test_the_last_client_is_read_again_when_anything_about_it_differs() -> None:
    """The decider keeps the client of its last call; a call that differs in the address,
    its form, the authentication or the server address reads the client afresh."""
    config = imcea.load_settings(MAPPING)
    decider = imcea.Decider(config)
    envelope = imcea.Envelope("a@b.example", ["x@remote.example"])
    calls: list[tuple[object, object, object]] = [
        ("203.0.113.9", False, None),
        ("203.0.113.9", True, None),
        ("203.0.113.9", 1, None),
        ("203.0.113.9", False, "10.0.0.1"),
        ("203.0.113.9", False, ipaddress.ip_address("10.0.0.1")),
        (ipaddress.ip_address("203.0.113.9"), False, None),
        (" 203.0.113.9 ", False, None),
        ("::ffff:203.0.113.9", False, None),
        ("10.1.2.3", False, None),
        ("203.0.113.9", False, None),
    ]
    for ip, authenticated, server in calls + calls[::-1] + calls:
        got = decider.decide(envelope, ip, authenticated=authenticated, server_ip=server)  # type: ignore[arg-type]
        want = imcea.decide(envelope, ip, config, authenticated=authenticated, server_ip=server)  # type: ignore[arg-type]
        assert got == want, (ip, authenticated, server)


def test_one_recipient_is_decided_as_in_any_envelope() -> None:
    config = imcea.load_settings(MAPPING)
    decider = imcea.Decider(config)
    for envelope, ip, authenticated, server in envelopes(400):
        verdict = imcea.decide(envelope, ip, config, authenticated=authenticated, server_ip=server)
        for recipient, decision in zip(envelope.recipients, verdict, strict=True):
            got = decider.decide_recipient(
                recipient, ip, authenticated=authenticated, server_ip=server
            )
            assert got == decision


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    recipient=strategies.relay_tricks(LOCAL) | st.text(max_size=60),
    ip=strategies.client_ips(CONFIG),
)
def test_one_recipient_against_the_envelope_for_any_recipient(recipient: str, ip: Any) -> None:
    config = CONFIG
    envelope = imcea.Envelope("s@x.example", [recipient])
    want = imcea.decide(envelope, ip, config)[0]
    assert imcea.Decider(config).decide_recipient(recipient, ip) == want


@pytest.mark.parametrize("recipient", [None, b"user@contoso.com", ["user@contoso.com"], 7])
def test_one_recipient_must_be_a_string(recipient: object) -> None:
    decider = imcea.Decider(imcea.load_settings(MAPPING))
    with pytest.raises(imcea.Error, match=r"^recipient: expected a string"):
        decider.decide_recipient(recipient, "10.0.0.5")  # type: ignore[arg-type]
