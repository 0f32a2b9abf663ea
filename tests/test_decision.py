"""The Exchange 5.5 IMS decision (DESIGN §2), one recipient at a time.

The decision table itself is data: the policy case files of ``tests/cases``, run by the
imcea pytest plugin and held here to the reasons table.  Every expected value there and
below is read off DESIGN §2.3 / §2.4 (the reasons table gives the
action, the RCPT reply and the NDR of each reason) and the KB articles it cites:

- Q237927 (the seed): encapsulated SMTP one-offs are rerouted even when the IMS does not
  reroute; fixed in SP3, where they are returned (rerouting off) or obey the routing
  restrictions (rerouting on).
- Q193922, Q196626, Q260562: the Routing Restrictions (RelayFlags, allow / internal / deny
  lists); nothing selected is an open relay; "550 relaying prohibited" at RCPT.
- Q169683, Q217217: routing-table matching (whole labels, ``#`` exact entries, longest wins).
- Q195969: 'Override relay restrictions. Always "relay"'.
- Q190710: reroute to another domain.
- Q193316: ``user@[ip]`` is inbound when the literal is one of the server's addresses.
- Q244346: the percent hack and friends are never relayed on.
- Q245045: IMCEAEX delivery.  Q271575: the IMCEA prefix is case-sensitive.
"""

from __future__ import annotations

import collections.abc
import copy
import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from expected import NDR_NOT_REROUTED, REASONS_TABLE, check_against_table

import imcea
from imcea import Action, Reason
from imcea.cases import Case, CaseFile, load_cases

OUR = "contoso.com"
SERVER = "192.0.2.10"
INTERNAL_IF = "10.0.0.1"
OUTSIDER = "203.0.113.5"
ALLOWED = "192.168.0.7"
SEED_HOST = "192.168.0.1"  # the server the seed wants to let relay

RELAY_PROHIBITED = "550 Relaying is prohibited"

# The seed's recipient: user@example.com encapsulated at our (inbound) domain.
SEED = "IMCEASMTP-user+40example+2Ecom@contoso.com"
EX_DN = "/O=ORG/OU=SITE/CN=RECIPIENTS/CN=JDOE"
IMCEAEX = "IMCEAEX-_O=ORG_OU=SITE_CN=RECIPIENTS_CN=JDOE@contoso.com"
X400 = "IMCEAX400-c=US+3Ba=+20+3Bp=MS+3Bo=PARIS+3Bs=user+3B@contoso.com"


def nested(levels: int, inner: str = "user@example.net", domain: str = OUR) -> str:
    """*inner* encapsulated *levels* times as an SMTP one-off at *domain*."""
    address = inner
    for _ in range(levels):
        address = imcea.encode("SMTP", address, domain)
    return address


# ---------------------------------------------------------------------------
# settings as the mapping load_settings takes

CLOSED = {"allow": ["192.168.0.0/255.255.255.0"]}  # Q193922: the dotted-mask form
INBOUND = {"domain": OUR, "action": "inbound"}
ALWAYS = {"domain": "always.example", "action": "relay"}
PARTNER = {"domain": "partner.example", "action": "reroute", "to": "mail.partner.example"}


def cfg(**overrides: Any) -> dict[str, Any]:
    """Rerouting on, SP3, our domain inbound, the server's address; *overrides* on top."""
    base: dict[str, Any] = {
        "reroute": True,
        "release": "SP3",
        "routing": [INBOUND],
        "server_addresses": [SERVER],
    }
    base.update(overrides)
    return base


OPEN = cfg()
RESTRICTED = cfg(restrictions=CLOSED)


def ok(addr: str) -> str:
    return f"250 OK - Recipient <{addr}>"


# ---------------------------------------------------------------------------
# the decision table: policy case files, tests/cases/imcea_*.toml
#
# Each row of the table is a case of a case file (one file per settings), run by the imcea
# pytest plugin, which checks what the case expects: action, reason and, where given, the
# reply, the NDR, the resolved address and the next hop.  Here every case is run again and
# its decision held to the rules that hold for every decision (the reasons table).

CASES = Path(__file__).resolve().parent / "cases"
TABLE: list[tuple[CaseFile, Case]] = [
    (case_file, case)
    for path in sorted(CASES.glob("imcea_*.toml"))
    for case_file in [load_cases(path)]
    for case in case_file
]


def _bare(recipient: str) -> str:
    text = recipient.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    return text


@pytest.mark.parametrize(("case_file", "case"), TABLE, ids=[case.name for _, case in TABLE])
def test_decision_table(case_file: CaseFile, case: Case) -> None:
    outcome = case.run(case_file.settings)
    decision = outcome.actual
    assert outcome.passed, outcome.summary()
    assert decision.recipient == case.recipient
    check_against_table(decision)
    # a plain address (bracketed or not) accepted at RCPT is echoed in angle brackets
    bare = _bare(case.recipient)
    if decision.reply.startswith("250") and not set(bare) & set(' "\\') and bare[0] != "@":
        assert decision.reply == ok(bare)


def test_table_covers_every_reason() -> None:
    covered = {case.expected.reason for _, case in TABLE}
    assert covered == set(Reason)
    assert set(REASONS_TABLE) == set(Reason)


def test_table_cases_agree_with_reasons_table() -> None:
    for _, case in TABLE:
        assert case.expected.reason is not None, case.name
        assert REASONS_TABLE[case.expected.reason][0] is case.expected.action, case.name


def test_table_names_are_unique_and_cases_numerous() -> None:
    names = [case.name for _, case in TABLE]
    assert len(names) == len(set(names))
    assert len(TABLE) >= 120


def test_reason_and_action_values() -> None:
    assert {a.value for a in Action} == {"deliver", "reroute", "return"}
    assert {r.value for r in Reason} == {r.value for r in REASONS_TABLE}
    for reason in Reason:
        assert isinstance(reason, str)
        assert reason == reason.value
        assert reason.value == reason.name.lower()


# ---------------------------------------------------------------------------
# the decide() API


def _decide(recipients: list[str], ip: Any = OUTSIDER, settings: Any = None, **kw: Any):
    if settings is None:
        settings = imcea.load_settings(RESTRICTED)
    return imcea.decide(imcea.Envelope("<s@example.org>", recipients), ip, settings, **kw)


def test_one_decision_per_recipient_in_order() -> None:
    recipients = [
        "alice@contoso.com",
        "user@",
        "user@example.net",
        "Postmaster",
        SEED,
        "alice@contoso.com",
    ]
    verdict = _decide(recipients)
    assert isinstance(verdict, collections.abc.Sequence)
    assert len(verdict) == len(recipients)
    assert [d.recipient for d in verdict] == recipients
    assert [d.reason for d in verdict] == [
        Reason.INBOUND_UNVERIFIED,
        Reason.MALFORMED_ADDRESS,
        Reason.RELAY_DENIED,
        Reason.POSTMASTER,
        Reason.ENCAPSULATED_RELAY_DENIED,
        Reason.INBOUND_UNVERIFIED,
    ]
    assert verdict[0] == verdict[-1]
    assert list(verdict[1:3]) == list(verdict)[1:3]
    for decision in verdict:
        assert isinstance(decision, imcea.Decision)
        check_against_table(decision)


def test_empty_envelope_gives_empty_verdict() -> None:
    verdict = _decide([])
    assert len(verdict) == 0
    assert list(verdict) == []


@pytest.mark.parametrize(
    "ip",
    [
        ALLOWED,
        ipaddress.IPv4Address(ALLOWED),
        "::ffff:192.168.0.7",
        ipaddress.IPv6Address("::ffff:192.168.0.7"),
        ipaddress.ip_address("::ffff:c0a8:7"),
    ],
    ids=["str", "IPv4Address", "mapped-str", "mapped-IPv6Address", "mapped-hex"],
)
def test_sender_ip_forms_are_equivalent(ip: Any) -> None:
    verdict = _decide(["user@example.net"], ip)
    assert verdict[0].action is Action.REROUTE
    assert verdict[0].reason is Reason.RELAY_ALLOWED_HOST


@pytest.mark.parametrize("ip", ["::ffff:203.0.113.5", ipaddress.IPv6Address("::ffff:203.0.113.5")])
def test_ipv4_mapped_client_on_deny_list_is_denied(ip: Any) -> None:
    settings = imcea.load_settings(cfg(restrictions={**CLOSED, "deny": ["203.0.113.0/24"]}))
    verdict = _decide(["user@example.net"], ip, settings)
    assert verdict[0].reason is Reason.DENIED_HOST


@pytest.mark.parametrize(
    "server_ip", [INTERNAL_IF, ipaddress.IPv4Address(INTERNAL_IF), "::ffff:10.0.0.1"]
)
def test_server_ip_forms_are_equivalent(server_ip: Any) -> None:
    settings = imcea.load_settings(
        cfg(server_addresses=[SERVER, INTERNAL_IF], restrictions={"internal": [INTERNAL_IF]})
    )
    verdict = _decide(["user@example.net"], OUTSIDER, settings, server_ip=server_ip)
    assert verdict[0].reason is Reason.RELAY_INTERNAL_INTERFACE


BAD_IPS = [
    pytest.param("garbage", id="garbage"),
    pytest.param("", id="empty"),
    pytest.param("10.0.0.0/8", id="network-str"),
    pytest.param(ipaddress.ip_network("10.0.0.0/8"), id="network-object"),
    pytest.param("10.0.0.256", id="octet-out-of-range"),
    pytest.param(167772161, id="int"),
    pytest.param(b"10.0.0.1", id="bytes"),
    pytest.param(["10.0.0.1"], id="list"),
]


@pytest.mark.parametrize("ip", [*BAD_IPS, pytest.param(None, id="None")])
def test_invalid_sender_ip_raises_error(ip: Any) -> None:
    with pytest.raises(imcea.Error):
        _decide(["user@example.net"], ip)


@pytest.mark.parametrize("server_ip", BAD_IPS)
def test_invalid_server_ip_raises_error(server_ip: Any) -> None:
    with pytest.raises(imcea.Error):
        _decide(["user@example.net"], OUTSIDER, server_ip=server_ip)


@pytest.mark.parametrize(
    "recipient",
    [
        "",
        " ",
        "<",
        ">",
        "<<user@example.net>>",
        "@",
        "@@",
        "\x00user@contoso.com",
        "user@contoso.com\r\nRCPT TO:<x@example.net>",
        "<@contoso.com>",
        "<@contoso.com:>",
        '"',
        "\\",
        "user@[]",
        "user@[IPv6:nonsense]",
        "user@[1.2.3.4.5]",
        "IMCEASMTP-",
        "x" * 5000 + "@contoso.com",
    ],
)
def test_malformed_recipient_is_a_return_never_an_exception(recipient: str) -> None:
    verdict = _decide([recipient, "alice@contoso.com"], settings=imcea.load_settings(OPEN))
    decision = verdict[0]
    assert decision.recipient == recipient
    assert decision.action is Action.RETURN
    check_against_table(decision)
    assert verdict[1].reason is Reason.INBOUND_UNVERIFIED


def test_decide_is_pure() -> None:
    source = cfg(
        routing=[INBOUND, ALWAYS, PARTNER],
        restrictions={**CLOSED, "authenticated": True, "deny": ["192.168.0.66"]},
        directory=["alice@contoso.com", EX_DN],
        gateways=["X400"],
    )
    pristine = copy.deepcopy(source)
    settings = imcea.load_settings(source)
    twin = imcea.load_settings(copy.deepcopy(source))
    recipients = [
        "alice@contoso.com",
        "bob@contoso.com",
        "user@example.net",
        "user@always.example",
        "user@partner.example",
        SEED,
        IMCEAEX,
        X400,
        nested(4),
        "user@",
        "Postmaster",
    ]
    envelope = imcea.Envelope("<s@example.org>", recipients)
    first = imcea.decide(envelope, OUTSIDER, settings)
    allowed = imcea.decide(envelope, ALLOWED, settings)
    second = imcea.decide(envelope, OUTSIDER, settings)
    assert list(first) == list(second)
    assert first == second
    assert list(allowed) != list(first)  # the client matters, and is not remembered
    assert [d.action for d in second].count(Action.REROUTE) == 1  # only always.example
    assert settings == twin
    assert source == pristine


def test_permission_is_not_shared_between_calls() -> None:
    settings = imcea.load_settings(RESTRICTED)
    outcomes = [
        _decide(["user@example.net"], ip, settings)[0].reason
        for ip in (ALLOWED, OUTSIDER, ALLOWED, "192.168.1.1")
    ]
    assert outcomes == [
        Reason.RELAY_ALLOWED_HOST,
        Reason.RELAY_DENIED,
        Reason.RELAY_ALLOWED_HOST,
        Reason.RELAY_DENIED,
    ]


def test_many_clients_each_get_their_own_answer() -> None:
    """Purity over many calls: thousands of distinct clients, in str and ipaddress form,
    interleaved and repeated, each decided by the allow list alone (Q193922)."""
    settings = imcea.load_settings(cfg(restrictions={"allow": ["192.168.0.0/255.255.248.0"]}))
    envelope = imcea.Envelope("<s@example.org>", ["user@example.net"])
    clients = [f"192.168.{i // 250}.{i % 250 + 1}" for i in range(5000)]
    order = clients + clients[:300] + clients[-300:]
    for n, text in enumerate(order):
        client: Any = ipaddress.IPv4Address(text) if n % 3 == 0 else text
        if n % 7 == 0:
            client = f"::ffff:{text}"
        decision = imcea.decide(envelope, client, settings)[0]
        third = int(text.split(".")[2])
        expected = Reason.RELAY_ALLOWED_HOST if third < 8 else Reason.RELAY_DENIED
        assert decision.reason is expected, (text, decision)


def test_remembered_decisions_equal_fresh_ones() -> None:
    """Decisions are remembered with the settings; reusing them must change nothing.

    The same recipients are decided for clients that may and may not relay, in turns,
    on one settings value, and each decision is compared with one made on a fresh copy
    of the settings (which remembers nothing yet)."""
    data = cfg(
        server_addresses=[SERVER],
        directory=["alice@contoso.com", EX_DN],
        restrictions={"allow": [ALLOWED], "deny": ["10.9.9.9"], "authenticated": True},
        routing=[
            {"domain": "contoso.com", "action": "inbound"},
            {"domain": "always.example", "action": "relay"},
        ],
    )
    shared = imcea.load_settings(data)
    recipients = [
        "alice@contoso.com",
        "bob@contoso.com",
        "user@example.net",
        "IMCEASMTP-user+40example+2Enet@contoso.com",
        IMCEAEX,
        "x@always.example",
        f"user@[{SERVER}]",
        "bad address",
        "Postmaster",
        "u" * 300 + "@example.net",
    ]
    clients = [(ALLOWED, False), (OUTSIDER, False), ("10.9.9.9", False), (OUTSIDER, True)]
    for _ in range(3):
        for client, auth in clients:
            for recipient in recipients:
                envelope = imcea.Envelope("s@example.org", [recipient])
                got = imcea.decide(envelope, client, shared, authenticated=auth)[0]
                fresh = imcea.load_settings(data)
                want = imcea.decide(envelope, client, fresh, authenticated=auth)[0]
                assert got == want, (client, auth, recipient)


def test_authenticated_and_server_ip_are_per_call() -> None:
    settings = imcea.load_settings(
        cfg(
            server_addresses=[SERVER, INTERNAL_IF],
            restrictions={"authenticated": True, "internal": [INTERNAL_IF]},
        )
    )
    assert _decide(["u@example.net"], OUTSIDER, settings, authenticated=True)[0].reason is (
        Reason.RELAY_AUTHENTICATED
    )
    assert _decide(["u@example.net"], OUTSIDER, settings)[0].reason is Reason.RELAY_DENIED
    assert _decide(["u@example.net"], OUTSIDER, settings, server_ip=INTERNAL_IF)[0].reason is (
        Reason.RELAY_INTERNAL_INTERFACE
    )
    assert _decide(["u@example.net"], OUTSIDER, settings, server_ip=SERVER)[0].reason is (
        Reason.RELAY_DENIED
    )


# ---------------------------------------------------------------------------
# the seed (KB Q237927), end to end


def _seed(settings: dict[str, Any], ip: str = SEED_HOST) -> imcea.Decision:
    verdict = imcea.decide(
        imcea.Envelope("<admin@othersite.example>", [SEED]), ip, imcea.load_settings(settings)
    )
    return verdict[0]


def test_seed_rerouting_disabled() -> None:
    """'After you apply the fix, if rerouting is disabled, the IMS returns all messages
    that are sent to an encapsulated SMTP one-off address.'  Before it: rerouted."""
    after = _seed(cfg(reroute=False, release="SP3"))
    assert after.action is Action.RETURN
    assert after.reason is Reason.ENCAPSULATED_NOT_REROUTED
    assert after.reply == ok(SEED)  # accepted at RCPT, returned afterwards
    assert after.ndr == NDR_NOT_REROUTED
    before = _seed(cfg(reroute=False, release="SP2"))
    assert before.action is Action.REROUTE
    assert before.reason is Reason.ENCAPSULATED_BYPASS
    assert (before.resolved, before.next_hop) == ("user@example.com", "example.com")


def test_seed_rerouting_enabled_restrictions_refuse() -> None:
    """'If rerouting is enabled, but one or more routing restrictions have been defined,
    the messages are rerouted or returned based on these restrictions.'"""
    restricted = {"allow": ["10.1.0.0/16"], "authenticated": True}
    after = _seed(cfg(release="SP3", restrictions=restricted))
    assert after.action is Action.RETURN
    assert after.reason is Reason.ENCAPSULATED_RELAY_DENIED
    assert after.reply == RELAY_PROHIBITED
    assert after.ndr is None
    before = _seed(cfg(release="SP2", restrictions=restricted))
    assert before.action is Action.REROUTE
    assert before.reason is Reason.ENCAPSULATED_BYPASS


def test_seed_site_connector_192_168_0_1() -> None:
    """The side effect: SP2 let 192.168.0.1 relay though it was not in the list; after
    the fix it no longer works, until 192.168.0.1 is added to the list."""
    missing = cfg(site_connector=True, restrictions={"allow": ["10.1.0.0/16"]})
    added = cfg(site_connector=True, restrictions={"allow": ["10.1.0.0/16", SEED_HOST]})

    sp2 = _seed({**missing, "release": "SP2"})
    assert sp2.action is Action.REROUTE  # "relay mail ... even if you had not added"
    assert sp2.reason is Reason.ENCAPSULATED_BYPASS

    sp3 = _seed({**missing, "release": "SP3"})
    assert sp3.action is Action.RETURN  # "mail relaying from 192.168.0.1 no longer works"
    assert sp3.reason is Reason.ENCAPSULATED_RELAY_DENIED
    assert sp3.reply == RELAY_PROHIBITED

    fixed = _seed({**added, "release": "SP3"})
    assert fixed.action is Action.REROUTE  # "restore proper functionality by adding"
    assert fixed.reason is Reason.RELAY_ALLOWED_HOST
    assert (fixed.resolved, fixed.next_hop) == ("user@example.com", "example.com")

    # other hosts stay refused after the fix
    assert _seed({**added, "release": "SP3"}, "192.168.0.2").reason is (
        Reason.ENCAPSULATED_RELAY_DENIED
    )


def test_seed_do_not_reroute_delivers_gal_and_returns_the_rest() -> None:
    """'messages addressed to recipients that are listed in the global address list are
    delivered, but all other messages are normally returned with an NDR.'"""
    settings = imcea.load_settings(
        cfg(reroute=False, directory=["alice@contoso.com", "SMTP:bob@contoso.com", EX_DN])
    )
    recipients = [
        "alice@contoso.com",
        "<BOB@contoso.com>",
        "carol@contoso.com",
        "user@example.net",
        "user%example.net@contoso.com",
        "user@[198.51.100.7]",
        SEED,
    ]
    verdict = imcea.decide(imcea.Envelope("<x@example.org>", recipients), OUTSIDER, settings)
    delivered = [d.recipient for d in verdict if d.action is Action.DELIVER]
    assert delivered == ["alice@contoso.com", "<BOB@contoso.com>"]
    for decision in verdict[2:]:
        assert decision.action is Action.RETURN
        assert decision.reply.startswith("250 ")  # accepted, then an NDR
        assert decision.ndr
    assert Action.REROUTE not in {d.action for d in verdict}


@pytest.mark.parametrize(
    "call",
    [
        lambda: imcea.Envelope(None, ["a@example.org"]),  # type: ignore[arg-type]
        lambda: imcea.Envelope(b"a@example.org", ["a@example.org"]),  # type: ignore[arg-type]
        lambda: imcea.check(None),  # type: ignore[arg-type]
        lambda: imcea.replay(None, imcea.Settings()),  # type: ignore[arg-type]
        lambda: imcea.replay("not a list", imcea.Settings()),
    ],
    ids=["sender-none", "sender-bytes", "check-none", "replay-none", "replay-str"],
)
def test_wrong_argument_types_raise_imcea_error(call: Callable[[], object]) -> None:
    with pytest.raises(imcea.Error):
        call()
