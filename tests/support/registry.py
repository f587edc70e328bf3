"""Start and stop a real Debian `docker-registry` (distribution 2.8) on a loopback port."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import bcrypt
import requests

from tests.support.tokenserver import TokenServer

AuthMode = Literal["none", "basic", "token"]
INSTALL_HINT = "`make test` installs it (apt-get install docker-registry skopeo)"
DEFAULT_USER = "tester"
DEFAULT_PASSWORD = "s3cret-pass"


def require_binary(name: str) -> str:
    """Return the path of `name` or fail loudly: these tests must never be silently skipped."""
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"`{name}` is not on PATH; {INSTALL_HINT}")
    return path


def free_port() -> int:
    """A loopback port that was free a moment ago (the registry cannot be handed a socket)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningRegistry:
    """A live registry process plus everything a test needs to talk to it."""

    host: str
    url: str
    root: Path
    auth: AuthMode
    username: str | None
    password: str | None
    token_server: TokenServer | None
    process: subprocess.Popen[bytes] = field(repr=False)
    workdir: Path = field(repr=False)
    owns_token_server: bool = field(default=False, repr=False)

    @property
    def port(self) -> int:
        return int(self.host.rsplit(":", 1)[1])

    @property
    def stderr(self) -> str:
        return _tail(self.workdir / "stderr.log")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.owns_token_server and self.token_server is not None:
            self.token_server.close()
        # A full test run leaves the session registry tens of thousands of small files: removing
        # them took 11 s (41 s on a loaded machine) at the end of every run, so a detached `rm`
        # does it while pytest exits.
        subprocess.Popen(
            ["rm", "-rf", "--", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip

    def __enter__(self) -> RunningRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def registry_config(
    root: Path,
    port: int,
    auth: AuthMode,
    *,
    htpasswd: Path | None = None,
    token_server: TokenServer | None = None,
    notifications: list[dict[str, object]] | None = None,
) -> dict[str, object]:
    """The registry's config.yml contents (JSON is valid YAML, so no YAML library is needed).

    `notifications`: endpoints the registry POSTs its events to (see `notification_endpoint`)."""
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        # No cache: a blob-descriptor cache could mask deletes between tests.
        "storage": {
            "filesystem": {"rootdirectory": str(root)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        # A fixed secret silences the "no secret configured" warning on every start.
        "http": {"addr": f"127.0.0.1:{port}", "secret": "tagledger-test-secret"},
    }
    if auth == "basic":
        assert htpasswd is not None
        config["auth"] = {"htpasswd": {"realm": "tagledger-test", "path": str(htpasswd)}}
    elif auth == "token":
        assert token_server is not None
        config["auth"] = {
            "token": {
                "realm": token_server.realm,
                "service": token_server.service,
                "issuer": token_server.issuer,
                "rootcertbundle": str(token_server.cert_path),
            }
        }
    if notifications:
        config["notifications"] = {"events": {"includereferences": True}, "endpoints": notifications}
    return config


def notification_endpoint(url: str, name: str = "tagledger") -> dict[str, object]:
    """A `notifications.endpoints` entry of distribution 2.8: every manifest event POSTed to `url`
    as soon as it happens (a 1 s timeout and back-off: a test waits on it). Blob events
    (application/octet-stream) are left out: they name no tag."""
    return {
        "name": name,
        "url": url,
        "timeout": "1s",
        "threshold": 3,
        "backoff": "1s",
        "ignoredmediatypes": ["application/octet-stream"],
    }


def start_registry(
    auth: AuthMode = "none",
    *,
    username: str = DEFAULT_USER,
    password: str = DEFAULT_PASSWORD,
    token_server: TokenServer | None = None,
    startup_timeout: float = 15.0,
    notifications: list[dict[str, object]] | None = None,
) -> RunningRegistry:
    """Start a registry; in token mode a token server is created (and owned) unless given."""
    binary = require_binary("docker-registry")
    owns_token_server = auth == "token" and token_server is None
    if owns_token_server:
        token_server = TokenServer(users={username: password})
    workdir = Path(tempfile.mkdtemp(prefix=f"tagledger-registry-{auth}-"))
    root = workdir / "storage"
    root.mkdir()
    htpasswd = None
    if auth == "basic":
        # distribution only accepts bcrypt entries in htpasswd files.
        htpasswd = workdir / "htpasswd"
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
        htpasswd.write_text(f"{username}:{hashed}\n")
    try:
        # free_port() can race with another process; a bind failure just means retry.
        for attempt in itertools.count(1):
            port = free_port()
            config = registry_config(
                root, port, auth, htpasswd=htpasswd, token_server=token_server, notifications=notifications
            )
            config_path = workdir / "config.yml"
            config_path.write_text(json.dumps(config, indent=2))
            with (
                open(workdir / "stdout.log", "wb") as out,
                open(workdir / "stderr.log", "wb") as err,
            ):
                proc = subprocess.Popen([binary, "serve", str(config_path)], stdout=out, stderr=err)
            reg = RunningRegistry(
                host=f"127.0.0.1:{port}",
                url=f"http://127.0.0.1:{port}",
                root=root,
                auth=auth,
                username=None if auth == "none" else username,
                password=None if auth == "none" else password,
                token_server=token_server,
                process=proc,
                workdir=workdir,
                owns_token_server=owns_token_server,
            )
            try:
                _wait_ready(reg, startup_timeout)
                return reg
            except RuntimeError:
                proc.kill()
                proc.wait(timeout=5)
                if "address already in use" not in reg.stderr or attempt >= 3:
                    raise
        raise AssertionError("unreachable")
    except BaseException:
        if owns_token_server and token_server is not None:
            token_server.close()
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _wait_ready(reg: RunningRegistry, timeout: float) -> None:
    """Poll /v2/ until it answers 200 (open) or 401 (auth configured)."""
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if reg.process.poll() is not None:
            raise RuntimeError(
                f"docker-registry exited with {reg.process.returncode} during startup; stderr:\n{reg.stderr}"
            )
        try:
            resp = requests.get(f"{reg.url}/v2/", timeout=1)
            if resp.status_code in (200, 401):
                return
            last_error = f"HTTP {resp.status_code}"
        except requests.ConnectionError as exc:
            last_error = str(exc)
        time.sleep(0.05)
    raise RuntimeError(
        f"docker-registry on {reg.host} not ready after {timeout}s ({last_error}); stderr:\n{reg.stderr}"
    )


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except FileNotFoundError:
        return ""


_counter = itertools.count(1)


def unique_repository(test_name: str, prefix: str = "t") -> str:
    """A valid, lowercase repository path unique within this process, e.g. `t/test-foo-3`."""
    # Reference grammar: components are [a-z0-9] runs joined by single separators.
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:48].strip("-")
    return f"{prefix}/{slug or 'repo'}-{next(_counter)}"
