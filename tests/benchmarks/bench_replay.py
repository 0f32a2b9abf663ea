"""How fast ``imcea replay`` goes through a mail log, measured against plain JSON in the same run.

1. The main figure: throughput of ``imcea replay --jobs 1`` over a realistic log,
   against ``json.loads`` + ``json.dumps`` of the same lines alone (goal: ratio <= 2.0).
   The log: 20,000 directory users; recipients 55% local, 30% remote with mostly
   distinct addresses, 10% bracketed (``<...>``), 5% ``IMCEASMTP-`` one-offs; 1-3
   recipients per record; clients drawn from ~100,000 Internet addresses and 500 LAN
   hosts; 5% authenticated; rerouting on, 1,000 allow networks.  The replay side is the
   whole command: reading the file, parsing and checking each record, deciding every
   recipient, and writing one JSON line per recipient (to ``os.devnull``).
2. The same ratio over the small log of earlier releases (2,000 users, a few hundred
   distinct remote recipients), beside it.
3. With ``--jobs``: the speed-up of ``--jobs 2`` over ``--jobs 1`` on the realistic log
   (same output), with the CPU time of the main process and of the workers: on a
   machine whose cores are busy with other work the wall-clock speed-up falls, while
   the CPU times show what the parallel run costs.
4. The replay machinery alone, on the realistic log: the command's lines made through a
   decider that answers from a table made beforehand, against the same JSON baseline.
5. Where the time of one process goes, per record: reading the log, the JSON reader,
   the replay (record checks, decisions, output text), and writing.

The two sides of each ratio are timed in alternating rounds and the best round of each
is kept.  Run: ``python tests/benchmarks/bench_replay.py [--records N] [--full] [--jobs]``
(default 50,000 records; ``--full`` for the 200,000 records of the main figure).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import imcea
from imcea.decision import Client
from imcea.replay import replay_lines
from imcea.replay_command import replay_command

ROUNDS = 3
USERS = 20_000
ALLOW_NETWORKS = 1_000
LAN_HOSTS = 500
INTERNET_CLIENTS = 100_000


def realistic_settings(directory: Path) -> str:
    """SP3, rerouting on, 20,000 directory users, 1,000 allow networks (10.0.0.0/24 ...
    10.3.231.0/24, the LAN hosts among them)."""
    directory.write_text("".join(f"user{i}@contoso.com\n" for i in range(USERS)))
    allow = ", ".join(f'"10.{i // 256}.{i % 256}.0/24"' for i in range(ALLOW_NETWORKS))
    return f"""\
reroute = true
release = "SP3"
server_addresses = ["192.0.2.10", "10.0.0.1"]
directory = "{directory.name}"

[[routing]]
domain = "contoso.com"
action = "inbound"

[restrictions]
authenticated = true
allow = [{allow}]
internal = ["10.0.0.1"]
deny = ["10.0.0.66"]
"""


def realistic_log(count: int, seed: int = 237927) -> list[bytes]:
    """*count* records of the realistic mix (see the module's docstring)."""
    rng = random.Random(seed)
    internet = [
        f"{rng.choice((23, 45, 62, 81, 98, 151, 185, 198, 203, 212))}.{rng.randrange(256)}"
        f".{rng.randrange(256)}.{rng.randrange(1, 255)}"
        for _ in range(INTERNET_CLIENTS)
    ]
    lan = [f"10.{n % 4}.{rng.randrange(200)}.{rng.randrange(2, 250)}" for n in range(LAN_HOSTS)]
    serial = 0

    def remote() -> str:
        nonlocal serial
        serial += 1
        return f"r{serial}.{rng.randrange(10**6)}@mail{rng.randrange(5000)}.example"

    def local() -> str:
        return f"user{rng.randrange(USERS)}@contoso.com"

    out = []
    for n in range(count):
        recipients = []
        for _ in range(rng.choice((1, 1, 2, 3))):
            kind = rng.random()
            if kind < 0.55:
                recipients.append(local())
            elif kind < 0.85:
                recipients.append(remote())
            elif kind < 0.95:
                recipients.append(f"<{local() if rng.random() < 0.6 else remote()}>")
            else:
                recipients.append(imcea.encode("SMTP", remote(), "contoso.com"))
        record: dict[str, object] = {
            "id": f"{n:08x}",
            "sender": f"sender{rng.randrange(10**5)}@mail{rng.randrange(5000)}.example",
            "recipients": recipients,
            "ip": rng.choice(lan) if rng.random() < 0.3 else rng.choice(internet),
        }
        if rng.random() < 0.05:
            record["authenticated"] = True
        out.append(json.dumps(record).encode() + b"\n")
    return out


SMALL_SETTINGS = """\
reroute = true
release = "SP3"
server_addresses = ["192.0.2.10", "10.0.0.1"]

[[routing]]
domain = "contoso.com"
action = "inbound"

[restrictions]
authenticated = true
allow = ["10.0.0.0/255.255.255.0", "192.168.0.1"]
internal = ["10.0.0.1"]
deny = ["10.0.0.66"]
"""


def small_log(count: int) -> list[bytes]:
    """The log of earlier releases: a day of a mid-sized site's IMS, 2,000 users, mostly
    inbound mail, then outbound, site connector traffic, relay attempts and the odd
    malformed or tricky address."""
    rng = random.Random(237927)
    users = [f"user{i}@contoso.com" for i in range(2000)]
    out = []
    for n in range(count):
        kind = rng.random()
        auth = False
        if kind < 0.55:  # inbound from the Internet to local users
            ip = f"{rng.choice((198, 203))}.{rng.randrange(256)}.{rng.randrange(256)}.9"
            rcpts = rng.sample(users, rng.choice((1, 1, 1, 2, 3)))
        elif kind < 0.75:  # outbound from the LAN
            ip = f"10.0.0.{rng.randrange(2, 250)}"
            rcpts = [f"someone{rng.randrange(10**5)}@partner{rng.randrange(50)}.example"]
        elif kind < 0.85:  # the site connector (KB Q237927)
            ip = "192.168.0.1"
            inner = f"u{rng.randrange(500)}@site2.example"
            rcpts = [imcea.encode("SMTP", inner, "contoso.com")]
        elif kind < 0.95:  # relay attempts from outside
            ip = f"203.0.113.{rng.randrange(1, 255)}"
            target = f"victim{rng.randrange(1000)}@elsewhere.example"
            if rng.random() < 0.5:
                target = imcea.encode("SMTP", target, "contoso.com")
            rcpts = [target]
        else:  # authenticated roaming users, postmaster, the percent hack
            ip = f"198.51.100.{rng.randrange(1, 255)}"
            auth = True
            rcpts = [
                rng.choice(
                    ("Postmaster", "a%b@contoso.com", "<x@y.example>", "@a,@b:c@contoso.com")
                )
            ]
        record: dict[str, object] = {
            "id": f"{n:08x}",
            "sender": f"sender{rng.randrange(10**4)}@mail{rng.randrange(100)}.example",
            "recipients": rcpts,
            "ip": ip,
        }
        if auth:
            record["authenticated"] = True
        out.append(json.dumps(record).encode() + b"\n")
    return out


def best_of(runs: dict[str, Callable[[], None]], rounds: int = ROUNDS) -> dict[str, float]:
    """Best time in seconds of each callable, the callables interleaved round by round."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def command(log: Path, settings: Path, jobs: int) -> Callable[[], None]:
    """One run of ``imcea replay --jobs JOBS``, its output to ``os.devnull``; each run
    loads its settings afresh, as the command does."""

    def run() -> None:
        loaded = imcea.load_settings(settings)
        with open(os.devnull, "w") as sink:
            status = replay_command(
                loaded, None, str(log), out=sink, err=io.StringIO(), stdin=io.StringIO(), jobs=jobs
            )
        assert status == 0, status

    return run


def ratio(name: str, lines: list[bytes], log: Path, settings: Path) -> None:
    """Replay against ``json.loads`` + ``json.dumps`` of the same lines."""
    loads, dumps = json.loads, json.dumps
    texts = [line.decode() for line in lines]  # str: json.loads' fastest input

    def json_only() -> None:
        for text in texts:
            dumps(loads(text))

    count = len(lines)
    t = best_of({"json": json_only, "replay": command(log, settings, 1)})
    print(f"{name}: {count} records ({log.stat().st_size / 1e6:.1f} MB), best of {ROUNDS} rounds")
    print(f"  json.loads + json.dumps  {count / t['json']:10,.0f} records/s")
    print(f"  imcea replay --jobs 1    {count / t['replay']:10,.0f} records/s")
    print(f"  ratio replay/json: {t['replay'] / t['json']:.2f}; goal <= 2.0")


def cpu_times(run: Callable[[], None]) -> tuple[float, float]:
    """CPU seconds of this process and of its (finished) child processes during *run*."""
    me, kids = resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN
    before = resource.getrusage(me), resource.getrusage(kids)
    run()
    after = resource.getrusage(me), resource.getrusage(kids)
    spent = [
        (a.ru_utime + a.ru_stime) - (b.ru_utime + b.ru_stime)
        for a, b in zip(after, before, strict=True)
    ]
    return spent[0], spent[1]


def jobs(log: Path, settings: Path, count: int) -> None:
    t = best_of({"jobs1": command(log, settings, 1), "jobs2": command(log, settings, 2)})
    print(f"  imcea replay --jobs 2    {count / t['jobs2']:10,.0f} records/s")
    print(f"  speed-up of --jobs 2 over --jobs 1: {t['jobs1'] / t['jobs2']:.2f}x")
    for n in (1, 2):
        main_cpu, workers_cpu = cpu_times(command(log, settings, n))
        print(f"  --jobs {n} CPU time: main process {main_cpu:.2f} s, workers {workers_cpu:.2f} s")


def breakdown(log: Path, settings: Path) -> None:
    """Time per record of each part of one process, over the same log: reading it, the
    JSON reader alone, the replay (record checks, decisions and output text), and
    writing the output."""
    lines = log.read_bytes().splitlines(keepends=True)
    output = list(replay_lines(lines, imcea.load_settings(settings)))
    decode = json.JSONDecoder().raw_decode

    def read() -> None:
        with open(log, "rb") as handle:
            for _ in handle:
                pass

    def json_reader() -> None:
        for line in lines:
            decode(line.decode("utf-8", "surrogatepass"))

    def replaying() -> None:
        # a new decider, which remembers nothing yet, as the command starts
        for _ in replay_lines(lines, imcea.load_settings(settings)):
            pass

    def write() -> None:
        with open(os.devnull, "w") as sink:
            for start in range(0, len(output), 1000):
                sink.write("".join(output[start : start + 1000]))
                sink.flush()

    t = best_of({"read": read, "json": json_reader, "replay": replaying, "write": write})
    rows = {
        "reading the log": t["read"],
        "JSON reader": t["json"],
        "checks, decisions, output text": t["replay"] - t["json"],
        "writing": t["write"],
    }
    total = sum(rows.values())
    count = len(lines)
    print(f"  where the time of one process goes (best of {ROUNDS}):")
    for name, seconds in rows.items():
        print(f"    {name:31} {seconds / count * 1e6:6.2f} us/record  {seconds / total:5.1%}")


def layer(lines: list[bytes], settings: Path) -> None:
    """The replay machinery alone: :func:`replay_lines` with every recipient's decision
    taken from a table made beforehand, against ``json.loads`` + ``json.dumps`` (what
    reading, checking, counting and writing cost, decisions aside)."""
    loaded = imcea.load_settings(settings)
    real = imcea.Decider(loaded)
    answers: dict[tuple[str, str, bool], imcea.Decision] = {}
    for line in lines:
        record = json.loads(line)
        ip, authenticated = record["ip"], "authenticated" in record
        for recipient in record["recipients"]:
            decision = real.decide_recipient(recipient, ip, authenticated=authenticated)
            answers[recipient, ip, authenticated] = decision

    def from_table(recipient: str, client: Client, _: object) -> imcea.Decision:
        return answers[recipient, client.text, client.authenticated]

    texts = [line.decode() for line in lines]
    loads, dumps = json.loads, json.dumps

    def json_only() -> None:
        for text in texts:
            dumps(loads(text))

    def replaying() -> None:
        for _ in replay_lines(lines, real):
            pass

    replay_module = sys.modules["imcea.replay"]  # the name imcea.replay is the function
    deciding = replay_module.decide_recipient
    replay_module.decide_recipient = from_table  # what the replay calls for each recipient
    try:
        t = best_of({"json": json_only, "layer": replaying})
    finally:
        replay_module.decide_recipient = deciding
    print(f"  the replay machinery alone (decisions from a table): {t['layer'] / t['json']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000, help="records per log")
    parser.add_argument("--full", action="store_true", help="200,000 records (the main figure)")
    parser.add_argument("--jobs", action="store_true", help="also time --jobs 2")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the breakdown")
    args = parser.parse_args()
    count = 200_000 if args.full else args.records
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = root / "realistic.toml"
        settings.write_text(realistic_settings(root / "gal.txt"))
        lines = realistic_log(count)
        log = root / "realistic.jsonl"
        log.write_bytes(b"".join(lines))
        ratio("realistic log", lines, log, settings)
        layer(lines, settings)
        if not args.no_breakdown:
            breakdown(log, settings)
        if args.jobs:
            jobs(log, settings, count)
        small = root / "small.toml"
        small.write_text(SMALL_SETTINGS)
        lines = small_log(count)
        log = root / "small.jsonl"
        log.write_bytes(b"".join(lines))
        ratio("small log (2,000 users)", lines, log, small)


if __name__ == "__main__":
    main()
