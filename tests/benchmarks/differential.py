"""Differential run: the decisions of this checkout against those of another revision.

The cases are the corpus of real encapsulated addresses (``tests/data/addresses.jsonl``),
the relay-test battery (:mod:`imcea.battery`) and random recipients from
:mod:`imcea.strategies` (relay tricks, encapsulated addresses, arbitrary text), decided
under hand-written and random settings, for clients inside and outside their network
lists, authenticated or not, with and without a server address.  The cases are made
here, once, and written as JSON; each side decides them in a process of its own, with
its own package on the path: this checkout, and the ``imcea`` package of revision REV
(taken with ``git archive``).  Every field of every decision is compared, and each side
also checks that ``imcea.Decider(settings).decide`` gives what ``imcea.decide`` gives.

Run: ``python tests/benchmarks/differential.py [REV]`` from the repository root (REV
defaults to ``HEAD``).  Prints the number of decisions compared and the differences
(at most 20 shown); the exit status is 1 when there is any.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RANDOM_SETTINGS = 30
RANDOM_RECIPIENTS = 1000
SHOWN = 20


# ---------------------------------------------------------------------------
# the cases (made with this checkout's package)


def settings_mapping(settings: Any) -> dict[str, Any]:
    """A :class:`imcea.Settings` as the mapping :func:`imcea.load_settings` takes."""
    r = settings.restrictions
    out: dict[str, Any] = {
        "reroute": settings.reroute,
        "release": str(settings.release),
        "site_connector": settings.site_connector,
        "server_addresses": [str(ip) for ip in settings.server_addresses],
        "routing": [
            {
                "domain": ("#" if route.exact else "") + route.domain,
                "action": str(route.action),
                **({"to": route.to} if route.to is not None else {}),
            }
            for route in settings.routing
        ],
        "restrictions": {
            "authenticated": r.authenticated,
            "allow": [net.text for net in r.allow],
            "internal": [net.text for net in r.internal],
            "deny": [net.text for net in r.deny],
        },
    }
    if settings.directory is not None:
        out["directory"] = list(settings.directory.entries)
    if settings.gateways is not None:
        out["gateways"] = sorted(settings.gateways)
    return out


HANDWRITTEN: list[dict[str, Any]] = [
    {},  # the defaults: rerouting off, no directory
    {"reroute": True},  # an open relay
    {
        "reroute": True,
        "server_addresses": ["192.0.2.10", "10.0.0.1"],
        "gateways": ["X400", "MS", "FAX"],
        "directory": [
            "user@mail.example",
            "SMTP:Admin@Contoso.com",
            "someone@[192.0.2.10]",
            "X500:/O=ORG/OU=SITE/CN=RECIPIENTS/CN=JDOE",
            "/o=MMS/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=x",
        ],
        "routing": [
            {"domain": "contoso.com", "action": "inbound"},
            {"domain": "mail.example", "action": "inbound"},
            {"domain": "#exact.contoso.com", "action": "inbound"},
            {"domain": "partner.example", "action": "reroute", "to": "mail.partner.example"},
            {"domain": "always.example", "action": "relay"},
            {"domain": "relay-target.example", "action": "reroute", "to": "[192.0.2.99]"},
        ],
        "restrictions": {
            "authenticated": True,
            "allow": ["192.168.0.1", "10.0.0.0/255.255.255.0", "2001:db8::/32"],
            "internal": ["10.0.0.1"],
            "deny": ["10.0.0.66"],
        },
    },
    {
        "reroute": False,
        "server_addresses": ["192.0.2.10"],
        "routing": [{"domain": "mail.example", "action": "inbound"}],
    },
    {
        "reroute": True,
        "release": "SP2",
        "server_addresses": ["192.0.2.10"],
        "routing": [{"domain": "mail.example", "action": "inbound"}],
        "restrictions": {"allow": ["192.168.0.0/16"], "deny": ["192.168.9.9"]},
    },
    {
        "reroute": False,
        "release": "SP2",
        "directory": ["relaytest@mail.example"],
        "routing": [{"domain": "mail.example", "action": "inbound"}],
    },
    {
        "reroute": True,
        "server_addresses": ["192.0.2.10", "2001:db8::10"],
        "routing": [{"domain": "example", "action": "inbound"}],
        "restrictions": {"internal": ["192.0.2.10"], "deny": ["0.0.0.0/0"]},
        "gateways": [],
    },
]

CLIENTS = [
    "192.0.2.1",
    "192.168.0.1",
    "10.0.0.7",
    "10.0.0.66",
    "192.168.9.9",
    "2001:db8::5",
    "::ffff:10.0.0.7",
    "203.0.113.50",
]
SERVERS = [None, "192.0.2.10", "10.0.0.1"]


def corpus() -> list[str]:
    """The real addresses of the corpus, bare and in angle brackets, and what they hold."""
    out = []
    for line in (ROOT / "tests" / "data" / "addresses.jsonl").read_text("utf-8").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        out += [entry["encapsulated"], f"<{entry['encapsulated']}>"]
        if "@" in entry.get("address", ""):
            out.append(entry["address"])
    return out


def battery() -> list[str]:
    """The recipients of every trick of the relay-test battery."""
    from imcea.battery import tricks

    out = []
    for server_ip in ("192.0.2.10", "2001:db8::10"):
        for local in ("mail.example", "contoso.com"):
            out += [rcpt for _, _, rcpt in tricks(local=local, server_ip=server_ip)]
    return out


def drawn(strategy: Any, count: int) -> list[Any]:
    """*count* values of a hypothesis strategy, the same every run."""
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hsettings

    out: list[Any] = []

    @hsettings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        out.append(value)

    collect()
    return out


def make_cases() -> list[dict[str, Any]]:
    """The cases: per settings, the recipients and the clients to decide them for."""
    from hypothesis import strategies as st

    import imcea
    from imcea import strategies

    recipients = corpus() + battery()
    recipients += drawn(
        strategies.relay_tricks(("mail.example", "contoso.com", "example")),
        RANDOM_RECIPIENTS,
    )
    recipients += drawn(strategies.encapsulated_addresses(), RANDOM_RECIPIENTS // 3)
    recipients += drawn(st.text(max_size=40), RANDOM_RECIPIENTS // 3)
    recipients += ["Postmaster", "<postmaster>", "", "<>", "x" * 1100 + "@a.example"]

    cases = []
    for mapping in HANDWRITTEN:
        clients = [
            (ip, SERVERS[n % len(SERVERS)], auth)
            for auth in (False, True)
            for n, ip in enumerate(CLIENTS)
        ]
        cases.append({"settings": mapping, "clients": clients})
    randoms = drawn(strategies.settings(), RANDOM_SETTINGS)
    for n, settings in enumerate(randoms):
        ips = sorted({str(ip) for ip in drawn(strategies.client_ips(settings), 5)})
        servers = [None, *(str(ip) for ip in settings.server_addresses[:2])]
        clients = [(ip, servers[i % len(servers)], i % 2 == 1) for i, ip in enumerate(ips)]
        clients.append((CLIENTS[n % len(CLIENTS)], None, False))
        cases.append({"settings": settings_mapping(settings), "clients": clients})
    for case in cases:
        case["recipients"] = recipients
        imcea.load_settings(case["settings"])  # each must load on this side
    return cases


# ---------------------------------------------------------------------------
# one side: decide every case with the package on the path


def side(cases: list[dict[str, Any]]) -> list[list[Any]]:
    """Every decision of every case, as lists of fields; Decider checked against decide."""
    import imcea

    fields = ("recipient", "action", "reason", "detail", "reply", "ndr", "resolved", "next_hop")
    out: list[list[Any]] = []
    for case in cases:
        settings = imcea.load_settings(case["settings"])
        decider = imcea.Decider(settings) if hasattr(imcea, "Decider") else None
        recipients = case["recipients"]
        for c, (client, server, authenticated) in enumerate(case["clients"]):
            # envelopes of 1 to 4 recipients, cut differently for each client
            start = 0
            size = 1 + c % 4
            while start < len(recipients):
                envelope = imcea.Envelope("s@x.example", recipients[start : start + size])
                start += size
                size = size % 4 + 1
                verdict = imcea.decide(
                    envelope, client, settings, authenticated=authenticated, server_ip=server
                )
                rows = [[str(getattr(d, f)) for f in fields] for d in verdict]
                if decider is not None:
                    again = decider.decide(
                        envelope, client, authenticated=authenticated, server_ip=server
                    )
                    if list(again) != list(verdict):
                        rows.append(["Decider differs from decide", repr(envelope)])
                out += rows
    return out


def run_side(package_root: Path, cases_file: Path) -> list[list[Any]]:
    env = dict(os.environ, PYTHONPATH=str(package_root))
    done = subprocess.run(
        [sys.executable, __file__, "--side", str(cases_file)],
        env=env,
        cwd=package_root,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"the side at {package_root} failed:\n{done.stderr.decode()}")
    result: list[list[Any]] = json.loads(done.stdout)
    return result


def main(argv: list[str]) -> int:
    if argv[:1] == ["--side"]:
        cases = json.loads(Path(argv[1]).read_text("utf-8"))
        json.dump(side(cases), sys.stdout)
        return 0
    rev = argv[0] if argv else "HEAD"
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        archive = subprocess.run(
            ["git", "archive", rev, "imcea"], cwd=ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
        cases_file = base / "cases.json"
        cases_file.write_text(json.dumps(make_cases()), "utf-8")
        old = run_side(base, cases_file)
        new = run_side(ROOT, cases_file)
    differences = [(a, b) for a, b in zip(old, new, strict=False) if a != b]
    if len(old) != len(new):
        differences.append(([f"{len(old)} decisions"], [f"{len(new)} decisions"]))
    for a, b in differences[:SHOWN]:
        print(f"- {rev}: {a}\n+ this checkout: {b}")
    print(f"{len(new)} decisions compared against {rev}: {len(differences)} differences")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
