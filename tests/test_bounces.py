"""Tests of imcea.bounces and ``imcea ndr``: the sample bounces, the proxy checks, the quoting.

The samples in tests/data/bounces are written after RFC 3464 / RFC 6522 and Exchange's NDR
layout; the expected DNs below are written out by hand, not computed by the encoder.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import imcea
from imcea import bounces
from imcea.bounces import Cause, Target

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "bounces"

EXO = (
    "/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients"
    "/cn=8700893173b143b09154a79f4d32e10d-AccountingM"
)
ONPREM = "/O=CONTOSO/OU=FIRST ADMINISTRATIVE GROUP/CN=RECIPIENTS/CN=SMITH, JOHN_OLD"
FORWARDED = (
    "/o=Contoso/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients"
    "/cn=3b0e5a47c1d24b8f9e6a1d2c7f8b9a0e-pat.lee"
)
PASTED = (
    "/O=NORTHWIND/OU=EXCHANGE ADMINISTRATIVE GROUP (FYDIBOHF23SPDLT)/CN=RECIPIENTS/CN=M.OCONNOR"
)
FINANCE = (
    "/O=CONTOSO/OU=EXCHANGE ADMINISTRATIVE GROUP (FYDIBOHF23SPDLT)/CN=RECIPIENTS/CN=FINANCE_AP"
)
ONEIL = (
    "/o=Contoso/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients"
    "/cn=d41e2c0b9a8f4e7d6c5b4a3f2e1d0c9b-j.o'neil"
)
RECEPTION = (
    "/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients"
    "/cn=5f0c9e2a71b84d3c9a6e8b1d2c3f4a5b-Reception"
)
# KB 2807779's own example, the proxy it gives
KB = (
    "/O=MMS/OU=EXCHANGE ADMINISTRATIVE GROUP (FYDIBOHF23SPDLT)/CN=RECIPIENTS"
    "/CN=User6ed4e168-addd-4b03-95f5-b9c9a421957358d"
)
KEYMAN = "/O=KEYMAN/OU=EXCHANGE ADMINISTRATIVE GROUP (FYDIBOHF23SPDLT)/CN=RECIPIENTS/CN=R.DAVIES"

L = Cause.LEGACY_DN_NOT_FOUND

# file -> every failed recipient, in order: (cause, status, display name, DN or carried
# address, a word that a warning must hold or None for no warning)
SAMPLES: dict[str, list[tuple[Cause, str, str | None, str, str | None]]] = {
    "exo-5.1.11.eml": [(L, "5.1.11", "Accounting Mailbox", EXO, None)],
    "onprem-5.1.1.eml": [(L, "5.1.1", "Smith, John", ONPREM, None)],
    "smtp-in-smtp-5.1.0.eml": [
        (Cause.ENCAPSULATED_SMTP_REJECTED, "5.1.0", None, "pat.jones@fabrikam.com", None)
    ],
    "x500-in-smtp.eml": [
        (
            Cause.ENCAPSULATED_X500_REJECTED,
            "5.1.0",
            "Lee, Pat (Fabrikam)",
            "/O=FABRIKAM/OU=EXCHANGE ADMINISTRATIVE GROUP (FYDIBOHF23SPDLT)/CN=RECIPIENTS/CN=LEE",
            None,
        )
    ],
    "invalid-in-smtp.eml": [
        (Cause.ENCAPSULATED_INVALID_REJECTED, "5.1.0", "Pat Jones", "Pat Jones", None)
    ],
    "forwarded.eml": [(L, "5.1.1", "Pat Lee", FORWARDED, None)],
    "pasted.txt": [(L, "5.1.1", None, PASTED, None)],
    "several-recipients.eml": [
        (L, "5.1.1", "Finance AP", FINANCE, None),
        (L, "5.1.1", "Jo O'Neil", ONEIL, None),
        (Cause.NOT_ENCAPSULATED, "5.1.1", None, "no.such.person@fabrikam.example", None),
    ],
    "html-only.eml": [(L, "5.1.11", None, RECEPTION, None)],
    "stray-backslash.txt": [(L, "5.1.1", None, KB, "stray '\\'")],
    "glued-domain.txt": [(L, "5.1.1", None, KEYMAN, "glued")],
    "delayed.eml": [],
}


def test_every_sample_is_in_the_table() -> None:
    on_disk = {p.name for p in DATA.iterdir() if p.suffix in (".eml", ".txt")}
    assert on_disk == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample(name: str) -> None:
    bounce = bounces.read_bounce((DATA / name).read_bytes())
    expected = SAMPLES[name]
    assert len(bounce.recipients) == len(expected), bounce.recipients
    for got, (cause, status, display, inner, warning) in zip(
        bounce.recipients, expected, strict=True
    ):
        assert got.cause is cause, got
        assert got.status == status
        assert got.display_name == display
        assert got.explanation == cause.explanation and got.explanation.endswith(".")
        if cause is Cause.NOT_ENCAPSULATED:
            assert got.value is None and got.address == inner
            assert got.proxy is None and got.fix is None
        else:
            assert got.value is not None and got.value.address == inner
            assert "\n" not in got.address
            assert got.address.upper().startswith("IMCEA")
        if cause is L:
            assert got.proxy == "X500:" + inner
            assert got.problem is None
            assert got.diagnostic is not None and "ExRecipNotFound" in got.diagnostic
        else:
            assert got.proxy is None
        if cause in (
            Cause.ENCAPSULATED_SMTP_REJECTED,
            Cause.ENCAPSULATED_INVALID_REJECTED,
            Cause.ENCAPSULATED_X500_REJECTED,
        ):
            assert got.fix is not None and inner in got.fix
        if warning is None:
            assert got.warnings == ()
        else:
            assert any(warning in w for w in got.warnings), got.warnings


def test_the_example_is_the_exchange_online_sample() -> None:
    example = bounces.read_bounce_file(ROOT / "examples" / "bounce.eml")
    assert example == bounces.read_bounce_file(DATA / "exo-5.1.11.eml")
    assert example.subject == "Undeliverable: Q2 invoices"


def test_read_bounce_takes_text_too() -> None:
    text = (DATA / "pasted.txt").read_text(encoding="utf-8")
    assert bounces.read_bounce(text) == bounces.read_bounce(text.encode("utf-8"))


def test_returned_original_is_not_read() -> None:
    """The on-premises sample returns the original message, whose Cc: is another
    IMCEAEX address: it was delivered, so it is not a failed recipient."""
    raw = (DATA / "onprem-5.1.1.eml").read_bytes()
    assert b"LEE+2C+20PAT" in raw
    assert [r.proxy for r in bounces.read_bounce(raw).recipients] == ["X500:" + ONPREM]


def _forward(attachment: bytes, headers: str) -> bytes:
    """A user's message with *attachment* (already encoded as *headers* say) attached."""
    return (
        b"From: robin.meyer@contoso.com\r\nTo: helpdesk@contoso.com\r\n"
        b"Subject: FW: bounce\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="fw"\r\n\r\n'
        b"--fw\r\nContent-Type: text/plain\r\n\r\nSee the attachment.\r\n"
        + b"--fw\r\n" + headers.encode() + b"\r\n\r\n" + attachment + b"\r\n--fw--\r\n"
    )  # fmt: skip


@pytest.mark.parametrize(
    "headers",
    [
        # RFC 2046 forbids base64 here; mail clients do it all the same
        "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64",
        'Content-Type: application/octet-stream; name="bounce.eml"\r\n'
        'Content-Disposition: attachment; filename="bounce.eml"\r\n'
        "Content-Transfer-Encoding: base64",
    ],
)
def test_forwarded_as_an_encoded_attachment(headers: str) -> None:
    import base64

    inner = base64.encodebytes((DATA / "onprem-5.1.1.eml").read_bytes())
    bounce = bounces.read_bounce(_forward(inner, headers))
    assert [(r.proxy, r.display_name) for r in bounce.recipients] == [
        ("X500:" + ONPREM, "Smith, John")
    ]


def test_forwarded_msg_attachment() -> None:
    pytest.importorskip("extract_msg", reason="extract-msg (imcea[msg]) is not installed")
    import base64

    inner = base64.encodebytes((DATA / "exo-5.1.11.msg").read_bytes())
    headers = (
        'Content-Type: application/vnd.ms-outlook; name="Undeliverable.msg"\r\n'
        "Content-Transfer-Encoding: base64"
    )
    (r,) = bounces.read_bounce(_forward(inner, headers)).recipients
    assert (r.proxy, r.display_name) == ("X500:" + EXO, "Accounting Mailbox")


def test_original_headers_of_a_pasted_report_are_not_read() -> None:
    """Exchange appends the original's headers to the text; its Cc: was delivered."""
    failed = imcea.encode("EX", FINANCE, "contoso.com")
    copied = imcea.encode("EX", "/O=CONTOSO/CN=RECIPIENTS/CN=PAT", "contoso.com")
    text = (
        f"Delivery has failed to these recipients or groups:\n\n{failed}\n"
        "Remote Server returned '550 5.1.1 RESOLVER.ADR.ExRecipNotFound; not found'\n\n"
        f"Original message headers:\n\nTo: <{failed}>\nCC: <{copied}>\n"
    )
    assert [r.proxy for r in bounces.read_bounce(text).recipients] == ["X500:" + FINANCE]


HOSTILE = {
    "many addresses": "IMCEAEX-_O=ORG_CN=JDOE@contoso.com\n" * 30000,
    "many damaged copies": "IMCEAEX-_O=ORG_CN=JDOE\\@contoso.com " * 30000,
    "no end": "IMCEAEX-a%" + "b" * 1_000_000,
    "a glued domain": "IMCEAEX-_O=ORG_CN=J@x." + "aB" * 500_000 + "1",
    "bare prefixes": "IMCEAEX- " * 100_000,
    "wrapped lines": "IMCEAEX-a" + "\nb" * 300_000,
    "blanks": "IMCEAEX-a" + " " * 1_000_000 + "x",
    "status codes": "5.1.1 " * 200_000,
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=list(HOSTILE))
def test_hostile_megabyte_in_linear_time(text: str) -> None:
    """About a megabyte of hostile text is read in well under the time a quadratic
    scan would take (seconds squared); the bound is loose for a shared machine."""
    import time

    start = time.perf_counter()
    bounces.read_bounce(text)
    list(bounces.find_proxies(text))
    assert time.perf_counter() - start < 5.0


def test_status_by_code_or_by_text() -> None:
    """A forwarded bounce may keep only the code, or only Exchange's words."""
    address = imcea.encode("EX", FINANCE, "contoso.com")
    for tail in (
        "#550 5.1.1 ##",
        "RESOLVER.ADR.ExRecipNotFound; not found",
        "Recipient not found by Exchange Legacy encapsulated email address lookup",
        "",  # an IMCEAEX address alone in a bounce
    ):
        (r,) = bounces.read_bounce(f"Undeliverable\n\n{address}\n{tail}\n").recipients
        assert r.cause is L, tail
        assert r.proxy == "X500:" + FINANCE
    smtp = "IMCEASMTP-a+40b+2Eexample@contoso.com"
    (r,) = bounces.read_bounce(f"{smtp}\nRESOLVER.ADR.SmtpInSmtp\n").recipients
    assert r.cause is Cause.ENCAPSULATED_SMTP_REJECTED and r.fix is not None
    assert "a@b.example" in r.fix
    (r,) = bounces.read_bounce(f"{address}\n#552 5.2.2 mailbox full ##\n").recipients
    assert r.cause is Cause.ENCAPSULATED_OTHER and r.proxy is None


def test_every_cause_explains_itself() -> None:
    for cause in Cause:
        assert cause.explanation.count(". ") == 0 and cause.explanation.endswith(".")


# ---------------------------------------------------------------------------
# the proxy checks


@pytest.mark.parametrize(
    ("pasted", "dn", "warning"),
    [
        # KB 2807779's example as its page shows it
        (
            "IMCEAEX-_O=MMS_OU=EXCHANGE+20ADMINISTRATIVE+20GROUP+20+28FYDIBOHF23SPDLT+29"
            "_CN=RECIPIENTS_CN=User6ed4e168-addd-4b03-95f5-b9c9a421957358d\\@mgd.domain.com",
            KB,
            "stray",
        ),
        # Markdown escaped the underscores too
        ("IMCEAEX-\\_O=ORG\\_CN=JDOE@contoso.com", "/O=ORG/CN=JDOE", "stray"),
        # a hand-made proxy with the @domain left on
        (
            "X500:/O=ORG/OU=SITE/CN=RECIPIENTS/CN=JDOE@mgd.domain.com",
            "/O=ORG/OU=SITE/CN=RECIPIENTS/CN=JDOE",
            "left on",
        ),
        # a domain wrapped over blanks
        ("IMCEAEX-_O=ORG_CN=JDOE@keyman  .com", "/O=ORG/CN=JDOE", "blanks"),
        # text glued after the address
        ("IMCEAEX-_O=ORG_CN=JDOE@contoso.com#550 5.1.1 not found", "/O=ORG/CN=JDOE", "ignored"),
        # wrapped right before and right after the '@'
        ("IMCEAEX-_O=ORG_CN=JDOE\n@contoso.com", "/O=ORG/CN=JDOE", None),
        ("IMCEAEX-_O=ORG_CN=JDOE@\ncontoso.com", "/O=ORG/CN=JDOE", None),
        # the domain already removed
        ("IMCEAEX-_O=ORG_CN=J+2CDOE", "/O=ORG/CN=J,DOE", "no '@domain'"),
        ("<IMCEAEX-_O=ORG_CN=JDOE@contoso.com>", "/O=ORG/CN=JDOE", None),
        ("X500:/O=ORG/CN=JDOE", "/O=ORG/CN=JDOE", None),
    ],
)
def test_check_proxy_repairs(pasted: str, dn: str, warning: str | None) -> None:
    checked = bounces.check_proxy(pasted)
    assert checked.proxy == "X500:" + dn
    if warning is None:
        assert checked.warnings == ()
    else:
        assert any(warning in w for w in checked.warnings), checked.warnings


@pytest.mark.parametrize(
    ("pasted", "reason"),
    [
        ("IMCEAEX-_O=ORG_CN=JOHN DOE@contoso.com", "blank"),
        ("IMCEAEX-_O=ORG_CN=J%DOE@contoso.com", "'%'"),
        ("IMCEAEX-_O=ORG_CN=J\\DOE@contoso.com", "'\\\\'"),
        ("IMCEAEX-_O=ORG_CN=J+4GDOE@contoso.com", "+4G"),
        ("IMCEAEX-_O=ORG_CN=JDOE and more words", "no '@domain'"),
        ("IMCEASMTP-a+40b+2Ecom@contoso.com", "not EX or X500"),
        ("IMCEAEX-JDOE@contoso.com", "must start with '/'"),
        ("X500:/O=ORG/OU=EXCHANGE+20ADMINISTRATIVE+20GROUP/CN=JDOE", "left unconverted"),
        ("X500:/O=ORG/OU=EXCHANGE ADMINISTRATIVE\nGROUP/CN=JDOE", "broken over lines"),
        ("jdoe@contoso.com", "neither"),
    ],
)
def test_check_proxy_refuses(pasted: str, reason: str) -> None:
    with pytest.raises(bounces.ProxyError) as info:
        bounces.check_proxy(pasted)
    assert reason in str(info.value)
    assert isinstance(info.value, imcea.Error)


def test_find_proxies_repairs_and_refuses_in_text() -> None:
    text = (DATA / "stray-backslash.txt").read_text(encoding="utf-8") + (
        "\nIMCEAEX-_O=ORG_CN=J+4GDOE@contoso.com\n(IMCEASMTP-) IMCEASMTP-a+40b@c.example\n"
    )
    found = list(bounces.find_proxies(text))
    assert [f.proxy for f in found] == ["X500:" + KB, None]
    assert "stray" in found[0].warnings[0]
    assert found[1].problem is not None and "+4G" in found[1].problem


# ---------------------------------------------------------------------------
# properties

# legacy DNs: what Exchange writes (o=, ou=, cn= with any printable text in the names)
_NAME = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/"), min_size=1
)
_DNS = st.builds(
    lambda org, ou, names: f"/o={org}/ou={ou}" + "".join(f"/cn={n}" for n in names),
    _NAME,
    _NAME,
    st.lists(_NAME, min_size=1, max_size=3),
)


def _ndr(address: str, width: int | None, shape: str) -> str:
    if width is not None:
        head, tail = address[:9], address[9:]
        address = head + "\n".join(tail[i : i + width] for i in range(0, len(tail), width))
    text = (
        "Delivery has failed to these recipients or groups:\n\n"
        f"{address}\n#550 5.1.1 RESOLVER.ADR.ExRecipNotFound; not found ##\n"
    )
    if shape == "text":
        return text
    return (
        "From: postmaster@contoso.com\nSubject: Undeliverable\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        f"--b\nContent-Type: text/plain; charset=utf-8\n\n{text}\n"
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns;x.example\n\n"
        f"Final-Recipient: rfc822;{address if width is None else 'nobody@x.example'}\n"
        "Action: failed\nStatus: 5.1.1\n\n--b--\n"
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    dn=_DNS,
    width=st.none() | st.integers(min_value=8, max_value=76),
    shape=st.sampled_from(["text", "mime"]),
)
def test_any_legacy_dn_comes_back_as_the_proxy(dn: str, width: int | None, shape: str) -> None:
    address = imcea.encode("EX", dn, "contoso.com")
    if width is not None:
        # a line may not start with something that reads as a new encapsulated address
        lines = address[9:]
        assume(not any(lines[i : i + 5].upper() == "IMCEA" for i in range(0, len(lines), width)))
        shape = "text"  # a status field holds the address on one line
    bounce = bounces.read_bounce(_ndr(address, width, shape))
    proxies = [r.proxy for r in bounce.recipients if r.proxy is not None]
    assert proxies == ["X500:" + dn]


SAMPLE_BYTES = [p.read_bytes() for p in sorted(DATA.iterdir()) if p.suffix != ".py"]


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=2000)
    | st.text(max_size=2000).map(lambda t: t.encode("utf-8", "surrogatepass"))
    | st.tuples(
        st.sampled_from(SAMPLE_BYTES),
        st.integers(min_value=0, max_value=20000),
        st.integers(min_value=0, max_value=20000),
        st.binary(max_size=40),
    ).map(lambda t: t[0][: t[1] % (len(t[0]) + 1)] + t[3] + t[0][t[2] % (len(t[0]) + 1) :])
)
def test_read_bounce_raises_only_imcea_errors(data: bytes) -> None:
    try:
        bounce = bounces.read_bounce(data)
    except imcea.Error as exc:
        assert str(exc) and "\n" not in str(exc).strip()
        return
    for recipient in bounce.recipients:
        assert isinstance(recipient.cause, Cause)
        assert recipient.proxy is None or recipient.proxy.startswith("X500:/")


@given(st.text(max_size=200))
def test_find_proxies_and_check_proxy_raise_only_imcea_errors(text: str) -> None:
    for found in bounces.find_proxies(text):
        assert (found.proxy is None) != (found.problem is None)
    try:
        checked = bounces.check_proxy(text)
    except imcea.Error:
        return
    assert checked.proxy is not None and checked.proxy.startswith("X500:/")


# ---------------------------------------------------------------------------
# PowerShell quoting

# PowerShell reads these as single quotes (its tokenizer's IsSingleQuote); inside a
# single-quoted string nothing else is special, and a quote is written twice.
SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
NASTY = [
    "'",
    '"',
    "$",
    "`",
    "$(Remove-Item C:\\)",
    "`$x",
    "\u2019",
    "\u2018\u201a\u201b",
    "\u201c\u201d",
]


def _single_quoted(text: str, pos: int) -> tuple[str, int]:
    """Read the PowerShell single-quoted string at *pos*: its value and where it ends."""
    assert text[pos] in SINGLE_QUOTES, (text, pos)
    out = []
    i = pos + 1
    while True:
        char = text[i]  # an IndexError here: the string is never closed
        if char in SINGLE_QUOTES:
            if i + 1 < len(text) and text[i + 1] in SINGLE_QUOTES:
                out.append(text[i + 1])
                i += 2
                continue
            return "".join(out), i + 1
        out.append(char)
        i += 1


def _parse_command(command: str) -> tuple[str, str, str, str, str]:
    """Split a generated command by PowerShell's rules; every value must be a literal."""
    cmdlet, rest = command.split(" -Identity ", 1)
    identity, end = _single_quoted(rest, 0)
    parameter, _, rest = rest[end:].lstrip().partition(" @{")
    key, _, rest = rest.partition("=")
    value, end = _single_quoted(rest, 0)
    assert rest[end:] == "}", rest[end:]
    return cmdlet, identity, parameter, key, value


def _pwsh_values(command: str) -> list[str]:
    """The constant values of the command's arguments, as PowerShell's own parser sees them."""
    script = (
        "$errs = $null; $toks = $null;"
        "$ast = [System.Management.Automation.Language.Parser]::ParseInput("
        "$env:IMCEA_COMMAND, [ref]$toks, [ref]$errs);"
        "if ($errs.Count) { exit 3 };"
        "$cmd = $ast.EndBlock.Statements[0].PipelineElements[0];"
        "$vals = @($cmd.CommandElements[2].Value);"
        "foreach ($kv in $cmd.CommandElements[4].KeyValuePairs) {"
        " $vals += $kv.Item1.Value; $vals += $kv.Item2.PipelineElements[0].Expression.Value };"
        "ConvertTo-Json -Compress -InputObject $vals"
    )
    result = subprocess.run(
        ["pwsh", "-NoProfile", "-NonInteractive", "-Command", script],
        env={**os.environ, "IMCEA_COMMAND": command},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    values: list[str] = json.loads(result.stdout)
    return values


@pytest.mark.parametrize("target", list(Target))
def test_commands_per_target(target: Target) -> None:
    command = bounces.proxy_command("X500:" + ONEIL, target, "jo.oneil@contoso.com")
    cmdlet, identity, parameter, key, value = _parse_command(command)
    assert (
        cmdlet
        == {
            Target.MAILBOX: "Set-Mailbox",
            Target.MAILUSER: "Set-MailUser",
            Target.REMOTE_MAILBOX: "Set-RemoteMailbox",
            Target.CONTACT: "Set-MailContact",
            Target.AD: "Set-ADUser",
        }[target]
    )
    assert (parameter, key) == (
        ("-Add", "proxyAddresses") if target is Target.AD else ("-EmailAddresses", "add")
    )
    assert identity == "jo.oneil@contoso.com"
    assert value == "X500:" + ONEIL


def test_command_placeholder_and_bad_target() -> None:
    _, identity, *_ = _parse_command(bounces.proxy_command("X500:/O=ORG/CN=JDOE"))
    assert identity == bounces.PLACEHOLDER
    with pytest.raises(imcea.Error, match="not one of"):
        bounces.proxy_command("X500:/O=ORG/CN=JDOE", "mailboxes")
    with pytest.raises(imcea.Error, match="not an X500"):
        bounces.proxy_command("SMTP:jdoe@contoso.com")


_PS_TEXT = st.text(
    st.sampled_from([*SINGLE_QUOTES, '"', "$", "`", "(", ")", "{", "}", ";", "a", " ", "\u201c"])
    | st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
)


@settings(max_examples=200, deadline=None)
@given(dn_tail=_PS_TEXT, identity=_PS_TEXT)
def test_quoting_keeps_every_value_literal(dn_tail: str, identity: str) -> None:
    proxy = "X500:/O=ORG/CN=" + dn_tail
    command = bounces.proxy_command(proxy, Target.MAILBOX, identity)
    _, got_identity, _, _, got_proxy = _parse_command(command)
    assert (got_identity, got_proxy) == (identity, proxy)


@pytest.mark.parametrize("nasty", NASTY)
def test_quoting_of_powershell_specials(nasty: str) -> None:
    proxy = f"X500:/O=ORG/CN=O{nasty}BRIEN"
    command = bounces.proxy_command(proxy, Target.AD, f"pat{nasty}")
    _, identity, _, _, value = _parse_command(command)
    assert (identity, value) == (f"pat{nasty}", proxy)
    if shutil.which("pwsh"):
        assert _pwsh_values(command) == [f"pat{nasty}", "proxyAddresses", proxy]


@pytest.mark.skipif(shutil.which("pwsh") is None, reason="pwsh (PowerShell) is not on PATH")
@pytest.mark.parametrize("target", list(Target))
def test_pwsh_parses_the_commands(target: Target) -> None:
    command = bounces.proxy_command("X500:" + ONEIL, target, "O'Neil, Jo $`\u2019")
    values = _pwsh_values(command)
    assert values[0] == "O'Neil, Jo $`\u2019" and values[-1] == "X500:" + ONEIL


# ---------------------------------------------------------------------------
# Outlook .msg (imcea[msg])


def test_msg_file_read_with_extract_msg() -> None:
    pytest.importorskip("extract_msg", reason="extract-msg (imcea[msg]) is not installed")
    bounce = bounces.read_bounce_file(DATA / "exo-5.1.11.msg")
    assert bounce.subject == "Undeliverable: Q2 invoices"
    (r,) = bounce.recipients
    assert (r.cause, r.status, r.proxy) == (L, "5.1.11", "X500:" + EXO)
    assert r.display_name == "Accounting Mailbox"


def test_msg_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "extract_msg", None)  # import fails
    with pytest.raises(bounces.BounceError, match=r"imcea\[msg\]"):
        bounces.read_bounce_file(DATA / "exo-5.1.11.msg")


def test_msg_that_is_not_ole(tmp_path: Path) -> None:
    fake = tmp_path / "bounce.msg"
    shutil.copy(DATA / "exo-5.1.11.eml", fake)
    with pytest.raises(bounces.BounceError, match="not an OLE compound file") as info:
        bounces.read_bounce_file(fake)
    assert str(fake) in str(info.value)


# ---------------------------------------------------------------------------
# bad input


def test_bad_input() -> None:
    raw = (DATA / "exo-5.1.11.eml").read_bytes()
    with pytest.raises(bounces.BounceError, match="truncated MIME"):
        bounces.read_bounce(raw[: len(raw) * 2 // 3])
    with pytest.raises(bounces.BounceError, match="PNG"):
        bounces.read_bounce(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(bounces.BounceError, match="NUL byte at offset 3"):
        bounces.read_bounce(b"abc\x00def")
    with pytest.raises(bounces.BounceError, match="empty"):
        bounces.read_bounce(b"\n \n")
    with pytest.raises(bounces.BounceError, match="expected bytes"):
        bounces.read_bounce(42)  # type: ignore[arg-type]
    assert bounces.read_bounce(b"Just a note, no bounce here.\n").recipients == ()


def test_bad_charset_is_read_with_a_note() -> None:
    raw = (DATA / "smtp-in-smtp-5.1.0.eml").read_bytes()
    raw = raw.replace(b'charset="iso-8859-1"', b'charset="x-no-such-charset"')
    bounce = bounces.read_bounce(raw)
    assert [r.cause for r in bounce.recipients] == [Cause.ENCAPSULATED_SMTP_REJECTED]
    assert any("x-no-such-charset" in note for note in bounce.notes)


# ---------------------------------------------------------------------------
# the command line, as a subprocess


def run(*args: str, stdin: bytes = b"", cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": pythonpath, "PYTHONUTF8": "1", "PYTHONIOENCODING": "utf-8"}
    result = subprocess.run(
        [sys.executable, "-m", "imcea", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        timeout=120,
    )
    out = subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )
    assert "Traceback" not in out.stderr, out.stderr
    return out


def _blocks(stdout: str) -> list[dict[str, str]]:
    """The text output, one dict per recipient block: its header and its 'key: value' lines."""
    blocks: list[dict[str, str]] = []
    for line in stdout.splitlines():
        if not line.startswith("  "):
            blocks.append({"head": line})
        else:
            key, _, value = line.strip().partition(":")
            blocks[-1][key] = (blocks[-1].get(key, "") + "\n" + value.strip()).strip()
    return blocks


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_ndr_on_each_sample(name: str) -> None:
    result = run("ndr", f"tests/data/bounces/{name}")
    assert result.returncode == 0, result.stderr
    blocks = _blocks(result.stdout)
    expected = SAMPLES[name]
    assert len(blocks) == len(expected)
    if not expected:
        assert (
            result.stderr
            == f"imcea ndr: tests/data/bounces/{name}: no failed recipient in this report\n"
        )
    for block, (cause, status, display, inner, warning) in zip(blocks, expected, strict=True):
        assert block["head"].startswith(f"tests/data/bounces/{name}: ")
        if display:
            assert f": {display} <" in block["head"]
        assert block["cause"] == f"{cause.value}, {status}"
        assert block["why"] == cause.explanation
        if cause is L:
            assert block["proxy"] == "X500:" + inner
            _, identity, _, _, value = _parse_command(block["command"])
            assert (identity, value) == (bounces.PLACEHOLDER, "X500:" + inner)
        else:
            assert "proxy" not in block and "command" not in block
        if warning is not None:
            assert warning in block["warning"]


def test_ndr_json_target_identity() -> None:
    result = run(
        "ndr", "--json", "--target", "remote-mailbox", "--identity", "Jo O'Neil",
        "tests/data/bounces/several-recipients.eml",
    )  # fmt: skip
    assert result.returncode == 0 and result.stderr == ""
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["cause"] for r in records] == [L.value, L.value, Cause.NOT_ENCAPSULATED.value]
    assert records[1]["proxy"] == "X500:" + ONEIL
    assert records[1]["display_name"] == "Jo O'Neil"
    assert records[1]["type"] == "EX" and records[1]["decoded"] == ONEIL
    cmdlet, identity, _, _, value = _parse_command(records[1]["command"])
    assert (cmdlet, identity, value) == ("Set-RemoteMailbox", "Jo O'Neil", "X500:" + ONEIL)
    assert records[2]["proxy"] is None and records[2]["command"] is None
    assert records[2]["address"] == "no.such.person@fabrikam.example"


def test_ndr_directory_csv_merges_by_dn(tmp_path: Path) -> None:
    for name in ("exo-5.1.11.eml", "several-recipients.eml", "delayed.eml"):
        shutil.copy(DATA / name, tmp_path / name)
    shutil.copy(DATA / "exo-5.1.11.eml", tmp_path / "exo-again.eml")
    # the same DN in other letter case: the same legacy DN
    (tmp_path / "zz-pasted.txt").write_text(
        imcea.encode("EX", FINANCE.lower(), "contoso.com") + "\n#550 5.1.1 ##\n", encoding="utf-8"
    )
    (tmp_path / "notes.doc").write_bytes(b"not read: not a bounce file name")
    result = run("ndr", "--csv", str(tmp_path))
    assert result.returncode == 0
    assert (
        result.stderr
        == f"imcea ndr: {tmp_path / 'delayed.eml'}: no failed recipient in this report\n"
    )
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["legacy_dn", "proxy", "bounces", "first_file"]
    table = {row[0]: row[1:] for row in rows[1:]}
    assert table == {
        EXO: ["X500:" + EXO, "2", str(tmp_path / "exo-5.1.11.eml")],
        FINANCE: ["X500:" + FINANCE, "2", str(tmp_path / "several-recipients.eml")],
        ONEIL: ["X500:" + ONEIL, "1", str(tmp_path / "several-recipients.eml")],
    }


def test_ndr_stdin() -> None:
    raw = (DATA / "forwarded.eml").read_bytes()
    for args in (["ndr", "-"], ["ndr"]):
        result = run(*args, stdin=raw)
        assert result.returncode == 0 and result.stderr == ""
        (block,) = _blocks(result.stdout)
        assert block["head"].startswith("-: Pat Lee <IMCEAEX-")
        assert block["proxy"] == "X500:" + FORWARDED


def test_ndr_bad_files_and_the_rest_still_read(tmp_path: Path) -> None:
    raw = (DATA / "onprem-5.1.1.eml").read_bytes()
    (tmp_path / "truncated.eml").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "charset.eml").write_bytes(
        (DATA / "smtp-in-smtp-5.1.0.eml").read_bytes().replace(b"iso-8859-1", b"klingon-8")
    )
    (tmp_path / "fake.msg").write_bytes(raw)
    (tmp_path / "picture.eml").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (tmp_path / "notes.txt").write_text("Lunch at noon?\n", encoding="utf-8")
    files = ["truncated.eml", "fake.msg", "picture.eml", "missing.eml", "charset.eml", "notes.txt"]
    result = run("ndr", *(str(tmp_path / f) for f in files), "tests/data/bounces/pasted.txt")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 6, lines
    assert "truncated.eml: truncated MIME structure" in lines[0]
    assert "fake.msg: not an Outlook .msg file (not an OLE compound file)" in lines[1]
    assert "picture.eml: not a mail message: this is a PNG image" in lines[2]
    assert "missing.eml: No such file or directory" in lines[3]
    assert "charset.eml: note:" in lines[4] and "klingon-8" in lines[4]
    assert lines[5].endswith("notes.txt: no failed recipient in this report")
    assert all(line.startswith("imcea ndr: ") for line in lines)
    blocks = _blocks(result.stdout)
    assert [b["cause"].split(",")[0] for b in blocks] == [
        Cause.ENCAPSULATED_SMTP_REJECTED.value,
        L.value,
    ]
    assert blocks[1]["proxy"] == "X500:" + PASTED


def test_ndr_usage_errors(tmp_path: Path) -> None:
    result = run("ndr", "--target", "mailboxes", "tests/data/bounces/exo-5.1.11.eml")
    assert result.returncode == 2 and result.stdout == ""
    assert "mailboxes" in result.stderr
    for kind in Target:
        assert kind.value in result.stderr  # the choices are listed
    result = run("ndr", "--csv", "--json", "tests/data/bounces/exo-5.1.11.eml")
    assert result.returncode == 2 and "exclude" in result.stderr
    result = run("ndr", str(tmp_path))
    assert result.returncode == 2 and "no bounce files" in result.stderr


def test_ndr_help_lists_every_target() -> None:
    result = run("ndr", "--help")
    assert result.returncode == 0
    for kind in Target:
        assert kind.value in result.stdout


def test_ndr_msg() -> None:
    pytest.importorskip("extract_msg", reason="extract-msg (imcea[msg]) is not installed")
    result = run("ndr", "tests/data/bounces/exo-5.1.11.msg")
    assert result.returncode == 0, result.stderr
    (block,) = _blocks(result.stdout)
    assert block["proxy"] == "X500:" + EXO


# ---------------------------------------------------------------------------
# imcea x500: the same repairs, said


def test_x500_repairs_kb_2807779s_example() -> None:
    result = run("x500", "-", stdin=(DATA / "stray-backslash.txt").read_bytes())
    assert result.returncode == 0
    assert result.stdout == f"X500:{KB}\n"
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"imcea x500: X500:{KB}: warning: removed a stray '\\' before '@'")


def test_x500_json_names_the_repair() -> None:
    result = run("x500", "--json", "tests/data/bounces/glued-domain.txt")
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["x500"] == "X500:" + KEYMAN
    assert any("glued" in w for w in record["warnings"])


def test_x500_says_why_it_refuses() -> None:
    text = "IMCEAEX-_O=ORG_CN=JOHN DOE@contoso.com\n"
    result = run("x500", "-", stdin=text.encode())
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("imcea x500: no IMCEAEX address found: IMCEAEX-_O=ORG_CN=JOHN")
    assert "blank" in line
    # one good, one refused: the good one printed, the refused one said
    result = run("x500", "-", stdin=(text + "IMCEAEX-_O=ORG_CN=JDOE@contoso.com\n").encode())
    assert result.returncode == 2  # a refused address is bad input
    assert result.stdout == "X500:/O=ORG/CN=JDOE\n"
    (line,) = result.stderr.splitlines()
    assert "JOHN" in line and "blank" in line


def test_json_record_keys_are_stable() -> None:
    result = run("ndr", "--json", "tests/data/bounces/exo-5.1.11.eml")
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    keys: dict[str, Any] = record
    assert list(keys) == [
        "file", "address", "display_name", "type", "decoded", "status", "diagnostic",
        "cause", "explanation", "fix", "proxy", "command", "warnings", "problem",
    ]  # fmt: skip
