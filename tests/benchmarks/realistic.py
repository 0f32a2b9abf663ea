"""A realistic mail log for the benchmarks: real logs do not repeat.

A mid-sized site: 20,000 directory users; recipients 55% local users, 30% remote
addresses that are mostly seen once, 10% written in angle brackets, 5% ``IMCEASMTP-``
one-offs; 1 to 3 recipients per record; clients drawn from about 100,000 Internet
addresses and 500 LAN hosts, 5% of them authenticated; rerouting on and 1,000 allow
networks.  Everything is drawn from a seeded generator, so every run sees the same log.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import imcea

USERS = 20_000
INTERNET_CLIENTS = 100_000
LAN_HOSTS = 500
ALLOW_NETWORKS = 1_000
LOCAL_DOMAIN = "contoso.com"
REMOTE_DOMAINS = 2_000

_FIRST = ("anna", "ben", "carla", "dev", "emma", "farid", "gita", "hugo", "ines", "jon")
_LAST = ("smith", "jones", "garcia", "müller", "rossi", "kim", "nguyen", "dubois", "ali")


def directory_users(count: int = USERS) -> list[str]:
    """The SMTP addresses of the directory's users."""
    rng = random.Random(20_000)
    users = []
    for i in range(count):
        first, last = rng.choice(_FIRST), rng.choice(_LAST).replace("ü", "ue")
        users.append(f"{first}.{last}{i}@{LOCAL_DOMAIN}")
    return users


def lan_hosts(count: int = LAN_HOSTS) -> list[str]:
    """The LAN's hosts: inside 10.1.0.0/16, one of the allow networks."""
    return [f"10.1.{i >> 8}.{i & 255}" for i in range(1, count + 1)]


def internet_clients(count: int = INTERNET_CLIENTS, seed: int = 1) -> list[str]:
    """Distinct Internet client addresses, outside every allow network."""
    rng = random.Random(seed)
    seen: set[str] = set()
    while len(seen) < count:
        first = rng.choice((23, 45, 62, 81, 95, 104, 151, 178, 185, 198, 203, 212))
        seen.add(f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}")
    return sorted(seen)


def settings_mapping(allow: int = ALLOW_NETWORKS, users: list[str] | None = None) -> dict:
    """The site's settings as :func:`imcea.load_settings` takes them."""
    rng = random.Random(allow)
    nets = ["10.1.0.0/16"]
    while len(nets) < allow:
        nets.append(f"172.{rng.randrange(16, 32)}.{rng.randrange(256)}.0/255.255.255.0")
    return {
        "reroute": True,
        "release": "SP3",
        "server_addresses": ["192.0.2.10", "10.0.0.1"],
        "routing": [
            {"domain": LOCAL_DOMAIN, "action": "inbound"},
            {"domain": "#legacy.contoso.com", "action": "inbound"},
            {"domain": "partner0.example", "action": "reroute", "to": "mx.partner0.example"},
        ],
        "restrictions": {
            "authenticated": True,
            "allow": nets,
            "internal": ["10.0.0.1"],
            "deny": [f"198.51.100.{i}" for i in range(1, 21)],
        },
        "directory": directory_users() if users is None else users,
    }


def settings(allow: int = ALLOW_NETWORKS) -> imcea.Settings:
    """The site's settings."""
    return imcea.load_settings(settings_mapping(allow))


class Mix:
    """Recipients and clients of the realistic log, drawn one at a time."""

    def __init__(self, seed: int = 237927, users: list[str] | None = None) -> None:
        self.rng = random.Random(seed)
        self.users = directory_users() if users is None else users
        self.internet = internet_clients()
        self.lan = lan_hosts()
        self.remote = 0  # remote addresses are numbered: mostly seen once
        self.seen: set[str] = set()  # what distinct() gave

    def recipient(self) -> str:
        """One recipient: 55% local, 30% remote, 10% bracketed, 5% ``IMCEASMTP-``."""
        rng = self.rng
        kind = rng.random()
        if kind < 0.55:
            return rng.choice(self.users)
        if kind < 0.85:
            return self._remote()
        if kind < 0.95:
            return f"<{rng.choice(self.users) if rng.random() < 0.5 else self._remote()}>"
        return imcea.encode("SMTP", self._remote(), LOCAL_DOMAIN)

    def _remote(self) -> str:
        rng = self.rng
        self.remote += 1
        # a few correspondents come back
        n = rng.randrange(1000) if rng.random() < 0.1 else self.remote
        return f"contact.{n}@mail.partner{rng.randrange(REMOTE_DOMAINS)}.example"

    def client(self) -> tuple[str, bool]:
        """A client address and whether it authenticated (5%)."""
        rng = self.rng
        ip = rng.choice(self.lan) if rng.random() < 0.2 else rng.choice(self.internet)
        return ip, rng.random() < 0.05

    def records(self, count: int) -> Iterator[dict[str, object]]:
        """*count* log records: sender, 1-3 recipients, client, authenticated."""
        rng = self.rng
        for _ in range(count):
            ip, authenticated = self.client()
            recipients = [self.recipient() for _ in range(rng.choice((1, 1, 1, 2, 3)))]
            yield {
                "sender": f"someone@sender{rng.randrange(5000)}.example",
                "recipients": recipients,
                "ip": ip,
                "authenticated": authenticated,
            }

    def distinct(self, count: int) -> list[str]:
        """*count* recipients of the mix that distinct() never gave before."""
        out: list[str] = []
        seen = self.seen
        while len(out) < count:
            r = self.recipient()
            if r in seen:
                continue
            seen.add(r)
            out.append(r)
        return out
