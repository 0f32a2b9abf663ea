"""The runner of console blocks: it must fail when a document and a command disagree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from console import Command, Session, blocks, matches

DOCUMENT = """\
Text.

```console
$ echo one   # a comment
one
$ cd examples
$ ls ims.toml \\
  gal.txt
gal.txt
ims.toml
$ false  # exit status 1
```

<!-- console: not run (a server) -->
```console
$ imcea policy --listen 127.0.0.1:10040
```
"""


def test_blocks_are_parsed_with_their_markers() -> None:
    first, second = blocks(DOCUMENT)
    assert first.not_run is None and first.line == 3
    assert [c.text for c in first.commands] == [
        "echo one   # a comment",
        "cd examples",
        "ls ims.toml gal.txt",
        "false  # exit status 1",
    ]
    assert [c.expected for c in first.commands] == [["one"], [], ["gal.txt", "ims.toml"], []]
    assert [c.status for c in first.commands] == [0, 0, 0, 1]
    assert second.not_run == "a server"


def test_an_unclosed_block_is_an_error() -> None:
    with pytest.raises(ValueError, match="line 1"):
        list(blocks("```console\n$ true\n"))


@pytest.mark.parametrize(
    ("expected", "actual", "result"),
    [
        (["a", "b"], "a\nb\n", True),
        (["a", "b"], "a\nb", True),
        (["a"], "a\nb\n", False),
        (["a", "b"], "a\nc\n", False),
        (["a ... z"], "a then z\n", True),
        (["a ... z"], "a\nz\n", False),  # ... in a line stays on that line
        (["...", "last"], "1\n2\nlast\n", True),
        (["...", "last"], "last\n", True),
        (["first", "...", "last"], "first\nlast\n", True),
        (["first", "...", "last"], "first\nlast\nmore\n", False),
        ([], "", True),
        ([], "something\n", False),
        (["a.b"], "axb\n", False),  # only ... is special
        (["a"], "a\n\n\n", True),  # trailing blank lines are not shown
        (["", "a"], "\na\n", True),
    ],
)
def test_matches(expected: list[str], actual: str, result: bool) -> None:
    assert matches(expected, actual) is result


def test_a_session_reports_wrong_output_and_status(tmp_path: Path) -> None:
    session = Session(tmp_path)
    assert session.run(Command(1, "cd examples")) is None
    assert session.run(Command(2, "cat gal.txt | head -n 1", ["# ..."])) is None
    problem = session.run(Command(3, "imcea check --settings ims.toml", ["no findings"]))
    assert problem is not None and "output differs" in problem
    problem = session.run(Command(4, "imcea decide --ip 203.0.113.7 x@contoso.com", ["..."]))
    assert problem is not None and re.search(r"exit status [1-9]\d*, the document shows 0", problem)
    assert session.run(Command(5, "cd nowhere")) is not None


def test_a_here_document_is_input_not_output(tmp_path: Path) -> None:
    document = (
        "```console\n"
        "$ cat > closed.toml <<'EOF'\n"
        "reroute = true\n"
        "$ not a command\n"
        "EOF\n"
        "$ head -n 1 closed.toml\n"
        "reroute = true\n"
        "```\n"
    )
    (block,) = blocks(document)
    write, show = block.commands
    assert write.expected == []
    assert write.text.endswith("\n$ not a command\nEOF")
    assert show.text == "head -n 1 closed.toml"
    assert show.expected == ["reroute = true"]
    session = Session(tmp_path)
    assert session.run(write) is None
    assert session.run(show) is None
    assert (tmp_path / "closed.toml").read_text() == "reroute = true\n$ not a command\n"
