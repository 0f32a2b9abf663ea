"""Expected values shared by the decision tests: DESIGN §2.4's table of reasons."""

from __future__ import annotations

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
