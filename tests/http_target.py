"""A real HTTP server on 127.0.0.1 standing in for a webhook receiver: it records every call
and answers as the test scripts it (status codes per event id, a delay)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Target:
    def __init__(self, *, delay: float = 0.0, default_status: int = 200) -> None:
        self.delay = delay
        self.default_status = default_status
        self.scripts: dict[str, list[int]] = defaultdict(list)  # event id -> statuses to answer
        self.calls: list[dict] = []
        self.lock = threading.Lock()
        self.active = 0  # calls being answered right now
        self.peak = 0  # the most at once: how concurrent the caller was
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver would
            # Headers and body are two writes: without TCP_NODELAY the body waits for the
            # caller's delayed ACK (about 40 ms a call), which no real server makes it do.
            disable_nagle_algorithm = True

            def do_POST(self):  # noqa: N802 - http.server's naming
                with target.lock:
                    target.active += 1
                    target.peak = max(target.peak, target.active)
                try:
                    self._answer()
                finally:
                    with target.lock:
                        target.active -= 1

            def _answer(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                event_id = self.headers.get("X-Event-Id", "")
                with target.lock:
                    target.calls.append(
                        {
                            "headers": dict(self.headers),
                            "body": body,
                            "event_id": event_id,
                            "at": time.monotonic(),
                            "wall": time.time(),
                        }
                    )
                    script = target.scripts.get(event_id)
                    status = script.pop(0) if script else target.default_status
                if target.delay:
                    time.sleep(target.delay)
                try:
                    payload = json.dumps({"status": status}).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller gave up (a timeout under test)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # many callers connect at once

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def calls_per_event(self) -> Counter:
        with self.lock:
            return Counter(c["event_id"] for c in self.calls)

    def __enter__(self) -> Target:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
