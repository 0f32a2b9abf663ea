"""The library's TOML files (settings, case files, the relay battery), read one way.

Whatever goes wrong while reading one (the file is missing, not UTF-8, not TOML) becomes
one message that says so; each caller wraps it in its own :class:`imcea.Error`, naming
the file as its readers expect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import Error

__all__ = ["load_toml"]


def load_toml(read: Callable[[], bytes], what: str, fail: Callable[[str], Error]) -> dict[str, Any]:
    """The TOML document that *read* returns the bytes of; *what* names the file in
    the messages (``"settings file"``), *fail* makes the error to raise from one."""
    import tomllib  # only where a file is read: the command line starts without it

    try:
        return tomllib.loads(read().decode("utf-8"))
    except OSError as exc:
        raise fail(f"cannot read the {what}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise fail(f"the {what} is not valid UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise fail(f"not valid TOML: {exc}") from None
