"""Sphinx configuration of the imcea documentation site (furo theme, Markdown pages)."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # document the checkout's package, installed or not

project = "imcea"
author = "the imcea authors"
copyright = "the imcea authors"
try:
    release = metadata.version("imcea")
except metadata.PackageNotFoundError:  # a checkout that is not installed
    release = "unknown"
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]

myst_heading_anchors = 3
# Pygments' console lexer reads an output line starting with "#" (a main.cf comment) as a
# root prompt, fails on a quote in it, and falls back to plain text: nothing to fix there
suppress_warnings = ["myst.header", "misc.highlighting_failure"]

html_theme = "furo"
html_title = "imcea"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "undoc-members": False}

# the {doctest} blocks of every page start with the package imported, and run where the
# pages' files are: in the checkout's examples/
doctest_global_setup = f"""
import os
import imcea
_cwd = os.getcwd()
os.chdir({str(ROOT / "examples")!r})
"""
doctest_global_cleanup = "os.chdir(_cwd)"
