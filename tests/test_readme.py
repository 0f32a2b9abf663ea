"""The README's examples are tests: its Python session, its console blocks and its quick start."""

from __future__ import annotations

import doctest
import re
import shlex
import signal
import smtplib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from console import Session, blocks, run_document

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_python_examples() -> None:
    result = doctest.testfile(str(README), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 15
    assert result.failed == 0


def test_console_blocks(tmp_path: Path) -> None:
    """Every command of the README's console blocks prints and exits as the README shows."""
    ran, failures = run_document(README, tmp_path)
    assert not failures, "\n\n".join(failures)
    assert len(ran) >= 10
    # the README's story is told with the files that ship in examples/
    files = {"ims.toml", "gal.txt", "imcea_policy.toml", "ndr.txt", "mail.jsonl"}
    assert files <= {path.name for path in (ROOT / "examples").iterdir()}
    shown = " ".join(command.text for command in ran)
    assert all(name in shown for name in files - {"gal.txt"})


def test_commands_not_run_say_why() -> None:
    """A console block is left out only with a reason, written where the reader sees it."""
    skipped = [b for b in blocks(README.read_text(encoding="utf-8")) if b.not_run is not None]
    assert skipped
    for block in skipped:
        assert len(block.not_run.split()) >= 2, block


def test_quick_start_commands_are_the_ci_commands() -> None:
    """The README's test command is what .ci/run runs, word for word."""
    readme = README.read_text(encoding="utf-8")
    commands = re.findall(r"```console\n(python -m pip install .*?)\n```", readme)
    assert len(commands) == 2
    install_and_run, install_and_test = commands
    assert "imcea audit" in install_and_run
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert install_and_test in ci.splitlines()


def test_aiosmtpd_gateway_command_runs_from_the_repository_root(tmp_path: Path) -> None:
    """The README's gateway command, pasted at the root of a checkout, serves SMTP."""
    pytest.importorskip("aiosmtpd")
    (command,) = [
        c.text
        for b in blocks(README.read_text(encoding="utf-8"))
        for c in b.commands
        if "aiosmtpd_gateway.py" in c.text
    ]
    session = Session(tmp_path)  # the repository root, with its examples/
    # port 0: the gateway picks a free port and says which
    argv = shlex.split(command.replace("127.0.0.1:8025", "127.0.0.1:0"))
    assert argv[:2] == ["python", "examples/aiosmtpd_gateway.py"]
    server = subprocess.Popen(
        [sys.executable, *argv[1:]],
        cwd=session.cwd,
        env=session.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        banner = server.stderr.readline()
        assert "listening on 127.0.0.1:" in banner, banner + server.stderr.read()
        port = int(banner.rsplit(":", 1)[1])
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.ehlo("client.example")
            smtp.mail("someone@example.org")
            # examples/ims.toml: alice is in gal.txt; loopback may not relay
            assert smtp.rcpt("alice@contoso.com")[0] == 250
            assert smtp.rcpt("victim@elsewhere.example") == (550, b"Relaying is prohibited")
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
    assert server.returncode == 0


def toml_blocks() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def test_the_settings_shown_are_the_example_file() -> None:
    """The README's settings file is examples/ims.toml, word for word."""
    shown = [block for block in toml_blocks() if block.lstrip().startswith("# Contoso")]
    assert shown == [(ROOT / "examples" / "ims.toml").read_text(encoding="utf-8")]


def test_the_cases_shown_are_cases_of_the_example_file() -> None:
    """The README's cases are examples/imcea_policy.toml's, with the same settings."""
    (shown,) = [tomllib.loads(b) for b in toml_blocks() if "[[case]]" in b]
    example = tomllib.loads((ROOT / "examples" / "imcea_policy.toml").read_text(encoding="utf-8"))
    assert shown["settings"] == example["settings"] == "ims.toml"
    assert shown["case"]
    for case in shown["case"]:
        assert case in example["case"]
