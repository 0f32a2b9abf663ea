"""imcea.dask: the replay of a bag of log lines equals imcea.replay() over read_log."""

from __future__ import annotations

import builtins
import importlib
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

import imcea
from imcea.sources import read_log

LOGS = Path(__file__).parent / "data" / "logs"
EXAMPLES = Path(__file__).parents[1] / "examples"

SP3 = """\
reroute = true
server_addresses = ["192.0.2.10"]

[[routing]]
domain = "contoso.com"
action = "inbound"

[restrictions]
authenticated = true
allow = ["10.1.0.0/16"]
"""
SP2 = SP3.replace("reroute = true", 'reroute = true\nrelease = "SP2"')

# each file a log of its own: no message straddles two of them
SAMPLES = [
    "postfix-mail.log",
    "postfix-journal-short.log",
    "MSGTRK2026030308-1.LOG",
    "MSGTRK20090601-1.LOG",
    "tracking-export.csv",
    "message-trace.csv",
]


def _expected(
    paths: list[Path], settings: str, compare: str | None = None
) -> tuple[list[dict[str, Any]], imcea.Summary, int]:
    """What imcea.replay() over read_log gives, file by file (a partition is a file)."""
    from imcea.dask import output_record

    before = imcea.load_settings(tomllib.loads(settings))
    after = None if compare is None else imcea.load_settings(tomllib.loads(compare))
    out: list[dict[str, Any]] = []
    summary = imcea.Summary()
    bad = 0
    for path in paths:
        log = read_log(path, on_error=lambda e: None)
        part = imcea.Summary()
        replayed = imcea.replay(log, before, compare=after, on_error=lambda e: None, summary=part)
        out += [output_record(item) for item in replayed]
        summary.merge(part)
        bad += log.counts.bad
    return out, summary, bad


@pytest.fixture(scope="module")
def dask_bag() -> Any:
    return pytest.importorskip(
        "dask.bag", reason="the Dask replay needs the extra imcea[dask] (dask[bag])"
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    sys.path.insert(0, str(EXAMPLES))
    try:
        example = importlib.import_module("dask_replay")
    finally:
        sys.path.remove(str(EXAMPLES))
    directory = tmp_path_factory.mktemp("logs")
    return list(example.generate(directory, files=2, messages=300))


@pytest.mark.parametrize("compare", [None, SP2], ids=["replay", "compare"])
def test_equal_to_replay_over_read_log(
    dask_bag: Any, generated: list[Path], compare: str | None
) -> None:
    import dask

    from imcea.dask import replay_bag, summary_of

    paths = [LOGS / name for name in SAMPLES] + generated
    bag = dask_bag.read_text([str(p) for p in paths], blocksize=None)
    assert bag.npartitions == len(paths)
    records = replay_bag(bag, SP3, compare)
    summary = summary_of(bag, SP3, compare)
    got, total = dask.compute(records, summary, scheduler="synchronous")
    expected, expected_summary, bad = _expected(paths, SP3, compare)
    assert len(got) > (100 if compare else 1000)
    assert got == expected  # record for record, in order
    assert total.replay == expected_summary
    assert total.source.bad == bad == 6
    assert total.errors[0] == "partition 0: line 48: truncated delivery line: 'to=<ceo@contoso.c'"
    if compare is not None:
        assert all(set(r) == {"id", "recipient", "before", "after"} for r in got)


def test_records_and_summary_share_their_work(dask_bag: Any) -> None:
    from imcea.dask import replay_bag, summary_of

    bag = dask_bag.read_text([str(LOGS / name) for name in SAMPLES], blocksize=None)
    records = replay_bag(bag, SP3)
    summary = summary_of(bag, SP3)
    shared = set(records.__dask_graph__()) & set(summary.__dask_graph__())
    replays = [key for key in shared if str(key).startswith("_replay_part")]
    assert len(replays) == len(SAMPLES)  # one replay per partition, computed once for both


def test_settings_as_a_path_and_file_names_from_include_path(dask_bag: Any, tmp_path: Path) -> None:
    from imcea.dask import replay_bag, summary_of

    settings = tmp_path / "ims.toml"
    settings.write_text(SP3)
    path = str(LOGS / "postfix-mail.log")
    bag = dask_bag.read_text([path], blocksize=None, include_path=True)
    got = replay_bag(bag, settings).compute(scheduler="synchronous")
    assert got == _expected([LOGS / "postfix-mail.log"], SP3)[0]
    errors = summary_of(bag, str(settings)).compute(scheduler="synchronous").errors
    assert errors[0].startswith(f"{path}: line 48: ")


def test_the_command_writes_the_same_objects(dask_bag: Any, tmp_path: Path) -> None:
    """Our JSON lines through ``imcea replay`` and through the bag: the same objects."""
    from imcea.dask import replay_bag

    settings = tmp_path / "ims.toml"
    settings.write_text(SP3)
    log = LOGS / "replay.jsonl"
    command = _command(settings, log)
    bag = dask_bag.read_text([str(log)], blocksize=None)
    assert replay_bag(bag, SP3).compute(scheduler="synchronous") == command
    assert len(command) == 3


def _command(settings: Path, *args: str | Path) -> list[dict[str, Any]]:
    """The JSON objects ``imcea replay`` writes for *args*, run as a user would."""
    run = subprocess.run(
        [sys.executable, "-m", "imcea", "replay", "--settings", str(settings), *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(EXAMPLES.parent)},
    )
    assert "Traceback" not in run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()]


@pytest.mark.parametrize("name", SAMPLES)
def test_the_command_reads_each_log_as_the_bag_does(
    dask_bag: Any, tmp_path: Path, name: str
) -> None:
    """A Postfix or Exchange log through ``imcea replay`` and through the bag, a file a
    partition: record for record the same objects."""
    from imcea.dask import replay_bag

    settings = tmp_path / "ims.toml"
    settings.write_text(SP3)
    command = _command(settings, LOGS / name)
    assert command
    bag = dask_bag.read_text([str(LOGS / name)], blocksize=None)
    assert replay_bag(bag, SP3).compute(scheduler="synchronous") == command


def test_bad_arguments(dask_bag: Any) -> None:
    from imcea.dask import replay_bag

    bag = dask_bag.from_sequence(["x"])
    with pytest.raises(imcea.SettingsError, match="pass the file or its text"):
        replay_bag(bag, imcea.Settings())  # type: ignore[arg-type]
    with pytest.raises(imcea.SettingsError, match="not valid TOML"):
        replay_bag(bag, "reroute = = true\n")
    remote = replay_bag(bag, "/only/on/the/workers/ims.toml")  # not read here
    with pytest.raises(imcea.SettingsError, match="cannot read the settings file"):
        remote.compute(scheduler="synchronous")
    with pytest.raises(imcea.Error, match=r"expected a dask\.bag\.Bag"):
        replay_bag(["x"])
    with pytest.raises(imcea.Error, match="format: expected one of"):
        replay_bag(bag, format="sendmail")


def test_without_dask_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from imcea.dask import replay_bag

    real_import = builtins.__import__

    def no_dask(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "dask" or name.startswith("dask."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    monkeypatch.setattr(importlib, "import_module", lambda name: no_dask(name))
    with pytest.raises(imcea.Error, match=r"install the extra imcea\[dask\]"):
        replay_bag(object())
