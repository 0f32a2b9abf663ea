"""Replaying mail logs through the IMS decision, and comparing two settings over them.

Every expected decision below is worked out by hand from DESIGN §2.3 and §2.4 and the
seed, KB Q237927, for the settings of the seed's story: the IMS of ``contoso.com``
reroutes (it is a site connector), its LAN ``10.0.0.0/255.255.255.0`` may relay except
the never-route host ``10.0.0.66``, and the other site's bridgehead ``192.168.0.1`` is
not on the allow list until the fix.  SP2 reroutes every encapsulated SMTP one-off
whatever the settings (``encapsulated_bypass``); SP3 applies the routing restrictions
to the inner address (``encapsulated_relay_denied`` at RCPT when refused).
"""

from __future__ import annotations

import dataclasses
import io
import ipaddress
import json
import os
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imcea
from imcea.cli import main
from imcea.networks import dotted_quad, parse_ip
from imcea.records import Record, RecordError, record_from_mapping
from imcea.replay import (
    Change,
    Groups,
    Replayed,
    Summary,
    output_line,
    output_record,
    replay,
    replay_lines,
)
from imcea.replay_command import CHUNK_LINES

ROOT = Path(__file__).resolve().parents[1]


def imcea_replay(*args: str) -> list[str]:
    """The command line of ``imcea replay ARGS`` (the one place it is built)."""
    return [sys.executable, "-m", "imcea", "replay", *args]


def child_env() -> dict[str, str]:
    """The environment of the command: this checkout first on the path, and standard
    output block-buffered, as on a user's pipe (so that the order of the output and of
    the reports cannot depend on an unbuffered environment)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run(*args: str, stdin: bytes = b"", merged: bool = False) -> subprocess.CompletedProcess[bytes]:
    """Run ``imcea replay ARGS`` from the checkout; *merged* sends stderr into stdout."""
    return subprocess.run(
        imcea_replay(*args),
        cwd=ROOT,
        env=child_env(),
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merged else subprocess.PIPE,
        timeout=300,
    )


def stderr_lines(result: subprocess.CompletedProcess[bytes]) -> list[str]:
    text = result.stderr.decode()
    assert "Traceback" not in text, text
    return text.splitlines()


def output(result: subprocess.CompletedProcess[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


# ---------------------------------------------------------------------------
# the settings of the seed's story, and the decisions expected under them

NAMES = ("SP2", "SP3", "FIXED")
ALLOW = {
    "SP2": '["10.0.0.0/255.255.255.0"]',
    "SP3": '["10.0.0.0/255.255.255.0"]',
    "FIXED": '["10.0.0.0/255.255.255.0", "192.168.0.1"]',  # the fix the article gives
}


def settings_text(name: str) -> str:
    """The IMS of contoso.com: SP2, SP3, or SP3 with the site connector allowed."""
    return f"""\
reroute = true
release = "{"SP2" if name == "SP2" else "SP3"}"
site_connector = true
server_addresses = ["192.0.2.10"]

[[routing]]
domain = "contoso.com"
action = "inbound"

[restrictions]
allow = {ALLOW[name]}
deny = ["10.0.0.66"]
"""


def load(name: str) -> imcea.Settings:
    import tomllib

    return imcea.load_settings(tomllib.loads(settings_text(name)))


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """The three settings files: SP2, SP3, and SP3 with 192.168.0.1 allowed."""
    out = {}
    for name in NAMES:
        path = tmp_path / f"{name.lower()}.toml"
        path.write_text(settings_text(name), encoding="utf-8")
        out[name] = str(path)
    return out


SITE = "192.168.0.1"  # the other site's bridgehead (the seed's example)
LAN = "10.0.0.25"
DENIED = "10.0.0.66"
OUTSIDER = "203.0.113.5"
SENDER = "198.51.100.7"

SITE_ONE_OFF = "IMCEASMTP-jdoe+40site2+2Eexample@contoso.com"  # jdoe@site2.example
EVIL_ONE_OFF = "IMCEASMTP-victim+40elsewhere+2Eexample@contoso.com"
LAN_ONE_OFF = "IMCEASMTP-friend+40partner+2Eexample@contoso.com"

OK = "250 OK - Recipient <{}>"
PROHIBITED = "550 Relaying is prohibited"

D, R, X = "deliver", "reroute", "return"

# (client, recipient) -> {settings: (action, reason, reply)}, by hand from DESIGN §2.4
CASES: list[tuple[str, str, dict[str, tuple[str, str, str]]]] = [
    # the site connector's one-off: the bug relays it, SP3 refuses it, the fix allows it
    (
        SITE,
        SITE_ONE_OFF,
        {
            "SP2": (R, "encapsulated_bypass", OK),
            "SP3": (X, "encapsulated_relay_denied", PROHIBITED),
            "FIXED": (R, "relay_allowed_host", OK),
        },
    ),
    # an outsider's one-off: relayed by SP2 (MS99-027), refused by SP3, fix or not
    (
        OUTSIDER,
        EVIL_ONE_OFF,
        {
            "SP2": (R, "encapsulated_bypass", OK),
            "SP3": (X, "encapsulated_relay_denied", PROHIBITED),
            "FIXED": (X, "encapsulated_relay_denied", PROHIBITED),
        },
    ),
    # a LAN host's one-off: relayed either way, for a different reason
    (
        LAN,
        LAN_ONE_OFF,
        {
            "SP2": (R, "encapsulated_bypass", OK),
            "SP3": (R, "relay_allowed_host", OK),
            "FIXED": (R, "relay_allowed_host", OK),
        },
    ),
    # the never-route host inside the allowed LAN: deny wins (§2.3 step 1)
    (
        DENIED,
        "friend@partner.example",
        {k: (X, "denied_host", PROHIBITED) for k in NAMES},
    ),
    (SENDER, "jdoe@contoso.com", {k: (D, "inbound_unverified", OK) for k in NAMES}),
    (LAN, "friend@partner.example", {k: (R, "relay_allowed_host", OK) for k in NAMES}),
    (OUTSIDER, "friend@partner.example", {k: (X, "relay_denied", PROHIBITED) for k in NAMES}),
    (OUTSIDER, "Postmaster", {k: (D, "postmaster", OK) for k in NAMES}),
    # the percent hack and a lower-case prefix are ordinary local parts (Q244346, Q271575)
    (
        OUTSIDER,
        "victim%elsewhere.example@contoso.com",
        {k: (D, "inbound_unverified", OK) for k in NAMES},
    ),
    (
        OUTSIDER,
        "imceasmtp-victim+40elsewhere+2Eexample@contoso.com",
        {k: (D, "inbound_unverified", OK) for k in NAMES},
    ),
    (
        OUTSIDER,
        "a b@contoso.com",
        {k: (X, "malformed_address", "553 malformed address: <{}>") for k in NAMES},
    ),
]


def expected(case: int, name: str) -> tuple[str, str, str]:
    _client, recipient, outcomes = CASES[case]
    action, reason, reply = outcomes[name]
    return action, reason, reply.format(recipient)


def generated_log(count: int) -> tuple[list[dict[str, Any]], list[tuple[str, int]]]:
    """*count* records cycling through CASES; every fifth one carries two recipients
    (the next case's recipient too, when it has the same client) and every third has no
    ``id`` (so its id is its line number).  Returns the records and, per recipient in
    order, ``(id, case)``."""
    records: list[dict[str, Any]] = []
    order: list[tuple[str, int]] = []
    for n in range(count):
        case = n % len(CASES)
        client = CASES[case][0]
        cases = [case]
        follow = (case + 1) % len(CASES)
        if n % 5 == 0 and CASES[follow][0] == client:
            cases.append(follow)
        record: dict[str, Any] = {
            "sender": f"sender{n}@mail.example",
            "recipients": [CASES[c][1] for c in cases],
            "ip": client,
        }
        line = n + 1
        ident: Any = line
        if n % 3:
            ident = f"q{n:05d}"
            record["id"] = ident
        records.append(record)
        order.extend((ident, c) for c in cases)
    return records, order


def jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


# ---------------------------------------------------------------------------
# the command: replay of a generated log


@pytest.mark.parametrize("name", ["SP2", "SP3", "FIXED"])
def test_replay_of_a_generated_log_gives_the_hand_checked_decisions(
    tmp_path: Path, files: dict[str, str], name: str
) -> None:
    records, order = generated_log(120)
    log = tmp_path / "log.jsonl"
    log.write_bytes(jsonl(records))
    result = run("--settings", files[name], str(log))
    assert result.returncode == 0, result.stderr
    got = output(result)
    assert len(got) == len(order)
    for line, (ident, case) in zip(got, order, strict=True):
        action, reason, reply = expected(case, name)
        assert list(line) == ["id", "recipient", "action", "reason", "reply", "detail"]
        assert line["id"] == ident
        assert line["recipient"] == CASES[case][1]
        assert (line["action"], line["reason"], line["reply"]) == (action, reason, reply)
        assert isinstance(line["detail"], str) and line["detail"]
    # the summary: one line per action, with its reasons
    err = stderr_lines(result)
    assert err[0] == f"imcea replay: 120 records, {len(order)} recipients, 0 bad lines skipped"
    per_action: dict[str, int] = {}
    for _ident, case in order:
        action = expected(case, name)[0]
        per_action[action] = per_action.get(action, 0) + 1
    shown = {line.split(":")[0].strip(): int(line.split()[1]) for line in err[1:]}
    assert shown == per_action


def test_replay_summary_counts_reasons_by_hand(tmp_path: Path, files: dict[str, str]) -> None:
    # one record per case (no pairs): SP3 outcomes counted by hand from CASES
    records = [
        {"sender": "", "recipients": [recipient], "ip": client} for client, recipient, _ in CASES
    ]
    result = run("--settings", files["SP3"], "-", stdin=jsonl(records))
    assert result.returncode == 0
    assert stderr_lines(result) == [
        "imcea replay: 11 records, 11 recipients, 0 bad lines skipped",
        "  deliver: 4 (inbound_unverified 3, postmaster 1)",
        "  reroute: 2 (relay_allowed_host 2)",
        "  return: 5 (encapsulated_relay_denied 2, denied_host 1, malformed_address 1,"
        " relay_denied 1)",
    ]


def test_replay_reads_stdin_by_default_and_ids_default_to_line_numbers(
    files: dict[str, str],
) -> None:
    log = (
        b'{"sender": "", "recipients": ["jdoe@contoso.com"], "ip": "198.51.100.7"}\n'
        b"\n"  # a blank line is skipped, but counts as a line
        b'{"sender": "", "recipients": [], "ip": "198.51.100.7"}\n'  # nothing to decide
        b'{"sender": "", "recipients": ["Postmaster"], "ip": "203.0.113.5", "id": 7}\n'
    )
    result = run("--settings", files["SP3"], stdin=log)
    assert result.returncode == 0
    got = output(result)
    assert [(r["id"], r["action"], r["reason"]) for r in got] == [
        (1, D, "inbound_unverified"),
        (7, D, "postmaster"),
    ]
    assert stderr_lines(result)[0] == ("imcea replay: 3 records, 2 recipients, 0 bad lines skipped")


def test_replay_without_settings_uses_the_built_in_defaults() -> None:
    # DESIGN §2.1 defaults: rerouting off; §2.4 step 5: not an inbound domain, no
    # directory -> returned after acceptance (rerouting_disabled), never relayed; an
    # encapsulated SMTP one-off with rerouting off -> encapsulated_not_rerouted (the seed)
    log = jsonl(
        [
            {"sender": "", "recipients": ["x@partner.example"], "ip": OUTSIDER},
            {"sender": "", "recipients": [EVIL_ONE_OFF], "ip": OUTSIDER},
        ]
    )
    result = run(stdin=log)
    assert result.returncode == 0
    got = output(result)
    assert [(r["action"], r["reason"], r["reply"]) for r in got] == [
        (X, "rerouting_disabled", OK.format("x@partner.example")),
        (X, "encapsulated_not_rerouted", OK.format(EVIL_ONE_OFF)),
    ]


def test_replay_output_is_ascii_json_whatever_the_input(files: dict[str, str]) -> None:
    log = (
        '{"sender": "", "recipients": ["jöe@contoso.com", "\\ud800@contoso.com"],'
        ' "ip": "198.51.100.7", "id": "ü-1"}\n'
    ).encode()
    result = run("--settings", files["SP3"], stdin=log)
    assert result.returncode == 0, result.stderr
    assert result.stdout.isascii()
    got = output(result)
    assert [r["recipient"] for r in got] == ["jöe@contoso.com", "\ud800@contoso.com"]
    assert got[0]["id"] == "ü-1"


# ---------------------------------------------------------------------------
# the command: --compare on the seed's story


def test_compare_sp2_to_sp3_shows_every_encapsulated_relay_stop(
    tmp_path: Path, files: dict[str, str]
) -> None:
    records, order = generated_log(110)
    log = tmp_path / "log.jsonl"
    log.write_bytes(jsonl(records))
    result = run("--settings", files["SP2"], "--compare", files["SP3"], str(log))
    assert result.returncode == 1, result.stderr
    got = output(result)
    changed = [(i, c) for i, c in order if expected(c, "SP2")[:2] != expected(c, "SP3")[:2]]
    # by hand: cases 0 and 1 (reroute -> return) and 2 (reroute -> reroute, new reason)
    assert {c for _, c in changed} == {0, 1, 2}
    assert len(got) == len(changed) == 30
    for line, (ident, case) in zip(got, changed, strict=True):
        assert list(line) == ["id", "recipient", "before", "after"]
        assert line["id"] == ident
        assert line["recipient"] == CASES[case][1]
        for side, name in (("before", "SP2"), ("after", "SP3")):
            assert list(line[side]) == ["action", "reason", "reply", "detail"]
            got_side = (line[side]["action"], line[side]["reason"], line[side]["reply"])
            assert got_side == expected(case, name)
    assert stderr_lines(result) == [
        f"imcea replay: 110 records, {len(order)} recipients compared, 30 changed,"
        " 0 bad lines skipped",
        "  reroute -> return: 20 (encapsulated_bypass -> encapsulated_relay_denied 20)",
        "  reroute -> reroute: 10 (encapsulated_bypass -> relay_allowed_host 10)",
    ]


def test_compare_sp3_to_the_fix_brings_back_only_the_site_connector(
    tmp_path: Path, files: dict[str, str]
) -> None:
    records, _order = generated_log(110)
    log = tmp_path / "log.jsonl"
    log.write_bytes(jsonl(records))
    result = run("--settings", files["SP3"], "--compare", files["FIXED"], str(log))
    assert result.returncode == 1
    got = output(result)
    assert len(got) == 10
    assert {line["recipient"] for line in got} == {SITE_ONE_OFF}
    assert {(line["before"]["reply"], line["after"]["reply"]) for line in got} == {
        (PROHIBITED, OK.format(SITE_ONE_OFF))
    }
    assert stderr_lines(result)[1:] == [
        "  return -> reroute: 10 (encapsulated_relay_denied -> relay_allowed_host 10)"
    ]


def test_compare_with_the_same_settings_prints_nothing_and_exits_0(
    tmp_path: Path, files: dict[str, str]
) -> None:
    records, order = generated_log(30)
    result = run("--settings", files["SP3"], "--compare", files["SP3"], stdin=jsonl(records))
    assert result.returncode == 0
    assert result.stdout == b""
    assert stderr_lines(result) == [
        f"imcea replay: 30 records, {len(order)} recipients compared, 0 changed,"
        " 0 bad lines skipped"
    ]


# ---------------------------------------------------------------------------
# --summary-only and --group-by


def compared_log(tmp_path: Path) -> tuple[Path, list[tuple[str, int]]]:
    """The generated log of 110 records on disk, and its ``(id, case)`` order."""
    records, order = generated_log(110)
    log = tmp_path / "log.jsonl"
    log.write_bytes(jsonl(records))
    return log, order


def test_summary_only_writes_the_summary_alone(tmp_path: Path, files: dict[str, str]) -> None:
    log, _order = compared_log(tmp_path)
    for extra in ([], ["--compare", files["SP3"]]):
        full = run("--settings", files["SP2"], *extra, str(log))
        only = run("--settings", files["SP2"], *extra, "--summary-only", str(log))
        assert full.stdout and only.stdout == b""
        assert (only.returncode, only.stderr) == (full.returncode, full.stderr)


def changed_by_client(order: list[tuple[str, int]]) -> dict[str, list[tuple[str, int]]]:
    """The changed recipients of SP2 -> SP3 per client, in log order, from CASES."""
    out: dict[str, list[tuple[str, int]]] = {}
    for ident, case in order:
        if expected(case, "SP2")[:2] != expected(case, "SP3")[:2]:
            out.setdefault(CASES[case][0], []).append((ident, case))
    return out


def test_group_by_client_tells_which_clients_lose_relaying_under_sp3(
    tmp_path: Path, files: dict[str, str]
) -> None:
    log, order = compared_log(tmp_path)
    result = run(
        "--settings", files["SP2"], "--compare", files["SP3"], "--group-by", "client", str(log)
    )
    assert result.returncode == 1
    assert len(output(result)) == 30  # the records are still written
    err = stderr_lines(result)
    by_client = changed_by_client(order)
    # by hand: the site connector and the outsider lose relaying, the LAN host keeps
    # it for another reason; 10 records each
    assert {client: len(v) for client, v in by_client.items()} == {SITE: 10, OUTSIDER: 10, LAN: 10}
    table = err[err.index("imcea replay: changed recipients by client: 3 groups") + 1 :]
    assert len(table) == 3
    for row, client in zip(table, sorted(by_client), strict=True):  # ties: by name
        count, name, rest = row.split(maxsplit=2)
        assert (int(count), name) == (10, client)
        ident, case = by_client[client][0]
        action = expected(case, "SP2")[0], expected(case, "SP3")[0]
        reason = expected(case, "SP2")[1], expected(case, "SP3")[1]
        assert rest.endswith(
            f": {CASES[case][1]}: {action[0]} -> {action[1]} ({reason[0]} -> {reason[1]})"
        ), row
        assert f"(id {ident})" in rest or rest.startswith(f"e.g. line {ident}:")


def test_group_by_json_is_one_object_with_the_first_example_of_each_group(
    tmp_path: Path, files: dict[str, str]
) -> None:
    log, order = compared_log(tmp_path)
    args = ["--settings", files["SP2"], "--compare", files["SP3"], str(log)]
    full = output(run(*args))
    result = run(*args, "--group-by", "client", "--summary-only", "--json")
    assert result.returncode == 1
    (report,) = output(result)
    assert report["group_by"] == "client"
    assert report["summary"]["changed"] == 30
    assert report["summary"]["transitions"] == [
        {
            "transition": "reroute -> return",
            "reasons": "encapsulated_bypass -> encapsulated_relay_denied",
            "count": 20,
        },
        {
            "transition": "reroute -> reroute",
            "reasons": "encapsulated_bypass -> relay_allowed_host",
            "count": 10,
        },
    ]
    by_client = changed_by_client(order)
    assert [(g["client"], g["count"]) for g in report["groups"]] == [
        (client, len(by_client[client])) for client in sorted(by_client)
    ]
    for group in report["groups"]:
        ident, _case = by_client[group["client"]][0]
        first = next(r for r in full if r["id"] == ident)  # what the command wrote for it
        assert group["first"] == first
        # ids: the line number, or "q" and the line number less one (generated_log)
        assert group["line"] == (ident if isinstance(ident, int) else int(ident[1:]) + 1)
    # the summary text stays on standard error; the table does not
    assert stderr_lines(result)[0].startswith("imcea replay: 110 records,")
    assert not any("by client" in line for line in stderr_lines(result))


@pytest.mark.parametrize("by", ["reason", "domain"])
def test_group_by_reason_and_domain_count_every_recipient(files: dict[str, str], by: str) -> None:
    records = [
        {"sender": "", "recipients": [recipient], "ip": client} for client, recipient, _ in CASES
    ]
    status, out, _err = in_process(
        "--settings",
        files["SP3"],
        "--group-by",
        by,
        "--summary-only",
        "--json",
        stdin=jsonl(records),
    )
    assert status == 0
    report = json.loads(out)
    want: dict[str, int] = {}
    for case, (_client, recipient, _outcomes) in enumerate(CASES):
        key = (
            expected(case, "SP3")[1]
            if by == "reason"
            else (recipient.rpartition("@")[2].lower() if "@" in recipient else "")
        )
        want[key] = want.get(key, 0) + 1
    assert {g[by]: g["count"] for g in report["groups"]} == want
    counts = [g["count"] for g in report["groups"]]
    assert counts == sorted(counts, reverse=True)
    assert sum(counts) == report["summary"]["recipients"] == len(CASES)
    if by == "domain":  # "Postmaster" has no domain: a group of its own
        assert {g["domain"] for g in report["groups"]} == {"contoso.com", "partner.example", ""}


def test_group_by_table_without_json(files: dict[str, str]) -> None:
    records = [
        {"sender": "", "recipients": ["jdoe@contoso.com"], "ip": SENDER, "id": "a"},
        {"sender": "", "recipients": ["Postmaster", "x@partner.example"], "ip": OUTSIDER},
    ]
    status, out, err = in_process(
        "--settings", files["SP3"], "--group-by", "domain", stdin=jsonl(records)
    )
    assert status == 0
    assert len(out.splitlines()) == 3
    title, *rows = err.splitlines()[-4:]
    assert title == "imcea replay: recipients by domain: 3 groups"
    assert [row.split(maxsplit=2) for row in rows] == [  # one each: by name
        ["1", "(none)", "e.g. line 2: Postmaster: deliver (postmaster)"],
        ["1", "contoso.com", "e.g. line 1 (id a): jdoe@contoso.com: deliver (inbound_unverified)"],
        ["1", "partner.example", "e.g. line 2: x@partner.example: return (relay_denied)"],
    ]
    assert len({row.index("e.g.") for row in rows}) == 1  # in columns


def test_group_by_is_the_same_with_jobs_2(tmp_path: Path, files: dict[str, str]) -> None:
    records, _order = generated_log(2600)  # three chunks
    log = tmp_path / "log.jsonl"
    log.write_bytes(jsonl(records))
    args = ["--settings", files["SP2"], "--compare", files["FIXED"], "--group-by", "reason"]
    one = run(*args, "--jobs", "1", str(log))
    two = run(*args, "--jobs", "2", str(log))
    assert (one.returncode, one.stdout, one.stderr) == (two.returncode, two.stdout, two.stderr)
    assert "changed recipients by reason: 2 groups" in one.stderr.decode()


def test_group_by_takes_only_its_three_keys() -> None:
    result = run("--group-by", "sender", stdin=b"")
    assert result.returncode == 2  # argparse's usage error
    assert "--group-by" in result.stderr.decode()


def test_groups_of_the_library_replay() -> None:
    sp2, sp3 = load("SP2"), load("SP3")
    records = [
        {"sender": "", "recipients": [SITE_ONE_OFF, "jdoe@contoso.com"], "ip": SITE, "id": "a"},
        {"sender": "", "recipients": [EVIL_ONE_OFF], "ip": OUTSIDER},
        {"sender": "", "recipients": [SITE_ONE_OFF], "ip": SITE},
    ]
    groups = Groups("client")
    changes = list(replay(records, sp2, compare=sp3, groups=groups))
    assert len(changes) == 3
    assert groups.counts == {SITE: 2, OUTSIDER: 1}
    assert groups.first[SITE] == (1, output_record(changes[0]))
    assert groups.first[OUTSIDER] == (2, output_record(changes[1]))
    # a later part of the same log adds to the counts, and keeps the first examples
    later = Groups("client")
    list(replay(records, sp2, compare=sp3, groups=later, start=4))
    groups.merge(later)
    assert groups.counts == {SITE: 4, OUTSIDER: 2}
    assert groups.first[SITE][0] == 1
    with pytest.raises(imcea.Error, match="group by: expected reason, client or domain, got 'x'"):
        Groups("x")


# ---------------------------------------------------------------------------
# bad lines

GOOD = '{{"sender": "", "recipients": ["jdoe@contoso.com"], "ip": "198.51.100.7", "id": {}}}'
BAD_LINES: list[tuple[str, bytes, str]] = [
    ("not JSON", b'{"sender": "", "recipients": [', "not JSON: "),
    ("not an object", b'["jdoe@contoso.com"]', "expected a JSON object, got an array"),
    (
        "missing ip",
        b'{"sender": "", "recipients": ["jdoe@contoso.com"]}',
        "missing field 'ip'",
    ),
    (
        "missing sender and ip",
        b'{"recipients": ["jdoe@contoso.com"]}',
        "missing fields 'sender' and 'ip'",
    ),
    (
        "recipients not a list",
        b'{"sender": "", "recipients": "jdoe@contoso.com", "ip": "198.51.100.7"}',
        "recipients: expected a list of strings, got 'jdoe@contoso.com'",
    ),
    (
        "a recipient not a string",
        b'{"sender": "", "recipients": ["jdoe@contoso.com", 5], "ip": "198.51.100.7"}',
        "recipients[1]: expected a string, got 5",
    ),
    (
        "sender null",
        b'{"sender": null, "recipients": ["jdoe@contoso.com"], "ip": "198.51.100.7"}',
        "sender: expected a string, got None",
    ),
    (
        "authenticated not a boolean",
        b'{"sender": "", "recipients": [], "ip": "198.51.100.7", "authenticated": "yes"}',
        "authenticated: expected true or false, got 'yes'",
    ),
    (
        "id a float",
        b'{"sender": "", "recipients": [], "ip": "198.51.100.7", "id": 1.5}',
        "id: expected a string or an integer, got 1.5",
    ),
    (
        "bad IP",
        b'{"sender": "", "recipients": ["jdoe@contoso.com"], "ip": "10.0.0.300"}',
        "ip: '10.0.0.300' is not an IP address",
    ),
    (
        "IP as a number",
        b'{"sender": "", "recipients": ["jdoe@contoso.com"], "ip": 167772161}',
        "ip: expected an IP address string, got 167772161",
    ),
    (
        "bad server IP",
        b'{"sender": "", "recipients": [], "ip": "198.51.100.7", "server_ip": "intranet"}',
        "server_ip: 'intranet' is not an IP address",
    ),
    (
        "not UTF-8",
        b'{"sender": "\xff", "recipients": [], "ip": "198.51.100.7"}',
        "not JSON: not valid UTF-8",
    ),
]


def in_process(*argv: str, stdin: bytes, tty: bool = False) -> tuple[int, str, str]:
    """``imcea replay ARGV`` in this process: status, stdout, stderr."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return tty

    out, err = io.StringIO(), Terminal()
    streams = (out, err, io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    with pytest.MonkeyPatch.context() as patch:
        for name, stream in zip(("stdout", "stderr", "stdin"), streams, strict=True):
            patch.setattr(sys, name, stream)
        status = main(["replay", *argv])
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(("kind", "bad", "message"), BAD_LINES, ids=[k for k, _, _ in BAD_LINES])
def test_each_kind_of_bad_line_is_reported_with_its_line_number_and_skipped(
    files: dict[str, str], kind: str, bad: bytes, message: str
) -> None:
    lines = [GOOD.format(1).encode(), GOOD.format(2).encode(), bad, GOOD.format(4).encode()]
    status, out, err = in_process("--settings", files["SP3"], stdin=b"\n".join(lines) + b"\n")
    assert status == 2
    assert [json.loads(line)["id"] for line in out.splitlines()] == [1, 2, 4]
    report, *summary = err.splitlines()
    assert report.startswith(f"imcea replay: line 3: {message}"), report
    assert summary[0] == "imcea replay: 3 records, 3 recipients, 1 bad line skipped"


def test_bad_lines_mid_file_lose_nothing_and_are_reported_in_order(
    tmp_path: Path, files: dict[str, str]
) -> None:
    # 2,600 lines (three chunks of work), a bad line of each kind spread over them
    lines = [GOOD.format(n).encode() for n in range(1, 2601)]
    bad_at = {}
    for i, (_kind, bad, message) in enumerate(BAD_LINES):
        number = 3 + i * 199
        lines[number - 1] = bad
        bad_at[number] = message
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"\n".join(lines))  # no newline after the last line
    want: list[int | str] = [
        f"imcea replay: line {n}: {bad_at[n]}" if n in bad_at else n for n in range(1, 2601)
    ]
    good = 2600 - len(bad_at)
    summary = [
        f"imcea replay: {good:,} records, {good:,} recipients, {len(bad_at)} bad lines skipped",
        f"  deliver: {good} (inbound_unverified {good})",
    ]
    for jobs in ("1", "2"):
        result = run("--settings", files["SP3"], "--jobs", jobs, str(log), merged=True)
        assert result.returncode == 2
        merged = result.stdout.decode().splitlines()
        # every good line is out, in order, and each report stands where its line was
        events = [
            json.loads(line)["id"] if line.startswith("{") else line for line in merged[: len(want)]
        ]
        for got, expect in zip(events, want, strict=True):
            if isinstance(expect, str):
                assert isinstance(got, str) and got.startswith(expect), (got, expect)
            else:
                assert got == expect
        assert merged[len(want) :] == summary


def test_each_chunk_of_output_is_out_before_the_log_is_read_further(
    files: dict[str, str],
) -> None:
    # A log arriving on a pipe: what the first chunk of lines decided must be out
    # (flushed, even when it is short) while the writer of the log is still writing,
    # so that a later bad line, or a kill, loses nothing already decided.
    proc = subprocess.Popen(
        imcea_replay("--settings", files["SP2"], "--compare", files["SP3"]),
        cwd=ROOT,
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    got: list[bytes] = []
    stdout = proc.stdout
    reader = threading.Thread(target=lambda: got.extend(islice(stdout, 1)))
    # one chunk: the site connector's one-off (a change), then unchanged deliveries
    chunk = [json.dumps({"sender": "", "recipients": [SITE_ONE_OFF], "ip": SITE, "id": 0})]
    chunk += [GOOD.format(n) for n in range(1, CHUNK_LINES)]
    try:
        reader.start()
        proc.stdin.write("".join(line + "\n" for line in chunk).encode())
        proc.stdin.flush()  # and the pipe stays open
        reader.join(timeout=30)
        assert len(got) == 1, "the first chunk's output is still buffered"
        assert json.loads(got[0])["after"]["reason"] == "encapsulated_relay_denied"
        proc.stdin.write(b"not json\n")
        proc.stdin.close()
        assert proc.wait(timeout=60) == 2
    finally:
        proc.kill()
        proc.wait()
        reader.join(timeout=10)


def test_bad_lines_and_changes_exit_1(tmp_path: Path, files: dict[str, str]) -> None:
    log = jsonl([{"sender": "", "recipients": [SITE_ONE_OFF], "ip": SITE}]) + b"not json\n"
    result = run("--settings", files["SP2"], "--compare", files["SP3"], stdin=log)
    assert result.returncode == 2
    assert len(output(result)) == 1
    assert stderr_lines(result)[0] == "imcea replay: line 2: not JSON: Expecting value (column 1)"


# ---------------------------------------------------------------------------
# --jobs


def test_jobs_2_gives_byte_identical_output_to_jobs_1(
    tmp_path: Path, files: dict[str, str]
) -> None:
    records, _order = generated_log(5500)
    lines = jsonl(records).splitlines(keepends=True)
    lines[1234] = b"{oops\n"
    lines[4321] = b"\n"
    lines[5000] = b'{"sender": "", "recipients": [], "ip": "999.1.1.1"}\n'
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"".join(lines))
    for extra in ([], ["--compare", files["FIXED"]]):
        one = run("--settings", files["SP2"], *extra, "--jobs", "1", str(log))
        two = run("--settings", files["SP2"], *extra, "--jobs", "2", str(log))
        assert one.returncode == two.returncode == 2
        assert one.stdout == two.stdout
        assert one.stderr == two.stderr
        assert len(one.stdout) > 100_000


def test_jobs_must_be_a_positive_number() -> None:
    result = run("--jobs", "0", stdin=b"")
    assert result.returncode == 2  # argparse's usage error
    assert "--jobs" in result.stderr.decode()


# ---------------------------------------------------------------------------
# errors that stop the command: one line on stderr, exit 1


def test_a_bad_settings_file_is_one_line_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('reroute = "yes"\n')
    for args in (["--settings", str(bad)], ["--compare", str(tmp_path / "missing.toml")]):
        result = run(*args, stdin=b"")
        assert result.returncode == 2
        assert result.stdout == b""
        (line,) = stderr_lines(result)
        assert line.startswith("imcea replay: ")


def test_a_missing_log_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = run(str(tmp_path / "nowhere.jsonl"))
    assert result.returncode == 2
    (line,) = stderr_lines(result)
    assert line.startswith(f"imcea replay: {tmp_path / 'nowhere.jsonl'}: cannot read the log")


def test_an_empty_log_is_fine() -> None:
    result = run(stdin=b"")
    assert result.returncode == 0
    assert stderr_lines(result) == ["imcea replay: 0 records, 0 recipients, 0 bad lines skipped"]


# ---------------------------------------------------------------------------
# the progress line


def assert_progress_then_summary(err: str, records: int) -> str:
    """A progress line was drawn, then erased before the summary of *records* local
    recipients was written; the last progress line drawn."""
    assert " records/s, " in err and " s elapsed" in err
    shown, erased, summary = err.rsplit("\r", 2)
    assert erased.strip(" ") == ""
    assert summary.splitlines() == [
        f"imcea replay: {records:,} records, {records:,} recipients, 0 bad lines skipped",
        f"  deliver: {records} (inbound_unverified {records})",
    ]
    return shown.rsplit("\r", 1)[-1]


def test_progress_line_only_on_a_terminal(files: dict[str, str]) -> None:
    log = jsonl([{"sender": "", "recipients": ["jdoe@contoso.com"], "ip": SENDER}] * 3)
    status, _out, err = in_process("--settings", files["SP3"], stdin=log, tty=True)
    assert status == 0
    assert "\rimcea replay: 3 records, " in err
    assert assert_progress_then_summary(err, 3).startswith("imcea replay: 3 records, ")

    status, _out, err = in_process("--settings", files["SP3"], stdin=log, tty=False)
    assert "\r" not in err
    assert "records/s" not in err


# ---------------------------------------------------------------------------
# the library: replay()


def test_replay_yields_one_decision_per_recipient_in_order() -> None:
    sp3 = load("SP3")
    records = [
        {"sender": "", "recipients": [SITE_ONE_OFF, "jdoe@contoso.com"], "ip": SITE, "id": "a"},
        {"sender": "", "recipients": ["friend@partner.example"], "ip": LAN},
    ]
    got = list(replay(records, sp3))
    assert all(isinstance(r, Replayed) for r in got)
    assert [(r.id, r.line, r.decision.recipient) for r in got] == [
        ("a", 1, SITE_ONE_OFF),
        ("a", 1, "jdoe@contoso.com"),
        (2, 2, "friend@partner.example"),
    ]
    assert [(r.decision.action.value, r.decision.reason.value) for r in got] == [
        (X, "encapsulated_relay_denied"),
        (D, "inbound_unverified"),
        (R, "relay_allowed_host"),
    ]
    # resolved / next_hop for a Reroute: the address relayed to and its domain (§2.4)
    assert (got[2].decision.resolved, got[2].decision.next_hop) == (
        "friend@partner.example",
        "partner.example",
    )


@dataclasses.dataclass
class LoggedMessage:
    sender: str
    recipients: list[str]
    ip: str
    authenticated: bool = False


def test_replay_takes_mappings_json_lines_records_and_objects() -> None:
    fixed = load("FIXED")
    items: list[object] = [
        {"sender": "", "recipients": [SITE_ONE_OFF], "ip": SITE},
        json.dumps({"sender": "", "recipients": [SITE_ONE_OFF], "ip": SITE}) + "\n",
        json.dumps({"sender": "", "recipients": [SITE_ONE_OFF], "ip": SITE}).encode(),
        "   \n",  # a blank line: skipped
        Record(sender="", recipients=[SITE_ONE_OFF], ip=SITE, id="rec"),
        LoggedMessage("", [SITE_ONE_OFF], SITE),
    ]
    got = list(replay(items, fixed))
    assert [(r.id, r.line) for r in got] == [(1, 1), (2, 2), (3, 3), ("rec", 5), (6, 6)]
    assert {(r.decision.action.value, r.decision.reason.value) for r in got} == {
        (R, "relay_allowed_host")
    }
    with pytest.raises(RecordError, match=r"^line 1: expected a record"):
        list(replay([42], fixed))


def test_replay_compare_yields_changes_with_both_decisions() -> None:
    sp2, sp3 = load("SP2"), load("SP3")
    records = [
        {"sender": "", "recipients": ["jdoe@contoso.com", SITE_ONE_OFF], "ip": SITE, "id": 1},
        {"sender": "", "recipients": [LAN_ONE_OFF], "ip": LAN, "id": 2},
        {"sender": "", "recipients": ["friend@partner.example"], "ip": OUTSIDER, "id": 3},
    ]
    summary = Summary()
    changes = list(replay(records, sp2, compare=sp3, summary=summary))
    assert all(isinstance(c, Change) for c in changes)
    assert [(c.id, c.recipient, c.transition, c.reasons) for c in changes] == [
        (1, SITE_ONE_OFF, "reroute -> return", "encapsulated_bypass -> encapsulated_relay_denied"),
        (2, LAN_ONE_OFF, "reroute -> reroute", "encapsulated_bypass -> relay_allowed_host"),
    ]
    assert changes[0].before.reply == OK.format(SITE_ONE_OFF)
    assert changes[0].after.reply == PROHIBITED
    assert (summary.records, summary.recipients, summary.changed, summary.bad) == (3, 4, 2, 0)
    assert summary.by_transition() == {"reroute -> return": 1, "reroute -> reroute": 1}


def test_replay_raises_on_a_bad_record_unless_told_to_skip_it() -> None:
    sp3 = load("SP3")
    records = [
        {"sender": "", "recipients": ["jdoe@contoso.com"], "ip": SENDER},
        {"sender": "", "recipients": ["jdoe@contoso.com"], "ip": "10.0.0.300"},
        {"sender": "", "recipients": ["jdoe@contoso.com"], "ip": SENDER},
    ]
    it = replay(records, sp3)
    assert next(it).line == 1
    with pytest.raises(RecordError) as info:
        next(it)
    assert isinstance(info.value, imcea.Error)
    assert info.value.line == 2
    assert str(info.value) == "line 2: ip: '10.0.0.300' is not an IP address"

    errors: list[RecordError] = []
    summary = Summary()
    got = list(replay(records, sp3, on_error=errors.append, summary=summary))
    assert [r.line for r in got] == [1, 3]
    assert [e.line for e in errors] == [2]
    assert (summary.records, summary.bad) == (2, 1)
    assert summary.outcomes == {(D, "inbound_unverified"): 2}


def test_replay_checks_its_settings_before_reading_anything() -> None:
    drawn = []

    def records() -> Iterator[dict[str, Any]]:
        drawn.append(1)
        yield {"sender": "", "recipients": [], "ip": SENDER}

    with pytest.raises(imcea.Error):
        replay(records(), {"reroute": True})  # type: ignore[call-overload]
    with pytest.raises(imcea.Error):
        replay(records(), imcea.Settings(), compare="sp3.toml")  # type: ignore[call-overload]
    assert drawn == []


def test_replay_takes_a_decider_and_a_first_line_number() -> None:
    """A log replayed in parts through one decider: the same results as in one go, the
    lines (and the ids that default to them) counted from each part's first line."""
    records = [
        {"sender": "", "recipients": [SITE_ONE_OFF], "ip": SITE},
        {"sender": "", "recipients": ["jdoe@contoso.com"], "ip": SENDER, "id": "b"},
        {"sender": "", "recipients": [LAN_ONE_OFF, "x@partner.example"], "ip": LAN},
    ]
    whole = list(replay(records, load("FIXED")))
    decider = imcea.Decider(load("FIXED"))
    parts = [*replay(records[:2], decider), *replay(records[2:], decider, start=3)]
    assert parts == whole
    assert [(r.id, r.line) for r in parts] == [(1, 1), ("b", 2), (3, 3), (3, 3)]
    assert list(replay_lines(records[2:], decider, start=3)) == [output_line(r) for r in whole[2:]]
    with pytest.raises(
        imcea.Error, match=r"^compare: expected an imcea\.Settings or an imcea\.Decider"
    ):
        replay(records, decider, compare=records)  # type: ignore[call-overload]


def test_replay_is_lazy() -> None:
    drawn = 0

    def records() -> Iterator[dict[str, Any]]:
        nonlocal drawn
        for n in range(1000):
            drawn += 1
            yield {"sender": "", "recipients": [f"u{n}@contoso.com"], "ip": SENDER}

    it = replay(records(), imcea.Settings())
    assert drawn == 0
    next(it)
    assert drawn == 1
    list(islice(it, 9))
    assert drawn == 10


def test_a_million_records_stream_in_flat_memory() -> None:
    """A generator of 1,000,000 records goes through replay() without being held.

    tracemalloc slows every allocation down several times over, so it watches two
    windows of 50,000 records: one near the start and the last one.  Whatever replay()
    kept per record would grow inside each window: a million dicts take hundreds of MB,
    and even one pointer per record 400 KB per window, twice the bound below.
    """
    count, window, bound = 1_000_000, 50_000, 200_000
    settings = imcea.Settings()  # rerouting off: the cheapest decision

    def records() -> Iterator[dict[str, Any]]:
        for n in range(count):
            yield {"id": n, "sender": "", "recipients": ["jdoe@contoso.com"], "ip": SENDER}

    def watched(items: int) -> tuple[int, int]:
        """Consume *items* results while tracing: (peak, growth) in bytes."""
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            for _ in islice(it, items):
                pass
            current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return peak - start, current - start

    it = replay(records(), settings)
    for _ in islice(it, 1000):  # warm up whatever is built once
        pass
    early = watched(window)
    middle = sum(1 for _ in islice(it, count - 1000 - 2 * window))
    late = watched(window)
    assert next(it, None) is None  # all consumed
    assert middle == count - 1000 - 2 * window
    assert early[0] < bound and late[0] < bound, (early, late)
    assert early[1] < bound // 10 and late[1] < bound // 10, (early, late)


# ---------------------------------------------------------------------------
# the output is decide() and json.dumps(), whatever the log

ENGINE_SETTINGS: dict[str, dict[str, Any]] = {
    "SP3": {
        "reroute": True,
        "release": "SP3",
        "server_addresses": ["192.0.2.10", "10.0.0.1"],
        "routing": [
            {"domain": "contoso.com", "action": "inbound"},
            {"domain": "always.example", "action": "relay"},
        ],
        "restrictions": {
            "authenticated": True,
            "allow": ["10.0.0.0/255.255.255.0"],
            "internal": ["10.0.0.1"],
            "deny": ["10.0.0.66"],
        },
        "directory": ["alice@contoso.com", "/o=Contoso/ou=Site/cn=Recipients/cn=bob"],
    },
    "SP2": {
        "reroute": True,
        "release": "SP2",
        "routing": [{"domain": "contoso.com", "action": "inbound"}],
        "restrictions": {"allow": ["10.0.0.0/255.255.255.0"]},
    },
    "FIXED": {
        "reroute": True,
        "release": "SP3",
        "routing": [{"domain": "contoso.com", "action": "inbound"}],
        "restrictions": {"allow": ["10.0.0.0/255.255.255.0", "192.168.0.1"]},
    },
    "OFF": {"reroute": False, "routing": [{"domain": "contoso.com", "action": "inbound"}]},
}

ENGINE_CLIENTS = [
    "10.0.0.5",  # on the allow list
    "10.0.0.66",  # never route
    "192.168.0.1",  # the other site's bridgehead (allowed only once fixed)
    "203.0.113.7",  # an outsider
    " 203.0.113.8 ",  # blanks around it
    "::ffff:10.0.0.9",  # mapped IPv6: matched as IPv4
    "2001:db8::1",
]
ENGINE_RECIPIENTS = [
    "alice@contoso.com",
    "carol@contoso.com",
    "<alice@contoso.com>",
    "user@example.net",
    "x@always.example",
    "IMCEASMTP-user+40example+2Enet@contoso.com",
    "IMCEASMTP-alice+40contoso+2Ecom@contoso.com",
    "IMCEASMTP-IMCEASMTP-u+2B40example+2Bnet+40contoso+2Ecom@contoso.com",
    "IMCEAEX-_O=CONTOSO_OU=SITE_CN=RECIPIENTS_CN=BOB@contoso.com",
    "IMCEAX400-c=US;a=+20;p=Contoso;s=Doe;@contoso.com",
    "user@[192.0.2.10]",
    "user@[203.0.113.1]",
    "a%b@contoso.com",
    "@a,@b:c@contoso.com",
    "Postmaster",
    "bad address",
    "u" * 300 + "@example.net",
    "ü@contoso.com",
    "\udc80@example.net",  # a lone surrogate, as a hostile log may hold
]


def engine_settings(name: str) -> imcea.Settings:
    return imcea.load_settings(ENGINE_SETTINGS[name])


def decision_fields(d: imcea.Decision) -> dict[str, Any]:
    return {
        "action": d.action.value,
        "reason": d.reason.value,
        "reply": d.reply,
        "detail": d.detail,
    }


def dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":")) + "\n"


def reference(
    records: list[dict[str, Any]], settings: str, compare: str | None
) -> tuple[str, Summary]:
    """What the command must write for *records*, from decide() and json.dumps() alone,
    each decision made on a fresh settings value (which remembers nothing)."""
    out = []
    counts = Summary(compared=compare is not None)
    for number, record in enumerate(records, 1):
        ident = record.get("id", number)
        kwargs = {"authenticated": record.get("authenticated", False)}
        kwargs["server_ip"] = record.get("server_ip")
        envelope = imcea.Envelope(record["sender"], record["recipients"])
        verdict = imcea.decide(envelope, record["ip"], engine_settings(settings), **kwargs)
        counts.records += 1
        if compare is None:
            for d in verdict:
                counts.add_decision(d)
                out.append(dumps({"id": ident, "recipient": d.recipient, **decision_fields(d)}))
            continue
        other = imcea.decide(envelope, record["ip"], engine_settings(compare), **kwargs)
        counts.recipients += len(verdict)
        for old, new in zip(verdict, other, strict=True):
            if (old.action, old.reason) != (new.action, new.reason):
                counts.changed += 1
                pair = (
                    f"{old.action.value} -> {new.action.value}",
                    f"{old.reason.value} -> {new.reason.value}",
                )
                counts.transitions[pair] = counts.transitions.get(pair, 0) + 1
                row = {"id": ident, "recipient": old.recipient}
                row.update(before=decision_fields(old), after=decision_fields(new))
                out.append(dumps(row))
    return "".join(out), counts


def replayed_text(
    records: list[dict[str, Any]], settings: str, compare: str | None
) -> tuple[str, Summary]:
    """replay_lines() over *records* as JSON lines, in parts of 7 lines through one
    decider per settings value, as the command replays its chunks."""
    lines = [json.dumps(r).encode() + b"\n" for r in records]
    before = imcea.Decider(engine_settings(settings))
    after = None if compare is None else imcea.Decider(engine_settings(compare))
    text, total = [], Summary(compared=compare is not None)
    for first in range(0, len(lines), 7):
        counts = Summary()
        part = lines[first : first + 7]
        text.extend(replay_lines(part, before, compare=after, summary=counts, start=first + 1))
        total.merge(counts)
    return "".join(text), total


engine_records = st.lists(
    st.fixed_dictionaries(
        {
            "sender": st.sampled_from(["", "s@example.org", "<s@mail.example>"]),
            "recipients": st.lists(
                st.one_of(st.sampled_from(ENGINE_RECIPIENTS), st.text(max_size=30)), max_size=4
            ),
            "ip": st.sampled_from(ENGINE_CLIENTS),
        },
        optional={
            "authenticated": st.booleans(),
            "server_ip": st.sampled_from([None, "10.0.0.1", "192.0.2.10"]),
            "id": st.one_of(st.text(max_size=8), st.integers(-(2**70), 2**70)),
            "size": st.integers(0, 10**6),  # other keys are ignored
        },
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=engine_records, name=st.sampled_from(sorted(ENGINE_SETTINGS)))
def test_replay_output_is_decide_and_json_dumps(records: list[dict[str, Any]], name: str) -> None:
    want, want_counts = reference(records, name, None)
    got, got_counts = replayed_text(records, name, None)
    assert got == want
    assert (got_counts.records, got_counts.recipients, got_counts.bad) == (
        want_counts.records,
        want_counts.recipients,
        0,
    )
    assert got_counts.outcomes == want_counts.outcomes
    # and the library's results, written one by one, are the same lines and objects
    results = list(replay(records, engine_settings(name)))
    assert "".join(output_line(r) for r in results) == want
    assert [dumps(output_record(r)) for r in results] == want.splitlines(keepends=True)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=engine_records,
    names=st.sampled_from([("SP2", "SP3"), ("SP3", "FIXED"), ("SP3", "OFF"), ("FIXED", "SP2")]),
)
def test_compare_output_is_decide_and_json_dumps(
    records: list[dict[str, Any]], names: tuple[str, str]
) -> None:
    want, want_counts = reference(records, *names)
    got, got_counts = replayed_text(records, *names)
    assert got == want
    assert (got_counts.changed, got_counts.recipients) == (
        want_counts.changed,
        want_counts.recipients,
    )
    assert got_counts.transitions == want_counts.transitions
    changes = list(replay(records, engine_settings(names[0]), compare=engine_settings(names[1])))
    assert "".join(output_line(c) for c in changes) == want
    assert [dumps(output_record(c)) for c in changes] == want.splitlines(keepends=True)


def test_each_line_names_its_own_client() -> None:
    """One relay recipient, clients that may and may not relay in turns: each line
    names its own client and outcome."""
    records = []
    for n in range(60):
        ip = ENGINE_CLIENTS[n % len(ENGINE_CLIENTS)]
        recipients = [
            ENGINE_RECIPIENTS[(n * 7 + k) % len(ENGINE_RECIPIENTS)] for k in range(n % 3 + 1)
        ]
        recipients.append("user@example.net")
        records.append({"sender": "s@example.org", "recipients": recipients, "ip": ip})
    want, _ = reference(records, "SP3", None)
    got, _ = replayed_text(records, "SP3", None)
    assert got == want
    relays = [r for r in map(json.loads, got.splitlines()) if r["recipient"] == "user@example.net"]
    assert {r["action"] for r in relays} == {"reroute", "return"}
    for row in relays:
        assert records[row["id"] - 1]["ip"].strip() in row["detail"], row


def test_a_non_string_recipient_is_a_bad_line_and_counts_nothing() -> None:
    good = {"sender": "s", "recipients": ["alice@contoso.com"], "ip": "10.0.0.5"}
    bad = {"sender": "s", "recipients": ["alice@contoso.com", 7], "ip": "10.0.0.5"}
    lines = [json.dumps(r).encode() for r in (good, bad, good)]
    errors: list[RecordError] = []
    counts = Summary()
    got = list(replay_lines(lines, engine_settings("SP3"), on_error=errors.append, summary=counts))
    assert [json.loads(line)["id"] for line in got] == [1, 3]
    assert [str(e) for e in errors] == ["line 2: recipients[1]: expected a string, got 7"]
    assert (counts.records, counts.recipients, counts.bad) == (2, 2, 1)
    assert sum(counts.outcomes.values()) == 2


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"sender": "s", "recipients": [], "ip": "10.0.0.300"}', "ip: '10.0.0.300'"),
        (b'{"sender": "s", "recipients": [], "ip": "10.0.0.1", "server_ip": "x"}', "server_ip"),
        (b'{"sender": "s", "recipients": [], "ip": "10.0.0.1", "id": 1.5}', "id: expected"),
        (b'{"sender": "s", "recipients": [], "ip": "10.0.0.1", "authenticated": 1}', "true"),
        (b'{"sender": "s", "recipients": [], "ip": "10.0.0.1"} x', "not JSON"),
        # a type fault is reported before a bad address, whatever the order of the keys
        (b'{"ip": "10.0.0.300", "id": 1.5, "sender": "s", "recipients": []}', "id: expected"),
        (b'{"sender": "s", "recipients": [], "ip": 5, "id": 1.5}', "ip: expected an IP address"),
        (b'\xef\xbb\xbf{"sender": "s", "recipients": [], "ip": "10.0.0.1"}', None),
        (b'  {"sender": "s", "recipients": [], "ip": "10.0.0.1"}  ', None),
        (b'{"sender": "s", "recipients": ["a"], "ip": " 10.0.0.1", "server_ip": "::1"}', None),
    ],
)
def test_lines_of_an_unusual_shape(line: bytes, message: str | None) -> None:
    """Lines other than the usual dotted-quad record: read, or reported by their fault."""
    errors: list[RecordError] = []
    counts = Summary()
    list(replay_lines([line], engine_settings("SP3"), on_error=errors.append, summary=counts))
    if message is None:
        assert (counts.records, counts.bad, errors) == (1, 0, [])
    else:
        assert counts.bad == 1 and message in str(errors[0]), errors


@given(st.text(alphabet="0123456789.:abcdef %", max_size=20))
def test_a_client_taken_at_a_glance_is_an_ip_address(text: str) -> None:
    """A record's client that dotted_quad() reads is taken without being parsed: it must
    read nothing but what parse_ip() writes back."""
    if dotted_quad(text) is not None:
        assert str(parse_ip(text)) == text
        assert str(ipaddress.IPv4Address(text)) == text


@given(st.integers(0, 2**32 - 1))
def test_every_dotted_quad_is_taken_at_a_glance(value: int) -> None:
    assert dotted_quad(str(ipaddress.IPv4Address(value))) == value


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
record_like = st.fixed_dictionaries(
    {},
    optional={
        "sender": json_values | st.just("s@example.org"),
        "recipients": json_values | st.lists(st.sampled_from(ENGINE_RECIPIENTS), max_size=3),
        "ip": json_values | st.sampled_from([*ENGINE_CLIENTS, "10.0.0.300", "", "010.0.0.1"]),
        "authenticated": json_values,
        "server_ip": json_values | st.sampled_from(["10.0.0.1", "x"]),
        "id": json_values,
    },
)
any_lines = st.lists(
    st.one_of(
        st.binary(max_size=40),
        record_like.map(lambda r: json.dumps(r).encode()),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.sampled_from([b"", b"  ", b"\xef\xbb\xbf{}", b"[", b'{"ip": "1.2.3.4"} {}']),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=any_lines, compare=st.booleans())
def test_any_line_is_replayed_or_reported_never_raised(lines: list[bytes], compare: bool) -> None:
    """Whatever bytes a log holds, each non-blank line is a record or a bad line,
    reported with its number, in line order."""
    errors: list[RecordError] = []
    counts = Summary()
    other = engine_settings("FIXED") if compare else None
    got = list(
        replay_lines(
            lines, engine_settings("SP3"), compare=other, on_error=errors.append, summary=counts
        )
    )
    blank = sum(1 for line in lines if not line.strip())
    assert counts.records + counts.bad + blank == len(lines)
    assert len(errors) == counts.bad
    numbers = [e.line for e in errors]
    assert numbers == sorted(numbers) and all(
        n is not None and 1 <= n <= len(lines) for n in numbers
    )
    for error in errors:
        assert isinstance(error, imcea.Error)
        assert str(error).startswith(f"line {error.line}: ")
    for row in got:
        assert row.endswith("\n") and row.count("\n") == 1
        assert json.loads(row)["recipient"] is not None


# ---------------------------------------------------------------------------
# records


def test_record_from_mapping_checks_every_field() -> None:
    record = record_from_mapping(
        {
            "sender": "a@b.example",
            "recipients": ["x@contoso.com"],
            "ip": "::ffff:192.0.2.1",
            "authenticated": True,
            "server_ip": "192.0.2.10",
            "id": "q1",
            "size": 1234,  # other keys are ignored
        }
    )
    assert record.recipients == ("x@contoso.com",)
    assert (record.ip, record.server_ip) == ("::ffff:192.0.2.1", "192.0.2.10")  # as written
    assert (record.authenticated, record.id) == (True, "q1")

    cases = [
        ({"recipients": [], "ip": SENDER}, "line 9: missing field 'sender'"),
        (
            {"sender": "", "recipients": [], "ip": "1.2.3"},
            "line 9: ip: '1.2.3' is not an IP address",
        ),
        ({"sender": "", "recipients": ("a",), "ip": SENDER, "id": True}, "line 9: id: "),
    ]
    for obj, message in cases:
        with pytest.raises(RecordError) as info:
            record_from_mapping(obj, 9)
        assert str(info.value).startswith(message)
    with pytest.raises(imcea.Error, match="expected a JSON object, got null"):
        record_from_mapping(None)


# ---------------------------------------------------------------------------
# the example


def test_the_seed_example_runs_and_tells_the_story(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "replay_the_seed.py")],
        cwd=tmp_path,
        capture_output=True,
        encoding="utf-8",
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    # 60 records, four kinds in turn: 15 site connector, 15 outsider one-offs, 30 others
    assert "reroute -> return: 30 (encapsulated_bypass -> encapsulated_relay_denied 30)" in text
    assert "15 from the site connector 192.168.0.1: reroute -> return" in text
    assert "15 from outside hosts: reroute -> return" in text
    assert "550 Relaying is prohibited  -> return, encapsulated_relay_denied" in text
    assert "return -> reroute: 15 (encapsulated_relay_denied -> relay_allowed_host 15)" in text
    assert "outsiders whose outcome the fix changes: 0" in text
    # the files are written to ./imcea-seed, and the commands printed last replay them
    written = sorted(p.name for p in (tmp_path / "imcea-seed").iterdir())
    assert written == ["fixed.toml", "ims.jsonl", "sp2.toml", "sp3.toml"]
    commands = [line.strip() for line in text.splitlines()[-2:]]
    assert commands[0].startswith("imcea replay --settings imcea-seed/sp2.toml")
    changed = []
    for command in commands:
        replayed = subprocess.run(
            [sys.executable, "-m", "imcea", *command.split()[1:]],
            cwd=tmp_path,
            env=child_env(),
            capture_output=True,
            encoding="utf-8",
            timeout=120,
        )
        assert replayed.returncode == 1, replayed.stderr  # differences
        changed.append(len(replayed.stdout.splitlines()))
    assert changed == [30, 15]


def test_the_seed_example_writes_where_asked(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "seed"
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "replay_the_seed.py"), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        encoding="utf-8",
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (out / "ims.jsonl").read_text(encoding="utf-8").count("\n") == 60
    assert imcea.load_settings(out / "sp2.toml").release == "SP2"
    assert imcea.check(imcea.load_settings(out / "fixed.toml")) == []
    assert not (ROOT / "imcea-seed").exists()


def test_progress_line_on_a_real_terminal(files: dict[str, str], tmp_path: Path) -> None:
    """The command as a process whose standard error is a pseudo-terminal: the progress
    line is drawn there, then erased before the summary; the output stays clean."""
    import pty

    log = tmp_path / "log.jsonl"
    log.write_bytes(
        jsonl([{"sender": "", "recipients": ["jdoe@contoso.com"], "ip": SENDER}] * 2500)
    )
    controller, terminal = pty.openpty()
    try:
        result = subprocess.run(
            imcea_replay("--settings", files["SP3"], str(log)),
            cwd=ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=terminal,
            timeout=300,
        )
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal is closed and drained
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 2500
    assert b"\r" not in result.stdout
    text = shown.decode().replace("\r\n", "\n")  # the terminal's own line ends
    assert "\rimcea replay: " in text
    assert assert_progress_then_summary(text, 2500).startswith("imcea replay: ")
