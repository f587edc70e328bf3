"""A small Docker token-protocol server whose signed JWTs a real distribution registry verifies."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import secrets
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DEFAULT_SERVICE = "tagledger-test-registry"
DEFAULT_ISSUER = "tagledger-test-issuer"
ALL_ACTIONS = frozenset({"pull", "push", "delete", "*"})


@dataclass
class SigningIdentity:
    """An EC P-256 key plus the self-signed certificate that vouches for it."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def generate(cls, common_name: str) -> SigningIdentity:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            # A CA cert so Go's x509 verifier is happy whichever way it builds the chain.
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def x5c(self) -> list[str]:
        # x5c is standard (not URL-safe) base64 of DER, leaf first (RFC 7515 4.1.6).
        der = self.cert.public_bytes(serialization.Encoding.DER)
        return [base64.b64encode(der).decode()]


@dataclass
class TokenRequest:
    """One request the token server answered, for asserting on token caching."""

    method: str
    scopes: list[str]
    account: str | None
    authenticated: bool
    grant_type: str | None
    status: int
    at: float = field(default_factory=time.monotonic)


class TokenServer:
    """Threaded HTTP server implementing GET/POST /token of the Docker token protocol.

    Attributes below are read on every request, so tests may change them at runtime;
    `reset()` restores the defaults and clears `requests`.
    """

    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        service: str = DEFAULT_SERVICE,
        issuer: str = DEFAULT_ISSUER,
    ) -> None:
        self._default_users = dict(users or {"tester": "s3cret-pass"})
        self.service = service
        self.issuer = issuer
        self.identity = SigningIdentity.generate("tagledger test token signer")
        self._tmp = tempfile.TemporaryDirectory(prefix="tagledger-tokens-")
        self.cert_path = Path(self._tmp.name) / "token-signer.pem"
        self.cert_path.write_bytes(self.identity.cert_pem)
        self.requests: list[TokenRequest] = []
        self._lock = threading.Lock()
        self.reset()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def reset(self) -> None:
        """Restore the default behaviour and forget recorded requests."""
        self.users: dict[str, str] = dict(self._default_users)
        self.anonymous_actions: set[str] = {"pull"}
        self.user_actions: set[str] = set(ALL_ACTIONS)
        self.expires_in: int | None = 300  # None omits the field from the response
        self.token_field: str = "token"  # "token", "access_token" or "both"
        self.include_issued_at: bool = True
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> account
        with self._lock:
            self.requests.clear()

    # -- addresses -----------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    # -- assertions helpers ----------------------------------------------------------
    def count(self, *, scope: str | None = None, authenticated: bool | None = None) -> int:
        """Number of answered requests, optionally only those asking `scope`."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (scope is None or scope in r.scopes)
                and (authenticated is None or r.authenticated == authenticated)
            )

    # -- token minting -----------------------------------------------------------------
    def mint(
        self,
        access: list[dict[str, object]],
        *,
        account: str = "",
        lifetime: int = 300,
        issued_at: float | None = None,
        identity: SigningIdentity | None = None,
        audience: str | None = None,
        issuer: str | None = None,
    ) -> str:
        """Sign a registry JWT; tests pass a foreign `identity` or a past `issued_at` to forge."""
        now = int(time.time() if issued_at is None else issued_at)
        ident = identity or self.identity
        claims = {
            "iss": issuer or self.issuer,
            "sub": account,
            "aud": audience or self.service,  # distribution 2.8 wants a single string
            "exp": now + lifetime,
            "nbf": now - 5,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        return jwt.encode(claims, ident.key, algorithm="ES256", headers={"x5c": ident.x5c})

    def grant(self, scopes: list[str], account: str | None) -> list[dict[str, object]]:
        """Translate requested scopes into the `access` claim this account deserves."""
        allowed = self.user_actions if account else self.anonymous_actions
        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) < 3:
                continue
            # Names may contain ':' only in the port of a registry-prefixed name; keep them.
            typ, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
            granted = [a for a in actions if a in allowed]
            access.append({"type": typ, "name": name, "actions": granted})
        return access

    def _response_body(self, token: str, refresh_token: str | None) -> dict[str, object]:
        body: dict[str, object] = {}
        if self.token_field in ("token", "both"):
            body["token"] = token
        if self.token_field in ("access_token", "both"):
            body["access_token"] = token
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        if self.include_issued_at:
            body["issued_at"] = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
        if refresh_token:
            body["refresh_token"] = refresh_token
        return body

    def _record(self, req: TokenRequest) -> None:
        with self._lock:
            self.requests.append(req)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self._tmp.cleanup()

    def __enter__(self) -> TokenServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _make_handler(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep pytest output clean

        def _reply(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="tagledger-test-tokens"')
            self.end_headers()
            self.wfile.write(data)

        def _basic_account(self) -> tuple[str | None, bool]:
            """(account, ok): account None means anonymous; ok False means bad credentials."""
            header = self.headers.get("Authorization", "")
            if not header.lower().startswith("basic "):
                return None, True
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None, False
            expected = server.users.get(user)
            # As bytes: compare_digest refuses str with non-ASCII characters (a password 'pässwörd').
            if expected is None or not secrets.compare_digest(expected.encode(), password.encode()):
                return user, False
            return user, True

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/token":
                self._reply(404, {"error": "not found"})
                return
            query = parse_qs(url.query)
            scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
            account, ok = self._basic_account()
            if not ok:
                server._record(TokenRequest("GET", scopes, account, False, None, 401))
                self._reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad creds"}]})
                return
            token = server.mint(server.grant(scopes, account), account=account or "")
            refresh = None
            if account and query.get("offline_token") == ["true"]:
                refresh = secrets.token_urlsafe(24)
                server.refresh_tokens[refresh] = account
            server._record(TokenRequest("GET", scopes, account, account is not None, None, 200))
            self._reply(200, server._response_body(token, refresh))

        def do_POST(self) -> None:
            # OAuth2 flavour used by docker when it holds an identity (refresh) token.
            if urlsplit(self.path).path != "/token":
                self._reply(404, {"error": "not found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            grant_type = (form.get("grant_type") or [""])[0]
            scopes = [s for value in form.get("scope", []) for s in value.split(" ") if s]
            account: str | None = None
            refresh: str | None = None
            if grant_type == "password":
                user = (form.get("username") or [""])[0]
                password = (form.get("password") or [""])[0]
                if secrets.compare_digest(server.users.get(user, "\0").encode(), password.encode()):
                    account = user
                    if (form.get("access_type") or [""])[0] == "offline":
                        refresh = secrets.token_urlsafe(24)
                        server.refresh_tokens[refresh] = user
            elif grant_type == "refresh_token":
                account = server.refresh_tokens.get((form.get("refresh_token") or [""])[0])
            if account is None:
                server._record(TokenRequest("POST", scopes, None, False, grant_type, 401))
                self._reply(401, {"error": "invalid_grant"})
                return
            token = server.mint(server.grant(scopes, account), account=account)
            server._record(TokenRequest("POST", scopes, account, True, grant_type, 200))
            body = server._response_body(token, refresh)
            body.setdefault("access_token", token)  # OAuth2 responses always use access_token
            body["scope"] = " ".join(scopes)
            self._reply(200, body)

    return Handler
