"""A pytest plugin that runs policy case files (:mod:`imcea.cases`) as tests.

Every file named ``imcea_*.toml`` is collected, and each of its ``[[case]]`` entries is
one test item, named after the case: ``imcea_policy.toml::outsider relays``.  A failing
case reports the client and the envelope, the expected and the actual action, reason
and reply side by side (and the NDR, resolved address and next hop when the case
expects them), and the rule that fired (the decision's detail).  A file that
cannot be read or has a bad case is a collection error whose message names the file,
the case and the key.

The plugin is registered with the ``pytest11`` entry point of the ``imcea``
distribution; without the installed entry point, enable it with
``-p imcea.pytest_plugin``.  This is the only module of the package that imports pytest.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .cases import Case, CaseFile, CaseFileError, Expectation, Outcome, load_cases
from .settings import Settings

__all__ = ["CaseFailed", "CaseItem", "PolicyFile", "is_case_file", "pytest_collect_file"]

#: Case files are ``imcea_*.toml``: a prefix, so that other TOML files are left alone.
FILE_PREFIX = "imcea_"
FILE_SUFFIX = ".toml"


def is_case_file(path: Path) -> bool:
    """Whether pytest should collect *path* as a policy case file."""
    return path.name.startswith(FILE_PREFIX) and path.suffix == FILE_SUFFIX


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> PolicyFile | None:
    """Collect ``imcea_*.toml`` files as :class:`PolicyFile` collectors."""
    if is_case_file(file_path):
        return PolicyFile.from_parent(parent, path=file_path)
    return None


class CaseFailed(Exception):
    """Raised by a case item whose decision is not the expected one."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.summary())
        self.outcome = outcome


class PolicyFile(pytest.File):
    """One case file: loads and checks it once, then yields one item per case."""

    def collect(self) -> Iterator[CaseItem]:
        """The cases as items; a bad file is a collection error naming the key."""
        try:
            case_file = load_cases(self.path)
        except CaseFileError as exc:
            # CollectError is shown as its message alone, without a traceback
            raise self.CollectError(_relative(str(exc), self.path, self.config)) from None
        for case in case_file:
            yield CaseItem.from_parent(self, name=case.name, case=case, case_file=case_file)


def _relative(message: str, path: Path, config: pytest.Config) -> str:
    """*message* with the absolute file path shortened to the path from the rootdir."""
    try:
        shown = str(path.relative_to(config.rootpath))
    except ValueError:
        return message
    return message.replace(str(path), shown, 1)


class CaseItem(pytest.Item):
    """One case of a case file, run against the file's settings."""

    def __init__(self, *, case: Case, case_file: CaseFile, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.case_file = case_file

    @property
    def settings(self) -> Settings:
        """The settings under test."""
        return self.case_file.settings

    def runtest(self) -> None:
        """Decide the case; raise :class:`CaseFailed` when it is not what is expected."""
        outcome = self.case.run(self.settings)
        if not outcome.passed:
            raise CaseFailed(outcome)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> Any:
        """Expected against actual, and the rule that fired, for a failed case."""
        if isinstance(excinfo.value, CaseFailed):
            return failure_report(excinfo.value.outcome)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the case is: its file, no line (TOML gives none), and the case in words.

        The words head a failure report.  They must not be the end of the node id,
        which pytest would then rewrite as if it were a dotted Python name.
        """
        return self.path, None, f"{self.path.name}: case {self.case.number} {self.name!r}"


def _path(address: str) -> str:
    """*address* as written in an SMTP command: in angle brackets, once."""
    text = address.strip()
    return text if text.startswith("<") and text.endswith(">") else f"<{text}>"


def failure_report(outcome: Outcome) -> str:
    """The text pytest shows for a failed case."""
    case = outcome.case
    expected = outcome.expected
    actual = outcome.actual
    rows = [
        ("", "expected", "actual"),
        ("action", expected.action.value, actual.action.value),
        (
            "reason",
            "(any)" if expected.reason is None else expected.reason.value,
            actual.reason.value,
        ),
        ("reply", "(any)" if expected.reply is None else expected.reply, actual.reply),
    ]
    given = expected.given()
    for key in given:
        expectation: Expectation = getattr(expected, key)
        rows.append(
            (
                key,
                "(none)" if expectation is False else str(expectation),
                _optional(getattr(actual, key)),
            )
        )
    width0 = max(len(r[0]) for r in rows)
    width1 = max(len(r[1]) for r in rows)
    lines = [
        f"case {case.number} {case.name!r}: {', '.join(outcome.mismatches)} "
        + ("differs" if len(outcome.mismatches) == 1 else "differ"),
        f"  {case.describe_client()}",
        f"  MAIL FROM:{_path(case.sender)}  RCPT TO:{_path(case.recipient)}",
        "",
    ]
    for key, want, got in rows:
        mark = "!" if key in outcome.mismatches else " "
        lines.append(f"{mark} {key:<{width0}}  {want:<{width1}}  {got}".rstrip())
    lines += ["", f"  rule: {outcome.explanation}"]
    if actual.ndr is not None and "ndr" not in given:
        lines.append(f"  NDR: {actual.ndr}")
    if actual.next_hop is not None and not {"resolved", "next_hop"} & set(given):
        lines.append(f"  relayed to {actual.resolved} via {actual.next_hop}")
    return "\n".join(lines)


def _optional(value: str | None) -> str:
    """An optional field of a decision as the report shows it."""
    return "(none)" if value is None else value
