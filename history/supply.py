"""What a build says about its own supply chain: BuildKit attestation manifests, recognised and named.

BuildKit (`docker buildx` defaults, every Docker Official Image) puts one extra manifest per
platform into the index, with platform `unknown/unknown` and two annotations on its descriptor:
`vnd.docker.reference.type: attestation-manifest` and `vnd.docker.reference.digest: <the
platform image it describes>`. Its layers are in-toto statements, each annotated with its
predicate type (`https://spdx.dev/Document`, `https://slsa.dev/provenance/v1`, ...).

Everything here is pure: it reads parsed descriptors and stored values, and is shared by the
poll (what to store), the pages and the API (what to call it).
"""

import re

from catalog.oci.manifest import Descriptor, is_digest

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
