"""Registry authentication: WWW-Authenticate challenges, docker config.json credentials, token cache."""

import base64
import hashlib
import json
import math
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .errors import AccessDenied

DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
_PARAM = re.compile(r'([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
# Tokens are refreshed this long before they expire, so a request never races the expiry.
_EXPIRY_MARGIN = 5.0
# The spec's default lifetime; shorter ones are raised to it, as docker does.
MIN_TOKEN_LIFETIME = 60.0
# A client lives for one poll. A longer claim (`expires_in: 1e400`) is cut to an hour: a token the
# registry has already retired costs one 401 and a new token, a token kept forever costs more.
MAX_TOKEN_LIFETIME = 3600.0
# What may follow "Bearer " in a header: visible ASCII (JWTs, opaque tokens; RFC 6750's b64token is
# narrower). A CR/LF, a space or a non-latin-1 letter could not be sent; servers refuse headers
# much past 16 KiB anyway.
_TOKEN = re.compile(r"[!-~]{1,16384}")
# Tokens kept per registry (one per repository scope): a token is at most 16 KiB.
MAX_SCOPES = 4096


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic"
    realm: str = ""
    service: str = ""
    scope: str = ""
    error: str = ""


def parse_challenge(header: str | None) -> Challenge | None:
    """Parse a WWW-Authenticate header; None when absent or not Bearer/Basic."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in {"bearer", "basic"}:
        return None
    params: dict[str, str] = {}
    for match in _PARAM.finditer(rest):
        # Repeated WWW-Authenticate headers arrive joined by ", ": the first challenge's value counts.
        value = match[2].replace('\\"', '"') if match[2] is not None else match[3]
        params.setdefault(match[1].lower(), value)
    return Challenge(
        scheme=scheme,
        realm=params.get("realm", ""),
        service=params.get("service", ""),
        scope=params.get("scope", ""),
        error=params.get("error", ""),
    )


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""

    def __repr__(self) -> str:  # never let a secret reach a log line or a traceback
        return f"Credentials(username={self.username!r}, secrets=***)"


def canonical_registry(host: str) -> str:
    """The name a registry is known by: docker.io for every Docker Hub alias, lower-case host[:port]."""
    host = host.strip().lower()
    host = re.sub(r"^[a-z]+://", "", host).split("/", 1)[0]
    return DOCKER_HUB if host in _HUB_ALIASES else host


def load_credentials(registry: str, docker_config_dir: str | Path | None) -> Credentials | None:
    """Credentials for `registry` from `$DOCKER_CONFIG/config.json` (the format `docker login` writes).

    Keys may be `host`, `host:port`, `https://host/v1/`, …; Docker Hub's is `https://index.docker.io/v1/`.
    Credential helpers (credsStore/credHelpers) are not run: a server should not shell out to them.
    """
    if docker_config_dir is None:
        return None
    path = Path(docker_config_dir) / "config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise AccessDenied(f"cannot read {path}: {error}") from None
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        return None
    wanted = canonical_registry(registry)
    for key, entry in auths.items():
        if canonical_registry(key) == wanted and isinstance(entry, dict):
            return _credentials(entry, path)
    return None


def _credentials(entry: dict, path: Path) -> Credentials | None:
    username, password = entry.get("username") or "", entry.get("password") or ""
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(entry["auth"], validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise AccessDenied(f"{path}: an 'auth' value is not base64 of user:password") from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise AccessDenied(f"{path}: an 'auth' value is not base64 of user:password")
    identity_token = entry.get("identitytoken") or ""
    if not (username or password or identity_token):
        return None
    return Credentials(str(username), str(password), str(identity_token))


@dataclass(frozen=True)
class Token:
    value: str
    expires_at: float  # time.monotonic() deadline

    @property
    def fresh(self) -> bool:
        return time.monotonic() < self.expires_at - _EXPIRY_MARGIN


def token_from_response(document: object, received_at: float | None = None) -> Token:
    """Read a token endpoint's JSON: `token` or `access_token`, `expires_in` (default 60 s), `issued_at`.

    Every field is hostile: the token must fit in a header, the lifetime lands in
    [MIN_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME] less the time since issue; anything else is refused
    as AccessDenied or ignored, never raised as something else.
    """
    if not isinstance(document, dict):
        raise AccessDenied("token endpoint did not answer with a JSON object")
    candidates = [document.get("token"), document.get("access_token")]
    values = [value for value in candidates if isinstance(value, str) and value]
    if not values:
        raise AccessDenied("token endpoint answered without a token")
    value = values[0]
    if not _TOKEN.fullmatch(value):
        raise AccessDenied("token endpoint answered with a token that cannot be sent in a header")
    lifetime = _lifetime(document.get("expires_in"))
    now = time.monotonic() if received_at is None else received_at
    issued_at = _parse_time(document.get("issued_at"))
    if issued_at is not None:
        # Time already spent since issue counts against the lifetime; an age beyond the lifetime
        # means skewed clocks, not an expired token, so then local receipt time is the better guess.
        age = time.time() - issued_at
        if 0 < age < lifetime:
            lifetime -= age
    return Token(value, now + lifetime)


def _lifetime(expires_in: object) -> float:
    """Seconds a token lives: a JSON number (not a bool, not NaN) clamped to the bounds above."""
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
        return MIN_TOKEN_LIFETIME
    if isinstance(expires_in, float) and math.isnan(expires_in):
        return MIN_TOKEN_LIFETIME
    # Compared before any float(): 10**400 is a valid JSON int that float() cannot hold.
    return float(min(max(expires_in, MIN_TOKEN_LIFETIME), MAX_TOKEN_LIFETIME))


def _parse_time(value: object) -> float | None:
    if not isinstance(value, str) or len(value) > 64:  # an RFC 3339 time is ~35 characters
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError):  # year 0, or 9999-12-31T23:59:59-23:59 past datetime.max
        return None


class TokenCache:
    """Bearer tokens per scope, shared by the threads of one client."""

    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}
        self._lock = threading.Lock()

    def get(self, scope: str) -> str | None:
        with self._lock:
            token = self._tokens.get(scope)
            return token.value if token and token.fresh else None

    def put(self, scope: str, token: Token) -> None:
        with self._lock:
            self._tokens[scope] = token
            if len(self._tokens) > MAX_SCOPES:  # kept across polls (AuthMemory): expired ones go
                self._tokens = {key: kept for key, kept in self._tokens.items() if kept.fresh}
                _bound(self._tokens, MAX_SCOPES)

    def drop(self, scope: str) -> None:
        with self._lock:
            self._tokens.pop(scope, None)


class AuthMemory:
    """What one process has learnt of each registry's auth, kept from one poll to the next: the
    challenge its /v2/ ping answered and the Bearer tokens it issued, per set of credentials.

    A poll's client starts from it instead of a ping and a token request: two round trips per
    poll, which for a registry 50-150 ms away is what a small repository's poll mostly waits on.
    Safe to trust because nothing here decides access: a token past its lifetime is never sent
    (TokenCache), and a registry that changed its mind answers 401, after which the client
    authenticates anew (and tells the memory). A challenge is trusted for CHALLENGE_SECONDS.
    """

    CHALLENGE_SECONDS = 600.0
    MAX_REGISTRIES = 1024  # (registry, credentials) pairs; the oldest is forgotten first

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._challenges: dict[tuple[str, str], tuple[Challenge | None, float]] = {}
        self._tokens: dict[tuple[str, str], TokenCache] = {}

    @staticmethod
    def key(base_url: str, credentials: Credentials | None) -> tuple[str, str]:
        """(registry, a digest of the credentials): a token is never reused for other credentials."""
        secret = (
            ""
            if credentials is None
            else "\0".join((credentials.username, credentials.password, credentials.identity_token))
        )
        return base_url, hashlib.sha256(secret.encode()).hexdigest()

    def challenge(self, key: tuple[str, str]) -> tuple[bool, Challenge | None]:
        """(known, the challenge): known is False when no recent ping or 401 taught one."""
        with self._lock:
            remembered = self._challenges.get(key)
        if remembered is None or time.monotonic() > remembered[1]:
            return False, None
        return True, remembered[0]

    def learn(self, key: tuple[str, str], challenge: Challenge | None) -> None:
        with self._lock:
            self._challenges.pop(key, None)
            self._challenges[key] = challenge, time.monotonic() + self.CHALLENGE_SECONDS
            _bound(self._challenges, self.MAX_REGISTRIES)

    def tokens(self, key: tuple[str, str]) -> "TokenCache":
        with self._lock:
            if key not in self._tokens:
                self._tokens[key] = TokenCache()
                _bound(self._tokens, self.MAX_REGISTRIES)
            return self._tokens[key]


def _bound(entries: dict, size: int) -> None:
    while len(entries) > size:
        del entries[next(iter(entries))]


def basic_header(credentials: Credentials) -> str:
    raw = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()
