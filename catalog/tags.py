"""What a tag name says about itself: its kind, version, variant, build time or subject digest."""

# The grammar (each rule pinned by tests/catalog/test_tags.py and checked on the real tag sets
# in tests/catalog/corpus/):
#
#   [prefix-]VERSION[-prerelease][-java build][-second version][-revision][-variant...]
#
# split on "-", with a build stamp allowed anywhere. Classification is per tag and syntactic;
# `version_of` and `default_line_depth` look at a whole tag set where that is what decides.
#
# - A BUILD STAMP is a date or time, `YYYYMMDD`, `YYYYMMDDhhmm` or `YYYYMMDDhhmmss` (year
#   20xx, a real UTC time), as a token of its own or a part of a dotted one, optionally
#   followed by `.N` sequence numbers: `10.2-20260602`, `bookworm-20260803-slim`, `20260805`,
#   `base-20260816.0.574111`, `2023.12.20260817.0`, `3.14.4-dev-202611231200`; or a `YYMMDD`
#   token that is a real date (`…-glibc-240710`). A tag holding one is TIMESTAMP: immutable,
#   `built_at` parsed, and its version and variant are those of the rest of the tag
#   (`3.14.4-dev-202611231200` is a build of `3.14.4-dev`). A rest that no rule explains
#   (`bookworm-slim`) leaves both empty. A stamp-shaped number that is not a real time makes
#   the tag OTHER.
# - A VERSION has one to four numeric parts, the first of at most four digits (longer leading
#   numbers are dates or build ids), after an optional lowercase "v". It may carry, in the
#   spellings real images use: a prerelease, attached (`3.15.0rc1`, `19beta3`, `8.5.10RC1`,
#   `12.1.0.beta3`) or dashed (`1.2.3-rc.1`, `4.0.0-rc-5`, `26-ea-11`, `9.0.100-preview.7`,
#   `8.0-M02`, Dart's `3.10.0-21.0.beta`), any case; a Java update and build (`8u462-b08`);
#   an upstream build `_N` (`21.0.8_9`); a `.Final`-style qualifier; and a second dotted
#   version directly after it (pypy `3.11-7.3.20`, `v1.19.0-1.0`). Prereleases sort before
#   their release.
# - REVISION is a repackaging or update of the same version, directly after it: `-rN` (Alpine,
#   Chainguard), `-uN`, Bitnami's `-<os>-<n>-rN`, or a plain build number (`9.6-1755678605`,
#   `1.2.3-1`).
# - The KIND of a versioned tag says how far it floats: a version with a numbered prerelease, an
#   update, a build or a second version names one release (EXACT); otherwise one part is
#   MAJOR, two MINOR, three or more EXACT. So `18.3` is MINOR by itself; `version_of` is what
#   makes it the version of an image whose most specific tag it is.
# - A VARIANT is what is left: words before the version (`open-21.0.8_9-jdk` is variant
#   `open-jdk`; after words the version is the longest, so clojure's
#   `temurin-21-tools-deps-1.12.1.1550-trixie` is 1.12.1.1550 of `temurin-21-tools-deps-trixie`)
#   and tokens after it, the first of them holding a letter (`slim-trixie`,
#   `eclipse-temurin-17`, `windowsservercore-ltsc2025`, Ubuntu's base and risk `22.04_edge`).
#   A variant never holds a run of six or more digits nor a commit id (seven or more hex
#   characters mixing letters and digits): those name one build, and a variant per build would
#   be a row per build; such tags are OTHER. Words that name a git reference (`pr-42`, `sha-…`,
#   `release-1.2`) are never a variant either.
# - Matching of words is case-sensitive: `Latest` and `V1.2.3` are OTHER; only prerelease labels
#   ignore case, since PHP and NATS publish `RC1` and `RC.2`.
# - FLOATING names are the fixed set `FLOATING_NAMES` (release channels), optionally with a
#   variant; `channel` holds the name (`latest` for LATEST). Codenames (`bookworm`, `noble`,
#   `iron`) and branches (`main`) are OTHER: no grammar tells them from a variant word.
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
    "is_prerelease",
    "line_of",
    "version_key",
    "version_of",
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

FLOATING_KINDS = frozenset({Kind.LATEST, Kind.MAJOR, Kind.MINOR, Kind.FLOATING})


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
        return self.kind in FLOATING_KINDS

    @property
    def is_immutable(self) -> bool:
        """Names one build forever, so a move is a security event.

        Artifact tags are not: cosign re-pushes `.sig` when a signature is added, and the
        referrers fallback index grows with each referrer.
        """
        return self.kind is Kind.TIMESTAMP


_ARTIFACT_RE = re.compile(r"sha256-(?P<hex>[0-9a-f]{64})(?:\.(?P<suffix>sig|att|sbom))?")
_ARTIFACT_TYPES = {"sig": "signature", "att": "attestation", "sbom": "sbom", None: "referrers"}

# Every pattern is used with fullmatch on one "-"-separated token; no two adjacent pieces can
# match the same characters, so matching is linear in the token.
_PRE_LABELS = r"alpha|beta|preview|pre|rc|ea|snapshot|milestone|m|a|b"
_VERSION_TOKEN_RE = re.compile(
    r"(?P<v>v)?(?P<release>[0-9]{1,4}(?:\.[0-9]+){0,3})"
    r"(?:u(?P<update>[0-9]+))?"
    rf"(?:\.?(?P<pre>(?i:{_PRE_LABELS}))(?P<pre_n>[0-9]+(?:\.[0-9]+)*)?)?"
    r"(?:\.(?i:final|ga|release))?"
    r"(?:_(?P<build>[0-9]+))?"
)
_DASHED_PRE_RE = re.compile(rf"(?P<pre>(?i:{_PRE_LABELS}))(?:\.?(?P<pre_n>[0-9]+(?:\.[0-9]+)*))?")
# Semver prereleases led by numbers, as Dart publishes them: `3.10.0-21.0.beta`, `3.10.0-75.0.dev`.
_NUMBERED_PRE_RE = re.compile(
    rf"(?P<lead>[0-9]{{1,9}}(?:\.[0-9]{{1,9}})*)\.(?P<pre>(?i:{_PRE_LABELS}|dev))(?:\.(?P<pre_n>[0-9]+))?"
)
_JAVA_BUILD_RE = re.compile(r"b(?P<build>[0-9]+)")
_SECOND_VERSION_RE = re.compile(r"[0-9]{1,4}(?:\.[0-9]+){1,3}")
_PRE_NUMBER_RE = re.compile(r"[0-9]{1,5}")
_REVISION_RE = re.compile(r"[ru][0-9]+|[0-9]+")
_OS_NAME_RE = re.compile(r"[a-z]+")
_NUMBER_RE = re.compile(r"[0-9]+")
_LETTER_RE = re.compile(r"[A-Za-z]")
_VARIANT_PART_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.]*")
# Build stamps: a date with an optional time, then optional ".N" sequence numbers.
_STAMP_RE = re.compile(r"(?P<stamp>20[0-9]{6}(?:[0-9]{4}(?:[0-9]{2})?)?)(?P<seq>(?:\.[0-9]+)*)")
_STAMP_SHAPED_RE = re.compile(r"[0-9]{8}|[0-9]{12}|[0-9]{14}")
_SHORT_DATE_RE = re.compile(r"[0-9]{6}")
# What names one build rather than a flavour: long digit runs and commit ids.
_LONG_NUMBER_RE = re.compile(r"[0-9]{6}")
_COMMIT_RE = re.compile(r"(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}")
# Words that make the number after them a git reference (docker/metadata-action's
# `type=ref` and `type=sha` tags), not a flavour of a version.
_REFERENCE_WORDS = frozenset({"branch", "commit", "mr", "pr", "pull", "release", "sha"})

# A label with a single letter needs a number: `3.14.4a` is not a prerelease.
_NUMBERED_ONLY = frozenset({"a", "b", "m"})
_PRERELEASE_RANK = {
    "snapshot": 0, "dev": 0, "ea": 0, "m": 0, "milestone": 0, "alpha": 1, "a": 1,
    "beta": 2, "b": 2, "preview": 3, "pre": 3, "rc": 4,
}  # fmt: skip
_RELEASE_RANK = 5

# (is a version, numeric parts, java update, (prerelease rank, its numbers), build,
#  second version, text)
VersionKey = tuple[int, tuple[int, ...], int, tuple[int, tuple[int, ...]], int, tuple[int, ...], str]


@dataclass(frozen=True, slots=True)
class _Version:
    """A version read from tokens; `end` is the index of the first token after it."""

    text: str
    release: tuple[int, ...]
    release_text: tuple[str, ...]  # as written: the line of `24.04` is `24.04`, not `24.4`
    update: int | None
    prerelease: tuple[str, tuple[int, ...]] | None
    build: int | None
    second: tuple[int, ...]
    end: int

    @property
    def names_one_release(self) -> bool:
        numbered_pre = self.prerelease is not None and bool(self.prerelease[1])
        return numbered_pre or self.update is not None or self.build is not None or bool(self.second)

    @property
    def specificity(self) -> int:
        """How much of a release it pins: `3` < `3.14` < `3.14.4` < `3.14.4rc1`, `21.0.8_9`."""
        return (
            len(self.release)
            + len(self.second)
            + (self.update is not None)
            + (self.build is not None)
            + bool(self.prerelease and self.prerelease[1])
        )


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
    stamped = _without_stamp(tokens)
    if stamped is None:
        return _classify_tokens(tag, tokens) or other
    built_at, rest = stamped
    if built_at is None:
        return other
    info = _classify_tokens(tag, rest) if rest else None
    if info is None:
        return TagInfo(tag, Kind.TIMESTAMP, built_at=built_at)
    return TagInfo(
        tag,
        Kind.TIMESTAMP,
        version=info.version,
        variant=info.variant,
        revision=info.revision,
        built_at=built_at,
    )


def _without_stamp(tokens: list[str]) -> tuple[datetime | None, list[str]] | None:
    """The first build stamp's time and the tokens without it; None when there is none.

    (None, tokens) when a stamp-shaped number is not a real time: a tag to leave alone.
    """
    for index, token in enumerate(tokens):
        if _STAMP_SHAPED_RE.fullmatch(token) and not _STAMP_RE.fullmatch(token):
            return None, tokens
        # BellSoft's `…-glibc-240710`: a six-digit token is a date only when it is one.
        if _SHORT_DATE_RE.fullmatch(token) and (built_at := _parse_timestamp("20" + token)):
            return built_at, tokens[:index] + tokens[index + 1 :]
        parts = token.split(".")
        for at, part in enumerate(parts):
            if not _STAMP_SHAPED_RE.fullmatch(part):
                continue
            sequence = parts[at + 1 :]
            if not _STAMP_RE.fullmatch(part) or not all(_NUMBER_RE.fullmatch(n) for n in sequence):
                return None, tokens
            built_at = _parse_timestamp(part)
            if built_at is None:
                return None, tokens
            # `2023.12.20260817.0`: the parts before the stamp are the version it is a build of.
            before = ".".join(parts[:at])
            return built_at, tokens[:index] + [before] * bool(before) + tokens[index + 1 :]
    return None


def _classify_tokens(tag: str, tokens: list[str]) -> TagInfo | None:
    head, rest = tokens[0], tokens[1:]
    if head == "latest" and _is_variant(rest):
        return TagInfo(tag, Kind.LATEST, variant="-".join(rest), channel=head)
    if head in FLOATING_NAMES and _is_variant(rest):
        return TagInfo(tag, Kind.FLOATING, variant="-".join(rest), channel=head)

    # A tag that starts with a version is that version (`25-jdk-ubuntu-24.04`); after words, the
    # version is the longest one (`temurin-21-tools-deps-1.12.1.1550` is a tools-deps release).
    found = [(i, match) for i, token in enumerate(tokens) if (match := _VERSION_TOKEN_RE.fullmatch(token))]
    if not found:
        return None
    start = found[0][0]
    if start > 0:
        start = max(found, key=lambda item: (item[1]["release"].count("."), -item[0]))[0]
    prefix = tokens[:start]
    if prefix and (not _is_variant(prefix) or prefix[0] in _REFERENCE_WORDS):
        return None
    version = _read_version(tokens, start)
    if version is None:
        return None
    pos = version.end

    revision = ""
    if _is_bitnami_revision(tokens[pos : pos + 3]):
        revision = "-".join(tokens[pos : pos + 3])
        pos += 3
    elif pos < len(tokens) and _REVISION_RE.fullmatch(tokens[pos]):
        revision = tokens[pos]
        pos += 1

    suffix = tokens[pos:]
    if not _is_variant(suffix) or not all(_names_a_flavour(token) for token in prefix + suffix):
        return None

    if revision:
        kind = Kind.REVISION
    elif version.names_one_release:
        kind = Kind.EXACT
    else:
        kind = {1: Kind.MAJOR, 2: Kind.MINOR}.get(len(version.release), Kind.EXACT)
    return TagInfo(tag, kind, version=version.text, variant="-".join(prefix + suffix), revision=revision)


def _read_version(tokens: list[str], start: int) -> _Version | None:
    """The version starting at `tokens[start]`, with the tokens that belong to it."""
    match = _VERSION_TOKEN_RE.fullmatch(tokens[start])
    if match is None:
        return None
    pre_label, pre_numbers = match["pre"], match["pre_n"]
    if pre_label and pre_label.lower() in _NUMBERED_ONLY and not pre_numbers:
        return None
    text = [tokens[start].removeprefix("v")]
    update = int(match["update"]) if match["update"] else None
    build = int(match["build"]) if match["build"] else None
    pos = start + 1

    def at(pattern: re.Pattern) -> re.Match | None:
        return pattern.fullmatch(tokens[pos]) if pos < len(tokens) else None

    if update is not None and build is None and (java := at(_JAVA_BUILD_RE)):
        build = int(java["build"])
        text.append(tokens[pos])
        pos += 1
    dashed = at(_DASHED_PRE_RE) if pre_label is None else None
    # A lone `a`, `b` or `m` is a variant word, not a prerelease.
    if dashed and (dashed["pre_n"] or dashed["pre"].lower() not in _NUMBERED_ONLY):
        pre_label, pre_numbers = dashed["pre"], dashed["pre_n"]
        text.append(tokens[pos])
        pos += 1
        if pre_numbers is None and at(_PRE_NUMBER_RE):  # `4.0.0-rc-5`, `26-ea-11`
            pre_numbers = tokens[pos]
            text.append(tokens[pos])
            pos += 1
    elif pre_label is None and (numbered := at(_NUMBERED_PRE_RE)):
        pre_label = numbered["pre"]
        pre_numbers = ".".join(filter(None, (numbered["lead"], numbered["pre_n"])))
        text.append(tokens[pos])
        pos += 1
    second: tuple[int, ...] = ()
    if at(_SECOND_VERSION_RE):
        second = tuple(int(part) for part in tokens[pos].split("."))
        text.append(tokens[pos])
        pos += 1
    prerelease = None
    if pre_label is not None:
        numbers = tuple(int(n) for n in pre_numbers.split(".")) if pre_numbers else ()
        prerelease = (pre_label.lower(), numbers)
    release = match["release"].split(".")
    return _Version(
        "-".join(text),
        tuple(int(part) for part in release),
        tuple(release),
        update,
        prerelease,
        build,
        second,
        pos,
    )


def _parse_version(version: str) -> _Version | None:
    """A stored `TagInfo.version` read back; None for anything that is not one."""
    if not version or not is_valid_tag(version):
        return None
    tokens = version.split("-")
    parsed = _read_version(tokens, 0)
    return parsed if parsed is not None and parsed.end == len(tokens) else None


def _is_variant(tokens: list[str]) -> bool:
    # A variant names a flavour, so its first token has a letter (`slim`, Ubuntu's `26.04_edge`);
    # a bare number there is a build number, read as a revision or not at all.
    if not tokens:
        return True
    return _LETTER_RE.search(tokens[0]) is not None and all(_VARIANT_PART_RE.fullmatch(t) for t in tokens)


def _names_a_flavour(token: str) -> bool:
    return not _LONG_NUMBER_RE.search(token) and not _COMMIT_RE.fullmatch(token)


def _is_bitnami_revision(tokens: list[str]) -> bool:
    return (
        len(tokens) == 3
        and bool(_OS_NAME_RE.fullmatch(tokens[0]))
        and bool(_NUMBER_RE.fullmatch(tokens[1]))
        and tokens[2].startswith("r")
        and bool(_NUMBER_RE.fullmatch(tokens[2][1:]))
    )


def _parse_timestamp(digits: str) -> datetime | None:
    fields = [int(digits[i : i + 2]) for i in range(4, len(digits), 2)]
    try:
        # Tags carry no offset; vendors stamp builds in UTC.
        return datetime(int(digits[:4]), *fields, tzinfo=UTC)
    except ValueError:
        return None


def version_key(version: str) -> VersionKey:
    """A sort key: numeric parts compare as numbers, prereleases before their release.

    Anything that is not a version sorts before all versions, by text; equal versions
    spelled differently (`v1.2.3`, `1.2.3`) are ordered by text so sorting is deterministic.
    """
    parsed = _parse_version(version)
    if parsed is None:
        return (0, (), -1, (0, ()), -1, (), version)
    if parsed.prerelease is None:
        prerelease = (_RELEASE_RANK, ())
    else:
        label, numbers = parsed.prerelease
        prerelease = (_PRERELEASE_RANK[label], numbers)
    update = -1 if parsed.update is None else parsed.update
    build = -1 if parsed.build is None else parsed.build
    return (1, parsed.release, update, prerelease, build, parsed.second, version)


def is_prerelease(version: str) -> bool:
    """`3.15.0rc1`, `19beta3`, `3.15-rc`: a version before its release."""
    parsed = _parse_version(version)
    return parsed is not None and parsed.prerelease is not None


def line_of(version: str, depth: int) -> str:
    """The first `depth` (1 or 2) numeric parts of a version: "3.14.4" → "3.14" or "3".

    Not a version (a floating tag's empty version, say) → "".
    """
    if depth not in (1, 2):
        raise ValueError(f"line depth must be 1 or 2, not {depth!r}")
    parsed = _parse_version(version)
    if parsed is None:
        return ""
    return ".".join(parsed.release_text[:depth])


def default_line_depth(versions: Iterable[str]) -> int:
    """2 (lines by major.minor) when the tags float by minor, else 1 (lines by major).

    A repository floats by minor when some two-part version tag (`3.14`) is the line of a longer
    version (`3.14.4`). Two-part releases (postgres `18.3`, ubuntu `24.04`) and JDKs
    (`21.0.8_9` with `21`) have no such tag, and their lines are majors.
    """
    minors, longer = set(), set()
    for version in versions:
        parsed = _parse_version(version)
        if parsed is None:
            continue
        if len(parsed.release) == 2 and not parsed.names_one_release:
            minors.add(parsed.release)
        elif len(parsed.release) > 2:
            longer.add(parsed.release[:2])
    return 2 if minors & longer else 1


def version_of(infos: Iterable[TagInfo]) -> TagInfo | None:
    """Of the tags on one image, the one that names its version: the most specific version
    (`3.14.4` over `3.14` and `3`), then the plainest variant (`3.14.4` over `3.14.4-trixie`).

    None when no tag carries a version (`latest`, `bookworm`, `main`).
    """
    best, best_key = None, None
    for info in infos:
        parsed = _parse_version(info.version) if info.kind is not Kind.ARTIFACT else None
        if parsed is None:
            continue
        key = (
            -parsed.specificity,
            info.variant.count("-") + bool(info.variant),
            len(info.variant),
            info.name,
        )
        if best_key is None or key < best_key:
            best, best_key = info, key
    return best
