"""``imcea policy``: a Postfix policy server that answers with the IMS decision.

Two ways to run it, as Postfix SMTPD_POLICY_README describes them:

- ``--listen HOST:PORT``: an asyncio TCP server for ``check_policy_service
  inet:HOST:PORT``.  Each connection carries many requests (Postfix keeps it open), many
  connections are served at once.
- without ``--listen``: one conversation on standard input and output, the way
  Postfix's spawn(8) runs a policy server for ``check_policy_service unix:private/...``.

The protocol, the mapping of decisions to actions and the bounds are
:mod:`imcea.postfix`'s; this module only moves bytes.  As the protocol asks, a malformed
request is logged and the connection closed without a reply, so that Postfix retries;
an unexpected failure while deciding is answered ``451 4.3.0`` so that no request can
take the server down.  SIGTERM (and SIGINT) stop the server cleanly: it stops
listening, closes the open connections after the replies already written, and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import IO, TextIO

from .decider import Decider
from .errors import Error
from .exits import Exit
from .postfix import (
    MAX_LINE,
    MAX_REQUEST,
    TEMPFAIL,
    PolicyParser,
    PolicyRequest,
    answer,
    format_reply,
    respond,
)
from .settings import Settings

__all__ = ["PolicyService", "parse_listen", "policy_command", "serve_tcp"]

EXIT_OK = Exit.CLEAN
#: A malformed request on standard input, or an address the server cannot listen on.
EXIT_ERROR = Exit.TROUBLE

#: Bytes read from a connection at a time.
READ_SIZE = 65536
#: Seconds a connection may stay silent before it is closed (Postfix closes an idle
#: policy connection after smtpd_policy_service_max_idle, 300 s by default).
IDLE_TIMEOUT = 600.0
#: Seconds the open connections get to finish after SIGTERM.
SHUTDOWN_GRACE = 5.0
#: Replies remembered by their action (most actions recur: DUNNO, the IMS's refusals).
REPLIES_REMEMBERED = 1024

_INTERNAL_ERROR_REPLY = format_reply(f"{TEMPFAIL} Policy service internal error")


class PolicyService:
    """What the server does with requests, whatever the transport: decide and log.

    *log* receives one line per event (malformed request, internal error, and with
    *verbose* one line per answered request).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        bounce_like_ims: bool = False,
        ims_local_parts: bool = False,
        log: TextIO | None = None,
        verbose: bool = False,
        max_line: int = MAX_LINE,
        max_request: int = MAX_REQUEST,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.settings = settings
        self.decider = Decider(settings)  # what it remembers serves every connection
        self.bounce_like_ims = bounce_like_ims
        self.ims_local_parts = ims_local_parts
        self.log_stream = log if log is not None else sys.stderr
        self.verbose = verbose
        self.max_line = max_line
        self.max_request = max_request
        self.idle_timeout = idle_timeout
        self._replies: dict[str, bytes] = {}  # the reply of each recurring action
        self._open: set[_PolicyProtocol] = set()  # the open TCP connections
        self._all_closed: asyncio.Event | None = None

    def log(self, message: str) -> None:
        """Write one line to the log (and never let a log failure stop the server)."""
        with contextlib.suppress(OSError, ValueError):
            self.log_stream.write(f"imcea policy: {' '.join(message.split())}\n")
            self.log_stream.flush()

    def parser(self) -> PolicyParser:
        """A parser with this service's bounds, one per connection."""
        return PolicyParser(max_line=self.max_line, max_request=self.max_request)

    def reply(self, request: PolicyRequest, peer: str = "") -> bytes:
        """The reply to one request; an unexpected failure is a ``451 4.3.0``."""
        try:
            if self.verbose:
                action = self._answer_logged(request, peer)
            else:
                action = respond(
                    request,
                    self.decider,
                    bounce_like_ims=self.bounce_like_ims,
                    ims_local_parts=self.ims_local_parts,
                )
            replies = self._replies
            reply = replies.get(action)
            if reply is None:
                reply = format_reply(action)
                if len(replies) >= REPLIES_REMEMBERED:
                    replies.clear()
                replies[action] = reply
        except Exception as exc:  # a policy server must keep answering Postfix
            self.log(f"{peer}: internal error, answered {TEMPFAIL}: {type(exc).__name__}: {exc}")
            return _INTERNAL_ERROR_REPLY
        return reply

    def _answer_logged(self, request: PolicyRequest, peer: str) -> str:
        """The action for *request*, with a log line that says why."""
        result = answer(
            request,
            self.decider,
            bounce_like_ims=self.bounce_like_ims,
            ims_local_parts=self.ims_local_parts,
        )
        d = result.decision
        what = result.note if d is None else f"{d.action.value} {d.reason.value}"
        if d is not None and result.reason != d.reason.value:
            what = f"{what}, {result.reason}: {result.detail}"
        self.log(
            f"{peer}: client={request.client_address} recipient={request.recipient!r} "
            f"-> {result.action} ({what})"
        )
        return result.action

    def replies(self, parser: PolicyParser, data: bytes, peer: str) -> tuple[bytes, bool]:
        """The replies to the requests *data* completes, and whether the input is malformed.

        Requests before a malformed one are answered; the malformed one is logged.
        """
        requests = parser.read(data)
        reply = self.reply
        if len(requests) == 1:  # the usual piece: one request, as Postfix waits for each reply
            out = reply(requests[0], peer)
        else:
            out = b"".join([reply(request, peer) for request in requests])
        error = parser.error
        if error is not None:
            self.log(f"{peer}: malformed request, connection closed without a reply: {error}")
            return out, True
        return out, False

    # -- TCP -------------------------------------------------------------------

    def protocol(self) -> asyncio.Protocol:
        """The protocol instance for one new TCP connection (``loop.create_server``)."""
        return _PolicyProtocol(self)

    async def sweep_idle(self) -> None:
        """Close the connections silent for longer than ``idle_timeout``, until cancelled.

        One sweep every few seconds costs less than a timer around every read.
        """
        loop = asyncio.get_running_loop()
        interval = min(self.idle_timeout / 4, 10.0)
        while True:
            await asyncio.sleep(interval)
            limit = loop.time() - self.idle_timeout
            for connection in list(self._open):
                if connection.last_input < limit:
                    self.log(f"{connection.peer}: idle for {self.idle_timeout:g} s, closed")
                    connection.close()

    async def close_connections(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Close every open connection; replies already written are sent first."""
        if not self._open:
            return
        self._all_closed = asyncio.Event()
        for connection in list(self._open):
            connection.close()
        try:
            await asyncio.wait_for(self._all_closed.wait(), grace)
        except TimeoutError:  # a peer that does not read its replies
            for connection in list(self._open):
                connection.abort()

    def _opened(self, connection: _PolicyProtocol) -> None:
        self._open.add(connection)

    def _closed(self, connection: _PolicyProtocol) -> None:
        self._open.discard(connection)
        if not self._open and self._all_closed is not None:
            self._all_closed.set()

    # -- standard input and output ---------------------------------------------

    def serve_stdio(self, stdin: IO[bytes] | IO[str], stdout: IO[bytes] | IO[str]) -> int:
        """One conversation on *stdin* and *stdout* (spawn(8)); returns the exit status.

        Ends with 0 at end of input or on SIGTERM, with 1 after a malformed request.
        """
        parser = self.parser()
        write = _writer(stdout)
        try:
            with _terminate_on_signals():
                for data in _chunks(stdin):
                    out, malformed = self.replies(parser, data, "stdin")
                    if out:
                        write(out)
                    if malformed:
                        return EXIT_ERROR
        except _Terminated:
            return EXIT_OK
        except BrokenPipeError:
            self.log("stdout: the peer went away")
            return EXIT_OK
        if parser.pending:
            self.log("stdin: input ended in the middle of a request")
        return EXIT_OK


class _PolicyProtocol(asyncio.Protocol):
    """One policy connection: bytes in, replies out, in the order of the requests.

    A protocol rather than streams: a request costs a call, not a coroutine switch.
    When the peer stops reading its replies, reading stops too (flow control).
    """

    def __init__(self, service: PolicyService) -> None:
        self.service = service
        self.parser = service.parser()
        self.transport: asyncio.Transport | None = None
        self.peer = "peer"
        self._clock = asyncio.get_running_loop().time
        self.last_input = self._clock()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peer = _peer_text(transport.get_extra_info("peername"))
        self.service._opened(self)

    def data_received(self, data: bytes) -> None:
        self.last_input = self._clock()
        out, malformed = self.service.replies(self.parser, data, self.peer)
        assert self.transport is not None
        if out:
            self.transport.write(out)
        if malformed:
            self.transport.close()  # after the replies to the requests before it

    def eof_received(self) -> bool:
        if self.parser.pending:
            self.service.log(f"{self.peer}: connection closed in the middle of a request")
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.service.log(f"{self.peer}: connection lost: {exc}")
        self.service._closed(self)

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _peer_text(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(peer) if peer else "peer"


def _chunks(stream: IO[bytes] | IO[str]) -> Iterator[bytes]:
    """The bytes of *stream* as they arrive (a pipe or a socket does not wait for more)."""
    binary = getattr(stream, "buffer", stream)
    read1 = getattr(binary, "read1", None)
    if read1 is not None:
        while chunk := read1(READ_SIZE):
            yield bytes(chunk)
        return
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        fd = -1
    if fd >= 0:
        while chunk := os.read(fd, READ_SIZE):
            yield chunk
        return
    while text := stream.read(READ_SIZE):  # an in-memory text stream
        yield text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text


def _writer(stream: IO[bytes] | IO[str]) -> Callable[[bytes], None]:
    """A function that writes and flushes bytes on *stream*, binary or text."""
    binary = getattr(stream, "buffer", None)
    if binary is not None:
        stream.flush()  # anything written as text before comes first

        def write_binary(data: bytes) -> None:
            binary.write(data)
            binary.flush()

        return write_binary
    if isinstance(stream, io.TextIOBase):  # an in-memory text stream
        text_stream = stream

        def write_text(data: bytes) -> None:
            text_stream.write(data.decode("utf-8"))
            text_stream.flush()

        return write_text
    bytes_stream: IO[bytes] = stream  # type: ignore[assignment]

    def write_bytes(data: bytes) -> None:
        bytes_stream.write(data)
        bytes_stream.flush()

    return write_bytes


class _Terminated(Exception):
    """Raised by the signal handler of the standard input loop."""


@contextlib.contextmanager
def _terminate_on_signals() -> Iterator[None]:
    """SIGTERM and SIGINT end the blocking read of the standard input loop cleanly."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def serve_tcp(
    service: PolicyService,
    host: str,
    port: int,
    *,
    stop: asyncio.Event | None = None,
    ready: Callable[[Sequence[tuple[str, int]]], None] | None = None,
    handle_signals: bool = True,
) -> None:
    """Serve *service* on ``host:port`` until *stop* is set (or SIGTERM / SIGINT arrive).

    *ready* is called with the bound ``(host, port)`` addresses once the server listens
    (port 0 picks a free port).  Raises :class:`OSError` when the address cannot be bound.
    """
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(service.protocol, host, port, reuse_address=True)
    installed: list[signal.Signals] = []
    if handle_signals and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    sweeper = asyncio.create_task(service.sweep_idle())
    try:
        addresses = [(str(s.getsockname()[0]), int(s.getsockname()[1])) for s in server.sockets]
        if ready is not None:
            ready(addresses)
        await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        sweeper.cancel()
        server.close()
        await service.close_connections()
        await server.wait_closed()
        await asyncio.gather(sweeper, return_exceptions=True)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[IPv6]:PORT`` for IPv6) as a ``(host, port)`` pair.

    >>> parse_listen("127.0.0.1:10040"), parse_listen("[::1]:10040")
    (('127.0.0.1', 10040), ('::1', 10040))
    """
    host, sep, port_text = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise Error(f"--listen: {text!r} is not HOST:PORT")
    return host, int(port_text)


def policy_command(
    settings: Settings,
    *,
    listen: str | None = None,
    bounce_like_ims: bool = False,
    ims_local_parts: bool = False,
    verbose: bool = False,
    out: TextIO,
    err: TextIO,
    stdin: TextIO,
) -> int:
    """The ``imcea policy`` command: serve TCP on *listen* (``HOST:PORT``), else one
    conversation on *stdin* and *out*; the log goes to *err*.

    Returns the exit status: 0 after a clean stop (SIGTERM or SIGINT included), 2 when
    the listening address is bad (or, on stdin, after a malformed request).
    """
    service = PolicyService(
        settings,
        bounce_like_ims=bounce_like_ims,
        ims_local_parts=ims_local_parts,
        log=err,
        verbose=verbose,
    )
    if listen is None:
        return service.serve_stdio(stdin, out)
    host, port = parse_listen(listen)

    def ready(addresses: Sequence[tuple[str, int]]) -> None:
        where = ", ".join(_peer_text(a) for a in addresses)
        service.log(f"listening on {where}")

    try:
        asyncio.run(serve_tcp(service, host, port, ready=ready))
    except OSError as exc:
        service.log(f"cannot listen on {listen}: {exc.strerror or exc}")
        return EXIT_ERROR
    service.log("stopped")
    return EXIT_OK
