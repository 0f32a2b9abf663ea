"""``audit``: run the classic relay-test battery against settings, as one client.

Each trick of :mod:`imcea.battery` (nmap ``smtp-open-relay``, the MAPS tester, the
abuse.net set and the encapsulated-address tricks) is decided on its own envelope; a
trick *relays* when its recipient is rerouted back out.
"""

from __future__ import annotations

import attrs

from .battery import Trick, tricks
from .decision import Action, Decision, Envelope, decide
from .networks import IPAddress, parse_ip
from .settings import RouteAction, Settings

__all__ = ["AuditReport", "Probe", "audit"]

DEFAULT_REMOTE = "relay-target.example"
DEFAULT_LOCAL = "mail.example"
DEFAULT_SERVER_IP = "192.0.2.10"


@attrs.frozen
class Probe:
    """One trick as sent, and what the IMS would do with it."""

    trick: Trick
    sender: str
    decision: Decision

    @property
    def relays(self) -> bool:
        """Whether the recipient would be relayed back out."""
        return self.decision.action is Action.REROUTE


@attrs.frozen
class AuditReport:
    """Every probe of one audit, in battery order."""

    client: IPAddress
    local: str
    remote: str
    probes: tuple[Probe, ...]

    @property
    def relayed(self) -> tuple[Probe, ...]:
        """The probes that would relay."""
        return tuple(p for p in self.probes if p.relays)


def local_domain(settings: Settings) -> str:
    """The server's own domain as the settings show it: the first inbound routing entry."""
    inbound = [r for r in settings.routing if r.action is RouteAction.INBOUND]
    inbound.sort(key=lambda r: r.exact)  # a plain entry names the organisation's domain best
    return inbound[0].domain if inbound else DEFAULT_LOCAL


def audit(
    settings: Settings,
    sender_ip: str | IPAddress,
    *,
    authenticated: bool = False,
    server_ip: str | IPAddress | None = None,
    local: str | None = None,
    remote: str | None = None,
) -> AuditReport:
    """Decide every trick of the battery for the client at *sender_ip*.

    *local* is the server's domain (default: the first inbound routing entry), *remote*
    the third-party domain the tricks try to reach; address literals use *server_ip*,
    else the first of ``server_addresses``.
    """
    client = parse_ip(sender_ip, key="sender_ip")
    server = None if server_ip is None else parse_ip(server_ip, key="server_ip")
    literal = server or (settings.server_addresses[0] if settings.server_addresses else None)
    local_name = local or local_domain(settings)
    remote_name = remote or DEFAULT_REMOTE
    probes = []
    for trick, sender, recipient in tricks(
        remote=remote_name,
        local=local_name,
        server_ip=str(literal) if literal is not None else DEFAULT_SERVER_IP,
    ):
        verdict = decide(
            Envelope(sender, [recipient]),
            client,
            settings,
            authenticated=authenticated,
            server_ip=server,
        )
        probes.append(Probe(trick, sender, verdict[0]))
    return AuditReport(client, local_name, remote_name, tuple(probes))
