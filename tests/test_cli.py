"""Tests of the ``imcea`` command line (DESIGN §4), run as a real subprocess.

Every expected value below comes from DESIGN.md and the README, worked out by hand.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``python -m imcea ARGS`` from the checkout, with *stdin* as standard input."""
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {
        **os.environ,
        "PYTHONPATH": pythonpath,
        "PYTHONUTF8": "1",
        "PYTHONIOENCODING": "utf-8",
    }
    return subprocess.run(
        [sys.executable, "-m", "imcea", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        encoding="utf-8",
        timeout=120,
    )


def out_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return result.stdout.splitlines()


def err_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines on stderr, after checking that none of them is a traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.splitlines()


def json_lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in out_lines(result)]
    assert all(isinstance(record, dict) for record in records), result.stdout
    return records


def assert_one_error(result: subprocess.CompletedProcess[str], command: str) -> str:
    """Exit status 2 (trouble), nothing on stdout, and exactly one ``imcea COMMAND: ...``
    line on stderr."""
    lines = err_lines(result)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stdout == ""
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"imcea {command}: "), lines[0]
    return lines[0]


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------------------
# imcea decode

SMTP = "IMCEASMTP-user+40example+2Ecom@ims.contoso.com"
EX = "IMCEAEX-_O=ORG_OU=SITE_CN=RECIPIENTS_CN=JDOE@contoso.com"
X400 = "IMCEAX400-c=US+3Ba=+20+3Bp=MS+3Bo=PARIS+3Bs=user+3B@host.microsoft.com"
FAX = "IMCEAFAX-1234567890@example.com"


def test_decode_arguments() -> None:
    result = run("decode", SMTP, EX, X400, FAX)
    assert err_lines(result) == []
    assert result.returncode == 0
    assert out_lines(result) == [
        "SMTP\tuser@example.com\tims.contoso.com",
        "EX\t/O=ORG/OU=SITE/CN=RECIPIENTS/CN=JDOE\tcontoso.com",
        "X400\tc=US;a= ;p=MS;o=PARIS;s=user;\thost.microsoft.com",
        "FAX\t1234567890\texample.com",
    ]


def test_decode_copy_pasted_and_non_ascii() -> None:
    result = run(
        "decode",
        "imceasmtp-a+40b+2ecom@d.example",  # prefix and hex in lower case
        " <IMCEASMTP-a+40b@d.example> ",  # white space and angle brackets are removed
        '"IMCEAEX-_o=org_cn=a+5fb@d.example"',
        "IMCEASMTP-j+E9r+F4me+40x+2Eexample@d.example",  # Latin-1 bytes
        "IMCEASMTP-UTF8-+E4+B8+AD+40x+2Eexample@d.example",  # the UTF8- marker
        "IMCEAFAX-123@*",  # a wildcard domain (KB Q189492)
    )
    assert err_lines(result) == []
    assert result.returncode == 0
    assert out_lines(result) == [
        "SMTP\ta@b.com\td.example",
        "SMTP\ta@b\td.example",
        "EX\t/o=org/cn=a_b\td.example",
        "SMTP\tjérôme@x.example\td.example",
        "SMTP\t中@x.example\td.example",
        "FAX\t123\t*",
    ]


def test_decode_stdin_with_dash_skips_blank_lines() -> None:
    stdin = f"{SMTP}\n\n   \n{EX}\r\n\n{FAX}\n"
    result = run("decode", "-", stdin=stdin)
    assert err_lines(result) == []
    assert result.returncode == 0
    assert out_lines(result) == [
        "SMTP\tuser@example.com\tims.contoso.com",
        "EX\t/O=ORG/OU=SITE/CN=RECIPIENTS/CN=JDOE\tcontoso.com",
        "FAX\t1234567890\texample.com",
    ]


def test_decode_without_arguments_reads_stdin() -> None:
    result = run("decode", stdin=f"\n{FAX}\n{SMTP}")  # no final line break
    assert err_lines(result) == []
    assert result.returncode == 0
    assert out_lines(result) == [
        "FAX\t1234567890\texample.com",
        "SMTP\tuser@example.com\tims.contoso.com",
    ]


def test_decode_dash_among_arguments() -> None:
    result = run("decode", FAX, "-", EX, stdin=f"{SMTP}\n")
    assert err_lines(result) == []
    assert [line.split("\t")[0] for line in out_lines(result)] == ["FAX", "SMTP", "EX"]


def test_decode_json() -> None:
    inputs = [
        "imceasmtp-a+40b+2ecom@d.example",
        EX,
        " <IMCEASMTP-a+40b@d.example> ",
        "IMCEASMTP-UTF8-+e4+b8+ad+40x+2Eexample@d.example",
    ]
    result = run("decode", "--json", *inputs)
    assert err_lines(result) == []
    assert result.returncode == 0
    expected = [
        {
            "input": inputs[0],
            "type": "SMTP",
            "address": "a@b.com",
            "domain": "d.example",
            "canonical": "IMCEASMTP-a+40b+2Ecom@d.example",
        },
        {
            "input": EX,
            "type": "EX",
            "address": "/O=ORG/OU=SITE/CN=RECIPIENTS/CN=JDOE",
            "domain": "contoso.com",
            "canonical": EX,
        },
        {
            "input": inputs[2].strip(),
            "type": "SMTP",
            "address": "a@b",
            "domain": "d.example",
            "canonical": "IMCEASMTP-a+40b@d.example",
        },
        {
            "input": inputs[3],
            "type": "SMTP",
            "address": "中@x.example",
            "domain": "d.example",
            "canonical": "IMCEASMTP-UTF8-+E4+B8+AD+40x+2Eexample@d.example",
        },
    ]
    records = json_lines(result)
    assert len(records) == len(expected)
    for record, want in zip(records, expected, strict=True):
        assert set(want) <= set(record), record
        got = {key: record[key] for key in want}
        if got["input"] != want["input"]:  # the argument as given, or stripped of blanks
            assert got["input"].strip() == want["input"]
            got["input"] = want["input"]
        assert got == want


BAD_ESCAPE = "IMCEASMTP-user+4Gexample@d.example"
BAD_CHAR = "IMCEASMTP-a%b@d.example"


def test_decode_bad_inputs_one_line_each_and_good_ones_still_print() -> None:
    bad = [BAD_ESCAPE, BAD_CHAR, "user@example.com", "IMCEASMTP-user", "IMCEA-abc@d.example"]
    result = run("decode", SMTP, *bad[:2], FAX, *bad[2:], EX)
    lines = err_lines(result)
    assert result.returncode == 2
    # one output line per input: an error line in the place of each bad one
    out = out_lines(result)
    assert [line.split("\t")[0] for line in out] == [
        "SMTP", "error", "error", "FAX", "error", "error", "error", "EX",
    ]  # fmt: skip
    assert out[0] == "SMTP\tuser@example.com\tims.contoso.com"
    assert out[3] == "FAX\t1234567890\texample.com"
    assert out[7] == "EX\t/O=ORG/OU=SITE/CN=RECIPIENTS/CN=JDOE\tcontoso.com"
    assert out[1] == "error\t'+4G' at position 14 is not a +HH escape"
    assert len(lines) == len(bad), result.stderr
    for line, address in zip(lines, bad, strict=True):
        assert line.startswith(f"imcea decode: {address}: "), line
        assert len(line) > len(f"imcea decode: {address}: ")
    # the README's own example, and DESIGN §1.3: the character and its position are named
    assert lines[0] == (f"imcea decode: {BAD_ESCAPE}: '+4G' at position 14 is not a +HH escape")
    message = lines[1].removeprefix(f"imcea decode: {BAD_CHAR}: ")
    assert "%" in message
    assert re.search(r"\b11\b", message), message


def test_decode_bad_stdin_line() -> None:
    result = run("decode", "-", stdin=f"{SMTP}\n{BAD_ESCAPE}\n")
    lines = err_lines(result)
    assert result.returncode == 2
    assert out_lines(result) == [
        "SMTP\tuser@example.com\tims.contoso.com",
        "error\t'+4G' at position 14 is not a +HH escape",
    ]
    assert len(lines) == 1
    assert lines[0].startswith(f"imcea decode: {BAD_ESCAPE}: ")


def test_decode_lenient() -> None:
    result = run(
        "decode",
        "--lenient",
        BAD_ESCAPE,
        BAD_CHAR,
        "IMCEASMTP-a+b+40c@d.example",
        SMTP,
        "IMCEA-abc@d.example",  # the type rule still applies in lenient mode
        "IMCEASMTP-@d.example",  # and so does a non-empty address
    )
    lines = err_lines(result)
    assert result.returncode == 2
    out = out_lines(result)
    assert out[:4] == [
        "SMTP\tuser+4Gexample\td.example",
        "SMTP\ta%b\td.example",
        "SMTP\ta+b@c\td.example",
        "SMTP\tuser@example.com\tims.contoso.com",
    ]
    assert [line.split("\t")[0] for line in out[4:]] == ["error", "error"]
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("imcea decode: IMCEA-abc@d.example: ")
    assert lines[1].startswith("imcea decode: IMCEASMTP-@d.example: ")


def test_decode_lenient_all_good_exits_0() -> None:
    result = run("decode", "--lenient", "--json", BAD_ESCAPE)
    assert err_lines(result) == []
    assert result.returncode == 0
    [record] = json_lines(result)
    assert record["address"] == "user+4Gexample"
    assert record["type"] == "SMTP"


# ---------------------------------------------------------------------------
# imcea encode


def test_encode_arguments() -> None:
    result = run(
        "encode", "--type", "smtp", "--domain", "ims.contoso.com", "user@example.com", "a_b+c@x.y"
    )
    assert err_lines(result) == []
    assert result.returncode == 0
    assert out_lines(result) == [
        "IMCEASMTP-user+40example+2Ecom@ims.contoso.com",
        "IMCEASMTP-a+5Fb+2Bc+40x+2Ey@ims.contoso.com",
    ]


def test_encode_exchange_dn_and_x400() -> None:
    dn = run(
        "encode", "--type", "EX", "--domain", "contoso.com", "/O=ORG/OU=SITE/CN=RECIPIENTS/CN=JDOE"
    )
    x400 = run(
        "encode",
        "--type",
        "X400",
        "--domain",
        "host.microsoft.com",
        "c=US;a= ;p=MS;o=PARIS;s=user;",
    )
    for result in (dn, x400):
        assert err_lines(result) == []
        assert result.returncode == 0
    assert out_lines(dn) == [EX]
    assert out_lines(x400) == [X400]


def test_encode_non_ascii_and_decode_it_back() -> None:
    addresses = ["jürgen@例え.jp", "café@x.y", "UTF8-abc"]
    result = run("encode", "--type", "SMTP", "--domain", "contoso.com", *addresses)
    assert err_lines(result) == []
    assert result.returncode == 0
    encoded = out_lines(result)
    assert encoded == [
        "IMCEASMTP-UTF8-j+C3+BCrgen+40+E4+BE+8B+E3+81+88+2Ejp@contoso.com",
        "IMCEASMTP-caf+E9+40x+2Ey@contoso.com",
        "IMCEASMTP-UTF8+2Dabc@contoso.com",  # [choice] the literal UTF8- keeps its hyphen
    ]
    back = run("decode", "-", stdin="\n".join(encoded) + "\n")
    assert err_lines(back) == []
    assert back.returncode == 0
    assert [line.split("\t")[1] for line in out_lines(back)] == addresses


def test_encode_stdin_and_domains() -> None:
    stdin = "a@b.c\n\n  \nx@y.z\n"
    dash = run("encode", "--type", "SMTP", "--domain", "bücher.example", "-", stdin=stdin)
    bare = run("encode", "--type", "FAX", "--domain", "[192.0.2.1]", stdin="123\n")
    star = run("encode", "--type", "FAX", "--domain", "*", "456")
    for result in (dash, bare, star):
        assert err_lines(result) == []
        assert result.returncode == 0
    # IDN U-labels become A-labels (DESIGN §1.2)
    assert out_lines(dash) == [
        "IMCEASMTP-a+40b+2Ec@xn--bcher-kva.example",
        "IMCEASMTP-x+40y+2Ez@xn--bcher-kva.example",
    ]
    assert out_lines(bare) == ["IMCEAFAX-123@[192.0.2.1]"]
    assert out_lines(star) == ["IMCEAFAX-456@*"]


def test_encode_json() -> None:
    result = run("encode", "--json", "--type", "smtp", "--domain", "d.example", "a@b.c", "x@y.z")
    assert err_lines(result) == []
    assert result.returncode == 0
    records = json_lines(result)
    assert len(records) == 2
    for record, (address, encoded) in zip(
        records,
        [("a@b.c", "IMCEASMTP-a+40b+2Ec@d.example"), ("x@y.z", "IMCEASMTP-x+40y+2Ez@d.example")],
        strict=True,
    ):
        values = list(record.values())
        assert address in values, record
        assert encoded in values, record


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--type", "SM-TP"),
        ("--type", "ABCDEFGHIJ"),  # ten characters: the type is 1-9
        ("--domain", "a..b"),
        ("--domain", "[300.1.1.1]"),
    ],
)
def test_encode_bad_type_or_domain(option: str, value: str) -> None:
    given = {"--type": "SMTP", "--domain": "d.example", option: value}
    result = run("encode", "--type", given["--type"], "--domain", given["--domain"], "a@b.c")
    line = assert_one_error(result, "encode")
    assert value in line


def test_encode_empty_address_is_an_error_and_others_still_print() -> None:
    result = run("encode", "--type", "SMTP", "--domain", "d.example", "a@b.c", "", "x@y.z")
    lines = err_lines(result)
    assert result.returncode == 2
    out = out_lines(result)
    assert out[0] == "IMCEASMTP-a+40b+2Ec@d.example"
    assert out[1].startswith("error\t")
    assert out[2] == "IMCEASMTP-x+40y+2Ez@d.example"
    assert len(lines) == 1
    assert lines[0].startswith("imcea encode: ")


# ---------------------------------------------------------------------------
# imcea x500

PROXY_A = "X500:/O=ORG/OU=EXCHANGE ADMINISTRATIVE GROUP (FYDIBOHF23SPDLT)/CN=RECIPIENTS/CN=JDOE"
PROXY_B = "X500:/O=CONTOSO/OU=FIRST ADMINISTRATIVE GROUP/CN=RECIPIENTS/CN=O'BRIEN, PAT"
PROXY_C = "X500:/O=ORG/OU=SITE/CN=RECIPIENTS/CN=J,DOE_2"
PROXY_D = "X500:/o=org/ou=site/cn=recipients/cn=mary.smith"

# The JDOE address of PROXY_A, unwrapped.
LONG_A = (
    "IMCEAEX-_O=ORG_OU=EXCHANGE+20ADMINISTRATIVE+20GROUP+20+28FYDIBOHF23SPDLT+29"
    "_CN=RECIPIENTS_CN=JDOE@contoso.com"
)

# An NDR as Outlook shows it: addresses wrapped over lines (one in the middle of the
# escape "+2C"), the first one repeated unwrapped, an SMTP one-off that has no X500
# proxy, and a prefix and hex digits in lower case.
NDR = f"""\
Delivery has failed to these recipients or groups:

John Doe
The e-mail address you entered couldn't be found. Please check the recipient's
e-mail address and try to resend the message.

Diagnostic information for administrators:

Generating server: mail.contoso.com

Original recipient: IMCEAEX-_O=ORG_OU=EXCHANGE+20ADMINISTRATIVE+20GROUP+20+28FYDIBOHF
23SPDLT+29_CN=RECIPIENTS_CN=JDOE@contoso.com
#550 5.1.1 RESOLVER.ADR.ExRecipNotFound; not found ##

{LONG_A}
#550 5.1.1 RESOLVER.ADR.ExRecipNotFound; not found ##

Original recipient:
IMCEAEX-_O=ORG_OU=EXCHANGE+20ADMINISTRATIVE+20GROUP+20+28FYDIBOHF23SPDLT+29_
CN=RECIPIENTS_CN=JDOE@contoso.com

To: IMCEAEX-_O=CONTOSO_OU=FIRST+20ADMINISTRATIVE+20GROUP_CN=RECIPIENTS_CN=O+27BRIEN+2
C+20PAT@contoso.com
Forwarded for: IMCEASMTP-victim+40elsewhere+2Eexample@contoso.com
Also: <IMCEAEX-_O=ORG_OU=SITE_CN=RECIPIENTS_CN=J+2CDOE+5F2@contoso.com>
and imceaex-_o=org_ou=site_cn=recipients_cn=mary+2esmith@contoso.com.
Reply to {LONG_A}
"""

PROXIES = [PROXY_A, PROXY_B, PROXY_C, PROXY_D]


def test_x500_file_with_crlf_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "ndr.txt"
    path.write_bytes(NDR.replace("\n", "\r\n").encode("utf-8"))
    result = run("x500", str(path))
    assert err_lines(result) == []
    assert result.returncode == 0
    assert out_lines(result) == PROXIES


def test_x500_stdin() -> None:
    dash = run("x500", "-", stdin=NDR)
    bare = run("x500", stdin=NDR)
    for result in (dash, bare):
        assert err_lines(result) == []
        assert result.returncode == 0
        assert out_lines(result) == PROXIES


def test_x500_json(tmp_path: Path) -> None:
    result = run("x500", "--json", write(tmp_path, "ndr.txt", NDR))
    assert err_lines(result) == []
    assert result.returncode == 0
    records = json_lines(result)
    assert len(records) == len(PROXIES)
    for record, proxy in zip(records, PROXIES, strict=True):
        assert proxy in record.values(), record


def test_x500_none_found(tmp_path: Path) -> None:
    text = (
        "Delivery has failed to these recipients or groups:\n"
        "IMCEASMTP-victim+40elsewhere+2Eexample@contoso.com\n"
        "IMCEAEX-_O=ORG_CN=J+4GDOE@contoso.com\n"  # not a +HH escape: skipped
        "jdoe@contoso.com\n"
    )
    line = assert_one_error(run("x500", write(tmp_path, "ndr.txt", text)), "x500")
    assert "Traceback" not in line
    assert_one_error(run("x500", "-", stdin=""), "x500")


def test_x500_missing_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-ndr.txt")
    line = assert_one_error(run("x500", missing), "x500")
    assert missing in line


# ---------------------------------------------------------------------------
# imcea decide


def decisions(result: subprocess.CompletedProcess[str]) -> list[list[str]]:
    """The tab-separated lines: recipient, action, reason, reply, detail."""
    rows = [line.split("\t") for line in out_lines(result)]
    for row in rows:
        assert len(row) == 5, row
        assert row[4].strip(), row  # a detail sentence
    return rows


def summary(rows: list[list[str]]) -> list[tuple[str, str, str, str]]:
    return [(r[0], r[1], r[2], r[3]) for r in rows]


ENCAPSULATED_REMOTE = "IMCEASMTP-victim+40elsewhere+2Eexample@contoso.com"


def test_decide_defaults() -> None:
    # the built-in defaults: rerouting off, no routing entries, no directory, release SP3
    recipients = [
        "jdoe@partner.example",
        "Postmaster",
        ENCAPSULATED_REMOTE,
        "IMCEAEX-_O=ORG_CN=JDOE@contoso.com",
        "IMCEAX400-c=US+3Bs=user+3B@contoso.com",
        "@example.com",
        "x@[192.0.2.10]",
    ]
    result = run("decide", "--ip", "203.0.113.7", "--from", "a@b.example", *recipients)
    assert err_lines(result) == []
    assert result.returncode == 1
    rows = decisions(result)
    accepted = "250 OK - Recipient <{}>".format
    assert summary(rows) == [
        # §2.4 step 5: no directory, no routing entry says inbound, rerouting off
        ("jdoe@partner.example", "return", "rerouting_disabled", accepted("jdoe@partner.example")),
        ("Postmaster", "deliver", "postmaster", accepted("Postmaster")),
        # the seed's fix: an encapsulated SMTP one-off is returned with rerouting off
        (
            ENCAPSULATED_REMOTE,
            "return",
            "encapsulated_not_rerouted",
            accepted(ENCAPSULATED_REMOTE),
        ),
        (
            "IMCEAEX-_O=ORG_CN=JDOE@contoso.com",
            "deliver",
            "encapsulated_exchange",
            accepted("IMCEAEX-_O=ORG_CN=JDOE@contoso.com"),
        ),
        # X400 is in the default gateways
        (
            "IMCEAX400-c=US+3Bs=user+3B@contoso.com",
            "deliver",
            "encapsulated_gateway",
            accepted("IMCEAX400-c=US+3Bs=user+3B@contoso.com"),
        ),
        ("@example.com", "return", "malformed_address", "553 malformed address: <@example.com>"),
        # no server_addresses by default: the literal is not ours either
        ("x@[192.0.2.10]", "return", "rerouting_disabled", accepted("x@[192.0.2.10]")),
    ]
    assert "partner.example" in rows[0][4]


def test_decide_defaults_nothing_returned_exits_0() -> None:
    result = run("decide", "--ip", "203.0.113.7", "postmaster", "IMCEAEX-_O=ORG_CN=JDOE@d.example")
    assert err_lines(result) == []
    assert result.returncode == 0
    assert [(r[1], r[2]) for r in decisions(result)] == [
        ("deliver", "postmaster"),
        ("deliver", "encapsulated_exchange"),
    ]


SETTINGS = """\
reroute = true
server_addresses = ["192.0.2.10", "10.0.0.1"]

[[routing]]
domain = "contoso.com"
action = "inbound"
[[routing]]
domain = "partner.example"
action = "reroute"
to = "mail.partner.example"
[[routing]]
domain = "always.example"
action = "relay"

[restrictions]
authenticated = true
allow = ["192.168.0.1", "10.0.0.0/255.255.255.0"]
internal = ["10.0.0.1"]
deny = ["10.0.0.66"]
"""

RECIPIENTS = [
    "jdoe@contoso.com",
    "<jdoe@Sub.Contoso.com>",
    "x@chelsea-contoso.com",
    "pat@partner.example",
    "x@always.example",
    ENCAPSULATED_REMOTE,
    "user%remote.example@contoso.com",
    "x@[192.0.2.10]",
    "x@[198.51.100.1]",
]

RELAYED = "550 Relaying is prohibited"


def test_decide_settings_unpermitted_client(tmp_path: Path) -> None:
    settings = write(tmp_path, "ims.toml", SETTINGS)
    result = run("decide", "--settings", settings, "--ip", "203.0.113.7", *RECIPIENTS)
    assert err_lines(result) == []
    assert result.returncode == 1
    rows = decisions(result)
    assert [r[0] for r in rows] == RECIPIENTS
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("deliver", "inbound_unverified", "250 OK - Recipient <jdoe@contoso.com>"),
        ("deliver", "inbound_unverified", "250 OK - Recipient <jdoe@Sub.Contoso.com>"),
        ("return", "relay_denied", RELAYED),
        ("return", "relay_denied", RELAYED),
        ("reroute", "always_relay", "250 OK - Recipient <x@always.example>"),
        ("return", "encapsulated_relay_denied", RELAYED),
        ("deliver", "inbound_unverified", "250 OK - Recipient <user%remote.example@contoso.com>"),
        ("deliver", "inbound_unverified", "250 OK - Recipient <x@[192.0.2.10]>"),
        ("return", "relay_denied", RELAYED),
    ]
    assert "203.0.113.7" in rows[2][4]


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (["--ip", "192.168.0.1"], "relay_allowed_host"),
        (["--ip", "10.0.0.200"], "relay_allowed_host"),  # 10.0.0.0/255.255.255.0
        (["--ip", "203.0.113.7", "--auth"], "relay_authenticated"),
        (["--ip", "203.0.113.7", "--server-ip", "10.0.0.1"], "relay_internal_interface"),
    ],
)
def test_decide_settings_permitted_clients(tmp_path: Path, options: list[str], reason: str) -> None:
    settings = write(tmp_path, "ims.toml", SETTINGS)
    recipients = ["pat@partner.example", "x@chelsea-contoso.com", "jdoe@contoso.com"]
    result = run("decide", "--settings", settings, *options, "--from", "a@b.example", *recipients)
    assert err_lines(result) == []
    assert result.returncode == 0
    assert [(r[1], r[2]) for r in decisions(result)] == [
        ("reroute", reason),
        ("reroute", reason),
        ("deliver", "inbound_unverified"),
    ]


def test_decide_denied_host_and_always_relay(tmp_path: Path) -> None:
    # 10.0.0.66 is also inside the allow entry 10.0.0.0/255.255.255.0: deny wins, but
    # an always-relay entry beats the never-route list ([choice], KB Q195969)
    settings = write(tmp_path, "ims.toml", SETTINGS)
    result = run(
        "decide", "--settings", settings, "--ip", "10.0.0.66", "x@always.example", "-",
        stdin="\npat@partner.example\n\n" + ENCAPSULATED_REMOTE + "\n",
    )  # fmt: skip
    assert err_lines(result) == []
    assert result.returncode == 1
    assert [(r[0], r[1], r[2], r[3]) for r in decisions(result)] == [
        ("x@always.example", "reroute", "always_relay", "250 OK - Recipient <x@always.example>"),
        ("pat@partner.example", "return", "denied_host", RELAYED),
        (ENCAPSULATED_REMOTE, "return", "encapsulated_relay_denied", RELAYED),
    ]


def test_decide_recipients_from_stdin() -> None:
    result = run("decide", "--ip", "203.0.113.7", stdin="postmaster\n\n  \njdoe@partner.example\n")
    assert err_lines(result) == []
    assert result.returncode == 1
    assert [(r[0], r[2]) for r in decisions(result)] == [
        ("postmaster", "postmaster"),
        ("jdoe@partner.example", "rerouting_disabled"),
    ]


def test_decide_json(tmp_path: Path) -> None:
    settings = write(tmp_path, "ims.toml", SETTINGS)
    recipients = ["pat@partner.example", "nobody@elsewhere.example", "jdoe@contoso.com"]
    result = run("decide", "--json", "--settings", settings, "--ip", "192.168.0.1", *recipients)
    assert err_lines(result) == []
    assert result.returncode == 0
    expected = [
        {
            "recipient": "pat@partner.example",
            "action": "reroute",
            "reason": "relay_allowed_host",
            "reply": "250 OK - Recipient <pat@partner.example>",
            # a reroute-to entry rewrites the domain (KB Q190710)
            "resolved": "pat@mail.partner.example",
            "next_hop": "mail.partner.example",
            "ndr": None,
        },
        {
            "recipient": "nobody@elsewhere.example",
            "action": "reroute",
            "reason": "relay_allowed_host",
            "reply": "250 OK - Recipient <nobody@elsewhere.example>",
            "resolved": "nobody@elsewhere.example",
            "next_hop": "elsewhere.example",
            "ndr": None,
        },
        {
            "recipient": "jdoe@contoso.com",
            "action": "deliver",
            "reason": "inbound_unverified",
            "reply": "250 OK - Recipient <jdoe@contoso.com>",
            "resolved": "jdoe@contoso.com",
            "next_hop": None,
            "ndr": None,
        },
    ]
    records = json_lines(result)
    assert len(records) == len(expected)
    for record, want in zip(records, expected, strict=True):
        for key in ("recipient", "action", "reason", "reply", "detail"):
            assert key in record, record
        assert isinstance(record["detail"], str) and record["detail"]
        assert "192.168.0.1" in record["detail"] or record["action"] == "deliver"
        for key, value in want.items():
            if key in ("recipient", "action", "reason", "reply") or key in record:
                assert record[key] == value, (key, record)


def test_decide_json_returned_has_ndr() -> None:
    result = run("decide", "--json", "--ip", "203.0.113.7", "jdoe@partner.example")
    assert result.returncode == 1
    [record] = json_lines(result)
    assert record["action"] == "return"
    assert record["reason"] == "rerouting_disabled"
    if "ndr" in record:
        assert record["ndr"] == "(000C05A6) Unknown Recipient"


@pytest.mark.parametrize(
    "options",
    [
        ["--ip", "999.1.1.1"],
        ["--ip", "10.0.0.0/8"],
        ["--ip", "203.0.113.7", "--server-ip", "10.0.0.300"],
    ],
)
def test_decide_bad_ip(options: list[str]) -> None:
    line = assert_one_error(run("decide", *options, "jdoe@contoso.com"), "decide")
    assert options[-1] in line


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[restrictions]\nallow = ["10.0.0.0/255.255.x.0"]\n', "restrictions.allow"),
        ("reroot = true\n", "reroot"),
        ('reroute = "yes"\n', "reroute"),
        ('release = "SP4"\n', "release"),
        ('[[routing]]\ndomain = "a.example"\naction = "forward"\n', "routing"),
    ],
)
def test_decide_bad_settings_file(tmp_path: Path, text: str, key: str) -> None:
    settings = write(tmp_path, "bad.toml", text)
    result = run("decide", "--settings", settings, "--ip", "203.0.113.7", "jdoe@contoso.com")
    line = assert_one_error(result, "decide")
    assert key in line


def test_decide_unreadable_settings(tmp_path: Path) -> None:
    missing = write(tmp_path, "broken.toml", "reroute = \n[[")
    assert_one_error(run("decide", "--settings", missing, "--ip", "203.0.113.7", "a@b.c"), "decide")
    absent = str(tmp_path / "absent.toml")
    assert_one_error(run("decide", "--settings", absent, "--ip", "203.0.113.7", "a@b.c"), "decide")


# ---------------------------------------------------------------------------
# imcea audit


def audit_rows(result: subprocess.CompletedProcess[str]) -> list[list[str]]:
    rows = [line.split("\t") for line in out_lines(result)]
    assert rows
    for row in rows:
        assert row[0].strip() in ("RELAYS", "ok"), row
    return rows


def test_audit_defaults() -> None:
    result = run("audit", "--ip", "203.0.113.7")
    lines = err_lines(result)
    assert result.returncode == 0, result.stderr
    rows = audit_rows(result)
    assert all(row[0].strip() == "ok" for row in rows)
    # the summary: one line on stderr naming the client and the counts
    assert len(lines) == 1, result.stderr
    assert "203.0.113.7" in lines[0]
    assert re.search(rf"\b{len(rows)}\b", lines[0]), lines[0]


# rerouting on and no restriction selected: the open relay of KB Q260562
OPEN_RELAY = """\
reroute = true
server_addresses = ["192.0.2.10"]

[[routing]]
domain = "contoso.com"
action = "inbound"
"""


def _bare(recipient: str) -> str:
    return recipient.strip().removeprefix("<").removesuffix(">")


def test_audit_open_relay(tmp_path: Path) -> None:
    settings = write(tmp_path, "open.toml", OPEN_RELAY)
    result = run("audit", "--settings", settings, "--ip", "203.0.113.7")
    lines = err_lines(result)
    assert result.returncode == 1
    assert len(lines) == 1, result.stderr
    rows = audit_rows(result)
    flagged = [row for row in rows if row[0].strip() == "RELAYS"]
    assert flagged
    # every plain third-party recipient relays
    plain = re.compile(r"[A-Za-z0-9._-]+@relay-target\.example")
    remote = [row for row in rows if any(plain.fullmatch(_bare(cell)) for cell in row)]
    assert remote
    assert all(row[0].strip() == "RELAYS" for row in remote), remote


def test_audit_json(tmp_path: Path) -> None:
    settings = write(tmp_path, "open.toml", OPEN_RELAY)
    result = run("audit", "--json", "--settings", settings, "--ip", "203.0.113.7")
    assert len(err_lines(result)) == 1
    assert result.returncode == 1
    records = json_lines(result)
    assert records
    for record in records:
        for key in ("name", "source", "relays"):
            assert key in record, record
        assert isinstance(record["name"], str) and record["name"]
        assert isinstance(record["source"], str) and record["source"]
        assert isinstance(record["relays"], bool)
    assert any(record["relays"] for record in records)
    assert len({record["name"] for record in records}) == len(records)
    for record in records:
        recipient = _bare(record.get("recipient", ""))
        if re.fullmatch(r"[A-Za-z0-9._-]+@relay-target\.example", recipient):
            assert record["relays"] is True, record
        # the percent hack is an ordinary local part at an inbound domain (Q244346)
        local, _, domain = recipient.rpartition("@")
        if "%" in local and domain in ("contoso.com", "[192.0.2.10]"):
            assert record["relays"] is False, record


def test_audit_bad_ip() -> None:
    line = assert_one_error(run("audit", "--ip", "203.0.113.300"), "audit")
    assert "203.0.113.300" in line


# ---------------------------------------------------------------------------
# help, argument errors and the check smoke test

COMMANDS = ["decode", "encode", "x500", "check", "decide", "audit"]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help(command: str | None) -> None:
    args = ["--help"] if command is None else [command, "--help"]
    result = run(*args)
    assert err_lines(result) == []
    assert result.returncode == 0
    assert "usage" in result.stdout.lower()
    if command is None:
        for name in COMMANDS:
            assert name in result.stdout
    else:
        assert command in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["frobnicate"],
        [],
        ["decide", "jdoe@contoso.com"],  # --ip is required
    ],
)
def test_usage_errors(args: list[str]) -> None:
    result = run(*args)
    assert "Traceback" not in result.stderr
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip()


def test_check_smoke() -> None:
    result = run("check")
    assert err_lines(result) == []
    assert result.returncode == 0
