"""Manifest media types and the Accept header that makes registries return the real top-level digest."""

import re

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

INDEXES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
IMAGES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
LEGACY = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})
MANIFESTS = INDEXES | IMAGES

# Without the list types a registry answers with one platform's manifest (or a schema1
# conversion re-signed on every request), so every manifest request sends all four.
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST])


def bare(content_type: str | None) -> str:
    """The media type without parameters (`; charset=utf-8`), lower-cased."""
    return (content_type or "").split(";", 1)[0].strip().lower()


# RFC 6838 §4.2: a type and a subtype name each start with a letter or digit and are at most 127
# characters from a small set. Nothing a registry may send outside that shape is a media type.
_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MEDIA_TYPE = re.compile(rf"{_NAME}/{_NAME}")


def parse(value: object) -> str:
    """The value if it is an RFC 6838 media type (no parameters), else ""."""
    return value if isinstance(value, str) and _MEDIA_TYPE.fullmatch(value) else ""
