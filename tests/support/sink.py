"""A local HTTP receiver for webhook tests: records every request and answers as scripted.

    with Sink() as sink:
        sink.respond(503, headers={"Retry-After": "2"}, times=2)   # then the default, 200
        ...post to sink.url...
        sink.wait_for(3)
        assert sink.requests[0].headers["X-Tagledger-Delivery"] == key

Answers are taken in order, each `times` times; when none is left the sink answers `default`
(200, empty body). A `delay` holds the answer back; `drip` sends the body a few bytes at a time
with a pause between, for deadline tests. Everything is guarded by one lock: the server thread
records while the test reads.
"""

from __future__ import annotations

import http.server
import socketserver
import threading
import time
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Received:
    """One request as the sink read it."""

    method: str
    path: str
    headers: dict[str, str]  # as sent; one value per name (the last), looked up case-insensitively
    body: bytes
    at: float  # time.time() when the request was read

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0  # seconds before the status line
    drip: float = 0.0  # seconds between body chunks (of `chunk` bytes); 0: all at once
    chunk: int = 1


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sink: Sink


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass  # quiet: tests print what they need

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        sink = self.server.sink
        answer = sink._record(
            Received(self.command, self.path, dict(self.headers.items()), body, time.time())
        )
        if answer.delay and sink._closing.wait(answer.delay):
            return
        try:
            self.send_response(answer.status)
            headers = {"Content-Length": str(len(answer.body)), **answer.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if not answer.drip:
                self.wfile.write(answer.body)
                return
            for start in range(0, len(answer.body), answer.chunk):
                self.wfile.write(answer.body[start : start + answer.chunk])
                self.wfile.flush()
                if sink._closing.wait(answer.drip):
                    return
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up reading (a capped read, a deadline): what the tests want

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _handle


class Sink:
    """A threaded HTTP server on 127.0.0.1 at a free port; a context manager."""

    def __init__(self, default: Answer | None = None):
        self.default = default or Answer()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._answers: deque[tuple[Answer, int]] = deque()
        self._requests: list[Received] = []
        self._closing = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.sink = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def requests(self) -> list[Received]:
        """A copy of what arrived so far, in order."""
        with self._lock:
            return list(self._requests)

    def respond(
        self,
        status: int,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        *,
        times: int = 1,
        delay: float = 0.0,
        drip: float = 0.0,
        chunk: int = 1,
    ) -> Sink:
        """Queue an answer for the next `times` requests (after those queued before it)."""
        with self._lock:
            self._answers.append((Answer(status, dict(headers or {}), body, delay, drip, chunk), times))
        return self

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until at least `count` requests arrived; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the sink got {len(self._requests)} requests, not {count}")
                self._arrived.wait(left)
            return list(self._requests)

    def _record(self, received: Received) -> Answer:
        with self._arrived:
            self._requests.append(received)
            self._arrived.notify_all()
            if not self._answers:
                return self.default
            answer, times = self._answers[0]
            if times <= 1:
                self._answers.popleft()
            else:
                self._answers[0] = (answer, times - 1)
            return answer

    def start(self) -> Sink:
        self._thread = threading.Thread(target=self._server.serve_forever, name="sink", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # delayed and dripping answers end now
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> Sink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
