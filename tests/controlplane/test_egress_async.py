"""The asyncio webhook client against real sockets: framing, keep-alive, timeouts, TLS and the
allow-list at connect time. Each server below is a real listening socket on 127.0.0.1 whose
answers are scripted byte for byte, so the client meets what real servers send."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from controlplane import egress_async
from controlplane.egress_async import AsyncClient, ConnectError, EgressError

pytestmark = pytest.mark.smoke

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


class Scripted:
    """A server that reads each request (head and Content-Length body) and answers with what
    `answer(n)` returns for the n-th request on the server; None closes the connection."""

    def __init__(self, answer, *, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.tls = tls
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/hook?x=1"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        if self.tls:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                conn.close()
                return
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                body, buffer = buffer[:length], buffer[length:]
                with self.lock:
                    self.requests.append(head + b"\r\n\r\n" + body)
                    n = len(self.requests)
                reply = self.answer(n)
                if reply is None:
                    return
                try:
                    if callable(reply):
                        if reply(conn) is False:
                            return
                        continue
                    conn.sendall(reply)
                except OSError:  # the client gave up (a timeout under test)
                    return

    def close(self) -> None:
        self.sock.close()


def post(url: str, *, client: AsyncClient | None = None, timeout: float = 2.0, body=b"{}", **kw):
    async def go():
        c = client or AsyncClient()
        try:
            return await c.post(
                url,
                body,
                kw.get("headers", {"Content-Type": "application/json"}),
                connect_timeout=kw.get("connect", timeout),
                read_timeout=kw.get("read", timeout),
                total_timeout=timeout,
            )
        finally:
            if client is None:
                c.close()

    return asyncio.run(go())


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def loopback_allowed(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1:*", "localhost:*"]


def test_the_request_carries_host_path_headers_and_body(loopback_allowed):
    server = Scripted(lambda n: OK)
    response = post(server.url, body=b'{"a":1}', headers={"X-Event-Id": "e-1"})
    assert (response.status, response.body) == (200, b"{}")
    request = server.requests[0]
    assert request.startswith(b"POST /hook?x=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n".encode() in request
    assert b"X-Event-Id: e-1\r\n" in request and b"Content-Length: 7\r\n" in request
    assert request.endswith(b'\r\n\r\n{"a":1}')


@pytest.mark.parametrize(
    "reply, status, body",
    [
        (b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhello", 201, b"hello"),
        (
            b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"4;ext=1\r\nboom\r\n3\r\n!!!\r\n0\r\nX-Trailer: t\r\n\r\n",
            500,
            b"boom!!!",
        ),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
            202,
            b"",
        ),
        (b"HTTP/1.1 204 No Content\r\n\r\n", 204, b""),
        (
            b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere/\r\nContent-Length: 0\r\n\r\n",
            302,
            b"",
        ),
    ],
    ids=["content-length", "chunked-with-trailers", "interim-100", "no-content", "redirect-seen"],
)
def test_answers_are_framed_and_the_connection_is_reused(loopback_allowed, reply, status, body):
    server = Scripted(lambda n: reply)
    client = AsyncClient()

    async def twice():
        first = await client.post(
            server.url, b"{}", {}, connect_timeout=2, read_timeout=2, total_timeout=2
        )
        second = await client.post(
            server.url, b"{}", {}, connect_timeout=2, read_timeout=2, total_timeout=2
        )
        client.close()
        return first, second

    first, second = run(twice())
    assert (first.status, first.body) == (second.status, second.body) == (status, body)
    assert server.connections == 1  # kept alive


def test_a_body_ended_by_closing_is_read_and_the_connection_not_reused(loopback_allowed):
    def close_delimited(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\n\r\nall of it")
        return False

    server = Scripted(lambda n: close_delimited)
    client = AsyncClient()

    async def twice():
        out = [
            await client.post(
                server.url, b"", {}, connect_timeout=2, read_timeout=2, total_timeout=2
            )
            for _ in range(2)
        ]
        client.close()
        return out

    assert [(r.status, r.body) for r in run(twice())] == [(200, b"all of it")] * 2
    assert server.connections == 2


def test_connection_close_is_honoured(loopback_allowed):
    reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    server = Scripted(lambda n: reply)
    client = AsyncClient()

    async def twice():
        for _ in range(2):
            await client.post(
                server.url, b"", {}, connect_timeout=2, read_timeout=2, total_timeout=2
            )
        client.close()

    run(twice())
    assert server.connections == 2


def test_a_kept_connection_the_server_dropped_is_replaced_without_losing_the_call(
    loopback_allowed,
):
    # The server answers without saying it will close, then closes: a stale kept connection.
    def answer_then_close(conn):
        conn.sendall(OK)
        time.sleep(0.05)
        return False

    server = Scripted(lambda n: answer_then_close)
    client = AsyncClient()

    async def twice():
        first = await client.post(
            server.url, b"", {}, connect_timeout=2, read_timeout=2, total_timeout=2
        )
        await asyncio.sleep(0.3)  # the FIN arrives while the connection is idle
        second = await client.post(
            server.url, b"", {}, connect_timeout=2, read_timeout=2, total_timeout=2
        )
        client.close()
        return first, second

    first, second = run(twice())
    assert first.status == second.status == 200
    assert len(server.requests) == 2 and server.connections == 2


def test_a_kept_connection_that_ends_before_answering_is_retried_once_on_a_new_one(
    loopback_allowed,
):
    # The second request arrives on the kept connection and the server drops it unanswered
    # (an idle timeout racing our reuse): the call goes again on a new connection.
    server = Scripted(lambda n: None if n == 2 else OK)
    client = AsyncClient()

    async def twice():
        out = [
            await client.post(
                server.url, b"", {}, connect_timeout=2, read_timeout=2, total_timeout=2
            )
            for _ in range(2)
        ]
        client.close()
        return out

    assert [r.status for r in run(twice())] == [200, 200]
    assert len(server.requests) == 3 and server.connections == 2


def test_a_new_connection_that_ends_before_answering_is_not_retried(loopback_allowed):
    server = Scripted(lambda n: None)
    with pytest.raises(EgressError, match="closed before"):
        post(server.url)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "reply, message",
    [
        (b"SMTP ready\r\n\r\n", "not an HTTP/1.x answer"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n", "not a number"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * (70 * 1024) + b"\r\n\r\n", "exceed"),
    ],
    ids=["not-http", "bad-header", "bad-length", "bad-chunk", "huge-head"],
)
def test_what_is_not_http_is_an_egress_error_naming_why(loopback_allowed, reply, message):
    server = Scripted(lambda n: reply)
    with pytest.raises(EgressError, match=message):
        post(server.url)


def test_a_huge_body_is_not_read_to_its_end(loopback_allowed):
    size = egress_async.MAX_BODY + 1

    def huge(conn):
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode() + b"x" * 8192)
        time.sleep(0.5)
        return False

    server = Scripted(lambda n: huge)
    response = post(server.url)
    assert response.status == 200 and len(response.body) <= egress_async.KEEP_BODY


def test_a_server_that_never_answers_times_out_on_schedule(loopback_allowed):
    server = Scripted(lambda n: lambda conn: time.sleep(5))
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        post(server.url, timeout=0.3)
    assert time.monotonic() - started < 2.0


def test_a_trickling_server_is_bounded_by_the_total_deadline(loopback_allowed):
    def trickle(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(100):
            conn.sendall(b"x")
            time.sleep(0.05)

    server = Scripted(lambda n: trickle)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        post(server.url, timeout=0.5, read=0.2)  # each read is quick; the whole is not
    assert time.monotonic() - started < 2.0


def test_a_read_bound_shorter_than_the_deadline_applies_to_each_read(loopback_allowed):
    def pause(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
        time.sleep(1.0)
        conn.sendall(b"{}")

    server = Scripted(lambda n: pause)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        post(server.url, timeout=3.0, read=0.2)
    assert time.monotonic() - started < 0.9


def test_a_refused_connection_is_a_connect_error(loopback_allowed):
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(ConnectError, match="cannot connect"):
        post(f"http://127.0.0.1:{port}/hook")


def test_the_connection_refuses_an_address_the_entry_does_not_let_the_name_reach(settings):
    # A pattern entry matches "localhost", which resolves to loopback: only an entry naming
    # localhost itself may reach it, so no socket is opened.
    server = Scripted(lambda n: OK)
    settings.WEBHOOK_ALLOWED_HOSTS = ["local*:*"]
    with pytest.raises(ConnectError, match="egress refused"):
        post(f"http://localhost:{server.port}/hook")
    assert server.connections == 0


def test_headers_that_could_split_the_request_are_refused(loopback_allowed):
    server = Scripted(lambda n: OK)
    with pytest.raises(ValueError, match="X-Evil"):
        post(server.url, headers={"X-Evil": "a\r\nInjected: yes"})
    assert server.requests == []


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    return server_side, cert


def test_tls_verifies_the_server_and_talks_through_it(loopback_allowed, tls_pair):
    server_side, cert = tls_pair
    server = Scripted(lambda n: OK, tls=server_side)
    with pytest.raises(ConnectError, match="TLS"):
        post(server.url)  # the default trust store does not know our test certificate
    trusting = AsyncClient()
    trusting._tls = ssl.create_default_context(cafile=str(cert))  # noqa: SLF001
    assert post(server.url, client=trusting).status == 200
    trusting.close()


def test_idle_connections_closed_by_the_peer_or_too_old_are_swept(loopback_allowed, monkeypatch):
    closing = Scripted(lambda n: lambda conn: (conn.sendall(OK), time.sleep(0.05), False)[2])
    keeping = Scripted(lambda n: OK)
    client = AsyncClient()

    async def go():
        for server in (closing, keeping):
            await client.post(
                server.url, b"", {}, connect_timeout=2, read_timeout=2, total_timeout=2
            )
        await asyncio.sleep(0.3)  # the first server's FIN arrives
        first = client.close_stale()
        monkeypatch.setattr(egress_async, "IDLE_S", 0.0)
        second = client.close_stale()
        return first, second, dict(client.idle)

    assert run(go()) == (1, 1, {})
    client.close()
