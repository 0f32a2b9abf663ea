"""The log readers: Postfix mail logs, Exchange message tracking logs and exports, JSON
lines; sniffing, gzip, streams, bad input, bounded memory."""

from __future__ import annotations

import gzip
import io
import random
import re
import shutil
import sys
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import imcea
from imcea.sources import Counts, Format, SourceError, read_lines, read_log, sniff

LOGS = Path(__file__).parent / "data" / "logs"

# (id, sender, recipients, ip, authenticated, server_ip): checked by hand against the logs
POSTFIX_MAIL = [
    # a recipient refused inside an accepted transaction: its client's login applies
    ("7B1C21C0456", "alice@contoso.com", ("nobody@contoso.com",), "198.51.100.23", True, None),
    # two deliveries of one orig_to (an alias expanded) are one recipient
    (
        "4F2A31C0123",
        "orders@partner.example",
        ("sales@contoso.com", "bob@contoso.com"),
        "203.0.113.45",
        False,
        None,
    ),
    (19, "spammer@bad.example", ("victim@elsewhere.example",), "203.0.113.99", False, None),
    (
        20,
        "spammer@bad.example",
        ("IMCEASMTP-victim+40elsewhere+2Eexample@contoso.com",),
        "203.0.113.99",
        False,
        None,
    ),
    # delivery logged before qmgr's from= line: out of order, still one message
    ("2C3D41C0ABC", "news@partner.example", ("jdoe@contoso.com",), "2001:db8::25", False, None),
    (28, "", ("x@elsewhere.example",), "2001:db8::1", False, None),  # [IPv6:...] form
    ("9C3D41C0789", "backup@mx1.contoso.com", ("ops@partner.example",), "127.0.0.1", False, None),
    # the same queue id in another instance; orig_client= behind the content filter
    (
        "4F2A31C0123",
        "carol@contoso.com",
        ("dave@partner.example", "erin@gone.example"),
        "198.51.100.23",
        False,
        None,
    ),
    # deferred, then sent: one recipient
    (
        "7B1C21C0456",
        "alice@contoso.com",
        ("partner@elsewhere.example",),
        "198.51.100.23",
        True,
        None,
    ),
]

POSTFIX_JOURNAL = [
    (
        "B2C3D4E5F6",
        "scanner@branch.contoso.com",
        ("scans@contoso.com",),
        "10.1.2.3",
        False,
        None,
    ),
    (
        "A1B2C3D4E5",
        "newsletter@lists.example",
        (
            "postmaster",
            '"john smith"@contoso.com',
            "IMCEAEX-_O=CONTOSO_OU=FIRST+20ADMINISTRATIVE+20GROUP_CN=RECIPIENTS_CN=JDOE@contoso.com",
        ),
        "192.0.2.200",
        False,
        None,
    ),
]

# the rotated, compressed file first: a message begun in it ends in the next one
POSTFIX_ROTATED = [
    (
        5,
        "probe@203.0.113.5",
        ("user%elsewhere.example@contoso.com",),
        "203.0.113.5",
        False,
        None,
    ),
    (
        "3kB9Qz1XyLz9sWq",
        "bob@contoso.com",
        ("friend@elsewhere.example", "family@elsewhere.example"),
        "198.51.100.77",
        True,
        None,
    ),
    ("4kC0Rz2YzMz0tXr", "billing@vendor.example", ("ap@contoso.com",), "192.0.2.33", False, None),
]

MSGTRK_2013 = [
    (
        "<a1@partner.example>",
        "orders@partner.example",
        ("jdoe@contoso.com", "sales@contoso.com"),
        "203.0.113.45",
        False,
        "192.0.2.10",
    ),
    (
        "<v6@vendor.example>",
        "billing@vendor.example",
        ("ap@contoso.com",),
        "2001:db8::77",
        False,
        "2001:db8::10",
    ),
    (
        "<relay@laptop.example.org>",
        "",
        ("IMCEASMTP-victim+40elsewhere+2Eexample@contoso.com",),
        "198.51.100.23",
        False,
        "192.0.2.10",
    ),
    (13, "user@branch.example", ("helpdesk@contoso.com",), "192.0.2.55", False, "192.0.2.10"),
]

# columns in an unusual order; a STOREDRIVER receive is not an SMTP transaction
MSGTRK_2007 = [
    (
        "<2007-1@partner.example>",
        "old@partner.example",
        ("legacy@contoso.com",),
        "192.168.0.1",
        False,
        "10.0.0.1",
    ),
    (
        "<2007-3@contoso.com>",
        "legacy@contoso.com",
        ("a@elsewhere.example", "b@elsewhere.example"),
        "10.0.0.44",
        False,
        "10.0.0.1",
    ),
]

TRACKING_EXPORT = [
    (
        "<exp1@laptop.example.org>",
        "alice@contoso.com",
        ("partner@elsewhere.example", "jdoe@contoso.com"),
        "198.51.100.23",
        False,
        "192.0.2.10",
    ),
]

MESSAGE_TRACE = [
    (
        "<t1@vendor.example>",
        "news@vendor.example",
        ("jdoe@contoso.onmicrosoft.com",),
        "203.0.113.80",
        False,
        None,
    ),
    (
        "<t3@bad.example>",
        "spam@bad.example",
        ("ceo@contoso.onmicrosoft.com",),
        "2001:db8:dead::1",
        False,
        None,
    ),
]


def _fields(record: object) -> tuple[object, ...]:
    assert isinstance(record, imcea.Record)
    return (
        record.id,
        record.sender,
        record.recipients,
        record.ip,
        record.authenticated,
        record.server_ip,
    )


def _read(paths: object, **kwargs: object) -> tuple[list[object], Counts, list[str]]:
    errors: list[SourceError] = []
    log = read_log(paths, on_error=errors.append, **kwargs)  # type: ignore[arg-type]
    records = list(log)
    assert all(isinstance(e, SourceError) and isinstance(e, imcea.Error) for e in errors)
    return records, log.counts, [str(e) for e in errors]


# ---------------------------------------------------------------------------
# each reader on its samples


@pytest.mark.parametrize(
    ("files", "expected", "counts", "errors"),
    [
        (
            ["postfix-mail.log"],
            POSTFIX_MAIL,
            Counts(lines=57, records=9, skipped=16, incomplete=4, bad=3),
            [
                "postfix-mail.log: line 48: truncated delivery line",
                "postfix-mail.log: line 49: reject: RCPT line without",
                "postfix-mail.log: line 50: client address 'not-an-ip' is not an IP address",
            ],
        ),
        (
            ["postfix-journal-short.log"],
            POSTFIX_JOURNAL,
            Counts(lines=13, records=2, skipped=3, incomplete=0, bad=0),
            [],
        ),
        (
            ["postfix-rfc3339.log.1.gz", "postfix-rfc3339.log"],
            POSTFIX_ROTATED,
            Counts(lines=12, records=3, skipped=2, incomplete=0, bad=0),
            [],
        ),
        (
            ["MSGTRK2026030308-1.LOG"],
            MSGTRK_2013,
            Counts(lines=14, records=4, skipped=8, incomplete=0, bad=2),
            [
                "MSGTRK2026030308-1.LOG: line 12: client address '192.0.2.300' is not an IP",
                "MSGTRK2026030308-1.LOG: line 14: truncated row: 10 fields, expected at least 25",
            ],
        ),
        (
            ["MSGTRK20090601-1.LOG"],
            MSGTRK_2007,
            Counts(lines=8, records=2, skipped=6, incomplete=0, bad=0),
            [],
        ),
        (
            ["tracking-export.csv"],
            TRACKING_EXPORT,
            Counts(lines=6, records=1, skipped=3, incomplete=0, bad=1),
            ["tracking-export.csv: line 6: the recipients column holds 'System.String[]'"],
        ),
        (
            ["message-trace.csv"],
            MESSAGE_TRACE,
            Counts(lines=4, records=2, skipped=2, incomplete=0, bad=0),
            [],
        ),
    ],
    ids=lambda v: v[0] if isinstance(v, list) and v and isinstance(v[0], str) else None,
)
def test_samples(
    files: list[str], expected: list[tuple[object, ...]], counts: Counts, errors: list[str]
) -> None:
    records, got_counts, got_errors = _read([LOGS / f for f in files])
    assert [_fields(r) for r in records] == expected
    assert got_counts == counts
    assert len(got_errors) == len(errors)
    for got, want in zip(got_errors, errors, strict=True):
        assert got.startswith(str(LOGS / want.split(":")[0])), got
        assert want.split(": ", 1)[1] in got


@pytest.mark.parametrize(
    "stamp",
    [
        "Mar  3 09:14:01",  # syslog (RFC 3164)
        "Mar 13 09:14:01",
        "Mar 03 09:14:01",  # journalctl -o short
        "Mar 03 09:14:01.123456",  # journalctl -o short-precise
        "2026-03-03T09:14:01+0100",  # journalctl -o short-iso
        "2026-03-03T09:14:01.123456+01:00",  # rsyslog's RFC 3339 format
        "2026-03-03T08:14:01Z",
        "2026-03-03 09:14:01",
    ],
)
def test_time_stamps(stamp: str) -> None:
    lines = [
        f"{stamp} mx postfix/smtpd[1]: 1A2B3C4D5E: client=unknown[192.0.2.1]",
        f"{stamp} mx postfix/qmgr[2]: 1A2B3C4D5E: from=<a@b.example>, size=1, nrcpt=1",
        f"{stamp} mx postfix/smtp[3]: 1A2B3C4D5E: to=<c@d.example>, relay=none, status=sent",
        f"{stamp} mx postfix/qmgr[2]: 1A2B3C4D5E: removed",
    ]
    assert sniff(lines) is Format.POSTFIX
    assert [_fields(r) for r in read_lines(lines)] == [
        ("1A2B3C4D5E", "a@b.example", ("c@d.example",), "192.0.2.1", False, None)
    ]


def test_postscreen_and_port_logging_rejects() -> None:
    lines = [
        "Mar  3 09:14:01 mx postfix/postscreen[9]: NOQUEUE: reject: RCPT from"
        " [203.0.113.5]:41022: 550 5.7.1 Service unavailable; client [203.0.113.5] blocked"
        " using zen.spamhaus.org; from=<a@b.example>, to=<c@d.example>, proto=ESMTP, helo=<x>",
        "Mar  3 09:14:02 mx postfix/smtpd[8]: NOQUEUE: reject: RCPT from h.example[2001:db8::7]:"
        "5001: 554 5.7.1 <e@f.example>: Relay access denied; from=<> to=<e@f.example> proto=SMTP",
    ]
    assert [_fields(r) for r in read_lines(lines)] == [
        (1, "a@b.example", ("c@d.example",), "203.0.113.5", False, None),
        (2, "", ("e@f.example",), "2001:db8::7", False, None),
    ]


def test_a_bad_line_raises_without_on_error() -> None:
    log = read_log(LOGS / "postfix-mail.log")
    with pytest.raises(SourceError, match=r"postfix-mail\.log: line 48: truncated") as info:
        list(log)
    assert info.value.line == 48
    assert info.value.path == str(LOGS / "postfix-mail.log")


def test_replay_takes_the_records() -> None:
    settings = imcea.Settings(reroute=True)
    out = list(imcea.replay(read_log(LOGS / "postfix-journal-short.log"), settings))
    assert [(r.id, r.decision.recipient) for r in out] == [
        ("B2C3D4E5F6", "scans@contoso.com"),
        ("A1B2C3D4E5", "postmaster"),
        ("A1B2C3D4E5", '"john smith"@contoso.com'),
        (
            "A1B2C3D4E5",
            "IMCEAEX-_O=CONTOSO_OU=FIRST+20ADMINISTRATIVE+20GROUP_CN=RECIPIENTS_CN=JDOE@contoso.com",
        ),
    ]


def test_json_lines_pass_through_for_the_replay_to_check() -> None:
    log = read_log(LOGS / "replay.jsonl")
    errors: list[imcea.RecordError] = []
    out = list(imcea.replay(log, imcea.Settings(), on_error=errors.append))
    assert [(r.id, r.line) for r in out] == [("m1", 1), ("m1", 1), (2, 2)]
    assert [e.line for e in errors] == [4]  # the replay's own line numbers
    assert log.counts == Counts(lines=4, records=3)
    assert log.formats == [(str(LOGS / "replay.jsonl"), Format.JSONL)]


# ---------------------------------------------------------------------------
# sniffing


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("postfix-mail.log", Format.POSTFIX),
        ("postfix-journal-short.log", Format.POSTFIX),
        ("postfix-rfc3339.log", Format.POSTFIX),
        ("postfix-rfc3339.log.1.gz", Format.POSTFIX),
        ("MSGTRK2026030308-1.LOG", Format.EXCHANGE),
        ("MSGTRK20090601-1.LOG", Format.EXCHANGE),
        ("tracking-export.csv", Format.EXCHANGE),
        ("message-trace.csv", Format.EXCHANGE),
        ("replay.jsonl", Format.JSONL),
    ],
)
def test_sniff_every_sample(name: str, expected: Format) -> None:
    log = read_log(LOGS / name, on_error=lambda e: None)
    list(log)
    assert log.formats == [(str(LOGS / name), expected)]
    if not name.endswith(".gz"):
        text = (LOGS / name).read_text(encoding="utf-8-sig")
        assert sniff(text.splitlines()) is expected


def test_sniff_a_file_of_no_format() -> None:
    with pytest.raises(SourceError) as info:
        list(read_log(LOGS / "notes.txt"))
    message = str(info.value)
    assert message.startswith(f"{LOGS / 'notes.txt'}: cannot tell the format")
    for name in ("'jsonl'", "'postfix'", "'exchange'"):
        assert name in message
    with pytest.raises(imcea.Error, match="no lines"):
        sniff(["", "  "])


def test_a_named_format_is_not_sniffed() -> None:
    records, counts, _ = _read(LOGS / "postfix-mail.log", format="exchange")
    assert records == []  # no header row fits: reported, nothing read
    assert counts.bad == 1
    with pytest.raises(SourceError, match="format: expected one of 'jsonl'"):
        read_log(LOGS / "postfix-mail.log", format="sendmail")


def test_an_empty_file_is_an_empty_log(tmp_path: Path) -> None:
    (tmp_path / "empty.log").write_bytes(b"")
    records, counts, errors = _read(tmp_path / "empty.log")
    assert (records, counts, errors) == ([], Counts(), [])


# ---------------------------------------------------------------------------
# gzip, streams, several files, bad bytes


def test_gzip_by_magic_bytes_not_name(tmp_path: Path) -> None:
    renamed = tmp_path / "maillog.1"  # gzip-compressed, without the .gz
    shutil.copy(LOGS / "postfix-rfc3339.log.1.gz", renamed)
    exchange = tmp_path / "MSGTRK.LOG.gz"
    exchange.write_bytes(gzip.compress((LOGS / "MSGTRK20090601-1.LOG").read_bytes()))
    records, _, _ = _read([renamed, LOGS / "postfix-rfc3339.log", exchange])
    assert [_fields(r) for r in records] == POSTFIX_ROTATED + MSGTRK_2007


def test_streams_and_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    data = (LOGS / "postfix-journal-short.log").read_bytes()
    records, _, _ = _read(io.BytesIO(gzip.compress(data)))
    assert [_fields(r) for r in records] == POSTFIX_JOURNAL

    class Stdin:
        buffer = io.BytesIO(data)

    monkeypatch.setattr(sys, "stdin", Stdin)
    records, _, _ = _read("-")
    assert [_fields(r) for r in records] == POSTFIX_JOURNAL
    with pytest.raises(SourceError, match="expected a binary stream"):
        list(read_log(io.StringIO("text")))


def test_utf16_export_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_bytes((LOGS / "message-trace.csv").read_text("utf-8-sig").encode("utf-16"))
    records, _, _ = _read(path)
    assert [_fields(r) for r in records] == MESSAGE_TRACE


def test_lines_given_one_by_one() -> None:
    text = (LOGS / "postfix-mail.log").read_text(encoding="utf-8")
    for lines in (text.splitlines(keepends=True), [x.encode() for x in text.splitlines()]):
        log = read_lines(lines, name="mail.log", on_error=lambda e: None)
        assert [_fields(r) for r in log] == POSTFIX_MAIL


def test_a_binary_file_names_the_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "mail.log"
    head = (LOGS / "postfix-journal-short.log").read_bytes()
    path.write_bytes(head + b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(SourceError) as info:
        list(read_log(path, on_error=lambda e: None))
    assert str(info.value) == (
        f"{path}: line 16: not a text file (a NUL byte at byte offset {len(head) + 8})"
    )
    with pytest.raises(SourceError, match="<stream>: cannot read the log: Compressed file ended"):
        list(read_log(io.BytesIO(b"\x1f\x8b\x08\x00"), format="postfix"))  # a .gz cut short


def test_invalid_utf8_is_a_bad_line_with_its_offset(tmp_path: Path) -> None:
    lines = (LOGS / "postfix-journal-short.log").read_bytes().splitlines(keepends=True)
    bad = b"Mar 03 10:00:01 relay2 postfix/smtpd[811]: caf\xe9 \xff\n"
    path = tmp_path / "mail.log"
    path.write_bytes(b"".join([*lines[:3], bad, *lines[3:]]))
    records, counts, errors = _read(path)
    offset = sum(map(len, lines[:3])) + bad.index(b"\xe9")
    assert errors == [f"{path}: line 4: not valid UTF-8 (byte 0xe9 at byte offset {offset})"]
    assert [_fields(r) for r in records] == POSTFIX_JOURNAL
    assert counts.lines == 14 and counts.bad == 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: read_log(42), "expected a path, a binary stream or a list of them, got 42"),
        (lambda: list(read_log([LOGS / "replay.jsonl", 42])), "expected a path or a binary"),
        (lambda: read_lines("one line"), "expected an iterable of lines, got str"),
        (lambda: list(read_lines(["{}", 42])), "line 2: expected a line of text, got int"),
    ],
)
def test_arguments_of_the_wrong_kind(call: object, message: str) -> None:
    with pytest.raises(SourceError, match=re.escape(message)):
        call()  # type: ignore[operator]


def test_a_missing_file() -> None:
    with pytest.raises(SourceError, match=r"no-such\.log: cannot read the log"):
        list(read_log(LOGS / "no-such.log"))


# ---------------------------------------------------------------------------
# Exchange columns


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "MSGTRK.LOG"
    path.write_text(
        "#Software: Microsoft Exchange Server\n"
        "#Fields: date-time,client-ip,server-ip,source,event-id,recipient-address\n"
        "2026-03-03T08:00:00.000Z,192.0.2.1,192.0.2.10,SMTP,RECEIVE,a@contoso.com\n"
    )
    records, _, errors = _read(path)
    assert records == []
    assert errors == [f"{path}: line 2: the #Fields: line has no 'sender-address' column"]
    path.write_text('"Received","SenderAddress","RecipientAddress","ToIP"\n"x","a@b","c@d",""\n')
    with pytest.raises(SourceError, match="header row has no 'ClientIp' or 'FromIP' column"):
        list(read_log(path, format="exchange"))


def test_columns_by_name_in_any_case_and_spelling() -> None:
    lines = [
        "#Fields: Recipient-Address,EVENT-ID,Sender-Address,Source,Client-IP",
        '"a@contoso.com; b@contoso.com",RECEIVE,s@partner.example,smtp,192.0.2.7',
        "c@contoso.com,SEND,s@partner.example,SMTP,192.0.2.7",
    ]
    log = read_lines(lines, format="exchange")
    assert [_fields(r) for r in log] == [
        (2, "s@partner.example", ("a@contoso.com", "b@contoso.com"), "192.0.2.7", False, None)
    ]


def test_the_client_behind_the_front_end_proxy() -> None:
    lines = [
        "#Fields: date-time,client-ip,server-ip,source,event-id,recipient-address,"
        "sender-address,original-client-ip",
        "2026-03-03T08:00:00.000Z,10.0.0.5,10.0.0.5,SMTP,RECEIVE,a@contoso.com,s@x.example,"
        "203.0.113.9",
        "2026-03-03T08:00:01.000Z,10.0.0.6,10.0.0.5,SMTP,RECEIVE,b@contoso.com,s@x.example,",
    ]
    assert [_fields(r) for r in read_lines(lines)] == [
        (2, "s@x.example", ("a@contoso.com",), "203.0.113.9", False, "10.0.0.5"),
        (3, "s@x.example", ("b@contoso.com",), "10.0.0.6", False, "10.0.0.5"),
    ]


# ---------------------------------------------------------------------------
# Postfix correlation

_STAMP = "2026-03-03T09:00:00+00:00 mx"


def _message_lines(n: int) -> tuple[list[str], tuple[object, ...]]:
    """The lines of one accepted message, in order, and its expected record."""
    qid = f"{0xA0000 + n:X}"
    recipients = tuple(f"r{n}.{i}@contoso.com" for i in range(1 + n % 3))
    ip = f"2001:db8::{n:x}" if n % 4 == 0 else f"192.0.2.{n % 250 + 1}"
    lines = [
        f"{_STAMP} postfix/smtpd[1]: {qid}: client=c{n}.example[{ip}]",
        f"{_STAMP} postfix/cleanup[2]: {qid}: message-id=<{n}@example>",
        f"{_STAMP} postfix/qmgr[3]: {qid}: from=<s{n}@example>, size=1, nrcpt={len(recipients)}",
        *(
            f"{_STAMP} postfix/smtp[4]: {qid}: to=<{r}>, relay=none, status=deferred (busy)"
            for r in recipients
        ),
        *(
            f"{_STAMP} postfix/lmtp[5]: {qid}: to=<{r}>, relay=store[10.0.0.5]:24, status=sent"
            for r in recipients
        ),
        f"{_STAMP} postfix/qmgr[3]: {qid}: removed",
    ]
    return lines, (qid, f"s{n}@example", recipients, ip, False, None)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.randoms(use_true_random=False))
def test_interleaved_queue_ids(count: int, rng: random.Random) -> None:
    """Any interleaving of the messages' lines (each message's own lines in order, as
    one process writes them) gives each message once, complete, at its removed line."""
    messages = [_message_lines(n) for n in range(count)]
    queues = [list(lines) for lines, _ in messages]
    log: list[str] = []
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        log.append(queue.pop(0))
        if rng.random() < 0.2:
            log.append(f"{_STAMP} postfix/anvil[9]: statistics: max connection rate 1/60s")
    records = list(read_lines(log))
    by_id = {m[1][0]: m[1] for m in messages}
    assert sorted(_fields(r) for r in records) == sorted(by_id.values())  # type: ignore[type-var]
    removed = [line.split(": ")[1] for line in log if line.endswith(": removed")]
    assert [r.id for r in records] == removed  # type: ignore[union-attr]


def test_the_table_of_open_messages_is_bounded() -> None:
    lines: list[str] = []
    for n in range(5):
        lines += _message_lines(n)[0][:-1]  # never removed
    lines += _message_lines(5)[0]
    log = read_lines(lines, max_pending=3)
    assert [_fields(r) for r in log] == [_message_lines(5)[1]]
    assert log.counts.incomplete == 5  # 2 flushed from the table, 3 open at the end


class _NeverComplete(io.RawIOBase):
    """A Postfix log of *lines* lines, made as it is read: every queue id begins and
    none ever ends (and, as in real logs, most lines are of no use to the reader)."""

    def __init__(self, lines: int) -> None:
        self.left = lines
        self.n = 0
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while len(self.pending) < len(buffer) and self.left > 0:
            batch = []
            for _ in range(min(self.left, 4000) // 4):
                qid = f"{0x100000000 + self.n:X}"
                self.n += 1
                batch.append(
                    "Mar  3 09:00:00 mx postfix/smtpd[7]: connect from unknown[192.0.2.9]\n"
                    f"Mar  3 09:00:00 mx postfix/smtpd[7]: {qid}: client=unknown[192.0.2.9]\n"
                    "Mar  3 09:00:00 mx postfix/smtpd[7]: Anonymous TLS connection established"
                    " from unknown[192.0.2.9]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384\n"
                    "Mar  3 09:00:00 mx postfix/smtpd[7]: lost connection after DATA from"
                    " unknown[192.0.2.9]\n"
                )
            self.left -= 4 * len(batch)
            self.pending += "".join(batch).encode()
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size


def test_memory_stays_flat_on_a_million_lines_that_never_complete() -> None:
    lines = 1_000_000
    tracemalloc.start()
    try:
        log = read_log(io.BufferedReader(_NeverComplete(lines), 1 << 16), format="postfix")
        assert list(log) == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert log.counts.lines == lines
    assert log.counts.incomplete == lines // 4  # every one counted: flushed, or open at the end
    # the table holds at most MAX_PENDING messages, the reader one block of lines
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB"


# ---------------------------------------------------------------------------
# robustness: any input is read, or refused with an imcea.Error

_PIECES = [
    "Mar  3 09:00:00 mx postfix/smtpd[1]: ",
    "2026-03-03T09:00:00+01:00 mx postfix-out/qmgr[2]: ",
    "ABCDE1: ",
    "NOQUEUE: reject: RCPT from ",
    "client=",
    "from=<",
    "to=<",
    "orig_to=<",
    "removed",
    "uid=0 ",
    "unknown[",
    "IPv6:2001:db8::1",
    "192.0.2.1",
    "]",
    ">, ",
    "; from=<a@b> to=<c@d> proto=ESMTP",
    "#Fields: ",
    "client-ip,sender-address,recipient-address,event-id,source",
    ",",
    '"',
    ";",
    "RECEIVE",
    "SMTP",
    "\n",
    "{",
    "\x00",
    "\ufeff",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(_PIECES) | st.text(max_size=8), max_size=40),
    st.sampled_from(["auto", "postfix", "exchange", "jsonl"]),
    st.booleans(),
)
def test_any_input_is_read_or_refused_with_an_error(
    pieces: list[str], format: str, gzipped: bool
) -> None:
    data = "".join(pieces).encode("utf-8", "surrogatepass")
    if gzipped:
        data = gzip.compress(data)
    errors: list[SourceError] = []
    try:
        log = read_log(io.BytesIO(data), format=format, on_error=errors.append)
        records = list(imcea.replay(log, imcea.Settings(), on_error=lambda e: None))
    except imcea.Error:
        return
    assert all(isinstance(r, imcea.Replayed) for r in records)
    assert log.counts.lines >= len(errors)


def test_a_client_address_is_checked_as_a_record_checks_it(tmp_path: Path) -> None:
    """What the reader lets through as a client is what Record and decide() take: an
    IPv6 zone id or an octet with a leading zero is a bad line, not a bad decision."""
    from imcea.sources import read_log

    lines = [
        "Mar  3 09:00:00 mx1 postfix/smtpd[2000]: 1000000001: client=a.example[fe80::1%eth0]",
        "Mar  3 09:00:00 mx1 postfix/smtpd[2000]: NOQUEUE: reject: RCPT from b.example[01.2.3.4]:"
        " 554 5.7.1 <x@y.example>: Relay access denied; from=<s@a.example> to=<x@y.example>"
        " proto=ESMTP helo=<b>",
    ]
    path = tmp_path / "mail.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    errors: list[str] = []
    log = read_log(path, format="postfix", on_error=lambda e: errors.append(str(e)))
    assert list(log) == []
    assert len(errors) == 2
    assert "fe80::1%eth0" in errors[0] and "01.2.3.4" in errors[1]
