"""Ground truth from skopeo: the digest of the exact manifest bytes a registry serves."""

from __future__ import annotations

import hashlib
import json
import subprocess
from typing import Any

from tests.support.registry import require_binary

Creds = tuple[str, str] | str | None


def _reference(host: str, repository: str, tag_or_digest: str) -> str:
    sep = "@" if tag_or_digest.startswith("sha256:") else ":"
    return f"docker://{host}/{repository}{sep}{tag_or_digest}"


def skopeo_inspect(
    host: str,
    repository: str,
    tag_or_digest: str,
    *extra: str,
    creds: Creds = None,
    global_args: tuple[str, ...] = (),
) -> bytes:
    """Run `skopeo [global_args] inspect --raw [extra] REF` and return stdout untouched."""
    skopeo = require_binary("skopeo")
    if isinstance(creds, tuple):
        creds = ":".join(creds)
    # --no-creds keeps skopeo from picking up any auth file lying around on the machine.
    auth = ["--creds", creds] if creds else ["--no-creds"]
    argv = [skopeo, *global_args, "inspect", "--tls-verify=false", "--raw", *auth, *extra]
    proc = subprocess.run(
        [*argv, _reference(host, repository, tag_or_digest)], capture_output=True, timeout=60
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"skopeo inspect {host}/{repository} {tag_or_digest} failed: {proc.stderr.decode()}"
        )
    return proc.stdout


def skopeo_digest(host: str, repository: str, tag_or_digest: str, creds: Creds = None) -> str:
    """sha256 of the raw manifest bytes: the project's definition of 'the right digest'."""
    raw = skopeo_inspect(host, repository, tag_or_digest, creds=creds)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def skopeo_config(
    host: str,
    repository: str,
    tag_or_digest: str,
    creds: Creds = None,
    *,
    arch: str | None = None,
) -> dict[str, Any]:
    """The image config JSON; for an index skopeo picks `arch` (default: this machine's)."""
    # --override-arch is a global skopeo option, so it goes before `inspect`.
    global_args = ("--override-arch", arch) if arch else ()
    raw = skopeo_inspect(host, repository, tag_or_digest, "--config", creds=creds, global_args=global_args)
    return json.loads(raw)
