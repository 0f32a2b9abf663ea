"""Expected values shared by the tests: DESIGN §2.4's table of reasons, §3's settings file."""

from __future__ import annotations

import imcea
from imcea import Action, Reason

D = Action.DELIVER
R = Action.REROUTE
X = Action.RETURN

NDR_UNKNOWN = "(000C05A6) Unknown Recipient"
NDR_NOT_REROUTED = "the message is returned: encapsulated SMTP one-offs are not rerouted"
NDR_NO_GATEWAY = "no route to the address type"
# DESIGN §2.4, "All reasons, in one place": reason -> (action, RCPT reply code, NDR)
REASONS_TABLE: dict[Reason, tuple[Action, int, str | None]] = {
    Reason.LOCAL_RECIPIENT: (D, 250, None),
    Reason.INBOUND_UNVERIFIED: (D, 250, None),
    Reason.POSTMASTER: (D, 250, None),
    Reason.ENCAPSULATED_EXCHANGE: (D, 250, None),
    Reason.ENCAPSULATED_GATEWAY: (D, 250, None),
    Reason.OPEN_RELAY: (R, 250, None),
    Reason.RELAY_AUTHENTICATED: (R, 250, None),
    Reason.RELAY_ALLOWED_HOST: (R, 250, None),
    Reason.RELAY_INTERNAL_INTERFACE: (R, 250, None),
    Reason.ALWAYS_RELAY: (R, 250, None),
    Reason.ENCAPSULATED_BYPASS: (R, 250, None),
    Reason.RELAY_DENIED: (X, 550, None),
    Reason.DENIED_HOST: (X, 550, None),
    Reason.ENCAPSULATED_RELAY_DENIED: (X, 550, None),
    Reason.MALFORMED_ADDRESS: (X, 553, None),
    Reason.REROUTING_DISABLED: (X, 250, NDR_UNKNOWN),
    Reason.UNKNOWN_RECIPIENT: (X, 250, NDR_UNKNOWN),
    Reason.ENCAPSULATED_NOT_REROUTED: (X, 250, NDR_NOT_REROUTED),
    Reason.MALFORMED_ENCAPSULATION: (X, 250, NDR_UNKNOWN),
    Reason.ENCAPSULATION_TOO_DEEP: (X, 250, NDR_UNKNOWN),
    Reason.NO_GATEWAY: (X, 250, NDR_NO_GATEWAY),
}


# The settings file of DESIGN §3, as written there.
DESIGN_EXAMPLE = """\
reroute = true
release = "SP3"
server_addresses = ["192.0.2.10", "10.0.0.1"]   # the public and the internal interface
site_connector = false
gateways = ["X400", "MS", "FAX"]
directory = "gal.txt"            # one address or legacy DN per line; or an inline list

[[routing]]
domain = "contoso.com"
action = "inbound"
[[routing]]
domain = "#exact.contoso.com"
action = "inbound"
[[routing]]
domain = "partner.example"
action = "reroute"
to = "mail.partner.example"
[[routing]]
domain = "always.example"
action = "relay"

[restrictions]
authenticated = true
allow = ["192.168.0.1", "10.0.0.0/255.255.255.0", "2001:db8::/32"]
internal = ["10.0.0.1"]          # clients connecting to the internal interface may relay
deny = ["10.0.0.66"]
"""


def check_against_table(decision: imcea.Decision) -> None:
    """The DESIGN §2.4 rules every decision obeys, whatever the case."""
    action, code, ndr = REASONS_TABLE[decision.reason]
    assert decision.action is action, decision
    assert decision.ndr == ndr, decision
    if code == 250:
        assert decision.reply.startswith("250 OK - Recipient <"), decision
        assert decision.reply.endswith(">"), decision
    elif code == 550:
        assert decision.reply == "550 Relaying is prohibited", decision
    else:
        assert decision.reply.startswith("553 malformed address: <"), decision
        assert decision.reply.endswith(">"), decision
    if decision.action is Action.RETURN:
        assert decision.resolved is None and decision.next_hop is None, decision
    elif decision.action is Action.DELIVER:
        assert decision.resolved, decision
        assert decision.next_hop is None, decision
    else:
        assert decision.resolved and decision.next_hop, decision
    assert isinstance(decision.detail, str) and decision.detail.strip(), decision
    assert "\n" not in decision.detail
