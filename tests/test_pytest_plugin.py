"""The pytest plugin (imcea.pytest_plugin), run with pytester, and the example folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from imcea.cases import load_cases

pytest_plugins = ["pytester"]

PLUGIN = "imcea.pytest_plugin"
REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

SETTINGS = """\
reroute = true
directory = ["alice@contoso.example"]

[[routing]]
domain = "contoso.example"
action = "inbound"

[restrictions]
allow = ["192.168.0.1"]
"""

PASSING = """\
settings = "ims.toml"

[[case]]
name = "GAL user"
ip = "203.0.113.7"
recipient = "alice@contoso.example"
action = "deliver"
reason = "local_recipient"

[[case]]
name = "outsider relays"
ip = "203.0.113.7"
recipient = "IMCEASMTP-victim+40example+2Eorg@contoso.example"
action = "return"
reason = "encapsulated_relay_denied"
reply = "550 Relaying is prohibited"
"""

FAILING = """\
settings = "ims.toml"

[[case]]
name = "branch office relays"
ip = "192.168.0.1"
sender = "bob@contoso.example"
recipient = "friend@example.org"
action = "return"
reason = "relay_denied"
reply = "550..."

[[case]]
name = "GAL user"
ip = "203.0.113.7"
recipient = "alice@contoso.example"
action = "deliver"
"""


def plugin_options() -> list[str]:
    """The options of an inner pytest run that collects case files.

    ``-p imcea.pytest_plugin`` unless an installed entry point loads the plugin already:
    naming it twice (the entry point under another name, and ``-p``) would register the
    module twice, which pytest refuses.  Hypothesis's own plugin is left out: the inner
    runs have no property tests, and it costs seconds per run.
    """
    options = ["-p", "no:hypothesispytest"]
    autoload = not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    if autoload and any(ep.value == PLUGIN for ep in entry_points(group="pytest11")):
        return options
    return [*options, "-p", PLUGIN]


@pytest.fixture
def folder(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".toml", ims=SETTINGS)
    return pytester


def test_a_case_file_is_one_test_per_case(folder: pytest.Pytester) -> None:
    folder.makefile(".toml", imcea_policy=PASSING)
    result = folder.runpytest(*plugin_options(), "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "imcea_policy.toml::GAL user PASSED*",
            "imcea_policy.toml::outsider relays PASSED*",
        ]
    )


def test_cases_are_selected_by_name(folder: pytest.Pytester) -> None:
    folder.makefile(".toml", imcea_policy=PASSING)
    result = folder.runpytest(*plugin_options(), "-v", "-k", "outsider")
    result.assert_outcomes(passed=1, deselected=1)


def test_a_failing_case_shows_expected_actual_and_the_rule(folder: pytest.Pytester) -> None:
    folder.makefile(".toml", imcea_policy=FAILING)
    result = folder.runpytest(*plugin_options())
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ imcea_policy.toml: case 1 'branch office relays' _*",
            "case 1 'branch office relays': action, reason, reply differ",
            "  client 192.168.0.1",
            "  MAIL FROM:<bob@contoso.example>  RCPT TO:<friend@example.org>",
            "*expected*actual",
            "! action  return  *reroute",
            "! reason  relay_denied  *relay_allowed_host",
            "! reply   550...  *250 OK - Recipient <friend@example.org>",
            "  rule: no routing entry matches example.org; "
            "client 192.168.0.1 matches restrictions.allow '192.168.0.1'",
            "  relayed to friend@example.org via example.org",
        ]
    )
    # the report is the case, not a Python traceback of the plugin
    assert "CaseFailed" not in result.stdout.str()
    assert "pytest_plugin.py" not in result.stdout.str()


def test_a_failing_ndr_resolved_or_next_hop_is_shown_beside_the_actual(
    folder: pytest.Pytester,
) -> None:
    folder.makefile(
        ".toml",
        imcea_policy="""\
settings = "ims.toml"

[[case]]
name = "branch office relays"
ip = "192.168.0.1"
recipient = "friend@example.org"
action = "reroute"
ndr = false
resolved = "friend@example.org"
next_hop = "smarthost.example"
""",
    )
    result = folder.runpytest(*plugin_options())
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "case 1 'branch office relays': next_hop differs",
            "  action    reroute  *reroute",
            "  ndr       (none)  *(none)",
            "  resolved  friend@example.org  *friend@example.org",
            "! next_hop  smarthost.example  *example.org",
        ]
    )
    assert "relayed to" not in result.stdout.str()  # the rows say it already


def test_a_bad_case_file_is_a_collection_error_naming_the_key(folder: pytest.Pytester) -> None:
    folder.makefile(".toml", imcea_policy=PASSING)
    folder.makefile(".toml", imcea_broken=PASSING.replace('"deliver"', '"relay"'))
    result = folder.runpytest(*plugin_options())
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting imcea_broken.toml*",
            "imcea_broken.toml: case 1 'GAL user': action: "
            "'relay' is not one of deliver, reroute, return",
        ]
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED  # collection errors stop the run
    assert "Traceback" not in result.stdout.str()


def test_a_bad_settings_file_is_a_collection_error(folder: pytest.Pytester) -> None:
    folder.makefile(".toml", imcea_policy=PASSING.replace('"ims.toml"', '"missing.toml"'))
    result = folder.runpytest(*plugin_options())
    result.assert_outcomes(errors=1)
    result.stdout.re_match_lines([r"imcea_policy\.toml: settings: .*missing\.toml: cannot read.*"])


def test_other_files_are_left_alone(folder: pytest.Pytester) -> None:
    folder.makefile(".toml", policy=PASSING)  # not imcea_*
    folder.makefile(".txt", imcea_notes=PASSING)  # not .toml
    result = folder.runpytest(*plugin_options())
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_the_example_folder_passes() -> None:
    """``python -m pytest examples``: the case file and the property test."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", str(EXAMPLES)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    passed = set(re.findall(r"::(.+?) PASSED", result.stdout))
    names = {case.name for case in load_cases(EXAMPLES / "imcea_policy.toml")}
    assert names <= passed  # every case was collected by the plugin, once
    assert "test_no_outsider_can_relay" in passed
    assert result.stdout.count("imcea_policy.toml::") == len(names)


@pytest.mark.parametrize("autoload", [True, False], ids=["entry-point", "conftest"])
def test_the_decision_table_is_collected_by_the_plugin(autoload: bool) -> None:
    """``tests/cases``: every case of every file is one test, with or without the entry point."""
    cases = REPO / "tests" / "cases"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    if not autoload:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only", cases],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    collected = {line for line in result.stdout.splitlines() if "::" in line}
    expected = {
        f"tests/cases/{path.name}::{case.name}"
        for path in cases.glob("imcea_*.toml")
        for case in load_cases(path)
    }
    assert len(expected) >= 120
    assert collected == expected
