"""Policy case files (imcea.cases): the format, its errors, and ``imcea verify``.

Expected decisions are those DESIGN §2.3 and §2.4 give for the settings written here;
error messages must name the file, the case and the key.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import imcea
from imcea import Action, Reason
from imcea.cases import (
    REASON_ACTION,
    CaseFileError,
    Expected,
    load_cases,
    parse_cases,
    verify_command,
)
from imcea.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "imcea_policy.toml"

SETTINGS = """\
reroute = true
server_addresses = ["192.0.2.10"]
directory = "gal.txt"

[[routing]]
domain = "contoso.example"
action = "inbound"

[restrictions]
allow = ["192.168.0.1"]
"""

GAL = "alice@contoso.example\n"

PASSING = """\
settings = "ims.toml"

[[case]]
name = "GAL user"
ip = "203.0.113.7"
recipient = "alice@contoso.example"
action = "deliver"
reason = "local_recipient"
reply = "250 OK - Recipient <alice@contoso.example>"

[[case]]
ip = "203.0.113.7"
sender = "spam@example.net"
recipient = "victim@example.org"
action = "return"
reason = "relay_denied"
reply = "550 Relaying is prohibited"

[[case]]
name = "site connector relays"
ip = "192.168.0.1"
recipient = "IMCEASMTP-friend+40example+2Eorg@contoso.example"
action = "reroute"
reason = "relay_allowed_host"
"""

FAILING = """\
settings = "ims.toml"

[[case]]
name = "outsider relays"
ip = "203.0.113.7"
recipient = "victim@example.org"
action = "reroute"

[[case]]
name = "unknown user"
ip = "203.0.113.7"
recipient = "carol@contoso.example"
action = "return"
reason = "unknown_recipient"
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    """A folder with the settings file and its directory file."""
    write(tmp_path, "ims.toml", SETTINGS)
    write(tmp_path, "gal.txt", GAL)
    return tmp_path


# ---------------------------------------------------------------------------
# reading


def test_a_case_file_is_read_once_into_values(policy: Path) -> None:
    case_file = load_cases(write(policy, "policy.toml", PASSING))
    assert case_file.source == str(policy / "policy.toml")
    assert case_file.settings == imcea.load_settings(policy / "ims.toml")
    assert len(case_file) == 3
    first, second, third = case_file
    assert first.name == "GAL user" and first.number == 1
    assert first.expected == Expected(
        Action.DELIVER, Reason.LOCAL_RECIPIENT, "250 OK - Recipient <alice@contoso.example>"
    )
    # the defaults: a name from the position, no authentication, no server address, no sender
    assert second.name == "case 2"
    assert (second.authenticated, second.server_ip, second.sender) == (
        False,
        None,
        "spam@example.net",
    )
    assert (first.authenticated, first.server_ip, first.sender) == (False, None, "")
    assert str(third.ip) == "192.168.0.1"
    assert third.expected == Expected(Action.REROUTE, Reason.RELAY_ALLOWED_HOST)


def test_every_case_of_a_good_file_passes(policy: Path) -> None:
    outcomes = load_cases(write(policy, "policy.toml", PASSING)).run()
    assert [o.passed for o in outcomes] == [True, True, True]
    assert outcomes[2].actual.next_hop == "example.org"


def test_an_inline_settings_table_resolves_the_directory_from_the_case_file(
    policy: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = SETTINGS.replace("[[routing]]", "[[settings.routing]]").replace(
        "[restrictions]", "[settings.restrictions]"
    )
    inline = PASSING.replace('settings = "ims.toml"\n', "") + "\n[settings]\n" + table
    path = write(policy, "inline.toml", inline)
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))  # no gal.txt here
    case_file = load_cases(path)
    assert case_file.settings.directory is not None
    assert case_file.settings.directory.has_address("alice", "contoso.example")
    assert all(o.passed for o in case_file.run())


def test_without_settings_the_built_in_defaults_apply(tmp_path: Path) -> None:
    text = """\
[[case]]
ip = "203.0.113.7"
recipient = "IMCEASMTP-victim+40example+2Eorg@contoso.example"
action = "return"
reason = "encapsulated_not_rerouted"
"""
    case_file = load_cases(write(tmp_path, "defaults.toml", text))
    assert case_file.settings == imcea.Settings()
    assert case_file.run()[0].passed


def test_parse_cases_takes_a_mapping() -> None:
    case_file = parse_cases(
        {
            "settings": {"reroute": True},
            "case": [
                {
                    "ip": "2001:db8::1",
                    "authenticated": True,
                    "server_ip": "::ffff:192.0.2.10",
                    "recipient": "a@example.org",
                    "action": "REROUTE",
                    "reason": "open_relay",
                }
            ],
        },
        source="inline",
    )
    case = case_file.cases[0]
    assert case.authenticated is True
    assert str(case.server_ip) == "192.0.2.10"  # an IPv4-mapped address is its IPv4 address
    assert case.expected.action is Action.REROUTE  # actions are read in any case
    assert case.run(case_file.settings).passed


# ---------------------------------------------------------------------------
# comparing


def test_a_failed_case_says_what_was_expected_what_happened_and_why(policy: Path) -> None:
    outcome, passed = load_cases(write(policy, "failing.toml", FAILING)).run()
    assert passed.passed and passed.mismatches == ()
    assert not outcome.passed
    assert outcome.mismatches == ("action",)
    assert outcome.actual.reason is Reason.RELAY_DENIED
    assert outcome.explanation == outcome.actual.detail
    assert "not permitted by the routing restrictions" in outcome.explanation
    assert outcome.summary() == f"expected reroute, got return relay_denied ({outcome.explanation})"


def test_each_expected_key_is_compared(policy: Path) -> None:
    settings = imcea.load_settings(policy / "ims.toml")
    case = parse_cases(
        {
            "case": [
                {
                    "ip": "203.0.113.7",
                    "recipient": "victim@example.org",
                    "action": "return",
                    "reason": "denied_host",
                    "reply": "250 OK...",
                }
            ]
        }
    ).cases[0]
    outcome = case.run(settings)
    assert outcome.mismatches == ("reason", "reply")
    assert outcome.summary().startswith(
        "expected return denied_host '250 OK...', "
        "got return relay_denied '550 Relaying is prohibited' ("
    )


@pytest.mark.parametrize(
    ("reply", "matches"),
    [
        ("550 Relaying is prohibited", True),
        ("550 Relaying...", True),
        ("550...", True),
        ("...", True),
        ("550 Relaying is prohibited.", False),
        ("550 relaying...", False),
        ("550 Relaying", False),  # without the dots: exact
        ("250 OK...", False),
    ],
)
def test_reply_is_exact_or_a_prefix_ending_with_dots(reply: str, matches: bool) -> None:
    expected = Expected(Action.RETURN, None, reply)
    assert expected.reply_matches("550 Relaying is prohibited") is matches


def test_every_reason_has_its_action() -> None:
    """The reason/action check at load time knows every reason (DESIGN §2.4 table)."""
    assert set(REASON_ACTION) == set(Reason)
    assert REASON_ACTION[Reason.ENCAPSULATED_BYPASS] is Action.REROUTE
    assert REASON_ACTION[Reason.ENCAPSULATED_NOT_REROUTED] is Action.RETURN
    assert REASON_ACTION[Reason.POSTMASTER] is Action.DELIVER


# ---------------------------------------------------------------------------
# ndr, resolved and next_hop

WHERE = """\
settings = "ims.toml"

[[case]]
name = "relayed for the site connector"
ip = "192.168.0.1"
recipient = "IMCEASMTP-friend+40example+2Eorg@contoso.example"
action = "reroute"
ndr = false
resolved = "friend@example.org"
next_hop = "example.org"

[[case]]
name = "GAL user"
ip = "203.0.113.7"
recipient = "<alice@contoso.example>"
action = "deliver"
ndr = false
resolved = "alice@contoso.example"
next_hop = false

[[case]]
name = "unknown user"
ip = "203.0.113.7"
recipient = "carol@contoso.example"
action = "return"
ndr = "(000C05A6) Unknown Recipient"
resolved = false
next_hop = false

[[case]]
name = "refused at RCPT"
ip = "203.0.113.7"
recipient = "victim@example.org"
action = "return"
ndr = false

[[case]]
name = "unknown user, NDR by its prefix"
ip = "203.0.113.7"
recipient = "carol@contoso.example"
action = "return"
ndr = "(000C05A6)..."
"""


def test_ndr_resolved_and_next_hop_are_read(policy: Path) -> None:
    relayed, delivered, unknown, refused, prefix = load_cases(write(policy, "where.toml", WHERE))
    assert relayed.expected == Expected(
        Action.REROUTE, ndr=False, resolved="friend@example.org", next_hop="example.org"
    )
    assert (delivered.expected.resolved, delivered.expected.next_hop) == (
        "alice@contoso.example",
        False,
    )
    assert unknown.expected.ndr == "(000C05A6) Unknown Recipient"
    assert refused.expected.given() == ("ndr",)
    assert (refused.expected.resolved, refused.expected.next_hop) == (None, None)
    assert prefix.expected.ndr == "(000C05A6)..."


def test_ndr_resolved_and_next_hop_pass_when_they_are_those_decided(policy: Path) -> None:
    outcomes = load_cases(write(policy, "where.toml", WHERE)).run()
    assert [o.mismatches for o in outcomes] == [()] * len(outcomes)


# Each expectation changed so that it no longer holds: the case fails on that key alone.
WRONG = [
    ("relayed for the site connector", 'next_hop = "example.org"', 'next_hop = "mx.example.org"'),
    ("relayed for the site connector", 'resolved = "friend@example.org"', 'resolved = "f@x.org"'),
    ("GAL user", 'resolved = "alice@contoso.example"', 'resolved = "Alice@contoso.example"'),
    ("unknown user", 'ndr = "(000C05A6) Unknown Recipient"', 'ndr = "no route to the host"'),
    ("refused at RCPT", "ndr = false", 'ndr = "(000C05A6) Unknown Recipient"'),
    ("unknown user, NDR by its prefix", 'ndr = "(000C05A6)..."', 'ndr = "(000C05A7)..."'),
]


@pytest.mark.parametrize(("name", "right", "wrong"), WRONG)
def test_a_wrong_ndr_resolved_or_next_hop_fails_the_case(
    policy: Path, name: str, right: str, wrong: str
) -> None:
    key = right.split(" = ")[0]
    start = WHERE.index(f'name = "{name}"')
    at = WHERE.index(right, start)
    text = WHERE[:at] + wrong + WHERE[at + len(right) :]
    outcomes = {o.case.name: o for o in load_cases(write(policy, "wrong.toml", text)).run()}
    outcome = outcomes[name]
    assert outcome.mismatches == (key,)
    assert [o.case.name for o in outcomes.values() if not o.passed] == [name]
    # the summary shows the key with the expected and the actual value
    wanted, got = outcome.summary().split(", got ", 1)
    assert f" {key}={tomllib.loads(wrong)[key]!r}" in wanted
    actual = getattr(outcome.actual, key)
    assert f" {key}={'(none)' if actual is None else repr(actual)}" in got


def test_a_wrong_next_hop_in_verify_and_json(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = WHERE.replace('next_hop = "example.org"', 'next_hop = "mx.example.org"')
    path = write(policy, "wrong.toml", text)
    assert main(["verify", str(path)]) == 1
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(
        f"FAIL {path}::relayed for the site connector: expected reroute ndr=(none) "
        "resolved='friend@example.org' next_hop='mx.example.org', got reroute "
        "relay_allowed_host ndr=(none) resolved='friend@example.org' next_hop='example.org' ("
    )
    assert main(["verify", "--json", str(path)]) == 1
    record = json.loads(capsys.readouterr().out.splitlines()[0])
    assert record["mismatches"] == ["next_hop"]
    assert record["expected"]["next_hop"] == "mx.example.org"
    assert record["expected"]["ndr"] is False
    assert record["actual"]["next_hop"] == "example.org"


@pytest.mark.parametrize(
    ("action", "extra", "key", "message"),
    [
        ("deliver", 'ndr = "x"', "ndr", "'x': a decision to deliver never has one"),
        ("reroute", 'ndr = "x"', "ndr", "'x': a decision to reroute never has one"),
        ("return", 'resolved = "a@b.example"', "resolved", "'a@b.example': a decision to return"),
        ("deliver", "resolved = false", "resolved", "false: a decision to deliver always has one"),
        ("reroute", "resolved = false", "resolved", "false: a decision to reroute always has"),
        ("deliver", 'next_hop = "b.example"', "next_hop", "'b.example': a decision to deliver"),
        ("return", 'next_hop = "b.example"', "next_hop", "'b.example': a decision to return"),
        ("reroute", "next_hop = false", "next_hop", "false: a decision to reroute always has"),
        ("return", "ndr = true", "ndr", "expected a string, or false for none, got True"),
        ("return", "ndr = 550", "ndr", "expected a string, or false for none, got 550"),
        ("reroute", 'resolved = ""', "resolved", "empty: write false for none"),
        ("reroute", 'next_hop = " "', "next_hop", "empty: write false for none"),
    ],
)
def test_an_ndr_resolved_or_next_hop_that_could_never_pass_is_refused(
    tmp_path: Path, action: str, extra: str, key: str, message: str
) -> None:
    path = write(tmp_path, "policy.toml", CASE + f'action = "{action}"\n{extra}\n')
    with pytest.raises(CaseFileError) as caught:
        load_cases(path)
    assert str(caught.value).startswith(f"{path}: case 2 'outsider relays': {key}: {message}")
    assert caught.value.key == key


@pytest.mark.parametrize("action", ["deliver", "reroute", "return"])
def test_every_action_takes_what_its_decisions_can_have(tmp_path: Path, action: str) -> None:
    """What _expectation accepts for each action is what decide() gives (DESIGN §2.4)."""
    extra = {
        "deliver": 'ndr = false\nresolved = "a@b.example"\nnext_hop = false',
        "reroute": 'ndr = false\nresolved = "a@b.example"\nnext_hop = "b.example"',
        "return": 'ndr = "x"\nresolved = false\nnext_hop = false',
    }[action]
    case_file = load_cases(write(tmp_path, "policy.toml", CASE + f'action = "{action}"\n{extra}\n'))
    assert case_file.cases[1].expected.given() == ("ndr", "resolved", "next_hop")


# ---------------------------------------------------------------------------
# errors name the file, the case and the key

CASE = """\
[[case]]
name = "fine"
ip = "203.0.113.7"
recipient = "a@example.org"
action = "return"

[[case]]
name = "outsider relays"
ip = "203.0.113.7"
recipient = "victim@example.org"
"""


@pytest.mark.parametrize(
    ("extra", "key", "message"),
    [
        ('action = "relay"', "action", "'relay' is not one of deliver, reroute, return"),
        ("action = 3", "action", "3 is not one of deliver, reroute, return"),
        (
            'action = "return"\nreason = "relay_deny"',
            "reason",
            "'relay_deny' is not a reason (did you mean 'relay_denied'?)",
        ),
        (
            'action = "deliver"\nreason = "relay_denied"',
            "reason",
            "'relay_denied' comes with action 'return', not 'deliver': the case could never pass",
        ),
        ('action = "return"\ncolour = "red"', "colour", "unknown key (expected one of action, "),
        ('action = "return"\nip = "10.0.0.300"', None, None),  # a TOML error: duplicate key
        (
            'action = "return"\nserver_ip = "10.0.0.300"',
            "server_ip",
            "'10.0.0.300' is not an IP address",
        ),
        (
            'action = "return"\nauthenticated = "yes"',
            "authenticated",
            "expected true or false, got 'yes'",
        ),
        ('action = "return"\nsender = 1', "sender", "expected a string, got 1"),
        ('action = "return"\nreply = ""', "reply", "empty: leave the key out to accept any reply"),
        ('action = "return"\nname = "fine"', None, None),  # a TOML error: duplicate key
    ],
)
def test_a_bad_value_names_the_case_and_the_key(
    tmp_path: Path, extra: str, key: str | None, message: str | None
) -> None:
    path = write(tmp_path, "policy.toml", CASE + extra + "\n")
    with pytest.raises(CaseFileError) as caught:
        load_cases(path)
    error = caught.value
    assert isinstance(error, imcea.SettingsError) and isinstance(error, imcea.Error)
    if key is None:
        assert str(error).startswith(f"{path}: not valid TOML: ")
        assert error.case is None
        return
    assert str(error).startswith(f"{path}: case 2 'outsider relays': {key}: {message}")
    assert (error.source, error.case, error.key) == (str(path), 2, key)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"recipient": "a@b.example", "action": "return"}, "case 1: ip: missing"),
        ({"ip": "192.0.2.1", "action": "return"}, "case 1: recipient: missing"),
        ({"ip": "192.0.2.1", "recipient": "a@b.example"}, "case 1: action: missing"),
        (
            {"name": "x", "ip": "192.0.2.1/32", "recipient": "a", "action": "return"},
            "case 1 'x': ip: '192.0.2.1/32' is not an IP address",
        ),
        (
            {"ip": 17, "recipient": "a", "action": "return"},
            "case 1: ip: expected an IP address string, got 17",
        ),
        (
            {"name": "", "ip": "192.0.2.1", "recipient": "a", "action": "return"},
            "case 1 '': name: expected a non-empty string, got ''",
        ),
        (
            {"name": 5, "ip": "192.0.2.1", "recipient": "a", "action": "return"},
            "case 1: name: expected a non-empty string, got 5",
        ),
        (
            {"ip": "192.0.2.1", "recipient": ["a@b.example"], "action": "return"},
            "case 1: recipient: expected a string, got ['a@b.example']",
        ),
    ],
)
def test_a_missing_or_mistyped_key_is_named(entry: dict[str, object], message: str) -> None:
    with pytest.raises(CaseFileError) as caught:
        parse_cases({"case": [entry]}, source="cases.toml")
    assert str(caught.value) == f"cases.toml: {message}"


def test_a_duplicate_name_is_refused() -> None:
    entry = {"ip": "192.0.2.1", "recipient": "a@b.example", "action": "return"}
    with pytest.raises(CaseFileError) as caught:
        parse_cases({"case": [entry, {**entry, "name": "case 1"}]}, source="cases.toml")
    assert str(caught.value) == (
        "cases.toml: case 2 'case 1': name: 'case 1' is already the name of case 1"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "case: no [[case]] entries"),
        ({"case": []}, "case: no [[case]] entries"),
        ({"case": 1}, "case: expected [[case]] tables"),
        ({"case": ["x"]}, "case: expected [[case]] tables"),
        ({"cases": []}, "cases: unknown key (expected one of case, settings)"),
        (
            {"settings": 3, "case": []},
            "settings: expected a settings file name or a [settings] table, got 3",
        ),
        (
            {"settings": {"restrictions": {"allow": ["10.0.0.300"]}}},
            "settings.restrictions.allow[0]: '10.0.0.300' is not a network",
        ),
        ({"settings": {"rerute": True}}, "settings.rerute: unknown key"),
    ],
)
def test_a_problem_outside_the_cases_is_named(data: dict[str, object], message: str) -> None:
    with pytest.raises(CaseFileError) as caught:
        parse_cases(data, source="cases.toml")
    assert str(caught.value).startswith(f"cases.toml: {message}")


def test_a_bad_settings_file_is_named_with_its_key(tmp_path: Path) -> None:
    write(tmp_path, "ims.toml", 'reroute = "yes"\n')
    path = write(tmp_path, "policy.toml", 'settings = "ims.toml"\n' + CASE + 'action = "return"\n')
    with pytest.raises(CaseFileError) as caught:
        load_cases(path)
    assert str(caught.value) == (
        f"{path}: settings: {tmp_path / 'ims.toml'}: reroute: expected true or false, got 'yes'"
    )
    assert caught.value.key == "settings"


def test_a_missing_settings_file_or_case_file_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path, "policy.toml", 'settings = "nowhere.toml"\n' + CASE + 'action = "return"\n'
    )
    with pytest.raises(
        CaseFileError, match=r"policy\.toml: settings: .*nowhere\.toml: cannot read"
    ):
        load_cases(path)
    with pytest.raises(CaseFileError, match=r"absent\.toml: cannot read the case file"):
        load_cases(tmp_path / "absent.toml")


# ---------------------------------------------------------------------------
# imcea verify


def verify_argv(*files: str | Path) -> list[str]:
    """The ``imcea verify`` command line (the one place to change how it is started)."""
    return [sys.executable, "-m", "imcea", "verify", *map(str, files)]


def run_verify_process(*files: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        verify_argv(*files), cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_verify_passes_a_good_file(policy: Path) -> None:
    write(policy, "policy.toml", PASSING)
    result = run_verify_process("policy.toml", cwd=policy)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "PASS policy.toml::GAL user",
        "PASS policy.toml::case 2",
        "PASS policy.toml::site connector relays",
        "3 passed, 0 failed",
    ]
    assert result.stderr == ""


def test_verify_fails_a_bad_case_with_the_detail(policy: Path) -> None:
    write(policy, "failing.toml", FAILING)
    write(policy, "policy.toml", PASSING)
    result = run_verify_process("failing.toml", "policy.toml", cwd=policy)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "FAIL failing.toml::outsider relays: expected reroute, got return relay_denied "
        "(no routing entry matches example.org; client 203.0.113.7 is not permitted by "
        "the routing restrictions (KB Q193922))"
    )
    assert lines[1] == "PASS failing.toml::unknown user"
    assert lines[-1] == "4 passed, 1 failed"
    assert len(lines) == 6


def test_verify_reports_a_bad_file_on_stderr_and_runs_the_others(policy: Path) -> None:
    write(policy, "policy.toml", PASSING)
    write(policy, "broken.toml", CASE + 'action = "relay"\n')
    result = run_verify_process("broken.toml", "policy.toml", cwd=policy)
    assert result.returncode == 2  # trouble wins over the cases that ran
    assert result.stderr.splitlines() == [
        "imcea verify: broken.toml: case 2 'outsider relays': action: "
        "'relay' is not one of deliver, reroute, return"
    ]
    assert result.stdout.splitlines()[-1] == "3 passed, 0 failed"


def test_verify_passes_the_example_case_file() -> None:
    result = run_verify_process(EXAMPLE, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    count = len(load_cases(EXAMPLE))
    assert result.stdout.splitlines()[-1] == f"{count} passed, 0 failed"


def test_verify_needs_a_file() -> None:
    result = run_verify_process(cwd=REPO)
    assert result.returncode == 2  # argparse: usage error
    assert "CASES.toml" in result.stderr


def test_verify_in_process_json(policy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(policy, "failing.toml", FAILING)
    assert main(["verify", "--json", str(path)]) == 1
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["passed"] for r in records] == [False, True]
    assert records[0]["expected"] == {
        "action": "reroute",
        "reason": None,
        "reply": None,
        "ndr": None,
        "resolved": None,
        "next_hop": None,
    }
    assert records[0]["actual"]["reason"] == "relay_denied"
    assert records[0]["mismatches"] == ["action"]
    assert records[0]["detail"].startswith("no routing entry matches example.org")
    assert captured.err == "1 passed, 1 failed\n"


def test_verify_command_in_process(policy: Path) -> None:
    path = write(policy, "policy.toml", PASSING)
    out, err = io.StringIO(), io.StringIO()
    status = verify_command([str(path)], out=out, err=err)
    assert status == 0
    assert out.getvalue().endswith("3 passed, 0 failed\n")
    assert err.getvalue() == ""
