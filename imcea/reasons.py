"""Why a recipient is delivered, rerouted or returned: every reason and what goes with it.

:data:`REASONS` is DESIGN §2.4's table of reasons, kept as data in one place: for each
:class:`Reason`, its :class:`Action`, the IMS's reply to the ``RCPT TO``, the diagnostic
of the non-delivery report when the recipient is accepted and returned afterwards, and
the enhanced status code (RFC 3463) that an MTA in front of the rules gives a Return.
The decision, the policy server, the case files and the tests all read it from here.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

import attrs

__all__ = ["REASONS", "Action", "Reason", "ReasonInfo"]


class Action(enum.StrEnum):
    """What happens to one recipient."""

    DELIVER = "deliver"
    REROUTE = "reroute"
    RETURN = "return"


class Reason(enum.StrEnum):
    """Why: one value per rule of DESIGN §2.4."""

    LOCAL_RECIPIENT = "local_recipient"
    INBOUND_UNVERIFIED = "inbound_unverified"
    POSTMASTER = "postmaster"
    ENCAPSULATED_EXCHANGE = "encapsulated_exchange"
    ENCAPSULATED_GATEWAY = "encapsulated_gateway"
    OPEN_RELAY = "open_relay"
    RELAY_AUTHENTICATED = "relay_authenticated"
    RELAY_ALLOWED_HOST = "relay_allowed_host"
    RELAY_INTERNAL_INTERFACE = "relay_internal_interface"
    ALWAYS_RELAY = "always_relay"
    ENCAPSULATED_BYPASS = "encapsulated_bypass"
    RELAY_DENIED = "relay_denied"
    DENIED_HOST = "denied_host"
    ENCAPSULATED_RELAY_DENIED = "encapsulated_relay_denied"
    MALFORMED_ADDRESS = "malformed_address"
    REROUTING_DISABLED = "rerouting_disabled"
    UNKNOWN_RECIPIENT = "unknown_recipient"
    ENCAPSULATED_NOT_REROUTED = "encapsulated_not_rerouted"
    MALFORMED_ENCAPSULATION = "malformed_encapsulation"
    ENCAPSULATION_TOO_DEEP = "encapsulation_too_deep"
    NO_GATEWAY = "no_gateway"


@attrs.frozen
class ReasonInfo:
    """What goes with one :class:`Reason`.

    ``reply`` is the IMS's reply to the ``RCPT TO``, with ``{}`` where the recipient is
    echoed (without its angle brackets); ``ndr`` is the non-delivery report's diagnostic
    of a recipient accepted and returned afterwards (``None`` otherwise); ``status`` is
    the RFC 3463 enhanced status code of the outcome (the IMS itself sent none).
    """

    action: Action
    reply: str
    ndr: str | None
    status: str

    @property
    def refused(self) -> bool:
        """Whether the recipient is refused at ``RCPT`` (rather than accepted with 250)."""
        return not self.reply.startswith("250 ")

    def reply_to(self, recipient: str) -> str:
        """The reply to ``RCPT TO:<recipient>`` (*recipient* without angle brackets)."""
        return self.reply.format(recipient)


# The IMS's own words (DESIGN §2.4).
_ACCEPTED = "250 OK - Recipient <{}>"
_RELAY_PROHIBITED = "550 Relaying is prohibited"
_MALFORMED = "553 malformed address: <{}>"
_UNKNOWN_RECIPIENT = "(000C05A6) Unknown Recipient"
_NOT_REROUTED = "the message is returned: encapsulated SMTP one-offs are not rerouted"
_NO_GATEWAY = "no route to the address type"

# RFC 3463 enhanced status codes: X.1.5 destination address valid, X.1.1 bad destination
# mailbox, X.1.3 bad destination mailbox address syntax, X.4.4 unable to route, X.7.1
# delivery not authorized.
_VALID, _UNKNOWN, _SYNTAX, _NO_ROUTE, _NOT_AUTHORIZED = "2.1.5", "5.1.1", "5.1.3", "5.4.4", "5.7.1"

_D, _R, _X = Action.DELIVER, Action.REROUTE, Action.RETURN

#: DESIGN §2.4, "All reasons, in one place".
REASONS: Mapping[Reason, ReasonInfo] = MappingProxyType(
    {
        Reason.LOCAL_RECIPIENT: ReasonInfo(_D, _ACCEPTED, None, _VALID),
        Reason.INBOUND_UNVERIFIED: ReasonInfo(_D, _ACCEPTED, None, _VALID),
        Reason.POSTMASTER: ReasonInfo(_D, _ACCEPTED, None, _VALID),
        Reason.ENCAPSULATED_EXCHANGE: ReasonInfo(_D, _ACCEPTED, None, _VALID),
        Reason.ENCAPSULATED_GATEWAY: ReasonInfo(_D, _ACCEPTED, None, _VALID),
        Reason.OPEN_RELAY: ReasonInfo(_R, _ACCEPTED, None, _VALID),
        Reason.RELAY_AUTHENTICATED: ReasonInfo(_R, _ACCEPTED, None, _VALID),
        Reason.RELAY_ALLOWED_HOST: ReasonInfo(_R, _ACCEPTED, None, _VALID),
        Reason.RELAY_INTERNAL_INTERFACE: ReasonInfo(_R, _ACCEPTED, None, _VALID),
        Reason.ALWAYS_RELAY: ReasonInfo(_R, _ACCEPTED, None, _VALID),
        Reason.ENCAPSULATED_BYPASS: ReasonInfo(_R, _ACCEPTED, None, _VALID),
        Reason.RELAY_DENIED: ReasonInfo(_X, _RELAY_PROHIBITED, None, _NOT_AUTHORIZED),
        Reason.DENIED_HOST: ReasonInfo(_X, _RELAY_PROHIBITED, None, _NOT_AUTHORIZED),
        Reason.ENCAPSULATED_RELAY_DENIED: ReasonInfo(_X, _RELAY_PROHIBITED, None, _NOT_AUTHORIZED),
        Reason.MALFORMED_ADDRESS: ReasonInfo(_X, _MALFORMED, None, _SYNTAX),
        Reason.REROUTING_DISABLED: ReasonInfo(_X, _ACCEPTED, _UNKNOWN_RECIPIENT, _UNKNOWN),
        Reason.UNKNOWN_RECIPIENT: ReasonInfo(_X, _ACCEPTED, _UNKNOWN_RECIPIENT, _UNKNOWN),
        Reason.ENCAPSULATED_NOT_REROUTED: ReasonInfo(_X, _ACCEPTED, _NOT_REROUTED, _NOT_AUTHORIZED),
        Reason.MALFORMED_ENCAPSULATION: ReasonInfo(_X, _ACCEPTED, _UNKNOWN_RECIPIENT, _UNKNOWN),
        Reason.ENCAPSULATION_TOO_DEEP: ReasonInfo(_X, _ACCEPTED, _UNKNOWN_RECIPIENT, _UNKNOWN),
        Reason.NO_GATEWAY: ReasonInfo(_X, _ACCEPTED, _NO_GATEWAY, _NO_ROUTE),
    }
)
