"""Contoso's policy invariant, tested with the imcea strategies: no outsider can relay.

An outsider is a client that does not authenticate, whose address is in no allow entry
and that does not connect to an internal interface.  Whatever recipient it sends, the
IMS may reroute it only to a domain that the routing table always relays.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import imcea
from imcea.networks import IPAddress
from imcea.strategies import client_ips, encapsulated_addresses, relay_tricks

SETTINGS = imcea.load_settings(Path(__file__).with_name("ims.toml"))
OURS = [r.domain for r in SETTINGS.routing if r.action is imcea.RouteAction.INBOUND]
ALWAYS_RELAYED = [r.domain for r in SETTINGS.routing if r.action is imcea.RouteAction.RELAY]
SERVER_IPS = [str(ip) for ip in SETTINGS.server_addresses]
ELSEWHERE = ["example.org", "partner.example", "mail.partner.example", *ALWAYS_RELAYED]

outsiders = client_ips(SETTINGS, inside=False, lists=["allow", "internal"])
# the server address the client connected to: any but an internal interface, or unknown
server_sides = st.one_of(
    st.none(),
    st.sampled_from(SERVER_IPS).filter(lambda ip: ip not in SETTINGS.restrictions.internal),
    client_ips(SETTINGS, inside=False, lists=["internal"], versions=[4]),
)
recipients = st.one_of(
    relay_tricks(OURS, ELSEWHERE, server_ips=SERVER_IPS),
    encapsulated_addresses(domains=[*OURS, *(f"[{ip}]" for ip in SERVER_IPS)], variants=True),
    st.text(max_size=60),
)


def always_relayed(domain: str | None) -> bool:
    """Whether *domain* is one the routing table always relays (or a subdomain of one)."""
    return domain is not None and any(
        domain == name or domain.endswith("." + name) for name in ALWAYS_RELAYED
    )


@given(client=outsiders, server_ip=server_sides, recipient=recipients)
def test_no_outsider_can_relay(
    client: IPAddress, server_ip: IPAddress | str | None, recipient: str
) -> None:
    verdict = imcea.decide(
        imcea.Envelope("someone@example.net", [recipient]), client, SETTINGS, server_ip=server_ip
    )
    decision = verdict[0]
    if decision.action is imcea.Action.REROUTE:
        assert decision.reason is imcea.Reason.ALWAYS_RELAY, decision
        assert always_relayed(decision.next_hop), decision


def test_the_outsiders_are_outside() -> None:
    """The invariant is only worth something if the settings do let insiders relay."""
    insider = imcea.decide(imcea.Envelope("", ["friend@example.org"]), "192.168.0.1", SETTINGS)
    assert insider[0].action is imcea.Action.REROUTE
