"""The command line's contract with scripts: one exit-status table for every command,
no traceback on Ctrl-C, readable one-line errors (DESIGN §4)."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imcea.exits import EPILOG, Exit
from imcea.wording import plural

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

COMMANDS = [
    "decode", "encode", "x500", "ndr", "check", "decide", "audit", "replay", "verify", "policy",
    "postfix-config",
]  # fmt: skip

OPEN = "reroute = true\n"  # an open relay: findings for check, audit
CLOSED = 'reroute = true\n[[routing]]\ndomain = "contoso.com"\naction = "inbound"\n'
CLOSED += '[restrictions]\nallow = ["192.168.0.1"]\n'


def run(*args: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imcea", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=ENV,
        cwd=cwd,
        timeout=120,
    )


def test_the_table() -> None:
    assert [int(e) for e in Exit] == [0, 1, 2, 130]
    for code in ("0 ", "1 ", "2 ", "130 "):
        assert f"\n  {code}" in EPILOG


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_help_ends_with_the_table(command: str | None) -> None:
    result = run(*([command] if command else []), "--help")
    assert result.returncode == 0
    assert result.stdout.rstrip().endswith(EPILOG.rstrip())


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("imcea ")
    import imcea

    assert result.stdout.split()[1] == imcea.__version__


def settings(tmp_path: Path, text: str) -> str:
    path = tmp_path / "ims.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("args", "stdin", "status"),
    [
        # decode, encode: clean, or trouble
        (["decode", "IMCEAFAX-1@x.example"], "", Exit.CLEAN),
        (["decode", "IMCEAFAX-1@x.example", "bad"], "", Exit.TROUBLE),
        (["encode", "--type", "SMTP", "--domain", "d.example", "a@b.example"], "", Exit.CLEAN),
        (["encode", "--type", "S-M", "--domain", "d.example", "a@b.example"], "", Exit.TROUBLE),
        # x500: clean, or trouble when there is nothing to read
        (["x500", "-"], "IMCEAEX-_O=ORG_CN=JDOE@contoso.com\n", Exit.CLEAN),
        (["x500", "-"], "no address here\n", Exit.TROUBLE),
        # ndr: clean when every file was read, trouble when one was not
        (["ndr", str(ROOT / "examples" / "bounce.eml")], "", Exit.CLEAN),
        (["ndr", str(ROOT / "examples" / "bounce.eml"), "missing.eml"], "", Exit.TROUBLE),
        # decide: a returned recipient is a finding
        (["decide", "--settings", "{closed}", "--ip", "192.168.0.1", "x@remote.example"], "", 0),
        (["decide", "--settings", "{closed}", "--ip", "203.0.113.7", "x@remote.example"], "", 1),
        (["decide", "--ip", "203.0.113.7"], "", Exit.TROUBLE),  # no recipient at all
        (["decode"], "", Exit.TROUBLE),  # no address at all
        (["encode", "--type", "SMTP", "--domain", "d.example", "-"], "\n\n", Exit.TROUBLE),
        (["decide", "--ip", "999.1.1.1", "x@remote.example"], "", Exit.TROUBLE),
        (["decide", "x@remote.example"], "", Exit.TROUBLE),  # usage: no --ip
        # check: an error finding is a finding
        (["check", "--settings", "{closed}"], "", Exit.CLEAN),
        (["check", "--settings", "{open}"], "", Exit.FINDINGS),
        (["check", "--settings", "missing.toml"], "", Exit.TROUBLE),
        # audit: a relaying trick is a finding
        (["audit", "--settings", "{closed}", "--ip", "203.0.113.7"], "", Exit.CLEAN),
        (["audit", "--settings", "{open}", "--ip", "203.0.113.7"], "", Exit.FINDINGS),
        (["audit", "--ip", "nowhere"], "", Exit.TROUBLE),
        # replay: differences are findings, a bad line is trouble
        (["replay", "-"], '{"sender": "", "recipients": ["a@b.example"], "ip": "10.0.0.1"}\n', 0),
        (["replay", "-"], "not json\n", Exit.TROUBLE),
        (
            ["replay", "--compare", "{closed}", "-"],
            '{"sender": "", "recipients": ["x@contoso.com"], "ip": "1.2.3.4"}',
            1,
        ),
        (
            ["replay", "--compare", "{closed}", "-"],
            '{"sender": "", "recipients": ["x@contoso.com"], "ip": "1.2.3.4"}\nbad\n',
            2,
        ),
        # postfix-config
        (["postfix-config", "--settings", "{closed}"], "", Exit.CLEAN),
        (["postfix-config", "--settings", "missing.toml"], "", Exit.TROUBLE),
        # usage
        (["frobnicate"], "", Exit.TROUBLE),
        ([], "", Exit.TROUBLE),
    ],
)
def test_exit_status(tmp_path: Path, args: list[str], stdin: str, status: int) -> None:
    files = {
        "{closed}": settings(tmp_path, CLOSED),
        "{open}": str(tmp_path / "open.toml"),
    }
    (tmp_path / "open.toml").write_text(OPEN, encoding="utf-8")
    argv = [files.get(a, a) for a in args]
    result = run(*argv, stdin=stdin, cwd=tmp_path)
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    if status == Exit.TROUBLE:
        assert result.stderr.strip()


VERIFY_CASE = """\
settings = "ims.toml"
[[case]]
name = "outsider"
ip = "203.0.113.7"
recipient = "x@remote.example"
action = "{action}"
"""


@pytest.mark.parametrize(("action", "status"), [("return", 0), ("reroute", 1)])
def test_verify_exit_status(tmp_path: Path, action: str, status: int) -> None:
    settings(tmp_path, CLOSED)
    (tmp_path / "cases.toml").write_text(VERIFY_CASE.format(action=action), encoding="utf-8")
    assert run("verify", "cases.toml", cwd=tmp_path).returncode == status
    assert run("verify", "cases.toml", "missing.toml", cwd=tmp_path).returncode == 2


def test_a_long_bad_input_is_quoted_short() -> None:
    bad = "IMCEASMTP-" + "x" * 1_000_000 + "+ZZ@d.example"
    result = run("decode", "-", stdin=bad + "\n")
    assert result.returncode == Exit.TROUBLE
    [line] = result.stderr.splitlines()
    assert len(line) < 300, line[:300]
    assert "1000023 characters" in line


def test_invalid_utf8_on_standard_input_names_the_byte() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "imcea", "decode", "-"],
        input=b"IMCEAFAX-1@x.example\nIMCEAFAX-\xff@x.example\n",
        capture_output=True,
        env=ENV,
        timeout=60,
    )
    assert result.returncode == Exit.TROUBLE
    assert result.stderr.decode() == (
        "imcea decode: standard input line 2: byte 0xFF at offset 30 is not UTF-8\n"
    )
    assert result.stdout.decode().splitlines() == [
        "FAX\t1\tx.example",
        "error\tstandard input line 2: byte 0xFF at offset 30 is not UTF-8",
    ]


def test_options_are_named_as_typed() -> None:
    result = run("decide", "--ip", "999.1.1.1", "x@remote.example")
    assert result.stderr == "imcea decide: --ip: '999.1.1.1' is not an IP address\n"
    result = run("decide", "--ip", "10.0.0.1", "--server-ip", "nowhere", "x@remote.example")
    assert "--server-ip: 'nowhere'" in result.stderr


def test_a_settings_error_names_its_file(tmp_path: Path) -> None:
    path = settings(tmp_path, "reroutee = true\n")
    result = run("check", "--settings", path)
    assert result.returncode == Exit.TROUBLE
    assert result.stderr.startswith(f"imcea check: --settings {path}: reroutee: unknown key")
    result = run("replay", "--compare", path, "-")
    assert result.returncode == Exit.TROUBLE
    assert result.stderr.startswith(f"imcea replay: --compare {path}: reroutee: unknown key")


def test_helpers() -> None:
    assert plural(1, "recipient") == "1 recipient"
    assert plural(2, "recipient") == "2 recipients"
    assert plural(0, "entry", "entries") == "0 entries"
    assert plural(12345, "line") == "12,345 lines"


# ---------------------------------------------------------------------------
# Ctrl-C: a real SIGINT to a real child process, reading from a terminal


def interrupt(args: list[str]) -> tuple[int, str]:
    """Run ``imcea ARGS`` with a pseudo-terminal as standard input; once it says it is
    reading, send SIGINT.  Its exit status and what it wrote on standard error."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "imcea", *args],
        stdin=follower,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    os.close(follower)
    assert process.stderr is not None
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while b"standard input" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([process.stderr], [], [], 0.5)
            if ready:
                seen += os.read(process.stderr.fileno(), 4096)
        time.sleep(0.2)  # it now waits for a line
        process.send_signal(signal.SIGINT)
        rest = process.stderr.read()
        status = process.wait(timeout=30)
    finally:
        os.close(leader)
        if process.poll() is None:
            process.kill()
            process.wait()
    return status, (seen + rest).decode()


@pytest.mark.parametrize(
    "args",
    [
        ["decode"],
        ["decode", "-"],
        ["encode", "--type", "SMTP", "--domain", "d.example", "-"],
        ["x500", "-"],
        ["decide", "--ip", "203.0.113.7", "-"],
        ["replay", "-"],
        ["replay", "--jobs", "2", "-"],
    ],
    ids=lambda a: " ".join(a),
)
def test_ctrl_c_exits_130_without_a_traceback(args: list[str]) -> None:
    status, err = interrupt(args)
    assert status == Exit.INTERRUPTED, err
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err
    assert "reading" in err and "standard input" in err  # the hint came first
    assert err.rstrip().endswith("interrupted")
