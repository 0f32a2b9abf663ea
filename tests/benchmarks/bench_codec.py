"""Speed of the IMCEA codec against the standard library's percent-encoding.

Measures, in one run and on the corpus of real addresses (tests/data/addresses.jsonl):

* ``imcea.decode(s, strict=False)`` against ``urllib.parse.unquote`` of the same strings
  with ``+`` written as ``%``;
* ``imcea.encode(type, address, domain)`` (the full call: type check, address and
  domain) against ``urllib.parse.quote(address)`` of the same raw addresses.

The two sides of each comparison run in alternating rounds (A B, then B A, ...) so that
a change of machine load hits both; each round times several passes over all rows with
``time.perf_counter_ns``.  The printed ratio is the median of the per-round ratios A/B;
the goal is a ratio of at most 1.00.

Run from the repository root::

    python tests/benchmarks/bench_codec.py [--rounds N] [--passes N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # measure the checkout, not an installed copy

import imcea  # noqa: E402

CORPUS = Path(__file__).resolve().parent.parent / "data" / "addresses.jsonl"

Job = Callable[[], object]


def _load() -> list[dict[str, object]]:
    with CORPUS.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _time(job: Job, passes: int) -> int:
    start = time.perf_counter_ns()
    for _ in range(passes):
        job()
    return time.perf_counter_ns() - start


def _compare(a: Job, b: Job, rounds: int, passes: int) -> tuple[int, int, float]:
    """Best total time of *a* and of *b* over *rounds*, and the median per-round ratio a/b."""
    a(), b()  # warm up
    times_a: list[int] = []
    times_b: list[int] = []
    for round_ in range(rounds):
        if round_ % 2:
            times_b.append(_time(b, passes))
            times_a.append(_time(a, passes))
        else:
            times_a.append(_time(a, passes))
            times_b.append(_time(b, passes))
    ratio = statistics.median(ta / tb for ta, tb in zip(times_a, times_b, strict=True))
    return min(times_a), min(times_b), ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="alternating rounds (default 21)")
    parser.add_argument("--passes", type=int, default=200, help="passes per round (default 200)")
    args = parser.parse_args(argv)

    rows = _load()
    encapsulated = [str(row["encapsulated"]) for row in rows]
    percent = [text.replace("+", "%") for text in encapsulated]
    triples = [(str(row["type"]), str(row["address"]), str(row["domain"])) for row in rows]
    addresses = [address for _, address, _ in triples]

    # the comparison is only fair if the codec does its whole job
    for text, (addrtype, address, domain) in zip(encapsulated, triples, strict=True):
        assert imcea.decode(text, strict=False) == (addrtype, address, domain), text
        imcea.encode(addrtype, address, domain)

    decode = imcea.decode
    encode = imcea.encode
    unquote = urllib.parse.unquote
    quote = urllib.parse.quote

    def run_decode() -> object:
        return [decode(text, strict=False) for text in encapsulated]

    def run_unquote() -> object:
        return [unquote(text) for text in percent]

    def run_encode() -> object:
        return [encode(addrtype, address, domain) for addrtype, address, domain in triples]

    def run_quote() -> object:
        return [quote(address) for address in addresses]

    count = len(rows) * args.passes
    print(f"{len(rows)} corpus addresses, {args.rounds} alternating rounds of {args.passes} passes")
    print(f"Python {sys.version.split()[0]}, imcea {imcea.__version__}")
    print()
    results = []
    for label, a, a_name, b, b_name in [
        ("decode", run_decode, "imcea.decode(strict=False)", run_unquote, "urllib.parse.unquote"),
        (
            "encode",
            run_encode,
            "imcea.encode(type, address, domain)",
            run_quote,
            "urllib.parse.quote(address)",
        ),
    ]:
        best_a, best_b, ratio = _compare(a, b, args.rounds, args.passes)
        print(f"{a_name:38s} {best_a / count:8.0f} ns per address")
        print(f"{b_name:38s} {best_b / count:8.0f} ns per address")
        verdict = "ok" if ratio <= 1.0 else "SLOWER THAN THE GOAL"
        print(f"{label} ratio (median of rounds) {ratio:.2f}   goal <= 1.00   {verdict}")
        print()
        results.append(ratio)
    print("encode includes the type check and the domain (an ASCII host name check, no idna call).")
    return 0 if all(ratio <= 1.0 for ratio in results) else 1


if __name__ == "__main__":
    sys.exit(main())
