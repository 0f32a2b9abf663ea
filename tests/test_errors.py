"""The one exception hierarchy, error messages that quote input briefly, and the names
the package offers."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import imcea
from imcea.domains import DomainError, normalise_domain
from imcea.errors import SHORT, shorten


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("abc", "'abc'"),
        (7, "7"),
        (None, "None"),
        (b"10.0.0.1", "b'10.0.0.1'"),
        ("x" * SHORT, repr("x" * SHORT)),
        ("a" * 40 + "b" * 40 + "c" * 40, f"'{'a' * 40}'...'{'c' * 40}' (120 characters)"),
        (list(range(100)), None),
    ],
)
def test_shorten_quotes_a_value_briefly(value: object, shown: str | None) -> None:
    text = shorten(value)
    if shown is not None:
        assert text == shown
    assert len(text) <= 2 * SHORT + 20
    if text != repr(value):  # shortened: says how long the whole is
        assert f"({len(value) if isinstance(value, str) else len(repr(value))} characters" in text


def test_shorten_never_builds_the_repr_of_a_huge_string() -> None:
    text = shorten("\x00" * 10_000_000)
    assert text.endswith("(10000000 characters)") and len(text) < 400


def test_a_bad_domain_is_an_imcea_error() -> None:
    assert issubclass(DomainError, imcea.Error)
    with pytest.raises(imcea.Error, match="is not a valid host name"):
        normalise_domain("exa mple.com")
    with pytest.raises(DomainError) as caught:
        normalise_domain("x" * 5000 + " y")
    assert len(str(caught.value)) < 150 and "(5002 characters)" in str(caught.value)


def test_every_public_name_is_there_and_listed_once() -> None:
    assert len(imcea.__all__) == len(set(imcea.__all__))
    for name in imcea.__all__:
        assert getattr(imcea, name) is not None, name
    assert dir(imcea) == sorted(dir(imcea))
    assert set(dir(imcea)) == {*imcea.__all__, "__version__"}
    for hidden in ("Any", "TYPE_CHECKING", "importlib", "annotations"):
        assert hidden not in dir(imcea)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        imcea.nothing  # noqa: B018


def test_type_checkers_see_the_same_names() -> None:
    """The TYPE_CHECKING imports of imcea/__init__.py re-export exactly the public API,
    each from the module the table names."""
    tree = ast.parse(Path(imcea.__file__).read_text(encoding="utf-8"))
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    imported = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom)
        for alias in node.names:
            assert alias.asname == alias.name  # "X as X": an explicit re-export
            imported[alias.name] = node.module
    assert set(imported) == set(imcea.__all__)
    for name, module in imported.items():
        value = getattr(imcea, name)
        assert getattr(importlib.import_module(f"imcea.{module}"), name) is value, name


def test_importing_imcea_imports_no_module_of_it() -> None:
    code = "import imcea, sys; print(sorted(m for m in sys.modules if m.startswith('imcea')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['imcea']"
