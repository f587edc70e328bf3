"""Typed, validated views of manifests and image configs: what the client hands to its callers."""

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from . import mediatypes
from .errors import BadResponse, DigestMismatch

_DIGEST = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
_ALGORITHMS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


def is_digest(value: object) -> bool:
    return isinstance(value, str) and bool(_DIGEST.match(value))


def digest_of(content: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{_ALGORITHMS[algorithm](content).hexdigest()}"


def verify(content: bytes, expected: str) -> str:
    """Hash the exact bytes with the expected digest's algorithm; raise if they differ."""
    if not is_digest(expected):
        raise BadResponse(f"not a sha256/sha512 digest: {_clip(expected)}")
    actual = digest_of(content, expected.split(":", 1)[0])
    if actual != expected:
        raise DigestMismatch(expected, actual)
    return actual


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    artifact_type: str = ""


@dataclass(frozen=True)
class ManifestHead:
    """What a HEAD (or the headers of a GET) says about a manifest."""

    digest: str
    media_type: str
    size: int | None
    legacy: bool = False


@dataclass(frozen=True)
class Manifest:
    """A manifest fetched with GET, its digest verified over the exact bytes."""

    digest: str
    media_type: str
    size: int
    body: bytes
    legacy: bool = False
    annotations: dict[str, str] = field(default_factory=dict)
    artifact_type: str = ""
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None

    @property
    def is_index(self) -> bool:
        return self.media_type in mediatypes.INDEXES


@dataclass(frozen=True)
class HistoryEntry:
    created: str = ""
    created_by: str = ""
    comment: str = ""
    empty_layer: bool = False


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an image config a person compares between builds."""

    digest: str
    created: str = ""
    os: str = ""
    architecture: str = ""
    variant: str = ""
    env: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    user: str = ""
    workdir: str = ""
    exposed_ports: tuple[str, ...] = ()
    diff_ids: tuple[str, ...] = ()
    history: tuple[HistoryEntry, ...] = ()


def parse_manifest(body: bytes, content_type: str, digest: str) -> Manifest:
    """Validate a manifest body whose digest was already verified; the registry is untrusted."""
    content_type = mediatypes.bare(content_type)
    if content_type in mediatypes.LEGACY:
        # schema1 bodies carry a signature that changes per request: never a stable thing to hash.
        return Manifest(digest, content_type, len(body), body, legacy=True)
    document = _json_object(body, "manifest")
    declared = document.get("mediaType")
    if declared is not None and declared != content_type:
        raise BadResponse(
            f"manifest mediaType {_clip(declared)} does not match Content-Type {_clip(content_type)}"
        )
    if document.get("schemaVersion") == 1:
        return Manifest(digest, content_type, len(body), body, legacy=True)
    if content_type not in mediatypes.MANIFESTS:
        raise BadResponse(f"unsupported manifest media type {_clip(content_type)}")
    if document.get("schemaVersion") != 2:
        raise BadResponse("manifest schemaVersion is not 2")
    common = {
        "annotations": _annotations(document.get("annotations")),
        "artifact_type": _text(document.get("artifactType")),
        "subject": _descriptor(document["subject"]) if document.get("subject") else None,
    }
    if content_type in mediatypes.INDEXES:
        children = _list(document.get("manifests"), "manifests")
        return Manifest(
            digest, content_type, len(body), body,
            manifests=tuple(_descriptor(child) for child in children), **common,
        )  # fmt: skip
    if "config" not in document:
        raise BadResponse("image manifest has no config")
    return Manifest(
        digest, content_type, len(body), body,
        config=_descriptor(document["config"]),
        layers=tuple(_descriptor(layer) for layer in _list(document.get("layers"), "layers")),
        **common,
    )  # fmt: skip


def parse_config(body: bytes, digest: str) -> ImageConfig:
    document = _json_object(body, "image config")
    config = document.get("config")
    config = {} if config is None else config
    if not isinstance(config, dict):
        raise BadResponse("image config 'config' is not an object")
    rootfs = document.get("rootfs") or {}
    return ImageConfig(
        digest=digest,
        created=_text(document.get("created")),
        os=_text(document.get("os")),
        architecture=_text(document.get("architecture")),
        variant=_text(document.get("variant")),
        env=_strings(config.get("Env")),
        labels=_annotations(config.get("Labels")),
        entrypoint=_strings(config.get("Entrypoint")),
        cmd=_strings(config.get("Cmd")),
        user=_text(config.get("User")),
        workdir=_text(config.get("WorkingDir")),
        exposed_ports=tuple(sorted(str(port) for port in (config.get("ExposedPorts") or {}))),
        diff_ids=_strings(rootfs.get("diff_ids") if isinstance(rootfs, dict) else None),
        history=tuple(
            HistoryEntry(
                created=_text(entry.get("created")),
                created_by=_text(entry.get("created_by")),
                comment=_text(entry.get("comment")),
                empty_layer=entry.get("empty_layer") is True,
            )
            for entry in _list(document.get("history"), "history")
            if isinstance(entry, dict)
        ),
    )


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise BadResponse(f"{what} is not valid JSON") from None
    except RecursionError:  # `[[[[…` a hundred thousand deep fits in a manifest's 8 MiB
        raise BadResponse(f"{what} nests deeper than Python's JSON parser goes") from None
    if not isinstance(document, dict):
        raise BadResponse(f"{what} is not a JSON object")
    return document


def _descriptor(value: Any) -> Descriptor:
    if not isinstance(value, dict):
        raise BadResponse("descriptor is not an object")
    digest, size = value.get("digest"), value.get("size")
    if not is_digest(digest):
        raise BadResponse(f"descriptor digest is invalid: {_clip(digest)}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadResponse(f"descriptor size is invalid: {_clip(size)}")
    platform = value.get("platform")
    return Descriptor(
        media_type=_text(value.get("mediaType")),
        digest=digest,
        size=size,
        platform=(
            Platform(
                os=_text(platform.get("os")),
                architecture=_text(platform.get("architecture")),
                variant=_text(platform.get("variant")),
                os_version=_text(platform.get("os.version")),
            )
            if isinstance(platform, dict)
            else None
        ),
        annotations=_annotations(value.get("annotations")),
        artifact_type=_text(value.get("artifactType")),
    )


def _list(value: Any, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadResponse(f"'{what}' is not a list")
    return value


def _annotations(value: Any) -> dict[str, str]:
    """Annotations and labels as str→str; other shapes are dropped rather than trusted."""
    if not isinstance(value, dict):
        return {}
    return {str(key): str(item) for key, item in value.items() if isinstance(item, str | int | float)}


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        return ()
    return tuple(str(item) for item in value if isinstance(item, str | int | float))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _clip(value: Any, limit: int = 80) -> str:
    """Registry-supplied text in error messages, shortened so a hostile value cannot flood logs."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
