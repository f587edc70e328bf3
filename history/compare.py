"""What changed between two builds, from stored data only: summary, platforms, layers, config, annotations,
packages, signatures and provenance (the last three read by history.supply_chain).

`resolve` turns what a person pastes (a full digest, a unique prefix of one, or a reference
`name@digest` / `name:tag`) into one Build; `compare` diffs two builds in a fixed number of
queries, whatever their size. Nothing here asks a registry.
"""

import difflib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Literal

from django.db.models import Prefetch, prefetch_related_objects

from catalog.models import Repository, Tag, Version
from catalog.tags import version_key
from catalog.text import quoted

from . import digests, params, references, supply_chain
from .digests import BUILD, CONFIG, PLATFORM, image_id
from .models import Build, HeldTag, Platform, TagEvent
from .search import PLATFORM_ORDER
from .supply_chain import SupplyComparison
from .versions import NEWEST_FIRST
from .wording import format_time, plural

MAX_TEXT = 1024  # longer than any digest or reference; hostile input stays cheap
UNNAMED = "name a build: a digest, at least 4 hex digits of one, name:tag, name@digest, or a tag"
MAX_CANDIDATES = 10  # an ambiguous prefix lists this many builds to pick from

KeyChangeKind = Literal["added", "removed", "changed"]
LayerStatus = Literal["shared", "added", "removed"]
PlatformStatus = Literal["added", "removed", "changed", "unchanged"]


class CompareError(ValueError):
    """The text names no build, or more than one; `candidates` are the builds to pick from."""

    def __init__(self, message: str, candidates: list[Build] | None = None):
        super().__init__(message)
        self.candidates = list(candidates or [])


# --- resolving what a person pasted -------------------------------------------------------------


def resolve(text: str, *, at: datetime | None = None, within: list[Repository] | None = None) -> Build:
    """The one build `text` names: a full digest, a unique prefix (4+ hex), a reference
    (`name:tag`, `name@digest`, `name:tag@digest`, read by history.references), or a bare tag or
    version (`3.14.4`): in `within` when given, else in the one watched repository that has it.
    With `at`, a tag names the build it held at that instant (from its recorded history)."""
    text = _clean(text)
    try:
        fragment = digests.parse(text)
    except digests.InvalidDigest as error:
        raise CompareError(str(error)) from None
    if fragment is not None:
        if at is not None:
            raise CompareError(
                f"{quoted(text)} is a digest, which names one build at any time: a date goes with a tag"
            )
        return _by_digest(text, fragment)
    if references.is_bare_tag(text) and (within or not _names_repository(text)):
        return _by_tag(text, text, within or None, at)
    return _by_reference(text, at)


def choice(build: Build) -> str:
    """What to pass back to `resolve` to name exactly `build`, even if its digest is in two repositories."""
    return f"{build.repository.reference}@{build.digest}"


def _clean(text: str) -> str:
    try:
        return params.bounded(text, max_length=MAX_TEXT, what="a build's name", empty=UNNAMED)
    except params.InvalidParameter as invalid:
        raise CompareError(str(invalid)) from None


def _builds():
    return Build.objects.select_related("repository__registry", "version").order_by("-first_seen_at", "-pk")


def _by_digest(text: str, fragment: digests.Fragment) -> Build:
    matcher = fragment.matcher()  # a whole digest or a prefix: a build is named, never found inside
    found = list(_builds().matching(matcher, BUILD)[: MAX_CANDIDATES + 1])
    if len(found) == 1:
        return found[0]
    if found:
        raise CompareError(_ambiguous(text, found), found[:MAX_CANDIDATES])
    # Not a build digest: a platform manifest or an image ID? Offer the builds they belong to.
    near = list(_builds().matching(matcher, PLATFORM, CONFIG)[:MAX_CANDIDATES])
    if near:
        raise CompareError(
            f"no build digest starts with {quoted(text)}, but a platform manifest or image ID of "
            f"{plural(len(near), 'build')} does: pick the build",
            near,
        )
    raise CompareError(f"no recorded build has a digest starting with {quoted(text)}")


def _names_repository(text: str) -> bool:
    """Whether a bare word is (the end of) a watched repository's name rather than a tag."""
    try:
        return bool(references.read(text).repositories)
    except references.InvalidReference:
        return False


def _by_reference(text: str, at: datetime | None) -> Build:
    try:
        pasted = references.read(text)
    except references.InvalidReference as error:
        raise CompareError(
            f"{quoted(text)} is neither a digest, a digest prefix (at least 4 hex digits), a tag "
            f"nor a reference such as name:tag or name@sha256:…: {error}"
        ) from None
    if not pasted.repositories:
        raise CompareError(references.unknown(pasted))
    if pasted.digest is not None:  # as `docker pull name:tag@digest`: the digest decides
        if at is not None:
            raise CompareError(
                f"{quoted(text)} names a digest, one build at any time: a date goes with a tag"
            )
        found = _with_digest(pasted, pasted.repositories) or _with_digest(pasted, pasted.wider)
        if not found:
            raise CompareError(
                f"{pasted.describe(pasted.exact + pasted.near)} has no recorded build {pasted.digest}"
            )
        if len(found) > 1:
            raise CompareError(f"{pasted.digest} is recorded in {len(found)} repositories: pick one", found)
        return found[0]
    if pasted.tag is None:
        raise CompareError(
            f"{quoted(text)} names a repository ({pasted.describe()}), not a build: add :tag or @digest"
        )
    if pasted.wider and not Tag.objects.filter(repository__in=pasted.repositories, name=pasted.tag).exists():
        return _by_tag(text, pasted.tag, pasted.wider, at)
    return _by_tag(text, pasted.tag, pasted.repositories, at)


def _with_digest(pasted: references.Pasted, repositories: list[Repository]) -> list[Build]:
    if not repositories:
        return []
    return list(_builds().filter(repository__in=repositories, digest=pasted.digest)[:MAX_CANDIDATES])


def _by_tag(text: str, name: str, within: list[Repository] | None, at: datetime | None) -> Build:
    """The build the tag `name` points to (or held at `at`) in the one repository of `within`
    that has it; every watched repository when `within` is None. A version of that name stands
    in for a missing tag (its newest build)."""
    repositories = within if within is not None else list(Repository.objects.select_related("registry"))
    tags = list(
        Tag.objects.filter(repository__in=[repository.pk for repository in repositories], name=name)
        .select_related("repository__registry")
        .order_by("repository__registry__host", "repository__name")[: MAX_CANDIDATES + 1]
    )
    if not tags:
        return _by_version(text, name, repositories, at)
    if len(tags) > 1:
        where = ", ".join(tag.repository.reference for tag in tags[:MAX_CANDIDATES])
        candidates = []
        for tag in tags[:MAX_CANDIDATES]:
            try:
                candidates.append(_held_by(tag, at))
            except CompareError:
                continue
        raise CompareError(
            f"the tag {quoted(name)} is in {len(tags)} watched repositories ({where}): "
            "say which, as repository:tag, or pick the build",
            candidates,
        )
    return _held_by(tags[0], at)


def _held_by(tag: Tag, at: datetime | None) -> Build:
    named = f"{tag.repository.reference}:{tag.name}"
    if at is None:
        found = _builds().tagged(tag.name, [tag.repository_id]).first()
        if found is None:
            raise CompareError(f"{named} points to no build now (deleted or never seen)")
        return found
    events = TagEvent.objects.filter(tag=tag).select_related("build__repository__registry", "build__version")
    event = events.filter(detected_at__lte=at).order_by("-detected_at", "-pk").first()
    if event is None:
        first = events.order_by("detected_at", "pk").first()
        since = f"first seen {format_time(first.detected_at)}" if first else "never seen"
        raise CompareError(f"{named} is not known at {format_time(at)}: tagledger has it from its {since}")
    if event.build is None:
        raise CompareError(
            f"{named} pointed to no build at {format_time(at)}: {event.kind} {format_time(event.detected_at)}"
        )
    after = events.filter(detected_at__gt=at).order_by("detected_at", "pk").first()
    if (
        after is not None
        and after.not_before is not None
        and after.not_before < at
        and after.build_id != event.build_id
    ):
        # The poll before the change saw the old build, the one after it the new: in between,
        # tagledger cannot say which the tag held.
        raise CompareError(
            f"{named} changed between {format_time(after.not_before)} and {format_time(after.detected_at)}: "
            f"at {format_time(at)} it held one of these two builds",
            [event.build, *([after.build] if after.build else [])],
        )
    return event.build


def _by_version(text: str, name: str, repositories: list[Repository], at: datetime | None) -> Build:
    versions = list(
        Version.objects.filter(
            repository__in=[repository.pk for repository in repositories], name=name, variant=""
        ).select_related("repository__registry")[: MAX_CANDIDATES + 1]
    )
    where = (
        "in " + ", ".join(repository.reference for repository in repositories)
        if len(repositories) < 4
        else "in any watched repository"
    )
    if not versions:
        raise CompareError(f"no tag or version {quoted(name)} {where}")
    if at is not None:
        raise CompareError(f"{quoted(name)} is a version here, not a tag: a date goes with a tag")
    newest = [
        _builds().filter(version=version).order_by(*NEWEST_FIRST).first()
        for version in versions[:MAX_CANDIDATES]
    ]
    newest = [build for build in newest if build is not None]
    if len(versions) == 1 and newest:
        return newest[0]
    if not newest:
        raise CompareError(f"the version {quoted(name)} has no recorded build")
    raise CompareError(
        f"the version {quoted(name)} is in {len(versions)} watched repositories: say which, or pick one",
        newest,
    )


def _ambiguous(text: str, found: list[Build]) -> str:
    shown = found[:MAX_CANDIDATES]
    listed = "; ".join(f"{build.digest} in {build.repository.reference}" for build in shown)
    more = " (and more)" if len(found) > MAX_CANDIDATES else ""
    return f"{quoted(text)} matches {len(shown)} builds{more}: {listed}. Give more of the digest"


# --- two sides, as a form or the API gives them -------------------------------------------------


@dataclass
class Side:
    """One side of a comparison as asked: the text, an optional instant for a tag, and the build
    it names or why it names none (with the builds it could mean)."""

    name: str  # `a` or `b`
    text: str
    at_text: str = ""
    build: Build | None = None
    error: str = ""
    candidates: list[Build] = field(default_factory=list)

    @property
    def choices(self) -> list[tuple[str, Build]]:
        return [(choice(build), build) for build in self.candidates]

    @property
    def bare(self) -> bool:
        """A tag or version alone, which another side's repository may narrow."""
        text = self.text.strip()
        return references.is_bare_tag(text) and not _names_repository(text)


def sides(a: str, b: str, *, a_at: str = "", b_at: str = "", repository: str = "") -> tuple[Side, Side]:
    """Both sides resolved: a bare tag or version is looked for in `repository` (a name as people
    paste it), else in the other side's repository, else in the one watched repository that has it."""
    pair = Side("a", a[:MAX_TEXT], a_at[:MAX_TEXT]), Side("b", b[:MAX_TEXT], b_at[:MAX_TEXT])
    within = None
    if repository.strip():
        try:
            within = _repositories(repository)
        except CompareError as error:
            for side in pair:
                side.error = f"repository: {error}"
            return pair
    # Named sides first: their repository then narrows a bare tag on the other side. A bare tag
    # several repositories have is asked again once the other bare side has found its build
    # (`a=3.14.4&b=3.14.5`: only one repository has 3.14.5).
    for side in [*sorted(pair, key=lambda side: side.bare), *pair]:
        if not side.text.strip() or side.build or (side.error and not side.bare):
            continue
        other = pair[1] if side is pair[0] else pair[0]
        context = within
        if context is None and side.bare and other.build:
            context = [other.build.repository]
        elif side.error:
            continue  # the second round: nothing new to narrow it with
        try:
            side.build = resolve(side.text, at=_instant(side.at_text), within=context)
            side.error, side.candidates = "", []
        except CompareError as error:
            side.error = str(error)
            side.candidates = error.candidates
    return pair


def _repositories(text: str) -> list[Repository]:
    try:
        pasted = references.read(params.bounded(text, max_length=MAX_TEXT, what="the repository"))
    except (references.InvalidReference, params.InvalidParameter) as error:
        raise CompareError(f"{quoted(text)} is not a repository name: {error}") from None
    if not pasted.repositories:
        raise CompareError(references.unknown(pasted))
    if len(pasted.repositories) > 1:
        raise CompareError(f"{quoted(text)} may name {pasted.describe()}: give more of the name")
    return pasted.repositories


def _instant(text: str) -> datetime | None:
    """A side's `at`: an ISO date and time (UTC unless it says), or a date: the end of that day, UTC."""
    text = text.strip()
    if not text:
        return None
    try:
        if len(text) == len("2026-11-26"):
            day = params.day(text)
            return datetime.combine(day, time.max, tzinfo=UTC)
        return params.instant(text)
    except params.InvalidParameter as error:
        raise CompareError(f"at: {error}") from None


# --- the diff -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyChange:
    """One key of env, labels or annotations: `before` None when added, `after` None when removed."""

    key: str
    before: str | None
    after: str | None

    @property
    def change(self) -> KeyChangeKind:
        if self.before is None:
            return "added"
        return "removed" if self.after is None else "changed"

    def as_dict(self) -> dict:
        return {"key": self.key, "change": self.change, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class ValueChange:
    """One config field that differs (entrypoint, cmd, user, ...): text or a list of text."""

    field: str
    before: str | list[str]
    after: str | list[str]

    @property
    def before_text(self) -> str:
        return _text(self.before)

    @property
    def after_text(self) -> str:
        return _text(self.after)

    def as_dict(self) -> dict:
        return {"field": self.field, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class LayerChange:
    """A layer in the aligned order of both builds: in both, only in the newer, or only in the older."""

    digest: str
    size: int
    media_type: str
    status: LayerStatus

    def as_dict(self) -> dict:
        return {
            "digest": self.digest,
            "size": self.size,
            "media_type": self.media_type,
            "status": self.status,
        }


@dataclass(frozen=True)
class HistoryStep:
    """A build step (`created_by`) only one of the two images has."""

    created_by: str
    comment: str
    empty_layer: bool
    status: Literal["added", "removed"]

    def as_dict(self) -> dict:
        return {
            "created_by": self.created_by,
            "comment": self.comment,
            "empty_layer": self.empty_layer,
            "status": self.status,
        }


@dataclass(frozen=True)
class PlatformDiff:
    """One os/arch/variant: present in one build only, or in both, and then what differs."""

    platform: str
    status: PlatformStatus
    a: Platform | None
    b: Platform | None
    layers: list[LayerChange] = field(default_factory=list)
    config: list[ValueChange] = field(default_factory=list)
    env: list[KeyChange] = field(default_factory=list)
    labels: list[KeyChange] = field(default_factory=list)
    history: list[HistoryStep] = field(default_factory=list)

    @property
    def image_id_a(self) -> str:
        return image_id(self.a.config_digest) if self.a else ""

    @property
    def image_id_b(self) -> str:
        return image_id(self.b.config_digest) if self.b else ""

    @property
    def image_id_changed(self) -> bool:
        return bool(self.a and self.b and self.a.config_digest != self.b.config_digest)

    @property
    def size_a(self) -> int | None:
        return self.a.size if self.a else None

    @property
    def size_b(self) -> int | None:
        return self.b.size if self.b else None

    @property
    def size_delta(self) -> int:
        return (self.size_b or 0) - (self.size_a or 0)

    @property
    def size_growth(self) -> int:
        """abs(size_delta), for a template that prints the sign itself."""
        return abs(self.size_delta)

    def layer_total(self, status: LayerStatus) -> int:
        return sum(layer.size for layer in self.layers if layer.status == status)

    @property
    def layers_shared(self) -> list[LayerChange]:
        return [layer for layer in self.layers if layer.status == "shared"]

    @property
    def layers_added(self) -> list[LayerChange]:
        return [layer for layer in self.layers if layer.status == "added"]

    @property
    def layers_removed(self) -> list[LayerChange]:
        return [layer for layer in self.layers if layer.status == "removed"]

    @property
    def added_size(self) -> int:
        """What pulling the newer build costs when the older one is already there."""
        return self.layer_total("added")

    @property
    def removed_size(self) -> int:
        return self.layer_total("removed")

    @property
    def shared_size(self) -> int:
        return self.layer_total("shared")

    @property
    def has_details(self) -> bool:
        return bool(self.config or self.env or self.labels or self.history) or any(
            layer.status != "shared" for layer in self.layers
        )

    def as_dict(self) -> dict:
        return {
            "platform": self.platform,
            "status": self.status,
            "a": _platform_dict(self.a),
            "b": _platform_dict(self.b),
            "image_id_changed": self.image_id_changed,
            "size_delta": self.size_delta if self.a and self.b else None,
            "layers": {
                "shared": len(self.layers_shared),
                "added": len(self.layers_added),
                "removed": len(self.layers_removed),
                "shared_size": self.shared_size,
                "added_size": self.added_size,
                "removed_size": self.removed_size,
                "rows": [layer.as_dict() for layer in self.layers],
            },
            "config": [change.as_dict() for change in self.config],
            "env": [change.as_dict() for change in self.env],
            "labels": [change.as_dict() for change in self.labels],
            "history": [step.as_dict() for step in self.history],
        }


@dataclass(frozen=True)
class BuildSummary:
    """One side of a comparison: the build and the tags it held."""

    build: Build
    held: list[HeldTag]

    @property
    def reference(self) -> str:
        return choice(self.build)

    @property
    def size(self) -> int:
        """Config plus compressed layers, over every recorded platform."""
        return sum(platform.size for platform in self.build.platforms.all())

    @property
    def platforms(self) -> list[str]:
        return [str(platform) for platform in self.build.platforms.all()]

    def as_dict(self) -> dict:
        build = self.build
        return {
            "id": build.pk,
            "repository": build.repository.reference,
            "reference": self.reference,
            "digest": build.digest,
            "media_type": build.media_type,
            "version": str(build.version) if build.version else None,
            "created": _iso(build.created),
            "first_seen_at": _iso(build.first_seen_at),
            "built_at": _iso(build.built_at),
            "size": self.size,
            "platforms": self.platforms,
            "tags": [
                {"tag": held.tag, "from": _iso(held.since), "until": _iso(held.until)} for held in self.held
            ],
        }


@dataclass(frozen=True)
class Comparison:
    """From build `a` to build `b`: summary first, then platforms, then annotations."""

    a: BuildSummary
    b: BuildSummary
    platforms: list[PlatformDiff]
    annotations: list[KeyChange]
    # Packages, signatures and provenance (history.supply_chain), from stored attachments.
    supply: SupplyComparison

    @property
    def same(self) -> bool:
        """The same digest: the same bytes, so nothing can differ (maybe in two repositories)."""
        return self.a.build.digest == self.b.build.digest

    def _with(self, status: PlatformStatus) -> list[PlatformDiff]:
        return [diff for diff in self.platforms if diff.status == status]

    @property
    def added(self) -> list[PlatformDiff]:
        return self._with("added")

    @property
    def removed(self) -> list[PlatformDiff]:
        return self._with("removed")

    @property
    def changed(self) -> list[PlatformDiff]:
        return self._with("changed")

    @property
    def unchanged(self) -> list[PlatformDiff]:
        return self._with("unchanged")

    @property
    def size_delta(self) -> int:
        return self.b.size - self.a.size

    @property
    def size_growth(self) -> int:
        return abs(self.size_delta)

    def as_dict(self) -> dict:
        return {
            "same": self.same,
            "a": self.a.as_dict(),
            "b": self.b.as_dict(),
            "size_delta": self.size_delta,
            "sizes": [
                {
                    "platform": diff.platform,
                    "a": diff.size_a,
                    "b": diff.size_b,
                    "delta": diff.size_delta,  # a platform only one build has counts in full
                }
                for diff in self.platforms
            ],
            "platforms_added": [diff.platform for diff in self.added],
            "platforms_removed": [diff.platform for diff in self.removed],
            "platforms_changed": [diff.platform for diff in self.changed],
            "platforms_unchanged": [diff.platform for diff in self.unchanged],
            "platforms": [diff.as_dict() for diff in self.platforms],
            "annotations": [change.as_dict() for change in self.annotations],
            **self.supply.as_dict(),
        }


def compare(a: Build, b: Build) -> Comparison:
    """From `a` to `b`, in two queries beyond what the builds already hold (platforms, held tags),
    and the supply chain's few (history.supply_chain.compare)."""
    prefetch_related_objects(
        [a, b], "repository__registry", "version", Prefetch("platforms", queryset=PLATFORM_ORDER)
    )
    held = TagEvent.objects.held([a, b])
    before, after = _by_platform(a), _by_platform(b)
    platforms = [
        _platform_diff(key, before.get(key), after.get(key)) for key in sorted(before.keys() | after.keys())
    ]
    return Comparison(
        BuildSummary(a, held[a.pk]),
        BuildSummary(b, held[b.pk]),
        platforms,
        _key_changes(a.annotations or {}, b.annotations or {}, sort=True),
        supply_chain.compare(a, b, before, after),
    )


def _by_platform(build: Build) -> dict[str, Platform]:
    """Platforms keyed by os/arch/variant; a repeated key (Windows os.version) gets `#2`, `#3`."""
    keyed: dict[str, Platform] = {}
    for platform in build.platforms.all():
        key, number = str(platform), 1
        while key in keyed:
            number += 1
            key = f"{platform} #{number}"
        keyed[key] = platform
    return keyed


def _platform_diff(key: str, a: Platform | None, b: Platform | None) -> PlatformDiff:
    if a is None:
        return PlatformDiff(key, "added", None, b)
    if b is None:
        return PlatformDiff(key, "removed", a, None)
    if a.digest == b.digest:
        return PlatformDiff(key, "unchanged", a, b, layers=_layers(a.layers, b.layers))
    config_a, config_b = a.config or {}, b.config or {}
    return PlatformDiff(
        key,
        "changed",
        a,
        b,
        layers=_layers(a.layers, b.layers),
        config=_config_changes(a, b),
        env=_key_changes(_env(config_a.get("env")), _env(config_b.get("env")), sort=False),
        labels=_key_changes(_mapping(config_a.get("labels")), _mapping(config_b.get("labels")), sort=True),
        history=_history(config_a.get("history"), config_b.get("history")),
    )


def _layers(before: list, after: list) -> list[LayerChange]:
    """Both layer lists aligned by digest, in order: what stays, what goes, what comes."""
    before, after = _layer_rows(before), _layer_rows(after)
    matcher = difflib.SequenceMatcher(
        a=[row["digest"] for row in before], b=[row["digest"] for row in after], autojunk=False
    )
    rows: list[LayerChange] = []
    for operation, i1, i2, j1, j2 in matcher.get_opcodes():
        if operation == "equal":
            rows += [_layer(row, "shared") for row in after[j1:j2]]
        else:
            rows += [_layer(row, "removed") for row in before[i1:i2]]
            rows += [_layer(row, "added") for row in after[j1:j2]]
    return rows


def _layer_rows(layers) -> list[dict]:
    return [layer for layer in (layers or []) if isinstance(layer, dict)]


def _layer(row: dict, status: LayerStatus) -> LayerChange:
    size = row.get("size")
    size = size if isinstance(size, int) else 0
    return LayerChange(str(row.get("digest", "")), size, str(row.get("media_type", "")), status)


_CONFIG_FIELDS = [
    ("entrypoint", "entrypoint"),
    ("cmd", "cmd"),
    ("user", "user"),
    ("workdir", "workdir"),
    ("exposed_ports", "exposed ports"),
    ("created", "created"),
]


def _config_changes(a: Platform, b: Platform) -> list[ValueChange]:
    config_a, config_b = a.config or {}, b.config or {}
    changes = []
    if a.media_type != b.media_type:
        changes.append(ValueChange("manifest media type", a.media_type, b.media_type))
    for key, label in _CONFIG_FIELDS:
        before, after = _value(config_a.get(key)), _value(config_b.get(key))
        if key == "exposed_ports" and isinstance(before, list) and isinstance(after, list):
            before, after = sorted(before), sorted(after)
        if before != after:
            changes.append(ValueChange(label, before, after))
    return changes


def _value(value) -> str | list[str]:
    if isinstance(value, list):
        return [str(item) for item in value]
    return "" if value is None else str(value)


def _env(items) -> dict[str, str]:
    """`KEY=value` entries as a mapping, in order; a later duplicate wins, as it does in a container."""
    env: dict[str, str] = {}
    for item in items if isinstance(items, list) else []:
        key, _, value = str(item).partition("=")
        env.pop(key, None)
        env[key] = value
    return env


def _mapping(value) -> dict[str, str]:
    return {str(key): str(item) for key, item in value.items()} if isinstance(value, dict) else {}


def _key_changes(before: dict, after: dict, *, sort: bool) -> list[KeyChange]:
    keys = list(before) + [key for key in after if key not in before]
    if sort:
        keys.sort()
    return [
        KeyChange(key, before.get(key), after.get(key)) for key in keys if before.get(key) != after.get(key)
    ]


def _history(before, after) -> list[HistoryStep]:
    """Steps only one image has, by what created them (timestamps change with every rebuild)."""

    def steps(history) -> list[tuple[str, str, bool]]:
        return [
            (str(step.get("created_by", "")), str(step.get("comment", "")), bool(step.get("empty_layer")))
            for step in (history if isinstance(history, list) else [])
            if isinstance(step, dict)
        ]

    old, new = steps(before), steps(after)
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    changes: list[HistoryStep] = []
    for operation, i1, i2, j1, j2 in matcher.get_opcodes():
        if operation != "equal":
            changes += [HistoryStep(*step, status="removed") for step in old[i1:i2]]
            changes += [HistoryStep(*step, status="added") for step in new[j1:j2]]
    return changes


def _text(value: str | list[str]) -> str:
    """A list as the JSON a Dockerfile's exec form shows; text as itself."""
    return json.dumps(value) if isinstance(value, list) else value


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _platform_dict(platform: Platform | None) -> dict | None:
    if platform is None:
        return None
    return {
        "digest": platform.digest,
        "media_type": platform.media_type,
        "config_digest": platform.config_digest,
        "image_id": image_id(platform.config_digest),
        "size": platform.size,
        "layers": len(platform.layers or []),
        "created": _iso(platform.created),
    }


# --- the picker: repository → version → build, for a person who has nothing to paste --------------

PICKER_VERSIONS = 100  # newest first; a filter box narrows a repository of thousands
PICKER_BUILDS = 50


@dataclass
class Picker:
    """One side's choices, each list filled once the step before it is chosen."""

    repositories: list[Repository]
    repository: Repository | None = None
    versions: list[tuple[int, str]] = field(default_factory=list)  # (id, name[-variant]), newest first
    more_versions: int = 0  # how many the filter or the bound left out
    version_id: int | None = None
    builds: list[Build] = field(default_factory=list)
    filter: str = ""  # what the version list was narrowed to

    @property
    def build_choices(self) -> list[tuple[str, Build]]:
        return [(choice(build), build) for build in self.builds]


def picker(repository_id: int | None, version_id: int | None, version_filter: str = "") -> Picker:
    """What to choose from: every repository; a chosen one's versions, newest version first (by
    the tag grammar's order, names only: cheap for thousands); a chosen version's builds, newest first."""
    repositories = list(Repository.objects.select_related("registry").order_by("registry__host", "name"))
    chosen = next((repository for repository in repositories if repository.pk == repository_id), None)
    found = Picker(repositories, chosen, filter=version_filter)
    if chosen is None:
        return found
    rows = Version.objects.filter(repository=chosen)
    if version_filter:
        rows = rows.filter(name__icontains=version_filter)
    named = [
        (pk, f"{name}-{variant}" if variant else name, name)
        for pk, name, variant in rows.values_list("pk", "name", "variant")
    ]
    named.sort(key=lambda row: (version_key(row[2]), row[1]), reverse=True)
    found.versions = [(pk, label) for pk, label, _ in named[:PICKER_VERSIONS]]
    found.more_versions = max(0, len(named) - PICKER_VERSIONS)
    if version_id is not None and any(pk == version_id for pk, _, _ in named):
        found.version_id = version_id
        found.builds = list(_builds().filter(version_id=version_id).order_by(*NEWEST_FIRST)[:PICKER_BUILDS])
    return found
