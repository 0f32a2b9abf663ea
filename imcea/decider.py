"""Settings compiled once for many decisions: :class:`Decider`, like :func:`re.compile`.

A server or a log replay decides envelope after envelope against the same settings.
Two answers recur among them and are small by nature: the routing entry of a domain
(DESIGN §2.2; mail names the same domains again and again) and the §2.3 answer for a
client (a server sees the same clients again and again).  A :class:`Decider` remembers
those, and nothing else; the rules themselves are those of :mod:`imcea.decision`.

Decisions are not remembered by recipient: most recipients of a real log are seen once,
and keeping them costs each new recipient more (storing it, and the garbage collector
walking a large memory) than the few that come back save.  Nor are clients as read,
beyond the last one: reading a dotted quad costs little more than looking it up.
"""

from __future__ import annotations

from .decision import (
    Answers,
    Client,
    Decision,
    Envelope,
    Permission,
    Verdict,
    decide_envelope,
    decide_recipient,
)
from .networks import IPAddress
from .settings import Route, Settings

__all__ = ["Decider"]

#: Domains whose routing entry a decider remembers.
ROUTES_REMEMBERED = 4096
#: Clients whose §2.3 answer a decider remembers.
CLIENTS_REMEMBERED = 4096


class Decider(Answers):
    """Decides envelopes against one :class:`~imcea.Settings` value, remembering what recurs.

    ``Decider(settings).decide(envelope, sender_ip)`` gives the same :class:`~imcea.Verdict`
    as :func:`imcea.decide` with the same arguments, faster when it decides many.

    What it remembers: the routing entry of at most :data:`ROUTES_REMEMBERED` domains,
    the §2.3 answer for at most :data:`CLIENTS_REMEMBERED` clients, and the client of
    the last call as read (a server's next envelope mostly comes from the same one).
    Each memory is emptied when full, so a decider stays within a few megabytes whatever
    it is asked.  All are derived from the settings and the client alone, and settings
    never change: remembering changes no verdict.

    Threads: a decider may be shared.  Its memories are dictionaries that are only
    looked up, added to and emptied, each a single operation that is atomic in CPython
    (and locked inside the dictionary on free-threaded builds); two threads that miss at
    once both compute the same answer, and one of them is kept.  The last client is one
    tuple of the call's arguments and the client, read and replaced whole.

    A decider pickles as its settings: what it remembered is not sent along.
    """

    __slots__ = ("_last", "_permissions", "_routes")

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._routes: dict[str, Route | None] = {}
        self._permissions: dict[Client, Permission] = {}
        # the arguments of the last call that named a client, and that client as read
        self._last: tuple[object, object, object, Client] | None = None

    def __repr__(self) -> str:
        return f"Decider({self.settings!r})"

    def __reduce__(self) -> tuple[type[Decider], tuple[Settings]]:
        return (Decider, (self.settings,))

    def decide(
        self,
        envelope: Envelope,
        sender_ip: str | IPAddress,
        *,
        authenticated: bool = False,
        server_ip: str | IPAddress | None = None,
    ) -> Verdict:
        """Decide every recipient of *envelope*: the same verdict as :func:`imcea.decide`."""
        return decide_envelope(envelope, self._client(sender_ip, authenticated, server_ip), self)

    def decide_recipient(
        self,
        recipient: str,
        sender_ip: str | IPAddress,
        *,
        authenticated: bool = False,
        server_ip: str | IPAddress | None = None,
    ) -> Decision:
        """Decide one ``RCPT TO``, as an SMTP server meets them: the decision that
        :meth:`decide` gives *recipient* in any envelope (the rules never read the
        sender, nor the other recipients)."""
        client = self._client(sender_ip, authenticated, server_ip)
        return decide_recipient(recipient, client, self)

    def _client(self, sender_ip: object, authenticated: object, server_ip: object) -> Client:
        """:meth:`Client.of <imcea.decision.Client.of>`, kept for the next call."""
        last = self._last  # one tuple, so that threads never see half of it
        if (
            last is not None
            and sender_ip == last[0]
            and authenticated == last[1]
            and server_ip == last[2]
        ):
            return last[3]
        client = Client.of(sender_ip, bool(authenticated), server_ip)
        self._last = (sender_ip, authenticated, server_ip, client)
        return client

    def route(self, domain: str) -> Route | None:
        """The routing entry of *domain* (DESIGN §2.2), remembered."""
        routes = self._routes
        found = routes.get(domain, False)  # False: not remembered; None: no entry
        if found is None or isinstance(found, Route):
            return found
        route = self.settings.lookup_route(domain)
        if len(routes) >= ROUTES_REMEMBERED:
            routes.clear()
        routes[domain] = route
        return route

    def permission(self, client: Client) -> Permission:
        """May *client* relay (DESIGN §2.3)?  Remembered."""
        answer = self._permissions.get(client)
        if answer is None:
            answer = super().permission(client)
            if len(self._permissions) >= CLIENTS_REMEMBERED:
                self._permissions.clear()
            self._permissions[client] = answer
        return answer
