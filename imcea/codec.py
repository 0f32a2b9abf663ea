"""IMCEA encapsulation: encode, decode, scan text, and the X500 proxy helper.

An encapsulated address is ``IMCEA`` + *type* + ``-`` + *encoded address* + ``@`` +
*domain* (MS-OXCMAIL 2.1.3.1.8 and 2.2.3.1.2).  The encoded address keeps ASCII
letters, digits, ``-`` and ``=``, writes ``/`` as ``_`` and every other character as
``+HH``: one Latin-1 byte, or, after the marker ``UTF8-``, the UTF-8 bytes of an
address with characters above U+00FF.

Both directions are table driven: :func:`encode` is one ``str.translate``;
:func:`decode` reads a plain address with one regular-expression match and turns its
``+HH`` escapes into characters with the ``unicode_escape`` codec, and anything else with
one ``str.split`` on ``+`` and a dictionary of the escapes.  The cost never grows with a
Python loop per character.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator

import attrs

from .domains import DomainError, to_ascii
from .errors import DecodeError, EncodeError

__all__ = [
    "Encapsulated",
    "Found",
    "decode",
    "encode",
    "find_all",
    "is_encapsulated",
    "x500",
]

PREFIX = "IMCEA"
UTF8_MARKER = "UTF8-"

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-=")

# code point (0..255) -> its encoded form; applied to Latin-1 text or to UTF-8 bytes
# seen as Latin-1 characters.
_ENCODE_TABLE: dict[int, str] = {
    i: (chr(i) if chr(i) in _SAFE else "_" if i == 0x2F else f"+{i:02X}") for i in range(256)
}

# every two-digit hex escape, in any case, -> the character of that byte
_HEX = "0123456789ABCDEFabcdef"
_UNESCAPE: dict[str, str] = {a + b: chr(int(a + b, 16)) for a in _HEX for b in _HEX}
# The documented "unicode_escape" codec reads "\xHH" (either case) as U+00HH, in C.
_DECODE_ESCAPES = codecs.getdecoder("unicode_escape")

_TYPE = re.compile(r"[A-Za-z0-9]{1,9}")
_BAD_CHAR = re.compile(r"[^A-Za-z0-9=_+\-]")
_BAD_ESCAPE = re.compile(r"\+(?![0-9A-Fa-f]{2})")
# A plain address: ASCII prefix, type, '-', the strict alphabet without the UTF-8 marker,
# one '@' and an ASCII domain, nothing to strip.  decode() reads it with this one match;
# anything else goes the long way, which also words the errors.
_PLAIN = re.compile(
    r"[Ii][Mm][Cc][Ee][Aa]([A-Za-z0-9]{1,9})-(?!UTF8-)([A-Za-z0-9=_+\-]+)"
    r"@([A-Za-z0-9.:*\[\]-]+)"
)
_NON_ASCII_RUN = re.compile(r"([^\x00-\x7f]+)")
# A line break and the blanks around it.  The look-behind starts a match only at the
# first blank of a run and the possessive loops never give back, so a long run of
# blanks that is not followed by a line break is scanned once, not once per blank.
_LINE_BREAK = re.compile(r"(?<![ \t])[ \t]*+(?:\r?\n[ \t]*+)++")


def _fold(value: object) -> object:
    """A comparison key that makes an :class:`Encapsulated` equal to its 3-tuple."""
    return tuple(value) if isinstance(value, Encapsulated) else value


@attrs.frozen(eq=False)
class Encapsulated:
    """A decoded encapsulated address.

    ``str()`` gives the canonical encoding (upper-case type and hex, the domain as
    written).  The value unpacks and compares like the tuple
    ``(addrtype, address, domain)``.
    """

    addrtype: str
    address: str
    domain: str

    def __str__(self) -> str:
        return f"{PREFIX}{self.addrtype}-{_encode_address(self.address)}@{self.domain}"

    def __iter__(self) -> Iterator[str]:
        return iter((self.addrtype, self.address, self.domain))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Encapsulated | tuple):
            return tuple(self) == _fold(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.addrtype, self.address, self.domain))


@attrs.frozen
class Found:
    """One encapsulated address found in free text by :func:`find_all`.

    ``text`` is the raw slice ``text[start:end]``, line breaks included; ``value``
    is what it decodes to.
    """

    start: int
    end: int
    text: str
    value: Encapsulated


# ---------------------------------------------------------------------------
# encoding


def _encode_address(address: str) -> str:
    """The encoded form of *address* (no validation beyond what encoding needs)."""
    if address.isascii():
        encoded = address.translate(_ENCODE_TABLE)
    else:
        try:
            address.encode("latin-1")
        except UnicodeEncodeError:
            try:
                raw = address.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise EncodeError(
                    f"{address[exc.start]!r} at position {exc.start} cannot be written as UTF-8"
                ) from None
            return UTF8_MARKER + raw.decode("latin-1").translate(_ENCODE_TABLE)
        encoded = address.translate(_ENCODE_TABLE)
    if encoded.startswith(UTF8_MARKER):
        # [choice] keep a literal leading "UTF8-" from reading back as the marker
        encoded = "UTF8+2D" + encoded[len(UTF8_MARKER) :]
    return encoded


def _encode_domain(domain: str) -> str:
    if domain == "*":
        return domain  # a wildcard address space (KB Q189492)
    if domain.startswith("[") and domain.endswith("]"):
        _check_literal(domain)
        return domain
    try:
        return to_ascii(domain)
    except DomainError as exc:
        raise EncodeError(f"domain {exc}") from None


def _check_literal(literal: str) -> None:
    import ipaddress

    inner = literal[1:-1]
    try:
        if inner[:5].lower() == "ipv6:":
            ipaddress.IPv6Address(inner[5:])
        else:
            ipaddress.IPv4Address(inner)
    except ValueError:
        raise EncodeError(f"domain {literal!r} is not an address literal") from None


def encode(addrtype: str, address: str, domain: str) -> str:
    """Encapsulate *address* of type *addrtype* under *domain*.

    >>> encode("smtp", "user@example.com", "ims.contoso.com")
    'IMCEASMTP-user+40example+2Ecom@ims.contoso.com'

    The type is 1-9 ASCII letters or digits and is written in upper case; the domain
    is a host name (IDN names are converted to A-labels), an address literal such as
    ``[192.0.2.1]``, or ``*``.  Raises :class:`EncodeError` on anything else.
    """
    if not isinstance(addrtype, str) or not _TYPE.fullmatch(addrtype):
        raise EncodeError(f"type {addrtype!r} is not 1-9 ASCII letters or digits")
    if not isinstance(address, str) or not address:
        raise EncodeError(f"address {address!r} must be a non-empty string")
    if not isinstance(domain, str) or not domain:
        raise EncodeError(f"domain {domain!r} must be a non-empty string")
    return f"{PREFIX}{addrtype.upper()}-{_encode_address(address)}@{_encode_domain(domain)}"


# ---------------------------------------------------------------------------
# decoding


def _unescape(encoded: str, offset: int, strict: bool) -> str:
    """Undo ``_`` and ``+HH`` in *encoded*; each escaped byte becomes one Latin-1 character.

    *offset* is the position of *encoded* in the caller's input, for error messages.
    """
    text = encoded.replace("_", "/")
    if "+" not in text:
        return text
    if text.isascii() and "\\" not in text:
        # the common case in one C call: with no other backslash about, "+HH" written as
        # "\xHH" is the only escape the codec sees, and a '+' that does not start a
        # +HH escape makes it fail
        try:
            return _DECODE_ESCAPES(text.replace("+", "\\x").encode("ascii"))[0]
        except UnicodeDecodeError:
            pass  # the loop below names the bad '+' or, leniently, keeps it
    pieces = text.split("+")
    out = [pieces[0]]
    append = out.append
    unescape = _UNESCAPE.get
    for piece in pieces[1:]:
        char = unescape(piece[:2])
        if char is not None:
            append(char)
            append(piece[2:])
        elif strict:
            match = _BAD_ESCAPE.search(encoded)
            pos = match.start() if match else 0
            raise DecodeError(
                f"{encoded[pos : pos + 3]!r} at position {offset + pos} is not a +HH escape"
            )
        else:
            append("+")
            append(piece)
    return "".join(out)


def _from_utf8(latin: str, offset: int) -> str:
    """The text whose UTF-8 bytes are the code points of *latin* (each below U+0100).

    *offset* is the position of the UTF-8 encoded part in the caller's input.
    """
    try:
        return latin.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(
            f"the UTF-8 encoded address at position {offset} is not valid UTF-8 "
            f"(byte {exc.object[exc.start]:#04x})"
        ) from None


def _strip(address: str) -> tuple[str, int]:
    """Remove surrounding white space, then ``<...>`` or quotes; return the rest and its offset."""
    stripped = address.lstrip()
    offset = len(address) - len(stripped)
    stripped = stripped.rstrip()
    if len(stripped) >= 2 and (stripped[0], stripped[-1]) in (("<", ">"), ('"', '"'), ("'", "'")):
        inner = stripped[1:-1]
        core = inner.lstrip()
        offset += 1 + len(inner) - len(core)
        stripped = core.rstrip()
    return stripped, offset


def decode(address: str, /, *, strict: bool = True) -> Encapsulated:
    """Decode an IMCEA-encapsulated address.

    >>> decode("IMCEASMTP-user+40example+2Ecom@ims.contoso.com")
    Encapsulated(addrtype='SMTP', address='user@example.com', domain='ims.contoso.com')

    Strict mode (the default) accepts only ``A-Z a-z 0-9 - = _ +`` in the encoded part
    and well-formed ``+HH`` escapes; ``strict=False`` reads like Exchange's tolerant
    reader and keeps anything else literally.  Raises :class:`DecodeError`, naming the
    offending character and its 0-based position in *address*.
    """
    if not isinstance(address, str):
        raise DecodeError(f"expected an address string, got {type(address).__name__}")
    match = _PLAIN.fullmatch(address)
    if match is None:
        return _decode(address, strict)
    addrtype, encoded, domain = match.groups()
    decoded = encoded.replace("_", "/")
    if "+" in decoded:
        # the fast path of _unescape(): _PLAIN has checked for ASCII and no backslash
        try:
            decoded = _DECODE_ESCAPES(decoded.replace("+", "\\x").encode("ascii"))[0]
        except UnicodeDecodeError:  # a '+' that does not start a +HH escape
            decoded = _unescape(encoded, match.start(2), strict)
    return Encapsulated(addrtype.upper(), decoded, domain)


def _decode(address: str, strict: bool) -> Encapsulated:
    """:func:`decode`, step by step: strip, split, check each part, then unescape."""
    text, offset = _strip(address)
    at = text.rfind("@")
    if at < 0:
        raise DecodeError(f"{text[:40]!r} has no '@domain' part")
    domain = text[at + 1 :]
    if not domain:
        raise DecodeError(f"empty domain after the '@' at position {offset + at}")
    head = text[:5]
    if head != PREFIX and (head.upper() != PREFIX or not head.isascii()):
        # ASCII only: "\u0131" (dotless i) upper-cases to "I" but is not the prefix
        raise DecodeError(f"{head!r} at position {offset} is not the IMCEA prefix")
    dash = text.find("-", 5, at)
    addrtype = text[5:dash] if dash >= 0 else text[5:at]
    if dash < 0 or not _TYPE.fullmatch(addrtype):
        shown = addrtype if len(addrtype) <= 20 else addrtype[:20] + "..."
        raise DecodeError(
            f"type {shown!r} at position {offset + 5} is not 1-9 ASCII letters or digits "
            "followed by '-'"
        )
    start = dash + 1
    encoded = text[start:at]
    if strict:
        bad = _BAD_CHAR.search(encoded)
        if bad is not None:
            raise DecodeError(
                f"{bad.group()!r} at position {offset + start + bad.start()} is not allowed "
                "in an encoded address"
            )
    if encoded.startswith(UTF8_MARKER):
        body = encoded[len(UTF8_MARKER) :]
        body_offset = offset + start + len(UTF8_MARKER)
        if body.isascii():
            decoded = _from_utf8(_unescape(body, body_offset, strict), body_offset)
        else:
            # lenient mode only (strict mode has rejected non-ASCII): a raw character
            # stands for itself, the escapes and ASCII between such characters are UTF-8
            parts = _NON_ASCII_RUN.split(body)
            parts[::2] = [
                _from_utf8(_unescape(part, body_offset, False), body_offset) for part in parts[::2]
            ]
            decoded = "".join(parts)
    else:
        decoded = _unescape(encoded, offset + start, strict)
    if not decoded:
        raise DecodeError(f"empty address after the type at position {offset + start}")
    return Encapsulated(addrtype.upper(), decoded, domain)


def is_encapsulated(address: str) -> bool:
    """Whether *address* decodes in strict mode (the prefix may be in any case)."""
    try:
        decode(address)
    except DecodeError:
        return False
    return True


# ---------------------------------------------------------------------------
# free text and X500


def _join_lines(text: str) -> str:
    """Join an address wrapped over lines: drop each line break and the blanks around it."""
    return _LINE_BREAK.sub("", text) if "\n" in text else text


def x500(address: str) -> str:
    """The ``X500:`` proxy address for an ``IMCEAEX-`` (or ``IMCEAX500-``) address.

    >>> x500("IMCEAEX-_O=ORG_OU=SITE_CN=RECIPIENTS_CN=JDOE@contoso.com")
    'X500:/O=ORG/OU=SITE/CN=RECIPIENTS/CN=JDOE'

    Add it to the migrated mailbox to fix the "IMCEAEX" non-delivery report.  The
    address may be wrapped over lines as NDRs print it.  Raises :class:`DecodeError`
    for any other type or for a value that is not a legacy Exchange DN.
    """
    if not isinstance(address, str):
        raise DecodeError(f"expected an address string, got {type(address).__name__}")
    value = decode(_join_lines(address))
    if value.addrtype not in ("EX", "X500"):
        raise DecodeError(f"type {value.addrtype!r} is not EX or X500: no X500 proxy address")
    if not value.address.startswith("/"):
        raise DecodeError(
            f"{value.address[:40]!r} is not a legacy Exchange DN (it must start with '/')"
        )
    return "X500:" + value.address


_CHARS = r"A-Za-z0-9=_+\-"
_PREFIX_AT = r"[Ii][Mm][Cc][Ee][Aa][A-Za-z0-9]{1,9}-"
# A candidate starts at the beginning of a token and runs over line breaks as long as
# no '@' has been seen and the next line does not start a new candidate.  Possessive
# quantifiers keep every match linear; the look-behind makes a failed start cheap.
_CANDIDATE = re.compile(
    rf"(?<![{_CHARS}]){_PREFIX_AT}[{_CHARS}]*+"
    rf"(?:[ \t]*+\r?\n[ \t]*+(?!{_PREFIX_AT})[{_CHARS}]++)*+"
    r"@(?:\[[^\[\]\s@<>]{1,200}\]|\*|[\w-]++(?:\.[\w-]++)*+)"
)


def find_all(text: str) -> Iterator[Found]:
    """Every encapsulated address in free text (an NDR, a log, a header dump).

    The prefix may be in any case; an address wrapped over lines is found whole.
    Each candidate is decoded in strict mode and skipped if it does not decode.
    """
    if not isinstance(text, str):
        raise DecodeError(f"expected text, got {type(text).__name__}")
    for match in _CANDIDATE.finditer(text):
        raw = match.group()
        try:
            value = decode(_join_lines(raw))
        except DecodeError:
            continue
        yield Found(match.start(), match.end(), raw, value)
