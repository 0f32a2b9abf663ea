"""End to end: the real Postfix asks ``imcea policy`` about every RCPT TO.

One private Postfix instance per module: its own main.cf, master.cf, queue and data
directories under a temporary directory, listening only on loopback ports, each SMTP
listener with ``check_policy_service inet:127.0.0.1:PORT`` first in its relay
restrictions, pointing at an ``imcea policy`` server started as a subprocess.  Mail
stays on the machine: every transport is ``discard:``.

All traffic is on 127.0.0.1.  The test plays other clients with Postfix's XCLIENT
command (``smtpd_authorized_xclient_hosts = 127.0.0.1``): the addresses 203.0.113.7
(an outsider) and 192.168.0.1 (the seed's site connector, on the allow list and in
``mynetworks``) are only claimed, never contacted.

Skipped when the Postfix binaries are missing or the test does not run as root;
``.ci/run`` installs Postfix, so it runs there.
"""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
POSTFIX = shutil.which("postfix", path=SBIN)
POSTCONF = shutil.which("postconf", path=SBIN)

if POSTFIX is None or POSTCONF is None:
    pytest.skip(
        "Postfix is not installed (postfix/postconf not found): "
        "apt-get install postfix, as .ci/run does",
        allow_module_level=True,
    )
if os.geteuid() != 0:
    pytest.skip("a private Postfix instance must be started as root", allow_module_level=True)

OUTSIDER = "203.0.113.7"
LISTED = "192.168.0.1"
ONE_OFF = "IMCEASMTP-victim+40elsewhere+2Eexample@contoso.com"
SENDER = "someone@outside.example"

RESTRICTED = f"""
reroute = true
directory = ["jdoe@contoso.com"]
[[routing]]
domain = "contoso.com"
action = "inbound"
[restrictions]
allow = ["{LISTED}"]
"""
CLOSED = """
reroute = false
directory = ["jdoe@contoso.com"]
[[routing]]
domain = "contoso.com"
action = "inbound"
"""

#: the policy servers: name -> (settings, extra options)
POLICIES = {
    "restricted": (RESTRICTED, ()),
    "closed": (CLOSED, ()),
    "closed_bounce": (CLOSED, ("--bounce-like-ims",)),
}

MASTER_CF = """\
{smtpd}
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000    0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
myhostname = mx.contoso.com
mydomain = contoso.com
myorigin = contoso.com
mydestination = contoso.com
inet_interfaces = loopback-only
inet_protocols = ipv4
# the IMS allow list, mirrored: Postfix itself must let the listed host relay
mynetworks = {listed}/32
smtpd_authorized_xclient_hosts = 127.0.0.1
local_recipient_maps =
alias_maps =
alias_database =
local_transport = discard:
# relayed mail is discarded too: nothing leaves the machine (an error: transport
# would make Postfix itself refuse the listed client's relay at RCPT)
default_transport = discard:
relay_transport = discard:
smtpd_recipient_restrictions =
smtpd_policy_service_try_limit = 1
biff = no
append_dot_mydomain = no
readme_directory = no
{restrictions}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Instance:
    """The running instance: its SMTP ports by policy name, and its log files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.smtp_ports: dict[str, int] = {}
        self.policy_logs: dict[str, Path] = {}
        self.policies: dict[str, subprocess.Popen[bytes]] = {}
        self.start_seconds = self.stop_seconds = 0.0

    def maillog(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else "(no maillog)"

    def postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert POSTFIX is not None
        return subprocess.run(
            [POSTFIX, "-c", str(self.root / "etc"), *args],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    def spawn_policy(self, name: str, settings: str, options: tuple[str, ...]) -> None:
        """Start ``imcea policy --listen 127.0.0.1:0`` with *settings*, logging to a file."""
        path = self.root / f"{name}.toml"
        path.write_text(settings, encoding="utf-8")
        log = self.policy_logs[name] = self.root / f"{name}.log"
        with open(log, "wb") as err:
            command = [sys.executable, "-m", "imcea", "policy", "--settings", str(path)]
            self.policies[name] = subprocess.Popen(
                [*command, "--listen", "127.0.0.1:0", "--verbose", *options],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )

    def policy_port(self, name: str) -> int:
        """The port policy server *name* listens on, from its first log line."""
        log = self.policy_logs[name]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            first, newline, _ = log.read_text().partition("\n")
            if newline:
                assert first.startswith("imcea policy: listening on 127.0.0.1:"), first
                return int(first.rsplit(":", 1)[1])
            if self.policies[name].poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"policy server {name} did not start: {log.read_text()}")

    def stop(self) -> None:
        started = time.monotonic()
        self.postfix("stop")
        self.stop_seconds = time.monotonic() - started
        pid_file = self.root / "queue" / "pid" / "master.pid"
        if pid_file.exists():  # stop failed: do not leave a master behind
            try:
                pid = int(pid_file.read_text().split()[0])
                os.kill(pid, signal.SIGTERM)
            except (ValueError, IndexError, ProcessLookupError):
                pass
        for process in self.policies.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.policies.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def postfix() -> Iterator[Instance]:
    # the postfix user must reach the queue: not under a private (0700) TMPDIR
    root = Path(tempfile.mkdtemp(prefix="imcea-postfix-", dir="/tmp"))
    root.chmod(0o755)
    instance = Instance(root)
    try:
        restrictions: list[str] = []
        listeners: list[str] = []
        for name, spec in POLICIES.items():
            instance.spawn_policy(name, *spec)
        targets = {name: instance.policy_port(name) for name in POLICIES}
        targets["down"] = _free_port()  # nothing listens there
        for name, policy_port in targets.items():
            port = instance.smtp_ports[name] = _free_port()
            restrictions.append(
                f"imcea_{name} = check_policy_service inet:127.0.0.1:{policy_port},"
                " permit_mynetworks, reject_unauth_destination"
            )
            listeners.append(
                f"127.0.0.1:{port} inet n - n - - smtpd -o smtpd_relay_restrictions=$imcea_{name}"
            )
        (root / "etc").mkdir()
        (root / "queue").mkdir()
        (root / "data").mkdir()
        shutil.chown(root / "data", "postfix")
        (root / "etc" / "main.cf").write_text(
            MAIN_CF.format(root=root, listed=LISTED, restrictions="\n".join(restrictions))
        )
        (root / "etc" / "master.cf").write_text(MASTER_CF.format(smtpd="\n".join(listeners)))
        started = time.monotonic()
        result = instance.postfix("start")
        if result.returncode != 0:
            pytest.fail(f"postfix start failed ({result.returncode}):\n{instance.maillog()}")
        instance.start_seconds = time.monotonic() - started
        yield instance
    finally:
        instance.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def session(instance: Instance, policy: str, client: str) -> Iterator[smtplib.SMTP]:
    """An SMTP session with the listener of *policy*, as the client at *client*."""
    smtp = smtplib.SMTP("127.0.0.1", instance.smtp_ports[policy], timeout=30)
    try:
        smtp.ehlo("client.example")
        code, text = smtp.docmd("XCLIENT", f"ADDR={client} NAME=[UNAVAILABLE]")
        assert code == 220, (code, text)
        smtp.ehlo("client.example")  # XCLIENT resets the session
        smtp.mail(SENDER)
        yield smtp
    finally:
        smtp.close()


def rcpt(instance: Instance, policy: str, client: str, recipient: str) -> tuple[int, str]:
    with session(instance, policy, client) as smtp:
        code, text = smtp.rcpt(recipient)
    return code, text.decode()


def rejected(recipient: str, text: str) -> tuple[int, str]:
    """Postfix's wording for a policy answer ``550 text`` (or ``550 5.x.y text``)."""
    status = "5.7.1"
    if text[:1].isdigit():
        status, _, text = text.partition(" ")
    return 550, f"{status} <{recipient}>: Recipient address rejected: {text}"


ACCEPTED = (250, "2.1.5 Ok")


def test_gal_recipient_is_accepted_and_delivered(postfix: Instance) -> None:
    with session(postfix, "restricted", OUTSIDER) as smtp:
        assert smtp.rcpt("jdoe@contoso.com") == (250, b"2.1.5 Ok")
        code, text = smtp.data(b"Subject: imcea end to end\r\n\r\nhello\r\n")
        assert code == 250, text
    queue_id = text.decode().rsplit(" ", 1)[1]
    deadline = time.monotonic() + 30
    delivered = f"{queue_id}: to=<jdoe@contoso.com>, relay=none"
    while delivered not in postfix.maillog() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert delivered in postfix.maillog()


def test_relay_attempt_is_refused_with_the_ims_reply(postfix: Instance) -> None:
    recipient = "victim@elsewhere.example"
    expected = rejected(recipient, "Relaying is prohibited")
    assert rcpt(postfix, "restricted", OUTSIDER, recipient) == expected


def test_listed_client_may_relay(postfix: Instance) -> None:
    assert rcpt(postfix, "restricted", LISTED, "victim@elsewhere.example") == ACCEPTED


@pytest.mark.parametrize(
    ("policy", "client", "expected"),
    [
        # rerouting on with restrictions: "rerouted or returned based on these restrictions"
        ("restricted", OUTSIDER, rejected(ONE_OFF, "Relaying is prohibited")),
        ("restricted", LISTED, ACCEPTED),
        # rerouting off: the IMS "returns all messages that are sent to an encapsulated
        # SMTP one-off address" -- rejected at RCPT by default, accepted like the IMS
        # with --bounce-like-ims
        (
            "closed",
            OUTSIDER,
            rejected(
                ONE_OFF,
                "5.7.1 the message is returned: encapsulated SMTP one-offs are not rerouted"
                " (encapsulated_not_rerouted)",
            ),
        ),
        ("closed_bounce", OUTSIDER, ACCEPTED),
    ],
    ids=["restricted-outsider", "restricted-listed", "closed", "closed-bounce-like-ims"],
)
def test_encapsulated_smtp_one_off(
    postfix: Instance, policy: str, client: str, expected: tuple[int, str]
) -> None:
    assert rcpt(postfix, policy, client, ONE_OFF) == expected


def test_unknown_recipient_is_rejected_at_rcpt_unless_bouncing_like_the_ims(
    postfix: Instance,
) -> None:
    recipient = "nobody@contoso.com"
    assert rcpt(postfix, "closed", OUTSIDER, recipient) == rejected(
        recipient, "5.1.1 (000C05A6) Unknown Recipient (unknown_recipient)"
    )
    assert rcpt(postfix, "closed_bounce", OUTSIDER, recipient) == ACCEPTED


def test_postfix_reuses_the_policy_connection(postfix: Instance) -> None:
    recipients = ["jdoe@contoso.com", "victim@elsewhere.example", ONE_OFF, "x@contoso.com"]
    with session(postfix, "restricted", OUTSIDER) as smtp:
        replies = [smtp.rcpt(r)[0] for r in recipients]
    assert replies == [250, 550, 550, 550]
    log = postfix.policy_logs["restricted"].read_text()
    lines = [line for line in log.splitlines() if "recipient='x@contoso.com'" in line]
    assert len(lines) == 1, log
    peer = lines[0].split(": ")[1]  # the policy client's address and port
    for recipient in recipients:
        assert f"imcea policy: {peer}: client={OUTSIDER} recipient={recipient!r}" in log
    assert "malformed" not in log


def test_policy_server_down_is_a_temporary_failure(postfix: Instance) -> None:
    recipient = "jdoe@contoso.com"
    assert rcpt(postfix, "down", OUTSIDER, recipient) == (
        451,
        f"4.3.5 <{recipient}>: Recipient address rejected: Server configuration problem",
    )


def test_unavailable_client_address_is_a_temporary_failure(postfix: Instance) -> None:
    # XCLIENT ADDR=[UNAVAILABLE]: Postfix sends client_address=unknown
    recipient = "jdoe@contoso.com"
    assert rcpt(postfix, "restricted", "[UNAVAILABLE]", recipient) == (
        451,
        f"4.3.0 <{recipient}>: Recipient address rejected: "
        "Client address unavailable: the routing restrictions cannot be applied",
    )
