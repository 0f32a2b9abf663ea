"""Replay a directory of mail logs on a Dask cluster: one partition per log file.

Generates a directory of Postfix mail logs and Exchange message tracking logs (or
takes yours), starts a ``dask.distributed.LocalCluster`` of 2 workers, and replays
every file under the settings of an Exchange 5.5 IMS that relays for its branch
network only, printing the first decisions and the summary.  Needs ``imcea[dask]``.

Run: ``python examples/dask_replay.py [DIRECTORY]`` (default: a temporary directory
of generated logs).
"""

from __future__ import annotations

import csv
import io
import random
import sys
import tempfile
from pathlib import Path

SETTINGS = """\
reroute = true
server_addresses = ["192.0.2.10"]

[[routing]]
domain = "contoso.com"
action = "inbound"

[restrictions]
authenticated = true
allow = ["10.1.0.0/16"]
"""

_CLIENTS = [
    ("mail.partner.example", "203.0.113.45"),
    ("unknown", "198.51.100.99"),
    ("gw.branch.contoso.com", "10.1.2.3"),
    ("mx.vendor.example", "192.0.2.81"),
    ("out.newsletter.example", "198.51.100.7"),
    ("mail-a.bigmail.example", "203.0.113.120"),
    ("mail-b.bigmail.example", "203.0.113.121"),
    ("relay.isp.example", "192.0.2.150"),
    ("unknown", "198.51.100.201"),
    ("mx6.vendor.example", "2001:db8::25"),
]
_RECIPIENTS = [
    "jdoe@contoso.com",
    "sales@contoso.com",
    "someone@elsewhere.example",
    "IMCEASMTP-victim+40elsewhere+2Eexample@contoso.com",
    "user%elsewhere.example@contoso.com",
]


def postfix_lines(messages: int, seed: int = 5321) -> list[str]:
    """A Postfix mail log of *messages* accepted messages, a few at a time in flight
    (their lines interleaved), with rejected relay attempts and the lines of
    postscreen, TLS and other daemons that a real log is mostly made of."""
    rng = random.Random(seed)
    lines: list[str] = []
    open_messages: list[tuple[str, list[str]]] = []
    for n in range(messages):
        qid = f"{0x1000000000 + n * 7919:X}"
        name, ip = rng.choice(_CLIENTS)
        pid = 2000 + n % 97
        stamp = f"Mar  3 09:{n // 60 % 60:02}:{n % 60:02}"
        recipients = rng.sample(_RECIPIENTS, rng.randint(1, 3))
        auth = ", sasl_method=PLAIN, sasl_username=alice" if rng.random() < 0.1 else ""
        tail = [
            f"{stamp} mx1 postfix/qmgr[1800]: {qid}: from=<sender{n % 50}@example.net>,"
            f" size={rng.randint(900, 90000)}, nrcpt={len(recipients)} (queue active)",
            *(
                f"{stamp} mx1 postfix/smtp[{pid + 1}]: {qid}: to=<{r}>,"
                " relay=mx.example[192.0.2.25]:25, delay=0.5, delays=0.1/0/0.2/0.2,"
                " dsn=2.0.0, status=sent (250 2.0.0 Ok)"
                for r in recipients
            ),
            f"{stamp} mx1 postfix/qmgr[1800]: {qid}: removed",
        ]
        if rng.random() < 0.3:
            tail.insert(
                1,
                f"{stamp} mx1 postfix/smtp[{pid + 1}]: Trusted TLS connection established to"
                " mx.example[192.0.2.25]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384"
                " (256/256 bits)",
            )
        port = 40000 + n % 20000
        lines += [
            f"{stamp} mx1 postfix/postscreen[1900]: CONNECT from [{ip}]:{port} to [192.0.2.10]:25",
            f"{stamp} mx1 postfix/postscreen[1900]: PASS OLD [{ip}]:{port}",
            f"{stamp} mx1 postfix/smtpd[{pid}]: connect from {name}[{ip}]",
            f"{stamp} mx1 postfix/smtpd[{pid}]: Anonymous TLS connection established from"
            f" {name}[{ip}]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)",
            f"{stamp} mx1 postfix/smtpd[{pid}]: {qid}: client={name}[{ip}]{auth}",
            f"{stamp} mx1 postfix/cleanup[{pid + 2}]: {qid}: message-id=<{n}@example.net>",
            f"{stamp} mx1 postfix/smtpd[{pid}]: disconnect from {name}[{ip}] ehlo=1 mail=1"
            f" rcpt={len(recipients)} data=1 quit=1 commands={4 + len(recipients)}",
        ]
        open_messages.append((qid, tail))
        if len(open_messages) > 3 or n == messages - 1:  # finish messages out of order
            rng.shuffle(open_messages)
            for _, rest in open_messages:
                lines += rest
            open_messages.clear()
        if rng.random() < 0.2:
            lines.append(
                f"{stamp} mx1 postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from"
                f" unknown[203.0.113.{n % 250}]: 554 5.7.1 <v{n}@elsewhere.example>:"
                " Relay access denied;"
                f" from=<spam@bad.example> to=<v{n}@elsewhere.example> proto=ESMTP helo=<bad>"
            )
    return [line + "\n" for line in lines]


#: The columns of an Exchange 2013-2019 message tracking log, in their usual order.
TRACKING_FIELDS = [
    *("date-time", "client-ip", "client-hostname", "server-ip", "server-hostname"),
    *("source-context", "connector-id", "source", "event-id", "internal-message-id"),
    *("message-id", "network-message-id", "recipient-address", "recipient-status"),
    *("total-bytes", "recipient-count", "related-recipient-address", "reference"),
    *("message-subject", "sender-address", "return-path", "message-info", "directionality"),
    *("tenant-id", "original-client-ip", "original-server-ip", "custom-data"),
    *("transport-traffic-type", "log-id", "schema-version"),
]


def exchange_lines(messages: int, seed: int = 5321) -> list[str]:
    """An Exchange message tracking log: per message a RECEIVE from SMTP, an AGENTINFO
    and a DELIVER or SEND event."""
    rng = random.Random(seed)
    out = io.StringIO()
    out.write(
        "#Software: Microsoft Exchange Server\r\n#Version: 15.01.2507.006\r\n"
        "#Log-type: Message Tracking Log\r\n#Date: 2026-03-03T08:00:00.000Z\r\n"
        f"#Fields: {','.join(TRACKING_FIELDS)}\r\n"
    )
    writer = csv.writer(out, lineterminator="\r\n")
    for n in range(messages):
        _, ip = rng.choice(_CLIENTS)
        recipients = ";".join(rng.sample(_RECIPIENTS, rng.randint(1, 3)))
        base = {
            "date-time": f"2026-03-03T08:{n // 60 % 60:02}:{n % 60:02}.000Z",
            "server-hostname": "EX01",
            "internal-message-id": str(1000000 + n),
            "message-id": f"<{n}@example.net>",
            "recipient-address": recipients,
            "sender-address": f"sender{n % 50}@example.net",
            "message-subject": f'Order {n}, "urgent"',
        }
        for event, source, extra in (
            ("RECEIVE", "SMTP", {"client-ip": ip, "server-ip": "192.0.2.10"}),
            ("AGENTINFO", "AGENT", {"custom-data": "S:CFA=SUM|SCL=-1"}),
            ("DELIVER", "STOREDRIVER", {"server-ip": "10.0.0.5"}),
        ):
            fields = {**base, **extra, "event-id": event, "source": source}
            writer.writerow([fields.get(name, "") for name in TRACKING_FIELDS])
    return out.getvalue().splitlines(keepends=True)


def generate(directory: Path, files: int = 4, messages: int = 2000) -> list[Path]:
    """Write *files* Postfix logs and as many Exchange logs into *directory*."""
    paths = []
    for i in range(files):
        for name, lines in (
            (f"mail.log.{i}", postfix_lines(messages, seed=i)),
            (f"MSGTRK2026030{i}-1.LOG", exchange_lines(messages, seed=i)),
        ):
            path = directory / name
            path.write_text("".join(lines), encoding="utf-8", newline="")
            paths.append(path)
    return paths


def main() -> None:
    import dask
    import dask.bag
    from dask.distributed import Client, LocalCluster

    from imcea.dask import replay_bag, summary_of

    with tempfile.TemporaryDirectory() as scratch:
        if len(sys.argv) > 1:
            paths = sorted(p for p in Path(sys.argv[1]).iterdir() if p.is_file())
        else:
            paths = generate(Path(scratch))
        with (
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
            Client(cluster),
        ):
            # blocksize=None: one partition per file, its lines in order (Postfix
            # correlates the lines of a queue id within a file)
            lines = dask.bag.read_text([str(p) for p in paths], blocksize=None)
            records = replay_bag(lines, SETTINGS)
            relayed = records.filter(lambda r: r["action"] == "reroute").count()
            # computed together, each file is read and replayed once for both
            relayed, summary = dask.compute(relayed, summary_of(lines, SETTINGS))
        print(f"{len(paths)} files, {relayed} recipients relayed")
        for line in summary.lines():
            print(line)
        for error in summary.errors:
            print("bad line:", error)


if __name__ == "__main__":
    main()
