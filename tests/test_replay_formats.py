"""``imcea replay`` on the logs people have: ``--format``, several files, ``.gz``, and
the readers' counts in the summary (the readers themselves: tests/test_sources.py)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import imcea
from imcea.replay import output_line
from imcea.sources import read_log

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "tests" / "data" / "logs"
SETTINGS = """\
reroute = true
directory = ["jdoe@contoso.com", "helpdesk@contoso.com"]
[[routing]]
domain = "contoso.com"
action = "inbound"
[restrictions]
authenticated = true
allow = ["10.1.0.0/16"]
"""


@pytest.fixture
def settings(tmp_path: Path) -> Path:
    path = tmp_path / "ims.toml"
    path.write_text(SETTINGS, encoding="utf-8")
    return path


def replay(*args: str | Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "imcea", "replay", *map(str, args)],
        input=stdin,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )


def library(settings: Path, *paths: Path) -> list[str]:
    """What the library makes of the same files: replay() over read_log, as lines."""
    log = read_log(list(paths), on_error=lambda error: None)
    return [
        output_line(r) for r in imcea.replay(log, imcea.load_settings(settings), on_error=print)
    ]


@pytest.mark.parametrize(
    "names",
    [
        ["postfix-mail.log"],
        ["postfix-journal-short.log"],
        ["postfix-rfc3339.log.1.gz", "postfix-rfc3339.log"],  # rotated: one log, in order
        ["MSGTRK2026030308-1.LOG"],
        ["MSGTRK20090601-1.LOG", "tracking-export.csv", "message-trace.csv"],
    ],
    ids=lambda names: "+".join(names),
)
def test_the_command_writes_what_the_library_makes_of_the_logs(
    settings: Path, names: list[str]
) -> None:
    paths = [LOGS / name for name in names]
    result = replay("--settings", settings, *paths)
    assert b"Traceback" not in result.stderr
    assert result.stdout.decode().splitlines(keepends=True) == library(settings, *paths)
    err = result.stderr.decode().splitlines()
    assert any(line.startswith("imcea replay: read as ") for line in err), err
    bad = sum("bad line" in line and "0 bad lines" not in line for line in err[-1:])
    assert result.returncode == (2 if bad else 0)


def test_bad_lines_are_named_by_file_and_line_and_counted(settings: Path) -> None:
    result = replay("--settings", settings, LOGS / "postfix-mail.log")
    assert result.returncode == 2  # a bad line is trouble
    err = result.stderr.decode().splitlines()
    name = str(LOGS / "postfix-mail.log")
    assert err[0] == f"imcea replay: {name}: line 48: truncated delivery line: 'to=<ceo@contoso.c'"
    assert err[-1].endswith("4 incomplete, 3 bad lines")
    assert "3 bad lines skipped" in err[-5]


def test_the_same_with_several_processes(settings: Path) -> None:
    paths = [
        LOGS / "postfix-rfc3339.log.1.gz",
        LOGS / "postfix-rfc3339.log",
        LOGS / "postfix-mail.log",
    ]
    one = replay("--settings", settings, *paths)
    two = replay("--settings", settings, "--jobs", "2", *paths)
    assert (one.returncode, one.stdout, one.stderr) == (two.returncode, two.stdout, two.stderr)


def test_standard_input_is_sniffed_too(settings: Path) -> None:
    log = (LOGS / "postfix-journal-short.log").read_bytes()
    piped = replay("--settings", settings, "-", stdin=gzip.compress(log))
    named = replay("--settings", settings, LOGS / "postfix-journal-short.log")
    assert piped.returncode == named.returncode == 0
    assert piped.stdout == named.stdout
    assert b"read as postfix log" in piped.stderr


def test_a_log_of_no_known_format_is_one_line_of_trouble(settings: Path) -> None:
    result = replay("--settings", settings, LOGS / "notes.txt")
    assert result.returncode == 2
    [line] = result.stderr.decode().splitlines()
    assert "cannot tell the format" in line
    for name in ("jsonl", "postfix", "exchange"):
        assert name in line
    # named, the format is believed: every line is then a bad JSON line
    forced = replay("--settings", settings, "--format", "jsonl", LOGS / "postfix-mail.log")
    assert forced.returncode == 2
    assert forced.stderr.startswith(b"imcea replay: line 1: ")


def test_a_missing_file_and_a_binary_file(settings: Path, tmp_path: Path) -> None:
    missing = replay("--settings", settings, LOGS / "postfix-mail.log", tmp_path / "gone.log")
    assert missing.returncode == 2
    assert b"gone.log: cannot read the log" in missing.stderr
    binary = tmp_path / "core.bin"
    binary.write_bytes(b"Dec  3 07:00:01 mx postfix/smtpd[1]: connect\n\x00\x01\x02")
    result = replay("--settings", settings, binary)
    assert result.returncode == 2
    assert b"Traceback" not in result.stderr
    assert b"core.bin" in result.stderr and b"offset" in result.stderr


def test_json_report_holds_the_readers_counts(settings: Path) -> None:
    result = replay(
        "--settings", settings, "--summary-only", "--json", LOGS / "postfix-journal-short.log"
    )
    assert result.returncode == 0
    [report] = [json.loads(line) for line in result.stdout.splitlines()]
    source = report["source"]
    assert source["formats"] == [[str(LOGS / "postfix-journal-short.log"), "postfix"]]
    assert source["records"] == report["summary"]["records"] == 2
    assert source["lines"] == 13
