"""The ``imcea`` command line (also ``python -m imcea``).

Modelled on ``exim -bt`` and ``postmap -q``: one address per argument, or one per line
on standard input with ``-``; ``--json`` prints one JSON object per line.  Bad input is
one line on standard error and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from .errors import Error

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_RETURNED = 2


def _arguments(values: Sequence[str], stdin: TextIO) -> Iterator[str]:
    """The arguments, with ``-`` (or no argument at all) meaning one per line on stdin."""
    if not values:
        values = ["-"]
    for value in values:
        if value == "-":
            for line in stdin:
                line = line.strip()
                if line:
                    yield line
        else:
            yield value


def _emit(out: TextIO, as_json: bool, record: dict[str, Any], text: str) -> None:
    out.write((json.dumps(record, ensure_ascii=False) if as_json else text) + "\n")


def _fail(err: TextIO, command: str, subject: str | None, exc: Exception) -> None:
    where = f"{subject}: " if subject is not None else ""
    message = " ".join(str(exc).split())  # always one line
    err.write(f"imcea {command}: {where}{message}\n")


def _load(path: str | None) -> Settings:
    from .settings import Settings, load_settings

    return Settings() if path is None else load_settings(path)


# ---------------------------------------------------------------------------
# codec commands


def _cmd_decode(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    from .codec import decode

    status = EXIT_OK
    for address in _arguments(args.address, stdin):
        try:
            value = decode(address, strict=not args.lenient)
        except Error as exc:
            _fail(err, "decode", address, exc)
            status = EXIT_ERROR
            continue
        record = {
            "input": address,
            "type": value.addrtype,
            "address": value.address,
            "domain": value.domain,
            "canonical": str(value),
        }
        _emit(out, args.json, record, f"{value.addrtype}\t{value.address}\t{value.domain}")
    return status


def _cmd_encode(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    from .codec import encode

    status = EXIT_OK
    for address in _arguments(args.address, stdin):
        try:
            encoded = encode(args.type, address, args.domain)
        except Error as exc:
            _fail(err, "encode", address, exc)
            status = EXIT_ERROR
            continue
        record = {"input": address, "type": args.type.upper(), "encapsulated": encoded}
        _emit(out, args.json, record, encoded)
    return status


def _cmd_x500(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    from .codec import find_all

    if args.file in (None, "-"):
        text = stdin.read()
    else:
        try:
            with open(args.file, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError as exc:
            _fail(err, "x500", args.file, Error(exc.strerror or str(exc)))
            return EXIT_ERROR
    seen: set[str] = set()
    for found in find_all(text):
        value = found.value
        if value.addrtype not in ("EX", "X500") or not value.address.startswith("/"):
            continue
        proxy = "X500:" + value.address
        if proxy in seen:
            continue
        seen.add(proxy)
        record = {"x500": proxy, "encapsulated": found.text, "start": found.start}
        _emit(out, args.json, record, proxy)
    if not seen:
        err.write("imcea x500: no IMCEAEX address found\n")
        return EXIT_ERROR
    return EXIT_OK


# ---------------------------------------------------------------------------
# settings and decision commands


def _cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    from .traps import Severity, check

    findings = check(_load(args.settings))
    for finding in findings:
        record = {
            "code": finding.code,
            "severity": finding.severity.value,
            "key": finding.key,
            "message": finding.message,
        }
        _emit(out, args.json, record, str(finding))
    if not findings and not args.json:
        out.write("no findings\n")
    return EXIT_ERROR if any(f.severity is Severity.ERROR for f in findings) else EXIT_OK


def _decision_record(decision: Any) -> dict[str, Any]:
    return {
        "recipient": decision.recipient,
        "action": decision.action.value,
        "reason": decision.reason.value,
        "reply": decision.reply,
        "ndr": decision.ndr,
        "resolved": decision.resolved,
        "next_hop": decision.next_hop,
        "detail": decision.detail,
    }


def _cmd_decide(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    from .decision import Action, Envelope, decide

    settings = _load(args.settings)
    recipients = list(_arguments(args.recipient, stdin))
    verdict = decide(
        Envelope(args.sender, recipients),
        args.ip,
        settings,
        authenticated=args.auth,
        server_ip=args.server_ip,
    )
    for d in verdict:
        text = f"{d.recipient}\t{d.action.value}\t{d.reason.value}\t{d.reply}\t{d.detail}"
        _emit(out, args.json, _decision_record(d), text)
    return EXIT_RETURNED if any(d.action is Action.RETURN for d in verdict) else EXIT_OK


def _cmd_audit(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    from .audit import audit

    settings = _load(args.settings)
    report = audit(
        settings,
        args.ip,
        authenticated=args.auth,
        server_ip=args.server_ip,
        local=args.local,
        remote=args.remote,
    )
    for probe in report.probes:
        d = probe.decision
        flag = "RELAYS" if probe.relays else "ok"
        record = {
            "name": probe.trick.name,
            "source": probe.trick.source,
            "sender": probe.sender,
            **_decision_record(d),
            "relays": probe.relays,
        }
        text = f"{flag:6}\t{probe.trick.name}\t{d.recipient}\t{d.action.value}\t{d.reason.value}"
        _emit(out, args.json, record, text)
    summary = (
        f"{len(report.probes)} tricks from {report.client}: "
        f"{len(report.relayed)} would relay, {len(report.probes) - len(report.relayed)} would not"
    )
    err.write(summary + "\n")
    return EXIT_RETURNED if report.relayed else EXIT_OK


def _cmd_replay(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    from .replay_command import replay_command

    return replay_command(
        _load(args.settings),
        None if args.compare is None else _load(args.compare),
        args.log,
        out=out,
        err=err,
        stdin=stdin,
        jobs=args.jobs,
        summary_only=args.summary_only,
        group_by=args.group_by,
        as_json=args.json,
    )


def _processes(text: str) -> int:
    """``--jobs``: a positive number of processes."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 1 process")
    return value


# ---------------------------------------------------------------------------


Handler = Callable[[argparse.Namespace, TextIO, TextIO, TextIO], int]


def _elsewhere(module: str, name: str) -> Handler:
    """The handler *name* of ``imcea.<module>``, imported only when its command runs."""

    def handler(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
        run: Handler = getattr(importlib.import_module(f".{module}", __package__), name)
        return run(args, out, err, stdin)

    return handler


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imcea",
        description="IMCEA-encapsulated addresses and the Exchange 5.5 IMS relay decision.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Handler, text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        p.set_defaults(handler=handler)
        p.add_argument("--json", action="store_true", help="one JSON object per line")
        return p

    p = command("decode", _cmd_decode, "decode encapsulated addresses")
    p.add_argument("address", nargs="*", help="addresses, or - for one per line on stdin")
    p.add_argument("--lenient", action="store_true", help="read like Exchange's tolerant reader")

    p = command("encode", _cmd_encode, "encapsulate addresses")
    p.add_argument("--type", required=True, help="address type, e.g. SMTP, EX, X400")
    p.add_argument("--domain", required=True, help="the domain after the '@'")
    p.add_argument("address", nargs="*", help="addresses, or - for one per line on stdin")

    p = command("x500", _cmd_x500, "print the X500 proxy of every IMCEAEX address in NDR text")
    p.add_argument("file", nargs="?", help="a file of NDR text, or - for stdin (the default)")

    p = command("check", _cmd_check, "report the configuration traps in the settings")
    p.add_argument("--settings", metavar="FILE", help="settings file (default: built-in)")

    p = command("decide", _cmd_decide, "decide what the IMS does with each recipient")
    p.add_argument("--settings", metavar="FILE", help="settings file (default: built-in)")
    p.add_argument("--ip", required=True, help="the client's IP address")
    p.add_argument("--auth", action="store_true", help="the client has authenticated")
    p.add_argument("--server-ip", metavar="IP", help="the server address the client connected to")
    p.add_argument("--from", dest="sender", default="", metavar="SENDER", help="MAIL FROM")
    p.add_argument("recipient", nargs="*", help="recipients, or - for one per line on stdin")

    p = command("audit", _cmd_audit, "run the classic relay-test battery against the settings")
    p.add_argument("--settings", metavar="FILE", help="settings file (default: built-in)")
    p.add_argument("--ip", required=True, help="the client's IP address")
    p.add_argument("--auth", action="store_true", help="the client has authenticated")
    p.add_argument("--server-ip", metavar="IP", help="the server address the client connected to")
    p.add_argument("--local", metavar="DOMAIN", help="the server's own domain (default: guessed)")
    p.add_argument(
        "--remote",
        metavar="DOMAIN",
        default="relay-target.example",
        help="the third-party domain the tricks try to reach",
    )

    p = command("replay", _cmd_replay, "decide every envelope of a JSON-lines mail log")
    p.add_argument("--settings", metavar="FILE", help="settings file (default: built-in)")
    p.add_argument(
        "--compare", metavar="FILE", help="other settings: print only the changed recipients"
    )
    p.add_argument(
        "--jobs",
        type=_processes,
        default=1,
        metavar="N",
        help="spread the work over N processes (the output stays in input order)",
    )
    p.add_argument(
        "--summary-only", action="store_true", help="no line per recipient: only the summary"
    )
    p.add_argument(
        "--group-by",
        choices=["reason", "client", "domain"],
        help="count the results by reason, client or recipient domain, with the first example"
        " of each (a table on stderr; with --json, one JSON object on stdout)",
    )
    p.add_argument("log", nargs="?", metavar="LOG.jsonl", help="a JSON-lines log, or - (stdin)")

    p = command(
        "verify", _elsewhere("cases", "run_verify"), "run policy case files against their settings"
    )
    p.add_argument("cases", nargs="+", metavar="CASES.toml", help="policy case files")

    p = command(
        "policy",
        _elsewhere("policy_server", "run_policy"),
        "serve Postfix policy requests (check_policy_service)",
    )
    p.add_argument("--settings", metavar="FILE", help="settings file (default: built-in)")
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="serve TCP on this address (default: one conversation on stdin/stdout, for spawn(8))",
    )
    p.add_argument(
        "--bounce-like-ims",
        action="store_true",
        help="answer DUNNO for recipients the IMS accepts and returns later, "
        "instead of rejecting them at RCPT",
    )
    p.add_argument("--verbose", action="store_true", help="log one line per request on stderr")
    return parser


def main(argv: Iterable[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(None if argv is None else list(argv))
    handler: Handler = args.handler
    try:
        return handler(args, sys.stdout, sys.stderr, sys.stdin)
    except Error as exc:
        _fail(sys.stderr, args.command, None, exc)
        return EXIT_ERROR
    except BrokenPipeError:  # e.g. piped into head
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
