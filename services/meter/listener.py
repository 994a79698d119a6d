"""The meter's listening socket and its HTTP protocol: the port is taken before anything else starts, and no
connection may hold a descriptor for long without sending a whole request.

uvicorn bounds neither: its keep-alive timeout runs only between requests, and `limit_concurrency` answers 503 to a
request but keeps every connection that never finishes one. So a half-open connection (headers or body trickled, or
never sent) held a descriptor until the client let go. Here, a request must arrive whole within REQUEST_READ_TIMEOUT
of its first byte (or of the connection), and connections beyond MAX_CONNECTIONS are closed as they come.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import resource
import socket
from pathlib import Path
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from foundation.errors import InputError

REQUEST_READ_TIMEOUT = 10.0
"""Seconds from a connection's first byte (or a request's) until its headers and body are all in. Twilio and Kong
send a few KiB from nearby; a client that cannot do it in 10 s is gone or hostile."""
MAX_CONNECTIONS = 2048
"""Open connections at most; more are closed on arrival (Kong keeps a small pool; Twilio opens one per callback).
Fewer when the descriptor limit is lower: see connection_limit()."""
RESERVED_FDS = 128
"""Descriptors kept for everything but connections: the spool and its WAL, the Twilio client, logs, the listener."""
BACKLOG = 2048


class ConnectionStats:
    """Counters for /metrics (one event loop writes them)."""

    refused = 0
    """Connections closed on arrival: MAX_CONNECTIONS were open."""
    timed_out = 0
    """Connections closed because a request did not arrive whole in time."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for reading each request and a cap on connections."""

    _read_deadline: asyncio.TimerHandle | None = None

    limit = MAX_CONNECTIONS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limit:
            ConnectionStats.refused += 1
            transport.abort()  # the descriptor now, not after a FIN handshake
            return
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._read_deadline = self.loop.call_later(REQUEST_READ_TIMEOUT, self._too_slow)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _too_slow(self) -> None:
        self._read_deadline = None
        if self.transport.is_closing():
            return
        ConnectionStats.timed_out += 1
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the handler reading the body sees a disconnect
            self.cycle.message_event.set()
        self.transport.abort()


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, before the spool or the flusher start: a port in use is bad input (exit 2) that names
    --port and, where /proc tells, the process holding it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # uvicorn's own choice: restart fast over TIME_WAIT; a port another socket LISTENs on is still refused.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            holder = port_holder(port)
            who = f" by {holder}" if holder else ""
            raise InputError.single("--port", str(port), f"{host}:{port} is already in use{who}") from None
        raise InputError.single("--host", host, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(False)
    return sock


def port_holder(port: int) -> str | None:
    """`pid N (command)` of the process listening on `port`, from /proc (Linux; None when it cannot tell)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                        return f"pid {proc.name} ({command.strip()[:120]})"
    return None


def connection_limit() -> int:
    """MAX_CONNECTIONS, or fewer if the descriptor limit would run out first (the soft limit raised to the hard one
    first, as servers do): accept() failing with EMFILE is what exhausted the meter before."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(16, min(MAX_CONNECTIONS, soft - RESERVED_FDS))


def uvicorn_limits() -> dict[str, Any]:
    """uvicorn.Config arguments that go with the socket and protocol above."""
    GuardedHttpToolsProtocol.limit = connection_limit()
    return {"http": GuardedHttpToolsProtocol, "backlog": BACKLOG, "timeout_keep_alive": 5}
