"""How fast ``imcea replay`` goes through a mail log, measured against plain JSON in the same run.

1. Throughput of ``imcea replay`` on one process, in records per second, over a
   generated log of 200,000 records, against the cost of ``json.loads`` +
   ``json.dumps`` of the same lines alone (goal: ratio <= 2.0).  The replay side is
   the whole command: reading the file, parsing and checking each record, deciding
   every recipient, and writing one JSON line per recipient (to ``os.devnull``).
2. The speed-up of ``--jobs 2`` over ``--jobs 1`` on the same log (same output), with
   the CPU time of the main process and of the workers: on a machine whose cores are
   busy with other work the wall-clock speed-up falls, while the CPU times show what
   the parallel run costs.
3. Where the time of one process goes, per record: reading the log, the JSON reader,
   the rest of the engine (record checks, decisions, output text), and writing.

The two sides of each ratio are timed in alternating rounds and the best round of each
is kept.  Run: ``python tests/benchmarks/bench_replay.py [RECORDS]`` (default 200000).
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
from imcea.logs import _chunks, _Engine, run_replay

ROUNDS = 3

SETTINGS = """\
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


def log_lines(count: int) -> list[bytes]:
    """A day of a mid-sized site's IMS log: mostly inbound mail, then outbound, site
    connector traffic, relay attempts and the odd malformed or tricky address."""
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


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    lines = log_lines(count)
    loads, dumps = json.loads, json.dumps
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp, "log.jsonl")
        log.write_bytes(b"".join(lines))
        settings = Path(tmp, "settings.toml")
        settings.write_text(SETTINGS)

        def command(jobs: int) -> Callable[[], None]:
            args = argparse.Namespace(settings=str(settings), compare=None, jobs=jobs, log=str(log))

            def run() -> None:
                with open(os.devnull, "w") as sink:
                    status = run_replay(args, sink, io.StringIO(), io.StringIO())
                assert status == 0, status

            return run

        texts = [line.decode() for line in lines]  # str: json.loads' fastest input

        def json_only() -> None:
            for text in texts:
                dumps(loads(text))

        t = best_of({"json": json_only, "replay": command(1)})
        print(f"{count} records ({log.stat().st_size / 1e6:.1f} MB), best of {ROUNDS} rounds")
        print(f"  json.loads + json.dumps  {count / t['json']:10,.0f} records/s")
        print(f"  imcea replay --jobs 1    {count / t['replay']:10,.0f} records/s")
        print(f"  ratio replay/json: {t['replay'] / t['json']:.2f}; goal <= 2.0")

        t = best_of({"jobs1": command(1), "jobs2": command(2)})
        print(f"  imcea replay --jobs 2    {count / t['jobs2']:10,.0f} records/s")
        print(f"  speed-up of --jobs 2 over --jobs 1: {t['jobs1'] / t['jobs2']:.2f}x")
        for jobs in (1, 2):
            main_cpu, workers_cpu = cpu_times(command(jobs))
            print(
                f"  --jobs {jobs} CPU time: main process {main_cpu:.2f} s,"
                f" workers {workers_cpu:.2f} s"
            )
        breakdown(log, imcea.load_settings(settings))


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


def breakdown(log: Path, settings: imcea.Settings) -> None:
    """Time per record of each part of one process, over the same log: reading it in
    chunks, the JSON reader alone, the rest of the engine (record checks, decisions and
    output text), and writing the output."""
    with open(log, "rb") as handle:
        chunks = list(_chunks(handle))
    results = [_Engine(settings, None).run(first, chunk) for first, chunk in chunks]
    records = sum(len(chunk) for _, chunk in chunks)
    decode = json.JSONDecoder().raw_decode

    def read() -> None:
        with open(log, "rb") as handle:
            for _ in _chunks(handle):
                pass

    def json_reader() -> None:
        for _, chunk in chunks:
            for line in chunk:
                decode(line.decode("utf-8", "surrogatepass"))

    def engine() -> None:
        replayer = _Engine(settings, None)  # remembers nothing yet, as the command starts
        for first, chunk in chunks:
            replayer.run(first, chunk)

    def write() -> None:
        with open(os.devnull, "w") as sink:
            for segments, _ in results:
                for _, text in segments:
                    sink.write(text)
                sink.flush()

    t = best_of({"read": read, "json": json_reader, "engine": engine, "write": write})
    rows = {
        "reading the log": t["read"],
        "JSON reader": t["json"],
        "checks, decisions, output text": t["engine"] - t["json"],
        "writing": t["write"],
    }
    total = sum(rows.values())
    print(f"where the time of one process goes ({records} records, best of {ROUNDS})")
    for name, seconds in rows.items():
        share = seconds / total
        print(f"  {name:31} {seconds / records * 1e6:6.2f} us/record  {share:5.1%}")


if __name__ == "__main__":
    main()
