"""An SMTP gateway that answers every RCPT TO the way an Exchange 5.5 IMS would.

It runs the ``aiosmtpd`` SMTP server with :class:`IMSHandler`: for each ``RCPT TO`` the
handler asks its :class:`imcea.Decider` (``decide_recipient``) with the client's IP
address (``session.peer[0]``), whether the session authenticated
(``session.authenticated``) and the server address the client connected to, and answers
with the decision's reply:

- Deliver and Reroute: accepted (``250 OK - Recipient <...>``) and recorded with the
  decision, which says where the IMS would deliver or relay the recipient;
- Return at RCPT: refused with the IMS's reply (``550 Relaying is prohibited``,
  ``553 malformed address: <...>``);
- Return after acceptance (``decision.ndr`` set): accepted, as the IMS did, and
  recorded as returned with its NDR text.

Each message is recorded as a :class:`Message` in ``handler.messages``; nothing is
delivered or relayed anywhere.  ``--auth-user USER:PASSWORD`` turns on AUTH PLAIN and
LOGIN over the plain connection (for a loopback test bench only: the password crosses
the wire in clear).

Run::

    python examples/aiosmtpd_gateway.py --settings ims.toml --listen 127.0.0.1:8025

and it prints one line per recorded recipient until SIGTERM or Ctrl-C.  Requires
``pip install 'imcea[aiosmtpd]'``.
"""

from __future__ import annotations

import argparse
import hmac
import signal
import socket
import sys
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, Session
from aiosmtpd.smtp import Envelope as SMTPEnvelope

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too

import imcea


@dataclass(frozen=True)
class Recorded:
    """One accepted recipient and the IMS decision for it."""

    recipient: str
    decision: imcea.Decision


@dataclass(frozen=True)
class Message:
    """A message the gateway accepted: who sent it, and what the IMS does per recipient."""

    peer: str
    authenticated: bool
    sender: str
    recipients: tuple[Recorded, ...]
    content: bytes

    def with_action(self, action: imcea.Action) -> list[Recorded]:
        """The recipients whose decision is *action*."""
        return [r for r in self.recipients if r.decision.action is action]


class IMSHandler:
    """An aiosmtpd handler: ``handle_RCPT`` asks the settings' decider, ``handle_DATA`` records.

    *server_ip* overrides the server address the decider is given; by default it is
    the local address of the connection (for ``restrictions.internal``).
    *on_message* is called with each recorded :class:`Message`.
    """

    def __init__(
        self,
        settings: imcea.Settings,
        *,
        server_ip: str | None = None,
        on_message: Callable[[Message], None] | None = None,
    ) -> None:
        self.settings = settings
        self.decider = imcea.Decider(settings)  # one for every session of this server
        self.server_ip = server_ip
        self.on_message = on_message
        self.messages: list[Message] = []
        # the recipients accepted so far, per transaction (aiosmtpd makes a new
        # Envelope after DATA and RSET, and the old one's entry goes with it)
        self._accepted: weakref.WeakKeyDictionary[SMTPEnvelope, list[Recorded]] = (
            weakref.WeakKeyDictionary()
        )

    def decide(
        self, server: SMTP, session: Session, envelope: SMTPEnvelope, address: str
    ) -> imcea.Decision:
        """The IMS decision for one ``RCPT TO`` of this session."""
        server_ip = self.server_ip
        if server_ip is None and server.transport is not None:
            sockname = server.transport.get_extra_info("sockname")
            server_ip = sockname[0] if sockname else None
        peer: Any = session.peer
        return self.decider.decide_recipient(
            address, peer[0], authenticated=bool(session.authenticated), server_ip=server_ip
        )

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: SMTPEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        decision = self.decide(server, session, envelope, address)
        if decision.action is imcea.Action.RETURN and decision.ndr is None:
            return decision.reply  # refused at RCPT, e.g. 550 Relaying is prohibited
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        self._accepted.setdefault(envelope, []).append(Recorded(address, decision))
        return decision.reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SMTPEnvelope) -> str:
        peer: Any = session.peer
        content = envelope.original_content or b""
        message = Message(
            peer=str(peer[0]),
            authenticated=bool(session.authenticated),
            sender=envelope.mail_from or "",
            recipients=tuple(self._accepted.pop(envelope, ())),
            content=content if isinstance(content, bytes) else content.encode("utf-8"),
        )
        self.messages.append(message)
        if self.on_message is not None:
            self.on_message(message)
        return "250 OK"


class PasswordAuthenticator:
    """An aiosmtpd authenticator for AUTH PLAIN and LOGIN against fixed user names."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = {name: password.encode("utf-8") for name, password in users.items()}

    def __call__(
        self,
        server: SMTP,
        session: Session,
        envelope: SMTPEnvelope,
        mechanism: str,
        auth_data: object,
    ) -> AuthResult:
        if mechanism not in ("PLAIN", "LOGIN") or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        expected = self.users.get(auth_data.login.decode("utf-8", "replace"))
        ok = expected is not None and hmac.compare_digest(expected, auth_data.password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def controller(
    handler: IMSHandler,
    host: str,
    port: int,
    *,
    users: Mapping[str, str] | None = None,
) -> Controller:
    """An aiosmtpd Controller (not started) serving *handler* on ``host:port``."""
    options: dict[str, Any] = {}
    if users:
        options.update(authenticator=PasswordAuthenticator(users), auth_require_tls=False)
    return Controller(handler, hostname=host, port=port, ready_timeout=10.0, **options)


def free_port(host: str) -> int:
    """A free TCP port on *host* (the Controller cannot listen on port 0 itself)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise SystemExit(f"--listen: {text!r} is not HOST:PORT")
    return host, int(port)


def _user(text: str) -> tuple[str, str]:
    name, sep, password = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not USER:PASSWORD")
    return name, password


def _print_message(message: Message) -> None:
    for r in message.recipients:
        d = r.decision
        where = d.next_hop or d.resolved or d.ndr or ""
        print(f"{message.peer}\t{r.recipient}\t{d.action.value}\t{d.reason.value}\t{where}")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--settings", metavar="FILE", help="IMS settings (default: built-in)")
    parser.add_argument("--listen", default="127.0.0.1:8025", metavar="HOST:PORT")
    parser.add_argument(
        "--auth-user",
        action="append",
        type=_user,
        default=[],
        metavar="USER:PASSWORD",
        help="accept AUTH PLAIN/LOGIN for this user (plain text: a test bench only)",
    )
    args = parser.parse_args(argv)
    try:
        settings = imcea.Settings() if args.settings is None else imcea.load_settings(args.settings)
    except imcea.Error as exc:
        print(f"aiosmtpd_gateway: {exc}", file=sys.stderr)
        return 1
    host, port = _listen(args.listen)
    if port == 0:
        port = free_port(host)
    handler = IMSHandler(settings, on_message=_print_message)
    smtpd = controller(handler, host, port, users=dict(args.auth_user))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    smtpd.start()
    print(f"aiosmtpd_gateway: listening on {host}:{port}", file=sys.stderr, flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        smtpd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
