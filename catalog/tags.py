"""What a tag name says about itself: its kind, version, variant, build time or subject digest."""

# Decisions (each pinned by a row in tests/catalog/test_tags.py):
#
# - Classification is syntactic and per tag. `3.14` is MINOR even for an image whose releases
#   have two parts (ubuntu `24.04`); `default_line_depth` looks at all versions for that.
# - Matching is case-sensitive: `Latest`, `V1.2.3` and `1.2.3-RC1` label nothing that tools or
#   vendors treat specially, so they are OTHER or an ordinary variant.
# - A tag is `[prefix-]VERSION[-prerelease][-revision][-timestamp][-variant...]`, split on "-".
#   A word before the version (`openjdk-17-202412120223`) is only accepted when a timestamp
#   follows, which shows the tag is a vendor's build tag; it becomes the front of the variant
#   (variant `openjdk`). Without a timestamp such tags are OTHER: `pr-42`, `k8s-1.31`.
# - A version has one to four numeric parts (`3`, `3.14`, `3.14.4`, `131.0.6778.85`); five or
#   more is OTHER. The first part has at most four digits: longer leading numbers are dates
#   (`20241126`), timestamps or build ids, not major versions.
# - Prereleases belong to the version, never the variant: `1.2.3-rc1`, `1.2.3-rc.1`,
#   `1.2.3-beta.2`, `1.2.3-alpha`, `9.0.100-preview.7` and Python/Go's attached `3.14.0rc1`,
#   `3.14.0a1`, `1.24rc1` keep the label in `version` and sort before the release.
#   `dev`, `nightly` and similar are variants (`3.14.4-dev` is Chainguard's dev variant).
# - `1.2.3_1` is EXACT version `1.2.3_1`, not a revision: tags cannot hold semver's `+`, so
#   `_N` is upstream build metadata (Temurin `17.0.13_11`) or a Java 8 update (`1.8.0_432`):
#   different upstream releases. It sorts after `1.2.3`.
# - REVISION is a repackaging of the same upstream version: `-rN` (Alpine, Chainguard) or
#   Bitnami's `-<os>-<n>-rN` (`8.0.40-debian-12-r3`), directly after the version. `revision`
#   holds it as written (`r2`, `debian-12-r3`); variants may follow (`3.12.7-r1-dev`).
# - TIMESTAMP is a 12- or 14-digit `YYYYMMDDHHMM[SS]` token that is a real UTC time in year
#   2000 or later; `built_at` is that time. A 12/14-digit token that is not a real time, and
#   any variant starting with a digit (`1.2.3-1`, `1.2.3-20241126`), make the tag OTHER:
#   such suffixes are build stamps, and calling them variants would invent a flavour per build.
#   A bare timestamp (`202412120223`) is a TIMESTAMP with no version.
# - FLOATING names are the fixed set `FLOATING_NAMES`, optionally with a variant
#   (`stable-perl`, `lts-alpine3.20`); `channel` holds the name (`latest` for LATEST). Words
#   outside the set (`main`, `alpine`, `noble`, `slim`) are OTHER, although they may move too.
# - ARTIFACT tags are cosign's `sha256-<hex>.sig|.att|.sbom` and the OCI referrers fallback
#   `sha256-<hex>`. sha512 fallback tags are OTHER: the spec truncates their hex, so they
#   cannot name their subject.

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from catalog.oci.reference import is_valid_tag

__all__ = [
    "FLOATING_NAMES",
    "Kind",
    "TagInfo",
    "classify",
    "default_line_depth",
    "line_of",
    "version_key",
]


class Kind(StrEnum):
    """What a tag name says it is; the values are what gets stored."""

    LATEST = "latest"
    MAJOR = "major"
    MINOR = "minor"
    EXACT = "exact"
    REVISION = "revision"
    TIMESTAMP = "timestamp"
    FLOATING = "floating"
    ARTIFACT = "artifact"
    OTHER = "other"


# Release channels that move from version to version by design (nginx, node, Debian, Alpine,
# Ubuntu, nightlies). A fixed list, so a branch or codename is never mistaken for a channel.
FLOATING_NAMES = frozenset(
    {"current", "edge", "lts", "mainline", "nightly", "oldstable", "rolling", "stable", "testing", "unstable"}
)

_FLOATING_KINDS = frozenset({Kind.LATEST, Kind.MAJOR, Kind.MINOR, Kind.FLOATING})


@dataclass(frozen=True, slots=True)
class TagInfo:
    """One tag name, classified. The name is kept as given, so a "v" prefix is not lost."""

    name: str
    kind: Kind
    # "3.14.4" for exact/revision/timestamp, "3.14" for minor, "3" for major; without a "v".
    version: str = ""
    variant: str = ""
    revision: str = ""
    channel: str = ""
    built_at: datetime | None = None
    subject_digest: str = ""
    artifact: str = ""

    @property
    def is_floating(self) -> bool:
        """Moves to newer versions by design. An exact version may be rebuilt but stays put."""
        return self.kind in _FLOATING_KINDS

    @property
    def is_immutable(self) -> bool:
        """Names one build forever, so a move is a security event.

        Artifact tags are not: cosign re-pushes `.sig` when a signature is added, and the
        referrers fallback index grows with each referrer.
        """
        return self.kind is Kind.TIMESTAMP


_ARTIFACT_RE = re.compile(r"sha256-(?P<hex>[0-9a-f]{64})(?:\.(?P<suffix>sig|att|sbom))?")
_ARTIFACT_TYPES = {"sig": "signature", "att": "attestation", "sbom": "sbom", None: "referrers"}

# Every pattern below is used with fullmatch on one "-"-separated token (or one version
# string), and no two adjacent pieces can match the same characters, so matching is linear.
_RELEASE = r"[0-9]{1,4}(?:\.[0-9]+){0,3}"
_ATTACHED_PRE = r"(?P<attached>alpha|beta|rc|a|b)(?P<attached_n>[0-9]+)"
_DASHED_PRE = r"(?P<label>alpha|beta|preview|pre|rc)(?:\.?(?P<label_n>[0-9]+))?"
_BUILD = r"_(?P<build>[0-9]+)"

_VERSION_TOKEN_RE = re.compile(rf"(?P<v>v)?(?P<release>{_RELEASE})(?:{_ATTACHED_PRE})?(?:{_BUILD})?")
_DASHED_PRE_RE = re.compile(_DASHED_PRE)
# What `TagInfo.version` can hold; `version_key` and `line_of` read it back with this.
_VERSION_RE = re.compile(rf"v?(?P<release>{_RELEASE})(?:{_ATTACHED_PRE})?(?:{_BUILD})?(?:-{_DASHED_PRE})?")

_REVISION_RE = re.compile(r"r[0-9]+")
_OS_NAME_RE = re.compile(r"[a-z]+")
_NUMBER_RE = re.compile(r"[0-9]+")
_TIMESTAMP_RE = re.compile(r"[0-9]{12}|[0-9]{14}")
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.]*")
_VARIANT_PART_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.]*")

# Containers postdate 2000; an earlier "date" is a number that happens to have 12 digits.
_EARLIEST_BUILD_YEAR = 2000

_PRERELEASE_RANK = {"alpha": 0, "a": 0, "beta": 1, "b": 1, "preview": 2, "pre": 2, "rc": 3}
_RELEASE_RANK = 4

# (is a version, numeric parts, (prerelease rank, its number), build, text)
VersionKey = tuple[int, tuple[int, ...], tuple[int, int], int, str]


def classify(tag: str) -> TagInfo:
    """Classify a tag name from a registry; any string is accepted, junk is OTHER."""
    other = TagInfo(tag, Kind.OTHER)
    # Anything outside the tag grammar (non-ASCII digits, newlines, over 128 characters) is
    # OTHER before any parsing, which also bounds the work every later step does.
    if not is_valid_tag(tag):
        return other

    if artifact := _ARTIFACT_RE.fullmatch(tag):
        return TagInfo(
            tag,
            Kind.ARTIFACT,
            subject_digest=f"sha256:{artifact['hex']}",
            artifact=_ARTIFACT_TYPES[artifact["suffix"]],
        )

    tokens = tag.split("-")
    if "" in tokens:
        return other

    head, rest = tokens[0], tokens[1:]
    if head == "latest" and _is_variant(rest):
        return TagInfo(tag, Kind.LATEST, variant="-".join(rest), channel=head)
    if head in FLOATING_NAMES and _is_variant(rest):
        return TagInfo(tag, Kind.FLOATING, variant="-".join(rest), channel=head)

    return _classify_versioned(tag, tokens) or other


def _classify_versioned(tag: str, tokens: list[str]) -> TagInfo | None:
    if _TIMESTAMP_RE.fullmatch(tokens[0]):
        built_at = _parse_timestamp(tokens[0])
        if built_at is None or not _is_variant(tokens[1:]):
            return None
        return TagInfo(tag, Kind.TIMESTAMP, variant="-".join(tokens[1:]), built_at=built_at)

    start = next((i for i, token in enumerate(tokens) if _VERSION_TOKEN_RE.fullmatch(token)), None)
    if start is None:
        return None
    prefix = tokens[:start]
    if not all(_WORD_RE.fullmatch(word) for word in prefix):
        return None

    match = _VERSION_TOKEN_RE.fullmatch(tokens[start])
    version = tokens[start].removeprefix("v")
    parts = match["release"].count(".") + 1
    pos = start + 1

    if match["attached"] is None and pos < len(tokens) and _DASHED_PRE_RE.fullmatch(tokens[pos]):
        version += "-" + tokens[pos]
        pos += 1

    revision = ""
    if pos < len(tokens) and _REVISION_RE.fullmatch(tokens[pos]):
        revision = tokens[pos]
        pos += 1
    elif _is_bitnami_revision(tokens[pos : pos + 3]):
        revision = "-".join(tokens[pos : pos + 3])
        pos += 3

    built_at = None
    if pos < len(tokens) and _TIMESTAMP_RE.fullmatch(tokens[pos]):
        built_at = _parse_timestamp(tokens[pos])
        if built_at is None:
            return None
        pos += 1

    suffix = tokens[pos:]
    # The timestamp is what shows a prefixed tag is a build tag rather than `pr-42`.
    if not _is_variant(suffix) or (prefix and built_at is None):
        return None

    if built_at is not None:
        kind = Kind.TIMESTAMP
    elif revision:
        kind = Kind.REVISION
    else:
        kind = {1: Kind.MAJOR, 2: Kind.MINOR}.get(parts, Kind.EXACT)
    return TagInfo(
        tag, kind, version=version, variant="-".join(prefix + suffix), revision=revision, built_at=built_at
    )


def _is_variant(tokens: list[str]) -> bool:
    # A variant names a flavour, so it starts with a word; a leading number is a build stamp.
    if not tokens:
        return True
    return bool(_WORD_RE.fullmatch(tokens[0])) and all(_VARIANT_PART_RE.fullmatch(t) for t in tokens[1:])


def _is_bitnami_revision(tokens: list[str]) -> bool:
    return (
        len(tokens) == 3
        and bool(_OS_NAME_RE.fullmatch(tokens[0]))
        and bool(_NUMBER_RE.fullmatch(tokens[1]))
        and bool(_REVISION_RE.fullmatch(tokens[2]))
    )


def _parse_timestamp(digits: str) -> datetime | None:
    fields = [int(digits[i : i + 2]) for i in range(4, len(digits), 2)]
    year = int(digits[:4])
    if year < _EARLIEST_BUILD_YEAR:
        return None
    try:
        # Tags carry no offset; vendors stamp builds in UTC.
        return datetime(year, *fields, tzinfo=UTC)
    except ValueError:
        return None


def version_key(version: str) -> VersionKey:
    """A sort key: numeric parts compare as numbers, prereleases before their release.

    Anything that is not a version sorts before all versions, by text; equal versions
    spelled differently (`v1.2.3`, `1.2.3`) are ordered by text so sorting is deterministic.
    """
    match = _VERSION_RE.fullmatch(version)
    if match is None:
        return (0, (), (0, -1), -1, version)
    release = tuple(int(part) for part in match["release"].split("."))
    label = match["attached"] or match["label"]
    if label is None:
        prerelease = (_RELEASE_RANK, -1)
    else:
        number = match["attached_n"] or match["label_n"]
        prerelease = (_PRERELEASE_RANK[label], int(number) if number else -1)
    build = int(match["build"]) if match["build"] else -1
    return (1, release, prerelease, build, version)


def line_of(version: str, depth: int) -> str:
    """The first `depth` (1 or 2) numeric parts of a version: "3.14.4" → "3.14" or "3".

    Not a version (a floating tag's empty version, say) → "".
    """
    if depth not in (1, 2):
        raise ValueError(f"line depth must be 1 or 2, not {depth!r}")
    match = _VERSION_RE.fullmatch(version)
    if match is None:
        return ""
    return ".".join(match["release"].split(".")[:depth])


def default_line_depth(versions: Iterable[str]) -> int:
    """2 (major.minor lines) if any version has three or more numeric parts, else 1 (major)."""
    for version in versions:
        match = _VERSION_RE.fullmatch(version)
        if match and match["release"].count(".") >= 2:
            return 2
    return 1
