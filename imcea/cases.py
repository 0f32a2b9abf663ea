"""Policy case files: unit tests of IMS routing settings, written as data.

A case file is a TOML file that names the settings under test and lists cases, each
one SMTP transaction (client, recipient) and what the IMS must do with it::

    settings = "ims.toml"              # a settings file, relative to this file

    [[case]]
    name = "outsider relays"           # optional; default "case N"
    ip = "203.0.113.7"                 # the client's IP address (required)
    authenticated = false              # optional, default false
    server_ip = "192.0.2.10"           # optional: the server address connected to
    sender = "spam@example.net"        # optional MAIL FROM, default ""
    recipient = "victim@example.org"   # the RCPT TO path (required)
    action = "return"                  # deliver, reroute or return (required)
    reason = "relay_denied"            # optional: an imcea.Reason value
    reply = "550 Relaying is prohibited"   # optional: the RCPT reply
    ndr = false                        # optional: the NDR diagnostic, or false for none
    resolved = false                   # optional: where it goes, or false for nowhere
    next_hop = false                   # optional: the relay's next hop, or false for none

Instead of ``settings = "FILE"`` the settings may be an inline ``[settings]`` table of
the settings-file shape (DESIGN §3), whose ``directory`` file name is then relative to
the case file too; with no ``settings`` at all the built-in defaults apply.

``reply`` and ``ndr`` are compared exactly, except that a text ending with ``...``
matches every text that starts with the one before the dots (``reply = "250 OK..."``);
``resolved`` (the address delivered or relayed to) and ``next_hop`` (the host relayed
to) are compared exactly.  ``false`` for ``ndr``, ``resolved`` or ``next_hop`` expects
the decision to have none (DESIGN §2.4: a returned recipient has no ``resolved``, only a
relayed one has a ``next_hop``).  A case passes when the action, and each of the other
expectations given, are those decided.

Everything is checked once, when the file is read: unknown keys, wrong types, bad IP
addresses, unknown actions and reasons, and a reason, an NDR, a resolved address or a
next hop that cannot go with the action (the case could never pass).  Errors are
:class:`CaseFileError`, a :class:`~imcea.errors.SettingsError` whose message names the
file, the case (counted from 1, with its name when it has one) and the key::

    policy.toml: case 3 'outsider relays': action: 'relay' is not one of deliver, reroute, return

:func:`verify_command` is the ``imcea verify CASES.toml...`` command: one ``PASS`` or
``FAIL`` line per case, then ``N passed, M failed``; exit status 1 when a case fails, 2
when a file cannot be read.  :mod:`imcea.pytest_plugin` runs the same files under pytest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path as FilePath
from typing import Any, Literal, TextIO

import attrs

from .decision import Action, Decision, Envelope, Reason, decide
from .errors import Error, SettingsError
from .exits import Exit
from .networks import IPAddress, parse_ip
from .reasons import REASONS
from .settings import Settings, load_settings
from .tomlfile import load_toml

__all__ = [
    "OUTCOME_KEYS",
    "Case",
    "CaseFile",
    "CaseFileError",
    "Expectation",
    "Expected",
    "Outcome",
    "load_cases",
    "parse_cases",
    "verify_command",
]

#: The action that goes with each reason (from the table :data:`imcea.REASONS`): a case
#: that expects a reason with another action could never pass, so it is refused when read.
REASON_ACTION: dict[Reason, Action] = {reason: info.action for reason, info in REASONS.items()}

#: A ``reply`` ending with this is matched as a prefix.
PREFIX_MARK = "..."

_TOP_KEYS = ("case", "settings")
_CASE_KEYS = (
    "action",
    "authenticated",
    "ip",
    "name",
    "ndr",
    "next_hop",
    "reason",
    "recipient",
    "reply",
    "resolved",
    "sender",
    "server_ip",
)

#: The optional expectations about where a recipient goes, in the order they are shown.
OUTCOME_KEYS = ("ndr", "resolved", "next_hop")

#: For each action, whether its decisions always (True) or never (False) carry an NDR, a
#: resolved address and a next hop (DESIGN §2.4); None: it depends on the reason.
_CARRIES: dict[Action, dict[str, bool | None]] = {
    Action.DELIVER: {"ndr": False, "resolved": True, "next_hop": False},
    Action.REROUTE: {"ndr": False, "resolved": True, "next_hop": True},
    Action.RETURN: {"ndr": None, "resolved": False, "next_hop": False},
}
_REQUIRED = ("ip", "recipient", "action")


class CaseFileError(SettingsError):
    """A case file cannot be read or is invalid.

    ``source`` is the file as named by the caller, ``case`` the number of the case
    (from 1; ``None`` for a problem outside the cases) and ``key`` the key concerned
    (``None`` when there is none, e.g. a file that is not TOML).
    """

    def __init__(
        self,
        source: str,
        problem: str,
        *,
        case: int | None = None,
        name: str | None = None,
        key: str | None = None,
    ) -> None:
        where = source
        if case is not None:
            where += f": case {case}" + (f" {name!r}" if name is not None else "")
        if key is not None:
            where += f": {key}"
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.case = case
        self.key = key


class _Bad(Exception):
    """Internal: a bad value for *key* in one case; the caller adds file and case."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key = key
        self.problem = problem


# ---------------------------------------------------------------------------
# values


def _one_line(text: str) -> str:
    return " ".join(text.split())


#: What an expectation of ``ndr``, ``resolved`` or ``next_hop`` holds: ``None`` when the
#: case does not say, ``False`` when the decision must have none, else the text.
Expectation = str | Literal[False] | None


def _text_matches(expected: str, actual: str, *, prefix: bool) -> bool:
    """Whether *actual* is *expected*, or starts with it when it ends with ``...``."""
    if prefix and expected.endswith(PREFIX_MARK):
        return actual.startswith(expected[: -len(PREFIX_MARK)])
    return actual == expected


def _shown(value: str | None) -> str:
    """An optional decision field as a failure report shows it."""
    return "(none)" if value is None else repr(value)


@attrs.frozen
class Expected:
    """What a case expects: an action and, optionally, a reason, a reply, an NDR, the
    resolved address and the next hop.

    ``reply`` and ``ndr`` ending with ``...`` are prefixes (see the module
    documentation); ``ndr``, ``resolved`` and ``next_hop`` are ``False`` when the
    decision must have none, ``None`` when the case does not say.
    """

    action: Action
    reason: Reason | None = None
    reply: str | None = None
    ndr: Expectation = None
    resolved: Expectation = None
    next_hop: Expectation = None

    def reply_matches(self, reply: str) -> bool:
        """Whether *reply* is the expected one (always true when no reply is expected)."""
        return self.reply is None or _text_matches(self.reply, reply, prefix=True)

    def matches(self, key: str, actual: str | None) -> bool:
        """Whether *actual* is what the case expects for *key* (one of ``ndr``,
        ``resolved`` and ``next_hop``); always true when it does not say."""
        expected: Expectation = getattr(self, key)
        if expected is None:
            return True
        if expected is False or actual is None:
            return expected is False and actual is None
        return _text_matches(expected, actual, prefix=key == "ndr")

    def mismatches(self, decision: Decision) -> tuple[str, ...]:
        """The keys (``action``, ``reason``, ``reply``, ``ndr``, ``resolved``,
        ``next_hop``) on which *decision* differs."""
        keys: list[str] = []
        if decision.action is not self.action:
            keys.append("action")
        if self.reason is not None and decision.reason is not self.reason:
            keys.append("reason")
        if not self.reply_matches(decision.reply):
            keys.append("reply")
        keys += [key for key in OUTCOME_KEYS if not self.matches(key, getattr(decision, key))]
        return tuple(keys)

    def given(self) -> tuple[str, ...]:
        """The keys of :data:`OUTCOME_KEYS` that the case says something about."""
        return tuple(key for key in OUTCOME_KEYS if getattr(self, key) is not None)

    def __str__(self) -> str:
        text = self.action.value
        if self.reason is not None:
            text += f" {self.reason.value}"
        if self.reply is not None:
            text += f" {self.reply!r}"
        for key in self.given():
            value: Expectation = getattr(self, key)
            text += f" {key}={_shown(value or None)}"
        return text


@attrs.frozen
class Case:
    """One case: an SMTP transaction with one recipient, and what must happen to it.

    ``number`` is the case's position in its file, from 1; ``name`` defaults to
    ``"case N"``.
    """

    number: int
    name: str
    ip: IPAddress
    recipient: str
    expected: Expected
    authenticated: bool = False
    server_ip: IPAddress | None = None
    sender: str = ""

    def decide(self, settings: Settings) -> Decision:
        """The decision for this case's recipient under *settings*."""
        verdict = decide(
            Envelope(self.sender, [self.recipient]),
            self.ip,
            settings,
            authenticated=self.authenticated,
            server_ip=self.server_ip,
        )
        return verdict[0]

    def run(self, settings: Settings) -> Outcome:
        """Decide the case under *settings* and compare with what it expects."""
        actual = self.decide(settings)
        return Outcome(self, actual, self.expected.mismatches(actual))

    def describe_client(self) -> str:
        """The client side of the case in words, for failure reports."""
        text = f"client {self.ip}" + (", authenticated" if self.authenticated else "")
        if self.server_ip is not None:
            text += f", connected to {self.server_ip}"
        return text


@attrs.frozen
class Outcome:
    """A case run: the decision taken and the keys on which it differs from the case."""

    case: Case
    actual: Decision
    mismatches: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """Whether the decision is the expected one."""
        return not self.mismatches

    @property
    def expected(self) -> Expected:
        """What the case expects."""
        return self.case.expected

    @property
    def explanation(self) -> str:
        """The rule that fired: the decision's detail, on one line."""
        return _one_line(self.actual.detail)

    def got(self) -> str:
        """The decision in the shape of :class:`Expected`: the reply, NDR, resolved address
        and next hop when the case expects them."""
        text = f"{self.actual.action.value} {self.actual.reason.value}"
        if self.expected.reply is not None:
            text += f" {self.actual.reply!r}"
        for key in self.expected.given():
            text += f" {key}={_shown(getattr(self.actual, key))}"
        return text

    def summary(self) -> str:
        """One line: ``expected ..., got ... (detail)`` on a failure, else the decision."""
        if self.passed:
            return f"{self.got()} ({self.explanation})"
        return f"expected {self.expected}, got {self.got()} ({self.explanation})"


@attrs.frozen
class CaseFile:
    """A parsed case file: the settings under test and the cases, in order.

    ``source`` is the file as the caller named it (used in messages and test ids).
    """

    source: str
    settings: Settings
    cases: tuple[Case, ...]

    def __iter__(self) -> Iterator[Case]:
        return iter(self.cases)

    def __len__(self) -> int:
        return len(self.cases)

    def run(self) -> tuple[Outcome, ...]:
        """Run every case against the file's settings."""
        return tuple(case.run(self.settings) for case in self.cases)


# ---------------------------------------------------------------------------
# parsing


def load_cases(path: str | os.PathLike[str]) -> CaseFile:
    """Read and check a case file; relative settings paths are resolved from its folder.

    Raises :class:`CaseFileError` naming the file, the case and the key.
    """
    source = os.fspath(path)
    file_path = FilePath(source)
    data = load_toml(
        file_path.read_bytes, "case file", lambda message: CaseFileError(source, message)
    )
    return parse_cases(data, source=source, base=file_path.parent)


def parse_cases(
    data: Mapping[str, Any], *, source: str = "<cases>", base: str | os.PathLike[str] | None = None
) -> CaseFile:
    """Check a case file already read into a mapping (the shape of the TOML file).

    *source* names it in messages; *base* is the folder that relative settings and
    directory paths are resolved from (default: the current directory).
    """
    if not isinstance(data, Mapping):
        raise CaseFileError(source, f"expected a table, got {data!r}")
    folder = FilePath.cwd() if base is None else FilePath(base)
    for key in data:
        if key not in _TOP_KEYS:
            raise CaseFileError(
                source, f"unknown key (expected one of {', '.join(_TOP_KEYS)})", key=str(key)
            )
    settings = _settings(data.get("settings"), source, folder)
    entries = data.get("case")
    if entries is None:
        raise CaseFileError(source, "no [[case]] entries", key="case")
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise CaseFileError(source, "expected [[case]] tables", key="case")
    if not entries:
        raise CaseFileError(source, "no [[case]] entries", key="case")
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for number, entry in enumerate(entries, 1):
        case = _case(entry, number, source)
        if case.name in seen:
            raise CaseFileError(
                source,
                f"{case.name!r} is already the name of case {seen[case.name]}",
                case=number,
                name=None if case.name == f"case {number}" else case.name,
                key="name",
            )
        seen[case.name] = number
        cases.append(case)
    return CaseFile(source, settings, tuple(cases))


def _settings(value: object, source: str, folder: FilePath) -> Settings:
    """The settings under test: a file name (relative to *folder*), a table, or defaults."""
    if value is None:
        return Settings()
    if isinstance(value, str):
        path = folder / value
        try:
            return load_settings(path)
        except SettingsError as exc:
            message = str(exc)
            if not message.startswith(str(path)):  # a key error: say which file
                message = f"{path}: {message}"
            raise CaseFileError(source, message, key="settings") from None
    if isinstance(value, Mapping):
        table = dict(value)
        directory = table.get("directory")
        if isinstance(directory, str):
            table["directory"] = str(folder / directory)
        try:
            return load_settings(table)
        except SettingsError as exc:
            # the message starts with the key path inside the table
            error = CaseFileError(source, f"settings.{exc}")
            error.key = "settings"
            raise error from None
    raise CaseFileError(
        source,
        f"expected a settings file name or a [settings] table, got {value!r}",
        key="settings",
    )


def _case(entry: Mapping[str, Any], number: int, source: str) -> Case:
    written = entry.get("name")
    shown = written if isinstance(written, str) else None
    try:
        return _check_case(entry, number)
    except _Bad as bad:
        raise CaseFileError(source, bad.problem, case=number, name=shown, key=bad.key) from None


def _check_case(entry: Mapping[str, Any], number: int) -> Case:
    for key in entry:
        if key not in _CASE_KEYS:
            raise _Bad(str(key), f"unknown key (expected one of {', '.join(_CASE_KEYS)})")
    for key in _REQUIRED:
        if key not in entry:
            raise _Bad(key, "missing")
    name = entry.get("name", f"case {number}")
    if not isinstance(name, str) or not name.strip():
        raise _Bad("name", f"expected a non-empty string, got {name!r}")
    ip = _ip(entry["ip"], "ip")
    server_value = entry.get("server_ip")
    server_ip = None if server_value is None else _ip(server_value, "server_ip")
    authenticated = entry.get("authenticated", False)
    if type(authenticated) is not bool:
        raise _Bad("authenticated", f"expected true or false, got {authenticated!r}")
    sender = _string(entry.get("sender", ""), "sender")
    recipient = _string(entry["recipient"], "recipient")
    action = _action(entry["action"])
    reason = None if "reason" not in entry else _reason(entry["reason"], action)
    reply = None if "reply" not in entry else _string(entry["reply"], "reply")
    if reply is not None and not reply.strip():
        raise _Bad("reply", "empty: leave the key out to accept any reply")
    ndr, resolved, next_hop = (_expectation(entry, key, action) for key in OUTCOME_KEYS)
    return Case(
        number,
        name.strip(),
        ip,
        recipient,
        Expected(action, reason, reply, ndr, resolved, next_hop),
        authenticated,
        server_ip,
        sender,
    )


def _string(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise _Bad(key, f"expected a string, got {value!r}")
    return value


def _expectation(entry: Mapping[str, Any], key: str, action: Action) -> Expectation:
    """The case's ``ndr``, ``resolved`` or ``next_hop``: a text, false for none, or not given."""
    if key not in entry:
        return None
    value = entry[key]
    if value is not False and not isinstance(value, str):
        raise _Bad(key, f"expected a string, or false for none, got {value!r}")
    if isinstance(value, str) and not value.strip():
        raise _Bad(key, "empty: write false for none, or leave the key out to accept any")
    carries = _CARRIES[action][key]
    if carries is not None and carries is not (value is not False):
        shown = "false" if value is False else repr(value)
        has = "always has one" if carries else "never has one"
        raise _Bad(key, f"{shown}: a decision to {action.value} {has}: the case could never pass")
    return value


def _ip(value: object, key: str) -> IPAddress:
    if not isinstance(value, str):
        raise _Bad(key, f"expected an IP address string, got {value!r}")
    try:
        return parse_ip(value, key=key)
    except Error:
        raise _Bad(key, f"{value!r} is not an IP address") from None


def _action(value: object) -> Action:
    choices = ", ".join(a.value for a in Action)
    if isinstance(value, str):
        try:
            return Action(value.strip().lower())
        except ValueError:
            pass
    raise _Bad("action", f"{value!r} is not one of {choices}")


def _reason(value: object, action: Action) -> Reason:
    if not isinstance(value, str):
        raise _Bad("reason", f"expected a reason name, got {value!r}")
    try:
        reason = Reason(value.strip().lower())
    except ValueError:
        import difflib

        names = [r.value for r in Reason]
        close = difflib.get_close_matches(value.strip().lower(), names, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"one of {', '.join(names)}"
        raise _Bad("reason", f"{value!r} is not a reason ({hint})") from None
    goes_with = REASON_ACTION.get(reason)
    if goes_with is not None and goes_with is not action:
        raise _Bad(
            "reason",
            f"{reason.value!r} comes with action {goes_with.value!r}, "
            f"not {action.value!r}: the case could never pass",
        )
    return reason


# ---------------------------------------------------------------------------
# imcea verify


def _record(source: str, outcome: Outcome) -> dict[str, Any]:
    expected = outcome.expected
    actual = outcome.actual
    return {
        "file": source,
        "case": outcome.case.name,
        "passed": outcome.passed,
        "mismatches": list(outcome.mismatches),
        "expected": {
            "action": expected.action.value,
            "reason": None if expected.reason is None else expected.reason.value,
            "reply": expected.reply,
            **{key: getattr(expected, key) for key in OUTCOME_KEYS},
        },
        "actual": {
            "action": actual.action.value,
            "reason": actual.reason.value,
            "reply": actual.reply,
            "ndr": actual.ndr,
            "resolved": actual.resolved,
            "next_hop": actual.next_hop,
        },
        "detail": outcome.explanation,
    }


def verify_command(paths: Sequence[str], *, out: TextIO, err: TextIO, as_json: bool = False) -> int:
    """``imcea verify CASES.toml...``: run every case of every file in *paths*.

    Prints ``PASS file::name`` or ``FAIL file::name: expected ..., got ... (detail)``
    per case (a JSON object per case with *as_json*), then ``N passed, M failed``
    (on standard error with *as_json*).  A file that cannot be read is one line on
    standard error and its cases are not run.  Returns 2 when a file could not be
    read, else 1 when a case failed, else 0 (:mod:`imcea.exits`).
    """
    import json

    passed = failed = errors = 0
    for source in paths:
        try:
            case_file = load_cases(source)
        except CaseFileError as exc:
            err.write(f"imcea verify: {_one_line(str(exc))}\n")
            errors += 1
            continue
        for outcome in case_file.run():
            label = f"{source}::{outcome.case.name}"
            if outcome.passed:
                passed += 1
                text = f"PASS {label}"
            else:
                failed += 1
                text = f"FAIL {label}: {outcome.summary()}"
            if as_json:
                out.write(json.dumps(_record(source, outcome), ensure_ascii=False) + "\n")
            else:
                out.write(text + "\n")
    (err if as_json else out).write(f"{passed} passed, {failed} failed\n")
    if errors:
        return Exit.TROUBLE
    return Exit.FINDINGS if failed else Exit.CLEAN
