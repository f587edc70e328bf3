"""What a build says about its own supply chain: BuildKit attestation manifests, recognised and named.

BuildKit (`docker buildx` defaults, every Docker Official Image) puts one extra manifest per
platform into the index, with platform `unknown/unknown` and two annotations on its descriptor:
`vnd.docker.reference.type: attestation-manifest` and `vnd.docker.reference.digest: <the
platform image it describes>`. Its layers are in-toto statements, each annotated with its
predicate type (`https://spdx.dev/Document`, `https://slsa.dev/provenance/v1`, ...).

Everything but the two readers at the end is pure: it reads parsed descriptors and stored values,
and is shared by the poll (what to store), the pages and the API (what to call it). The readers
link artifact tags (cosign's `sha256-<hex>.sig`, …) and the builds they describe, both ways.
"""

import re
from dataclasses import dataclass

from catalog.oci.manifest import Descriptor, is_digest
from catalog.tags import Kind, classify

REFERENCE_TYPE = "vnd.docker.reference.type"
REFERENCE_DIGEST = "vnd.docker.reference.digest"
ATTESTATION_MANIFEST = "attestation-manifest"
PREDICATE_TYPE = "in-toto.io/predicate-type"
IN_TOTO = "application/vnd.in-toto+json"

# A registry can send anything: bound what one attestation may store. BuildKit writes one
# statement per SBOM document and one provenance, so a handful of layers; a hundred is generous.
MAX_LAYERS = 100
MAX_PREDICATE_TYPES = 20
MAX_PREDICATE_TYPE_LENGTH = 256
MAX_MEDIA_TYPE_LENGTH = 255

_PREDICATE_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[\x21-\x7e]+")  # a URI: a scheme, printable ASCII
_SLSA = re.compile(r"https://slsa\.dev/provenance/(v[0-9][0-9.]*)")
_CYCLONEDX = re.compile(r"https://cyclonedx\.org/(?:bom|schema)(?:/v?[0-9.]+)?")
NAMES = {
    "https://spdx.dev/Document": "SBOM (SPDX)",
    "https://openvex.dev/ns": "VEX (OpenVEX)",
    "https://cosign.sigstore.dev/attestation/vuln/v1": "Vulnerability scan (cosign)",
}


def is_attestation(descriptor: Descriptor) -> bool:
    """Whether an index entry is an attestation manifest rather than a platform image.

    Only the annotation decides: `unknown/unknown` alone is no proof, and annotation values
    that are not strings never reach here as strings (catalog.oci.manifest drops them).
    """
    return descriptor.annotations.get(REFERENCE_TYPE) == ATTESTATION_MANIFEST


def subject_of(descriptor: Descriptor) -> str:
    """The digest of the platform image an attestation manifest describes, or "" if it names none."""
    subject = descriptor.annotations.get(REFERENCE_DIGEST, "")
    return subject if is_digest(subject) else ""


def predicate_type(layer: Descriptor) -> str:
    """A statement layer's predicate type, or "" when it has none that could be a URI."""
    value = layer.annotations.get(PREDICATE_TYPE, "")
    if len(value) > MAX_PREDICATE_TYPE_LENGTH or not _PREDICATE_TYPE.fullmatch(value):
        return ""  # cut short, a URI would name another predicate: keep none rather than a wrong one
    return value


def layer_rows(layers: tuple[Descriptor, ...]) -> list[dict]:
    """The statement layers as stored: enough for a later fetch of each statement, bounded."""
    return [
        {
            "digest": layer.digest,
            "size": layer.size,
            "media_type": layer.media_type[:MAX_MEDIA_TYPE_LENGTH],
            "predicate_type": predicate_type(layer),
        }
        for layer in layers[:MAX_LAYERS]
    ]


def predicate_types(layers: list[dict]) -> list[str]:
    """The distinct predicate types of stored layer rows, in layer order."""
    return list(dict.fromkeys(layer["predicate_type"] for layer in layers if layer["predicate_type"]))[
        :MAX_PREDICATE_TYPES
    ]


def predicate_name(value: str) -> str:
    """What a person calls a predicate type: `SBOM (SPDX)`, `Provenance (SLSA v1)`; else the type."""
    if name := NAMES.get(value):
        return name
    if slsa := _SLSA.fullmatch(value):
        return f"Provenance (SLSA {slsa[1]})"
    if _CYCLONEDX.fullmatch(value):
        return "SBOM (CycloneDX)"
    return value


# --- artifact tags: signatures, attestations and SBOMs pushed beside the build they describe -----
#
# cosign pushes a signature of the build `sha256:<hex>` as the tag `sha256-<hex>.sig` (`.att` for
# attestations, `.sbom` for SBOMs) in the same repository, and registries without the referrers
# API get the OCI referrers index as `sha256-<hex>`; catalog.tags reads the subject digest from the
# name. The poll records such a manifest as a build like any other (its config may even be an
# image config with no platform), so the build pages link the two ends here.

WHAT = {
    "signature": "cosign signature",
    "attestation": "cosign attestation",
    "sbom": "SBOM",
    "referrers": "referrers index",
}
# A build has a handful of these (one of each kind, re-pushed in place); more is a registry's noise.
MAX_ARTIFACT_LINKS = 50


@dataclass(frozen=True)
class ArtifactLink:
    """An artifact tag that pointed at an artifact build, and the build it describes."""

    tag: str
    what: str  # WHAT: "cosign signature", …
    digest: str  # of the build described
    build_id: int | None  # that build, if recorded in this repository


def what_artifact(tag: str) -> str:
    """What an artifact tag's name says it holds: `cosign signature` for `sha256-….sig`, …"""
    return WHAT.get(classify(tag).artifact, "artifact")


def subjects_of(build) -> list[ArtifactLink]:
    """What an artifact build describes: for each artifact tag that ever pointed at it, the build
    its name gives, in the same repository. Two queries; [] for a build no artifact tag named."""
    # models imports this module for the attestation names, so its models come in here.
    from catalog.models import Tag

    from .models import Build

    tags = list(
        Tag.objects.filter(repository=build.repository_id, kind=Kind.ARTIFACT, events__build=build)
        .values_list("name", "subject_digest")
        .distinct()
        .order_by("name")[:MAX_ARTIFACT_LINKS]
    )
    ids = dict(
        Build.objects.filter(repository=build.repository_id, digest__in={digest for _, digest in tags})
        .values_list("digest", "pk")
    )  # fmt: skip
    return [ArtifactLink(name, what_artifact(name), digest, ids.get(digest)) for name, digest in tags]


def artifact_tags(build):
    """The artifact tags naming `build` (its signatures, attestations, SBOMs), by name, each with
    where it points (`state.build`), at most MAX_ARTIFACT_LINKS. One query, a range of the
    `tag_repository_kind` index rather than a pass over every tag of the repository."""
    from catalog.models import Tag

    return (
        Tag.objects.filter(repository=build.repository_id, kind=Kind.ARTIFACT, subject_digest=build.digest)
        .select_related("state__build")
        .order_by("name")[:MAX_ARTIFACT_LINKS]
    )
