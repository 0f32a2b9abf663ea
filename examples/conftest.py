"""Collect the ``imcea_*.toml`` case files of this folder with the imcea pytest plugin.

Installed, ``imcea`` registers its plugin with pytest's ``pytest11`` entry point, and
this hook steps aside; run from a checkout that is not installed (or with plugin
autoloading disabled), it hands this folder's files to the plugin itself.  It does not
register the plugin (``pytest_plugins`` would clash with the entry point, and is refused
in a conftest below the rootdir): it only forwards the collection hook.
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
