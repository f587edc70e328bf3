"""A recording reverse proxy in front of a registry, with programmable faults per request."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import ipaddress
import itertools
import json
import re
import socket
import ssl
import struct
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, quote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# Connection-scoped headers a proxy must not forward (RFC 9110 7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_RESET = object()  # sentinel a `before` hook returns to abort the connection


def registry_error(code: str, message: str, detail: object = None) -> bytes:
    """A body shaped like distribution's error responses."""
    return json.dumps({"errors": [{"code": code, "message": message, "detail": detail}]}).encode()


@dataclass
class Reply:
    """A response on its way to the client; `stream` is an unread upstream body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes | None = None
    stream: http.client.HTTPResponse | None = None
    send_bytes: int | None = None  # send only this much of the body, then drop the connection
    keep_length: bool = False  # send the Content-Length header as set, whatever the body's length
    drip: Drip | None = None  # send slowly (see Drip)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def set_header(self, name: str, value: str | None) -> None:
        """Replace every `name` header (value None just removes them)."""
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        if value is not None:
            self.headers.append((name, value))

    def read_body(self) -> bytes:
        if self.body is None:
            self.body = self.stream.read() if self.stream is not None else b""
            self.stream = None
        return self.body


@dataclass
class Context:
    """What an action may look at or use while handling one request."""

    proxy: FaultProxy
    method: str
    path: str
    query: str
    headers: dict[str, str]
    fetch: Callable[[str, str], Reply]  # (method, path+query) -> buffered upstream reply


class Action:
    """Base fault: `before` may answer instead of upstream, `after` may alter upstream's answer."""

    def before(self, ctx: Context) -> Reply | object | None:
        return None

    def after(self, ctx: Context, reply: Reply) -> Reply:
        return reply


@dataclass
class Respond(Action):
    """Answer with a canned response without contacting upstream (503, 429, 404, 401...)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def before(self, ctx: Context) -> Reply:
        headers = list(self.headers.items())
        if self.body and not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/json; charset=utf-8"))
        return Reply(self.status, headers, self.body)


@dataclass
class Reset(Action):
    """Abort the TCP connection with an RST and no response at all."""

    def before(self, ctx: Context) -> object:
        return _RESET


@dataclass
class Delay(Action):
    """Sleep before forwarding (combine with others by passing a list of actions)."""

    seconds: float

    def before(self, ctx: Context) -> None:
        time.sleep(self.seconds)


def _default_tamper(body: bytes) -> bytes:
    # Change one hex digit of the first digest: same length, still valid JSON, new sha256.
    match = re.search(rb"sha256:([0-9a-f])", body)
    if match:
        i = match.start(1)
        return body[:i] + (b"1" if body[i : i + 1] == b"0" else b"0") + body[i + 1 :]
    return body[:-1] + bytes([body[-1] ^ 1]) if body else body


@dataclass
class TamperBody(Action):
    """Alter upstream's body but keep its headers (Docker-Content-Digest now lies)."""

    fn: Callable[[bytes], bytes] = _default_tamper

    def after(self, ctx: Context, reply: Reply) -> Reply:
        if ctx.method != "HEAD":
            reply.body = self.fn(reply.read_body())
        return reply


@dataclass
class SetHeader(Action):
    """Replace (or add) a response header, e.g. a wrong Docker-Content-Digest."""

    name: str
    value: str

    def after(self, ctx: Context, reply: Reply) -> Reply:
        reply.set_header(self.name, self.value)
        return reply


@dataclass
class DropHeader(Action):
    """Remove a response header, e.g. Docker-Content-Digest."""

    name: str

    def after(self, ctx: Context, reply: Reply) -> Reply:
        reply.set_header(self.name, None)
        return reply


@dataclass
class SetContentLength(Action):
    """Send this Content-Length header (a lie, '+5', '²') with the body unchanged."""

    value: str

    def after(self, ctx: Context, reply: Reply) -> Reply:
        reply.read_body()
        reply.set_header("Content-Length", self.value)
        reply.keep_length = True
        return reply


@dataclass
class RewriteHeader(Action):
    """Replace `old` with `new` inside a response header, e.g. the realm in WWW-Authenticate."""

    name: str
    old: str
    new: str

    def after(self, ctx: Context, reply: Reply) -> Reply:
        value = reply.header(self.name)
        if value is not None:
            reply.set_header(self.name, value.replace(self.old, self.new))
        return reply


@dataclass
class Drip(Action):
    """Send the answer `size` bytes every `interval` seconds: never silent long enough for a read
    timeout to fire. part="body" sends the headers at once, part="headers" drips from the status
    line on. The drip stops when the client hangs up."""

    interval: float = 0.2
    part: str = "body"
    size: int = 1

    def after(self, ctx: Context, reply: Reply) -> Reply:
        reply.read_body()
        reply.drip = self
        return reply


@dataclass
class AddHeaders(Action):
    """Append response headers, e.g. ratelimit-limit / ratelimit-remaining."""

    headers: dict[str, str]

    def after(self, ctx: Context, reply: Reply) -> Reply:
        reply.headers.extend(self.headers.items())
        return reply


@dataclass
class Truncate(Action):
    """Send only `keep` body bytes: with the original Content-Length then hang up
    (a short read), or with fix_length=True as a complete but shorter body."""

    keep: int = 10
    fix_length: bool = False

    def after(self, ctx: Context, reply: Reply) -> Reply:
        body = reply.read_body()
        if self.fix_length:
            reply.body = body[: self.keep]
        else:
            reply.send_bytes = min(self.keep, len(body))
        return reply


@dataclass
class Paginate(Action):
    """Serve GET /v2/<name>/tags/list from upstream's full list in pages of `page_size`.

    link: "relative" | "absolute" (proxy URL) | "foreign" (another host, must be refused)
    | "loop" (the last page links back to the first). `fail_page` (1-based) answers
    `fail_status` instead. Tags are served in lexical order, as the OCI spec requires.
    """

    page_size: int
    link: str = "relative"
    fail_page: int | None = None
    fail_status: int = 500
    foreign_base: str = "http://127.0.0.2:9"
    _path: ClassVar[re.Pattern[str]] = re.compile(r"^/v2/(?P<name>.+)/tags/list$")

    def before(self, ctx: Context) -> Reply | None:
        match = self._path.match(ctx.path)
        if ctx.method not in ("GET", "HEAD") or not match:
            return None
        upstream = ctx.fetch("GET", ctx.path)  # no n/last: the full list
        if upstream.status != 200:
            return upstream
        tags = sorted(json.loads(upstream.read_body()).get("tags") or [])
        query = parse_qs(ctx.query)
        size = min(self.page_size, int(query["n"][0])) if "n" in query else self.page_size
        start = bisect_right(tags, query["last"][0]) if "last" in query else 0
        if self.fail_page is not None and start // max(size, 1) + 1 == self.fail_page:
            return Respond(self.fail_status, body=registry_error("UNKNOWN", "injected")).before(ctx)
        page = tags[start : start + size]
        name = match["name"]
        headers = [("Content-Type", "application/json; charset=utf-8")]
        more = start + size < len(tags)
        target = None
        if more:
            target = f"/v2/{name}/tags/list?n={size}&last={quote(page[-1], safe='')}"
        elif self.link == "loop":
            target = f"/v2/{name}/tags/list?n={size}"
        if target is not None:
            base = {"absolute": ctx.proxy.url, "foreign": self.foreign_base}.get(self.link, "")
            headers.append(("Link", f'<{base}{target}>; rel="next"'))
        return Reply(200, headers, json.dumps({"name": name, "tags": page}).encode())


@dataclass
class Referrers(Action):
    """The OCI 1.1 referrers API, in the shape of the distribution spec's example, for a registry in
    front of one without it: GET /v2/<name>/referrers/<digest> answers an OCI index of the
    descriptors `add`ed for that digest (an empty one for any other digest, as the spec requires),
    `page_size` entries a page linked by `Link: rel="next"` (None: one page). With `filters` an
    `?artifactType=` is applied and said in `OCI-Filters-Applied`; without, it is ignored, as a
    registry that does not filter does. `listed` may be changed while the proxy runs."""

    listed: dict[str, list[dict]] = field(default_factory=dict)
    page_size: int | None = None
    filters: bool = True
    _path: ClassVar[re.Pattern[str]] = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>[^/]+)$")

    def add(self, subject: str, descriptor: dict) -> None:
        self.listed.setdefault(subject, []).append(descriptor)

    def before(self, ctx: Context) -> Reply | None:
        match = self._path.match(ctx.path)
        if ctx.method != "GET" or not match:
            return None
        query = parse_qs(ctx.query)
        entries = list(self.listed.get(match["digest"], []))
        headers = [("Content-Type", "application/vnd.oci.image.index.v1+json")]
        if self.filters and "artifactType" in query:
            entries = [entry for entry in entries if entry.get("artifactType") == query["artifactType"][0]]
            headers.append(("OCI-Filters-Applied", "artifactType"))
        start = int(query["page"][0]) if "page" in query else 0
        size = self.page_size or max(len(entries), 1)
        if start + size < len(entries):
            kept = [f"{key}={quote(value[0], safe='')}" for key, value in query.items() if key != "page"]
            target = "&".join([*kept, f"page={start + size}"])
            headers.append(("Link", f'<{ctx.path}?{target}>; rel="next"'))
        body = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries[start : start + size],
        }
        return Reply(200, headers, json.dumps(body).encode())


@dataclass
class Rule:
    """Match on method and path regex (re.search); fires `times` times (None = forever)."""

    method: str | None
    path: re.Pattern[str] | None
    actions: list[Action]
    times: int | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path is None or bool(self.path.search(path))


@dataclass
class Record:
    """One request the proxy saw and what it answered (status None = connection reset)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # lowercased names
    conn_id: int  # same id = same client TCP connection (keep-alive reuse)
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)  # lowercased, as sent
    rule: int | None = None  # index of the rule that fired
    started: float = field(default_factory=time.monotonic)
    duration: float = 0.0


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops the SYNs of a client opening dozens of connections at once,
    # and each dropped one costs a second's retransmission: a poll's time, not the registry's.
    request_queue_size = 128


class FaultProxy:
    """Threaded HTTP/1.1 reverse proxy on a free loopback port, forwarding to `upstream`.

    `records` lists every request; `in_flight`/`max_concurrent` count requests being
    handled at once (a Delay counts, so it can stand in for a slow upstream). `latency` seconds
    are added to every request before it is answered: a registry as far away as real ones are
    (20-150 ms), which loopback hides.
    """

    def __init__(self, upstream: str, *, tls: ssl.SSLContext | None = None, latency: float = 0.0) -> None:
        parts = urlsplit(upstream)
        self.upstream = upstream.rstrip("/")
        self.latency = latency
        self.upstream_netloc = parts.netloc
        self.rules: list[Rule] = []
        self.records: list[Record] = []
        self.in_flight = 0
        self.max_concurrent = 0
        self._lock = threading.Lock()
        self._conn_ids = itertools.count(1)
        self._open: set[socket.socket] = set()
        self._httpd = _Server(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            # The handshake runs in the handler's thread, on the first read, not in accept().
            self._httpd.socket = tls.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
            self.scheme = "https"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    # -- rules -------------------------------------------------------------------------
    def add_rule(
        self,
        action: Action | Sequence[Action],
        *,
        method: str | None = None,
        path: str | None = None,
        times: int | None = None,
    ) -> Rule:
        """Append a rule; several actions run in order (e.g. [Delay(1), Truncate()])."""
        actions = [action] if isinstance(action, Action) else list(action)
        rule = Rule(method, re.compile(path) if path else None, actions, times)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear_rules(self) -> None:
        with self._lock:
            self.rules.clear()

    def _take_rule(self, method: str, path: str) -> tuple[int | None, list[Action]]:
        with self._lock:
            for index, rule in enumerate(self.rules):
                if rule.matches(method, path):
                    rule.hits += 1
                    return index, rule.actions
        return None, []

    # -- records -----------------------------------------------------------------------
    def count(
        self, method: str | None = None, path_regex: str | None = None, status: int | None = None
    ) -> int:
        return len(self.find(method, path_regex, status))

    def find(
        self, method: str | None = None, path_regex: str | None = None, status: int | None = None
    ) -> list[Record]:
        with self._lock:
            records = list(self.records)
        return [
            r
            for r in records
            if (method is None or r.method == method.upper())
            and (path_regex is None or re.search(path_regex, r.path))
            and (status is None or r.status == status)
        ]

    def reset(self) -> None:
        """Forget recorded requests and the concurrency high-water mark (rules stay)."""
        with self._lock:
            self.records.clear()
            self.max_concurrent = self.in_flight

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_concurrent = max(self.max_concurrent, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def rewrite_url(self, value: str) -> str:
        """Point absolute upstream URLs (Location, Link) back at the proxy."""
        return value.replace(self.upstream, self.url)

    # -- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        self._httpd.shutdown()
        # Idle keep-alive connections would otherwise keep their threads blocked in recv().
        with self._lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Authority:
    """A throwaway CA and a server certificate it signed for `names` (host names, IP addresses):
    FaultProxy(..., tls=authority.server_context()) speaks HTTPS, clients trust `ca_path`."""

    def __init__(self, names: Sequence[str], directory: Path) -> None:
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tagledger test CA")])
        self.ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        self.key = ec.generate_private_key(ec.SECP256R1())
        alternative_names: list[x509.GeneralName] = []
        for name in names:
            try:
                alternative_names.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alternative_names.append(x509.DNSName(name))
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        self.ca_path = directory / "ca.pem"
        self.ca_path.write_bytes(self.ca.public_bytes(serialization.Encoding.PEM))
        self._cert_path = directory / "server.pem"
        self._cert_path.write_bytes(
            self.cert.public_bytes(serialization.Encoding.PEM)
            + self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self._cert_path)
        return context


def _make_handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like a real registry
        timeout = 60  # idle client connections eventually release their thread
        upstream_conn: http.client.HTTPConnection | None = None

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes: with Nagle's algorithm the body then waits
            # for the client's delayed ACK (40 ms on Linux), which no real registry makes it do.
            with contextlib.suppress(OSError):
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.conn_id = next(proxy._conn_ids)
            with proxy._lock:
                proxy._open.add(self.connection)

        def finish(self) -> None:
            with proxy._lock:
                proxy._open.discard(self.connection)
            if self.upstream_conn is not None:
                self.upstream_conn.close()
            # The client or a Reset action may already have torn the socket down.
            with contextlib.suppress(OSError):
                super().finish()

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep pytest output clean

        def do_GET(self) -> None:
            self._proxy()

        do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

        # -- request side ------------------------------------------------------------
        def _read_body(self) -> bytes | None:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else None

        def _fetch(self, method: str, target: str, headers: dict[str, str], body: bytes | None) -> Reply:
            """One upstream exchange on this connection's upstream socket (stream left unread)."""
            for attempt in (1, 2):
                if self.upstream_conn is None:
                    self.upstream_conn = http.client.HTTPConnection(proxy.upstream_netloc, timeout=60)
                try:
                    self.upstream_conn.request(method, target, body=body, headers=headers)
                    resp = self.upstream_conn.getresponse()
                    break
                except (ConnectionError, http.client.HTTPException):
                    # A stale pooled upstream connection: reconnect once.
                    self.upstream_conn.close()
                    self.upstream_conn = None
                    if attempt == 2:
                        raise
            out: list[tuple[str, str]] = []
            for name, value in resp.getheaders():
                low = name.lower()
                if low in HOP_BY_HOP:
                    continue
                if low in ("location", "link"):
                    value = proxy.rewrite_url(value)
                out.append((name, value))
            if method == "HEAD" or resp.getheader("Content-Length") is None:
                # Chunked upstream bodies are buffered so the client gets a Content-Length.
                return Reply(resp.status, out, resp.read())
            return Reply(resp.status, out, stream=resp)

        def _proxy(self) -> None:
            url = urlsplit(self.path)
            method = self.command
            record = Record(
                method, url.path, url.query, {k.lower(): v for k, v in self.headers.items()}, self.conn_id
            )
            with proxy._lock:
                proxy.records.append(record)
            body = self._read_body()
            headers: dict[str, str] = {}
            for k, v in self.headers.items():
                if k.lower() not in HOP_BY_HOP | {"host", "content-length"}:
                    # A header sent on several lines (skopeo's Accept) is one list (RFC 9110 5.3).
                    headers[k] = f"{headers[k]}, {v}" if k in headers else v
            headers["Host"] = proxy.upstream_netloc

            def fetch(m: str, target: str) -> Reply:
                reply = self._fetch(m, target, headers, None)
                reply.read_body()
                return reply

            ctx = Context(proxy, method, url.path, url.query, record.headers, fetch)
            record.rule, actions = proxy._take_rule(method, url.path)
            proxy._enter()
            try:
                if proxy.latency:
                    time.sleep(proxy.latency)  # the round trip of a distant registry
                try:
                    reply = self._answer(ctx, actions, headers, body)
                except (OSError, http.client.HTTPException) as exc:
                    reply = Reply(502, [], registry_error("UNKNOWN", f"upstream: {exc!r}"))
                if reply is None:
                    self._reset()
                    return
                self._finish_headers(reply, head=method == "HEAD")
                # Record before sending: a test may inspect records as soon as it has the answer.
                record.status = reply.status
                record.response_headers = {k.lower(): v for k, v in reply.headers}
                self._send(reply, head=method == "HEAD")
            finally:
                proxy._leave()
                record.duration = time.monotonic() - record.started

        def _answer(
            self, ctx: Context, actions: list[Action], headers: dict[str, str], body: bytes | None
        ) -> Reply | None:
            """Run the rule's actions around the upstream exchange; None means reset."""
            for action in actions:
                outcome = action.before(ctx)
                if outcome is _RESET:
                    return None
                if isinstance(outcome, Reply):
                    return outcome
            reply = self._fetch(ctx.method, self.path, headers, body)
            for action in actions:
                reply = action.after(ctx, reply)
            return reply

        # -- response side -------------------------------------------------------------
        @staticmethod
        def _finish_headers(reply: Reply, *, head: bool) -> None:
            if reply.keep_length:
                pass
            elif reply.body is not None and not head and reply.send_bytes is None:
                reply.set_header("Content-Length", str(len(reply.body)))
            elif reply.header("Content-Length") is None:
                reply.set_header("Content-Length", str(len(reply.body or b"")))
            if reply.header("Date") is None:
                reply.headers.append(("Date", formatdate(usegmt=True)))

        def _send(self, reply: Reply, *, head: bool) -> None:
            if reply.drip is not None:
                self._drip(reply, reply.drip, head=head)
                return
            self.send_response_only(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            self.end_headers()
            if head:
                return
            if reply.send_bytes is not None:
                self.wfile.write(reply.read_body()[: reply.send_bytes])
                self.wfile.flush()
                # A clean FIN (not an RST, which may discard the bytes already sent)
                # so the client reads the partial body and then hits EOF.
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_WR)
            elif reply.stream is not None:
                while chunk := reply.stream.read(65536):
                    self.wfile.write(chunk)
            else:
                self.wfile.write(reply.body or b"")

        def _drip(self, reply: Reply, drip: Drip, *, head: bool) -> None:
            reason = self.responses.get(reply.status, ("",))[0]
            lines = [f"HTTP/1.1 {reply.status} {reason}", *(f"{k}: {v}" for k, v in reply.headers)]
            header = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
            body = b"" if head else reply.read_body()
            slow = header + body if drip.part == "headers" else body
            self.close_connection = True  # whatever the client saw, this connection is done
            try:
                if drip.part != "headers":
                    self.wfile.write(header)
                for start in range(0, len(slow), max(drip.size, 1)):
                    self.wfile.write(slow[start : start + drip.size])
                    time.sleep(drip.interval)
            except OSError:
                pass  # the client gave up, as it should

        def _reset(self) -> None:
            # SO_LINGER with a zero timeout turns close() into an RST instead of a FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.rfile.close()
            self.connection.close()

    return Handler


def main(argv: list[str] | None = None) -> None:
    """`python -m tests.support.faultproxy UPSTREAM [--latency S]`: a proxy in its own process, so
    that its threads do not share a benchmark's interpreter lock. Prints its host; then, for each
    line read on its standard input, a JSON line counting the requests seen since the last one
    (by kind) and forgets them. Ends when its standard input closes."""
    import argparse
    import collections
    import sys

    parser = argparse.ArgumentParser(prog="python -m tests.support.faultproxy")
    parser.add_argument("upstream")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    args = parser.parse_args(argv)
    with FaultProxy(args.upstream, latency=args.latency) as proxy:
        print(proxy.host, flush=True)
        for _ in sys.stdin:
            records = proxy.find()
            kinds = collections.Counter(f"{r.method} {_kind(r.path)}" for r in records)
            counts = {
                "requests": len(records),
                "max_concurrent": proxy.max_concurrent,
                # how long the proxy held a request on average: the latency, plus its own time
                # and the registry's behind it
                "held_seconds": sum(r.duration for r in records) / max(1, len(records)),
            }
            print(json.dumps({**counts, "by_kind": dict(sorted(kinds.items()))}), flush=True)
            proxy.reset()


def _kind(path: str) -> str:
    if path.rstrip("/") == "/v2":
        return "/v2/ (ping)"
    for part, kind in (("/tags/list", "tag list page"), ("/manifests/", "manifest"), ("/blobs/", "blob")):
        if part in path:
            return kind
    return "other"


if __name__ == "__main__":
    main()
