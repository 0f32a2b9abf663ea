"""Collect the decision table, the ``imcea_*.toml`` case files of this folder, with the
imcea pytest plugin.

Installed, ``imcea`` registers the plugin with pytest's ``pytest11`` entry point and this
hook steps aside; from a checkout that is not installed (or with plugin autoloading
disabled) it hands the files to the plugin itself.  It forwards the collection hook only:
``pytest_plugins`` would clash with the entry point.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import imcea.pytest_plugin as plugin


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect a case file here, unless the registered plugin does it already."""
    if parent.config.pluginmanager.is_registered(plugin):
        return None
    return plugin.pytest_collect_file(file_path=file_path, parent=parent)
