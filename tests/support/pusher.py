"""Build small real images and push them over the registry HTTP API with plain `requests`."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import re
import tarfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

if TYPE_CHECKING:
    from tests.support.registry import RunningRegistry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
IN_TOTO = "application/vnd.in-toto+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"  # an OCI 1.1 artifact's config: `{}`
SPDX = "https://spdx.dev/Document"
SLSA_V02 = "https://slsa.dev/provenance/v0.2"
SLSA_V1 = "https://slsa.dev/provenance/v1"
# Every manifest type a modern client should accept, so the registry never down-converts.
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])

Shape = Literal["oci", "oci-index", "docker", "docker-list"]
SHAPES: tuple[Shape, ...] = ("oci", "oci-index", "docker", "docker-list")
DEFAULT_PLATFORMS: tuple[dict[str, str], ...] = (
    {"architecture": "amd64", "os": "linux"},
    {"architecture": "arm64", "os": "linux", "variant": "v8"},
)
TIMEOUT = 30


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json_bytes(obj: object) -> bytes:
    # Compact and key-stable: the digest is of these exact bytes, so they must be reproducible.
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Blob:
    """Bytes destined for the registry, with the descriptor fields that reference them."""

    data: bytes
    media_type: str
    diff_id: str | None = None  # sha256 of the uncompressed tar, for layers

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    def descriptor(self, **extra: object) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)} | extra


@dataclass
class PushResult:
    """What was pushed: digest is sha256 of the exact manifest bytes sent."""

    repository: str
    reference: str
    digest: str
    manifest: bytes
    media_type: str
    child_digests: list[str] = field(default_factory=list)  # indexes only, in platform order
    config_digests: list[str] = field(default_factory=list)  # one per image (child)
    platforms: list[dict[str, str]] = field(default_factory=list)
    # BuildKit attestation manifests in the index, one per child above and in the same order.
    attestation_digests: list[str] = field(default_factory=list)
    artifact_type: str = ""  # an artifact's (push_artifact): what a referrers index lists it as
    layer_digests: list[str] = field(default_factory=list)  # an artifact's layers, in order

    def referrer(self, **annotations: str) -> dict[str, object]:
        """This artifact as a referrers index (the API's answer or a tag-schema index) lists it."""
        entry: dict[str, object] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.manifest),
        }
        if self.artifact_type:
            entry["artifactType"] = self.artifact_type
        return entry | ({"annotations": annotations} if annotations else {})

    @property
    def config_digest(self) -> str:
        return self.config_digests[0]

    @property
    def is_index(self) -> bool:
        return bool(self.child_digests)


def make_layer(seed: int | str, *, files: int = 2, size: int = 256, media_type: str = OCI_LAYER) -> Blob:
    """A gzip tar layer whose bytes depend only on `seed` (new seed = new digest)."""
    rng = random.Random(str(seed))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(files):
            content = rng.randbytes(size)
            info = tarfile.TarInfo(f"data/file-{i}.bin")
            info.size, info.mtime, info.mode = len(content), 0, 0o644
            tar.addfile(info, io.BytesIO(content))
    uncompressed = raw.getvalue()
    # mtime=0 keeps the gzip header free of timestamps, so the digest is reproducible.
    return Blob(gzip.compress(uncompressed, mtime=0), media_type, sha256_digest(uncompressed))


def make_config(
    layers: list[Blob],
    *,
    architecture: str = "amd64",
    os: str = "linux",
    variant: str | None = None,
    env: list[str] | None = None,
    labels: dict[str, str] | None = None,
    entrypoint: list[str] | None = None,
    cmd: list[str] | None = None,
    user: str = "",
    working_dir: str = "",
    exposed_ports: list[str] | None = None,
    created: str = "2024-01-01T00:00:00Z",
    media_type: str = OCI_CONFIG,
) -> Blob:
    """An image config JSON blob whose rootfs.diff_ids match `layers`."""
    config: dict[str, object] = {
        "Env": env if env is not None else ["PATH=/usr/local/bin:/usr/bin:/bin"],
        "Labels": labels or {},
        "Entrypoint": entrypoint,
        "Cmd": cmd if cmd is not None else ["/bin/sh"],
        "User": user,
        "WorkingDir": working_dir,
        "ExposedPorts": {port: {} for port in exposed_ports or []},
    }
    doc: dict[str, object] = {
        "architecture": architecture,
        "os": os,
        "created": created,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": created, "created_by": "tagledger-test-pusher"} for _ in layers],
    }
    if variant:
        doc["variant"] = variant
    return Blob(_json_bytes(doc), media_type)


def image_manifest(
    config: Blob,
    layers: list[Blob],
    *,
    media_type: str = OCI_MANIFEST,
    annotations: dict[str, str] | None = None,
) -> bytes:
    body: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    if annotations:
        body["annotations"] = annotations
    return _json_bytes(body)


def index_manifest(
    children: list[tuple[str, bytes, dict[str, str]]] | list[tuple[str, bytes, dict[str, str], dict]],
    *,
    media_type: str = OCI_INDEX,
    annotations: dict[str, str] | None = None,
) -> bytes:
    """An index/list of (child media type, child manifest bytes, platform[, the entry's annotations])."""
    body: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [
            {"mediaType": mt, "digest": sha256_digest(data), "size": len(data), "platform": platform}
            | ({"annotations": rest[0]} if rest and rest[0] else {})
            for mt, data, platform, *rest in children
        ],
    }
    if annotations:
        body["annotations"] = annotations
    return _json_bytes(body)


def make_statement(
    subject: PushResult, predicate_type: str, seed: int | str = 0, predicate: Any = None
) -> Blob:
    """An in-toto statement about one platform image, as BuildKit writes one per SBOM or provenance
    (its predicate says nothing but the seed unless given)."""
    statement = {
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": predicate_type,
        "subject": [{"name": subject.reference, "digest": {"sha256": subject.digest.split(":", 1)[1]}}],
        "predicate": {"seed": str(seed)} if predicate is None else predicate,
    }
    return Blob(_json_bytes(statement), IN_TOTO)


def attestation_manifest(config: Blob, statements: list[tuple[Blob, dict[str, Any]]]) -> bytes:
    """BuildKit's attestation manifest: an OCI image manifest whose layers are in-toto statements,
    each annotated with its predicate type (`statements`: (statement, layer annotations))."""
    body = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [blob.descriptor(annotations=annotations) for blob, annotations in statements],
    }
    return _json_bytes(body)


def attestation_annotations(subject_digest: str) -> dict[str, str]:
    """The index entry annotations that make a manifest BuildKit's attestation of `subject_digest`."""
    return {
        "vnd.docker.reference.digest": subject_digest,
        "vnd.docker.reference.type": "attestation-manifest",
    }


class Pusher:
    """Pushes blobs and manifests to one registry; handles none, Basic and token auth."""

    def __init__(self, base_url: str, *, username: str | None = None, password: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.session = requests.Session()
        self._auth: dict[str, str] = {}  # repository -> Authorization header value

    @classmethod
    def for_registry(cls, registry: RunningRegistry, *, base_url: str | None = None) -> Pusher:
        return cls(base_url or registry.url, username=registry.username, password=registry.password)

    def close(self) -> None:
        self.session.close()

    # -- transport -------------------------------------------------------------------
    def request(
        self,
        method: str,
        repository: str,
        url: str,
        *,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """Send once; on a 401 answer the challenge (Basic or Bearer) and retry once."""
        if url.startswith("/"):
            url = self.base_url + url
        headers = dict(headers or {})
        if repository in self._auth:
            headers["Authorization"] = self._auth[repository]
        resp = self.session.request(method, url, data=data, headers=headers, timeout=TIMEOUT)
        if resp.status_code != 401:
            return resp
        challenge = resp.headers.get("WWW-Authenticate", "")
        self._auth[repository] = headers["Authorization"] = self._answer_challenge(challenge, repository)
        return self.session.request(method, url, data=data, headers=headers, timeout=TIMEOUT)

    def _answer_challenge(self, challenge: str, repository: str) -> str:
        scheme, _, params_text = challenge.partition(" ")
        creds = (self.username, self.password or "") if self.username else None
        if scheme.lower() == "basic":
            if creds is None:
                raise PermissionError("registry wants Basic auth but the pusher has no credentials")
            return requests.auth._basic_auth_str(*creds)
        if scheme.lower() != "bearer":
            raise PermissionError(f"unsupported challenge: {challenge!r}")
        params = dict(re.findall(r'(\w+)="([^"]*)"', params_text))
        # Ask for push regardless of the challenged scope so one token serves the whole push.
        query = {"service": params.get("service", ""), "scope": f"repository:{repository}:pull,push,delete"}
        resp = requests.get(params["realm"], params=query, auth=creds, timeout=TIMEOUT)
        resp.raise_for_status()
        body = resp.json()
        return "Bearer " + (body.get("token") or body["access_token"])

    @staticmethod
    def _check(resp: requests.Response, what: str) -> requests.Response:
        if resp.status_code >= 300:
            raise RuntimeError(f"{what}: HTTP {resp.status_code} {resp.text[:500]}")
        return resp

    # -- blobs and manifests ---------------------------------------------------------------
    def push_blob(self, repository: str, blob: Blob | bytes) -> str:
        """Monolithic upload: POST to open a session, PUT the bytes with ?digest=."""
        data = blob.data if isinstance(blob, Blob) else blob
        digest = sha256_digest(data)
        head = self.request("HEAD", repository, f"/v2/{repository}/blobs/{digest}")
        if head.status_code == 200:
            return digest
        start = self._check(
            self.request("POST", repository, f"/v2/{repository}/blobs/uploads/"), "start upload"
        )
        location = urljoin(self.base_url + "/", start.headers["Location"])
        parts = urlsplit(location)
        query = urlencode([*parse_qsl(parts.query), ("digest", digest)])
        self._check(
            self.request(
                "PUT",
                repository,
                urlunsplit(parts._replace(query=query)),
                data=data,
                headers={"Content-Type": "application/octet-stream"},
            ),
            f"upload {digest}",
        )
        return digest

    def put_manifest(
        self, repository: str, reference: str, body: bytes, content_type: str, *, check: bool = True
    ) -> requests.Response:
        """PUT any manifest body with any Content-Type (check=False to inspect rejections)."""
        resp = self.request(
            "PUT",
            repository,
            f"/v2/{repository}/manifests/{reference}",
            data=body,
            headers={"Content-Type": content_type},
        )
        return self._check(resp, f"put manifest {repository}:{reference}") if check else resp

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str]:
        resp = self.request(
            "GET", repository, f"/v2/{repository}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT}
        )
        self._check(resp, f"get manifest {repository}:{reference}")
        return resp.content, resp.headers["Content-Type"]

    def tag(self, repository: str, source: str, new_tag: str) -> str:
        """Point `new_tag` at the manifest `source` (tag or digest) by re-PUTting its bytes."""
        body, content_type = self.get_manifest(repository, source)
        self.put_manifest(repository, new_tag, body, content_type)
        return sha256_digest(body)

    def delete(self, repository: str, reference: str) -> str:
        """Delete the manifest a tag (or digest) points to; this also drops every tag on it."""
        digest = reference
        if not reference.startswith("sha256:"):
            digest = sha256_digest(self.get_manifest(repository, reference)[0])
        self._check(
            self.request("DELETE", repository, f"/v2/{repository}/manifests/{digest}"), f"delete {digest}"
        )
        return digest

    # -- whole images -----------------------------------------------------------------------
    def push_image(
        self,
        repository: str,
        tag: str | None,
        *,
        docker: bool = False,
        seed: int | str = 0,
        layers: int = 1,
        annotations: dict[str, str] | None = None,
        platform: dict[str, str] | None = None,
        config_media_type: str | None = None,
        layer_media_type: str | None = None,
        **config_kwargs: Any,
    ) -> PushResult:
        """Push one single-platform image (OCI by default, Docker schema2 with docker=True).

        `config_kwargs` go to `make_config` (env, labels, entrypoint, cmd, user, ...);
        change `seed` to simulate a rebuild that yields new layer and manifest digests.
        tag=None pushes by digest, leaving the manifest untagged (as index children are).
        """
        platform = platform or dict(DEFAULT_PLATFORMS[0])
        media_type, cfg_type, lay_type = (
            (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER)
            if docker
            else (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER)
        )
        platform_key = "/".join(platform.get(k, "") for k in ("os", "architecture", "variant"))
        blobs = [
            make_layer(f"{seed}/{platform_key}/{i}", media_type=layer_media_type or lay_type)
            for i in range(layers)
        ]
        config = make_config(
            blobs,
            architecture=platform["architecture"],
            os=platform["os"],
            variant=platform.get("variant"),
            media_type=config_media_type or cfg_type,
            **config_kwargs,
        )
        for blob in [*blobs, config]:
            self.push_blob(repository, blob)
        body = image_manifest(config, blobs, media_type=media_type, annotations=annotations)
        digest = sha256_digest(body)
        self.put_manifest(repository, tag or digest, body, media_type)
        return PushResult(
            repository, tag or digest, digest, body, media_type, [], [config.digest], [platform]
        )

    def push_index(
        self,
        repository: str,
        tag: str,
        *,
        docker: bool = False,
        seed: int | str = 0,
        platforms: tuple[dict[str, str], ...] = DEFAULT_PLATFORMS,
        annotations: dict[str, str] | None = None,
        **image_kwargs: Any,
    ) -> PushResult:
        """Push one image per platform (untagged, by digest), then the index/list as `tag`."""
        children = [
            self.push_image(
                repository,
                None,
                docker=docker,
                seed=seed,
                platform=dict(platform),
                **image_kwargs,
            )
            for platform in platforms
        ]
        media_type = DOCKER_LIST if docker else OCI_INDEX
        body = index_manifest(
            [(c.media_type, c.manifest, c.platforms[0]) for c in children],
            media_type=media_type,
            annotations=annotations,
        )
        self.put_manifest(repository, tag, body, media_type)
        return PushResult(
            repository,
            tag,
            sha256_digest(body),
            body,
            media_type,
            [c.digest for c in children],
            [c.config_digest for c in children],
            [c.platforms[0] for c in children],
        )

    def push_buildx_index(
        self,
        repository: str,
        tag: str,
        *,
        seed: int | str = 0,
        platforms: tuple[dict[str, str], ...] = DEFAULT_PLATFORMS,
        predicate_types: tuple[Any, ...] = (SPDX, SLSA_V1),
        entry_annotations: list[dict[str, Any]] | None = None,
        annotations: dict[str, str] | None = None,
        predicates: dict[str, Any] | None = None,
        **image_kwargs: Any,
    ) -> PushResult:
        """What `docker buildx build --platform ... --push` makes by default: an OCI index with one
        image per platform, then one attestation manifest per platform (`unknown/unknown`,
        annotated with the image it describes), its layers one in-toto statement per predicate type.

        `predicate_types` become the layers' `in-toto.io/predicate-type` annotations as given (any
        JSON value, to play a hostile registry); `entry_annotations`, one per platform, replace the
        attestation entries' annotations in the index; `predicates` gives the statements of a
        predicate type their predicate (an SPDX document, a provenance), the same on every platform.
        """
        images = [
            self.push_image(repository, None, seed=seed, platform=dict(platform), **image_kwargs)
            for platform in platforms
        ]
        # BuildKit's attestation config is an image config saying nothing but "unknown/unknown".
        config = Blob(
            _json_bytes(
                {"architecture": "unknown", "os": "unknown", "config": {}, "rootfs": {"type": "layers"}}
            ),
            OCI_CONFIG,
        )
        self.push_blob(repository, config)
        attestations = []
        for number, image in enumerate(images):
            statements = [
                (
                    make_statement(
                        image, str(kind), f"{seed}/{number}/{position}", (predicates or {}).get(str(kind))
                    ),
                    {"in-toto.io/predicate-type": kind},
                )
                for position, kind in enumerate(predicate_types)
            ]
            for blob, _ in statements:
                self.push_blob(repository, blob)
            body = attestation_manifest(config, statements)
            self.put_manifest(repository, sha256_digest(body), body, OCI_MANIFEST)
            entry = entry_annotations[number] if entry_annotations else attestation_annotations(image.digest)
            attestations.append((OCI_MANIFEST, body, {"architecture": "unknown", "os": "unknown"}, entry))
        body = index_manifest(
            [(image.media_type, image.manifest, image.platforms[0]) for image in images] + attestations,
            annotations=annotations,
        )
        self.put_manifest(repository, tag, body, OCI_INDEX)
        return PushResult(
            repository,
            tag,
            sha256_digest(body),
            body,
            OCI_INDEX,
            [image.digest for image in images],
            [image.config_digest for image in images],
            [image.platforms[0] for image in images],
            [sha256_digest(manifest) for _, manifest, _, _ in attestations],
        )

    # -- supply-chain artifacts: what cosign and oras push beside an image -----------------------
    def push_artifact(
        self,
        repository: str,
        reference: str | None,
        layers: list[tuple[Blob, dict[str, str]]],
        *,
        artifact_type: str = "",
        subject: PushResult | None = None,
        config: Blob | None = None,
        annotations: dict[str, str] | None = None,
    ) -> PushResult:
        """An OCI image manifest holding documents (`layers`: (blob, layer annotations)), as
        `reference` (a tag; None: by digest only). Its config is the OCI 1.1 empty one unless
        given; with `subject`, the manifest names the image it is about, as a referrer does
        (distribution 2.8 stores such a manifest, though it has no referrers API to list it)."""
        config = config or Blob(b"{}", OCI_EMPTY)
        for blob in [config, *(blob for blob, _ in layers)]:
            self.push_blob(repository, blob)
        body: dict[str, object] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
        if artifact_type:
            body["artifactType"] = artifact_type
        body["config"] = config.descriptor()
        body["layers"] = [
            blob.descriptor(**({"annotations": notes} if notes else {})) for blob, notes in layers
        ]
        if subject is not None:
            body["subject"] = {
                "mediaType": subject.media_type,
                "digest": subject.digest,
                "size": len(subject.manifest),
            }
        if annotations:
            body["annotations"] = annotations
        data = _json_bytes(body)
        digest = sha256_digest(data)
        self.put_manifest(repository, reference or digest, data, OCI_MANIFEST)
        return PushResult(
            repository, reference or digest, digest, data, OCI_MANIFEST,
            artifact_type=artifact_type, layer_digests=[blob.digest for blob, _ in layers],
        )  # fmt: skip

    def push_cosign(
        self,
        repository: str,
        subject: str,
        suffix: Literal["sig", "att", "sbom"],
        layers: list[tuple[Blob, dict]],
    ) -> PushResult:
        """What cosign (before v3) pushes for the image `subject` (a digest): the tag
        `sha256-<hex>.sig` (`.att`, `.sbom`) on a manifest whose config is an image config naming
        no platform, as cosign writes it, and whose layers are the signatures (attestations, SBOM)."""
        config = Blob(
            _json_bytes({
                "architecture": "", "config": {}, "created": "0001-01-01T00:00:00Z",
                "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
                "rootfs": {"type": "layers", "diff_ids": [blob.digest for blob, _ in layers]},
            }),
            OCI_CONFIG,
        )  # fmt: skip
        tag = f"{subject.replace(':', '-')}.{suffix}"
        return self.push_artifact(repository, tag, layers, config=config)

    def push_referrers_tag(
        self, repository: str, subject: str, referrers: list[dict[str, object]]
    ) -> PushResult:
        """The referrers tag schema: what oras and cosign push to a registry without the referrers
        API, an OCI index of the referrers of `subject` (a digest) tagged `sha256-<hex>`
        (`referrers`: the entries, e.g. PushResult.referrer())."""
        body = _json_bytes({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": referrers})
        tag = subject.replace(":", "-")
        self.put_manifest(repository, tag, body, OCI_INDEX)
        return PushResult(repository, tag, sha256_digest(body), body, OCI_INDEX)

    def push(self, repository: str, tag: str, shape: Shape = "oci", **kwargs: Any) -> PushResult:
        """Push any of the four SHAPES."""
        docker = shape.startswith("docker")
        if shape in ("oci-index", "docker-list"):
            return self.push_index(repository, tag, docker=docker, **kwargs)
        return self.push_image(repository, tag, docker=docker, **kwargs)
