"""The aiosmtpd gateway of ``examples/``, run as a real aiosmtpd server on loopback.

Every test starts aiosmtpd's ``Controller`` with :class:`IMSHandler` on a free port of
127.0.0.1 and talks to it with ``smtplib``.  The "listed client" connects from
127.0.0.2, another loopback address, so the allow list can tell two real clients apart.
Expected replies are the IMS's (DESIGN §2.4) and the seed's (KB Q237927).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import smtplib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip("aiosmtpd", reason="aiosmtpd is not installed: pip install 'imcea[aiosmtpd]'")

import imcea

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "aiosmtpd_gateway.py"

OUTSIDER = "127.0.0.1"
LISTED = "127.0.0.2"  # the "site connector" of the seed, on the allow list
ONE_OFF = "IMCEASMTP-victim+40elsewhere+2Eexample@contoso.com"
SENDER = "someone@outside.example"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aiosmtpd_gateway", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


gateway = _load_example()

CLOSED = {  # the seed's recommendation: "Do not reroute incoming SMTP mail"
    "reroute": False,
    "routing": [{"domain": "contoso.com", "action": "inbound"}],
    "directory": ["jdoe@contoso.com"],
}
RESTRICTED = {  # rerouting on, with routing restrictions: only the listed host relays
    **CLOSED,
    "reroute": True,
    "restrictions": {"allow": [LISTED]},
}
UNPATCHED = {**CLOSED, "release": "SP2"}  # before the fix (MS99-027)
AUTHENTICATED = {**CLOSED, "reroute": True, "restrictions": {"authenticated": True}}
INTERNAL = {  # clients connecting to the server's internal interface may relay
    **CLOSED,
    "reroute": True,
    "server_addresses": ["127.0.0.1"],
    "restrictions": {"internal": ["127.0.0.1"]},
}

Start = Callable[..., tuple[Any, int]]


@pytest.fixture
def start() -> Iterator[Start]:
    """Start an aiosmtpd Controller with an IMSHandler; returns (handler, port)."""
    controllers: list[Any] = []

    def _start(settings: dict[str, Any], **options: Any) -> tuple[Any, int]:
        handler = gateway.IMSHandler(imcea.load_settings(settings))
        port = gateway.free_port("127.0.0.1")
        smtpd = gateway.controller(handler, "127.0.0.1", port, **options)
        smtpd.start()
        controllers.append(smtpd)
        return handler, port

    yield _start
    for smtpd in controllers:
        smtpd.stop()


def client(port: int, source: str = OUTSIDER) -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=10)
    smtp.ehlo("client.example")
    return smtp


def rcpt(smtp: smtplib.SMTP, recipient: str) -> tuple[int, str]:
    code, text = smtp.rcpt(recipient)
    return code, text.decode()


def send(port: int, recipients: list[str], source: str = OUTSIDER) -> list[tuple[int, str]]:
    """One transaction: the RCPT replies, and DATA when some recipient was accepted."""
    with client(port, source) as smtp:
        smtp.mail(SENDER)
        replies = [rcpt(smtp, r) for r in recipients]
        if any(code == 250 for code, _ in replies):
            assert smtp.data(b"Subject: test\r\n\r\nbody\r\n")[0] == 250
    return replies


def only_message(handler: Any) -> Any:
    assert len(handler.messages) == 1, handler.messages
    return handler.messages[0]


def test_gal_recipient_is_accepted_and_recorded_as_delivered(start: Start) -> None:
    handler, port = start(CLOSED)
    assert send(port, ["jdoe@contoso.com"]) == [(250, "OK - Recipient <jdoe@contoso.com>")]
    message = only_message(handler)
    assert (message.peer, message.sender, message.authenticated) == (OUTSIDER, SENDER, False)
    assert b"Subject: test" in message.content
    [recorded] = message.recipients
    assert recorded.recipient == "jdoe@contoso.com"
    assert recorded.decision.action is imcea.Action.DELIVER
    assert recorded.decision.reason is imcea.Reason.LOCAL_RECIPIENT
    assert recorded.decision.resolved == "jdoe@contoso.com"


def test_relay_attempt_gets_relaying_is_prohibited(start: Start) -> None:
    handler, port = start(RESTRICTED)
    with client(port) as smtp:
        smtp.mail(SENDER)
        assert rcpt(smtp, "victim@elsewhere.example") == (550, "Relaying is prohibited")
        assert rcpt(smtp, "jdoe@contoso.com")[0] == 250  # the session goes on
        assert smtp.data(b"\r\n")[0] == 250
    [recorded] = only_message(handler).recipients
    assert recorded.recipient == "jdoe@contoso.com"  # the refused one is not recorded


def test_listed_client_may_relay(start: Start) -> None:
    handler, port = start(RESTRICTED)
    assert send(port, ["victim@elsewhere.example"], source=LISTED) == [
        (250, "OK - Recipient <victim@elsewhere.example>")
    ]
    message = only_message(handler)
    assert message.peer == LISTED
    [recorded] = message.with_action(imcea.Action.REROUTE)
    assert recorded.decision.reason is imcea.Reason.RELAY_ALLOWED_HOST
    assert recorded.decision.next_hop == "elsewhere.example"


@pytest.mark.parametrize(
    ("settings", "source", "reply", "action", "reason"),
    [
        # SP3, rerouting off: "returns all messages that are sent to an encapsulated
        # SMTP one-off address" -- accepted at RCPT, returned afterwards
        (CLOSED, OUTSIDER, 250, imcea.Action.RETURN, imcea.Reason.ENCAPSULATED_NOT_REROUTED),
        # SP3, rerouting on with restrictions: "rerouted or returned based on these
        # restrictions"
        (RESTRICTED, OUTSIDER, 550, None, None),
        (RESTRICTED, LISTED, 250, imcea.Action.REROUTE, imcea.Reason.RELAY_ALLOWED_HOST),
        # SP2: "the message may still be rerouted", whoever sends it
        (UNPATCHED, OUTSIDER, 250, imcea.Action.REROUTE, imcea.Reason.ENCAPSULATED_BYPASS),
    ],
    ids=["sp3-closed", "sp3-restricted-outsider", "sp3-restricted-listed", "sp2-bypass"],
)
def test_encapsulated_smtp_one_off_follows_the_seed(
    start: Start,
    settings: dict[str, Any],
    source: str,
    reply: int,
    action: imcea.Action | None,
    reason: imcea.Reason | None,
) -> None:
    handler, port = start(settings)
    [(code, text)] = send(port, [ONE_OFF], source=source)
    assert code == reply
    if reply == 550:
        assert text == "Relaying is prohibited"
        assert handler.messages == []
        return
    assert text == f"OK - Recipient <{ONE_OFF}>"
    [recorded] = only_message(handler).recipients
    decision = recorded.decision
    assert (decision.action, decision.reason) == (action, reason)
    if action is imcea.Action.REROUTE:
        assert decision.resolved == "victim@elsewhere.example"
        assert decision.next_hop == "elsewhere.example"
    else:
        assert decision.ndr is not None and "not rerouted" in decision.ndr


def test_unknown_recipient_is_accepted_then_returned_like_the_ims(start: Start) -> None:
    handler, port = start(CLOSED)
    replies = send(port, ["jdoe@contoso.com", "nobody@contoso.com"])
    assert [code for code, _ in replies] == [250, 250]
    message = only_message(handler)
    [returned] = message.with_action(imcea.Action.RETURN)
    assert returned.recipient == "nobody@contoso.com"
    assert returned.decision.ndr == "(000C05A6) Unknown Recipient"
    assert [r.recipient for r in message.with_action(imcea.Action.DELIVER)] == ["jdoe@contoso.com"]


def test_authenticated_client_may_relay(start: Start) -> None:
    handler, port = start(AUTHENTICATED, users={"alice": "s3cret"})
    with client(port) as smtp:
        smtp.mail(SENDER)
        assert rcpt(smtp, "victim@elsewhere.example") == (550, "Relaying is prohibited")
        smtp.rset()
        with pytest.raises(smtplib.SMTPAuthenticationError) as failed:
            smtp.login("alice", "wrong")
        assert failed.value.smtp_code == 535
        smtp.login("alice", "s3cret")
        smtp.mail(SENDER)
        assert rcpt(smtp, "victim@elsewhere.example")[0] == 250
        assert smtp.data(b"\r\n")[0] == 250
    message = only_message(handler)
    assert message.authenticated
    [recorded] = message.recipients
    assert recorded.decision.reason is imcea.Reason.RELAY_AUTHENTICATED


def test_auth_login_mechanism_works_too(start: Start) -> None:
    handler, port = start(AUTHENTICATED, users={"alice": "s3cret"})
    with client(port) as smtp:
        smtp.user, smtp.password = "alice", "s3cret"
        assert smtp.auth("LOGIN", smtp.auth_login)[0] == 235
        smtp.mail(SENDER)
        assert rcpt(smtp, "victim@elsewhere.example")[0] == 250
        assert smtp.data(b"\r\n")[0] == 250
    assert only_message(handler).authenticated


def test_server_address_of_the_connection_is_passed_on(start: Start) -> None:
    handler, port = start(INTERNAL)
    assert send(port, ["victim@elsewhere.example"])[0][0] == 250
    [recorded] = only_message(handler).recipients
    assert recorded.decision.reason is imcea.Reason.RELAY_INTERNAL_INTERFACE


def test_rset_forgets_the_recipients_of_the_abandoned_transaction(start: Start) -> None:
    handler, port = start(CLOSED)
    with client(port) as smtp:
        smtp.mail(SENDER)
        assert rcpt(smtp, "nobody@contoso.com")[0] == 250
        smtp.rset()
        smtp.mail(SENDER)
        assert rcpt(smtp, "jdoe@contoso.com")[0] == 250
        assert smtp.data(b"\r\n")[0] == 250
    assert [r.recipient for r in only_message(handler).recipients] == ["jdoe@contoso.com"]


def test_runnable_with_settings_file_and_listen(tmp_path: Path) -> None:
    settings = tmp_path / "ims.toml"
    settings.write_text(
        'reroute = true\ndirectory = ["jdoe@contoso.com"]\n'
        '[[routing]]\ndomain = "contoso.com"\naction = "inbound"\n'
        f'[restrictions]\nallow = ["{LISTED}"]\n',
        encoding="utf-8",
    )
    port = gateway.free_port("127.0.0.1")
    listen = f"127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--settings", str(settings), "--listen", listen],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()
        assert banner.strip() == f"aiosmtpd_gateway: listening on 127.0.0.1:{port}", banner
        assert send(port, ["victim@elsewhere.example", "jdoe@contoso.com"]) == [
            (550, "Relaying is prohibited"),
            (250, "OK - Recipient <jdoe@contoso.com>"),
        ]
        assert send(port, ["victim@elsewhere.example"], source=LISTED)[0][0] == 250
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert out.splitlines() == [
        f"{OUTSIDER}\tjdoe@contoso.com\tdeliver\tlocal_recipient\tjdoe@contoso.com",
        f"{LISTED}\tvictim@elsewhere.example\treroute\trelay_allowed_host\telsewhere.example",
    ]
