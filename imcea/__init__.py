"""imcea: Exchange IMCEA-encapsulated addresses and the Exchange 5.5 IMS relay decision.

The codec (:func:`encode`, :func:`decode`, :func:`find_all`, :func:`x500`) reads and
writes encapsulated addresses (MS-OXCMAIL 2.1.3.1.8); :func:`decide` tells what an
Exchange 5.5 Internet Mail Service does with an SMTP envelope, before and after the
fix of KB Q237927; :func:`check` finds the configuration traps of its settings.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .codec import Encapsulated, Found, decode, encode, find_all, is_encapsulated, x500
    from .decision import Action, Decider, Decision, Envelope, Reason, Verdict, decide
    from .errors import DecodeError, EncodeError, Error, SettingsError
    from .records import Record, RecordError
    from .replay import Change, Replayed, Summary, replay
    from .settings import Release, Restrictions, Route, RouteAction, Settings, load_settings
    from .traps import Finding, Severity, check

# Public name -> the module that defines it.  Modules are imported on first use, so
# that ``import imcea`` (and the command line) start fast and pay only for what they use.
_LOCATIONS = {
    **dict.fromkeys(
        ("Encapsulated", "Found", "decode", "encode", "find_all", "is_encapsulated", "x500"),
        "codec",
    ),
    **dict.fromkeys(
        ("Action", "Decider", "Decision", "Envelope", "Reason", "Verdict", "decide"), "decision"
    ),
    **dict.fromkeys(("DecodeError", "EncodeError", "Error", "SettingsError"), "errors"),
    **dict.fromkeys(("Record", "RecordError"), "records"),
    **dict.fromkeys(("Change", "Replayed", "Summary", "replay"), "replay"),
    **dict.fromkeys(
        ("Release", "Restrictions", "Route", "RouteAction", "Settings", "load_settings"),
        "settings",
    ),
    **dict.fromkeys(("Finding", "Severity", "check"), "traps"),
}


__all__ = [
    "Action",
    "Change",
    "Decider",
    "Decision",
    "DecodeError",
    "Encapsulated",
    "EncodeError",
    "Envelope",
    "Error",
    "Finding",
    "Found",
    "Reason",
    "Record",
    "RecordError",
    "Release",
    "Replayed",
    "Restrictions",
    "Route",
    "RouteAction",
    "Settings",
    "SettingsError",
    "Severity",
    "Summary",
    "Verdict",
    "check",
    "decide",
    "decode",
    "encode",
    "find_all",
    "is_encapsulated",
    "load_settings",
    "replay",
    "x500",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module 'imcea' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


class _Package(types.ModuleType):
    """The ``imcea`` package: a public name that is also the name of the submodule
    defining it (``imcea.replay``, the function, in ``imcea/replay.py``) stays the public
    object when the import system binds the submodule to the package."""

    def __setattr__(self, name: str, value: Any) -> None:
        if _LOCATIONS.get(name) == name and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
