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
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from . import mediatypes
from .auth import (
    DOCKER_HUB,
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
)
from .manifest import ImageConfig, Manifest, ManifestHead, digest_of, is_digest, parse_config, parse_manifest
from .reference import is_valid_repository, is_valid_tag

log = logging.getLogger(__name__)

TAG_PAGE_SIZE = 1000  # ECR rejects anything larger; registries that ignore it are fine too
MAX_TAG_PAGES = 10_000
MAX_MANIFEST_BYTES = 8 * 1024 * 1024
MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_TAG_PAGE_BYTES = 16 * 1024 * 1024
MAX_ERROR_BYTES = 64 * 1024
MAX_REDIRECTS = 5
MAX_RETRY_AFTER = 24 * 3600.0  # a hostile Retry-After must not schedule a poll for the year 3000
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


def parse_rate_limit(headers) -> RateLimit | None:
    limit, limit_window = _quota(headers.get("ratelimit-limit"))
    remaining, remaining_window = _quota(headers.get("ratelimit-remaining"))
    if limit is None and remaining is None:
        return None
    return RateLimit(limit, remaining, limit_window or remaining_window)


def _quota(value: str | None) -> tuple[int | None, int | None]:
    if not value:
        return None, None
    number, _, rest = value.partition(";")
    window = rest.strip()[2:] if rest.strip().startswith("w=") else ""
    try:
        return int(number), int(window) if window else None
    except ValueError:
        return None, None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header given as delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(0.0, when.timestamp() - time.time()), MAX_RETRY_AFTER)


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
    ):
        self.registry = canonical_registry(registry)
        self.base_url = endpoint(self.registry, insecure=insecure)
        self.credentials = credentials
        self.timeout = (min(timeout, 10.0), timeout)  # connect fast, allow slow bodies
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.rate_limit: RateLimit | None = None
        self.stats: Counter[str] = Counter()
        self._tokens = TokenCache()
        self._challenge: Challenge | None = None
        self._pinged = False
        self._lock = threading.Lock()
        self._auth_lock = threading.Lock()
        self.session = _Session()
        self.session.headers["User-Agent"] = USER_AGENT
        # One pooled connection per worker thread; retries are ours, not urllib3's.
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(concurrency, 1), max_retries=0)
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
            url = self._next_page(response, url, repository)
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
        while True:
            same_host = _origin(url) == _origin(self.base_url)
            headers = {"Accept": accept} if accept else {}
            if same_host:
                headers.update(self._auth_headers(scope))
            response, body = self._send(method, url, kind=kind, headers=headers, limit=limit)
            if response.status_code == 401 and same_host and not reauthenticated:
                reauthenticated = True
                self._authenticate(scope, parse_challenge(response.headers.get("WWW-Authenticate")))
                continue
            if response.status_code in REDIRECT_STATUSES and response.headers.get("Location"):
                redirects += 1
                if redirects > MAX_REDIRECTS:
                    raise BadResponse(f"more than {MAX_REDIRECTS} redirects from {self.registry}")
                url = urljoin(url, response.headers["Location"])
                if urlsplit(url).scheme not in ("http", "https"):
                    raise BadResponse("redirect to a non-HTTP location")
                continue
            return response, body

    def _send(self, method, url, *, kind, headers=None, limit=MAX_ERROR_BYTES, **options):
        """One logical request with bounded, jittered retries; the body is read inside the retry loop
        so that a connection reset mid-body is retried too."""
        for attempt in range(1, self.max_attempts + 1):
            self._count(kind)
            try:
                response = self.session.request(
                    method, url, headers=headers, timeout=self.timeout,
                    stream=True, allow_redirects=False, **options,
                )  # fmt: skip
                try:
                    body = self._read(response, limit)
                except BaseException:
                    response.close()  # a half-read connection must never go back to the pool
                    raise
                # Back to the pool for the next request; close() would drop the connection.
                response.raw.release_conn()
            except requests.RequestException as error:
                failure: RegistryError = Unavailable(f"{self.registry}: {type(error).__name__}: {error}")
                wait = None
            else:
                self._observe(response)
                if response.status_code not in RETRY_STATUSES:
                    return response, body
                wait = parse_retry_after(response.headers.get("Retry-After"))
                failure = self._status_error(response, body, f"{method} {urlsplit(url).path}")
                if wait is not None and wait > self.max_backoff:
                    raise failure  # the caller reschedules; sleeping that long would hold a worker
            if attempt == self.max_attempts:
                raise failure
            delay = wait if wait is not None else random.uniform(0, self.backoff * 2 ** (attempt - 1))  # noqa: S311
            self._count("retries")
            log.info("%s, retrying in %.1fs", failure, delay)
            time.sleep(min(delay, self.max_backoff))
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, response: requests.Response, limit: int) -> bytes:
        if response.request.method == "HEAD":
            response.raw.read()  # nothing to read, but the connection must see the response end
            return b""
        if not 200 <= response.status_code < 300:
            return self._error_body(response)
        declared = _content_length(response)
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
            return token.value

    def _fetch_token(self, challenge: Challenge, scope: str):
        realm = challenge.realm
        if urlsplit(realm).scheme not in ("http", "https"):
            raise BadResponse(f"{self.registry}: token realm is not an HTTP URL")
        params = {"service": challenge.service, "scope": scope}
        credentials = self.credentials
        if credentials and credentials.identity_token:
            # `docker login` with an identity token: OAuth2 refresh-token grant.
            data = {**params, "grant_type": "refresh_token", "client_id": "tagledger",
                    "refresh_token": credentials.identity_token}  # fmt: skip
            response, body = self._send("POST", realm, kind="tokens", data=data)
        else:
            auth = (credentials.username, credentials.password) if credentials else None
            response, body = self._send(
                "GET", realm, kind="tokens", params={k: v for k, v in params.items() if v}, auth=auth
            )
        if response.status_code in (401, 403):
            raise AccessDenied(f"{self.registry}: the token service refused the credentials for {scope}")
        if response.status_code != 200:
            self._raise_for(response, body, "token request")
        try:
            document = json.loads(body)
        except ValueError:
            raise BadResponse(f"{self.registry}: token response is not JSON") from None
        return token_from_response(document)

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
        except ValueError:
            raise BadResponse(f"tag list of {repository} is not JSON") from None
        tags = document.get("tags") if isinstance(document, dict) else None
        if tags is None and isinstance(document, dict):
            return []  # distribution answers "tags": null for a repository with none
        if not isinstance(tags, list):
            raise BadResponse(f"tag list of {repository} has no 'tags' list")
        return [tag for tag in tags if isinstance(tag, str)]

    def _next_page(self, response: requests.Response, url: str, repository: str) -> str | None:
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        target = urljoin(url, link)
        if _origin(target) != _origin(self.base_url):
            raise BadResponse(f"tag list of {repository} links to another host: refused")
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
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None


def _error_codes(body: bytes) -> list[str]:
    """The `code`s of an OCI error body ({"errors": [{"code": ...}]}), if it is one."""
    try:
        errors = json.loads(body).get("errors")
    except (ValueError, AttributeError):
        return []
    if not isinstance(errors, list):
        return []
    codes = [e.get("code") for e in errors if isinstance(e, dict)]
    # Codes end up in messages and the UI: keep only what the spec's codes look like.
    return [code for code in codes if isinstance(code, str) and _ERROR_CODE.match(code)][:5]
