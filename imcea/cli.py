"""The ``imcea`` command line (also ``python -m imcea``).

Modelled on ``exim -bt`` and ``postmap -q``: one address per argument, or one per line
on standard input with ``-`` (or with no argument at all); ``--json`` prints one JSON
object per line.  Bad input is one line on standard error, never a traceback; the exit
status follows one table for every command (:mod:`imcea.exits`): 0 clean, 1 findings,
2 trouble, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from .errors import SHORT, Error, shorten
from .exits import EPILOG, Exit
from .wording import plural

if TYPE_CHECKING:
    from .networks import IPAddress
    from .settings import Settings

__all__ = ["main"]

#: What a command that was given no address at all says.
NO_ADDRESS = "no address: give them as arguments, or one per line on standard input"

#: The hint a command gives before it waits for addresses typed at a terminal.
STDIN_HINT = "reading addresses from standard input, one per line; end with Ctrl-D"


class InputError(Error):
    """Standard input that cannot be read as text: names the line, the byte and its offset."""


class UsageError(Error):
    """A command line that gives a command nothing to work on."""


#: A byte that was not UTF-8, as a text stream with ``surrogateescape`` shows it.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def _stdin_lines(stdin: TextIO, err: TextIO) -> Iterator[str | InputError]:
    """The non-blank lines of *stdin*, stripped; a line that is not UTF-8 is an
    :class:`InputError` in its place.  At a terminal, a hint on *err* comes first."""
    if stdin.isatty():
        err.write(f"imcea: {STDIN_HINT}\n")
        err.flush()
    offset = 0
    buffer = getattr(stdin, "buffer", None)
    if buffer is not None:
        for number, raw in enumerate(buffer, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield _not_utf8(number, raw[exc.start], offset + exc.start)
            else:
                if line.strip():
                    yield line.strip()
            offset += len(raw)
        return
    for number, line in enumerate(stdin, 1):  # a text stream: bad bytes as surrogates
        bad = _ESCAPED_BYTE.search(line)
        if bad is not None:
            before = len(line[: bad.start()].encode("utf-8", "surrogateescape"))
            yield _not_utf8(number, ord(bad.group()) - 0xDC00, offset + before)
        elif line.strip():
            yield line.strip()
        offset += len(line.encode("utf-8", "surrogateescape"))


def _not_utf8(line: int, byte: int, offset: int) -> InputError:
    return InputError(
        f"standard input line {line}: byte 0x{byte:02X} at offset {offset} is not UTF-8"
    )


def _arguments(values: Sequence[str], stdin: TextIO, err: TextIO) -> Iterator[str | InputError]:
    """The arguments, with ``-`` (or no argument at all) meaning one per line on stdin."""
    if not values:
        values = ["-"]
    for value in values:
        if value == "-":
            yield from _stdin_lines(stdin, err)
        else:
            yield value


def _emit(out: TextIO, as_json: bool, record: dict[str, Any], text: str) -> None:
    out.write((json.dumps(record, ensure_ascii=False) if as_json else text) + "\n")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _subject(text: str) -> str:
    """An input named at the start of a message: as it is when short and printable,
    else quoted short (:func:`imcea.errors.shorten`)."""
    if text and len(text) <= SHORT and text.isprintable() and text == text.strip():
        return text
    return shorten(text)


def _fail(err: TextIO, command: str, subject: str | None, exc: Exception) -> None:
    where = f"{_subject(subject)}: " if subject is not None else ""
    err.write(f"imcea {command}: {where}{_one_line(exc)}\n")


def _load(path: str | None, option: str = "--settings") -> Settings:
    """The settings of *path* (the built-in defaults without one); an error names the file."""
    from .errors import SettingsError
    from .settings import Settings, load_settings

    if path is None:
        return Settings()
    try:
        return load_settings(path)
    except SettingsError as exc:
        message = str(exc)
        if path in message:
            raise
        raise SettingsError(f"{option} {path}: {message}") from None


def _ip(value: str | None, option: str) -> IPAddress | None:
    """The IP address given with *option*, or ``None``; an error names the option."""
    from .networks import parse_ip

    return None if value is None else parse_ip(value, key=option)


def _bad_address(
    err: TextIO, out: TextIO, args: argparse.Namespace, address: str, exc: Error
) -> None:
    """An input that could not be converted: one line on stderr, and an error line in its
    place on stdout, so that output lines stay in step with the inputs."""
    _fail(err, args.command, None if isinstance(exc, InputError) else address, exc)
    message = _one_line(exc)
    _emit(out, args.json, {"input": address, "error": message}, f"error\t{message}")


# ---------------------------------------------------------------------------
# codec commands


def _cmd_decode(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    from .codec import decode

    status = Exit.CLEAN
    seen = 0
    for item in _arguments(args.address, stdin, err):
        seen += 1
        address = "" if isinstance(item, InputError) else item
        try:
            if isinstance(item, InputError):
                raise item
            value = decode(address, strict=not args.lenient)
        except Error as exc:
            _bad_address(err, out, args, address, exc)
            status = Exit.TROUBLE
            continue
        record = {
            "input": address,
            "type": value.addrtype,
            "address": value.address,
            "domain": value.domain,
            "canonical": str(value),
        }
        _emit(out, args.json, record, f"{value.addrtype}\t{value.address}\t{value.domain}")
    if seen == 0:
        raise UsageError(NO_ADDRESS)
    return status


def _cmd_encode(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    from .codec import encode

    try:  # the options hold for every address: a bad one is one error, not one per line
        encode(args.type, "x", args.domain)
    except Error as exc:
        option = "--type" if "type" in str(exc).split()[0] else "--domain"
        raise UsageError(f"{option}: {exc}") from None
    status = Exit.CLEAN
    seen = 0
    for item in _arguments(args.address, stdin, err):
        seen += 1
        address = "" if isinstance(item, InputError) else item
        try:
            if isinstance(item, InputError):
                raise item
            encoded = encode(args.type, address, args.domain)
        except Error as exc:
            _bad_address(err, out, args, address, exc)
            status = Exit.TROUBLE
            continue
        record = {"input": address, "type": args.type.upper(), "encapsulated": encoded}
        _emit(out, args.json, record, encoded)
    if seen == 0:
        raise UsageError(NO_ADDRESS)
    return status


def _cmd_x500(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    from .bounces import find_proxies

    if args.file in (None, "-"):
        if stdin.isatty():
            err.write("imcea: reading a non-delivery report from standard input; end with Ctrl-D\n")
        text = stdin.read()
    else:
        try:
            with open(args.file, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError as exc:
            _fail(err, "x500", args.file, Error(exc.strerror or str(exc)))
            return Exit.TROUBLE
    seen: set[str] = set()
    problems: list[str] = []
    for found in find_proxies(text):
        proxy = found.proxy
        if proxy is None:
            problems.append(f"{' '.join(found.text.split())}: {found.problem}")
            continue
        if proxy in seen:
            continue
        seen.add(proxy)
        for warning in found.warnings:
            err.write(f"imcea x500: {proxy}: warning: {warning}\n")
        record = {"x500": proxy, "encapsulated": found.text, "start": found.start}
        if found.warnings:
            record["warnings"] = list(found.warnings)
        _emit(out, args.json, record, proxy)
    if not seen:
        why = f": {problems[0]}" if problems else ""
        _fail(err, "x500", None, Error(f"no IMCEAEX address found{why}"))
        return Exit.TROUBLE
    for problem in problems:
        _fail(err, "x500", None, Error(problem))
    return Exit.TROUBLE if problems else Exit.CLEAN


# ---------------------------------------------------------------------------
# bounces

_BOUNCE_SUFFIXES = (".eml", ".msg", ".txt")


def _target(text: str) -> str:
    """``--target``: a kind of object that :func:`imcea.bounces.proxy_command` knows."""
    from .bounces import Target

    try:
        return Target(text).value
    except ValueError:
        kinds = ", ".join(t.value for t in Target)
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {kinds}") from None


def _bounce_sources(values: Sequence[str], err: TextIO) -> Iterator[str | None]:
    """The files to read, a directory giving its bounce files; None: one that is missing."""
    for value in values or ["-"]:
        if value != "-" and os.path.isdir(value):
            try:
                listing = os.listdir(value)
            except OSError as exc:
                _fail(err, "ndr", value, Error(exc.strerror or str(exc)))
                yield None
                continue
            names = sorted(
                os.path.join(value, name)
                for name in listing
                if name.lower().endswith(_BOUNCE_SUFFIXES)
                and os.path.isfile(os.path.join(value, name))
            )
            if not names:
                kinds = ", ".join(_BOUNCE_SUFFIXES)
                _fail(err, "ndr", value, Error(f"no bounce files ({kinds}) in this directory"))
                yield None
            yield from names
        else:
            yield value


def _cmd_ndr(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    import csv

    from .bounces import Bounce, Cause, proxy_command, read_bounce, read_bounce_file

    if args.csv and args.json:
        _fail(err, "ndr", None, Error("--csv and --json exclude each other"))
        return Exit.TROUBLE
    status = Exit.CLEAN
    merged: dict[str, list[Any]] = {}  # legacy DN, case-folded -> [DN, proxy, bounces, file]
    for name in _bounce_sources(args.source, err):
        if name is None:
            status = Exit.TROUBLE
            continue
        try:
            if name == "-":
                buffer = getattr(stdin, "buffer", None)
                bounce: Bounce = read_bounce(buffer.read() if buffer else stdin.read())
            else:
                bounce = read_bounce_file(name)
        except Error as exc:
            _fail(err, "ndr", "-" if name == "-" else None, exc)
            status = Exit.TROUBLE
            continue
        for note in bounce.notes:
            _fail(err, "ndr", name, Error(f"note: {note}"))
        if not bounce.recipients:
            _fail(err, "ndr", name, Error("no failed recipient in this report"))
        for r in bounce.recipients:
            command = None
            if r.proxy is not None:
                command = proxy_command(r.proxy, args.target, args.identity)
                dn = r.proxy[len("X500:") :]
                row = merged.setdefault(dn.casefold(), [dn, r.proxy, 0, name])
                row[2] += 1
            if args.csv:
                continue
            record = {
                "file": name,
                "address": r.address,
                "display_name": r.display_name,
                "type": r.value.addrtype if r.value is not None else None,
                "decoded": r.value.address if r.value is not None else None,
                "status": r.status,
                "diagnostic": r.diagnostic,
                "cause": r.cause.value,
                "explanation": r.explanation,
                "fix": r.fix,
                "proxy": r.proxy,
                "command": command,
                "warnings": list(r.warnings),
                "problem": r.problem,
            }
            who = f"{r.display_name} <{r.address}>" if r.display_name else r.address
            lines = [f"{name}: {who}", f"  cause:   {r.cause.value}, {r.status or 'no status'}"]
            lines.append(f"  why:     {r.explanation}")
            lines += [f"  warning: {warning}" for warning in r.warnings]
            if r.fix is not None:
                lines.append(f"  fix:     {r.fix}")
            if r.proxy is not None:
                lines += [f"  proxy:   {r.proxy}", f"  command: {command}"]
            elif r.cause is Cause.LEGACY_DN_NOT_FOUND:
                lines.append(f"  problem: {r.problem}")
            _emit(out, args.json, record, "\n".join(lines))
    if args.csv:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["legacy_dn", "proxy", "bounces", "first_file"])
        writer.writerows(merged.values())
    return status


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
    return Exit.FINDINGS if any(f.severity is Severity.ERROR for f in findings) else Exit.CLEAN


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
    client, server = _ip(args.ip, "--ip"), _ip(args.server_ip, "--server-ip")
    assert client is not None  # --ip is required
    recipients: list[str] = []
    for item in _arguments(args.recipient, stdin, err):
        if isinstance(item, InputError):
            raise item
        recipients.append(item)
    if not recipients:
        raise UsageError("no recipient: give them as arguments, or one per line on standard input")
    verdict = decide(
        Envelope(args.sender, recipients),
        client,
        settings,
        authenticated=args.auth,
        server_ip=server,
    )
    for d in verdict:
        text = f"{d.recipient}\t{d.action.value}\t{d.reason.value}\t{d.reply}\t{d.detail}"
        _emit(out, args.json, _decision_record(d), text)
    return Exit.FINDINGS if any(d.action is Action.RETURN for d in verdict) else Exit.CLEAN


def _cmd_audit(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    from .audit import audit

    settings = _load(args.settings)
    client, server = _ip(args.ip, "--ip"), _ip(args.server_ip, "--server-ip")
    assert client is not None  # --ip is required
    report = audit(
        settings,
        client,
        authenticated=args.auth,
        server_ip=server,
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
        f"{plural(len(report.probes), 'trick')} from {report.client}: "
        f"{len(report.relayed):,} would relay, "
        f"{len(report.probes) - len(report.relayed):,} would not"
    )
    err.write(summary + "\n")
    return Exit.FINDINGS if report.relayed else Exit.CLEAN


def _cmd_postfix_config(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    from .postfix import POLICY_SERVICE, main_cf

    service = POLICY_SERVICE if args.policy_service is None else args.policy_service
    out.write(main_cf(_load(args.settings), policy_service=service))
    return Exit.CLEAN


def _cmd_replay(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    from .replay_command import replay_command

    return replay_command(
        _load(args.settings),
        None if args.compare is None else _load(args.compare, "--compare"),
        args.log,
        format=args.format,
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


def _cmd_verify(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    from .cases import verify_command

    return verify_command(args.cases, out=out, err=err, as_json=args.json)


def _cmd_policy(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    from .policy_server import policy_command

    return policy_command(
        _load(args.settings),
        listen=args.listen,
        bounce_like_ims=args.bounce_like_ims,
        ims_local_parts=args.ims_local_parts,
        verbose=args.verbose,
        out=out,
        err=err,
        stdin=stdin,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imcea",
        description="IMCEA-encapsulated addresses and the Exchange 5.5 IMS relay decision.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"imcea {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str,
        handler: Handler,
        text: str,
        *,
        as_json: bool = True,
        json_help: str = "one JSON object per line",
        settings: bool = True,
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=text,
            description=text,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(handler=handler, json=False)
        if as_json:
            p.add_argument("--json", action="store_true", help=json_help)
        if settings:
            p.add_argument("--settings", metavar="FILE", help="settings file (default: built-in)")
        return p

    p = command("decode", _cmd_decode, "decode encapsulated addresses", settings=False)
    p.add_argument("address", nargs="*", help="addresses, or - for one per line on stdin")
    p.add_argument("--lenient", action="store_true", help="read like Exchange's tolerant reader")

    p = command("encode", _cmd_encode, "encapsulate addresses", settings=False)
    p.add_argument("--type", required=True, help="address type, e.g. SMTP, EX, X400")
    p.add_argument("--domain", required=True, help="the domain after the '@'")
    p.add_argument("address", nargs="*", help="addresses, or - for one per line on stdin")

    p = command(
        "x500",
        _cmd_x500,
        "print the X500 proxy of every IMCEAEX address in NDR text",
        settings=False,
    )
    p.add_argument("file", nargs="?", help="a file of NDR text, or - for stdin (the default)")

    p = command(
        "ndr",
        _cmd_ndr,
        "read non-delivery reports and print the fix for each failed recipient",
        settings=False,
    )
    p.add_argument(
        "source",
        nargs="*",
        metavar="FILE",
        help="bounces (.eml, pasted text, .msg with imcea[msg]), directories of them, "
        "or - for stdin (the default)",
    )
    p.add_argument(
        "--target",
        type=_target,
        default="mailbox",
        metavar="KIND",
        help="what gets the X500 proxy: mailbox (the default), mailuser, remote-mailbox "
        "(hybrid), contact or ad (Set-ADUser)",
    )
    p.add_argument(
        "--identity", metavar="ID", help="the object that gets the proxy (default: a placeholder)"
    )
    p.add_argument(
        "--csv",
        action="store_true",
        help="one CSV row per legacy DN over all the bounces: DN, proxy, bounces, first file",
    )

    p = command("check", _cmd_check, "report the configuration traps in the settings")

    p = command("decide", _cmd_decide, "decide what the IMS does with each recipient")
    p.add_argument("--ip", required=True, help="the client's IP address")
    p.add_argument("--auth", action="store_true", help="the client has authenticated")
    p.add_argument("--server-ip", metavar="IP", help="the server address the client connected to")
    p.add_argument("--from", dest="sender", default="", metavar="SENDER", help="MAIL FROM")
    p.add_argument("recipient", nargs="*", help="recipients, or - for one per line on stdin")

    p = command("audit", _cmd_audit, "run the classic relay-test battery against the settings")
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

    p = command(
        "replay",
        _cmd_replay,
        "decide every envelope of a mail log",
        json_help="the summary and the groups also as one JSON object, last on stdout",
    )
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
    p.add_argument(
        "--format",
        choices=["auto", "jsonl", "postfix", "exchange"],  # imcea.sources.Format, for a fast start
        default="auto",
        help="the log's format (default: auto, sniffed from the first lines of each file)",
    )
    p.add_argument(
        "log",
        nargs="*",
        metavar="LOG",
        help="log files, read in order as one log (.gz read as such), or - for stdin (the "
        "default): our JSON lines, a Postfix mail log, Exchange message tracking logs",
    )

    p = command(
        "verify", _cmd_verify, "run policy case files against their settings", settings=False
    )
    p.add_argument("cases", nargs="+", metavar="CASES.toml", help="policy case files")

    p = command(
        "policy",
        _cmd_policy,
        "serve Postfix policy requests (check_policy_service)",
        as_json=False,
    )
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
    p.add_argument(
        "--ims-local-parts",
        action="store_true",
        help="read %%, ! and @ in local parts as the IMS does: only for a Postfix with "
        "allow_percent_hack, swap_bangpath and resolve_dequoted_address set to no",
    )
    p.add_argument("--verbose", action="store_true", help="log one line per request on stderr")

    p = command(
        "postfix-config",
        _cmd_postfix_config,
        "print the main.cf lines that put Postfix in front of imcea policy",
        as_json=False,
    )
    p.add_argument(
        "--policy-service",
        metavar="SERVICE",
        help="where imcea policy listens, as check_policy_service takes it "
        "(default: inet:127.0.0.1:10040)",
    )
    return parser


def _version() -> str:
    """The installed distribution's version, or the package's own when not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("imcea")
    except PackageNotFoundError:
        from . import __version__

        return __version__


def main(argv: Iterable[str] | None = None) -> int:
    """Run the command line; returns the exit status (see :mod:`imcea.exits`)."""
    command = "imcea"
    try:
        args = _parser().parse_args(None if argv is None else list(argv))
        command = f"imcea {args.command}"
        handler: Handler = args.handler
        try:
            return int(handler(args, sys.stdout, sys.stderr, sys.stdin))
        except Error as exc:
            _fail(sys.stderr, args.command, None, exc)
            return Exit.TROUBLE
    except KeyboardInterrupt:
        sys.stderr.write(f"\n{command}: interrupted\n")
        return Exit.INTERRUPTED
    except BrokenPipeError:  # e.g. piped into head: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout
        return Exit.CLEAN


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
