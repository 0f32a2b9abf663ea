"""imcea: Exchange IMCEA-encapsulated addresses and the Exchange 5.5 IMS relay decision.

The codec (:func:`encode`, :func:`decode`, :func:`find_all`, :func:`x500`) reads and
writes encapsulated addresses (MS-OXCMAIL 2.1.3.1.8); the decision side tells what an
Exchange 5.5 Internet Mail Service does with an SMTP envelope (KB Q237927).
"""

from __future__ import annotations

from .codec import Encapsulated, Found, decode, encode, find_all, is_encapsulated, x500
from .errors import DecodeError, EncodeError, Error, SettingsError

__all__ = [
    "DecodeError",
    "EncodeError",
    "Encapsulated",
    "Error",
    "Found",
    "SettingsError",
    "decode",
    "encode",
    "find_all",
    "is_encapsulated",
    "x500",
]

__version__ = "0.1.0"
