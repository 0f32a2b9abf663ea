"""The policy answers for what Postfix will do: sender-routed recipients, and the
``main.cf`` lines of ``imcea postfix-config``.

Postfix's resolver unwraps ``user%remote@local``, ``remote!user@local``,
``"user@remote"@local`` and ``user@remote@local`` (``allow_percent_hack``,
``swap_bangpath``, ``resolve_dequoted_address``, all ``yes`` by default); the IMS reads
them as local parts (KB Q244346).  For a client the IMS would not let relay, such a
recipient must never be answered ``DUNNO``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import imcea
from imcea.paths import Path as RecipientPath
from imcea.paths import parse_path
from imcea.postfix import (
    DUNNO,
    SENDER_ROUTED_REFUSED,
    PolicyRequest,
    Unwrap,
    answer,
    main_cf,
    postfix_reading,
)
from imcea.strategies import relay_tricks

ROOT = Path(__file__).resolve().parents[1]

ALLOWED = "10.0.0.5"
DENIED = "10.0.0.66"
OUTSIDER = "203.0.113.7"
SETTINGS = {
    "reroute": True,
    "server_addresses": ["127.0.0.1"],
    "routing": [
        {"domain": "contoso.com", "action": "inbound"},
        {"domain": "always.example", "action": "relay"},
    ],
    "restrictions": {
        "allow": ["192.168.0.1", "10.0.0.0/255.255.255.0"],
        "deny": ["10.0.0.66"],
    },
}
NEVER_ROUTE = imcea.load_settings(SETTINGS)
WITH_DIRECTORY = imcea.load_settings({**SETTINGS, "directory": ["jdoe@contoso.com"]})
CLOSED = imcea.load_settings({**SETTINGS, "reroute": False, "restrictions": {}})

#: the forms of the relay-hole report, and Postfix's reading of each
SENDER_ROUTED = {
    "x%remote.example@contoso.com": ("x@remote.example", [Unwrap.PERCENT]),
    "x%remote.example@[127.0.0.1]": ("x@remote.example", [Unwrap.PERCENT]),
    "x@remote.example@contoso.com": ("x@remote.example", [Unwrap.AT]),
    "x@remote.example@[127.0.0.1]": ("x@remote.example", [Unwrap.AT]),
    '"x@remote.example"@contoso.com': ("x@remote.example", [Unwrap.AT]),
    '"x@remote.example"@[127.0.0.1]': ("x@remote.example", [Unwrap.AT]),
    "remote.example!x@contoso.com": ("x@remote.example", [Unwrap.BANG]),
    "remote.example!x@[127.0.0.1]": ("x@remote.example", [Unwrap.BANG]),
    # and a few more of the resolver's paths
    "<x%remote.example@contoso.com>": ("x@remote.example", [Unwrap.PERCENT]),
    "<@contoso.com:x%remote.example@contoso.com>": ("x@remote.example", [Unwrap.PERCENT]),
    '"@contoso.com:x@remote.example"@contoso.com': (
        "x@remote.example",
        [Unwrap.AT, Unwrap.ROUTE],
    ),
    "x%remote.example%contoso.com@contoso.com": ("x@remote.example", [Unwrap.PERCENT] * 2),
    "remote.example!x%contoso.com@contoso.com": ("x%contoso.com@remote.example", [Unwrap.BANG]),
    "contoso.com!remote.example!x@contoso.com": ("x@remote.example", [Unwrap.BANG] * 2),
    '"x y%remote.example"@contoso.com': ('"x y"@remote.example', [Unwrap.PERCENT]),
    "x@remote.example@CONTOSO.COM.": ("x@remote.example", [Unwrap.AT]),
}
#: recipients that Postfix and the IMS both keep
STAYS_LOCAL = [
    "jdoe@contoso.com",
    "x%contoso.com@contoso.com",
    "contoso.com!x@contoso.com",
    '"x@contoso.com"@contoso.com',
    "x@contoso.com@[127.0.0.1]",
    "x%@contoso.com",
    "IMCEASMTP-x+40remote+2Eexample@contoso.com",
]


def is_local(domain: str) -> bool:
    return domain.lower().rstrip(".") in ("", "contoso.com", "[127.0.0.1]")


def read(recipient: str, **flags: bool) -> tuple[str, bool, list[Unwrap]]:
    path = parse_path(recipient)
    assert isinstance(path, RecipientPath)
    reading = postfix_reading(path, is_local, **flags)
    return reading.address, reading.local, list(reading.steps)


@pytest.mark.parametrize(("recipient", "expected"), SENDER_ROUTED.items())
def test_postfix_unwraps_sender_routed_forms(
    recipient: str, expected: tuple[str, list[Unwrap]]
) -> None:
    address, local, steps = read(recipient)
    assert (address, steps) == expected
    assert not local


@pytest.mark.parametrize("recipient", STAYS_LOCAL)
def test_postfix_keeps_what_stays_in_the_local_domains(recipient: str) -> None:
    assert read(recipient)[1]


@pytest.mark.parametrize(
    ("recipient", "flag"),
    [
        ("x%remote.example@contoso.com", "percent_hack"),
        ("remote.example!x@contoso.com", "swap_bangpath"),
        ('"x@remote.example"@contoso.com', "resolve_dequoted"),
        ("x@remote.example@contoso.com", "resolve_dequoted"),
    ],
)
def test_each_parameter_turns_its_form_off(recipient: str, flag: str) -> None:
    _, local, steps = read(recipient, **{flag: False})
    assert local and steps == []
    assert not read(recipient)[1]  # and on by default


def test_a_quoted_percent_needs_both_parameters() -> None:
    recipient = '"x y%remote.example"@contoso.com'
    assert read(recipient, resolve_dequoted=False)[1]
    assert read(recipient, percent_hack=False)[1]
    assert not read(recipient)[1]


def rcpt(recipient: str, client: str, **extra: str) -> PolicyRequest:
    return PolicyRequest.from_attributes(
        {
            "request": "smtpd_access_policy",
            "protocol_state": "RCPT",
            "client_address": client,
            "sender": "someone@outside.example",
            "recipient": recipient,
            **extra,
        }.items()
    )


@pytest.mark.parametrize("recipient", list(SENDER_ROUTED))
@pytest.mark.parametrize("client", [DENIED, OUTSIDER])
@pytest.mark.parametrize("bounce", [False, True])
def test_sender_routed_recipients_are_refused_for_clients_that_may_not_relay(
    recipient: str, client: str, bounce: bool
) -> None:
    for ims in (NEVER_ROUTE, WITH_DIRECTORY):
        result = answer(rcpt(recipient, client), ims, bounce_like_ims=bounce)
        assert result.action != DUNNO, result
        if result.reason == SENDER_ROUTED_REFUSED:
            assert result.action == "550 5.7.1 Relaying is prohibited"
            assert "Postfix reads" in result.detail
            parameter = {
                Unwrap.PERCENT: "allow_percent_hack = yes",
                Unwrap.BANG: "swap_bangpath = yes",
                Unwrap.AT: "resolve_dequoted_address = yes",
            }[SENDER_ROUTED[recipient][1][0]]
            assert parameter in result.detail
        else:  # the IMS refuses it by itself (an unknown local part, by default)
            assert result.decision is not None and result.decision.returned
    # without a directory and without --bounce-like-ims the IMS would deliver it:
    # the refusal is the policy's own
    assert answer(rcpt(recipient, client), NEVER_ROUTE).reason == SENDER_ROUTED_REFUSED


def test_the_detail_names_the_clients_refusal() -> None:
    result = answer(rcpt("x%remote.example@contoso.com", DENIED), NEVER_ROUTE)
    assert "never-route list" in result.detail
    assert result.decision is not None
    assert result.decision.reason == imcea.Reason.INBOUND_UNVERIFIED  # the IMS's own view


@pytest.mark.parametrize("recipient", list(SENDER_ROUTED))
def test_a_client_that_may_relay_is_left_to_postfix(recipient: str) -> None:
    assert answer(rcpt(recipient, ALLOWED), NEVER_ROUTE).action == DUNNO
    authenticated = imcea.load_settings({**SETTINGS, "restrictions": {"authenticated": True}})
    request = rcpt(recipient, OUTSIDER, sasl_username="alice")
    assert answer(request, authenticated).action == DUNNO
    assert answer(rcpt(recipient, OUTSIDER), authenticated).action != DUNNO


@pytest.mark.parametrize("recipient", STAYS_LOCAL[:-1])
def test_what_postfix_keeps_local_is_answered_as_the_ims_decides(recipient: str) -> None:
    result = answer(rcpt(recipient, DENIED), NEVER_ROUTE)
    assert result.action == DUNNO
    assert result.reason == "inbound_unverified"


def test_ims_local_parts_keeps_the_ims_reading() -> None:
    for recipient in SENDER_ROUTED:
        result = answer(rcpt(recipient, DENIED), NEVER_ROUTE, ims_local_parts=True)
        if recipient.startswith('"@contoso.com:'):
            continue  # the IMS keeps it too, by its own rules
        assert result.action == DUNNO, recipient


def test_always_relay_entries_and_rerouting_off() -> None:
    # an always-relay destination is permitted for every client (DESIGN §2.3, step 0)
    assert answer(rcpt("x%always.example@contoso.com", DENIED), NEVER_ROUTE).action == DUNNO
    # rerouting off: the IMS relays for nobody, restrictions or not (an open relay
    # by §2.3 would still never be rerouted)
    result = answer(rcpt("x%remote.example@contoso.com", ALLOWED), CLOSED, bounce_like_ims=True)
    assert result.reason == SENDER_ROUTED_REFUSED
    assert "rerouting is off" in result.detail


@settings(max_examples=400, deadline=None)
@given(
    recipient=relay_tricks(
        ["contoso.com"], ["remote.example", "relay-target.example"], server_ips=["127.0.0.1"]
    ),
    client=st.sampled_from([DENIED, OUTSIDER, "198.51.100.9", "2001:db8::1"]),
    ims=st.sampled_from([NEVER_ROUTE, WITH_DIRECTORY, CLOSED]),
    bounce=st.booleans(),
)
def test_no_trick_that_postfix_routes_away_is_answered_dunno(
    recipient: str, client: str, ims: imcea.Settings, bounce: bool
) -> None:
    """The issue's invariant: for a client without §2.3 permission, a recipient whose
    Postfix reading leaves the local domains is never ``DUNNO``."""
    result = answer(rcpt(recipient, client), ims, bounce_like_ims=bounce)
    path = parse_path(recipient)
    if not isinstance(path, RecipientPath) or path.domain is None:
        return  # malformed for the IMS: refused with 553 whatever Postfix makes of it
    reading = postfix_reading(path, is_local)
    always = reading.address.rpartition("@")[2].lower().rstrip(".") == "always.example"
    if reading.local or (always and ims is not CLOSED):
        return
    # rerouting off returns a plain remote recipient by NDR; with --bounce-like-ims it
    # is Postfix's own relay rules (an empty generated mynetworks) that refuse it
    if reading.unwrapped or ims is not CLOSED:
        assert result.action != DUNNO, (recipient, reading, result)


@settings(max_examples=400, deadline=None)
@given(
    recipient=st.one_of(
        relay_tricks(["contoso.com"], ["remote.example"], server_ips=["127.0.0.1"]),
        st.text(st.sampled_from('ab.@%!"\\:<>[] '), min_size=1, max_size=24).map(
            lambda text: text + "@contoso.com"
        ),
    )
)
def test_what_the_policy_skips_postfix_reads_as_written(recipient: str) -> None:
    """The policy asks for Postfix's reading only of a recipient with a ``%``, a ``!`` or
    a second ``@``: any other one Postfix cannot unwrap, whatever its settings."""
    path = parse_path(recipient)
    if not isinstance(path, RecipientPath) or path.domain is None:
        return
    if "%" in recipient or "!" in recipient or recipient.count("@") > 1:
        return
    reading = postfix_reading(path, lambda domain: True)  # every domain local: unwrap all
    assert not reading.unwrapped, (recipient, reading)


# ---------------------------------------------------------------------------
# main.cf


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_main_cf_excludes_never_route_hosts_ahead_of_the_networks() -> None:
    text = main_cf(NEVER_ROUTE)
    assert lines(text) == [
        "mynetworks = !10.0.0.66, 192.168.0.1, 10.0.0.0/24",
        "smtpd_relay_restrictions =",
        "    check_policy_service inet:127.0.0.1:10040,",
        "    permit_mynetworks,",
        "    reject_unauth_destination",
        "allow_percent_hack = no",
        "swap_bangpath = no",
        "resolve_dequoted_address = no",
    ]


def test_main_cf_ipv6_sasl_and_what_postfix_cannot_express() -> None:
    ims = imcea.load_settings(
        {
            "reroute": True,
            "restrictions": {
                "authenticated": True,
                "allow": [
                    "2001:db8::/32",
                    "10.0.0.0/255.0.255.0",  # not a prefix: left out
                    "10.0.0.1/24",  # never matches: left out
                    "172.16.0.0/12",
                    "192.168.0.0/16",
                ],
                "deny": [
                    "2001:db8::bad",
                    "172.16.0.0/255.255.0.255",  # not a prefix: its allow entry goes
                    "198.51.100.1",  # inside no allow entry: not needed
                ],
                "internal": ["10.9.9.9"],
            },
        }
    )
    text = main_cf(ims, policy_service="unix:private/imcea-policy")
    assert lines(text)[:5] == [
        "mynetworks = ![2001:db8::bad], [2001:db8::]/32, 192.168.0.0/16",
        "smtpd_relay_restrictions =",
        "    check_policy_service unix:private/imcea-policy,",
        "    permit_mynetworks,",
        "    permit_sasl_authenticated,",
    ]
    assert "restrictions.allow[1] 10.0.0.0/255.0.255.0: a mask Postfix cannot express" in text
    assert "restrictions.allow[2] 10.0.0.1/24: host bits outside its mask" in text
    assert "restrictions.allow[3] 172.16.0.0/12: holds a never-route entry" in text
    assert "restrictions.internal" in text


@pytest.mark.parametrize(
    ("ims", "why"),
    [
        (imcea.Settings(), "reroute is off"),
        (imcea.load_settings({"reroute": True}), "open relay"),
        (imcea.load_settings({"reroute": True, "restrictions": {"deny": ["10.0.0.1"]}}), "open"),
    ],
)
def test_main_cf_never_trusts_anyone_the_ims_would_not(ims: imcea.Settings, why: str) -> None:
    text = main_cf(ims)
    assert why in text
    assert lines(text)[:4] == [
        "mynetworks = ",
        "smtpd_relay_restrictions =",
        "    check_policy_service inet:127.0.0.1:10040,",
        "    reject_unauth_destination",
    ]


@pytest.mark.parametrize("service", ["", "inet:a b", "inet:x,permit"])
def test_main_cf_refuses_a_bad_service(service: str) -> None:
    with pytest.raises(imcea.Error, match="policy service"):
        main_cf(NEVER_ROUTE, policy_service=service)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "imcea", *args], capture_output=True, text=True, env=env
    )


def test_postfix_config_command(tmp_path: Path) -> None:
    path = tmp_path / "ims.toml"
    path.write_text(
        'reroute = true\n[restrictions]\nallow = ["10.0.0.0/24"]\ndeny = ["10.0.0.66"]\n'
    )
    result = run("postfix-config", "--settings", str(path))
    assert result.returncode == 0, result.stderr
    assert "mynetworks = !10.0.0.66, 10.0.0.0/24\n" in result.stdout
    assert result.stdout == main_cf(imcea.load_settings(path))
    bad = run("postfix-config", "--settings", str(tmp_path / "missing.toml"))
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert len(bad.stderr.splitlines()) == 1
