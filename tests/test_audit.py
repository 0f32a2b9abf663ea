"""The classic relay-test battery run through ``imcea.audit.audit`` and ``imcea audit``.

The expected relays are derived from the forms of the tricks (their templates), by the
rules of DESIGN §2.4, never from what the code returns:

- a classic trick relays on an open path exactly when its recipient, once the angle
  brackets and an RFC 821 source route are stripped, is the plain ``{user}@{remote}``;
  the percent hack, bang paths, ``user@remote@local`` and quoted local parts are local
  (KB Q244346), and a quoted address with no domain does not parse;
- an encapsulated trick carries the remote address when every layer is ``SMTP`` or
  ``MAILTO`` at our own domain or the server's literal, there are at most 3 layers, the
  prefix is upper case (KB Q271575) and the escapes are valid (lower-case hex is valid).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import imcea
from imcea.audit import audit
from imcea.battery import BATTERY, ENCAPSULATED, Mangle, Trick

REPO = Path(__file__).resolve().parent.parent

OUR = "contoso.com"
SERVER = "192.0.2.10"
OUTSIDER = "203.0.113.5"
ALLOWED = "192.168.0.7"

_SOURCE_ROUTE = re.compile(r"^@[^:]*:")


def plain_remote(trick: Trick) -> bool:
    """A classic trick whose recipient is the remote address itself (after the path's
    brackets and source route are stripped)."""
    if trick.layers:
        return False
    recipient = trick.recipient
    if recipient.startswith("<") and recipient.endswith(">"):
        recipient = recipient[1:-1]
    return _SOURCE_ROUTE.sub("", recipient) == "{user}@{remote}"


def remote_one_off(trick: Trick) -> bool:
    """An encapsulated SMTP/MAILTO one-off of the remote address that decodes and is
    within the nesting bound, every layer at our domain or the server's literal."""
    return (
        bool(trick.layers)
        and trick.inner == "{user}@{remote}"
        and len(trick.layers) <= 3
        and all(layer.addrtype in ("SMTP", "MAILTO") for layer in trick.layers)
        and all(layer.domain in ("{local}", "[{ip}]") for layer in trick.layers)
        and trick.mangle in (None, Mangle.LOWER_HEX)
    )


OPEN_PATH = {t.name for t in BATTERY if plain_remote(t) or remote_one_off(t)}
SP2_BYPASS = {t.name for t in BATTERY if remote_one_off(t)}


def test_expected_sets_are_what_the_kb_articles_say() -> None:
    """The derivations above, spot-checked by name."""
    for name in (
        "nmap-01-null-sender",
        "nmap-02-remote-sender",
        "nmap-12-source-route-literal",
        "nmap-13-source-route-host",
        "maps-14-source-route-host",
        "abuse-05-literal-sender",
        "imcea-smtp",
        "imcea-mailto",
        "imcea-smtp-lower-hex",
        "imcea-smtp-nested-3",
        "imcea-smtp-literal",
    ):
        assert name in OPEN_PATH, name
    for name in (
        "nmap-05-percent-hack-literal",
        "nmap-06-percent-hack-host",
        "nmap-07-quoted-address",
        "nmap-09-double-at-literal",
        "nmap-10-quoted-address-literal",
        "nmap-14-bang-path",
        "nmap-16-bang-path-host",
        "imcea-smtp-lower-prefix",
        "imcea-smtp-nested-4",
        "imcea-smtp-percent-hack",
        "imcea-ex-smtp-payload",
        "imcea-invalid",
        "imcea-smtp-bad-escape",
    ):
        assert name not in OPEN_PATH, name
    expected_bypass = {
        "imcea-smtp",
        "imcea-mailto",
        "imcea-smtp-lower-hex",
        "imcea-smtp-nested-2",
        "imcea-smtp-nested-3",
        "imcea-smtp-literal",
    }
    assert expected_bypass == SP2_BYPASS
    encapsulated = {t.name for t in ENCAPSULATED}
    assert encapsulated >= SP2_BYPASS


# ---------------------------------------------------------------------------
# settings

CLOSED = {
    "reroute": True,
    "release": "SP3",
    "routing": [{"domain": OUR, "action": "inbound"}],
    "server_addresses": [SERVER],
    "restrictions": {"allow": ["192.168.0.0/255.255.255.0"]},
}
OPEN = {
    "reroute": True,
    "release": "SP3",
    "routing": [{"domain": OUR, "action": "inbound"}],
    "server_addresses": [SERVER],
}
SP2_NOREROUTE = {**CLOSED, "reroute": False, "release": "SP2"}

CLOSED_TOML = """\
reroute = true
release = "SP3"
server_addresses = ["192.0.2.10"]

[[routing]]
domain = "contoso.com"
action = "inbound"

[restrictions]
allow = ["192.168.0.0/255.255.255.0"]
"""
OPEN_TOML = """\
reroute = true
release = "SP3"
server_addresses = ["192.0.2.10"]

[[routing]]
domain = "contoso.com"
action = "inbound"
"""
SP2_TOML = CLOSED_TOML.replace("reroute = true", "reroute = false").replace(
    'release = "SP3"', 'release = "SP2"'
)


def relayed(settings: imcea.Settings, ip: str, **kw: object) -> set[str]:
    report = audit(settings, ip, **kw)
    assert [p.trick.name for p in report.probes] == [t.name for t in BATTERY]
    names = set()
    for probe in report.probes:
        decision = probe.decision
        assert probe.relays == (decision.action is imcea.Action.REROUTE)
        if probe.relays:
            names.add(probe.trick.name)
    assert {p.trick.name for p in report.relayed} == names
    return names


# ---------------------------------------------------------------------------
# audit()


def test_default_settings_relay_nothing() -> None:
    assert relayed(imcea.Settings(), OUTSIDER) == set()


def test_closed_configuration_relays_nothing_for_an_outsider() -> None:
    settings = imcea.load_settings(CLOSED)
    report = audit(settings, OUTSIDER)
    assert report.relayed == ()
    reasons = {p.decision.reason for p in report.probes}
    assert imcea.Reason.RELAY_DENIED in reasons
    assert imcea.Reason.ENCAPSULATED_RELAY_DENIED in reasons  # the seed's fix at work
    for probe in report.probes:
        if probe.trick.name in OPEN_PATH:
            assert probe.decision.reply == "550 Relaying is prohibited", probe.trick.name


def test_open_configuration_relays_every_trick_that_reaches_the_remote_domain() -> None:
    settings = imcea.load_settings(OPEN)
    assert relayed(settings, OUTSIDER) == OPEN_PATH
    report = audit(settings, OUTSIDER)
    for probe in report.relayed:
        assert probe.decision.reason is imcea.Reason.OPEN_RELAY
        assert probe.decision.next_hop == report.remote
        assert probe.decision.resolved.lower() == f"relaytest@{report.remote}"


def test_open_configuration_with_other_domains() -> None:
    settings = imcea.load_settings(OPEN)
    assert relayed(settings, OUTSIDER, remote="nmap.scanme.org", local=OUR) == OPEN_PATH


def test_allowed_client_relays_like_an_open_path() -> None:
    settings = imcea.load_settings(CLOSED)
    report = audit(settings, ALLOWED)
    assert {p.trick.name for p in report.relayed} == OPEN_PATH
    for probe in report.relayed:
        assert probe.decision.reason is imcea.Reason.RELAY_ALLOWED_HOST


def test_authenticated_client_relays_like_an_open_path() -> None:
    settings = imcea.load_settings({**CLOSED, "restrictions": {"authenticated": True}})
    assert relayed(settings, OUTSIDER, authenticated=True) == OPEN_PATH
    assert relayed(settings, OUTSIDER) == set()


def test_denied_client_relays_nothing_even_on_an_open_path() -> None:
    settings = imcea.load_settings({**OPEN, "restrictions": {"deny": ["203.0.113.0/24"]}})
    assert relayed(settings, OUTSIDER) == set()
    assert relayed(settings, "198.51.100.1") == OPEN_PATH


@pytest.mark.parametrize("ip", [OUTSIDER, ALLOWED, "10.9.9.9"])
def test_sp2_without_rerouting_relays_the_encapsulated_one_offs(ip: str) -> None:
    """KB Q237927 before the fix: only the encapsulated SMTP/MAILTO tricks (upper-case
    prefix, valid escapes) relay, whoever the client is."""
    settings = imcea.load_settings(SP2_NOREROUTE)
    report = audit(settings, ip)
    assert {p.trick.name for p in report.relayed} == SP2_BYPASS
    for probe in report.relayed:
        assert probe.decision.reason is imcea.Reason.ENCAPSULATED_BYPASS


def test_sp2_with_restrictions_relays_the_one_offs_for_an_outsider() -> None:
    settings = imcea.load_settings({**CLOSED, "release": "SP2"})
    assert relayed(settings, OUTSIDER) == SP2_BYPASS


def test_sp3_fix_closes_what_sp2_left_open() -> None:
    sp2 = relayed(imcea.load_settings(SP2_NOREROUTE), OUTSIDER)
    sp3 = relayed(imcea.load_settings({**SP2_NOREROUTE, "release": "SP3"}), OUTSIDER)
    assert sp2 == SP2_BYPASS and sp3 == set()


NOREROUTE_SETTINGS = [
    pytest.param({}, id="defaults"),
    pytest.param({**CLOSED, "reroute": False}, id="closed"),
    pytest.param({**OPEN, "reroute": False}, id="no-restriction-selected"),
    pytest.param(
        {
            **OPEN,
            "reroute": False,
            "routing": [
                {"domain": OUR, "action": "inbound"},
                {"domain": "relay-target.example", "action": "relay"},
                {"domain": "example", "action": "reroute", "to": "gw.example"},
            ],
            "restrictions": {"authenticated": True, "allow": ["0.0.0.0/0", "::/0"]},
        },
        id="relay-entries-and-allow-everyone",
    ),
]


@pytest.mark.parametrize("source", NOREROUTE_SETTINGS)
@pytest.mark.parametrize(
    "ip", [OUTSIDER, ALLOWED, SERVER, "10.0.0.1", "::1", "::ffff:192.168.0.7", "2001:db8::1"]
)
@pytest.mark.parametrize("authenticated", [False, True])
def test_sp3_without_rerouting_nothing_relays_whatever_the_client(
    source: dict[str, object], ip: str, authenticated: bool
) -> None:
    settings = imcea.load_settings(source)
    assert settings.release is imcea.Release.SP3
    assert relayed(settings, ip, authenticated=authenticated, server_ip=SERVER) == set()


def test_audit_rejects_a_bad_client_address() -> None:
    with pytest.raises(imcea.Error):
        audit(imcea.Settings(), "not-an-ip")


# ---------------------------------------------------------------------------
# the command line


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imcea", "audit", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _json_relays(stdout: str) -> set[str]:
    records = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert [r["name"] for r in records] == [t.name for t in BATTERY]
    return {r["name"] for r in records if r["relays"]}


def test_cli_default_settings_exit_0() -> None:
    result = run_cli("--ip", OUTSIDER)
    assert result.returncode == 0, result.stderr
    assert "RELAYS" not in result.stdout


def test_cli_closed_settings_exit_0(tmp_path: Path) -> None:
    path = tmp_path / "closed.toml"
    path.write_text(CLOSED_TOML, encoding="utf-8")
    result = run_cli("--settings", str(path), "--ip", OUTSIDER, "--json")
    assert result.returncode == 0, result.stderr
    assert _json_relays(result.stdout) == set()


def test_cli_open_settings_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "open.toml"
    path.write_text(OPEN_TOML, encoding="utf-8")
    result = run_cli("--settings", str(path), "--ip", OUTSIDER, "--json")
    assert result.returncode == 1, result.stderr
    assert _json_relays(result.stdout) == OPEN_PATH


def test_cli_allowed_client_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "closed.toml"
    path.write_text(CLOSED_TOML, encoding="utf-8")
    result = run_cli("--settings", str(path), "--ip", ALLOWED, "--json")
    assert result.returncode == 1, result.stderr
    assert _json_relays(result.stdout) == OPEN_PATH


def test_cli_sp2_without_rerouting_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "sp2.toml"
    path.write_text(SP2_TOML, encoding="utf-8")
    result = run_cli("--settings", str(path), "--ip", OUTSIDER)
    assert result.returncode == 1, result.stderr
    flagged = {
        line.split("\t")[1] for line in result.stdout.splitlines() if line.startswith("RELAYS")
    }
    assert flagged == SP2_BYPASS
