"""Load test of ``imcea policy``: 20,000 requests over 50 concurrent loopback connections.

The server runs as a subprocess (``python -m imcea policy --listen
127.0.0.1:0``) with a realistic configuration: rerouting on, a directory of 10,000
users, an allow list and a never-route list.  The clients are 50 asyncio connections
in this process; each sends its requests one after the other and waits for each reply,
as Postfix does, with the full attribute set a Postfix 3.7 RCPT request carries.  Every
reply is checked against :func:`imcea.postfix.respond` worked out beforehand.

Reported: requests per second, latency percentiles (p50, p99, max) as seen by the
client, errors (a wrong reply, a closed connection, a timeout), and the server's
resident memory (VmRSS from /proc) before the load, during it and after it.  Goal: zero
errors and memory flat across the run.  Traffic stays on 127.0.0.1; the run is bounded
in count and time.

Beside it, in the same run and interleaved with it, the same load against a do-nothing
asyncio ``Protocol`` server (this script with ``--serve-dunno``) that splits the byte
stream into requests and answers each ``action=DUNNO``: the cost of moving the requests
at all.  The figure that matters is imcea's server CPU per request against that bound
(goal: at most 2.0 times); the best of ``--rounds`` rounds of each is reported.

Run: ``python tests/benchmarks/bench_policy.py [--requests N] [--connections N] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import imcea
from imcea.postfix import PolicyRequest, format_reply, respond

ROOT = Path(__file__).resolve().parents[2]

USERS = 10_000
DISTINCT_REQUESTS = 2_000
TIMEOUT = 10.0  # seconds for one reply
DEADLINE = 300.0  # seconds for the whole run

SETTINGS_TOML = """\
reroute = true
server_addresses = ["192.0.2.10", "10.0.0.1"]
directory = "gal.txt"
[[routing]]
domain = "contoso.com"
action = "inbound"
[[routing]]
domain = "partner.example"
action = "reroute"
to = "mail.partner.example"
[restrictions]
authenticated = true
allow = ["192.168.0.1", "10.0.0.0/255.255.255.0", "2001:db8::/32"]
internal = ["10.0.0.1"]
deny = ["10.0.0.66"]
"""


def requests(count: int, settings: imcea.Settings) -> list[tuple[bytes, bytes]]:
    """*count* distinct requests as Postfix writes them, each with its expected reply."""
    rng = random.Random(7)
    out = []
    for i in range(count):
        kind = rng.random()
        if kind < 0.5:
            recipient = f"user{rng.randrange(USERS * 11 // 10)}@contoso.com"  # ~9% unknown
        elif kind < 0.8:
            recipient = f"someone{i}@remote{i % 13}.example"
        elif kind < 0.9:
            recipient = f"rcpt{i}@partner.example"
        else:
            recipient = imcea.encode("SMTP", f"x{i}@remote.example", "contoso.com")
        client = rng.choice(
            ["203.0.113.7", "198.51.100.23", "192.168.0.1", "10.0.0.42", "10.0.0.66"]
            + [f"203.0.113.{rng.randrange(256)}"] * 3
        )
        attributes = {
            "request": "smtpd_access_policy",
            "protocol_state": "RCPT",
            "protocol_name": "ESMTP",
            "helo_name": "client.example",
            "queue_id": "",
            "sender": f"sender{i}@outside.example",
            "recipient": recipient,
            "recipient_count": "0",
            "client_address": client,
            "client_name": "unknown",
            "reverse_client_name": "unknown",
            "instance": f"{i:x}.6548a1f2.5d2e3.0",
            "sasl_method": "",
            "sasl_username": "alice" if rng.random() < 0.05 else "",
            "sasl_sender": "",
            "size": "0",
            "ccert_subject": "",
            "ccert_issuer": "",
            "ccert_fingerprint": "",
            "ccert_pubkey_fingerprint": "",
            "encryption_protocol": "",
            "encryption_cipher": "",
            "encryption_keysize": "0",
            "etrn_domain": "",
            "stress": "",
            "client_port": str(1024 + i),
            "policy_context": "",
            "server_address": rng.choice(["192.0.2.10", "10.0.0.1"]),
            "server_port": "25",
        }
        wire = "".join(f"{k}={v}\n" for k, v in attributes.items()).encode() + b"\n"
        expected = format_reply(
            respond(PolicyRequest.from_attributes(attributes.items()), settings)
        )
        out.append((wire, expected))
    return out


def rss_kib(pid: int) -> int:
    """The resident set size of process *pid*, in KiB (VmRSS of /proc/PID/status)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Result:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.rss: list[tuple[int, int]] = []  # (requests done, KiB)


async def connection(
    port: int, work: list[tuple[bytes, bytes | None]], result: Result, done: list[int]
) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        result.errors.append(f"connect: {exc}")
        return
    try:
        for wire, expected in work:
            start = time.perf_counter()
            writer.write(wire)
            async with asyncio.timeout(TIMEOUT):
                reply = await reader.readuntil(b"\n\n")
            result.latencies.append(time.perf_counter() - start)
            done[0] += 1
            if expected is not None and reply != expected:
                result.errors.append(f"reply {reply!r}, expected {expected!r}")
    except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
        result.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        writer.close()


async def sample_memory(pid: int, result: Result, done: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        result.rss.append((done[0], rss_kib(pid)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


def cpu_seconds(pid: int) -> float:
    """CPU time of process *pid* so far, user and system, summed over its threads.

    From /proc/PID/task/*/schedstat (nanoseconds on the CPU, as the scheduler counts
    them), else from /proc/PID/stat (utime and stime, sampled at the clock tick: 10 ms,
    coarse for a short run).
    """
    try:
        total = 0
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text(encoding="ascii").split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        pass
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Run:
    """The measured run's figures."""

    def __init__(self) -> None:
        self.result = Result()
        self.warm_errors: list[str] = []
        self.idle_rss = self.warm_rss = 0
        self.elapsed = self.server_cpu = 0.0


async def load(
    pool: list[tuple[bytes, bytes | None]], pid: int, port: int, total: int, connections: int
) -> Run:
    """Warm up (every distinct request once, over as many connections), then measure."""
    run = Run()
    run.idle_rss = rss_kib(pid)
    warm = Result()
    slices = [pool[i::connections] for i in range(connections)]
    await asyncio.wait_for(
        asyncio.gather(*(connection(port, part, warm, [0]) for part in slices)), DEADLINE
    )
    run.warm_errors = warm.errors
    run.warm_rss = rss_kib(pid)
    rng = random.Random(11)
    per = [total // connections + (i < total % connections) for i in range(connections)]
    work = [[rng.choice(pool) for _ in range(n)] for n in per]
    done = [0]
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_memory(pid, run.result, done, stop))
    cpu = cpu_seconds(pid)
    start = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(*(connection(port, w, run.result, done) for w in work)), DEADLINE
    )
    run.elapsed = time.perf_counter() - start
    run.server_cpu = cpu_seconds(pid) - cpu
    stop.set()
    await sampler
    run.result.rss.append((done[0], rss_kib(pid)))
    return run


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _at(samples: list[tuple[int, int]], done: int) -> int:
    for n, kib in samples:
        if n >= done:
            return kib
    return samples[-1][1]


class _Dunno(asyncio.Protocol):
    """The bound: split the stream into requests, answer each DUNNO, nothing else."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        count = self.buffer.count(b"\n\n")
        if count:
            self.buffer = self.buffer.rpartition(b"\n\n")[2]
            self.transport.write(b"action=DUNNO\n\n" * count)


def serve_dunno() -> int:
    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Dunno, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        print(f"dunno: listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        server.close()
        print("dunno: stopped", file=sys.stderr, flush=True)

    asyncio.run(serve())
    return 0


def measure(
    command: list[str], pool: list[tuple[bytes, bytes | None]], total: int, connections: int
) -> tuple[Run, int, list[str]]:
    """Start the server *command*, load it, stop it: the run, its exit status, its log."""
    server = subprocess.Popen(
        [*command, "--listen", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert server.stderr is not None
    banner = server.stderr.readline()
    if "listening on" not in banner:
        server.kill()
        raise RuntimeError(f"the server did not start: {banner}{server.stderr.read()}")
    port = int(banner.rsplit(":", 1)[1])
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(server.stderr or ()), daemon=True)
    reader.start()
    try:
        run = asyncio.run(load(pool, server.pid, port, total, connections))
    finally:
        server.send_signal(signal.SIGTERM)
        status = server.wait(timeout=30)
        reader.join(timeout=5)
    return run, status, log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve-dunno", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--listen", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_dunno:
        return serve_dunno()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "gal.txt").write_text(
            "".join(f"user{i}@contoso.com\n" for i in range(USERS)), encoding="utf-8"
        )
        settings = Path(tmp) / "ims.toml"
        settings.write_text(SETTINGS_TOML, encoding="utf-8")
        pool: list[tuple[bytes, bytes | None]] = list(
            requests(DISTINCT_REQUESTS, imcea.load_settings(settings))
        )
        bound_pool: list[tuple[bytes, bytes | None]] = [(wire, None) for wire, _ in pool]
        ours = [sys.executable, "-m", "imcea", "policy", "--settings", str(settings)]
        bound = [sys.executable, __file__, "--serve-dunno"]
        best: Run | None = None
        best_bound: Run | None = None
        status, log = 0, []
        for _ in range(args.rounds):
            base, _, _ = measure(bound, bound_pool, args.requests, args.connections)
            if best_bound is None or base.server_cpu < best_bound.server_cpu:
                best_bound = base
            run, status, log = measure(ours, pool, args.requests, args.connections)
            if best is None or run.server_cpu < best.server_cpu:
                best = run
    assert best is not None and best_bound is not None
    run = best
    result = run.result
    answered = len(result.latencies)
    ms = [x * 1000 for x in result.latencies]
    samples = result.rss
    errors = run.warm_errors + result.errors
    print(
        f"imcea policy load test: {answered} of {args.requests} requests answered over "
        f"{args.connections} connections in {run.elapsed:.2f} s "
        f"(after a warm-up of {len(pool)} distinct requests over as many connections)"
    )
    print(f"  throughput        {answered / run.elapsed:,.0f} requests/s")
    if ms:
        print(
            f"  latency (ms)      p50 {percentile(ms, 0.50):.2f}  p99 {percentile(ms, 0.99):.2f}"
            f"  max {max(ms):.2f}  mean {statistics.fmean(ms):.2f}"
        )
    ours_cpu = run.server_cpu * 1e6 / max(answered, 1)
    bound_cpu = best_bound.server_cpu * 1e6 / max(len(best_bound.result.latencies), 1)
    print(f"  server CPU        {ours_cpu:.1f} us per request")
    print(
        f"  do-nothing bound  {bound_cpu:.1f} us per request "
        f"({len(best_bound.result.latencies) / best_bound.elapsed:,.0f} requests/s)"
    )
    print(f"  ratio             {ours_cpu / bound_cpu:.2f} x the bound (goal <= 2.0)")
    print(f"  errors            {len(errors)}")
    for error in errors[:5]:
        print(f"    {error}")
    print(
        f"  server RSS (MiB)  idle {run.idle_rss / 1024:.1f}"
        f"  after warm-up {run.warm_rss / 1024:.1f}"
        f"  at 25% {_at(samples, answered // 4) / 1024:.1f}"
        f"  50% {_at(samples, answered // 2) / 1024:.1f}"
        f"  75% {_at(samples, answered * 3 // 4) / 1024:.1f}"
        f"  end {samples[-1][1] / 1024:.1f}"
        f"  max {max(k for _, k in samples) / 1024:.1f}"
        f"  ({len(samples)} samples)"
    )
    quarter = _at(samples, answered // 4)
    print(
        f"  RSS growth: warm-up to end {samples[-1][1] - run.warm_rss:+d} KiB, "
        f"25% to end {samples[-1][1] - quarter:+d} KiB"
    )
    print(f"  server exit status after SIGTERM: {status}; its log: {[x.strip() for x in log]}")
    unexpected = [line for line in log if "stopped" not in line]
    errors += best_bound.warm_errors + best_bound.result.errors
    ok = not errors and answered == args.requests and status == 0 and not unexpected
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
