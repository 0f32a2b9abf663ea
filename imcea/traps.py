"""``check(settings)``: the configuration traps that the Knowledge Base describes.

Each :class:`Finding` has a stable ``code`` to filter on, a ``severity`` and a sentence
that names the setting and the article (DESIGN §2.5).  ``check`` reads settings only;
it never changes them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator

import attrs

from .errors import Error
from .networks import Network, NetworkSet
from .settings import RouteAction, Settings

__all__ = ["Finding", "Severity", "check"]


class Severity(enum.StrEnum):
    """``error``: the server relays or breaks; ``warning``: a setting does not do what it says."""

    ERROR = "error"
    WARNING = "warning"


@attrs.frozen
class Finding:
    """One trap in the settings: ``code``, ``severity``, ``message`` and the ``key`` concerned."""

    code: str
    severity: Severity
    message: str
    key: str

    def __str__(self) -> str:
        return f"{self.severity.value}: {self.code}: {self.message}"


def _covered_entries(inner: NetworkSet, outer: NetworkSet) -> Iterator[tuple[int, Network]]:
    """Entries of *inner* that a single entry of *outer* covers, with the covering entry.

    An entry ``O`` covers an entry ``I`` when every bit of ``O``'s mask is set in ``I``'s
    mask and ``I`` agrees with ``O`` on those bits (masks of any shape).  The entries of
    *outer* are grouped by mask, so each entry of *inner* costs one set lookup per
    distinct mask, not one comparison per entry.
    """
    by_mask: dict[tuple[int, int], dict[int, Network]] = {}
    for net in outer:
        if net.matchable:
            by_mask.setdefault((net.version, net.mask), {}).setdefault(net.address, net)
    masks = sorted(by_mask.items(), key=lambda item: (item[0][0], item[0][1].bit_count()))
    for index, net in enumerate(inner):
        if not net.matchable:
            continue  # reported as unmatchable_network already
        for (version, mask), entries in masks:
            if version == net.version and not mask & ~net.mask:
                cover = entries.get(net.address & mask)
                if cover is not None:
                    yield index, cover
                    break


def _delivers_nothing(settings: Settings) -> bool:
    """Whether no ordinary recipient can ever be delivered (DESIGN §2.4, steps 2 and 5).

    A recipient is local when an ``inbound`` routing entry matches its domain or its
    domain is a server address literal; with rerouting off, an address the directory
    knows is delivered whatever its domain.  With none of these, no ordinary recipient
    is ever delivered: the built-in defaults return every one.
    """
    if settings.server_addresses:
        return False
    if any(route.action is RouteAction.INBOUND for route in settings.routing):
        return False
    directory = settings.directory
    return settings.reroute or directory is None or not directory.addresses


def check(settings: Settings) -> list[Finding]:
    """Every trap of DESIGN §2.5 in *settings*, errors first, in a stable order."""
    if not isinstance(settings, Settings):
        raise Error(f"settings: expected an imcea.Settings, got {type(settings).__name__}")
    found: list[Finding] = []
    add = found.append
    r = settings.restrictions

    if settings.reroute and not r.selected:
        add(
            Finding(
                "open_relay",
                Severity.ERROR,
                "reroute is on and no routing restriction (authenticated, allow, internal) is "
                "selected: anyone may relay through this server (KB Q260562)",
                "restrictions",
            )
        )
    if (
        r.internal
        and settings.server_addresses
        and all(ip in r.internal for ip in settings.server_addresses)
    ):
        add(
            Finding(
                "internal_covers_all",
                Severity.ERROR,
                "restrictions.internal covers every address in server_addresses: any client "
                "connecting to this server may relay (KB Q193922)",
                "restrictions.internal",
            )
        )
    if settings.release == "SP2":
        add(
            Finding(
                "vulnerable_release",
                Severity.ERROR,
                "release is SP2: encapsulated IMCEASMTP- one-off addresses are rerouted whatever "
                "the routing settings (KB Q237927, MS99-027); use SP3 or later",
                "release",
            )
        )
    if settings.site_connector and not settings.reroute:
        add(
            Finding(
                "site_connector_needs_reroute",
                Severity.ERROR,
                "site_connector is on but reroute is off: the Internet Mail Service cannot reroute "
                "mail for the bridgehead in the other site (KB Q237927)",
                "reroute",
            )
        )

    for name in ("allow", "internal", "deny"):
        nets: NetworkSet = getattr(r, name)
        for index, net in enumerate(nets):
            if not net.matchable:
                add(
                    Finding(
                        "unmatchable_network",
                        Severity.WARNING,
                        f"restrictions.{name}[{index}] {net.text!r} has host bits outside its "
                        "mask and never matches any client (KB Q193922)",
                        f"restrictions.{name}[{index}]",
                    )
                )
    for index, cover in _covered_entries(r.allow, r.deny):
        add(
            Finding(
                "deny_covers_allow",
                Severity.WARNING,
                f"restrictions.allow[{index}] {r.allow.entries[index].text!r} lies wholly inside "
                f"the never-route entry {cover.text!r}: it can never permit a client (KB Q196626)",
                f"restrictions.allow[{index}]",
            )
        )
    for index, inside in _covered_entries(r.deny, r.allow):
        net = r.deny.entries[index]
        add(
            Finding(
                "deny_inside_allow",
                Severity.WARNING,
                f"restrictions.deny[{index}] {net.text!r} lies inside the allow entry "
                f"{inside.text!r}: the IMS refuses it, but a Postfix whose mynetworks copies "
                "the allow list trusts it and relays for it (KB Q196626); generate mynetworks with "
                "'imcea postfix-config', which excludes it",
                f"restrictions.deny[{index}]",
            )
        )

    seen: dict[tuple[str, bool], int] = {}
    for index, route in enumerate(settings.routing):
        first = seen.setdefault((route.domain, route.exact), index)
        if first != index:
            written = ("#" if route.exact else "") + route.domain
            add(
                Finding(
                    "duplicate_route",
                    Severity.WARNING,
                    f"routing[{index}] repeats the entry for {written!r} of routing[{first}]: only "
                    "the first applies (KB Q169683)",
                    f"routing[{index}]",
                )
            )
    if r.internal and not settings.server_addresses:
        add(
            Finding(
                "internal_without_server_addresses",
                Severity.WARNING,
                "restrictions.internal is set but server_addresses is empty: the server's own "
                "interfaces are unknown, so a decision without server_ip never matches it "
                "(KB Q193922)",
                "server_addresses",
            )
        )
    if not settings.reroute:
        ignored = [
            i
            for i, route in enumerate(settings.routing)
            if route.action in (RouteAction.REROUTE, RouteAction.RELAY)
        ]
        if ignored:
            keys = ", ".join(f"routing[{i}]" for i in ignored)
            add(
                Finding(
                    "routes_ignored",
                    Severity.WARNING,
                    f"reroute is off, so the reroute/relay entries {keys} never apply (KB Q169683)",
                    "routing",
                )
            )
    if _delivers_nothing(settings):
        add(
            Finding(
                "no_inbound_domain",
                Severity.WARNING,
                "no routing entry is inbound and server_addresses is empty: no domain is "
                "local, so no ordinary recipient is ever delivered (it is relayed or returned); "
                "add an inbound routing entry for each domain this server receives mail for "
                "(KB Q169683)",
                "routing",
            )
        )
    found.sort(key=lambda f: f.severity is not Severity.ERROR)
    return found
