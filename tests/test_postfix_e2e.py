"""End to end: the real Postfix asks ``imcea policy`` about every RCPT TO.

One private Postfix instance per module: its own main.cf, master.cf, queue and data
directories under a temporary directory, listening only on loopback ports, each SMTP
listener with ``check_policy_service inet:127.0.0.1:PORT`` first in its relay
restrictions, pointing at an ``imcea policy`` server started as a subprocess.  Mail
stays on the machine: every transport is ``discard:``.

All traffic is on 127.0.0.1.  The test plays other clients with Postfix's XCLIENT
command (``smtpd_authorized_xclient_hosts = 127.0.0.1``): the addresses 203.0.113.7
(an outsider), 192.168.0.1 (the seed's site connector, on the allow list and in
``mynetworks``), 10.0.0.5 (inside an allowed network) and 10.0.0.66 (on the never-route
list, inside that network) are only claimed, never contacted.

The relay battery runs against two instances: the first with Postfix's default address
rewriting and ``mynetworks`` copied from the allow list by hand (the policy alone must
stop what Postfix would unwrap and relay), the second with the lines ``imcea
postfix-config`` generates.  A recipient counts as relayed when Postfix accepted it and
its delivery went to the ``discard:relayed`` transport (every non-local destination).

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
from collections.abc import Callable, Iterator
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

ALLOWED = "10.0.0.5"
DENIED = "10.0.0.66"
# the never-route host inside an allowed network (the settings of the relay-hole report)
NEVER_ROUTE = """
reroute = true
server_addresses = ["127.0.0.1"]
{directory}
[[routing]]
domain = "contoso.com"
action = "inbound"
[restrictions]
allow = ["192.168.0.1", "10.0.0.0/255.255.255.0"]
deny = ["10.0.0.66"]
"""
NO_DIRECTORY = NEVER_ROUTE.format(directory="")
WITH_DIRECTORY = NEVER_ROUTE.format(directory='directory = ["jdoe@contoso.com"]')

#: the policy servers: name -> (settings, extra options)
POLICIES = {
    "restricted": (RESTRICTED, ()),
    "closed": (CLOSED, ()),
    "closed_bounce": (CLOSED, ("--bounce-like-ims",)),
    "never": (NO_DIRECTORY, ()),
    "never_dir": (WITH_DIRECTORY, ()),
    "never_bounce": (NO_DIRECTORY, ("--bounce-like-ims",)),
    "never_dir_bounce": (WITH_DIRECTORY, ("--bounce-like-ims",)),
    "never_ims_parts": (NO_DIRECTORY, ("--ims-local-parts",)),
}
#: the never-route policies, each with the relay battery
NEVER = ("never", "never_dir", "never_bounce", "never_dir_bounce")

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
{mynetworks}
smtpd_authorized_xclient_hosts = 127.0.0.1
local_recipient_maps =
alias_maps =
alias_database =
# relayed mail is discarded too: nothing leaves the machine (an error: transport
# would make Postfix itself refuse the listed client's relay at RCPT); the text after
# "discard:" is logged as the delivery status, which tells local from relayed
local_transport = discard:local
default_transport = discard:relayed
relay_transport = discard:relayed
smtpd_recipient_restrictions =
smtpd_policy_service_try_limit = 1
# the relay battery sends many refused RCPTs per session: no tarpit, no disconnect
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
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


# the IMS allow list, copied into mynetworks by hand, never-route host and all
HAND_MADE = "# the IMS allow list, copied by hand\nmynetworks = 192.168.0.1/32, 10.0.0.0/24"


def _policy_rules(port: int) -> str:
    return (
        f"check_policy_service inet:127.0.0.1:{port}, permit_mynetworks, reject_unauth_destination"
    )


@contextmanager
def running(
    policies: dict[str, tuple[str, tuple[str, ...]]],
    main_cf: Callable[[dict[str, int]], tuple[str, dict[str, str | None]]],
) -> Iterator[Instance]:
    """A private Postfix with a policy server per entry of *policies*.

    *main_cf* gets the policy ports by name and gives the main.cf lines of the instance
    and, per SMTP listener, its ``smtpd_relay_restrictions`` (``None``: main.cf's).
    """
    # the postfix user must reach the queue: not under a private (0700) TMPDIR
    root = Path(tempfile.mkdtemp(prefix="imcea-postfix-", dir="/tmp"))
    root.chmod(0o755)
    instance = Instance(root)
    try:
        for name, spec in policies.items():
            instance.spawn_policy(name, *spec)
        ports = {name: instance.policy_port(name) for name in policies}
        lines, listeners = main_cf(ports)
        restrictions: list[str] = []
        smtpd: list[str] = []
        for name, rules in listeners.items():
            port = instance.smtp_ports[name] = _free_port()
            option = ""
            if rules is not None:
                restrictions.append(f"imcea_{name} = {rules}")
                option = f" -o smtpd_relay_restrictions=$imcea_{name}"
            smtpd.append(f"127.0.0.1:{port} inet n - n - - smtpd{option}")
        (root / "etc").mkdir()
        (root / "queue").mkdir()
        (root / "data").mkdir()
        shutil.chown(root / "data", "postfix")
        (root / "etc" / "main.cf").write_text(
            MAIN_CF.format(root=root, mynetworks=lines, restrictions="\n".join(restrictions))
        )
        (root / "etc" / "master.cf").write_text(MASTER_CF.format(smtpd="\n".join(smtpd)))
        started = time.monotonic()
        result = instance.postfix("start")
        if result.returncode != 0:
            pytest.fail(f"postfix start failed ({result.returncode}):\n{instance.maillog()}")
        instance.start_seconds = time.monotonic() - started
        yield instance
    finally:
        instance.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def postfix() -> Iterator[Instance]:
    """Postfix's default address rewriting, mynetworks copied from the allow list."""

    def main_cf(ports: dict[str, int]) -> tuple[str, dict[str, str | None]]:
        listeners: dict[str, str | None] = {
            name: _policy_rules(port) for name, port in ports.items()
        }
        listeners["down"] = _policy_rules(_free_port())  # nothing listens there
        return HAND_MADE, listeners

    with running(POLICIES, main_cf) as instance:
        yield instance


def generated_lines(settings: str, service: str) -> str:
    """What ``imcea postfix-config`` prints for *settings*, run as a user would."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ims.toml"
        path.write_text(settings, encoding="utf-8")
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "imcea",
                "postfix-config",
                "--settings",
                str(path),
                "--policy-service",
                service,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def generated() -> Iterator[Instance]:
    """The main.cf lines of ``imcea postfix-config``, verbatim; every listener but the
    first differs from them only in the policy server it asks."""
    names = (*NEVER, "never_ims_parts")

    def main_cf(ports: dict[str, int]) -> tuple[str, dict[str, str | None]]:
        service = f"inet:127.0.0.1:{ports['never']}"
        lines = generated_lines(NO_DIRECTORY, service)
        rules = lines.partition("smtpd_relay_restrictions =")[2].partition("\n#")[0]
        listeners: dict[str, str | None] = {"never": None}
        for name in names[1:]:
            other = f"inet:127.0.0.1:{ports[name]}"
            listeners[name] = " ".join(rules.replace(service, other).split())
        return lines, listeners

    with running({name: POLICIES[name] for name in names}, main_cf) as instance:
        yield instance


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


# ---------------------------------------------------------------------------
# the relay battery: what Postfix really relays, behind the policy

#: the sender-routed forms of the relay-hole report, as the client sends them
SENDER_ROUTED = [
    "<x%remote.example@contoso.com>",
    "<x%remote.example@[127.0.0.1]>",
    "<x@remote.example@contoso.com>",
    "<x@remote.example@[127.0.0.1]>",
    '<"x@remote.example"@contoso.com>',
    '<"x@remote.example"@[127.0.0.1]>',
    "<remote.example!x@contoso.com>",
    "<remote.example!x@[127.0.0.1]>",
]
PLAIN_RELAY = "<x@remote.example>"


def attempts() -> dict[str, list[str]]:
    """Every recipient to try, by the MAIL FROM it is sent with: the relay battery
    (imcea.battery, as audit runs it) and the sender-routed forms above."""
    from imcea.battery import tricks

    out: dict[str, list[str]] = {}
    rendered = tricks(user="x", remote="remote.example", local="contoso.com", server_ip="127.0.0.1")
    for _, sender, recipient in rendered:
        out.setdefault(sender, []).append(recipient)
    out.setdefault(f"<{SENDER}>", []).extend(SENDER_ROUTED)
    return out


def _queued_as(text: bytes) -> str:
    return text.decode().rsplit(" ", 1)[1]


Outcome = tuple[set[str], list[str]]


def _send_attempts(instance: Instance, listener: str, client: str) -> tuple[set[str], list[str]]:
    """Send every attempt through *listener* as *client*: the recipients accepted, and
    the queue ids of the messages that carry them."""
    accepted: set[str] = set()
    queue_ids: list[str] = []
    for sender, recipients in attempts().items():
        smtp = smtplib.SMTP("127.0.0.1", instance.smtp_ports[listener], timeout=30)
        try:
            smtp.ehlo("client.example")
            code, text = smtp.docmd("XCLIENT", f"ADDR={client} NAME=[UNAVAILABLE]")
            assert code == 220, (code, text)
            smtp.ehlo("client.example")
            if smtp.docmd("MAIL", f"FROM:{sender}")[0] != 250:
                continue
            ok = [r for r in recipients if smtp.docmd("RCPT", f"TO:{r}")[0] == 250]
            if ok:
                code, text = smtp.data(b"Subject: relay battery\r\n\r\nrelay battery\r\n")
                assert code == 250, (code, text)
                queue_ids.append(_queued_as(text))
                accepted.update(ok)
        finally:
            smtp.close()
    return accepted, queue_ids


def run_battery(instance: Instance, listeners: tuple[str, ...]) -> dict[tuple[str, str], Outcome]:
    """Every attempt through each listener from each client: by ``(listener, client)``,
    the recipients accepted and the deliveries (``to`` and ``orig_to`` as Postfix logs
    them) that went to the relay transport."""
    sent = {
        (listener, client): _send_attempts(instance, listener, client)
        for listener in listeners
        for client in (DENIED, OUTSIDER, ALLOWED)
    }
    queue_ids = [qid for _, ids in sent.values() for qid in ids]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        log = instance.maillog()
        if all(f"{qid}: removed" in log for qid in queue_ids):
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"messages not delivered:\n{instance.maillog()[-3000:]}")
    lines = instance.maillog().splitlines()
    out: dict[tuple[str, str], Outcome] = {}
    for key, (accepted, ids) in sent.items():
        relays = [
            line.partition(f"{qid}: ")[2].partition(", relay=")[0]
            for line in lines
            for qid in ids
            if f" {qid}: to=<" in line and "status=sent (relayed)" in line
        ]
        out[key] = (accepted, relays)
    return out


@pytest.fixture(scope="module")
def by_hand(postfix: Instance) -> dict[tuple[str, str], Outcome]:
    return run_battery(postfix, (*NEVER, "never_ims_parts"))


@pytest.fixture(scope="module")
def by_generator(generated: Instance) -> dict[tuple[str, str], Outcome]:
    return run_battery(generated, (*NEVER, "never_ims_parts"))


@pytest.mark.parametrize("listener", NEVER)
@pytest.mark.parametrize("client", [DENIED, OUTSIDER])
def test_default_rewriting_relays_nothing_for_a_client_the_ims_refuses(
    by_hand: dict[tuple[str, str], Outcome], listener: str, client: str
) -> None:
    # mynetworks holds 10.0.0.66 (copied by hand) and Postfix unwraps %, ! and @:
    # the policy alone must keep every trick from relaying
    accepted, relays = by_hand[listener, client]
    assert relays == [], relays
    assert not accepted & set(SENDER_ROUTED)


@pytest.mark.parametrize("listener", NEVER)
def test_default_rewriting_still_relays_for_an_allowed_client(
    by_hand: dict[tuple[str, str], Outcome], listener: str
) -> None:
    accepted, relays = by_hand[listener, ALLOWED]
    assert PLAIN_RELAY in accepted
    assert "to=<x@remote.example>" in relays
    if listener != "never_dir":  # else unknown local parts are refused with 5.1.1
        # an allowed client may relay, so Postfix may read these its way
        assert set(SENDER_ROUTED) <= accepted


def test_ims_local_parts_with_default_rewriting_is_the_hole(
    by_hand: dict[tuple[str, str], Outcome],
) -> None:
    # --ims-local-parts is only for a Postfix that reads local parts as the IMS does;
    # behind Postfix's defaults it reopens the hole: this is why it is not the default
    accepted, relays = by_hand["never_ims_parts", DENIED]
    assert set(SENDER_ROUTED) & accepted
    assert any("orig_to=<x%remote.example@contoso.com>" in line for line in relays), relays


def test_generated_configuration_is_what_the_generator_prints(generated: Instance) -> None:
    main_cf = (generated.root / "etc" / "main.cf").read_text()
    assert "mynetworks = !10.0.0.66, 192.168.0.1, 10.0.0.0/24\n" in main_cf
    for name in ("allow_percent_hack", "swap_bangpath", "resolve_dequoted_address"):
        assert f"\n{name} = no\n" in main_cf
    assert POSTCONF is not None
    shown = subprocess.run(
        [POSTCONF, "-c", str(generated.root / "etc"), "-h", "mynetworks", "swap_bangpath"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.stdout.split("\n")[:2] == ["!10.0.0.66, 192.168.0.1, 10.0.0.0/24", "no"]


@pytest.mark.parametrize("listener", [*NEVER, "never_ims_parts"])
@pytest.mark.parametrize("client", [DENIED, OUTSIDER])
def test_generated_configuration_relays_nothing_for_a_client_the_ims_refuses(
    by_generator: dict[tuple[str, str], Outcome], listener: str, client: str
) -> None:
    accepted, relays = by_generator[listener, client]
    assert relays == [], relays
    assert PLAIN_RELAY not in accepted


@pytest.mark.parametrize("listener", [*NEVER, "never_ims_parts"])
def test_generated_configuration_relays_for_an_allowed_client(
    by_generator: dict[tuple[str, str], Outcome], listener: str
) -> None:
    accepted, relays = by_generator[listener, ALLOWED]
    assert PLAIN_RELAY in accepted
    assert "to=<x@remote.example>" in relays
    # Postfix reads the sender-routed forms as local parts now: none is relayed
    assert not any("orig_to=" in line for line in relays), relays
