"""The documentation site: its console blocks run, and its reference tables match the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from console import run_document

import imcea

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))


def test_pages_are_found() -> None:
    names = {page.relative_to(DOCS).as_posix() for page in PAGES}
    assert {"index.md", "api.md", "reference/settings.md", "tutorials/audit.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(DOCS).as_posix() for p in PAGES])
def test_console_blocks(page: Path, tmp_path: Path) -> None:
    """Every command of the page prints and exits as the page shows."""
    _, failures = run_document(page, tmp_path)
    assert not failures, "\n\n".join(failures)


def table_column(page: str, header: str) -> list[str]:
    """The first column of the Markdown table of *page* whose header starts with *header*."""
    text = (DOCS / page).read_text(encoding="utf-8")
    rows = re.findall(rf"^\| {header} \|.*\n\|[-|]+\|\n((?:\|.*\n)+)", text, re.MULTILINE)
    assert len(rows) == 1, page
    return [re.match(r"\| `?([^`|]+?)`? \|", row)[1] for row in rows[0].splitlines()]  # type: ignore[index]


def test_every_reason_is_documented_once() -> None:
    documented = table_column("reference/reasons.md", "reason")
    assert sorted(documented) == sorted(r.value for r in imcea.Reason)
    assert len(documented) == len(set(documented))


def test_every_finding_is_documented_once() -> None:
    documented = table_column("reference/findings.md", "code")
    source = (ROOT / "imcea" / "traps.py").read_text(encoding="utf-8")
    emitted = set(re.findall(r'Finding\(\s*"(\w+)"', source))
    assert emitted and set(documented) == emitted
    assert len(documented) == len(set(documented))


def test_exit_codes_are_documented() -> None:
    assert table_column("reference/exit-codes.md", "status") == [
        "**0**",
        "**1**",
        "**2**",
        "**130**",
    ]


def test_every_public_name_is_in_the_api_reference() -> None:
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    directive = r"^```\{auto(?:function|class|exception|data)\} imcea\.(\w+)$"
    documented = set(re.findall(directive, text, re.MULTILINE))
    assert documented == set(imcea.__all__)
