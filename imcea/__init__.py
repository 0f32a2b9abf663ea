"""imcea: Exchange IMCEA-encapsulated addresses and the Exchange 5.5 IMS relay decision.

The codec (:func:`encode`, :func:`decode`, :func:`find_all`, :func:`x500`) reads and
writes encapsulated addresses (MS-OXCMAIL 2.1.3.1.8); :func:`decide` tells what an
Exchange 5.5 Internet Mail Service does with an SMTP envelope, before and after the
fix of KB Q237927; :func:`check` finds the configuration traps of its settings.
"""

from __future__ import annotations

from .codec import Encapsulated, Found, decode, encode, find_all, is_encapsulated, x500
from .decision import Action, Decision, Envelope, Reason, Verdict, decide
from .errors import DecodeError, EncodeError, Error, SettingsError
from .settings import Release, Restrictions, Route, RouteAction, Settings, load_settings
from .traps import Finding, Severity, check

__all__ = [
    "Action",
    "Decision",
    "DecodeError",
    "Encapsulated",
    "EncodeError",
    "Envelope",
    "Error",
    "Finding",
    "Found",
    "Reason",
    "Release",
    "Restrictions",
    "Route",
    "RouteAction",
    "Settings",
    "SettingsError",
    "Severity",
    "Verdict",
    "check",
    "decide",
    "decode",
    "encode",
    "find_all",
    "is_encapsulated",
    "load_settings",
    "x500",
]

__version__ = "0.1.0"
