"""Run the ``console`` blocks of a Markdown document, as a reader would paste them.

The conventions (CONTRIBUTING.md describes them for writers):

- A line ``$ COMMAND`` in a fenced ``console`` block is a command; the lines under it, up
  to the next command or the end of the block, are what it prints: standard output, then
  standard error.  A line ``...`` stands for any number of lines, and ``...`` inside a
  line for any text on that line.  A command line ending in `` \\`` goes on on the next,
  and a here-document (``cat > file.toml <<'EOF'``) takes the lines up to its delimiter.
- A command prints nothing unless lines follow it, and exits 0 unless its comment says
  otherwise: ``$ imcea verify bad.toml  # exit status 1``.
- The commands of one document run in order in one temporary copy of the checkout's
  ``examples/``, like one terminal session: they start in the directory that holds the
  copy (the repository root), and ``$ cd DIR`` moves, as it would in a shell.
- A block whose fence is directly preceded by ``<!-- console: not run (REASON) -->`` is
  not run (a server, an install, a long run); the reason is shown in the source.

``imcea`` and ``python`` are this checkout's: the package under test, from its source.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

FENCE = re.compile(r"^(`{3,}|~{3,})console\s*$")
NOT_RUN = re.compile(r"^<!--\s*console:\s*not run\s*\((?P<reason>[^)]+)\)\s*-->\s*$")
STATUS = re.compile(r"#[^#]*\bexit status (?P<status>\d+)\b[^#]*$")
CD = re.compile(r"^cd\s+(?P<dir>\S+)$")
HEREDOC = re.compile(r"<<-?\s*(?P<quote>['\"]?)(?P<word>\w+)(?P=quote)")


@dataclass
class Command:
    """One ``$`` line of a console block, with the output and exit status it shows."""

    line: int  # 1-based, in the document
    text: str
    expected: list[str] = field(default_factory=list)

    @property
    def status(self) -> int:
        found = STATUS.search(self.text)
        return int(found["status"]) if found else 0


@dataclass
class Block:
    """A fenced ``console`` block: its commands, or the reason it is not run."""

    line: int
    commands: list[Command]
    not_run: str | None = None


def blocks(text: str) -> Iterator[Block]:
    """The ``console`` blocks of a Markdown document, in order."""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        marker = NOT_RUN.match(lines[index - 1]) if index else None
        block = Block(index + 1, [], marker["reason"] if marker else None)
        fence = opening.group(1)
        index += 1
        current: Command | None = None
        while index < len(lines) and not lines[index].startswith(fence):
            line = lines[index]
            if line.startswith("$ "):
                current = Command(index + 1, line[2:])
                block.commands.append(current)
                while current.text.endswith("\\") and index + 1 < len(lines):
                    index += 1
                    current.text = current.text[:-1] + lines[index].strip()
                here = HEREDOC.search(current.text)
                if here is not None:  # the document's lines up to the delimiter are input
                    while index + 1 < len(lines) and lines[index] != here["word"]:
                        index += 1
                        current.text += "\n" + lines[index]
            elif current is not None:
                current.expected.append(line)
            index += 1
        if index == len(lines):
            raise ValueError(f"line {block.line}: the console block is not closed")
        for command in block.commands:
            while command.expected and not command.expected[-1].strip():
                command.expected.pop()
        yield block
        index += 1


def matches(expected: list[str], actual: str) -> bool:
    """Whether *actual* is what *expected* shows, ``...`` standing for elided text.

    Blank lines at the end of the output do not count: a document cannot show them.
    """
    pattern = []
    for line in expected:
        if line == "...":
            pattern.append(r"(?:[^\n]*\n)*?")
        else:
            pattern.append("[^\n]*?".join(map(re.escape, line.split("..."))))
            pattern.append(r"\n")
    actual = actual.rstrip("\n") + "\n" if actual.strip("\n") else ""  # trailing blank lines
    return re.fullmatch("".join(pattern), actual) is not None


@dataclass
class Session:
    """A terminal session in a temporary copy of ``examples/``."""

    root: Path
    cwd: Path = field(init=False)
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        shutil.copytree(
            EXAMPLES, self.root / "examples", ignore=shutil.ignore_patterns("__pycache__")
        )
        bin_dir = self.root / ".bin"
        bin_dir.mkdir()
        for name, argv in (("imcea", f'"{sys.executable}" -m imcea'), ("python", sys.executable)):
            script = bin_dir / name
            script.write_text(f'#!/bin/sh\nexec {argv} "$@"\n', encoding="utf-8")
            script.chmod(0o755)
        self.cwd = self.root
        self.env = {
            "PATH": os.pathsep.join([str(bin_dir), "/usr/local/bin", "/usr/bin", "/bin"]),
            "PYTHONPATH": str(ROOT),
            "HOME": str(self.root),
            "LC_ALL": "C.UTF-8",
            "PYTHONIOENCODING": "utf-8",
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def run(self, command: Command) -> str | None:
        """Run *command*; ``None`` when it printed and exited as shown, else what differs."""
        moved = CD.match(command.text.split("#", 1)[0].strip())
        if moved:
            target = (self.cwd / moved["dir"]).resolve()
            if not target.is_dir():
                return f"cd: no directory {moved['dir']} in {self.cwd}"
            self.cwd = target
            return None
        result = subprocess.run(
            ["bash", "-c", command.text],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )
        actual = result.stdout + result.stderr
        problems = []
        if result.returncode != command.status:
            problems.append(f"exit status {result.returncode}, the document shows {command.status}")
        if not matches(command.expected, actual):
            problems.append("output differs:\n--- shown\n" + "\n".join(command.expected))
            problems.append("--- printed\n" + actual.rstrip("\n"))
        return "\n".join(problems) or None


def run_document(path: Path, workdir: Path) -> tuple[list[Command], list[str]]:
    """Run every console block of *path*; the commands run and the failures."""
    session = Session(workdir)
    ran: list[Command] = []
    failures: list[str] = []
    for block in blocks(path.read_text(encoding="utf-8")):
        if block.not_run is not None:
            continue
        if not block.commands:
            failures.append(f"{path.name}:{block.line}: a console block without a $ command")
        for command in block.commands:
            ran.append(command)
            problem = session.run(command)
            if problem is not None:
                failures.append(f"{path.name}:{command.line}: $ {command.text}\n{problem}")
    return ran, failures
