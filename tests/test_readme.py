"""The README's examples are tests: its Python session, its command lines and its quick start."""

from __future__ import annotations

import doctest
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from expected import DESIGN_EXAMPLE

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_python_examples() -> None:
    result = doctest.testfile(str(README), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 15
    assert result.failed == 0


def _console_examples() -> list[tuple[str, list[str]]]:
    """Each ``$ imcea ...`` line of the README with the output lines printed under it."""
    text = README.read_text(encoding="utf-8")
    examples: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", text, re.DOTALL):
        current: list[str] | None = None
        for line in block.splitlines():
            if line.startswith("$ "):
                current = []
                examples.append((line[2:], current))
            elif current is not None and line:
                current.append(line)
    return [(cmd, out) for cmd, out in examples if out]


CONSOLE = _console_examples()


def test_readme_has_console_examples_with_output() -> None:
    assert len(CONSOLE) >= 3


@pytest.mark.parametrize(("command", "expected"), CONSOLE, ids=[c for c, _ in CONSOLE])
def test_console_example(command: str, expected: list[str], tmp_path: Path) -> None:
    argv = shlex.split(command.split("  #", 1)[0])
    assert argv[0] == "imcea"
    stdin = None
    if argv[1] == "ndr":
        # the README's bounce is the one shipped in examples/
        shutil.copytree(ROOT / "examples", tmp_path / "examples")
    if argv[1] == "x500":
        # the README's NDR file: the wrapped NDR of the Python example
        (tmp_path / "ndr.txt").write_text(
            "To: IMCEAEX-_O=ORG_OU=EXCHANGE+20ADMINISTRATIVE+20GROUP+20+28FYDIBOHF\n"
            "23SPDLT+29_CN=RECIPIENTS_CN=JDOE@contoso.com\n",
            encoding="utf-8",
        )
    if "ims.toml" in argv:
        # the README's settings: DESIGN's example
        (tmp_path / "ims.toml").write_text(DESIGN_EXAMPLE, encoding="utf-8")
        (tmp_path / "gal.txt").write_text("jdoe@contoso.com\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "imcea", *argv[1:]],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected


def test_quick_start_commands_are_the_ci_commands() -> None:
    """The README's test command is what .ci/run runs, word for word."""
    readme = README.read_text(encoding="utf-8")
    commands = re.findall(r"```console\n(python -m pip install .*?)\n```", readme)
    assert len(commands) == 2
    install_and_run, install_and_test = commands
    assert "imcea audit" in install_and_run
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert install_and_test in ci.splitlines()
