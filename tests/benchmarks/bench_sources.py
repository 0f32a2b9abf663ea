"""How fast the log readers and the Dask replay go, against references measured in the same run.

1. The Postfix reader (:func:`imcea.sources.read_log`) on a generated mail log, in
   records per second, against reading the same file's lines with one ``str.split``
   per line (goal: ratio <= 3.0).  The log is the example's (``examples/dask_replay.py``):
   per message postscreen, TLS, connect and disconnect lines around the ones the
   reader uses, messages interleaved, a rejected relay attempt every fifth message.
2. The Exchange reader on a generated message tracking log (RECEIVE, AGENTINFO and
   DELIVER per message), against ``csv.reader`` over the same file (goal: <= 3.0).
   Both reader ratios are of CPU times (``time.process_time``), best of 7 rounds.
3. The Dask replay (:func:`imcea.dask.replay_bag`, output written as JSON lines) on a
   ``LocalCluster`` of 2 worker processes, against ``imcea replay --jobs 2`` on the
   same records in our JSON-lines form: once with Dask reading the same JSON lines
   (one file per partition), once with Dask reading the Postfix and Exchange logs
   themselves.  The cluster is started before the timing (its start is printed).

The two sides of each ratio are timed in alternating rounds; the best round of each
is kept.  Run: ``python tests/benchmarks/bench_sources.py [MESSAGES]`` (default 20000
messages per file).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

from dask_replay import SETTINGS, exchange_lines, postfix_lines  # noqa: E402

import imcea  # noqa: E402
from imcea.sources import read_log  # noqa: E402

ROUNDS = 5


def best_of(
    sides: dict[str, Callable[[], object]],
    rounds: int = ROUNDS,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """The best time of each side, the sides taking turns in every round."""
    best = dict.fromkeys(sides, float("inf"))
    for _ in range(rounds):
        for name, run in sides.items():
            start = clock()
            run()
            best[name] = min(best[name], clock() - start)
    return best


def split_lines(path: Path) -> None:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line.split()


def csv_rows(path: Path) -> None:
    with open(path, encoding="utf-8", newline="") as handle:
        for _ in csv.reader(handle):
            pass


def count_records(path: Path) -> int:
    return sum(1 for _ in read_log(path))


def count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


def reader(name: str, path: Path, baseline: Callable[[Path], None], reference: str) -> None:
    lines = count_lines(path)
    records = count_records(path)
    # CPU time of this process: both sides run here, and other work on the machine
    # then moves the ratio less than it moves wall-clock times
    best = best_of(
        {"reader": lambda: count_records(path), "baseline": lambda: baseline(path)},
        rounds=7,
        clock=time.process_time,
    )
    ratio = best["reader"] / best["baseline"]
    print(
        f"{name}: {lines:,} lines, {records:,} records;"
        f" reader {records / best['reader']:,.0f} records/s ({lines / best['reader']:,.0f} lines/s)"
        f" in {best['reader']:.3f} s; {reference} {best['baseline']:.3f} s;"
        f" ratio {ratio:.2f} (goal <= 3.0) {'ok' if ratio <= 3.0 else 'OVER'}"
    )


def dask_versus_jobs(directory: Path, messages: int) -> None:
    import dask
    import dask.bag
    from dask.distributed import Client, LocalCluster

    from imcea.dask import replay_bag, summary_of

    settings = directory / "ims.toml"
    settings.write_text(SETTINGS)
    logs: list[Path] = []
    for i in range(2):
        for name, lines in (
            (f"mail.log.{i}", postfix_lines(messages, seed=i)),
            (f"MSGTRK2026030{i}-1.LOG", exchange_lines(messages, seed=i)),
        ):
            path = directory / name
            path.write_text("".join(lines), encoding="utf-8", newline="")
            logs.append(path)
    # the same records as JSON lines: one file per log (for Dask), and all in one (the command)
    jsonl: list[Path] = []
    for path in logs:
        out = directory / (path.name + ".jsonl")
        with out.open("w", encoding="utf-8") as handle:
            for record in read_log(path, on_error=lambda e: None):
                assert isinstance(record, imcea.Record)
                fields = {
                    "id": record.id,
                    "sender": record.sender,
                    "recipients": list(record.recipients),
                    "ip": str(record.ip),
                    "authenticated": record.authenticated,
                }
                if record.server_ip is not None:
                    fields["server_ip"] = str(record.server_ip)
                handle.write(json.dumps(fields) + "\n")
        jsonl.append(out)
    whole = directory / "all.jsonl"
    whole.write_bytes(b"".join(p.read_bytes() for p in jsonl))
    records = count_lines(whole)

    argv = [sys.executable, "-m", "imcea", "replay", "--settings", str(settings), "--jobs", "2"]

    def command(paths: list[Path]) -> Callable[[], None]:
        def replay() -> None:
            subprocess.run(
                [*argv, *map(str, paths)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )

        return replay

    started = time.perf_counter()
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
        Client(cluster),
    ):
        print(f"dask: LocalCluster of 2 workers started in {time.perf_counter() - started:.2f} s")
        run = [0]

        def on_dask(paths: list[Path]) -> Callable[[], None]:
            def replay() -> None:
                run[0] += 1
                bag = dask.bag.read_text([str(p) for p in paths], blocksize=None)
                written = replay_bag(bag, SETTINGS).map(json.dumps)
                target = directory / f"out-{run[0]}" / "*.jsonl"
                dask.compute(written.to_textfiles(str(target), compute=False))

            return replay

        best = best_of(
            {
                "command": command([whole]),
                "command (logs)": command(logs),
                "dask (jsonl)": on_dask(jsonl),
                "dask (logs)": on_dask(logs),
            },
            rounds=3,
        )
        bag = dask.bag.read_text([str(p) for p in logs], blocksize=None)
        summary = summary_of(bag, SETTINGS).compute()
    print(
        f"dask: {records:,} records ({summary.replay.recipients:,} recipients) in"
        f" {len(logs)} files; imcea replay --jobs 2 (JSON lines, whole process)"
        f" {best['command']:.2f} s"
    )
    print(
        f"dask: imcea replay --jobs 2 on the Postfix and Exchange log files themselves"
        f" {best['command (logs)']:.2f} s"
    )
    for side, against in (("dask (jsonl)", "command"), ("dask (logs)", "command (logs)")):
        print(
            f"dask: {side} on 2 local workers {best[side]:.2f} s,"
            f" ratio {best[side] / best[against]:.2f} against --jobs 2 on the same files"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("messages", nargs="?", type=int, default=20000)
    parser.add_argument("--no-dask", action="store_true", help="only the readers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        postfix = directory / "mail.log"
        postfix.write_text("".join(postfix_lines(args.messages)), encoding="utf-8")
        exchange = directory / "MSGTRK.LOG"
        exchange.write_text("".join(exchange_lines(args.messages)), encoding="utf-8", newline="")
        reader("postfix", postfix, split_lines, "lines + str.split")
        reader("exchange", exchange, csv_rows, "csv.reader")
        if not args.no_dask:
            dask_versus_jobs(directory, args.messages)


if __name__ == "__main__":
    main()
