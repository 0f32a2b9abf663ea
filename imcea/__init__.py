"""imcea: Exchange IMCEA-encapsulated addresses and the Exchange 5.5 IMS relay decision.

The codec (:func:`encode`, :func:`decode`, :func:`find_all`, :func:`x500`) reads and
writes encapsulated addresses (MS-OXCMAIL 2.1.3.1.8); :func:`decide` tells what an
Exchange 5.5 Internet Mail Service does with an SMTP envelope, before and after the
fix of KB Q237927 (a :class:`Decider` does the same for many envelopes, faster);
:func:`check` finds the configuration traps of its settings.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for type checkers (``X as X``: re-exported), the names of _PUBLIC below
    # isort: off
    from .codec import (
        Encapsulated as Encapsulated,
        Found as Found,
        decode as decode,
        encode as encode,
        find_all as find_all,
        is_encapsulated as is_encapsulated,
        x500 as x500,
    )
    from .decider import Decider as Decider
    from .decision import (
        Decision as Decision,
        Envelope as Envelope,
        Verdict as Verdict,
        decide as decide,
    )
    from .errors import (
        DecodeError as DecodeError,
        EncodeError as EncodeError,
        Error as Error,
        SettingsError as SettingsError,
    )
    from .reasons import REASONS as REASONS, Action as Action, Reason as Reason
    from .records import Record as Record, RecordError as RecordError
    from .replay import (
        Change as Change,
        Replayed as Replayed,
        Summary as Summary,
        replay as replay,
    )
    from .settings import (
        Release as Release,
        Restrictions as Restrictions,
        Route as Route,
        RouteAction as RouteAction,
        Settings as Settings,
        load_settings as load_settings,
    )
    from .traps import Finding as Finding, Severity as Severity, check as check
    # isort: on

#: The public API: each module and the names it defines.  Modules are imported on first
#: use, so that ``import imcea`` (and the command line) start fast and pay only for what
#: they use.
_PUBLIC = {
    "codec": ("Encapsulated", "Found", "decode", "encode", "find_all", "is_encapsulated", "x500"),
    "decider": ("Decider",),
    "decision": ("Decision", "Envelope", "Verdict", "decide"),
    "errors": ("DecodeError", "EncodeError", "Error", "SettingsError"),
    "reasons": ("REASONS", "Action", "Reason"),
    "records": ("Record", "RecordError"),
    "replay": ("Change", "Replayed", "Summary", "replay"),
    "settings": ("Release", "Restrictions", "Route", "RouteAction", "Settings", "load_settings"),
    "traps": ("Finding", "Severity", "check"),
}
_MODULE_OF = {name: module for module, names in _PUBLIC.items() for name in names}

__all__ = sorted(_MODULE_OF)

__version__ = "0.1.0"


#: Public submodules with APIs of their own, imported on first use as ``imcea.NAME``.
_SUBMODULES = frozenset({"bounces", "dask", "postfix", "sources", "strategies"})


def __getattr__(name: str) -> object:
    from importlib import import_module

    module = _MODULE_OF.get(name)
    if module is None:
        if name in _SUBMODULES:
            return import_module(f".{name}", __name__)
        raise AttributeError(f"module 'imcea' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return [*__all__, "__version__"]


class _Package(ModuleType):
    """The ``imcea`` package, whose function :func:`replay` shares its name with the
    submodule that defines it (``imcea/replay.py``): when the import system binds the
    submodule to the package, the public function stays in its place.  (So ``import
    imcea.replay as m`` gives the function; use ``from imcea.replay import ...``.)"""

    def __setattr__(self, name: str, value: object) -> None:
        if _MODULE_OF.get(name) == name and isinstance(value, ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
