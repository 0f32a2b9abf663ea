"""Read an Exchange non-delivery report and say how to fix each failed recipient.

After a mailbox is migrated or re-created, replies to old messages and cached Outlook
entries bounce with an ``IMCEAEX`` address: the legacy Exchange DN they were sent to is
no longer anybody's, and the fix is an ``X500:`` proxy address on the new mailbox (KB
2807779).  :func:`read_bounce` reads the report whatever its shape (an RFC 3464
``multipart/report``, its human-readable part in text or HTML, a bounce forwarded as an
attachment, text pasted from a mail client, an Outlook ``.msg`` with ``imcea[msg]``) and
gives each failed recipient a :class:`Cause`, the proxy to add and, through
:func:`proxy_command`, the PowerShell command that adds it.

Copies of an address pasted from web pages and mail clients are checked before a proxy
is made of them (:func:`check_proxy`): what can be repaired with certainty (a Markdown
``\\`` before ``@``, an address wrapped over lines, the ``@domain`` left on) is repaired
with a warning, and anything else is refused with the reason.
"""

from __future__ import annotations

import binascii
import codecs
import email
import email.errors
import email.policy
import enum
import os
import quopri
import re
from collections.abc import Iterator
from email.message import Message
from html.parser import HTMLParser

import attrs

from .codec import Encapsulated, decode, find_all
from .errors import DecodeError, Error, shorten

__all__ = [
    "PLACEHOLDER",
    "Bounce",
    "BounceError",
    "Cause",
    "FailedRecipient",
    "ProxyCheck",
    "ProxyError",
    "Target",
    "check_proxy",
    "find_proxies",
    "powershell_quote",
    "proxy_command",
    "read_bounce",
    "read_bounce_file",
]


class BounceError(Error):
    """A bounce could not be read: not a mail message, a truncated MIME structure, ..."""


class ProxyError(Error):
    """A pasted address cannot be turned into an ``X500:`` proxy with certainty."""


# ---------------------------------------------------------------------------
# causes: one table


class Cause(enum.StrEnum):
    """Why a recipient bounced, as far as its address is concerned."""

    LEGACY_DN_NOT_FOUND = "legacy_dn_not_found"
    ENCAPSULATED_SMTP_REJECTED = "encapsulated_smtp_rejected"
    ENCAPSULATED_X500_REJECTED = "encapsulated_x500_rejected"
    ENCAPSULATED_INVALID_REJECTED = "encapsulated_invalid_rejected"
    ENCAPSULATED_OTHER = "encapsulated_other"
    NOT_ENCAPSULATED = "not_encapsulated"

    @property
    def explanation(self) -> str:
        """One sentence: what happened."""
        return _CAUSES[self].explanation

    @property
    def fix(self) -> str | None:
        """One sentence: what to do, with ``{inner}`` for the address carried; None: nothing."""
        return _CAUSES[self].fix


@attrs.frozen
class _Rule:
    """How Exchange reports one cause: address types, status codes, reason texts."""

    addrtypes: tuple[str, ...]
    statuses: tuple[str, ...]
    # texts of Exchange's transport reason table (case-insensitive), reason name first
    texts: tuple[str, ...]
    explanation: str
    fix: str | None


_CAUSES: dict[Cause, _Rule] = {
    Cause.LEGACY_DN_NOT_FOUND: _Rule(
        ("EX", "X500"),
        ("5.1.1", "5.1.11"),
        (
            "RESOLVER.ADR.ExRecipNotFound",
            "Recipient not found by Exchange Legacy encapsulated email address lookup",
        ),
        "The message was sent to a legacy Exchange DN (from a reply or a cached Outlook entry) "
        "that no mailbox has any more, typically after a migration or a re-created mailbox.",
        "Add the X500 proxy to the mailbox that should receive this mail.",
    ),
    Cause.ENCAPSULATED_SMTP_REJECTED: _Rule(
        ("SMTP", "MAILTO"),
        ("5.1.0",),
        (
            "RESOLVER.ADR.SmtpInSmtp",
            "encapsulated SMTP address inside an SMTP address",
        ),
        "Exchange refused an SMTP address encapsulated inside an SMTP address (IMCEASMTP-), "
        "which a stale contact or auto-complete entry produced.",
        "Send to {inner} instead, and remove the stale contact or auto-complete entry.",
    ),
    Cause.ENCAPSULATED_X500_REJECTED: _Rule(
        ("X500",),
        ("5.1.0",),
        (
            "RESOLVER.ADR.X500InSmtp",
            "encapsulated X500 address inside an SMTP address",
        ),
        "Exchange refused an X.500 address encapsulated inside an SMTP address (IMCEAX500-): "
        "the entry used holds an X.500 address where an SMTP address belongs.",
        "Send to the recipient's SMTP address, and fix or remove the entry holding {inner}.",
    ),
    Cause.ENCAPSULATED_INVALID_REJECTED: _Rule(
        ("INVALID",),
        ("5.1.0",),
        (
            "RESOLVER.ADR.InvalidInSmtp",
            "encapsulated INVALID address inside an SMTP address",
        ),
        "The entry used (IMCEAINVALID-) has no usable address: typically a contact "
        "without an e-mail address, or a name Outlook could not resolve.",
        "Give the entry {inner} a valid SMTP address, or remove it, and send again.",
    ),
    Cause.ENCAPSULATED_OTHER: _Rule(
        (),
        (),
        (),
        "The address is encapsulated, but the bounce gives a reason that is not about "
        "its encapsulation.",
        None,
    ),
    Cause.NOT_ENCAPSULATED: _Rule(
        (),
        (),
        (),
        "An ordinary bounce: the address is not an encapsulated one, so there is no proxy to add.",
        None,
    ),
}


def _cause(addrtype: str | None, status: str | None, diagnostic: str | None) -> Cause:
    """The cause for an address of *addrtype* (None: not encapsulated) and the report's words.

    A reason text or a status code of the table is enough (forwarded bounces often keep
    only one of them); with neither, an encapsulated address is taken at its type.
    """
    if addrtype is None:
        return Cause.NOT_ENCAPSULATED
    said = (diagnostic or "").casefold()
    for cause, rule in _CAUSES.items():
        if any(text.casefold() in said for text in rule.texts):
            return cause if addrtype in rule.addrtypes else Cause.ENCAPSULATED_OTHER
    by_type = [cause for cause, rule in _CAUSES.items() if addrtype in rule.addrtypes]
    for cause in by_type:
        if status in _CAUSES[cause].statuses:
            return cause
    if by_type and status is None and not said:
        return by_type[0]
    return Cause.ENCAPSULATED_OTHER


# ---------------------------------------------------------------------------
# values


@attrs.frozen
class FailedRecipient:
    """One failed recipient of a bounce, with its cause and, for a legacy DN, its proxy.

    ``address`` is the address as the report wrote it (line breaks of a wrapped address
    removed); ``value`` its decoded form when it is encapsulated; ``proxy`` the ``X500:``
    proxy for :attr:`Cause.LEGACY_DN_NOT_FOUND`, or None with ``problem`` saying why not;
    ``warnings`` name what was repaired in a damaged copy of the address.
    """

    address: str
    value: Encapsulated | None
    cause: Cause
    status: str | None = None
    diagnostic: str | None = None
    display_name: str | None = None
    proxy: str | None = None
    warnings: tuple[str, ...] = ()
    problem: str | None = None

    @property
    def explanation(self) -> str:
        """What happened, in one sentence."""
        return self.cause.explanation

    @property
    def fix(self) -> str | None:
        """What to do, in one sentence (None: nothing to do about the address)."""
        template = self.cause.fix
        if template is None:
            return None
        inner = self.value.address if self.value is not None else self.address
        return template.format(inner=inner)


@attrs.frozen
class Bounce:
    """What :func:`read_bounce` found: the failed recipients, in report order."""

    recipients: tuple[FailedRecipient, ...]
    subject: str | None = None
    # what was noticed while reading and worked around (an unknown charset, ...)
    notes: tuple[str, ...] = ()


@attrs.frozen
class ProxyCheck:
    """An address found or pasted, and the ``X500:`` proxy made of it.

    ``proxy`` is None when it cannot be made with certainty; ``problem`` then says why.
    ``warnings`` name each repair made to get the proxy.
    """

    text: str
    start: int
    end: int
    proxy: str | None
    warnings: tuple[str, ...] = ()
    problem: str | None = None


# ---------------------------------------------------------------------------
# reading damaged copies of an address

_ENCODED = re.compile(r"[A-Za-z0-9=_+\-]+")
_PREFIX = re.compile(r"(?<![A-Za-z0-9=_+\-\\])[Ii][Mm][Cc][Ee][Aa]([A-Za-z0-9]{1,9})-")
_WRAP = re.compile(r"[ \t]*\r?\n[ \t]*")
_BLANKS = re.compile(r"[ \t]+")
_LABEL = re.compile(r"[A-Za-z0-9-]+")
# blanks or a line break before a dot between domain labels: "keyman  .com", "keyman\n .com"
# (after a dot they could as well end a sentence)
_DOMAIN_GAP = re.compile(r"[ \t]*(?:\r?\n[ \t]*)?\.(?=[A-Za-z0-9])")
_GLUED = re.compile(r"[a-z0-9]([A-Z][A-Za-z]*)$")
_STRAY = "removed a stray '\\' before '{char}' (a Markdown escape, as in KB 2807779's example)"


@attrs.frozen
class _Hit:
    """An encapsulated address found in text, read leniently; value None: see problem."""

    start: int
    end: int
    addrtype: str
    value: Encapsulated | None
    warnings: tuple[str, ...] = ()
    problem: str | None = None

    def raw(self, text: str) -> str:
        return text[self.start : self.end]


def _shown(text: str) -> str:
    """*text* for a message: its blanks and line breaks taken out, quoted short."""
    return shorten("".join(text.split()))


def _read_at(text: str, start: int, *, alone: bool) -> _Hit:
    """Read the encapsulated address whose prefix starts at *start*, repairing copy damage.

    *alone*: the text is this one address (pasted), so that it may end without an
    ``@domain``; in running text an address without one has no certain end.
    """
    prefix = _PREFIX.match(text, start)
    if prefix is None:
        raise ProxyError(f"no IMCEA prefix at position {start}")
    addrtype = prefix.group(1).upper()
    pieces: list[str] = []
    warnings: list[str] = []
    pos = prefix.end()
    size = len(text)
    while True:
        run = _ENCODED.match(text, pos)
        if run is not None:
            pieces.append(run.group())
            pos = run.end()
        char = text[pos] if pos < size else ""
        if char == "\\" and text[pos + 1 : pos + 2] in ("@", "_"):
            warnings.append(_STRAY.format(char=text[pos + 1]))
            pos += 1
            continue
        wrap = _WRAP.match(text, pos) if char in " \t\r\n" else None
        if (
            wrap is not None
            and "\n" in wrap.group()
            and (_ENCODED.match(text, wrap.end()) or text[wrap.end() : wrap.end() + 1] == "@")
            and not _PREFIX.match(text, wrap.end())
        ):
            pos = wrap.end()  # an address wrapped over lines, as NDRs print it
            continue
        break
    encoded = "".join(pieces)
    if pos < size and text[pos] == "@":
        end, domain, more = _read_domain(text, pos + 1)
        warnings.extend(more)
    elif alone and not text[pos:].strip():
        end, domain = pos, ""
        warnings.append("no '@domain' after the address: read the DN to its end")
    else:
        return _Hit(start, pos, addrtype, None, tuple(warnings), _no_end(text, pos))
    try:
        value = decode(f"IMCEA{addrtype}-{encoded}@{domain or 'invalid'}")
    except DecodeError as exc:
        return _Hit(start, end, addrtype, None, tuple(warnings), str(exc))
    if not domain:
        value = Encapsulated(value.addrtype, value.address, "")
    return _Hit(start, end, addrtype, value, tuple(warnings))


def _no_end(text: str, pos: int) -> str:
    """Why the address stopping at *pos* cannot be read: a stray character, or no '@'."""
    line_end = text.find("\n", pos)
    rest = text[pos : line_end if line_end >= 0 else len(text)]
    at = rest.find("@")
    between = rest[1:at].lstrip(" \t") if at > 0 else ""
    # the address goes on after the stray character, up to an '@' on the same line
    if between and not any(c.isspace() for c in between):
        char = rest[0]
        if char in " \t":
            return (
                f"a blank at position {pos} inside the encoded address: an encoded address "
                "has none (a space is +20); join the lines if it was wrapped there"
            )
        return f"{char!r} at position {pos} cannot be part of an encoded address"
    return "no '@domain' after the address: cannot tell where it ends"


def _read_domain(text: str, pos: int) -> tuple[int, str, list[str]]:
    """The domain after the ``@`` at *pos* - 1: its end, the domain, and what was repaired."""
    warnings: list[str] = []
    wrap = _WRAP.match(text, pos)
    if wrap is not None and "\n" in wrap.group():
        pos = wrap.end()  # the line broke right after the '@'
    labels: list[str] = []
    gapped = False
    while True:
        label = _LABEL.match(text, pos)
        if label is None:
            break
        labels.append(label.group())
        pos = label.end()
        gap = _DOMAIN_GAP.match(text, pos)
        if gap is None:
            break
        gapped = gapped or gap.group() != "."
        pos = gap.end()
    if text[pos : pos + 1] == "[":
        close = text.find("]", pos)
        if close > 0:
            return close + 1, text[pos : close + 1], warnings
    domain = ".".join(labels)
    if gapped:
        warnings.append(f"joined the domain {domain!r}, wrapped over blanks in the copy")
    glued = _glued(domain)
    if glued is not None:
        warnings.append(glued)
    return pos, domain, warnings


def _glued(domain: str) -> str | None:
    """A warning when the domain's last label looks like a word glued on ("comRemote")."""
    _, dot, last = domain.rpartition(".")
    glued = _GLUED.search(last) if dot and len(last) <= 63 else None  # a DNS label's limit
    if glued is None:
        return None
    return (
        f"the domain {domain!r} may have text glued to it ({glued.group(1)!r}); "
        "the proxy does not depend on it"
    )


def _scan(text: str) -> list[_Hit]:
    """Every encapsulated address in *text*: :func:`find_all`'s, then damaged copies."""
    hits: list[_Hit] = []
    covered: list[tuple[int, int]] = []  # in order, not overlapping
    for found in find_all(text):
        hit = _Hit(found.start, found.end, found.value.addrtype, found.value)
        gap = _DOMAIN_GAP.match(text, found.end)
        if gap is not None and gap.group() != "." and found.value.domain[:1] != "[":
            # the domain went on after blanks ("keyman  .com"): read it whole
            end, domain, warnings = _read_domain(text, found.end - len(found.value.domain))
            value = Encapsulated(found.value.addrtype, found.value.address, domain)
            hit = _Hit(found.start, end, hit.addrtype, value, tuple(warnings))
        elif (glued := _glued(found.value.domain)) is not None:
            hit = attrs.evolve(hit, warnings=(glued,))
        hits.append(hit)
        covered.append((hit.start, hit.end))
    index = 0
    last_end = 0  # the end of the last damaged copy read
    for match in _PREFIX.finditer(text):
        start = match.start()
        while index < len(covered) and covered[index][1] <= start:
            index += 1
        if start < last_end or (index < len(covered) and covered[index][0] <= start):
            continue
        if not _ENCODED.match(text, match.end()) and text[match.end() : match.end() + 2] != "\\_":
            continue  # the bare prefix, as prose names it: "(IMCEASMTP-)"
        hit = _read_at(text, start, alone=False)
        hits.append(hit)
        last_end = max(hit.end, match.end())
    hits.sort(key=lambda h: h.start)
    return hits


def _proxy_of(hit: _Hit) -> tuple[str | None, str | None]:
    """The X500 proxy of a legacy-DN hit, or None and the reason."""
    if hit.value is None:
        return None, hit.problem
    if hit.value.addrtype not in ("EX", "X500"):
        return None, f"type {hit.value.addrtype!r} is not EX or X500: no X500 proxy address"
    dn = hit.value.address
    if not dn.startswith("/"):
        return None, f"{dn[:40]!r} is not a legacy Exchange DN (it must start with '/')"
    bad = re.search(r"[\x00-\x1f\x7f]", dn)
    if bad is not None:
        return None, f"the DN holds the control character {bad.group()!r}"
    return "X500:" + dn, None


def find_proxies(text: str) -> Iterator[ProxyCheck]:
    """The ``X500:`` proxy of every ``IMCEAEX-`` / ``IMCEAX500-`` address in free text.

    Finds what :func:`imcea.find_all` finds, and also the damaged copies it skips (a stray
    ``\\`` before ``@``, a domain wrapped over blanks); each repair is named in
    ``warnings``, and an address that cannot be read with certainty comes with its
    ``problem`` and no proxy.
    """
    if not isinstance(text, str):
        raise ProxyError(f"expected text, got {type(text).__name__}")
    for hit in _scan(text):
        if hit.addrtype not in ("EX", "X500"):
            continue
        proxy, problem = _proxy_of(hit)
        yield ProxyCheck(hit.raw(text), hit.start, hit.end, proxy, hit.warnings, problem)


_X500_FORM = re.compile(r"(?i:x500):")
_HOST = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_LEFT_ESCAPE = re.compile(r"\+[0-9A-Fa-f]{2}")


def check_proxy(address: str) -> ProxyCheck:
    """The ``X500:`` proxy of one pasted address, checked and repaired where certain.

    *address* is an ``IMCEAEX-`` address (as an NDR shows it, wrapped or not) or an
    ``X500:`` proxy made by hand.  Repairs (a Markdown ``\\`` before ``@``, the
    ``@domain`` left on a proxy, a wrapped line) are named in ``warnings``; anything not
    certain raises :class:`ProxyError` with the reason.
    """
    if not isinstance(address, str):
        raise ProxyError(f"expected an address string, got {type(address).__name__}")
    text = address.strip()
    for opener, closer in (("<", ">"), ('"', '"'), ("'", "'")):
        if len(text) >= 2 and text.startswith(opener) and text.endswith(closer):
            text = text[1:-1].strip()
    if text[:7].lower() == "mailto:":
        text = text[7:]
    if _X500_FORM.match(text):
        return _check_x500_form(address, text)
    prefix = _PREFIX.match(text)
    if prefix is None:
        raise ProxyError(f"{_shown(text)} is neither an IMCEAEX address nor an X500 proxy")
    hit = _read_at(text, 0, alone=True)
    rest = text[hit.end :].strip()
    if hit.value is not None and rest and rest not in ">.,;:)'\"":
        hit = attrs.evolve(
            hit, warnings=(*hit.warnings, f"ignored the text after the address: {_shown(rest)}")
        )
    proxy, problem = _proxy_of(hit)
    if proxy is None:
        raise ProxyError(f"{_shown(text)}: {problem}")
    return ProxyCheck(address, 0, len(address), proxy, hit.warnings)


def _check_x500_form(address: str, text: str) -> ProxyCheck:
    """:func:`check_proxy` for a proxy written as ``X500:/O=...``."""
    warnings: list[str] = []
    dn = text[5:]
    if "\n" in dn:
        raise ProxyError(
            "the proxy is broken over lines: a DN may hold spaces, so the break cannot be "
            "joined with certainty; pass the IMCEAEX address instead"
        )
    at = dn.rfind("@")
    if at >= 0:
        tail = dn[at + 1 :].strip()
        if _HOST.fullmatch(tail) and "/" not in tail and "=" not in tail:
            warnings.append(f"removed '@{tail}' left on after the DN (not part of the proxy)")
            dn = dn[:at]
            if dn.endswith("\\"):
                warnings.append(_STRAY.format(char="@"))
                dn = dn[:-1]
    if not dn.startswith("/"):
        raise ProxyError(f"{_shown(dn)} is not a legacy Exchange DN (it must start with '/')")
    left = _LEFT_ESCAPE.search(dn)
    if left is not None:
        raise ProxyError(
            f"{left.group()!r} at position {5 + left.start()} of the proxy looks like an IMCEA "
            "escape left unconverted; pass the IMCEAEX address instead"
        )
    bad = re.search(r"[\x00-\x1f\x7f\\]", dn)
    if bad is not None:
        raise ProxyError(f"{bad.group()!r} at position {5 + bad.start()} cannot be in a DN")
    return ProxyCheck(address, 0, len(address), "X500:" + dn, tuple(warnings))


# ---------------------------------------------------------------------------
# PowerShell


class Target(enum.StrEnum):
    """The kind of object that gets the proxy, which decides the cmdlet."""

    MAILBOX = "mailbox"
    MAILUSER = "mailuser"
    REMOTE_MAILBOX = "remote-mailbox"
    CONTACT = "contact"
    AD = "ad"


# target -> (cmdlet, parameter, hashtable key); Exchange cmdlets take the multivalued
# EmailAddresses as @{add=...}, Set-ADUser its -Add hashtable of attributes
_COMMANDS: dict[Target, tuple[str, str, str]] = {
    Target.MAILBOX: ("Set-Mailbox", "-EmailAddresses", "add"),
    Target.MAILUSER: ("Set-MailUser", "-EmailAddresses", "add"),
    Target.REMOTE_MAILBOX: ("Set-RemoteMailbox", "-EmailAddresses", "add"),
    Target.CONTACT: ("Set-MailContact", "-EmailAddresses", "add"),
    Target.AD: ("Set-ADUser", "-Add", "proxyAddresses"),
}

PLACEHOLDER = "<identity>"
# What PowerShell reads as a single quote: the ASCII one and U+2018..U+201B.  In a
# single-quoted string nothing else is special ($ and ` are literal), and a quote is
# written by doubling it.
_SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
_QUOTE_TABLE = {ord(q): q + q for q in _SINGLE_QUOTES}


def powershell_quote(value: str) -> str:
    """*value* as a PowerShell single-quoted string literal, whatever it holds."""
    if not isinstance(value, str):
        raise Error(f"expected a string to quote, got {type(value).__name__}")
    if "\x00" in value:
        raise Error("a NUL character cannot be passed to PowerShell")
    return "'" + value.translate(_QUOTE_TABLE) + "'"


def proxy_command(
    proxy: str, target: Target | str = Target.MAILBOX, identity: str | None = None
) -> str:
    """The PowerShell command that adds *proxy* to the object *identity* of kind *target*.

    Without *identity*, a placeholder that names no real object is filled in.
    """
    try:
        kind = Target(target)
    except ValueError:
        choices = ", ".join(t.value for t in Target)
        raise Error(f"target {target!r} is not one of {choices}") from None
    if not isinstance(proxy, str) or not proxy[:5].upper() == "X500:":
        raise Error(f"{proxy!r} is not an X500: proxy address")
    cmdlet, parameter, key = _COMMANDS[kind]
    who = powershell_quote(PLACEHOLDER if identity is None else identity)
    return f"{cmdlet} -Identity {who} {parameter} @{{{key}={powershell_quote(proxy)}}}"


# ---------------------------------------------------------------------------
# reading the message

_POLICY = email.policy.default
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_BINARY = {
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (or an Office document)",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x1f\x8b": "gzip data",
}
_TRUNCATED = (
    email.errors.StartBoundaryNotFoundDefect,
    email.errors.CloseBoundaryNotFoundDefect,
    email.errors.MultipartInvariantViolationDefect,
    email.errors.NoBoundaryInMultipartDefect,
)
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_DIAGNOSTIC = re.compile(r"(?:[245]\d\d[ -])?(?<![\d.])[245]\.\d{1,3}\.\d{1,3}(?![\d.])[^\n'#\"<]*")
_ORIGINAL_HEADERS = re.compile(r"^[ \t]*Original message headers:", re.IGNORECASE | re.MULTILINE)
_REASON_TEXTS = tuple(text for rule in _CAUSES.values() for text in rule.texts)


def read_bounce(data: bytes | str) -> Bounce:
    """The failed recipients of a non-delivery report, each with cause, status and proxy.

    *data* is a whole message (RFC 5322, as saved to a ``.eml`` file), a bounce pasted as
    plain text, or the bytes of an Outlook ``.msg`` file (with ``imcea[msg]``).  Raises
    :class:`BounceError` (an :class:`imcea.Error`) for input that is not a mail message
    or whose MIME structure is truncated; a message with no failed recipient gives an
    empty :attr:`Bounce.recipients`.
    """
    if isinstance(data, str):
        raw = data.encode("utf-8", "surrogateescape")
    elif isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
    else:
        raise BounceError(f"expected bytes or text, got {type(data).__name__}")
    if raw.startswith(_OLE_MAGIC):
        reader = _Reader()
        texts, reader.names, subject = _msg_texts(raw)
        reader.texts.extend(texts)
        return reader.finish(subject)
    _check_text(raw)
    try:
        return _Reader().read(raw)
    except Error:
        raise
    except Exception as exc:  # the email package's own errors on malformed input
        raise BounceError(f"malformed message: {type(exc).__name__}: {exc}") from None


def read_bounce_file(path: str | os.PathLike[str]) -> Bounce:
    """:func:`read_bounce` of a file; a ``.msg`` file must be an Outlook (OLE) file."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise BounceError(f"{name}: {exc.strerror or exc}") from None
    if name.lower().endswith(".msg") and not raw.startswith(_OLE_MAGIC):
        raise BounceError(
            f"{name}: not an Outlook .msg file (not an OLE compound file); "
            "save the bounce as .msg from Outlook, or as .eml"
        )
    try:
        return read_bounce(raw)
    except BounceError as exc:
        raise BounceError(f"{name}: {exc}") from None


def _check_text(raw: bytes) -> None:
    """Refuse data that is plainly not a mail message (binary files)."""
    for magic, kind in _BINARY.items():
        if raw.startswith(magic):
            raise BounceError(f"not a mail message: this is {kind}")
    nul = raw.find(b"\x00", 0, 8192)
    if nul >= 0:
        raise BounceError(f"not a mail message: binary data (a NUL byte at offset {nul})")
    if not raw.strip():
        raise BounceError("empty input: no message to read")


class _Text(HTMLParser):
    """The text of an HTML part, with line breaks where blocks end."""

    _BREAKS = frozenset(
        ("br", "p", "div", "tr", "td", "th", "li", "table", "h1", "h2", "h3", "h4", "pre")
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip += 1
        elif tag in self._BREAKS:
            self.pieces.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BREAKS:
            self.pieces.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.pieces.append(data)


def _html_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return "".join(parser.pieces)


@attrs.define
class _Entry:
    """A failed recipient being put together from the report's parts."""

    address: str
    addrtype: str | None
    value: Encapsulated | None
    warnings: list[str]
    problem: str | None
    status: str | None = None
    diagnostic: str | None = None
    display_name: str | None = None


class _Reader:
    """One reading of one message: the DSN's recipients, then those of the text parts."""

    def __init__(self) -> None:
        self.entries: dict[object, _Entry] = {}
        self.notes: list[str] = []
        self.texts: list[str] = []
        self.from_dsn = False  # a status part named the failed recipients
        self.names: dict[str, str] = {}  # address -> display name, from a .msg

    def read(self, raw: bytes) -> Bounce:
        message = email.message_from_bytes(raw, policy=_POLICY)
        if not message.keys() or (
            message.get("Content-Type") is None and message.get("MIME-Version") is None
        ):
            # text pasted from a mail client, perhaps under a few header-like lines
            self.texts.append(raw.decode("utf-8", "replace"))
            subject = None
        else:
            subject = _header(message, "Subject")
            self._walk(message, "message")
        return self.finish(subject)

    def finish(self, subject: str | None) -> Bounce:
        """The bounce: the text parts read after the status parts, whose words come first."""
        for text in self.texts:
            self._read_text(text)
        for entry in self.entries.values():
            entry.display_name = entry.display_name or self.names.get(entry.address.casefold())
        recipients = tuple(_finish(entry) for entry in self.entries.values())
        return Bounce(recipients, subject, tuple(self.notes))

    # -- MIME -------------------------------------------------------------

    def _walk(self, part: Message, where: str) -> None:
        kind = part.get_content_type()
        for defect in part.defects:
            if isinstance(defect, _TRUNCATED):
                raise BounceError(
                    f"truncated MIME structure: {where} ({kind}): "
                    f"{type(defect).__name__.removesuffix('Defect')}"
                )
        if kind == "multipart/report":
            self._report(part, where)
        elif part.is_multipart() and kind.startswith("multipart/"):
            for n, child in enumerate(_children(part), 1):
                self._walk(child, f"{where} part {n}")
        elif kind == "message/rfc822" or _named(part, ".eml"):
            for inner in _attached(part):
                self._walk(inner, f"{where} (forwarded)")
        elif kind == "application/vnd.ms-outlook" or _named(part, ".msg"):
            data = part.get_payload(decode=True)
            if isinstance(data, bytes) and data.startswith(_OLE_MAGIC):
                texts, names, _ = _msg_texts(data)
                self.texts.extend(texts)
                self.names.update(names)
        elif kind == "message/delivery-status":
            self._dsn(part)
        elif kind in ("text/plain", "text/html"):
            self.texts.append(self._decoded(part, where))

    def _report(self, part: Message, where: str) -> None:
        """An RFC 6522 report: the human-readable part and the status part, not the original."""
        children = _children(part)
        for n, child in enumerate(children, 1):
            kind = child.get_content_type()
            if n == 1 or kind == "message/delivery-status":
                self._walk(child, f"{where} part {n}")

    def _decoded(self, part: Message, where: str) -> str:
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        charset = part.get_content_charset() or "us-ascii"
        try:
            codecs.lookup(charset)
        except LookupError:
            self.notes.append(f"{where}: unknown charset {charset!r}, read as ASCII")
            charset = "ascii"
        try:
            text = data.decode(charset)
        except UnicodeDecodeError as exc:
            self.notes.append(
                f"{where}: the text is not valid {charset} (byte offset {exc.start}); "
                "undecodable bytes replaced"
            )
            text = data.decode(charset, "replace")
        if part.get_content_type() == "text/html":
            text = _html_text(text)
        return text

    def _dsn(self, part: Message) -> None:
        """The per-recipient fields of an RFC 3464 ``message/delivery-status`` part."""
        payload = part.get_payload()
        blocks: list[Message] = []
        if isinstance(payload, list):
            blocks = [b for b in payload if isinstance(b, Message)]
        else:
            body = part.get_payload(decode=True)
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else ""
            for chunk in re.split(r"\r?\n[ \t]*\r?\n", text):
                if chunk.strip():
                    blocks.append(email.message_from_string(chunk.strip() + "\n", policy=_POLICY))
        for block in blocks:
            final = _header(block, "Final-Recipient")
            if final is None:
                continue  # the per-message fields
            action = (_header(block, "Action") or "failed").strip().lower()
            if action != "failed":
                continue
            original = _header(block, "Original-Recipient")
            address = _address_field(final)
            if original is not None and not _PREFIX.match(address):
                candidate = _address_field(original)
                if _PREFIX.match(candidate):
                    address = candidate
            status_field = _header(block, "Status")
            diagnostic = _header(block, "Diagnostic-Code")
            if diagnostic is not None:
                diagnostic = " ".join(diagnostic.split())
                kind, sep, rest = diagnostic.partition(";")
                if sep and kind.strip().lower() in ("smtp", "x-unix", "x-local"):
                    diagnostic = rest.strip()
            status = _status(status_field) or _status(diagnostic)
            entry = self._entry(address)
            self.from_dsn = True
            entry.status = entry.status or status
            entry.diagnostic = entry.diagnostic or diagnostic
            entry.display_name = entry.display_name or _header(block, "X-Display-Name")

    def _entry(self, address: str) -> _Entry:
        """The entry for *address* (read leniently), made on first sight."""
        hit = None
        if _PREFIX.match(address):
            hits = _scan(address)
            hit = hits[0] if hits and hits[0].start == 0 else None
        if hit is None:
            key: object = address.casefold()
            entry = _Entry(address, None, None, [], None)
        else:
            entry = self._from_hit(hit, address)
            key = _key(hit, address)
        return self.entries.setdefault(key, entry)

    def _from_hit(self, hit: _Hit, text: str) -> _Entry:
        raw = "".join(hit.raw(text).split())
        problem = hit.problem
        return _Entry(raw, hit.addrtype, hit.value, list(hit.warnings), problem)

    # -- text -------------------------------------------------------------

    def _read_text(self, text: str) -> None:
        # the original message's headers that Exchange appends are not failed recipients
        tail = _ORIGINAL_HEADERS.search(text)
        if tail is not None:
            text = text[: tail.start()]
        hits = _scan(text)
        found: list[tuple[_Hit, str | None, str | None]] = []
        for n, hit in enumerate(hits):
            stop = hits[n + 1].start if n + 1 < len(hits) else len(text)
            window = "\n".join(text[hit.end : min(stop, hit.end + 600)].split("\n")[:6])
            found.append((hit, *_status_in(window)))
        # a report with one status in all: it applies to every address (pasted reports
        # often put it before the address)
        overall = {s for s in (_status(m.group()) for m in _DIAGNOSTIC.finditer(text)) if s}
        shared = _status_in(text) if len(overall) == 1 else (None, None)
        for hit, status, diagnostic in found:
            key = _key(hit, text)
            entry = self.entries.get(key)
            if entry is None:
                if self.from_dsn:
                    continue  # the status part names every failed recipient
                entry = self.entries[key] = self._from_hit(hit, text)
            elif entry.value is None and hit.value is not None:
                entry.value, entry.problem = hit.value, None
            for warning in hit.warnings:
                if warning not in entry.warnings:
                    entry.warnings.append(warning)
            entry.status = entry.status or status
            entry.diagnostic = entry.diagnostic or diagnostic
        for entry in self.entries.values():
            if entry.addrtype is not None:
                entry.status = entry.status or shared[0]
                entry.diagnostic = entry.diagnostic or shared[1]


def _key(hit: _Hit, text: str) -> object:
    if hit.value is not None:
        return (hit.value.addrtype, hit.value.address.casefold())
    return ("?", "".join(hit.raw(text).split()).casefold())


def _status(text: str | None) -> str | None:
    match = _STATUS.search(text or "")
    return None if match is None else match.group()


def _status_in(window: str) -> tuple[str | None, str | None]:
    """The enhanced status code and the diagnostic words in a stretch of report text."""
    match = _DIAGNOSTIC.search(window)
    if match is not None:
        diagnostic = " ".join(match.group().split()).rstrip(" .")
        return _status(diagnostic), diagnostic
    folded = window.casefold()
    for text in _REASON_TEXTS:
        at = folded.find(text.casefold())
        if at >= 0:
            start = window.rfind("\n", 0, at) + 1
            end = window.find("\n", at)
            line = window[start : end if end >= 0 else len(window)]
            return None, " ".join(line.split()).strip("#' ")
    return None, None


def _finish(entry: _Entry) -> FailedRecipient:
    cause = _cause(entry.addrtype, entry.status, entry.diagnostic)
    proxy = None
    problem = entry.problem
    if cause is Cause.LEGACY_DN_NOT_FOUND:
        hit = _Hit(0, 0, entry.addrtype or "", entry.value, (), entry.problem)
        proxy, problem = _proxy_of(hit)
    return FailedRecipient(
        address=entry.address,
        value=entry.value,
        cause=cause,
        status=entry.status,
        diagnostic=entry.diagnostic,
        display_name=entry.display_name,
        proxy=proxy,
        warnings=tuple(entry.warnings),
        problem=problem,
    )


def _named(part: Message, suffix: str) -> bool:
    """Whether *part* is an attachment whose file name ends with *suffix*."""
    name = part.get_filename()
    return isinstance(name, str) and name.lower().endswith(suffix)


def _attached(part: Message) -> list[Message]:
    """The message attached in *part*: ``message/rfc822`` (also when base64-encoded, which
    RFC 2046 forbids and mail clients do) or a file named ``.eml``."""
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if part.get_content_type() == "message/rfc822":
        children = _children(part)
        if encoding not in ("base64", "quoted-printable"):
            return children
        encoded = children[0].get_payload() if children else ""
        text = encoded if isinstance(encoded, str) else ""
        if encoding == "base64":
            try:
                data = binascii.a2b_base64(text.encode("ascii", "ignore"))
            except binascii.Error as exc:
                raise BounceError(f"the attached message's base64 is damaged: {exc}") from None
        else:
            data = quopri.decodestring(text.encode("ascii", "ignore"))
    else:
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
    return [email.message_from_bytes(data, policy=_POLICY)] if data.strip() else []


def _children(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    if isinstance(payload, Message):
        return [payload]
    return []


def _header(part: Message, name: str) -> str | None:
    value = part.get(name)
    if value is None:
        return None
    return " ".join(str(value).split()) or None


def _address_field(value: str) -> str:
    """The address of an RFC 3464 ``Final-Recipient`` / ``Original-Recipient`` field."""
    kind, sep, rest = value.partition(";")
    address = rest if sep else kind
    address = address.strip().strip("<>").strip()
    if _PREFIX.match(address):
        address = "".join(address.split())  # a folded header line
    return address


# ---------------------------------------------------------------------------
# Outlook .msg (the optional extra imcea[msg])


def _msg_texts(raw: bytes) -> tuple[list[str], dict[str, str], str | None]:
    """An Outlook ``.msg`` file's text, HTML and recipient table: the texts to scan, the
    display names by address, and the subject."""
    try:
        import extract_msg
    except ImportError:
        raise BounceError(
            "reading Outlook .msg files needs the optional extra: pip install 'imcea[msg]'"
        ) from None
    try:
        msg = extract_msg.openMsg(raw, strict=False)
    except Exception as exc:  # extract-msg's many errors for a damaged file
        raise BounceError(f"cannot read the .msg file: {type(exc).__name__}: {exc}") from None
    try:
        texts: list[str] = []
        subject = getattr(msg, "subject", None)
        body = getattr(msg, "body", None)
        if isinstance(body, str):
            texts.append(body)
        html = getattr(msg, "htmlBody", None)
        if isinstance(html, bytes):
            texts.append(_html_text(html.decode("utf-8", "replace")))
        names: dict[str, str] = {}
        for recipient in getattr(msg, "recipients", None) or ():
            name = getattr(recipient, "name", None)
            for field in ("email", "smtpAddress"):
                value = getattr(recipient, field, None)
                if isinstance(value, str) and value:
                    texts.append(value)
                    if isinstance(name, str) and name:
                        names[value.casefold()] = name
    except Exception as exc:
        raise BounceError(f"cannot read the .msg file: {type(exc).__name__}: {exc}") from None
    finally:
        close = getattr(msg, "close", None)
        if callable(close):
            close()
    return texts, names, subject if isinstance(subject, str) else None
