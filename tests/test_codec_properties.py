"""Property tests of the IMCEA codec: round trips, output alphabet, robustness, linear time."""

from __future__ import annotations

import contextlib
import multiprocessing
import re
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imcea

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
types = st.text(alphabet=ALNUM, min_size=1, max_size=9)
# LDH labels: letters, digits and hyphens, not starting or ending with a hyphen
_label = st.text(alphabet=ALNUM + "-", min_size=1, max_size=14).map(lambda s: s.strip("-") or "x")
hostnames = st.lists(_label, min_size=1, max_size=4).map(".".join)
ipv4_literals = st.tuples(*[st.integers(0, 255)] * 4).map(
    lambda parts: "[{}.{}.{}.{}]".format(*parts)
)
domains = hostnames | st.just("*") | ipv4_literals

# every code point, lone surrogates included (st.text()'s default alphabet leaves them out)
any_character = st.characters()
addresses = st.text(min_size=1)

VOCABULARY = [
    "IMCEA",
    "imcea",
    "SMTP-",
    "EX-",
    "+",
    "+4",
    "+40",
    "UTF8-",
    "@",
    "_",
    "\n",
    "<",
    ">",
    '"',
    "*",
    "[",
    "]",
    " ",
    "\r\n",
    "x.example",
]
hostile_text = st.lists(st.sampled_from(VOCABULARY) | any_character, max_size=40).map("".join)
# Text with the shape of an address, so that the checks past the prefix and the type are
# reached too: escapes good and bad, raw non-ASCII, a lone surrogate, backslashes.
BODY_VOCABULARY = ["+", "+4", "+40", "+E4", "+b8", "+C3", "+A9", "_", "-", "=", "a", "Z"]
BODY_VOCABULARY += ["0", " ", "\u00e9", "\u4e2d", "\udc80", "\\", "\\x", "UTF8-", "@", "\n"]
structured_text = st.builds(
    "{}{}-{}{}@{}".format,
    st.sampled_from(["IMCEA", "imcea", "ImCeA", " <IMCEA"]),
    types,
    st.sampled_from(["UTF8-", "", "utf8-"]),
    st.lists(st.sampled_from(BODY_VOCABULARY) | any_character, max_size=20).map("".join),
    domains,
)
arbitrary_text = st.text(alphabet=any_character) | hostile_text

LOCAL_PART = re.compile(r"IMCEA[A-Z0-9]{1,9}-[A-Za-z0-9=_+-]*")


# ---------------------------------------------------------------------------
# round trips and the output alphabet


@SETTINGS
@given(addrtype=types, address=addresses, domain=domains)
def test_encode_output(addrtype: str, address: str, domain: str) -> None:
    encoded = imcea.encode(addrtype, address, domain)
    # decode(encode(x)) == x, in both modes
    for strict in (True, False):
        value = imcea.decode(encoded, strict=strict)
        assert value.addrtype == addrtype.upper()
        assert value.address == address
        assert value.domain == domain
    # the encoded part uses only the safe alphabet; the domain is written as given
    local, at, rest = encoded.rpartition("@")
    assert at == "@"
    assert rest == domain
    assert LOCAL_PART.fullmatch(local), local
    # the output is canonical: str() of its decoded value gives it back
    assert str(imcea.decode(encoded)) == encoded
    assert imcea.is_encapsulated(encoded)


@SETTINGS
@given(addrtype=types, address=st.text(alphabet=any_character, min_size=1), domain=domains)
def test_round_trip_or_encode_error_with_surrogates(
    addrtype: str, address: str, domain: str
) -> None:
    if any("\ud800" <= char <= "\udfff" for char in address):
        with pytest.raises(imcea.EncodeError):
            imcea.encode(addrtype, address, domain)
    else:
        assert imcea.decode(imcea.encode(addrtype, address, domain)) == (
            addrtype.upper(),
            address,
            domain,
        )


@SETTINGS
@given(
    before=arbitrary_text,
    after=arbitrary_text,
    addrtype=types,
    address=addresses,
    domain=domains,
)
def test_find_all_finds_an_encoded_address_in_any_text(
    before: str, after: str, addrtype: str, address: str, domain: str
) -> None:
    encoded = imcea.encode(addrtype, address, domain)
    text = f"{before} {encoded} {after}"
    start = len(before) + 1
    matches = [found for found in imcea.find_all(text) if found.start == start]
    assert len(matches) == 1
    assert matches[0].text == encoded
    assert matches[0].value == (addrtype.upper(), address, domain)


# ---------------------------------------------------------------------------
# robustness: nothing but imcea.Error, whatever the input


def _decodes(text: str, strict: bool) -> imcea.Encapsulated | None:
    try:
        return imcea.decode(text, strict=strict)
    except imcea.Error:
        return None


def _check_decode_and_x500(text: str) -> None:
    strict = _decodes(text, strict=True)
    lenient = _decodes(text, strict=False)
    assert imcea.is_encapsulated(text) is (strict is not None)
    if strict is not None:
        # whatever strict mode reads, the tolerant reader reads the same way
        assert lenient == strict
        assert strict.addrtype == strict.addrtype.upper()
    try:
        result = imcea.x500(text)
    except imcea.Error:
        return
    assert result.startswith("X500:/")


@SETTINGS
@given(text=arbitrary_text)
def test_decode_and_x500_raise_only_imcea_errors(text: str) -> None:
    _check_decode_and_x500(text)


@SETTINGS
@given(text=structured_text)
def test_address_shaped_text_raises_only_imcea_errors(text: str) -> None:
    _check_decode_and_x500(text)


@SETTINGS
@given(text=arbitrary_text | structured_text)
def test_find_all_raises_nothing_and_slices_the_text(text: str) -> None:
    end = 0
    for found in imcea.find_all(text):
        assert end <= found.start < found.end
        end = found.end
        assert text[found.start : found.end] == found.text
        assert isinstance(found.value, imcea.Encapsulated)
        if "\n" not in found.text:
            assert imcea.decode(found.text) == found.value


@pytest.mark.parametrize("value", [None, 1, b"IMCEASMTP-a@b", ["IMCEASMTP-a@b"]])
def test_non_strings_raise_imcea_errors(value: object) -> None:
    calls: list[Callable[[Any], object]] = [
        imcea.decode,
        imcea.x500,
        lambda v: list(imcea.find_all(v)),
    ]
    for call in calls:
        with pytest.raises(imcea.Error):
            call(value)
    check: Callable[[Any], bool] = imcea.is_encapsulated
    assert check(value) is False


# ---------------------------------------------------------------------------
# linear time on hostile 1 MB inputs
#
# At n = 10**6 characters a quadratic algorithm does about n**2 / 2 = 5 * 10**11 steps:
# over 500 s even at 1 ns a step, against a bound of 2 s for each call.  Each input is
# run in a forked child so that such a regression fails after TIMEOUT instead of hanging.

MB = 10**6
CALL_BOUND = 2.0  # seconds, per call
TIMEOUT = 60.0  # seconds, for all the calls on one input

HOSTILE = {
    "long-local-part-no-at": "IMCEAA-" + "a" * MB,
    "long-local-part": "IMCEAA-" + "a" * MB + "@x.example",
    "long-type": "IMCEA" + "A" * MB + "-a@x.example",
    "wrapped-lines": "IMCEAA-a\n" * 150_000,
    "wrapped-lines-at-end": "IMCEAEX-_O=ORG\n" + "  a\n" * 250_000 + "  b@x.example",
    "plus-signs": "IMCEAA-" + "+" * MB + "@x.example",
    "bad-escapes": "IMCEAA-" + "+4" * (MB // 2) + "@x.example",
    "good-escapes": "IMCEAA-" + "+41" * (MB // 3) + "@x.example",
    "at-signs": "@" * MB,
    "prefixes": "imcea" * (MB // 5),
    "ex-prefixes": "IMCEAEX-" * (MB // 8),
    "ex-prefixes-spaced": "IMCEAEX-a " * (MB // 10),
    "ex-prefixes-lines": "IMCEAEX-_O=A\n" * (MB // 13 + 1),
    "underscores": "_" * MB,
    "underscore-address": "IMCEAEX-" + "_" * MB + "@x.example",
    "blanks-before-break": "IMCEAEX-_O=A" + " " * MB + "x\n@x.example",
    "blanks-and-breaks": " \t" * (MB // 2) + "\n",
    "brackets": "<" * MB + ">" * MB,
    "utf8-raw": "IMCEAA-UTF8-" + "\u4e2d" * MB + "@x.example",
    "utf8-escapes": "IMCEAA-UTF8-" + "+E4+B8+AD" * (MB // 9) + "@x.example",
    "long-domain": "IMCEAA-a@" + "x." * (MB // 2),
}

_CALLS: dict[str, Callable[[str], object]] = {
    "decode": imcea.decode,
    "decode-lenient": lambda text: imcea.decode(text, strict=False),
    "is_encapsulated": imcea.is_encapsulated,
    "x500": imcea.x500,
    "find_all": lambda text: list(imcea.find_all(text)),
}


def _timings(text: str) -> dict[str, float]:
    timings = {}
    for name, call in _CALLS.items():
        start = time.perf_counter()
        with contextlib.suppress(imcea.Error):
            call(text)
        timings[name] = time.perf_counter() - start
    return timings


def _child(text: str, connection: Connection) -> None:
    try:
        connection.send(_timings(text))
    except BaseException as exc:  # reported to the parent as a failure
        connection.send(f"{type(exc).__name__}: {exc}")


def _run_isolated(text: str) -> dict[str, float] | str:
    if "fork" not in multiprocessing.get_all_start_methods():
        return _timings(text)
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(text, sender), daemon=True)
    process.start()
    sender.close()
    try:
        if not receiver.poll(TIMEOUT):
            pytest.fail(f"no result after {TIMEOUT} s: super-linear time")
        result: dict[str, float] | str = receiver.recv()
        return result
    finally:
        process.kill()
        process.join()


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_takes_linear_time(name: str) -> None:
    text = HOSTILE[name]
    assert len(text) >= MB
    timings = _run_isolated(text)
    assert isinstance(timings, dict), timings
    slow = {call: round(seconds, 3) for call, seconds in timings.items() if seconds > CALL_BOUND}
    assert not slow, f"{name}: {slow}"


def test_hostile_valid_inputs_decode() -> None:
    assert imcea.decode(HOSTILE["long-local-part"]).address == "a" * MB
    assert imcea.decode(HOSTILE["underscore-address"]).address == "/" * MB
    assert imcea.decode(HOSTILE["good-escapes"]).address == "A" * (MB // 3)
    assert imcea.decode(HOSTILE["utf8-escapes"]).address == "\u4e2d" * (MB // 9)
    assert imcea.decode(HOSTILE["plus-signs"], strict=False).address == "+" * MB
    found = list(imcea.find_all(HOSTILE["wrapped-lines-at-end"]))
    assert [item.value.address for item in found] == ["/O=ORG" + "a" * 250_000 + "b"]
