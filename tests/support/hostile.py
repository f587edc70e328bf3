"""Hostile images for tests: any JSON in configs and manifests, pushed to the real registry where
distribution stores it, served through the fault proxy where distribution would refuse it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tests.support.faultproxy import Action, Context, FaultProxy, Reply
from tests.support.pusher import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    Blob,
    Pusher,
    make_config,
    make_layer,
    sha256_digest,
)

XSS = "<script>alert(1)</script>"


@dataclass(frozen=True)
class Raw:
    """JSON text written verbatim where this value stands: what json.dumps will not write
    (an array nested 200 000 deep, the number 1e400)."""

    text: str


def deep(levels: int) -> Raw:
    return Raw("[" * levels + "]" * levels)


def to_json(value: Any) -> bytes:
    """Compact JSON; `Raw` values verbatim. ensure_ascii (the default) writes NUL as \\u0000 and a
    lone surrogate as \\ud800, as a hostile pusher would: the bytes stay valid UTF-8."""
    raws: dict[str, str] = {}

    def placeholder(obj: object) -> str:
        if not isinstance(obj, Raw):
            raise TypeError(f"not JSON: {obj!r}")
        key = f"@@raw-{len(raws)}@@"
        raws[key] = obj.text
        return key

    text = json.dumps(value, separators=(",", ":"), default=placeholder)
    for key, raw in raws.items():
        text = text.replace(json.dumps(key), raw)
    return text.encode()


def wire(value: str) -> str:
    """A header value that goes out as `value`'s UTF-8 bytes: http.server writes headers as
    latin-1, while a hostile registry sends whatever bytes it likes."""
    return value.encode().decode("latin-1")


@dataclass
class ServeManifest(Action):
    """Answer HEAD and GET with this manifest, its Content-Type and a Docker-Content-Digest that
    matches the bytes: a registry that stores what distribution refuses."""

    body: bytes
    media_type: str

    def before(self, ctx: Context) -> Reply:
        headers = [
            ("Content-Type", self.media_type),
            ("Docker-Content-Digest", sha256_digest(self.body)),
            ("Content-Length", str(len(self.body))),
        ]
        return Reply(200, headers, self.body)


class HostileImages:
    """Builds one image per tag in one repository, each carrying what a test gives it.

    `serve=True` pushes a plain image under the tag (so the tag list names it) and has the proxy
    answer for the tag and the hostile digest with the hostile manifest instead.
    """

    def __init__(self, pusher: Pusher, proxy: FaultProxy, repository: str) -> None:
        self.pusher = pusher
        self.proxy = proxy
        self.repository = repository
        self.layer = make_layer(f"{repository}/hostile")
        pusher.push_blob(repository, self.layer)

    def image(
        self,
        tag: str,
        *,
        config: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        manifest: dict[str, Any] | None = None,
        layers: list[dict[str, Any]] | None = None,
        descriptor: dict[str, Any] | None = None,
        serve: bool = False,
    ) -> str:
        """An image manifest for `tag`; returns the digest its tag answers with.

        config: top-level fields of the image config to replace (created, history, rootfs, ...);
        settings: fields of its `config` object (Labels, Env, ExposedPorts, ...);
        manifest: top-level fields of the manifest (annotations, mediaType, unknown ones);
        layers: each merged over the real layer's descriptor (size, mediaType);
        descriptor: merged over the config's descriptor.
        """
        blob = self.config_blob(tag, config=config, settings=settings)
        body: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": blob.descriptor() | (descriptor or {}),
            "layers": [self.layer.descriptor() | extra for extra in layers or [{}]],
        }
        body |= manifest or {}
        media_type = body["mediaType"] if isinstance(body["mediaType"], str) else OCI_MANIFEST
        return self.put(tag, to_json(body), media_type, serve=serve)

    def index(
        self,
        tag: str,
        platforms: list[Any],
        *,
        manifest: dict[str, Any] | None = None,
        serve: bool = False,
    ) -> str:
        """An index of one real linux/amd64 image per entry, each entry's `platform` as given."""
        entries = []
        for number, platform in enumerate(platforms):
            child = self.pusher.push_image(self.repository, None, seed=f"{tag}/{number}")
            entries.append(
                {"mediaType": child.media_type, "digest": child.digest, "size": len(child.manifest)}
                | ({"platform": platform} if platform is not None else {})
            )
        body: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
        body |= manifest or {}
        return self.put(tag, to_json(body), OCI_INDEX, serve=serve)

    def config_blob(
        self, tag: str, *, config: dict[str, Any] | None = None, settings: dict[str, Any] | None = None
    ) -> Blob:
        # The tag in a label keeps every case's config (and so its digest) distinct.
        document = json.loads(make_config([self.layer], labels={"case": tag}).data)
        document["config"] |= settings or {}
        document |= config or {}
        blob = Blob(to_json(document), OCI_CONFIG)
        self.pusher.push_blob(self.repository, blob)
        return blob

    def put(self, tag: str, body: bytes, media_type: str, *, serve: bool) -> str:
        digest = sha256_digest(body)
        if not serve:
            self.pusher.put_manifest(self.repository, tag, body, media_type)
            return digest
        self.pusher.push_image(self.repository, tag, seed=f"placeholder/{tag}")
        self.proxy.add_rule(ServeManifest(body, media_type), path=self.manifest_path(tag, digest))
        return digest

    def faulty(self, tag: str, action: Action, *, method: str, on: str = "tag") -> str:
        """A plain image whose tag ("tag"), manifest by digest ("manifest") or config blob
        ("config") gets `action` for `method` requests; returns the manifest digest."""
        pushed = self.pusher.push_image(self.repository, tag, seed=f"faulty/{tag}")
        paths = {
            "tag": self.manifest_path(tag),
            "manifest": self.manifest_path(pushed.digest),
            "config": rf"^/v2/{re.escape(self.repository)}/blobs/{pushed.config_digest}$",
        }
        self.proxy.add_rule(action, method=method, path=paths[on])
        return pushed.digest

    def manifest_path(self, *references: str) -> str:
        alternatives = "|".join(re.escape(reference) for reference in references)
        return rf"^/v2/{re.escape(self.repository)}/manifests/({alternatives})$"
