"""One registry, one HTTP session: auth, retries, rate-limit headers and digest-verified reads."""

import email.utils
import ipaddress
import json
import logging
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import requests

from catalog.text import printable, quoted

from . import mediatypes, transport
from .auth import (
    DOCKER_HUB,
    AuthMemory,
    Challenge,
    Credentials,
    TokenCache,
    basic_header,
    canonical_registry,
    load_credentials,
    parse_challenge,
    token_from_response,
)
from .errors import (
    AccessDenied,
    BadResponse,
    DigestMismatch,
    RateLimited,
    RegistryError,
    RepositoryNotFound,
    TagNotFound,
    Unavailable,
    UnsafeTarget,
)
from .manifest import (
    Descriptor,
    ImageConfig,
    Manifest,
    ManifestHead,
    _descriptor,
    digest_of,
    is_digest,
    json_object,
    parse_config,
    parse_manifest,
)
from .reference import is_valid_repository, is_valid_tag

log = logging.getLogger(__name__)

TAG_PAGE_SIZE = 1000  # ECR rejects anything larger; registries that ignore it are fine too
MAX_TAG_PAGES = 10_000
MAX_MANIFEST_BYTES = 8 * 1024 * 1024
MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_TAG_PAGE_BYTES = 16 * 1024 * 1024
# A subject has a handful of referrers (a signature, an SBOM, a provenance, re-pushed now and then);
# a registry listing thousands is noise or hostile, and each one read costs requests.
MAX_REFERRERS = 1000
MAX_REFERRERS_PAGES = 10
MAX_REFERRERS_PAGE_BYTES = 4 * 1024 * 1024
# What a registry without the referrers API answers GET /v2/<name>/referrers/<digest> with. The
# distribution spec names 404 as the client's cue to fall back to the tag schema (distribution 2.8
# says `404 page not found`); 400, 405, 406 and 501 are what other registries answer for a route
# they lack, and go-containerregistry falls back on them too. A registry with the API MUST answer
# 200 for any digest of a repository that exists, so none of these can mean "no referrers".
NO_REFERRERS_API = frozenset({400, 404, 405, 406, 501})
MAX_ERROR_BYTES = 64 * 1024
MAX_REDIRECTS = 5
MAX_RETRY_AFTER = 24 * 3600.0  # a hostile Retry-After must not schedule a poll for the year 3000
MAX_CONTENT_LENGTH = 2**63 - 1  # what a size column holds; far beyond every cap anyway
MAX_QUOTA = 2**31 - 1  # ratelimit-remaining is stored in an IntegerField (PollRun)
MAX_QUOTA_WINDOW = int(MAX_RETRY_AFTER)  # the window becomes a pause of the registry: same bound
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_ERROR_CODE = re.compile(r"^[A-Z_]{1,40}$")

try:
    USER_AGENT = f"tagledger/{version('tagledger')} python-requests/{requests.__version__}"
except PackageNotFoundError:  # running from a checkout that was never installed
    USER_AGENT = f"tagledger python-requests/{requests.__version__}"


@dataclass(frozen=True)
class RateLimit:
    """Docker Hub style `ratelimit-limit` / `ratelimit-remaining` headers (`76;w=21600`)."""

    limit: int | None
    remaining: int | None
    window: int | None


@dataclass(frozen=True)
class Referrers:
    """The referrers API's answer: the manifests whose `subject` is the digest asked about."""

    descriptors: tuple[Descriptor, ...]  # each with artifact_type and annotations, as listed
    filtered: bool  # the registry said it applied the artifactType filter (OCI-Filters-Applied)
    truncated: bool = False  # it listed more than MAX_REFERRERS (or pages): the rest is not here


@dataclass(frozen=True)
class TagList:
    tags: tuple[str, ...]  # sorted and unique: registries promise no order
    rejected: tuple[str, ...]  # names that are not valid tags, never passed on
    pages: int


def endpoint(registry: str, *, insecure: bool = False) -> str:
    """Base URL for a registry: Docker Hub's API host, plain HTTP for loopback or when told."""
    registry = canonical_registry(registry)
    if registry == DOCKER_HUB:
        return "https://registry-1.docker.io"
    scheme = "http" if insecure or is_loopback(registry) else "https"
    return f"{scheme}://{registry}"


def is_loopback(registry: str) -> bool:
    host = urlsplit(f"//{registry}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ASCII digits only: str.isdigit() and int() also take '²', '٣', '+5', ' 5 ' and '1_0'.
_DIGITS = re.compile(r"[0-9]+")


def header_number(value: str | None, maximum: int) -> int | None:
    """A header's non-negative integer (1*DIGIT around optional spaces), clamped to `maximum`;
    None for anything else. Never raises, and never hands int() a string it could choke on."""
    if value is None:
        return None
    text = value.strip(" \t")
    if not _DIGITS.fullmatch(text):
        return None
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(maximum)):  # also keeps int() clear of its 4300-digit limit
        return maximum
    return min(int(digits), maximum)


def parse_rate_limit(headers) -> RateLimit | None:
    limit, limit_window = _quota(headers.get("ratelimit-limit"))
    remaining, remaining_window = _quota(headers.get("ratelimit-remaining"))
    if limit is None and remaining is None:
        return None
    return RateLimit(limit, remaining, limit_window or remaining_window)


def _quota(value: str | None) -> tuple[int | None, int | None]:
    """Docker Hub's `76;w=21600`; a repeated header arrives joined with ", ", the first counts."""
    if not value:
        return None, None
    number, _, parameters = value.split(",", 1)[0].partition(";")
    amount = header_number(number, MAX_QUOTA)
    if amount is None:
        return None, None
    window = None
    for parameter in parameters.split(";"):
        name, _, text = parameter.partition("=")
        if name.strip(" \t").lower() == "w":
            window = header_number(text, MAX_QUOTA_WINDOW)
    return amount, window


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header given as delta-seconds or an HTTP date, at most a day."""
    if not value:
        return None
    value = value.strip(" \t")
    seconds = header_number(value, int(MAX_RETRY_AFTER))
    if seconds is not None:
        return float(seconds)
    if len(value) > 64:  # an HTTP date is 29 characters; nothing longer is one
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):  # years 0 or 99999, odd zones...
        return None
    return min(max(0.0, moment - time.time()), MAX_RETRY_AFTER)


class _Session(requests.Session):
    """A Session that reads proxy and CA-bundle variables from the environment once per origin.

    requests scans every environment variable twice per request looking for `*_proxy`; for a poll
    of thousands of HEADs that was a quarter of this client's CPU time (BENCHMARKS.md, Polling).
    A client lives for one poll, so a changed environment is still seen by the next poll.
    """

    def __init__(self):
        super().__init__()
        self._environment: dict[tuple, dict] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        if proxies or verify is not None or cert is not None:  # set per call: nothing to reuse
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        key = (_origin(url), stream)
        merged = self._environment.get(key)
        if merged is None:
            merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment[key] = merged
        return {**merged, "proxies": dict(merged["proxies"])}


class RegistryClient:
    """Everything tagledger asks of one registry goes through here: the one HTTP chokepoint."""

    def __init__(
        self,
        registry: str,
        *,
        insecure: bool = False,
        credentials: Credentials | None = None,
        timeout: float = 30.0,
        concurrency: int = 8,
        max_attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 60.0,
        memory: AuthMemory | None = None,
    ):
        self.registry = canonical_registry(registry)
        self.base_url = endpoint(self.registry, insecure=insecure)
        self.credentials = credentials
        self.timeout = (min(timeout, 10.0), timeout)  # connect fast, allow slow bodies
        # Each attempt (connect, headers and the whole body) ends within `timeout` seconds, however
        # the bytes trickle in; a timed-out attempt is retried like any other, up to max_attempts.
        self.deadline = float(timeout)
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.rate_limit: RateLimit | None = None
        self.stats: Counter[str] = Counter()
        # With a memory (kept by the process across polls), what an earlier client learnt of the
        # registry's auth saves this one its ping and its token requests; see AuthMemory.
        self._memory = memory
        self._memory_key = AuthMemory.key(self.base_url, credentials)
        self._tokens = memory.tokens(self._memory_key) if memory else TokenCache()
        self._pinged, self._challenge = memory.challenge(self._memory_key) if memory else (False, None)
        self._registry_kinds: frozenset[str] | None = None
        self._lock = threading.Lock()
        self._auth_lock = threading.Lock()
        self.session = _Session()
        self.session.headers["User-Agent"] = USER_AGENT
        # One pooled connection per worker thread; retries are ours, not urllib3's.
        adapter = transport.GuardedAdapter(
            pool_connections=2, pool_maxsize=max(concurrency, 1), max_retries=0
        )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    @classmethod
    def from_docker_config(cls, registry: str, docker_config_dir: str | Path | None, **options):
        return cls(registry, credentials=load_credentials(registry, docker_config_dir), **options)

    def close(self) -> None:
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- the registry API -------------------------------------------------------------------

    def ping(self) -> Challenge | None:
        """GET /v2/: learn how the registry wants to be authenticated (None: it does not)."""
        response, body = self._send("GET", f"{self.base_url}/v2/", kind="ping", limit=MAX_ERROR_BYTES)
        with self._lock:
            self._challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
            self._pinged = True
        if response.status_code not in (200, 401):
            # A 404 here means "not a registry API", never that some tag or repository is missing.
            self._raise_for(response, body, "the /v2/ endpoint", missing=BadResponse)
        self._learn(self._challenge)
        return self._challenge

    def list_tags(self, repository: str) -> TagList:
        """Every tag, following `Link: rel="next"` on this host only; raises rather than return part."""
        self._check_repository(repository)
        url = f"{self.base_url}/v2/{repository}/tags/list?n={TAG_PAGE_SIZE}"
        seen_urls: set[str] = set()
        tags: set[str] = set()
        rejected: set[str] = set()
        while url:
            if url in seen_urls:
                raise BadResponse(f"tag list of {repository} links back to a page already read")
            if len(seen_urls) >= MAX_TAG_PAGES:
                raise BadResponse(f"tag list of {repository} has more than {MAX_TAG_PAGES} pages")
            seen_urls.add(url)
            response, body = self._request("GET", url, repository, kind="tag_pages", limit=MAX_TAG_PAGE_BYTES)
            if response.status_code != 200:
                self._raise_for(response, body, f"tag list of {repository}", missing=RepositoryNotFound)
            for tag in self._tag_page(body, repository):
                (tags if is_valid_tag(tag) else rejected).add(tag)
            url = self._next_page(response, url, f"tag list of {repository}")
        if rejected:
            log.warning("%s: ignored %d invalid tag names", repository, len(rejected))
        return TagList(tuple(sorted(tags)), tuple(sorted(rejected)), len(seen_urls))

    def head_manifest(self, repository: str, reference: str) -> ManifestHead:
        """The digest a tag points to now; a HEAD when the registry's answer can be trusted, else a GET."""
        url = self._manifest_url(repository, reference)
        response, _ = self._request(
            "HEAD", url, repository, kind="manifest_heads", accept=mediatypes.MANIFEST_ACCEPT
        )
        if response.status_code == 404:
            # Trustworthy only because the Accept list is complete; see DESIGN.md.
            raise TagNotFound(f"{repository}:{reference} is not in the registry")
        if response.status_code == 200:
            digest = response.headers.get("Docker-Content-Digest", "")
            media_type = mediatypes.bare(response.headers.get("Content-Type"))
            if is_digest(digest) and media_type in mediatypes.MANIFESTS | mediatypes.LEGACY:
                if is_digest(reference) and digest != reference:
                    raise DigestMismatch(reference, digest)
                return ManifestHead(
                    digest, media_type, _content_length(response), media_type in mediatypes.LEGACY
                )
        elif response.status_code not in (400, 405, 501):
            self._raise_for(response, b"", f"manifest {repository}:{reference}", missing=TagNotFound)
        # HEAD refused, or its headers cannot be trusted: the body is the truth.
        manifest = self.get_manifest(repository, reference)
        return ManifestHead(manifest.digest, manifest.media_type, manifest.size, manifest.legacy)

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest, its digest computed over the exact bytes and checked against the header."""
        url = self._manifest_url(repository, reference)
        response, body = self._request(
            "GET", url, repository, kind="manifest_gets",
            accept=mediatypes.MANIFEST_ACCEPT, limit=MAX_MANIFEST_BYTES,
        )  # fmt: skip
        what = f"manifest {repository}:{reference}"
        if response.status_code != 200:
            self._raise_for(response, body, what, missing=TagNotFound)
        media_type = mediatypes.bare(response.headers.get("Content-Type"))
        header = response.headers.get("Docker-Content-Digest", "")
        if media_type in mediatypes.LEGACY:
            # A schema1 body is re-signed per request; only the registry's digest names it.
            digest = reference if is_digest(reference) else header
            if not is_digest(digest):
                raise BadResponse(f"{what}: schema1 manifest without a digest header")
            return parse_manifest(body, media_type, digest)
        digest = self._verified_digest(body, header, reference)
        return parse_manifest(body, media_type, digest)

    def list_referrers(self, repository: str, digest: str, artifact_type: str = "") -> Referrers | None:
        """The manifests whose `subject` is `digest` (OCI 1.1 referrers API), following `Link:
        rel="next"` on this host; None when the registry has no referrers API (NO_REFERRERS_API).

        The answer is an OCI index no digest names, so nothing verifies it: each entry is read with
        the manifest parser's care, and one that is no descriptor is left out rather than failing
        the rest. With `artifact_type`, entries of other types are left out here too whether or not
        the registry filtered (`filtered` says whether it did). At most MAX_REFERRERS entries and
        MAX_REFERRERS_PAGES pages; past them `truncated` is set. Each page is one request, counted
        as `referrers` in `stats` (and in `requests`).
        """
        self._check_repository(repository)
        if not is_digest(digest):
            raise ValueError(f"not a digest: {digest!r}")
        if artifact_type and not mediatypes.parse(artifact_type):
            raise ValueError(f"not a media type: {artifact_type!r}")
        what = f"referrers of {repository}@{digest}"
        url = f"{self.base_url}/v2/{repository}/referrers/{digest}"
        if artifact_type:
            url += f"?artifactType={quote(artifact_type, safe='')}"
        descriptors: list[Descriptor] = []
        seen_urls: set[str] = set()
        filtered = truncated = False
        while url:
            if url in seen_urls:
                raise BadResponse(f"{what} links back to a page already read")
            if len(seen_urls) == MAX_REFERRERS_PAGES:
                truncated = True
                break
            seen_urls.add(url)
            response, body = self._request(
                "GET", url, repository, kind="referrers", accept=mediatypes.OCI_INDEX,
                limit=MAX_REFERRERS_PAGE_BYTES,
            )  # fmt: skip
            first = len(seen_urls) == 1
            if first and response.status_code in NO_REFERRERS_API:
                if response.status_code == 404 and "NAME_UNKNOWN" in _error_codes(body):
                    raise RepositoryNotFound(f"{self.registry}: {what}: HTTP 404 (NAME_UNKNOWN)")
                return None
            if response.status_code != 200:
                self._raise_for(response, body, what, missing=BadResponse)
            if first:
                filtered = "artifacttype" in _filters_applied(response.headers.get("OCI-Filters-Applied"))
            descriptors.extend(_referrers_page(body, response.headers.get("Content-Type"), what))
            if len(descriptors) > MAX_REFERRERS:
                truncated = True
                break
            url = self._next_page(response, url, what)
        if artifact_type:
            descriptors = [entry for entry in descriptors if entry.artifact_type == artifact_type]
        if truncated:
            log.warning("%s: more than %d entries or %d pages; the rest left out", what, MAX_REFERRERS,
                        MAX_REFERRERS_PAGES)  # fmt: skip
        return Referrers(tuple(descriptors[:MAX_REFERRERS]), filtered, truncated)

    def get_config(self, repository: str, digest: str) -> ImageConfig:
        return parse_config(self.get_blob(repository, digest, MAX_CONFIG_BYTES), digest)

    def get_blob(self, repository: str, digest: str, max_bytes: int = MAX_CONFIG_BYTES) -> bytes:
        """A small blob (an image config), verified; redirects to storage hosts get no credentials."""
        self._check_repository(repository)
        if not is_digest(digest):
            raise ValueError(f"not a digest: {digest!r}")
        url = f"{self.base_url}/v2/{repository}/blobs/{digest}"
        response, body = self._request("GET", url, repository, kind="blob_gets", limit=max_bytes)
        if response.status_code != 200:
            self._raise_for(response, body, f"blob {repository}@{digest}", missing=BadResponse)
        self._verified_digest(body, "", digest)
        return body

    # --- plumbing ----------------------------------------------------------------------------

    def _request(self, method, url, repository, *, kind, accept=None, limit=MAX_ERROR_BYTES):
        """Send with auth for `repository`, following redirects; re-authenticate once on 401."""
        scope = f"repository:{repository}:pull"
        reauthenticated = False
        redirects = 0
        refusal = None  # set once a redirect leads off the registry: that host's peer is checked
        while True:
            same_host = _origin(url) == _origin(self.base_url)
            headers = {"Accept": accept} if accept else {}
            if same_host:
                headers.update(self._auth_headers(scope))
            response, body = self._send(
                method, url, kind=kind, headers=headers, limit=limit, refusal=None if same_host else refusal
            )
            if response.status_code == 401 and same_host and not reauthenticated:
                reauthenticated = True
                self._authenticate(scope, parse_challenge(response.headers.get("WWW-Authenticate")))
                continue
            if response.status_code in REDIRECT_STATUSES and response.headers.get("Location"):
                redirects += 1
                if redirects > MAX_REDIRECTS:
                    raise BadResponse(f"more than {MAX_REDIRECTS} redirects from {self.registry}")
                url, refusal = self._redirect_target(url, response.headers["Location"])
                continue
            return response, body

    def _redirect_target(self, url: str, location: str) -> tuple[str, str | None]:
        """Where a redirect leads, if tagledger may go there: on the registry or a storage host.
        With it, the refusal prefix for the connection's peer check (None on the registry)."""
        try:
            target = urljoin(url, location.strip(" \t"))
            scheme = urlsplit(target).scheme
        except ValueError:  # urljoin on "http://[::1" and the like
            raise BadResponse(f"{self.registry}: a redirect to {printable(location)} is not a URL") from None
        if scheme not in ("http", "https"):
            raise BadResponse("redirect to a non-HTTP location")
        if _origin(target) == _origin(self.base_url):
            return target, None
        return target, self._check_target(target, "a redirect to", came_from=url)

    def _send(self, method, url, *, kind, headers=None, limit=MAX_ERROR_BYTES, refusal=None, **options):
        """One logical request with bounded, jittered retries; the body is read inside the retry loop
        so that a connection reset mid-body is retried too.

        `refusal` marks a host the registry named (a realm, a storage host): its connection may
        only reach the address kinds `_allowed_kinds` gives, and the refusal starts with it."""
        allowed = self._allowed_kinds() if refusal is not None else None
        for attempt_number in range(1, self.max_attempts + 1):
            self._count(kind)
            attempt = transport.Attempt(self.deadline, allowed, refusal or "")
            try:
                response, body = self._exchange(attempt, method, url, headers, limit, options)
            except (ValueError, *transport.TRANSPORT_ERRORS) as error:
                failure = self._transport_failure(attempt, method, url, error)
                wait = None
            else:
                self._observe(response)
                if response.status_code not in RETRY_STATUSES:
                    return response, body
                wait = parse_retry_after(response.headers.get("Retry-After"))
                failure = self._status_error(response, body, f"{method} {urlsplit(url).path}")
                if wait is not None and wait > self.max_backoff:
                    raise failure  # the caller reschedules; sleeping that long would hold a worker
            if attempt_number == self.max_attempts:
                raise failure
            delay = wait if wait is not None else random.uniform(0, self.backoff * 2 ** (attempt_number - 1))  # noqa: S311
            self._count("retries")
            log.info("%s, retrying in %.1fs", failure, delay)
            time.sleep(min(delay, self.max_backoff))
        raise AssertionError("unreachable")  # pragma: no cover

    def _exchange(self, attempt: transport.Attempt, method, url, headers, limit, options):
        """One try: connect, send and read the whole answer before the attempt's deadline."""
        with transport.watchdog.watching(attempt):
            response = self.session.request(
                method, url, headers=headers, timeout=self.timeout,
                stream=True, allow_redirects=False, **options,
            )  # fmt: skip
            try:
                body = self._read(response, limit)
            except BaseException:
                response.close()  # a half-read connection must never go back to the pool
                raise
        if attempt.expired:  # the body may look whole: cut short at a chunk or read to a shutdown
            response.close()
            raise transport.DeadlinePassed
        # Back to the pool for the next request; close() would drop the connection.
        response.raw.release_conn()
        return response, body

    def _transport_failure(self, attempt: transport.Attempt, method, url, error: Exception) -> RegistryError:
        """What a failed try means: Unavailable (retried), or BadResponse for what cannot be sent."""
        if attempt.expired:
            return Unavailable(
                f"{self.registry}: {method} {printable(urlsplit(url).path, 80)}: "
                f"no complete answer within the {self.deadline:g} s deadline"
            )
        if isinstance(error, ValueError):
            # requests' InvalidURL/InvalidHeader and their kin: a URL or header from the registry
            # (a Location, a realm, a Content-Length) no client could use. Trying again will not help.
            what = f"{method} {printable(url, 80)}"
            raise BadResponse(f"{self.registry}: {what}: {type(error).__name__}") from None
        return Unavailable(f"{self.registry}: {type(error).__name__}: {transport.ends(str(error))}")

    def _read(self, response: requests.Response, limit: int) -> bytes:
        if response.request.method == "HEAD":
            response.raw.read()  # nothing to read, but the connection must see the response end
            return b""
        if not 200 <= response.status_code < 300:
            return self._error_body(response)
        declared = _content_length(response)
        if declared is None and "Content-Length" in response.headers:
            # http.client and urllib3 read '+5', '1_0' or '5, 5' as lengths of their own: a body
            # framed in a way we cannot check leaves the connection in a state nobody knows.
            raise BadResponse(f"{self.registry}: a Content-Length that is not a number")
        if declared is not None and declared > limit:
            raise BadResponse(f"{self.registry}: response of {declared} bytes exceeds the {limit} byte cap")
        chunks, total = [], 0
        for chunk in response.iter_content(64 * 1024):
            total += len(chunk)
            if total > limit:
                raise BadResponse(f"{self.registry}: response exceeds the {limit} byte cap")
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _error_body(response: requests.Response) -> bytes:
        """The start of an error page, for its error codes: its size never changes what the error is."""
        chunks, total = [], 0
        for chunk in response.iter_content(16 * 1024):
            chunks.append(chunk)
            total += len(chunk)
            if total >= MAX_ERROR_BYTES:
                response.close()  # the rest stays unread, so this connection cannot be reused
                break
        return b"".join(chunks)[:MAX_ERROR_BYTES]

    def _auth_headers(self, scope: str) -> dict[str, str]:
        if not self._pinged:
            self.ping()
        challenge = self._challenge
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            return {"Authorization": basic_header(self.credentials)} if self.credentials else {}
        token = self._tokens.get(scope) or self._authenticate(scope, challenge, only_if_missing=True)
        return {"Authorization": f"Bearer {token}"}

    def _authenticate(self, scope, challenge: Challenge | None, *, only_if_missing=False) -> str:
        """Get a Bearer token for `scope` (one fetch at a time, so threads share it)."""
        if challenge is None or challenge.scheme == "basic":
            if challenge is not None and self.credentials is not None:
                with self._lock:
                    self._challenge = challenge  # the registry asked for Basic; send it next time
                self._learn(challenge)
                return ""
            raise AccessDenied(
                f"{self.registry} requires credentials; add them to $DOCKER_CONFIG/config.json"
            )
        with self._auth_lock:
            if only_if_missing and (token := self._tokens.get(scope)):
                return token
            self._tokens.drop(scope)
            token = self._fetch_token(challenge, scope)
            self._tokens.put(scope, token)
            with self._lock:
                self._challenge = challenge
            self._learn(challenge)
            return token.value

    def _learn(self, challenge: Challenge | None) -> None:
        if self._memory is not None:
            self._memory.learn(self._memory_key, challenge)

    def _fetch_token(self, challenge: Challenge, scope: str):
        """A Bearer token from the realm: the one place credentials go that is not the registry."""
        realm = challenge.realm
        refusal = self._check_target(realm, "the token realm", came_from=self.base_url)
        params = {"service": challenge.service, "scope": scope}
        credentials = self.credentials
        if credentials and credentials.identity_token:
            # `docker login` with an identity token: OAuth2 refresh-token grant.
            data = {**params, "grant_type": "refresh_token", "client_id": "tagledger",
                    "refresh_token": credentials.identity_token}  # fmt: skip
            response, body = self._send("POST", realm, kind="tokens", data=data, refusal=refusal)
        else:
            # Our own header, UTF-8 like docker's, rather than requests' latin-1 `auth=`.
            headers = {"Authorization": basic_header(credentials)} if credentials else {}
            response, body = self._send(
                "GET", realm, kind="tokens", headers=headers, refusal=refusal,
                params={k: v for k, v in params.items() if v},
            )  # fmt: skip
        if response.status_code in (401, 403):
            raise AccessDenied(f"{self.registry}: the token service refused the credentials for {scope}")
        if response.status_code != 200:
            self._raise_for(response, body, "token request")
        try:
            document = json.loads(body, parse_int=_json_int)
        except (ValueError, RecursionError):
            raise BadResponse(f"{self.registry}: token response is not JSON") from None
        return token_from_response(document)

    def _check_target(self, url: str, what: str, *, came_from: str) -> str:
        """Refuse a host the registry named (realm, redirect) unless tagledger may go there.

        Rules: HTTP(S) only, no userinfo, never HTTPS to plain HTTP, and every address the name
        resolves to is public or of the registry's own kind. The connection's peer is checked
        again (see _GuardedConnection). Returns the refusal prefix for that later check.
        """
        refusal = f"{self.registry}: refused {what} {printable(url)}"
        try:
            parts = urlsplit(url)
            host, _ = parts.hostname, parts.port  # .port raises for "host:99999" or "host:x"
        except ValueError:
            raise BadResponse(f"{self.registry}: {what} {printable(url)} is not a URL") from None
        if parts.scheme not in ("http", "https") or not host:
            noun = "token realm" if what == "the token realm" else "redirect target"
            raise BadResponse(f"{self.registry}: {noun} {printable(url)} is not an HTTP URL")
        if "@" in parts.netloc:
            raise UnsafeTarget(f"{refusal}: it carries a user name")
        if urlsplit(came_from).scheme == "https" and parts.scheme != "https":
            raise UnsafeTarget(f"{refusal}: plain HTTP after HTTPS")
        try:
            addresses = transport.resolve(host)
        except ValueError:
            raise BadResponse(f"{self.registry}: {what} {printable(url)} names no valid host") from None
        allowed = self._allowed_kinds()
        for address in addresses or ():
            kind = transport.address_kind(address)
            if kind not in allowed:
                raise UnsafeTarget(f"{refusal}: it resolves to {address}, a {kind} address")
        return refusal

    def _allowed_kinds(self) -> frozenset[str]:
        """The address kinds a host the registry names may have: public, and the registry's own."""
        kinds = self._registry_kinds
        if kinds is None:
            try:
                addresses = transport.resolve(urlsplit(self.base_url).hostname or "")
            except ValueError:
                addresses = None
            kinds = frozenset(transport.address_kind(address) for address in addresses or ())
            if addresses:  # a name that does not resolve now is asked again next time
                self._registry_kinds = kinds
        return kinds | {transport.PUBLIC}

    def _verified_digest(self, body: bytes, header: str, reference: str) -> str:
        """The digest of `body`: checked against a digest reference and the registry's header."""
        claimed = [value for value in (reference, header) if is_digest(value)]
        if not claimed:
            return digest_of(body)
        for value in claimed:
            algorithm = value.split(":", 1)[0]
            actual = digest_of(body, algorithm)
            if actual != value:
                raise DigestMismatch(value, actual)
        return claimed[0]

    def _status_error(self, response, body: bytes, what: str, missing=TagNotFound) -> RegistryError:
        status = response.status_code
        codes = _error_codes(body)
        detail = f"{self.registry}: {what}: HTTP {status}" + (f" ({', '.join(codes)})" if codes else "")
        if status == 429 or "TOOMANYREQUESTS" in codes:
            return RateLimited(detail, parse_retry_after(response.headers.get("Retry-After")))
        if status == 404:
            if "NAME_UNKNOWN" in codes:
                return RepositoryNotFound(detail)
            return missing(detail)
        if status in (401, 403) or "DENIED" in codes or "UNAUTHORIZED" in codes:
            return AccessDenied(detail + ": missing, private, or the credentials lack pull access")
        if status >= 500 or status == 408:
            return Unavailable(detail)
        return BadResponse(detail)

    def _raise_for(self, response, body: bytes, what: str, missing=TagNotFound):
        raise self._status_error(response, body, what, missing)

    def _observe(self, response: requests.Response) -> None:
        rate_limit = parse_rate_limit(response.headers)
        if rate_limit is not None:
            self.rate_limit = rate_limit

    def _count(self, kind: str) -> None:
        with self._lock:
            self.stats[kind] += 1
            self.stats["requests"] += 1

    def _tag_page(self, body: bytes, repository: str) -> list[str]:
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past the C stack
            raise BadResponse(f"tag list of {repository} is not JSON") from None
        tags = document.get("tags") if isinstance(document, dict) else None
        if tags is None and isinstance(document, dict):
            return []  # distribution answers "tags": null for a repository with none
        if not isinstance(tags, list):
            raise BadResponse(f"tag list of {repository} has no 'tags' list")
        return [tag for tag in tags if isinstance(tag, str)]

    def _next_page(self, response: requests.Response, url: str, what: str) -> str | None:
        """The `Link: <...>; rel="next"` page after `url`, on this registry only (`what`: a tag list,
        referrers, for the message)."""
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        try:
            target = urljoin(url, link)
            foreign = _origin(target) != _origin(self.base_url)
        except ValueError:  # "http://[::1" and the like
            raise BadResponse(f"{what} links to {printable(link)}: not a URL") from None
        if foreign:
            raise BadResponse(f"{what} links to another host: refused")
        return target

    def _manifest_url(self, repository: str, reference: str) -> str:
        self._check_repository(repository)
        if not (is_valid_tag(reference) or is_digest(reference)):
            raise ValueError(f"not a tag or digest: {reference!r}")
        return f"{self.base_url}/v2/{repository}/manifests/{reference}"

    @staticmethod
    def _check_repository(repository: str) -> None:
        if not is_valid_repository(repository):
            raise ValueError(f"not a repository path: {repository!r}")


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _content_length(response: requests.Response) -> int | None:
    return header_number(response.headers.get("Content-Length"), MAX_CONTENT_LENGTH)


def _json_int(text: str) -> int | float:
    """A JSON integer; one too long for int() (past 4300 digits) is as large as a float goes."""
    if len(text) > 40:
        return float("-inf") if text.startswith("-") else float("inf")
    return int(text)


def _filters_applied(value: str | None) -> set[str]:
    """The filters an `OCI-Filters-Applied` header names (a comma-separated list), lower-cased."""
    return {item.strip(" \t").lower() for item in (value or "").split(",")[:16]}


def _referrers_page(body: bytes, content_type: str | None, what: str) -> list[Descriptor]:
    """The entries of one page of a referrers answer: an OCI image index. An entry that is no
    valid descriptor (a digest or size of the wrong shape) is left out, the others kept."""
    document = json_object(body, what)
    declared = document.get("mediaType")
    if declared is not None and declared != mediatypes.OCI_INDEX:
        raise BadResponse(f"{what}: mediaType {quoted(declared)} is not an OCI image index")
    if declared is None and mediatypes.bare(content_type) != mediatypes.OCI_INDEX:
        raise BadResponse(f"{what}: the answer is not an OCI image index")
    entries = document.get("manifests")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise BadResponse(f"{what}: 'manifests' is not a list")
    found = []
    for entry in entries[: MAX_REFERRERS + 1]:
        try:
            found.append(_descriptor(entry))
        except BadResponse as error:
            log.info("%s: an entry left out: %s", what, error)
    return found


def _error_codes(body: bytes) -> list[str]:
    """The `code`s of an OCI error body ({"errors": [{"code": ...}]}), if it is one."""
    try:
        errors = json.loads(body).get("errors")
    except (ValueError, AttributeError, RecursionError):
        return []
    if not isinstance(errors, list):
        return []
    codes = [e.get("code") for e in errors if isinstance(e, dict)]
    # Codes end up in messages and the UI: keep only what the spec's codes look like.
    return [code for code in codes if isinstance(code, str) and _ERROR_CODE.match(code)][:5]
