"""How much a decision costs, measured against the standard library in the same run.

1. Per recipient: ``imcea.decide()`` against ``email.utils.parseaddr`` on the same
   recipients (goal: ratio <= 0.50), for envelopes of one recipient and of ten, all
   from one client (as in one SMTP session; the relay permission of a client is
   remembered with the settings), and for envelopes each from a client never seen.
2. Allow-list size: ``decide()`` for clients that must be looked up in 100,000 allow
   networks against the same with 10 (goal: ratio <= 1.25); every decision is from a
   client never seen before, so each one really searches the allow list.

The two sides of each ratio are timed in alternating rounds and the best round of each
is kept.  Times are CPU time of this process (``time.process_time``), so that other
work on a busy machine does not land in one side's round only.
Run: ``python tests/benchmarks/bench_decide.py``.
"""

from __future__ import annotations

import itertools
import random
import sys
import time
from collections.abc import Callable, Iterator
from email.utils import parseaddr
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import imcea

ROUNDS = 15


def best_of(runs: dict[str, Callable[[], None]], rounds: int = ROUNDS) -> dict[str, float]:
    """Best time in seconds of each callable, the callables interleaved round by round."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.process_time()
            run()
            best[name] = min(best[name], time.process_time() - start)
    return best


def recipients(count: int, start: int = 0) -> list[str]:
    """A realistic mix: local users, outside addresses, a few bracketed and encapsulated.

    Numbered from *start*, so that batches with different starts share no recipient.
    """
    rng = random.Random(5)
    out = []
    for i in range(start, start + count):
        kind = rng.random()
        if kind < 0.55:
            out.append(f"user{i}@contoso.com")
        elif kind < 0.85:
            out.append(f"someone.{i}@partner{i % 7}.example")
        elif kind < 0.95:
            out.append(f"<first.last{i}@sales.contoso.com>")
        else:
            out.append(imcea.encode("SMTP", f"x{i}@remote.example", "contoso.com"))
    return out


def unseen_clients() -> Iterator[str]:
    """Client addresses that never repeat (outside every allow network used here)."""
    for n in itertools.count():
        yield f"172.{16 + (n >> 16) % 16}.{(n >> 8) & 255}.{n & 255}"


def settings(allow: int) -> imcea.Settings:
    rng = random.Random(allow)
    nets = [f"10.{rng.randrange(256)}.{rng.randrange(256)}.0/24" for _ in range(allow - 1)]
    nets.append("192.168.0.1")
    return imcea.Settings(
        reroute=True,
        routing=[imcea.Route("contoso.com", "inbound")],
        restrictions=imcea.Restrictions(allow=nets),
        server_addresses=["192.0.2.10"],
    )


def main() -> None:
    n = 2000
    # a batch of recipients per round, never seen before by the settings (decisions are
    # remembered with the settings, so a repeated recipient costs a dictionary lookup)
    batches = [recipients(n, start=k * n) for k in range(ROUNDS)]
    decide = imcea.decide
    parse_batches = iter(batches)  # round k of every side uses batch k

    def run_parseaddr() -> None:
        for r in next(parse_batches):
            parseaddr(r)

    def cold(per_call: int, fresh_clients: bool) -> Callable[[], None]:
        config = settings(10)  # each side its own memory
        clients = unseen_clients()
        envelopes = iter(
            [
                [
                    imcea.Envelope("a@b.example", batch[i : i + per_call])
                    for i in range(0, n, per_call)
                ]
                for batch in batches
            ]
        )

        def run() -> None:
            for env in next(envelopes):
                decide(env, next(clients) if fresh_clients else "192.168.0.1", config)

        return run

    warm_config = settings(10)
    warm = [imcea.Envelope("a@b.example", [r]) for r in batches[0]]

    def run_warm() -> None:
        for env in warm:
            decide(env, "192.168.0.1", warm_config)

    t = best_of(
        {
            "parseaddr": run_parseaddr,
            "single": cold(1, False),
            "tens": cold(10, False),
            "fresh": cold(1, True),
            "warm": run_warm,
        }
    )
    print(f"{n} recipients a round, best of {ROUNDS} interleaved rounds (CPU time)")
    print(f"  email.utils.parseaddr             {t['parseaddr'] / n * 1e6:7.2f} us per recipient")
    rows = [
        ("single", "decide, 1 recipient/call"),
        ("tens", "decide, 10 recipients/call"),
        ("fresh", "decide, 1/call, a new client each"),
        ("warm", "decide, 1/call, recipients seen before"),
    ]
    for key, label in rows:
        ratio = t[key] / t["parseaddr"]
        print(f"  {label:<34}{t[key] / n * 1e6:7.2f} us per recipient   ratio {ratio:.2f}")
    print("  goal: ratio <= 0.50 (recipients never seen before, unless said otherwise)")

    fresh = unseen_clients()
    small, large = settings(10), settings(100_000)
    env = imcea.Envelope("a@b.example", ["someone@partner.example"])
    count = 2000

    def lookups(config: imcea.Settings) -> Callable[[], None]:
        def run() -> None:
            for _ in range(count):
                decide(env, next(fresh), config)

        return run

    t = best_of({"10": lookups(small), "100000": lookups(large)})
    per = {k: v / count * 1e6 for k, v in t.items()}
    print(f"relay check of {count} outside clients, each never seen before")
    print(f"  10 allow networks        {per['10']:7.2f} us per decision")
    print(f"  100,000 allow networks   {per['100000']:7.2f} us per decision")
    print(f"  ratio 100,000/10: {t['100000'] / t['10']:.2f}; goal <= 1.25")


if __name__ == "__main__":
    main()
