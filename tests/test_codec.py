"""Table-driven tests of the IMCEA codec (DESIGN §1).

Expected values come from the corpus of published addresses (tests/data/addresses.jsonl),
from the examples and tables of the design, or are worked out by hand from the §1.2 rules.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

import imcea

DATA = Path(__file__).parent / "data" / "addresses.jsonl"
ROWS: list[dict[str, Any]] = [
    json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()
]


def _row_id(row: dict[str, Any]) -> str:
    text = str(row["encapsulated"])
    return text if len(text) <= 48 else text[:45] + "..."


# Microsoft KB 2807779: the IMCEAEX NDR after a mailbox migration.
KB2807779 = next(row for row in ROWS if "KB 2807779" in row["source"])


def _triple(value: imcea.Encapsulated) -> tuple[str, str, str]:
    return value.addrtype, value.address, value.domain


# ---------------------------------------------------------------------------
# the corpus of real addresses


def test_corpus_is_loaded() -> None:
    assert len(ROWS) >= 30
    assert any(row["strict"] for row in ROWS)
    assert any(not row["strict"] for row in ROWS)


@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_corpus_lenient(row: dict[str, Any]) -> None:
    value = imcea.decode(row["encapsulated"], strict=False)
    assert _triple(value) == (row["type"], row["address"], row["domain"])


@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_corpus_strict(row: dict[str, Any]) -> None:
    if row["strict"]:
        value = imcea.decode(row["encapsulated"])
        assert _triple(value) == (row["type"], row["address"], row["domain"])
    else:
        with pytest.raises(imcea.DecodeError):
            imcea.decode(row["encapsulated"])


@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_corpus_is_encapsulated(row: dict[str, Any]) -> None:
    assert imcea.is_encapsulated(row["encapsulated"]) is row["strict"]


# ---------------------------------------------------------------------------
# the character table of §1.2

CHARACTER_TABLE = [
    ("_", "+5F"),
    ("+", "+2B"),
    (".", "+2E"),
    ("@", "+40"),
    (" ", "+20"),
    ("(", "+28"),
    (",", "+2C"),
    (";", "+3B"),
    (":", "+3A"),
    ("%", "+25"),
    ("!", "+21"),
    ("/", "_"),
    ("é", "+E9"),
]


@pytest.mark.parametrize(("char", "escaped"), CHARACTER_TABLE, ids=[c for c, _ in CHARACTER_TABLE])
def test_character_table_encode(char: str, escaped: str) -> None:
    assert imcea.encode("SMTP", f"a{char}b", "d.example") == f"IMCEASMTP-a{escaped}b@d.example"


@pytest.mark.parametrize(("char", "escaped"), CHARACTER_TABLE, ids=[c for c, _ in CHARACTER_TABLE])
def test_character_table_decode(char: str, escaped: str) -> None:
    for strict in (True, False):
        value = imcea.decode(f"IMCEASMTP-a{escaped}b@d.example", strict=strict)
        assert value == ("SMTP", f"a{char}b", "d.example")


def test_letters_digits_hyphen_equals_are_copied() -> None:
    safe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-="
    assert imcea.encode("X", safe, "d") == f"IMCEAX-{safe}@d"
    assert imcea.decode(f"IMCEAX-{safe}@d") == ("X", safe, "d")


@pytest.mark.parametrize("code", range(256), ids=lambda code: f"U+{code:04X}")
def test_every_other_latin1_character_is_upper_case_hex(code: int) -> None:
    char = chr(code)
    if char.isascii() and (char.isalnum() or char in "-="):
        expected = char
    elif char == "/":
        expected = "_"
    else:
        expected = "+" + "0123456789ABCDEF"[code // 16] + "0123456789ABCDEF"[code % 16]
    assert imcea.encode("A", "x" + char, "d") == f"IMCEAA-x{expected}@d"
    assert imcea.decode(f"IMCEAA-x{expected}@d").address == "x" + char


def test_design_examples() -> None:
    assert imcea.encode("SMTP", "user@example.com", "ims.contoso.com") == (
        "IMCEASMTP-user+40example+2Ecom@ims.contoso.com"
    )
    assert imcea.decode("IMCEAEX-_O=ORG_OU=SITE_CN=RECIPIENTS_CN=JDOE@contoso.com") == (
        "EX",
        "/O=ORG/OU=SITE/CN=RECIPIENTS/CN=JDOE",
        "contoso.com",
    )
    assert imcea.decode(
        "IMCEAX400-c=US+3Ba=+20+3Bp=MS+3Bo=PARIS+3Bs=user+3B@host.microsoft.com"
    ) == (
        "X400",
        "c=US;a= ;p=MS;o=PARIS;s=user;",
        "host.microsoft.com",
    )
    assert imcea.decode("IMCEAFAX-1234567890@example.com") == ("FAX", "1234567890", "example.com")


# ---------------------------------------------------------------------------
# non-ASCII: Latin-1 and the UTF-8 mode


@pytest.mark.parametrize(
    ("address", "encoded"),
    [
        ("é", "+E9"),
        ("café", "caf+E9"),
        ("ÿ\u0080", "+FF+80"),
        ("中", "UTF8-+E4+B8+AD"),
        ("中@x.com", "UTF8-+E4+B8+AD+40x+2Ecom"),
        ("é中", "UTF8-+C3+A9+E4+B8+AD"),
        ("a/b_中", "UTF8-a_b+5F+E4+B8+AD"),
        ("\U0001f600", "UTF8-+F0+9F+98+80"),
        ("Ā", "UTF8-+C4+80"),
    ],
)
def test_non_ascii_encoding(address: str, encoded: str) -> None:
    assert imcea.encode("SMTP", address, "d.example") == f"IMCEASMTP-{encoded}@d.example"
    assert imcea.decode(f"IMCEASMTP-{encoded}@d.example").address == address


def test_utf8_hex_may_be_lower_case() -> None:
    assert imcea.decode("IMCEASMTP-UTF8-+e4+b8+ad@d").address == "中"


@pytest.mark.parametrize(
    ("address", "encoded"),
    [
        ("UTF8-abc", "UTF8+2Dabc"),
        ("UTF8-", "UTF8+2D"),
        ("UTF8-é", "UTF8+2D+E9"),
        ("UTF8-UTF8-", "UTF8+2DUTF8-"),
        # in UTF-8 mode the marker is already there; the address's own "UTF8-" is plain text
        ("UTF8-中", "UTF8-UTF8-+E4+B8+AD"),
    ],
)
def test_address_beginning_with_the_marker(address: str, encoded: str) -> None:
    """[choice] a literal leading ``UTF8-`` is written ``UTF8+2D`` and round-trips."""
    assert imcea.encode("SMTP", address, "d") == f"IMCEASMTP-{encoded}@d"
    assert imcea.decode(f"IMCEASMTP-{encoded}@d").address == address


@pytest.mark.parametrize(
    ("written", "address"),
    [
        ("utf8-+C3+A9", "utf8-Ã©"),
        ("Utf8-+C3+A9", "Utf8-Ã©"),
        ("UTF8_+C3+A9", "UTF8/Ã©"),
        ("UTF8+2D+C3+A9", "UTF8-Ã©"),
    ],
)
def test_marker_is_case_sensitive(written: str, address: str) -> None:
    # not the marker: each escape is one Latin-1 byte
    assert imcea.decode(f"IMCEASMTP-{written}@d").address == address


def test_lower_case_marker_is_not_escaped_by_encode() -> None:
    assert imcea.encode("SMTP", "utf8-abc", "d") == "IMCEASMTP-utf8-abc@d"


@pytest.mark.parametrize(
    "encoded",
    ["UTF8-+E4+B8", "UTF8-+FF", "UTF8-+C3+28", "UTF8-+80abc", "UTF8-+ED+A0+80", "UTF8-a+C3"],
)
@pytest.mark.parametrize("strict", [True, False])
def test_invalid_utf8_after_the_marker(encoded: str, strict: bool) -> None:
    with pytest.raises(imcea.DecodeError):
        imcea.decode(f"IMCEASMTP-{encoded}@d", strict=strict)


# ---------------------------------------------------------------------------
# decoding rules of §1.3


def test_lower_case_hex_decodes() -> None:
    assert imcea.decode("IMCEASMTP-a+2eb+5fc+3a+40d@x").address == "a.b_c:@d"


def test_str_is_the_canonical_form() -> None:
    value = imcea.decode("imceasmtp-a+40b+2ecom@d.example")
    assert str(value) == "IMCEASMTP-a+40b+2Ecom@d.example"


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("imceaex-_o=org_cn=x@EXAMPLE.COM", "IMCEAEX-_o=org_cn=x@EXAMPLE.COM"),
        ("IMCEASMTP-a+40b@*", "IMCEASMTP-a+40b@*"),
        ("IMCEASMTP-UTF8-+c3+a9@d", "IMCEASMTP-+E9@d"),
        ("IMCEASMTP-UTF8-+e4+b8+ad@d", "IMCEASMTP-UTF8-+E4+B8+AD@d"),
        ("<IMCEAfax-123@fax.example>", "IMCEAFAX-123@fax.example"),
    ],
)
def test_str_canonical_examples(written: str, canonical: str) -> None:
    assert str(imcea.decode(written)) == canonical


@pytest.mark.parametrize("prefix", ["IMCEA", "imcea", "Imcea", "iMcEa", "IMCEa"])
def test_prefix_in_any_case(prefix: str) -> None:
    assert imcea.decode(f"{prefix}smtp-a+40b@d") == ("SMTP", "a@b", "d")
    assert imcea.is_encapsulated(f"{prefix}smtp-a+40b@d")


@pytest.mark.parametrize(
    "prefix",
    [
        "\u0131MCEA",
        "IMCE\u0391",
        "\uff29\uff2d\uff23\uff25\uff21",
        "IMCE",
        "IMCEB",
        "XIMCEA",
        " IMC EA",
    ],
)
def test_prefix_must_be_ascii_imcea(prefix: str) -> None:
    # U+0131 (dotless i) upper-cases to "I" but is not part of the ASCII prefix
    for strict in (True, False):
        with pytest.raises(imcea.DecodeError):
            imcea.decode(f"{prefix}SMTP-a@d", strict=strict)


def test_wildcard_domain_of_kb_q189492() -> None:
    text = "IMCEASMTP-swadmin+40corporate+2Ecom@*"
    assert imcea.decode(text) == ("SMTP", "swadmin@corporate.com", "*")
    assert imcea.encode("SMTP", "swadmin@corporate.com", "*") == text


@pytest.mark.parametrize("literal", ["[192.0.2.1]", "[IPv6:2001:db8::1]", "[ipv6:::1]"])
def test_address_literal_domains(literal: str) -> None:
    encoded = imcea.encode("SMTP", "a@b", literal)
    assert encoded == f"IMCEASMTP-a+40b@{literal}"
    assert imcea.decode(encoded) == ("SMTP", "a@b", literal)


def test_idn_domain_becomes_a_label() -> None:
    assert imcea.encode("SMTP", "a", "bücher.example") == "IMCEASMTP-a@xn--bcher-kva.example"
    assert imcea.encode("SMTP", "a", "BÜCHER.example") == "IMCEASMTP-a@xn--bcher-kva.example"


def test_ascii_domain_is_kept_as_written_without_idna(monkeypatch: pytest.MonkeyPatch) -> None:
    # ASCII host names must not pay for an idna call: make importing it fail
    monkeypatch.setitem(sys.modules, "idna", None)
    assert imcea.encode("SMTP", "a", "Mail.Example.COM") == "IMCEASMTP-a@Mail.Example.COM"
    assert imcea.encode("SMTP", "a", "example.com.") == "IMCEASMTP-a@example.com."


@pytest.mark.parametrize(
    ("written", "offset"),
    [
        ("IMCEASMTP-a+40b@d", 0),
        ("  IMCEASMTP-a+40b@d  ", 2),
        ("\t\nIMCEASMTP-a+40b@d\r\n", 2),
        ("<IMCEASMTP-a+40b@d>", 1),
        (" < IMCEASMTP-a+40b@d > ", 3),
        ('"IMCEASMTP-a+40b@d"', 1),
        ("'IMCEASMTP-a+40b@d'", 1),
        ('  "IMCEASMTP-a+40b@d"\n', 3),
    ],
)
def test_copy_pasted_input_is_stripped(written: str, offset: int) -> None:
    assert imcea.decode(written) == ("SMTP", "a@b", "d")
    assert imcea.decode(written, strict=False) == ("SMTP", "a@b", "d")
    # error positions still count from the start of what was passed in
    broken = written.replace("+40", "+4G")
    with pytest.raises(imcea.DecodeError, match=rf"'\+4G' at position {offset + 11}\b"):
        imcea.decode(broken)


def test_split_at_the_last_at_sign() -> None:
    # a raw '@' is not allowed in the encoded part, but the domain is what follows the last one
    assert imcea.decode("IMCEASMTP-a+40b@relay@d.example", strict=False) == (
        "SMTP",
        "a@b@relay",
        "d.example",
    )
    with pytest.raises(imcea.DecodeError, match="'@' at position 15"):
        imcea.decode("IMCEASMTP-a+40b@relay@d.example")


def test_type_ends_at_the_first_hyphen() -> None:
    assert imcea.decode("IMCEAEX-a-b-c@d") == ("EX", "a-b-c", "d")


def test_type_is_never_searched_past_the_last_at() -> None:
    for strict in (True, False):
        with pytest.raises(imcea.DecodeError):
            imcea.decode("IMCEAEX@a-b.example", strict=strict)


@pytest.mark.parametrize(
    ("written", "addrtype"),
    [
        ("IMCEAsmtp-a@d", "SMTP"),
        ("IMCEAx-a@d", "X"),
        ("IMCEA9-a@d", "9"),
        ("IMCEAabc123xyz-a@d", "ABC123XYZ"),
        ("IMCEAX400-a@d", "X400"),
    ],
)
def test_type_rules_accept(written: str, addrtype: str) -> None:
    assert imcea.decode(written).addrtype == addrtype
    assert imcea.decode(written, strict=False).addrtype == addrtype


@pytest.mark.parametrize(
    "written",
    [
        "IMCEA-a@d",  # empty type
        "IMCEAabc123xyzw-a@d",  # ten characters
        "IMCEAS_MTP-a@d",
        "IMCEASMTP+-a@d",
        "IMCEAS MTP-a@d",
        "IMCEA\u0661-a@d",  # ARABIC-INDIC DIGIT ONE is not an ASCII digit
        "IMCEAÉX-a@d",
        "IMCEASMTP@d",  # no hyphen at all
    ],
)
def test_type_rules_reject(written: str) -> None:
    for strict in (True, False):
        with pytest.raises(imcea.DecodeError):
            imcea.decode(written, strict=strict)


@pytest.mark.parametrize(
    "written",
    [
        "",
        "   ",
        "<>",
        "IMCEASMTP-@d",  # empty address
        "IMCEASMTP-a@",  # empty domain
        "IMCEASMTP-a+40b",  # no domain at all
        "IMCEASMTP-UTF8-@d",  # empty after the marker
        "SMTP-a@d",  # no prefix
        "user@example.com",
        "IMCEA",
    ],
)
def test_empty_or_missing_parts_are_rejected(written: str) -> None:
    for strict in (True, False):
        with pytest.raises(imcea.DecodeError):
            imcea.decode(written, strict=strict)


@pytest.mark.parametrize(
    ("written", "address"),
    [
        ("IMCEASMTP-a+G1b@d", "a+G1b"),
        ("IMCEASMTP-a+@d", "a+"),
        ("IMCEASMTP-+@d", "+"),
        ("IMCEASMTP-a+4@d", "a+4"),
        ("IMCEASMTP-a+4+40@d", "a+4@"),
        ("IMCEASMTP-a++40@d", "a+@"),
        ("IMCEASMTP-a b/c@d", "a b/c"),
        ("IMCEASMTP-x_y z@d", "x/y z"),
        ("IMCEASMTP-café@d", "café"),
        ("IMCEASMTP-中+40@d", "中@"),
        ('IMCEASMTP-a<b>"c"@d', 'a<b>"c"'),
        # a backslash is only ever itself
        ("IMCEASMTP-a\\x41+41@d", "a\\x41A"),
        ("IMCEASMTP-\\+5C\\N{DIGIT ONE}@d", "\\\\\\N{DIGIT ONE}"),
        # raw characters after the marker stand for themselves; the escapes are UTF-8
        ("IMCEASMTP-UTF8-caf+C3+A9 中@d", "café 中"),
        ("IMCEASMTP-UTF8-café@d", "café"),
        ("IMCEASMTP-UTF8-a+G1@d", "a+G1"),
    ],
)
def test_lenient_mode_keeps_what_it_cannot_read(written: str, address: str) -> None:
    assert imcea.decode(written, strict=False) == ("SMTP", address, "d")
    with pytest.raises(imcea.DecodeError):
        imcea.decode(written)


def test_lenient_mode_keeps_a_lone_surrogate() -> None:
    value = imcea.decode("IMCEASMTP-UTF8-+C3+A9\ud800@d", strict=False)
    assert value.address == "é\ud800"
    assert imcea.decode("IMCEASMTP-a\udfff@d", strict=False).address == "a\udfff"


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("IMCEAX-ab+G1@x", "'+G1' at position 9"),
        ("IMCEAX-ab+4@x", "'+4' at position 9"),
        ("IMCEAX-ab+@x", "'+' at position 9"),
        ("IMCEAX-+40+41+zz@x", "'+zz' at position 13"),
        ("IMCEAX-a b@x", "' ' at position 8"),
        ("IMCEAX-ab.c@x", "'.' at position 9"),
        ("IMCEAX-a/b@x", "'/' at position 8"),
        ("IMCEAX-café@x", "'é' at position 10"),
        ("IMCEAX-UTF8-+E4+B8+G1@x", "'+G1' at position 18"),
        ("  <IMCEAX-ab+G1@x>", "'+G1' at position 12"),
    ],
)
def test_strict_errors_name_the_character_and_position(written: str, message: str) -> None:
    with pytest.raises(imcea.DecodeError) as info:
        imcea.decode(written)
    assert message in str(info.value)
    assert isinstance(info.value, imcea.Error)
    assert isinstance(info.value, ValueError)


# ---------------------------------------------------------------------------
# encode errors


@pytest.mark.parametrize(
    "addrtype", ["", "ABCDEFGHIJ", "SM TP", "SMTP-", "ÉX", "S_MTP", "\u0661", "SMTP\n", None, 1]
)
def test_encode_rejects_a_bad_type(addrtype: Any) -> None:
    with pytest.raises(imcea.EncodeError):
        imcea.encode(addrtype, "a", "d.example")


def test_encode_upper_cases_the_type() -> None:
    assert imcea.encode("smtp", "a", "d") == "IMCEASMTP-a@d"
    assert imcea.encode("x400", "a", "d") == "IMCEAX400-a@d"
    assert imcea.encode("abcdefghi", "a", "d") == "IMCEAABCDEFGHI-a@d"


@pytest.mark.parametrize("address", ["", None, b"a"])
def test_encode_rejects_an_empty_address(address: Any) -> None:
    with pytest.raises(imcea.EncodeError):
        imcea.encode("SMTP", address, "d.example")


def test_encode_rejects_an_address_that_cannot_be_written() -> None:
    with pytest.raises(imcea.EncodeError, match="position 1"):
        imcea.encode("SMTP", "a\ud800", "d.example")


@pytest.mark.parametrize(
    "domain",
    [
        "",
        "a b.example",
        "exa_mple.com",
        "a@b.example",
        "-bad.example",
        "bad-.example",
        "a..b",
        "a" * 64 + ".example",
        ".example",
        "[]",
        "[1.2.3]",
        "[999.0.0.1]",
        "[not an address]",
        "[IPv6:zz::1]",
        "[192.0.2.1",
        "**",
        "*.example",
        "\u2603\u2603 .example",
        None,
    ],
)
def test_encode_rejects_a_bad_domain(domain: Any) -> None:
    with pytest.raises(imcea.EncodeError):
        imcea.encode("SMTP", "a", domain)


# ---------------------------------------------------------------------------
# the Encapsulated value


def test_encapsulated_compares_and_unpacks_like_a_tuple() -> None:
    value = imcea.decode("IMCEASMTP-user+40example+2Ecom@ims.contoso.com")
    expected = ("SMTP", "user@example.com", "ims.contoso.com")
    assert value == expected
    assert expected == value
    assert value != ("SMTP", "user@example.com", "other.example")
    assert value != ("SMTP", "user@example.com")
    assert hash(value) == hash(expected)
    addrtype, address, domain = value
    assert (addrtype, address, domain) == expected
    assert (value.addrtype, value.address, value.domain) == expected
    assert value == imcea.decode("imceasmtp-user+40example+2ecom@ims.contoso.com")
    assert tuple(value) == expected


def test_is_encapsulated() -> None:
    assert imcea.is_encapsulated("IMCEASMTP-a+40b@d")
    assert imcea.is_encapsulated("  <imceaex-_O=ORG@d>")
    assert not imcea.is_encapsulated("user@example.com")
    assert not imcea.is_encapsulated("IMCEASMTP-a+4@d")  # strict mode
    assert not imcea.is_encapsulated("IMCEASMTP-@d")
    assert not imcea.is_encapsulated("")


# ---------------------------------------------------------------------------
# X500 and the pitfalls of the known converters (§1.4)

KB_ADDRESS = str(KB2807779["encapsulated"])
KB_X500 = "X500:" + str(KB2807779["address"])


def test_x500_of_the_kb2807779_example() -> None:
    assert KB_X500 == (
        "X500:/O=MMS/OU=EXCHANGE ADMINISTRATIVE GROUP (FYDIBOHF23SPDLT)/CN=RECIPIENTS"
        "/CN=User6ed4e168-addd-4b03-95f5-b9c9a421957358d"
    )
    assert imcea.x500(KB_ADDRESS) == KB_X500


def test_x500_plus_5f_becomes_underscore_not_slash() -> None:
    # replacing "+5F" by "_" before "_" by "/" gives ".../cn=john/jacob.smith"
    text = (
        "IMCEAEX-_O=CONTOSO_OU=First+20Administrative+20Group_cn=Recipients"
        "_cn=john+5Fjacob+2Esmith@contoso.com"
    )
    assert imcea.x500(text) == (
        "X500:/O=CONTOSO/OU=First Administrative Group/cn=Recipients/cn=john_jacob.smith"
    )


def test_x500_at_sign_inside_the_dn() -> None:
    text = "IMCEAEX-_O=ORG_OU=SITE_CN=RECIPIENTS_CN=user+40example+2Ecom@contoso.com"
    assert imcea.x500(text) == "X500:/O=ORG/OU=SITE/CN=RECIPIENTS/CN=user@example.com"


def test_x500_comma() -> None:
    text = "IMCEAEX-_O=ORG_OU=SITE_CN=RECIPIENTS_CN=Smith+2C+20John@contoso.com"
    assert imcea.x500(text) == "X500:/O=ORG/OU=SITE/CN=RECIPIENTS/CN=Smith, John"


def test_x500_apostrophe() -> None:
    text = "IMCEAEX-_O=ORG_OU=SITE_CN=RECIPIENTS_CN=O+27Brien@contoso.com"
    assert imcea.x500(text) == "X500:/O=ORG/OU=SITE/CN=RECIPIENTS/CN=O'Brien"


def test_x500_lower_case_hex() -> None:
    assert imcea.x500("IMCEAEX-_o=org_cn=a+5fb+2ec+2cd+27e+40f+28g+29@x") == (
        "X500:/o=org/cn=a_b.c,d'e@f(g)"
    )
    # a pipeline that lower-cases whole addresses
    assert imcea.x500(KB_ADDRESS.lower()) == "X500:" + str(KB2807779["address"]).lower()


@pytest.mark.parametrize(
    "decorated",
    [
        f"<{KB_ADDRESS}>",
        f"  {KB_ADDRESS}  ",
        f"\t<{KB_ADDRESS}>\r\n",
        f'"{KB_ADDRESS}"',
    ],
)
def test_x500_surrounding_brackets_and_white_space(decorated: str) -> None:
    assert imcea.x500(decorated) == KB_X500


@pytest.mark.parametrize(
    "wrapped",
    [
        # as an NDR prints it: wrapped, the continuation indented
        KB_ADDRESS[:76] + "\n    " + KB_ADDRESS[76:],
        KB_ADDRESS[:76] + "\r\n\t" + KB_ADDRESS[76:],
        KB_ADDRESS[:60] + " \n  " + KB_ADDRESS[60:120] + "\n  " + KB_ADDRESS[120:],
        "  <" + KB_ADDRESS[:40] + "\n" + KB_ADDRESS[40:] + ">\n",
    ],
)
def test_x500_ndr_wrapped_address(wrapped: str) -> None:
    assert "\n" in wrapped
    assert imcea.x500(wrapped) == KB_X500


@pytest.mark.parametrize(
    "text",
    [
        "IMCEASMTP-user+40example+2Ecom@contoso.com",
        "IMCEAFAX-1234567890@example.com",
        "IMCEAX400-c=US+3Ba=+20+3Bp=Microsoft@microsoft.com",
        "IMCEANOTES-_O=ORG@contoso.com",
    ],
)
def test_x500_rejects_other_types(text: str) -> None:
    with pytest.raises(imcea.DecodeError):
        imcea.x500(text)


@pytest.mark.parametrize(
    "text",
    ["IMCEAEX-ORG@contoso.com", "user@example.com", "", "IMCEAEX-_O=ORG+4@contoso.com"],
)
def test_x500_rejects_what_is_not_a_legacy_dn(text: str) -> None:
    with pytest.raises(imcea.DecodeError):
        imcea.x500(text)


def test_x500_type_is_accepted() -> None:
    assert imcea.x500("IMCEAX500-_O=ORG_CN=X@contoso.com") == "X500:/O=ORG/CN=X"
    assert imcea.x500("imceaex-_O=ORG_CN=X@contoso.com") == "X500:/O=ORG/CN=X"


def test_x500_drops_the_outer_domain() -> None:
    result = imcea.x500(KB_ADDRESS)
    assert "mgd.domain.com" not in result
    assert "@" not in result
    assert result.endswith("/CN=User6ed4e168-addd-4b03-95f5-b9c9a421957358d")


# ---------------------------------------------------------------------------
# find_all


def _found(text: str) -> list[imcea.Found]:
    found = list(imcea.find_all(text))
    for item in found:
        assert text[item.start : item.end] == item.text
    return found


NDR = (
    "Delivery has failed to these recipients or groups:\n"
    "\n"
    "IMCEAEX-_O=ORG_OU=SITE_CN=RECIPIENTS_CN=ALIAS@domain.com\n"
    "The e-mail address you entered couldn't be found.\n"
    "\n"
    "Diagnostic information for administrators:\n"
    "Generating server: mail.contoso.com\n"
    "imceasmtp-user+40example+2Ecom@ims.contoso.com\n"
    "#550 5.1.1 RESOLVER.ADR.ExRecipNotFound; not found ##\n"
    "Original message headers:\n"
    'To: <ImCeAfax-1234567890@example.com>, "Jim" <IMCEANOTES-+22Jim+20Lokay+22@ENRON.com>\n'
)


def test_find_all_in_an_ndr() -> None:
    found = _found(NDR)
    assert [item.value for item in found] == [
        ("EX", "/O=ORG/OU=SITE/CN=RECIPIENTS/CN=ALIAS", "domain.com"),
        ("SMTP", "user@example.com", "ims.contoso.com"),
        ("FAX", "1234567890", "example.com"),
        ("NOTES", '"Jim Lokay"', "ENRON.com"),
    ]
    expected_texts = [
        "IMCEAEX-_O=ORG_OU=SITE_CN=RECIPIENTS_CN=ALIAS@domain.com",
        "imceasmtp-user+40example+2Ecom@ims.contoso.com",
        "ImCeAfax-1234567890@example.com",
        "IMCEANOTES-+22Jim+20Lokay+22@ENRON.com",
    ]
    assert [item.text for item in found] == expected_texts
    assert [item.start for item in found] == [NDR.index(text) for text in expected_texts]
    assert [item.end for item in found] == [NDR.index(text) + len(text) for text in expected_texts]
    assert all(isinstance(item, imcea.Found) for item in found)
    assert all(isinstance(item.value, imcea.Encapsulated) for item in found)


@pytest.mark.parametrize("row", [row for row in ROWS if row["strict"]], ids=_row_id)
def test_find_all_finds_each_corpus_address(row: dict[str, Any]) -> None:
    text = f"Remote recipient: {row['encapsulated']}\nend"
    found = _found(text)
    assert len(found) == 1
    assert found[0].text == row["encapsulated"]
    assert found[0].start == len("Remote recipient: ")
    assert found[0].value == (row["type"], row["address"], row["domain"])


@pytest.mark.parametrize("line_break", ["\n", "\r\n"])
@pytest.mark.parametrize("indent", ["", "    ", "\t", " \t "])
def test_find_all_joins_an_address_wrapped_over_lines(line_break: str, indent: str) -> None:
    wrapped = KB_ADDRESS[:76] + line_break + indent + KB_ADDRESS[76:]
    text = f"Remote Server returned '550 5.1.1 RESOLVER.ADR.ExRecipNotFound'\n\n{wrapped}\n"
    found = _found(text)
    assert len(found) == 1
    assert found[0].text == wrapped
    assert found[0].start == text.index("IMCEAEX")
    assert found[0].value == (KB2807779["type"], KB2807779["address"], KB2807779["domain"])


def test_find_all_joins_several_wrapped_lines() -> None:
    wrapped = KB_ADDRESS[:50] + "\n  " + KB_ADDRESS[50:100] + "\n  " + KB_ADDRESS[100:]
    found = _found("x\n" + wrapped + "\ny")
    assert [item.text for item in found] == [wrapped]
    assert found[0].start == 2
    assert imcea.x500(found[0].text) == KB_X500


def test_find_all_does_not_glue_lines_that_each_start_with_a_prefix() -> None:
    text = "IMCEAEX-_O=ORG_CN=FIRST\nIMCEAEX-_O=ORG_CN=SECOND@contoso.com\n"
    found = _found(text)
    assert [item.value for item in found] == [("EX", "/O=ORG/CN=SECOND", "contoso.com")]
    assert found[0].start == text.index("IMCEAEX-_O=ORG_CN=SECOND")
    indented = "IMCEAEX-_O=ORG_CN=FIRST\n    imceaex-_O=ORG_CN=SECOND@contoso.com"
    found = _found(indented)
    assert [item.text for item in found] == ["imceaex-_O=ORG_CN=SECOND@contoso.com"]


def test_find_all_skips_candidates_that_do_not_decode() -> None:
    text = (
        "bad escape IMCEAX-ab+G1@x.example, "
        "empty IMCEAX-@x.example, "
        "long type IMCEAABCDEFGHIJ-a@x.example, "
        "no domain IMCEAX-a@ and "
        "good IMCEAX-ab+41@x.example"
    )
    found = _found(text)
    assert [item.value for item in found] == [("X", "abA", "x.example")]
    assert found[0].text == "IMCEAX-ab+41@x.example"


def test_find_all_trailing_sentence_dot_is_not_part_of_the_domain() -> None:
    text = "Send it to IMCEASMTP-a+40b+2Ecom@relay.example. Thanks."
    found = _found(text)
    assert [item.value for item in found] == [("SMTP", "a@b.com", "relay.example")]
    assert found[0].text == "IMCEASMTP-a+40b+2Ecom@relay.example"
    assert found[0].end == text.index(". Thanks")


def test_find_all_wildcard_and_literal_domains() -> None:
    text = "IMCEASMTP-swadmin+40corporate+2Ecom@* and IMCEASMTP-a+40b@[192.0.2.1]."
    assert [item.value for item in _found(text)] == [
        ("SMTP", "swadmin@corporate.com", "*"),
        ("SMTP", "a@b", "[192.0.2.1]"),
    ]


def test_find_all_nothing_to_find() -> None:
    assert _found("") == []
    assert _found("user@example.com, IMCEA, imcea-, IMCEASMTP-, @") == []
