"""Check pinned references (`name:tag@sha256:…`) against recorded tag history: current, behind or wrong.

Input is what people have at hand: one reference per line, or lines pasted from a Dockerfile
(`FROM [--platform=…] name:tag@digest [AS stage]`), a compose file or a Kubernetes manifest
(`image: name:tag@digest`, quoted or not). Other lines of those files are skipped. Every answer
comes from stored data, in a fixed number of queries however many lines are checked.

A pin agrees with the version page: a build of the tag's version (or, for a floating tag, of a
version its line covers) is the tag's build even when no poll saw the tag on it, since versions
are backfilled from timestamp tags; it is behind by the builds the version page lists above it.
Only a digest of no such build is "not a build of this tag", and then the answer says what the
digest is, through the one digest language (history.digests): another version's build, a
platform image, an image ID, an attestation, a signature, or something of another repository.
"""

import re
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime
from functools import reduce
from operator import or_
from typing import Literal
from urllib.parse import urlencode

from django.db.models import Count, Max, Prefetch, Q
from django.urls import reverse

from catalog.models import Repository, Tag, Version
from catalog.oci.reference import ImageReference, InvalidReference, parse
from catalog.patterns import PatternError
from catalog.tags import FLOATING_KINDS, Kind, classify

from .digests import ATTESTATION, BUILD, CONFIG, EVERYWHERE, PLATFORM, Column, Exact
from .keyset import RowAfter
from .models import Attestation, Build, HeldTag, Platform, TagEvent, TagState, with_activity
from .versions import POSITION, position
from .wording import format_time, plural, short_digest

MAX_REFERENCES = 200  # per check: a large compose file has a few dozen
MAX_LINE_LENGTH = 2048  # a reference is at most 1024; FROM flags and a stage name fit in the rest
MAX_INPUT = 512 * 1024  # characters in all; refused before anything is parsed

Status = Literal["current", "behind", "ahead", "not_a_build_of_tag", "unknown", "invalid", "no_digest"]
Unknown = Literal["repository", "tag", "digest"]
# How tagledger knows the pinned build is one the tag stands for: the tag was seen on it, or it is
# a build of the tag's version, or (a floating tag) of a version of the line the tag follows.
Scope = Literal["version", "line"]
KnownFrom = Literal["tag", "version", "line"]

STATUS_LABELS = {
    "current": "current",
    "behind": "behind",
    "ahead": "newer than the tag",
    "not_a_build_of_tag": "not a build of this tag",
    "unknown": "unknown",
    "invalid": "invalid",
    "no_digest": "no digest",
}

# Dockerfile instructions other than FROM: their lines name no base image.
_INSTRUCTIONS = frozenset(
    {
        "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL",
        "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
    }
)  # fmt: skip
# `key: value` or `- key: value` in YAML; `python:3.12` is no key (nothing follows the colon's space).
_YAML_KEY_RE = re.compile(r"(?:-\s+)?(?P<key>[A-Za-z_][\w.-]*)\s*:(?:\s+(?P<value>.*))?")
_TRAILING_COMMENT_RE = re.compile(r"\s+#.*\Z", re.DOTALL)


class PinError(ValueError):
    """The whole input is refused (too many references, too large): nothing was checked."""


@dataclass(frozen=True)
class PinResult:
    """What one line says and what tagledger knows about it."""

    line: int  # 1-based, counting every input line, so it can be found in the pasted text
    text: str  # the line as given (trimmed)
    status: Status
    message: str
    reference: str | None = None  # normalised: docker.io/library/python:3.12@sha256:…
    repository: str | None = None  # registry/name
    tag: str | None = None
    digest: str | None = None  # as pinned
    build_digest: str | None = None  # the build the pinned digest is, or belongs to (a platform's)
    platform: str | None = None  # the pinned digest is this platform's image of that build
    current_digest: str | None = None  # where the tag points now
    current_reference: str | None = None  # registry/name:tag@<current digest>: what to pin
    # How far behind, by the measure `known_from` names: "tag", the distinct builds the tag moved
    # through since it last left the pin (for a tag naming a version, that version's newer builds);
    # "version", the version's builds newer than the pin; "line", the line's.
    builds_behind: int | None = None
    newer_builds: int | None = None  # builds of the pinned build's version newer than it (version page order)
    known_from: KnownFrom | None = None  # behind or ahead: how tagledger knows the build is the tag's
    version: str | None = None  # the pinned build's version (`3.14.4`, `3.14.4-slim`)
    built_at: datetime | None = None  # the pinned build's time from its timestamp tag, if it has one
    first_seen_at: datetime | None = None  # when a poll first saw the pinned build
    what_it_is: str | None = None  # not a build of the tag, or unknown: what the digest is, if known
    version_inactive: bool = False  # the version the tag points into now gets no new builds
    held_by: tuple[str, ...] = ()  # tags that pointed to the pinned build (for the wrong-tag case)
    unknown: Unknown | None = None  # what tagledger does not know, when the status is `unknown`
    confirmed_at: datetime | None = None  # the last poll that saw the tag where it points now
    build_id: int | None = None
    current_build_id: int | None = None

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def compare_url(self) -> str | None:
        """The compare page from the pinned build to the current one, when both are known and differ."""
        if not (self.build_digest and self.current_digest) or self.build_digest == self.current_digest:
            return None
        query = urlencode(
            {"a": f"{self.repository}@{self.build_digest}", "b": f"{self.repository}@{self.current_digest}"}
        )
        return f"{reverse('history:compare')}?{query}"

    def as_dict(self) -> dict:
        """Plain JSON types, for the API."""
        return {
            "line": self.line,
            "text": self.text,
            "status": self.status,
            "message": self.message,
            "reference": self.reference,
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "build_digest": self.build_digest,
            "platform": self.platform,
            "current_digest": self.current_digest,
            "current_reference": self.current_reference,
            "builds_behind": self.builds_behind,
            "newer_builds": self.newer_builds,
            "known_from": self.known_from,
            "version": self.version,
            "built_at": self.built_at.isoformat() if self.built_at else None,
            "first_seen_at": self.first_seen_at.isoformat() if self.first_seen_at else None,
            "what_it_is": self.what_it_is,
            "version_inactive": self.version_inactive,
            "held_by": list(self.held_by),
            "unknown": self.unknown,
            "confirmed_at": self.confirmed_at.isoformat() if self.confirmed_at else None,
            "compare_url": self.compare_url,
        }


def check(lines: str | list[str]) -> list[PinResult]:
    """One result per reference line, in input order; raises PinError when the input is refused."""
    entries = _read(lines)
    pins = [entry for entry in entries if isinstance(entry, _Pin)]
    resolved = _Resolver(pins).results() if pins else {}
    return [resolved[entry.line] if isinstance(entry, _Pin) else entry for entry in entries]


def check_each(texts: list[str]) -> list[list[PinResult]]:
    """check() of several texts (saved pin lists) resolved together, so a page of lists costs the
    queries of one check; raises PinError when any text is refused."""
    read = [_read(text) for text in texts]
    # The resolver knows pins by line number: number them apart (a text has at most MAX_INPUT + 1
    # lines), then give each result its own line back.
    span = MAX_INPUT + 2
    pins = [
        _Pin(index * span + entry.line, entry.text, entry.reference)
        for index, entries in enumerate(read)
        for entry in entries
        if isinstance(entry, _Pin)
    ]
    resolved = _Resolver(pins).results() if pins else {}
    return [
        [
            replace(resolved[index * span + entry.line], line=entry.line)
            if isinstance(entry, _Pin)
            else entry
            for entry in entries
        ]
        for index, entries in enumerate(read)
    ]


# --- reading lines ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pin:
    line: int
    text: str
    reference: ImageReference


def _read(lines: str | list[str]) -> list["_Pin | PinResult"]:
    raw = _split(lines)
    entries: list[_Pin | PinResult] = []
    stages: set[str] = set()  # `FROM … AS build` makes `FROM build` a stage, not an image
    continued = False  # the previous line ended with `\`: this one continues an instruction
    for number, line in enumerate(raw, start=1):
        continuation, continued = continued, line.rstrip().endswith("\\")
        if continuation:
            continue
        entry = _entry(number, line, stages)
        if entry is None:
            continue
        entries.append(entry)
        if len(entries) > MAX_REFERENCES:
            raise PinError(f"too many references: more than {MAX_REFERENCES} in one check; split the list")
    return entries


def _split(lines: str | list[str]) -> list[str]:
    if isinstance(lines, str):
        lines = [lines]
    if not isinstance(lines, list | tuple) or not all(isinstance(line, str) for line in lines):
        raise PinError("give references as text, one per line")
    if sum(len(line) for line in lines) > MAX_INPUT:
        raise PinError(f"the input is too large (at most {MAX_INPUT // 1024} KiB); split the list")
    return [part for line in lines for part in (line.splitlines() or [""])]


def _entry(number: int, line: str, stages: set[str]) -> "_Pin | PinResult | None":
    text = line.strip()
    if len(line) > MAX_LINE_LENGTH:
        message = f"the line is too long ({len(line)} characters; at most {MAX_LINE_LENGTH})"
        return _invalid(number, text[:80] + "…", message)
    if not text or text.startswith("#") or text in {"---", "..."}:
        return None
    text = _TRAILING_COMMENT_RE.sub("", text)
    words = text.split()
    instruction = words[0].upper()
    if instruction == "FROM":
        return _from(number, text, words[1:], stages)
    if instruction in _INSTRUCTIONS and len(words) > 1:
        return None
    if key := _YAML_KEY_RE.fullmatch(text):
        if key["key"] != "image":
            return None  # another key of a compose or Kubernetes file
        value = _unquote(key["value"] or "")
        if not value:
            return _invalid(number, text, "`image:` names no image")
        return _reference(number, text, value)
    if text.startswith("- "):
        # a YAML list item (ports, volumes, environment…), unless it is a pinned reference
        pin = _reference(number, text, _unquote(text[2:]))
        return pin if isinstance(pin, _Pin) and pin.reference.digest else None
    return _reference(number, text, _unquote(text))


def _from(number: int, text: str, words: list[str], stages: set[str]) -> "_Pin | PinResult | None":
    words = [word for word in words if not word.startswith("--")]  # --platform=…
    if not words:
        return _invalid(number, text, "FROM names no image")
    image, rest = words[0], words[1:]
    if len(rest) >= 2 and rest[0].upper() == "AS":
        stages.add(rest[1].lower())
    elif rest:
        return _invalid(number, text, "after the image, FROM takes only `AS name`")
    if image.lower() in stages or image == "scratch":
        return None  # an earlier stage, or the empty image: nothing to pin
    return _reference(number, text, image)


def _reference(number: int, text: str, value: str) -> "_Pin | PinResult":
    if "$" in value:
        return _invalid(
            number, text, "uses a variable (${…}); tagledger cannot expand it: paste the resolved reference"
        )
    if any(character.isspace() for character in value):
        return _invalid(number, text, "a reference has no spaces: one reference per line")
    try:
        return _Pin(number, text, parse(value))
    except InvalidReference as error:
        return _invalid(number, text, str(error))


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1].strip()
    return value


def _invalid(number: int, text: str, message: str) -> PinResult:
    return PinResult(number, text, "invalid", message)


# --- resolving against recorded history ---------------------------------------------------------


class _AnyOf(Exact):
    """Any of several whole digests: the digest language's predicate for every pin of a check at
    once, so one UNION over the digest columns finds them all, however many lines were pasted."""

    def __init__(self, values: set[str]):
        super().__init__(tuple(sorted(values)))

    def sql(self, column: str) -> tuple[str, list[str]]:
        return f"{column} IN ({', '.join(['%s'] * len(self.value))})", list(self.value)

    def __call__(self, digest: str) -> bool:
        return digest in self.value


@dataclass(frozen=True)
class _Sighting:
    """Where a pinned digest was found: a build's own digest, one of its platform images, the
    config (image ID) of one, or one of its attestation manifests."""

    build: Build
    column: Column  # BUILD, PLATFORM, CONFIG or ATTESTATION (history.digests)
    platform: Platform | None = None
    attestation: Attestation | None = None


@dataclass
class _Facts:
    """What the loaded rows say about one pin in a watched repository, before any wording."""

    repository: Repository
    tag: Tag | None
    state: TagState | None
    pinned: Build | None  # the build the digest is, or whose platform image it is
    platform: Platform | None
    scope: Scope | None  # the pinned build belongs to the tag's version or line
    described: _Sighting | None  # what the digest is, when it is no build of the tag

    @property
    def current(self) -> Build | None:
        return self.state.build if self.state is not None and self.state.present else None


# Cosign's tags (catalog.tags `artifact`) as a sentence names what they hold.
_ARTIFACT_NOUNS = {
    "signature": "a signature", "attestation": "an attestation", "sbom": "an SBOM",
    "referrers": "the referrers index",
}  # fmt: skip
_TAG_ORDER = {Kind.EXACT: 0, Kind.REVISION: 1, Kind.MINOR: 2, Kind.MAJOR: 3, Kind.TIMESTAMP: 5}
MAX_TAGS_NAMED = 4  # a build held by dozens of tags: its description names a few


# A timestamp tag names one build forever, and a cosign tag the one artifact: no other build of
# their version is theirs.
_ONE_BUILD_KINDS = frozenset({Kind.TIMESTAMP, Kind.ARTIFACT})


def _rank(sighting: _Sighting) -> int:
    return EVERYWHERE.index(sighting.column)


def _is_floating(tag: Tag) -> bool:
    return tag.kind in FLOATING_KINDS


def _scope(tag: Tag, current: Build | None, pinned: Build) -> Scope | None:
    """Whether `pinned` is a build `tag` stands for without having been seen on it.

    "version": a build of the version the tag's current build belongs to, or of the version an
    exact tag names (backfilled from its timestamp tag, say). "line": for a floating tag (`3.14`,
    `3`, `latest`, `stable`), a build of any version of its variant that its name covers. None for
    a tag that names one build (a timestamp tag), whatever version that build belongs to.
    """
    version = pinned.version
    if version is None or tag.kind in _ONE_BUILD_KINDS:
        return None
    if current is not None and current.version_id == version.pk:
        return "version"
    if not _is_floating(tag):
        return "version" if (version.name, version.variant) == (tag.version, tag.variant) else None
    if version.variant != tag.variant:
        return None
    named = tag.version  # empty for `latest` and channels: every version of the variant
    return "line" if not named or version.name == named or version.name.startswith(named + ".") else None


def _line_builds(repository_id: int, tag: Tag) -> Q:
    """The builds of every version a floating tag's line covers (as `_scope` reads it), in SQL."""
    builds = Q(repository_id=repository_id, version__variant=tag.variant)
    if tag.version:
        builds &= Q(version__name=tag.version) | Q(version__name__startswith=tag.version + ".")
    return builds


def _when(build: Build) -> str:
    if build.built_at:
        return f"built {format_time(build.built_at)}"
    return f"first seen {format_time(build.first_seen_at)}"


def _of_version(build: Build) -> str:
    return f" of version {build.version}" if build.version_id else ""


class _Resolver:
    """Loads everything the pins need in a fixed number of queries, then decides each in Python."""

    def __init__(self, pins: list[_Pin]):
        self.pins = pins
        names = {(pin.reference.registry, pin.reference.repository) for pin in pins}
        self.repositories = {
            (repository.registry.host, repository.name): repository
            for repository in Repository.objects.filter(
                reduce(or_, (Q(registry__host=host, name=name) for host, name in names))
            ).select_related("registry")
        }
        ids = [repository.pk for repository in self.repositories.values()]
        tag_names = {pin.reference.tag for pin in pins if pin.reference.tag}
        self.tags = {
            (tag.repository_id, tag.name): tag
            for tag in Tag.objects.filter(repository_id__in=ids, name__in=tag_names).select_related(
                "state__build__version"
            )
        }
        self._load_sightings({pin.reference.digest for pin in pins if pin.reference.digest})
        self.facts = {pin.line: self._facts(pin) for pin in pins if self._repository(pin)}
        self._load_history()
        self._load_counts()
        self._load_descriptions()
        self._load_activity()

    # --- loading -----------------------------------------------------------------------------

    def _load_sightings(self, digests: set[str]) -> None:
        """Every build, platform image, config and attestation with a pinned digest, in any
        repository: one UNION of the digest columns (history.digests) and two prefetches."""
        self.sightings: dict[str, list[_Sighting]] = {}
        if not digests:
            return
        matcher = _AnyOf(digests)
        platforms = Platform.objects.filter(
            Q(digest__in=matcher.value) | Q(config_digest__in=matcher.value)
        ).only("build_id", "os", "architecture", "variant", "digest", "config_digest")
        attestations = (
            Attestation.objects.filter(digest__in=matcher.value)
            .select_related("platform")
            .defer("layers", "platform__layers", "platform__config")
        )
        found = (
            Build.objects.matching(matcher)
            .select_related("repository__registry", "version")
            .defer("annotations")
            .prefetch_related(
                Prefetch("platforms", queryset=platforms, to_attr="matched_platforms"),
                Prefetch("attestations", queryset=attestations, to_attr="matched_attestations"),
            )
        )
        for build in found:
            if matcher(build.digest):
                self.sightings.setdefault(build.digest, []).append(_Sighting(build, BUILD))
            for platform in build.matched_platforms:
                if matcher(platform.digest) and platform.digest != build.digest:  # single-platform: the build
                    self.sightings.setdefault(platform.digest, []).append(
                        _Sighting(build, PLATFORM, platform)
                    )
                if matcher(platform.config_digest):
                    self.sightings.setdefault(platform.config_digest, []).append(
                        _Sighting(build, CONFIG, platform)
                    )
            for attestation in build.matched_attestations:
                self.sightings.setdefault(attestation.digest, []).append(
                    _Sighting(build, ATTESTATION, attestation=attestation)
                )
        for found_here in self.sightings.values():  # a build's own digest first, then the newest
            found_here.sort(key=lambda sighting: position(sighting.build), reverse=True)
            found_here.sort(key=_rank)

    def _repository(self, pin: _Pin) -> Repository | None:
        return self.repositories.get((pin.reference.registry, pin.reference.repository))

    def _facts(self, pin: _Pin) -> _Facts:
        repository = self._repository(pin)
        tag = self.tags.get((repository.pk, pin.reference.tag)) if pin.reference.tag else None
        state = None
        if tag is not None:
            with suppress(TagState.DoesNotExist):  # a tag row a poll made but never recorded
                state = tag.state
        current = state.build if state is not None and state.present else None
        here = [
            s
            for s in self.sightings.get(pin.reference.digest or "", [])
            if s.build.repository_id == repository.pk
        ]

        def preferred(candidates: list[_Sighting]) -> _Sighting | None:
            # a platform image or config shared by several builds: the current one if it is among
            # them, else one the tag stands for, else the newest
            return next(
                (s for s in candidates if current is not None and s.build.pk == current.pk),
                next((s for s in candidates if tag is not None and _scope(tag, current, s.build)), None),
            ) or (candidates[0] if candidates else None)

        pinned = preferred([s for s in here if s.column in (BUILD, PLATFORM)])
        scope = _scope(tag, current, pinned.build) if pinned and tag is not None else None
        described = pinned
        if pinned is None:
            anywhere = self.sightings.get(pin.reference.digest or "", [])
            described = preferred(here) or (anywhere[0] if anywhere else None)
        return _Facts(
            repository, tag, state, pinned.build if pinned else None, pinned.platform if pinned else None,
            scope, described,
        )  # fmt: skip

    def _load_history(self) -> None:
        """For each tag whose pin is not current: when it last held the pinned build, and its moves since."""
        pairs = {
            (facts.tag.pk, facts.pinned.pk)
            for facts in self.facts.values()
            if facts.pinned is not None
            and facts.state is not None
            and facts.state.build_id != facts.pinned.pk
        }
        self.last_held: dict[tuple[int, int], datetime] = {}
        if pairs:
            self.last_held = {
                (row["tag_id"], row["build_id"]): row["last"]
                for row in TagEvent.objects.filter(
                    tag_id__in={tag for tag, _ in pairs}, build_id__in={build for _, build in pairs}
                )
                .values("tag_id", "build_id")
                .annotate(last=Max("detected_at"))
                .order_by()
            }
        since: dict[int, datetime] = {}
        for (tag, build), last in self.last_held.items():
            if (tag, build) in pairs:
                since[tag] = min(since.get(tag, last), last)
        self.moves: dict[int, list[tuple[int, datetime]]] = {}
        if since:
            later = reduce(or_, (Q(tag_id=tag, detected_at__gt=at) for tag, at in since.items()))
            rows = (
                TagEvent.objects.filter(later)
                .exclude(build=None)
                .values_list("tag_id", "build_id", "detected_at")
            )
            for tag, build, at in rows:
                self.moves.setdefault(tag, []).append((build, at))

    def _load_counts(self) -> None:
        """Builds newer than each pin not current, by the version page's order (history.versions
        POSITION): of its own version, and of the line a floating tag follows. One query of
        filtered counts, whatever the number of pins."""
        wanted: dict[str, Q] = {}
        for facts in self.facts.values():
            pinned, current = facts.pinned, facts.current
            if pinned is None or current is None or pinned.pk == current.pk:
                continue
            newer = RowAfter(position(pinned), POSITION)
            if pinned.version_id:
                wanted[f"version_{pinned.pk}"] = Q(version_id=pinned.version_id) & newer
            if facts.scope == "line":
                wanted[f"line_{pinned.pk}_{facts.tag.pk}"] = (
                    _line_builds(facts.repository.pk, facts.tag) & newer
                )
        self.counts: dict[str, int] = {}
        if wanted:
            self.counts = Build.objects.filter(reduce(or_, wanted.values())).aggregate(
                **{key: Count("pk", filter=where) for key, where in wanted.items()}
            )

    def _load_descriptions(self) -> None:
        """The tags every pinned or described build held (one query), and the builds cosign's
        signature and attestation tags among them name (one more)."""
        builds = {facts.pinned.pk: facts.pinned for facts in self.facts.values() if facts.pinned}
        builds |= {
            facts.described.build.pk: facts.described.build
            for facts in self.facts.values()
            if facts.described
        }
        for pin in self.pins:
            if self._repository(pin) is None and (anywhere := self.sightings.get(pin.reference.digest or "")):
                builds[anywhere[0].build.pk] = anywhere[0].build
        self.held: dict[int, list[HeldTag]] = TagEvent.objects.held(builds.values()) if builds else {}
        subjects = {
            (builds[build_id].repository_id, info.subject_digest)
            for build_id, held in self.held.items()
            for info in map(classify, dict.fromkeys(h.tag for h in held))
            if info.kind is Kind.ARTIFACT
        }
        self.subjects: dict[tuple[int, str], Build] = {}
        if subjects:
            self.subjects = {
                (build.repository_id, build.digest): build
                for build in Build.objects.filter(
                    reduce(
                        or_, (Q(repository_id=repository, digest=digest) for repository, digest in subjects)
                    )
                ).select_related("version")
            }

    def _load_activity(self) -> None:
        """Which versions the tags point into now have gone quiet (history.models.with_activity:
        the version page's and the repository page's "inactive"), in one query."""
        ids = {
            facts.current.version_id
            for facts in self.facts.values()
            if facts.current and facts.current.version_id
        }
        self.inactive: dict[int, datetime] = {}
        if ids:
            rows = with_activity(Version.objects.filter(pk__in=ids)).filter(inactive=True)
            self.inactive = dict(rows.values_list("pk", "last_build_at"))

    # --- describing ----------------------------------------------------------------------------

    def _tags_of(self, build: Build) -> str:
        """`tags 3.13.1, 3.13` as a build's description ends: the tags it held, plain ones before
        its timestamp tags, a few at most."""
        names = list(dict.fromkeys(held.tag for held in self.held.get(build.pk, [])))
        if not names:
            return "no recorded tag ever pointed to it"
        # the version's own tags before the floating ones (`3.13.1, 3.13`), timestamp tags last
        names.sort(key=lambda name: (_TAG_ORDER.get(classify(name).kind, 4), name))
        shown = ", ".join(names[:MAX_TAGS_NAMED])
        more = f" and {len(names) - MAX_TAGS_NAMED} more" if len(names) > MAX_TAGS_NAMED else ""
        return f"{'tag' if len(names) == 1 else 'tags'} {shown}{more}"

    def _build_phrase(self, build: Build, repository: Repository | None, current: Build | None) -> str:
        """`build 1a2b3c4d5e6f of 3.13.1 (tags 3.13.1, 3.13)`, or what a cosign tag says it is."""
        where = (
            f" in {build.repository.reference}"
            if repository is None or build.repository_id != repository.pk
            else ""
        )
        if current is not None and build.pk == current.pk:
            return f"build {short_digest(build.digest)}{_of_version(build)}, where the tag points now"
        for held in self.held.get(build.pk, []):
            info = classify(held.tag)
            if info.kind is Kind.ARTIFACT:
                noun = _ARTIFACT_NOUNS.get(info.artifact, "an artifact")
                subject = self.subjects.get((build.repository_id, info.subject_digest))
                of = f"build {short_digest(info.subject_digest)}{_of_version(subject) if subject else ''}"
                return f"{noun} of {of}{where} (tag {held.tag})"
        return f"build {short_digest(build.digest)}{_of_version(build)}{where} ({self._tags_of(build)})"

    def _what_it_is(self, sighting: _Sighting | None, repository: Repository | None, current: Build | None):
        """What the pinned digest is, as a noun phrase, when tagledger knows it; else None."""
        if sighting is None:
            return None
        build = self._build_phrase(sighting.build, repository, current)
        if sighting.column == PLATFORM:
            return f"the {sighting.platform} image of {build}"
        if sighting.column == CONFIG:
            return f"the image ID (config) of the {sighting.platform} image of {build}"
        if sighting.column == ATTESTATION:
            attestation = sighting.attestation
            kinds = ", ".join(dict.fromkeys(name for name, _ in attestation.predicates))
            about = f"the {attestation.platform} image of {build}" if attestation.platform else build
            return f"an attestation{f' ({kinds})' if kinds else ''} of {about}"
        return build

    # --- deciding ----------------------------------------------------------------------------

    def results(self) -> dict[int, PinResult]:
        return {pin.line: self._decide(pin) for pin in self.pins}

    def _decide(self, pin: _Pin) -> PinResult:
        reference = pin.reference
        base = {
            "line": pin.line,
            "text": pin.text,
            "reference": str(reference),
            "repository": reference.name,
            "tag": reference.tag,
            "digest": reference.digest,
        }
        facts = self.facts.get(pin.line)
        if facts is None:
            anywhere = self.sightings.get(reference.digest or "")
            what = self._what_it_is(anywhere[0] if anywhere else None, None, None)
            message = f"{reference.name} is not watched: tagledger has no history of it."
            if what:
                message += f" The digest is {what}."
            return PinResult(**base, status="unknown", unknown="repository", message=message, what_it_is=what)
        pinned, platform = facts.pinned, facts.platform
        if pinned is not None:
            base |= {
                "build_digest": pinned.digest, "build_id": pinned.pk, "built_at": pinned.built_at,
                "first_seen_at": pinned.first_seen_at,
                "version": str(pinned.version) if pinned.version_id else None,
                "platform": str(platform) if platform else None,
            }  # fmt: skip
        elif facts.described is not None and facts.described.build.repository_id == facts.repository.pk:
            # a config or an attestation: it belongs to this build, which compare can show
            base |= {"build_digest": facts.described.build.digest, "build_id": facts.described.build.pk}
        if reference.tag is None:
            return self._digest_only(pin, base, facts)
        if facts.state is None:
            return self._unknown_tag(pin, base, facts)
        state, current = facts.state, facts.state.build
        base |= {
            "current_digest": current.digest,
            "current_build_id": current.pk,
            "confirmed_at": state.confirmed_at,
        }
        now = short_digest(current.digest)
        if not state.present:
            gone = (
                "was deleted from"
                if _tracked(facts.repository, reference.tag)
                else "is not tracked any more in"
            )
            message = f"The tag {reference.tag} {gone} {reference.name}; it last pointed to {now}."
            return PinResult(**base, status="unknown", unknown="tag", message=message)
        current_reference = str(reference.with_digest(current.digest))
        base |= {
            "current_reference": current_reference,
            "version_inactive": current.version_id in self.inactive,
        }
        # A sentence names the pin as people read it; the whole of it is `current_reference`.
        use = f"Pin to {reference.with_digest(None).familiar}@{current.digest[:19]}… now."
        quiet = self._quiet(current)
        if reference.digest is None:
            message = f"Not pinned: the tag {reference.tag} points to {now} now. {use}{quiet}"
            return PinResult(**base, status="no_digest", message=message)
        if pinned is None:
            what = self._what_it_is(facts.described, facts.repository, current)
            if what is None:
                message = (
                    f"{short_digest(reference.digest)} was never seen in {reference.name} nor anywhere"
                    f" else tagledger watches; the tag {reference.tag} points to {now} now. {use}"
                )
                return PinResult(**base, status="unknown", unknown="digest", message=message)
            return self._wrong_tag(
                base, facts, f"Not a build of the tag {reference.tag}: the digest is {what}. {use}", what
            )
        of_platform = f" (its {platform} image)" if platform else ""
        if pinned.pk == current.pk:
            message = f"The tag {reference.tag} points to this build{of_platform} now.{quiet}"
            return PinResult(**base, status="current", message=message)
        return self._behind(pin, base, facts, of_platform, use + quiet)

    def _quiet(self, current: Build) -> str:
        if (last := self.inactive.get(current.version_id)) is None:
            return ""
        return (
            f" Version {current.version} is inactive: no new build since {format_time(last)}, and no"
            " floating tag points to it."
        )

    def _behind(self, pin: _Pin, base: dict, facts: _Facts, of_platform: str, use: str) -> PinResult:
        tag, pinned, current = facts.tag, facts.pinned, facts.current
        newer = self.counts.get(f"version_{pinned.pk}") if pinned.version_id else None
        last = self.last_held.get((tag.pk, pinned.pk))
        build = f"build{_of_version(pinned)}{of_platform} ({_when(pinned)})"
        if last is not None:
            later = [(moved, at) for moved, at in self.moves.get(tag.pk, []) if at > last]
            moves = len({moved for moved, _ in later if moved != pinned.pk})
            left = min((at for _, at in later), default=last)  # the move away from it
            # A tag naming a version is behind by that version's newer builds: some come between
            # polls (known from their timestamp tags) and the tag never seemed to move to them.
            behind = newer if facts.scope == "version" and not _is_floating(tag) else moves
            if _is_floating(tag) or facts.scope is None:
                since = f"it has moved through {plural(moves, 'build')} since"
            else:
                since = f"{plural(newer, 'newer build')} since"
            until = format_time(left)
            message = f"An older {build}: the tag {tag.name} pointed to it until {until}; {since}. {use}"
            return PinResult(
                **base,
                status="behind",
                known_from="tag",
                builds_behind=behind,
                newer_builds=newer,
                message=message,
            )
        if facts.scope is None:
            sighting = (
                _Sighting(pinned, PLATFORM, facts.platform) if facts.platform else _Sighting(pinned, BUILD)
            )
            what = self._what_it_is(sighting, facts.repository, current)
            message = (
                f"Not a build of the tag {tag.name}: the tag never pointed to it, and it belongs to"
                f" neither the tag's version nor its line. It is {what}. {use}"
            )
            return self._wrong_tag(base, facts, message, what)
        if facts.scope == "line":
            behind = self.counts[f"line_{pinned.pk}_{tag.pk}"]
            counted = f"the line it follows has {plural(behind, 'newer build')} since"
        else:
            behind = newer
            counted = f"{plural(behind, 'newer build')} since"
        known = self._known_from(pinned, facts.scope)
        if position(pinned) > position(current):
            message = (
                f"A {build} newer than the one the tag {tag.name} points to ({_when(current)}): the tag"
                f" has not pointed to it; {known}. {use}"
            )
            return PinResult(
                **base,
                status="ahead",
                known_from=facts.scope,
                builds_behind=0,
                newer_builds=newer,
                message=message,
            )
        message = f"An older {build}, {counted}. The tag {tag.name} never pointed to it: {known}. {use}"
        return PinResult(
            **base,
            status="behind",
            known_from=facts.scope,
            builds_behind=behind,
            newer_builds=newer,
            message=message,
        )

    def _known_from(self, pinned: Build, scope: Scope) -> str:
        stamp = next(
            (h.tag for h in self.held.get(pinned.pk, []) if classify(h.tag).kind is Kind.TIMESTAMP), None
        )
        whose = "its version's history" if scope == "version" else "the history of the line's versions"
        return f"tagledger knows it from {whose}" + (f" (its timestamp tag {stamp})" if stamp else "")

    def _digest_only(self, pin: _Pin, base: dict, facts: _Facts) -> PinResult:
        reference, pinned = pin.reference, facts.pinned
        if pinned is None:
            what = self._what_it_is(facts.described, facts.repository, None)
            if what is None:
                message = (
                    f"{short_digest(reference.digest)} was never seen in {reference.name}"
                    " nor anywhere else tagledger watches."
                )
                return PinResult(**base, status="unknown", unknown="digest", message=message)
            return self._wrong_tag(
                base,
                facts,
                f"Pinned by digest alone, to no build of {reference.name}: the digest is {what}.",
                what,
            )
        now = sorted({held.tag for held in self.held[pinned.pk] if held.until is None})
        if now:
            tags = f"the tag {now[0]} points" if len(now) == 1 else f"the tags {', '.join(now)} point"
            return PinResult(
                **base,
                status="current",
                held_by=tuple(now),
                current_digest=pinned.digest,
                current_build_id=pinned.pk,
                current_reference=str(reference.with_tag(now[0]).with_digest(pinned.digest)),
                message=f"Pinned by digest alone; {tags} to it now.",
            )
        what = self._what_it_is(_Sighting(pinned, BUILD), facts.repository, None)
        return self._wrong_tag(
            base, facts, f"Pinned by digest alone, and no tag points to it now: it is {what}.", what
        )

    def _unknown_tag(self, pin: _Pin, base: dict, facts: _Facts) -> PinResult:
        reference = pin.reference
        missing = f"{reference.name} has no recorded tag {reference.tag}"
        if not _tracked(facts.repository, reference.tag):
            missing += " (the repository's tag filters leave it out)"
        described = facts.described
        what = self._what_it_is(described, facts.repository, None)
        if described is not None and described.build.repository_id == facts.repository.pk:
            return self._wrong_tag(base, facts, f"{missing}; the digest is {what}.", what)
        if reference.digest is not None:
            missing += f", nor the digest {short_digest(reference.digest)}"
            if what:
                missing += f" (it is {what})"
        return PinResult(**base, status="unknown", unknown="tag", message=missing + ".", what_it_is=what)

    def _wrong_tag(self, base: dict, facts: _Facts, message: str, what: str | None) -> PinResult:
        build = facts.pinned or (facts.described.build if facts.described else None)
        held_by = ()
        if build is not None and build.repository_id == facts.repository.pk:  # not another repository's tags
            held_by = tuple(dict.fromkeys(held.tag for held in self.held.get(build.pk, [])))
        return PinResult(
            **base, status="not_a_build_of_tag", held_by=held_by, message=message, what_it_is=what
        )


def _tracked(repository: Repository, tag: str) -> bool:
    """Whether the repository's include/exclude patterns take the tag (one that ran out of time
    counts as not: its polls cannot check it either)."""
    try:
        return repository.wants_tag(tag)
    except PatternError:
        return False
