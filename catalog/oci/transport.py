"""The transport under the registry client: where a registry may send tagledger, and a total
deadline for every attempt.

A registry names other hosts: the token realm in WWW-Authenticate, and redirect targets (blob
storage). Those are fetched only if they are public, or of the same kind as the registry itself.
Each attempt of a request ends by its deadline, however slowly the server drips its answer.
"""

import contextlib
import heapq
import http.client
import ipaddress
import itertools
import math
import os
import socket
import threading
import time

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .errors import UnsafeTarget

# --- where a registry may send tagledger ----------------------------------------------------------
#
# A registry names other hosts: the token realm in WWW-Authenticate, and redirect targets (blob
# storage). Those are fetched only if they are public, or of the same kind as the registry itself
# (a registry on loopback may use a realm on loopback). Names are resolved before the request, and
# the connected peer is checked again before a byte is sent, so a name that resolves to a public
# address for the check and to 127.0.0.1 for the connection (DNS rebinding) is refused too.

PUBLIC = "public"
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, tailnets: someone's inside
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def address_kind(address: _Address) -> str:
    """'public', 'loopback', 'private', 'link-local' or 'reserved' (unspecified, multicast, ...).

    An IPv6 form that carries an IPv4 address (mapped, 6to4, NAT64, compatible) is the IPv4's kind:
    ::ffff:127.0.0.1 reaches this host like 127.0.0.1 does.
    """
    if address.version == 6:
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return address_kind(embedded)
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:  # 169.254.169.254 is where clouds hand out their credentials
        return "link-local"
    if address.is_unspecified or address.is_multicast or address.is_reserved or address in _THIS_NETWORK:
        return "reserved"
    if address.is_private or address in _SHARED or (address.version == 6 and address.is_site_local):
        return "private"
    return PUBLIC if address.is_global else "reserved"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if 1 < int(address) < 2**32:  # ::a.b.c.d, the deprecated IPv4-compatible form
        return ipaddress.IPv4Address(int(address))
    return None


def resolve(host: str) -> list[_Address] | None:
    """The addresses `host` stands for; None when it does not resolve here (the connection will
    fail, or a configured proxy resolves it). ValueError for a name no resolver could take."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except UnicodeError as error:  # an IDNA label that is empty or too long
        raise ValueError(str(error)) from None
    except OSError:
        return None
    return [_peer_address(info[4][0]) for info in infos]


def _peer_address(host: str) -> _Address:
    return ipaddress.ip_address(host.split("%", 1)[0])  # fe80::1%eth0: the zone is not the address


def ends(text: str, each: int = 200) -> str:
    """A library's error text, bounded: its start and its end, where the cause usually is
    ("... [Errno 111] Connection refused") after a URL a registry may have made 64 KiB long."""
    text = "".join(c if " " <= c < "\x7f" else "?" for c in text)
    return text if len(text) <= 2 * each + 5 else f"{text[:each]} ... {text[-each:]}"


# --- a total deadline for each attempt -------------------------------------------------------------


class Attempt:
    """One try of one request: when it must be over and, for a host the registry named, which
    address kinds its connection may reach (None: the registry's own origin, not checked)."""

    __slots__ = ("allowed", "deadline", "done", "expired", "refusal", "sockets")

    def __init__(self, seconds: float, allowed: frozenset[str] | None, refusal: str):
        self.deadline = time.monotonic() + seconds
        self.allowed = allowed
        self.refusal = refusal  # "registry: refused the token realm URL", for the error message
        self.expired = False
        self.done = False
        self.sockets: list[socket.socket] = []

    def permits(self, address: _Address, kind: str) -> bool:
        """Whether this attempt's connection may reach `address`, of `kind` (address_kind): a
        subclass may allow single addresses (history.outbound's TAGLEDGER_NOTIFY_ALLOW)."""
        return kind in self.allowed


_current = threading.local()  # the attempt this thread is making: requests calls urllib3 in-thread


def _current_attempt() -> Attempt | None:
    return getattr(_current, "attempt", None)


class _Watchdog:
    """One thread per process that shuts down the connection of an attempt past its deadline.

    A socket timeout bounds each read, not their sum: a server dripping a byte a second never trips
    it. shutdown() on a duplicate of the socket's descriptor wakes the blocked read with end-of-file
    whatever it is reading (TLS handshake, status line, headers, body) without touching TLS state.
    Attempts that end in time cost a heap push; their entries are dropped when they reach the top.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, Attempt]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._sleeping_until = math.inf  # when the thread wakes next on its own

    @contextlib.contextmanager
    def watching(self, attempt: Attempt):
        with self._lock:
            while self._heap and self._heap[0][2].done:  # keep the heap to the attempts in flight
                heapq.heappop(self._heap)
            heapq.heappush(self._heap, (attempt.deadline, next(self._order), attempt))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="registry-deadlines", daemon=True)
                self._thread.start()
            elif attempt.deadline < self._sleeping_until:
                # Only then: waking the thread for every request would cost more than the request.
                self._wakeup.notify()
        _current.attempt = attempt
        try:
            yield attempt
        finally:
            _current.attempt = None
            with self._lock:
                # From here on nothing shuts this attempt's connection down, so it may be pooled.
                attempt.done = True
                for sock in attempt.sockets:
                    sock.close()
                attempt.sockets.clear()

    def attach(self, attempt: Attempt, sock: socket.socket) -> None:
        """Watch the connection `sock` (plain or TLS) for `attempt`."""
        try:
            handle = socket.fromfd(sock.fileno(), sock.family, sock.type)  # a dup(): TLS-neutral
        except OSError:
            return  # already closed: nothing left to interrupt
        with self._lock:
            if attempt.done:
                handle.close()
                return
            attempt.sockets.append(handle)
            if attempt.expired:
                _shut(handle)

    def _run(self) -> None:
        with self._lock:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._sleeping_until = math.inf
                    self._wakeup.wait()
                    continue
                deadline, _, attempt = self._heap[0]
                left = deadline - time.monotonic()
                if left > 0:
                    self._sleeping_until = deadline
                    self._wakeup.wait(left)
                    continue
                heapq.heappop(self._heap)
                attempt.expired = True
                for sock in attempt.sockets:
                    _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


watchdog = _Watchdog()
# A forked worker inherits the lock (perhaps held) and the heap but not the thread: start afresh.
os.register_at_fork(after_in_child=watchdog._reset)


class _GuardedConnection:
    """urllib3 connection hooks: the peer check for hosts a registry named, and the watchdog's
    handle on the socket of the attempt using the connection."""

    def _new_conn(self):
        sock = super()._new_conn()
        attempt = _current_attempt()
        if attempt is not None:
            try:
                # Through a proxy the peer is the proxy, which the operator chose: nothing to check.
                if attempt.allowed is not None and self.proxy is None:
                    _check_peer(sock, attempt)
                watchdog.attach(attempt, sock)
            except BaseException:
                sock.close()
                raise
        return sock

    def request(self, *args, **kwargs):
        attempt = _current_attempt()
        if attempt is not None and self.sock is not None:  # a pooled connection, reused
            watchdog.attach(attempt, self.sock)
        return super().request(*args, **kwargs)


def _check_peer(sock: socket.socket, attempt: Attempt) -> None:
    address = _peer_address(sock.getpeername()[0])
    kind = address_kind(address)
    if not attempt.permits(address, kind):
        raise UnsafeTarget(f"{attempt.refusal}: connected to {address}, a {kind} address")


class _GuardedHTTPConnection(_GuardedConnection, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnection, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


_GUARDED_POOLS = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


class GuardedAdapter(HTTPAdapter):
    """HTTPAdapter whose connections (direct or through an HTTP proxy) are _GuardedConnections."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _GUARDED_POOLS

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools are their own classes
            manager.pool_classes_by_scheme = _GUARDED_POOLS
        return manager


class DeadlinePassed(Exception):
    """The attempt's whole answer did not arrive before its deadline."""


# What one attempt may raise that says "this try failed", not "this program is wrong".
TRANSPORT_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
    DeadlinePassed,
)
