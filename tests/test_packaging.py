"""What the package ships and declares: the license, the extras, and what CI installs and runs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_license_text_is_shipped() -> None:
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 the imcea authors" in text


def test_metadata_for_pip_show() -> None:
    assert PROJECT["authors"] and PROJECT["keywords"]
    classifiers = set(PROJECT["classifiers"])
    for version in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert {
        "Development Status :: 4 - Beta",
        "Intended Audience :: System Administrators",
        "Intended Audience :: Developers",
        "Topic :: Communications :: Email",
        "Typing :: Typed",
    } <= classifiers
    assert {"Documentation", "Source"} <= set(PROJECT["urls"])


def test_extras() -> None:
    extras = {name: names(reqs) for name, reqs in PROJECT["optional-dependencies"].items()}
    assert extras["hypothesis"] == {"hypothesis"}  # light: imcea.strategies alone
    assert extras["aiosmtpd"] == {"aiosmtpd"}
    assert {"pytest", "hypothesis", "aiosmtpd"} <= extras["test"]
    assert not {"ruff", "mypy"} & extras["test"]
    assert extras["dev"] == {"ruff", "mypy"}
    assert all("==" in r for r in PROJECT["optional-dependencies"]["dev"])  # pinned
    assert {"sphinx", "furo", "myst-parser"} <= extras["docs"]


def test_ci_installs_and_runs_everything() -> None:
    assert "set -euo pipefail" in CI
    assert "python -m pip install '.[test,dev,docs]' && python -m pytest" in CI
    for check in ("ruff check .", "ruff format --check .", "mypy --strict imcea"):
        assert check in CI
    builds = [line for line in CI if line.startswith("python -m sphinx -W ")]
    assert [re.search(r"-b (\w+)", line)[1] for line in builds] == ["html", "doctest"]  # type: ignore[index]
