"""Where a notification may be sent, and the one way it is sent: a POST that cannot be turned
against tagledger's own network, and that ends by its deadline whatever the receiver does.

A subscription's URL is chosen by a user, so it gets the registry transport's rules for hosts a
registry names (catalog.oci.transport): it must resolve to public addresses only, checked when
subscribing and again before each POST, and the connected peer is checked once more before a byte
is sent (DNS rebinding). TAGLEDGER_NOTIFY_ALLOW names hosts and networks that may be reached
although they are not public, for a self-hosted chat server. Redirects are never followed (a 3xx
is a failure that says where it pointed), and at most READ_CAP bytes of an answer are read.
"""

import functools
import ipaddress
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings

from catalog.oci import transport
from catalog.oci.errors import UnsafeTarget

# Enough of a receiver's answer to show in the delivery log ("invalid_token", a JSON error).
READ_CAP = 4096
# Connecting gets at most this long of the whole deadline: a host that does not answer SYNs is down.
CONNECT_TIMEOUT = 5.0
MAX_URL_LENGTH = 2048  # Subscription.url's max_length


class UnsafeURL(ValueError):
    """A URL tagledger will not send notifications to; the message says why, for forms and the API."""


class SendFailed(Exception):
    """The POST got no HTTP answer: refused, reset, timed out, past its deadline. Short text."""


@dataclass(frozen=True)
class Response:
    """A receiver's answer: its status, headers, the start of its body (READ_CAP bytes, decoded
    leniently) and how long the attempt took."""

    status: int
    headers: Mapping[str, str]
    text: str
    latency: float  # seconds, from before connecting to the end of the capped read

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@functools.lru_cache(maxsize=4)
def _allowance(entries: tuple[str, ...]) -> tuple[frozenset[str], tuple]:
    """TAGLEDGER_NOTIFY_ALLOW as (host names, networks); settings has checked every entry."""
    hosts, networks = set(), []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry.lower().rstrip("."))
    return frozenset(hosts), tuple(networks)


def permitted(host: str, address, kind: str | None = None) -> bool:
    """Whether a notification for `host` may reach `address`: a public one, or one the operator
    allowed by the host's name or by a network holding the address."""
    if (kind or transport.address_kind(address)) == transport.PUBLIC:
        return True
    hosts, networks = _allowance(tuple(settings.TAGLEDGER_NOTIFY_ALLOW))
    if host.lower().rstrip(".") in hosts:
        return True
    return any(address.version == network.version and address in network for network in networks)


def check_url(url: str) -> None:
    """Raise UnsafeURL unless `url` is an http(s) URL without credentials whose host resolves,
    here and now, only to addresses notifications may reach."""
    host = _host(url)
    try:
        addresses = transport.resolve(host)
    except ValueError:
        raise UnsafeURL(f"{_shown(host)} is not a host name") from None
    if not addresses:
        raise UnsafeURL(f"{_shown(host)} does not resolve")
    for address in addresses:
        kind = transport.address_kind(address)
        if not permitted(host, address, kind):
            what = (
                f"{host} is"
                if addresses == [address] and _literal(host)
                else f"{_shown(host)} resolves to {address},"
            )
            raise UnsafeURL(
                f"{what} a {kind} address; notifications go to public addresses only, unless "
                "TAGLEDGER_NOTIFY_ALLOW lists the host or its network"
            )


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _host(url: str) -> str:
    if not isinstance(url, str) or not url:
        raise UnsafeURL("a URL is required")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURL(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(c <= " " or c == "\x7f" or c == "\\" for c in url):
        raise UnsafeURL("the URL contains spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for a port that is not a number in range
        host = parts.hostname
    except ValueError:
        raise UnsafeURL("not a URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UnsafeURL("only http and https URLs can receive notifications")
    if "@" in parts.netloc:
        raise UnsafeURL("the URL carries a user name or password; put secrets in the path instead")
    if not host:
        raise UnsafeURL("the URL has no host")
    if port == 0:
        raise UnsafeURL("port 0 cannot be reached")
    return host


def _shown(host: str) -> str:
    return transport.ends(host, 60)


class _Attempt(transport.Attempt):
    """The registry transport's attempt, checking the connected peer by this module's rules."""

    __slots__ = ("host",)

    def __init__(self, seconds: float, host: str):
        super().__init__(seconds, frozenset({transport.PUBLIC}), f"refused {_shown(host)}")
        self.host = host

    def permits(self, address, kind: str) -> bool:
        return permitted(self.host, address, kind)


def post(url: str, body: bytes, headers: dict, *, timeout: float) -> Response:
    """POST `body` once; the answer whatever its status (a 3xx is not followed).

    UnsafeURL when the URL, or the peer actually connected to, is not allowed (nothing is sent);
    SendFailed when no complete answer came within `timeout` seconds or the connection failed."""
    check_url(url)
    host = urlsplit(url).hostname
    attempt = _Attempt(timeout, host)
    started = time.monotonic()
    # A session per POST: deliveries are few, and a pooled connection must not outlive the checks.
    with requests.Session() as session:
        adapter = transport.GuardedAdapter(max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        try:
            with transport.watchdog.watching(attempt):
                response = session.post(
                    url, data=body, headers={"Accept-Encoding": "identity", **headers},
                    timeout=(min(CONNECT_TIMEOUT, timeout), timeout), allow_redirects=False, stream=True,
                )  # fmt: skip
                try:
                    start = _read_start(response)
                finally:
                    response.close()  # never pooled: the rest of the body is not wanted
        except UnsafeTarget as refused:
            raise UnsafeURL(str(refused)) from None
        except (ValueError, *transport.TRANSPORT_ERRORS) as error:
            if attempt.expired:
                raise SendFailed(f"no complete answer within {timeout:g} s") from None
            raise SendFailed(_reason(error, url)) from None
    if attempt.expired:  # the start may look whole: cut short by the watchdog's shutdown
        raise SendFailed(f"no complete answer within {timeout:g} s")
    latency = time.monotonic() - started
    text = start.decode("utf-8", "replace")
    return Response(response.status_code, response.headers, text, latency)


def _read_start(response: requests.Response) -> bytes:
    """At most READ_CAP bytes of the body, as sent (no decompression: a small gzip is a big bomb)."""
    chunks, total = [], 0
    for chunk in response.raw.stream(1024, decode_content=False):
        chunks.append(chunk[: READ_CAP - total])
        total += len(chunks[-1])
        if total >= READ_CAP:
            break
    return b"".join(chunks)


def _reason(error: Exception, url: str) -> str:
    """A failed connection in a few words: 'ConnectionError: … Connection refused'. Without the
    URL's path and query, which urllib3 quotes: a Slack or Mattermost webhook's path is its secret."""
    if isinstance(error, requests.Timeout):
        return f"timed out ({type(error).__name__})"
    text = str(error)
    parts = urlsplit(url)
    for secret in (url, parts.path + (f"?{parts.query}" if parts.query else ""), parts.path):
        if len(secret) > 1:
            text = text.replace(secret, "/...")
    return f"{type(error).__name__}: {transport.ends(text, 100)}"
