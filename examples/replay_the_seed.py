"""Replay the story of KB Q237927 over a small mail log, before and after the fix.

The Internet Mail Service of ``contoso.com`` is used as a site connector: the
bridgehead of the other site, 192.168.0.1, hands it mail for its users as
encapsulated SMTP one-offs (``IMCEASMTP-jdoe+40site2+2Eexample@contoso.com``).  Nobody
ever added 192.168.0.1 to the routing restrictions, and with Exchange 5.5 SP2 nobody
had to: SP2 reroutes every encapsulated SMTP one-off whatever the settings, which is
also what lets outsiders relay through the server (MS99-027).

SP3 fixes the hole, and "mail relaying from 192.168.0.1 no longer works"; the article's
answer is to add 192.168.0.1 to the hosts allowed to relay.  This script writes the
log, then replays it three times:

1. SP2 -> SP3: what the service pack changes (every encapsulated relay stops);
2. the relay that stops: the site connector's mail, returned at RCPT by SP3;
3. the fix: SP3 with 192.168.0.1 on the allow list, where the site connector relays
   again and the outsiders stay refused.

Run: ``python examples/replay_the_seed.py [--out DIR]`` (no network).  The log
(``ims.jsonl``) and the three settings files (``sp2.toml``, ``sp3.toml``,
``fixed.toml``) are written to DIR, by default a new directory ``imcea-seed`` in the
current one, and the script ends with the ``imcea replay`` commands that replay them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import imcea
from imcea.replay import Replayed, Summary, replay

SITE_CONNECTOR = "192.168.0.1"  # the other site's bridgehead (the article's example)
LAN = "10.0.0.0/255.255.255.0"  # the hosts that were allowed to relay all along


def settings_file(release: str, *, allow_site_connector: bool = False) -> str:
    """The IMS as a settings file: rerouting on (a site connector needs it), the LAN may relay."""
    allow = [LAN, SITE_CONNECTOR] if allow_site_connector else [LAN]
    return "\n".join(
        [
            "# the Internet Mail Service of contoso.com, a site connector (KB Q237927)",
            "reroute = true",
            f"release = {json.dumps(release)}",
            "site_connector = true",
            'server_addresses = ["192.0.2.10"]',
            "",
            "[[routing]]",
            'domain = "contoso.com"',
            'action = "inbound"',
            "",
            "[restrictions]",
            f"allow = {json.dumps(allow)}",
            "",
        ]
    )


def one_off(address: str) -> str:
    """An encapsulated SMTP one-off addressed to the contoso.com IMS."""
    return imcea.encode("SMTP", address, "contoso.com")


def story(count: int = 60) -> Iterator[dict[str, object]]:
    """A small log: site-connector traffic, outsiders trying one-offs, ordinary mail."""
    for n in range(count):
        ident = f"msg-{n:03d}"
        kind = n % 4
        if kind == 0:  # the other site's bridgehead, for a user homed over there
            yield {
                "id": ident,
                "sender": f"user{n}@contoso.com",
                "recipients": [one_off(f"user{n}@site2.example")],
                "ip": SITE_CONNECTOR,
            }
        elif kind == 1:  # an outsider trying the encapsulation trick
            yield {
                "id": ident,
                "sender": "offers@spam.example",
                "recipients": [one_off(f"victim{n}@elsewhere.example")],
                "ip": f"203.0.113.{n}",
            }
        elif kind == 2:  # ordinary inbound mail
            yield {
                "id": ident,
                "sender": f"partner{n}@partner.example",
                "recipients": [f"user{n}@contoso.com"],
                "ip": f"198.51.100.{n}",
            }
        else:  # a LAN host sending out, allowed all along
            yield {
                "id": ident,
                "sender": f"user{n}@contoso.com",
                "recipients": [f"partner{n}@partner.example"],
                "ip": f"10.0.0.{n}",
            }


def who(ip: object) -> str:
    """The kind of client, for grouping the changes."""
    if str(ip) == SITE_CONNECTOR:
        return f"the site connector {SITE_CONNECTOR}"
    if str(ip).startswith("10.0.0."):
        return "LAN hosts"
    return "outside hosts"


def show(title: str, before: imcea.Settings, after: imcea.Settings, log: Path) -> Counter[str]:
    """Compare two settings over the log; print the changes; return them by client kind."""
    print(f"== {title}")
    summary = Summary()
    clients: Counter[str] = Counter()
    with log.open(encoding="utf-8") as lines:
        for change in replay(lines, before, compare=after, summary=summary):
            clients[f"{who(change.record.ip)}: {change.transition} ({change.reasons})"] += 1
    for text in summary.lines():
        print("  " + text.strip())
    for what, n in sorted(clients.items()):
        print(f"    {n:3} from {what}")
    return clients


def explain(title: str, replayed: Replayed) -> None:
    """One decision, the way the IMS answers the RCPT TO."""
    d = replayed.decision
    print(f"  {title} ({replayed.id}, from {replayed.record.ip}):")
    print(f"    RCPT TO:<{d.recipient}>")
    print(f"    {d.reply}  -> {d.action.value}, {d.reason.value}")
    if d.next_hop is not None:
        print(f"    relayed to {d.resolved} via {d.next_hop}")
    print(f"    why: {d.detail}")


def write_files(out: Path) -> dict[str, Path]:
    """The log and the three settings files of the story, written to *out*."""
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "sp2": settings_file("SP2"),
        "sp3": settings_file("SP3"),
        "fixed": settings_file("SP3", allow_site_connector=True),
    }
    paths = {name: out / f"{name}.toml" for name in files}
    for name, text in files.items():
        paths[name].write_text(text, encoding="utf-8")
    paths["log"] = out / "ims.jsonl"
    with paths["log"].open("w", encoding="utf-8") as handle:
        for record in story():
            handle.write(json.dumps(record) + "\n")
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("imcea-seed"),
        metavar="DIR",
        help="where to write the log and the settings files (default: ./imcea-seed)",
    )
    args = parser.parse_args(argv)
    paths = write_files(args.out)
    sp2, sp3, fixed = (imcea.load_settings(paths[name]) for name in ("sp2", "sp3", "fixed"))
    log = paths["log"]

    lines = log.read_text(encoding="utf-8").splitlines()
    print(f"a log of {len(lines)} records ({log}), for example:")
    for line in lines[:2]:
        print("  " + line)
    print()
    print(f"check(SP2 settings): {', '.join(f.code for f in imcea.check(sp2))}")
    print()

    show("SP2 -> SP3: what the service pack changes", sp2, sp3, log)
    print()

    print("== the relay that stops: the site connector's mail under SP2, then SP3")
    with log.open(encoding="utf-8") as handle:
        before = next(r for r in replay(handle, sp2) if r.record.ip == SITE_CONNECTOR)
    with log.open(encoding="utf-8") as handle:
        stopped = [
            r
            for r in replay(handle, sp3)
            if r.record.ip == SITE_CONNECTOR and r.decision.action is imcea.Action.RETURN
        ]
    explain("SP2", before)
    explain("SP3", stopped[0])
    print(f"  {len(stopped)} messages from {SITE_CONNECTOR} are refused under SP3")
    print()

    changes = show("the fix: SP3 -> SP3 with 192.168.0.1 on the allow list", sp3, fixed, log)
    with log.open(encoding="utf-8") as handle:
        after = next(r for r in replay(handle, fixed) if r.record.ip == SITE_CONNECTOR)
    explain("fixed", after)
    outsiders = sum(n for what, n in changes.items() if what.startswith("outside"))
    print(f"  outsiders whose outcome the fix changes: {outsiders}")
    print()

    sp2_file, sp3_file, fixed_file, log_file = (
        os.path.relpath(paths[name]) for name in ("sp2", "sp3", "fixed", "log")
    )
    print("the same with the command line:")
    print(f"  imcea replay --settings {sp2_file} --compare {sp3_file} {log_file}")
    print(f"  imcea replay --settings {sp3_file} --compare {fixed_file} {log_file}")


if __name__ == "__main__":
    main()
