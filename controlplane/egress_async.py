"""Outbound HTTP on asyncio, under the same allow-list as controlplane/egress.py.

Why a client of our own: a webhook call through urllib3 on a thread of its own cost about
440 µs of CPU per call with 64 threads in flight (parsing, and the threads fighting over the
GIL), against about 75 µs on one event loop (measured in docs/performance.md). Delivery is
CPU-bound long before the downstream is, so the loop is what lets a worker keep up with it.

It speaks the HTTP/1.1 a webhook needs and nothing more: one request with a body per call,
keep-alive connections per origin, responses framed by Content-Length, chunked encoding or
the end of the connection, interim 1xx answers skipped, redirects never followed (the caller
sees the 3xx). A connection is opened only to an address that `egress.permitted_addresses`
lets the host reach, resolved here and connected to by IP, so a name rebound between the check
and the call cannot lead elsewhere; TLS still verifies the name. Each call is bounded by its
connect timeout, a timeout on each read, and a total deadline.

Callers check the URL itself first (`egress.check_url`), as with the synchronous client.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from controlplane import egress

MAX_HEAD = 64 * 1024  # status line and headers
MAX_BODY = 1 << 20  # a longer answer is not read to its end: the connection is dropped
KEEP_BODY = 4096  # what of the body the caller gets (errors show a snippet)
IDLE_S = 30.0  # an idle connection older than this is closed rather than reused


class EgressError(Exception):
    """The call could not be made or its answer could not be read (not a timeout)."""


class ConnectError(EgressError):
    """No connection: refused, unreachable, not resolvable, or not allowed by the allow-list."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes  # the first KEEP_BODY bytes


@dataclass(frozen=True)
class _Origin:
    scheme: str
    host: str  # as written in the URL, without brackets
    port: int
    path: str  # path and query, as sent in the request line
    host_header: str


@lru_cache(maxsize=1024)
def _origin(url: str) -> _Origin:
    parts = urlsplit(url)
    scheme = parts.scheme
    host = parts.hostname or ""
    port = parts.port or egress.DEFAULT_PORTS[scheme]
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == egress.DEFAULT_PORTS[scheme] else f"{shown}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Origin(scheme, host, port, path, host_header)


class _Connection:
    __slots__ = ("reader", "writer", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def usable(self, now: float) -> bool:
        # A peer that closed an idle connection has been seen by the loop already (EOF).
        return (
            not self.writer.is_closing()
            and not self.reader.at_eof()
            and now - self.idle_since < IDLE_S
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class AsyncClient:
    """Keep-alive pools per origin; use from the one event loop that made it."""

    def __init__(self, *, max_idle_per_origin: int = 64) -> None:
        self.max_idle = max_idle_per_origin
        self.idle: dict[tuple[str, str, int], deque[_Connection]] = defaultdict(deque)
        self._tls: ssl.SSLContext | None = None

    async def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        connect_timeout: float,
        read_timeout: float,
        total_timeout: float,
    ) -> Response:
        """POST `body` to `url`. TimeoutError past any of the three bounds; ConnectError when
        no connection could be made; EgressError when the answer is not HTTP."""
        origin = _origin(url)
        head = _request_head(origin, headers, len(body))
        # A read bound as long as the whole call's adds nothing but a timer per read.
        read_bound = read_timeout if read_timeout < total_timeout else None
        async with asyncio.timeout(total_timeout):
            conn = self._take(origin)
            if conn is not None:
                try:
                    return await self._exchange(origin, conn, head + body, read_bound)
                except _Stale:
                    pass  # closed by the peer as we reused it: nothing was answered, try anew
            conn = await self._connect(origin, connect_timeout)
            try:
                return await self._exchange(origin, conn, head + body, read_bound)
            except _Stale:
                raise EgressError("the connection closed before an answer") from None

    def close(self) -> None:
        for queue in self.idle.values():
            while queue:
                queue.popleft().close()

    def close_stale(self) -> int:
        """Close the idle connections that may not be reused any more (closed by the peer, or
        idle past IDLE_S), so a downstream no longer called holds no sockets; returns how many."""
        now = time.monotonic()
        closed = 0
        for key in list(self.idle):
            queue = self.idle[key]
            kept = deque(conn for conn in queue if conn.usable(now))
            closed += len(queue) - len(kept)
            for conn in queue:
                if conn not in kept:
                    conn.close()
            if kept:
                self.idle[key] = kept
            else:
                del self.idle[key]
        return closed

    # --- connections ---------------------------------------------------------------------------

    def _take(self, origin: _Origin) -> _Connection | None:
        queue = self.idle.get((origin.scheme, origin.host, origin.port))
        now = time.monotonic()
        while queue:
            conn = queue.pop()  # the most recently used: the likeliest to be alive
            if conn.usable(now):
                return conn
            conn.close()
        return None

    def _give_back(self, origin: _Origin, conn: _Connection) -> None:
        queue = self.idle[(origin.scheme, origin.host, origin.port)]
        if len(queue) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        queue.append(conn)

    async def _connect(self, origin: _Origin, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            ip = egress.literal_ip(origin.host)
            if ip is not None:
                addresses = [ip]
            else:
                try:
                    infos = await loop.getaddrinfo(
                        origin.host, origin.port, type=socket.SOCK_STREAM
                    )
                except socket.gaierror as exc:
                    raise ConnectError(f"cannot resolve {origin.host}: {exc}") from None
                addresses = _unique(info[4][0] for info in infos)
            try:
                allowed = egress.permitted_addresses(
                    origin.scheme, origin.host, origin.port, addresses
                )
            except PermissionError as exc:
                raise ConnectError(str(exc)) from None
            tls = self._tls_context() if origin.scheme == "https" else None
            error: OSError | None = None
            for address in allowed:
                try:
                    reader, writer = await asyncio.open_connection(
                        str(address),
                        origin.port,
                        ssl=tls,
                        server_hostname=origin.host if tls else None,
                        limit=MAX_HEAD,
                    )
                except ssl.SSLError as exc:
                    raise ConnectError(f"TLS with {origin.host} failed: {exc}") from None
                except OSError as exc:
                    error = exc
                    continue
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return _Connection(reader, writer)
        raise ConnectError(f"cannot connect to {origin.host}:{origin.port}: {error}")

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    # --- one exchange --------------------------------------------------------------------------

    async def _exchange(
        self, origin: _Origin, conn: _Connection, request: bytes, read_timeout: float | None
    ) -> Response:
        reused = conn.idle_since > 0
        try:
            conn.writer.write(request)
            if len(request) > 65536:
                await conn.writer.drain()
            status, keep_alive, body = await _read_response(conn.reader, read_timeout, reused)
        except BaseException:
            conn.close()  # half-read or cancelled: never reused
            raise
        if keep_alive:
            self._give_back(origin, conn)
        else:
            conn.close()
        return Response(status, body)


class _Stale(Exception):
    """A reused connection ended before any byte of the answer."""


def _unique(hosts) -> list[egress.IPAddress]:
    out: list[egress.IPAddress] = []
    for host in hosts:
        address = egress.literal_ip(str(host).split("%")[0])
        if address is not None and address not in out:
            out.append(address)
    return out


def _request_head(origin: _Origin, headers: dict[str, str], length: int) -> bytes:
    lines = [f"POST {origin.path} HTTP/1.1", f"Host: {origin.host_header}"]
    for name, value in headers.items():
        if not _safe(name) or not _safe(value):
            raise ValueError(f"header {name!r} has a value that cannot be sent")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _safe(text: str) -> bool:
    return "\r" not in text and "\n" not in text and "\0" not in text


async def _read(coro, timeout: float | None):
    if timeout is None:
        return await coro
    async with asyncio.timeout(timeout):
        return await coro


async def _read_response(
    reader: asyncio.StreamReader, timeout: float | None, reused: bool
) -> tuple[int, bool, bytes]:
    """(status, whether the connection may be reused, the body's first KEEP_BODY bytes)."""
    while True:
        try:
            head = await _read(reader.readuntil(b"\r\n\r\n"), timeout)
        except asyncio.IncompleteReadError as exc:
            if reused and not exc.partial:
                raise _Stale() from None
            raise EgressError("the connection closed before the answer's headers") from None
        except asyncio.LimitOverrunError:
            raise EgressError(f"the answer's headers exceed {MAX_HEAD} bytes") from None
        reused = False
        status, version, fields = _parse_head(head)
        if 100 <= status < 200 and status != 101:
            continue  # 100 Continue and other interim answers: the real one follows
        break
    connection = fields.get("connection", "").lower()
    keep_alive = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)
    if status in (204, 304) or status == 101:
        return status, keep_alive and status != 101, b""
    if "chunked" in fields.get("transfer-encoding", "").lower():
        body, complete = await _read_chunked(reader, timeout)
        return status, keep_alive and complete, body
    if "content-length" in fields:
        try:
            length = int(fields["content-length"])
        except ValueError:
            raise EgressError("the answer's Content-Length is not a number") from None
        if length < 0:
            raise EgressError("the answer's Content-Length is negative")
        if length > MAX_BODY:
            kept = await _read(reader.read(KEEP_BODY), timeout)
            return status, False, kept
        body = await _read_exactly(reader, length, timeout)
        return status, keep_alive, body[:KEEP_BODY]
    # Neither: the body ends with the connection.
    kept = bytearray()
    total = 0
    while total <= MAX_BODY:
        chunk = await _read(reader.read(65536), timeout)
        if not chunk:
            break
        total += len(chunk)
        if len(kept) < KEEP_BODY:
            kept += chunk[: KEEP_BODY - len(kept)]
    return status, False, bytes(kept)


def _parse_head(head: bytes) -> tuple[int, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise EgressError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise EgressError(f"a malformed header line in the answer: {line[:80]!r}")
        key = name.strip().lower()
        value = value.strip()
        fields[key] = f"{fields[key]}, {value}" if key in fields else value
    return int(parts[1]), parts[0], fields


async def _read_exactly(reader: asyncio.StreamReader, n: int, timeout: float | None) -> bytes:
    try:
        return await _read(reader.readexactly(n), timeout)
    except asyncio.IncompleteReadError:
        raise EgressError("the connection closed before the end of the answer") from None


async def _read_chunked(reader: asyncio.StreamReader, timeout: float | None) -> tuple[bytes, bool]:
    """The body's first KEEP_BODY bytes, and whether it was read to its end."""
    kept = bytearray()
    total = 0
    while True:
        try:
            line = await _read(reader.readuntil(b"\r\n"), timeout)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            raise EgressError("a malformed chunked answer") from None
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise EgressError("a malformed chunk size in the answer") from None
        if size == 0:
            break
        total += size
        if total > MAX_BODY:
            return bytes(kept), False
        data = await _read_exactly(reader, size + 2, timeout)
        if len(kept) < KEEP_BODY:
            kept += data[: min(size, KEEP_BODY - len(kept))]
    while True:  # trailers, up to the blank line
        try:
            line = await _read(reader.readuntil(b"\r\n"), timeout)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            raise EgressError("a malformed chunked answer") from None
        if line == b"\r\n":
            return bytes(kept), True
