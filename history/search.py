"""Find builds by digest, digest fragment, image ID or reference, and repositories, tags, versions by name.

One query language for the CLI (`manage.py lookup`), the search page and the JSON API:

- `sha256:<64 hex>` or bare 64 hex: a full digest, matched exactly;
- 4 to 63 hex, bare or after `sha256:`: a prefix of a digest (what `docker images` shows as
  IMAGE ID is the first 12 hex of a config digest); 8 or more bare hex that start no digest
  are then looked for anywhere inside one, since people paste a piece from the middle of a
  log line. After `sha256:` a fragment is always a prefix: the algorithm anchors it;
- a whole layer digest that is no build's, platform's or config's: the builds one of whose
  platforms contains that layer (history.digests.Layer);
- `name:tag@digest` or `name@digest`: that digest in that repository (the tag is ignored, as
  `docker pull` ignores it); `name:tag`: the build the tag points to now. The name is read by
  history.references: with or without registry host and `library/`; a name several watched
  repositories end in finds the builds of each;
- anything else that could be a repository, tag or version name: a name search.

Digests are read by history.digests, the one query language compare and the changelog read them
with too. Every digest is compared as Build.digest ("index": the build's own digest, an index for
multi-platform images), Platform.digest ("platform"), Platform.config_digest ("config") and
Attestation.digest ("attestation": a BuildKit attestation manifest, found as what it is and never
as a platform image; not by an infix, as no trigram index holds them).
"""

import re
from dataclasses import dataclass, field
from typing import Literal

from django.db.models import Case, Count, IntegerField, Prefetch, Q, Value, When

from catalog.models import Repository, Tag, Version
from catalog.oci.reference import InvalidReference, parse
from catalog.text import quoted

from . import digests, params, references
from .digests import ATTESTATION, BUILD, PLATFORM, Exact, Itself, Layer, image_id
from .keyset import Cursor, RowBefore
from .models import Attestation, Build, HeldTag, Platform, TagEvent, TagState

MAX_QUERY_LENGTH = 1024  # longer than any reference; hostile input stays cheap
PLATFORM_ORDER = Platform.objects.order_by("os", "architecture", "variant", "pk")
# What a match shows of its platforms: digests and names, not layer lists and configs (a
# kilobyte or more of JSON each, fetched and decoded for nothing).
PLATFORM_DIGESTS = PLATFORM_ORDER.defer("layers", "config")

Kind = Literal["fragment", "digest", "reference", "name"]
Matched = Literal["index", "platform", "config", "attestation", "layer"]

# Characters of references, tags and versions; anything else cannot match a name anyway.
_NAME_CHARS_RE = re.compile(r"[A-Za-z0-9._/:@-]+")


EMPTY = "the query is empty: give a digest, a digest fragment, a reference or a name"


class InvalidQuery(ValueError):
    """The query is neither a digest, a digest fragment, a reference nor a name; the text says why."""


@dataclass(frozen=True)
class Match:
    """One build a query found, which of its digests matched, and the tags it held."""

    build: Build
    matched: Matched
    digest: str
    platform: Platform | None = None  # the platform whose digest or config matched; never an attestation's
    held: list[HeldTag] = field(default_factory=list)
    layer_of: list[Platform] = field(default_factory=list)  # "layer": the platforms that contain it

    @property
    def image_id(self) -> str:
        return image_id(self.platform.config_digest) if self.platform else ""


@dataclass(frozen=True)
class TagHit:
    """A tag whose name matched, and where it points: `build` None when no poll has seen it point."""

    tag: Tag
    build: Build | None
    present: bool  # False: deleted; `build` is where it pointed last


@dataclass(frozen=True)
class NameResults:
    """Repositories, tags (with their current build) and versions whose names contain the query."""

    repositories: list[Repository] = field(default_factory=list)
    tags: list[TagHit] = field(default_factory=list)
    versions: list[Version] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.repositories or self.tags or self.versions)


@dataclass(frozen=True)
class LookupResult:
    query: str
    kind: Kind
    matches: list[Match] = field(default_factory=list)
    names: NameResults = field(default_factory=NameResults)
    truncated: bool = False  # more matched than the limit; the newest are kept
    note: str = ""  # how a reference's name was read, when that was not plain (several repositories, none)

    @property
    def found(self) -> bool:
        return bool(self.matches or self.names)

    @property
    def next_cursor(self) -> Cursor | None:
        """Where older matching builds continue (`lookup(cursor=)`); None: none are left."""
        last = self.matches[-1].build if self.truncated else None
        return Cursor(last.first_seen_at, last.pk) if last else None


def lookup(query: str, *, limit: int = 50, cursor: Cursor | None = None) -> LookupResult:
    """Everything `query` names, newest build first; raises InvalidQuery for what names nothing.

    `cursor` (a result's `next_cursor`) continues with the builds older than those it listed."""
    text = _clean(query)
    try:
        fragment = digests.parse(text)
    except digests.InvalidDigest as error:
        raise InvalidQuery(str(error)) from None
    if fragment is not None:
        return _find_digest(text, fragment, limit=limit, cursor=cursor)
    if "@" in text or ":" in text.rpartition("/")[2]:
        pasted = _reference(text)
        if pasted.digest is not None or pasted.tag is not None:
            return _find_reference(text, pasted, limit=limit, cursor=cursor)
    return LookupResult(text, "name", names=search_names(text, limit=limit))


def search_names(text: str, *, limit: int = 50) -> NameResults:
    """Repositories, tags and versions whose name contains `text` (exact names first)."""
    text = _clean(text)
    if not _NAME_CHARS_RE.fullmatch(text):
        raise InvalidQuery(
            f"{quoted(text)} is not a digest, digest fragment, reference or name "
            "(names use letters, digits and . _ / : @ -)"
        )
    repository_q = Q(name__icontains=text)
    exact_repository = None
    try:
        reference = parse(text)
    except InvalidReference:
        pass  # a tag such as `Latest` is no reference, and need not be one
    else:
        exact_repository = Q(registry__host=reference.registry, name=reference.repository)
        repository_q |= exact_repository
    repositories = (
        Repository.objects.filter(repository_q)
        .select_related("registry")
        .annotate(exact=_first_if(exact_repository or Q(name=text)))
        .order_by("exact", "registry__host", "name")[:limit]
    )
    tags = (
        Tag.objects.filter(name__icontains=text)
        .select_related("repository__registry", "state__build")
        .annotate(exact=_first_if(Q(name=text)))
        .order_by("exact", "repository__registry__host", "repository__name", "name")[:limit]
    )
    versions = (
        Version.objects.filter(name__icontains=text)
        .select_related("repository__registry")
        .annotate(exact=_first_if(Q(name=text)), build_count=Count("builds"))
        .order_by("exact", "repository__registry__host", "repository__name", "name")[:limit]
    )
    return NameResults(list(repositories), [_tag_hit(tag) for tag in tags], list(versions))


# --- digests ------------------------------------------------------------------------------------


def _find_digest(text: str, fragment: digests.Fragment, *, limit: int, cursor: Cursor | None) -> LookupResult:
    matcher = fragment.matcher()
    found = _collect(text, matcher.kind, _builds(matcher), matcher, limit=limit, cursor=cursor)
    if not found.matches and type(matcher) is Exact:
        # A whole digest that names no manifest or config: a layer, as the build page lists them.
        return _find_layer(text, Layer(matcher.value), limit=limit, cursor=cursor)
    infix = fragment.infix()
    if found.matches or infix is None:
        return found
    if cursor is not None and _builds(matcher).exists():
        return found  # the prefix's pages are done; its first page did not fall back to infixes
    # Bare hex was a prefix first: image IDs and short digests start a digest, and an index finds
    # them in a millisecond. Only a fragment that starts none is looked for inside digests, which
    # reads a trigram index (pg_trgm on PostgreSQL, FTS5 on SQLite; without FTS5, every digest).
    return _collect(text, infix.kind, _builds(infix), infix, limit=limit, cursor=cursor)


def _builds(matcher: Exact):
    """The builds one of whose digests `matcher` matches. The matching ids are asked first, in a
    query of their own: that is what Exact.build_ids is for (see there)."""
    return Build.objects.filter(pk__in=matcher.build_ids(*digests.EVERYWHERE))


def _collect(
    text: str, kind: Kind, builds, matcher: Exact, *, limit: int, cursor: Cursor | None
) -> LookupResult:
    """The newest `limit` of `builds` older than `cursor`, each with what `matcher` matched and
    the tags it held."""
    if cursor is not None:
        builds = builds.filter(RowBefore(cursor, ("first_seen_at", "pk")))
    found = list(
        builds.select_related("repository__registry", "version")
        .prefetch_related(Prefetch("platforms", queryset=PLATFORM_DIGESTS))
        .order_by("-first_seen_at", "-pk")[: limit + 1]
    )
    found, truncated = found[:limit], len(found) > limit
    held = TagEvent.objects.held(found)
    matches = [_match(build, matcher, held[build.pk]) for build in found]
    unmatched = [build for build, match in zip(found, matches, strict=True) if match is None]
    attested = _attestation_matches(unmatched, matcher)
    matches = [
        match or Match(build, "attestation", attested[build.pk], held=held[build.pk])
        for build, match in zip(found, matches, strict=True)
    ]
    return LookupResult(text, kind, matches=matches, truncated=truncated)


def _match(build: Build, matcher: Exact, held: list[HeldTag]) -> Match | None:
    """What matched in the build or its platforms; None: an attestation did (_attestation_matches)."""
    if matcher(build.digest):
        return Match(build, "index", build.digest, held=held)
    platforms = list(build.platforms.all())
    for platform in platforms:
        if matcher(platform.digest):
            return Match(build, "platform", platform.digest, platform, held)
    for platform in platforms:
        if matcher(platform.config_digest):
            return Match(build, "config", platform.config_digest, platform, held)
    return None


def _attestation_matches(builds: list[Build], matcher: Exact) -> dict[int, str]:
    """{build id: its attestation digest that matched}, in one query, and only when a build was
    found by nothing else: a lookup by a build or platform digest never asks."""
    if not builds:
        return {}
    matched = {}
    for build_id, digest in (
        Attestation.objects.filter(build__in=builds).order_by("digest").values_list("build_id", "digest")
    ):
        if matcher(digest):
            matched.setdefault(build_id, digest)
    if missing := {build.pk for build in builds} - matched.keys():
        raise AssertionError(f"builds {missing} were found but match nothing")  # pragma: no cover
    return matched


# --- references ---------------------------------------------------------------------------------


def _reference(text: str) -> references.Pasted:
    try:
        return references.read(text)
    except references.InvalidReference as error:
        raise InvalidQuery(f"{quoted(text)} is not a valid reference: {error}") from None


def _find_reference(
    text: str, pasted: references.Pasted, *, limit: int, cursor: Cursor | None
) -> LookupResult:
    """The builds the reference names in the repository it names exactly; when that one is not
    watched or has none, in the watched repositories whose names end in it (all of them)."""
    if not pasted.repositories:
        return LookupResult(text, "reference", note=references.unknown(pasted))
    searched = pasted.repositories
    builds, matcher = _named_by(pasted, searched)
    # Decided on all the builds, not a page's: every page reads the same repositories.
    if pasted.wider and not builds.exists():
        searched = pasted.wider
        builds, matcher = _named_by(pasted, searched)
    found = _collect(text, "reference", builds, matcher, limit=limit, cursor=cursor)
    note = ""
    if searched is pasted.wider:
        note = f"{pasted.describe(pasted.exact)} has none; these are from {pasted.describe(searched)}"
    elif len(searched) > 1:
        note = f"{quoted(pasted.text)} may name {pasted.describe(searched)}: the builds of each are listed"
    return LookupResult(text, "reference", found.matches, truncated=found.truncated, note=note)


def _named_by(pasted: references.Pasted, repositories: list[Repository]):
    """(The builds in `repositories` the reference's digest or tag names, what matched in each.)"""
    in_repositories = Build.objects.filter(repository__in=[repository.pk for repository in repositories])
    if pasted.digest is not None:
        # As `docker pull name:tag@digest` does, the digest decides and the tag is ignored.
        matcher = Exact(pasted.digest)
        return in_repositories.filter(pk__in=matcher.build_ids(BUILD, PLATFORM, ATTESTATION)), matcher
    return in_repositories.tagged(pasted.tag, repositories), Itself()


def _find_layer(text: str, layer: Layer, *, limit: int, cursor: Cursor | None) -> LookupResult:
    """The builds with a platform that contains `layer`, each with those platforms."""
    builds = Build.objects.filter(pk__in=layer.build_ids())
    if cursor is not None:
        builds = builds.filter(RowBefore(cursor, ("first_seen_at", "pk")))
    found = list(
        builds.select_related("repository__registry", "version")
        .prefetch_related(Prefetch("platforms", queryset=PLATFORM_ORDER.defer("config")))
        .order_by("-first_seen_at", "-pk")[: limit + 1]
    )
    found, truncated = found[:limit], len(found) > limit
    held = TagEvent.objects.held(found)
    matches = []
    for build in found:
        containing = [platform for platform in build.platforms.all() if layer(platform.layers)]
        first = containing[0] if containing else None
        matches.append(Match(build, "layer", layer.value, first, held[build.pk], containing))
    return LookupResult(text, "digest", matches=matches, truncated=truncated)


# --- helpers ------------------------------------------------------------------------------------


def _clean(query: str) -> str:
    try:
        return params.bounded(query, max_length=MAX_QUERY_LENGTH, what="the query", empty=EMPTY)
    except params.InvalidParameter as invalid:
        raise InvalidQuery(str(invalid)) from None


def _first_if(condition: Q) -> Case:
    """0 for rows meeting `condition`, else 1: exact names sort before names that only contain it."""
    return Case(When(condition, then=Value(0)), default=Value(1), output_field=IntegerField())


def _tag_hit(tag: Tag) -> TagHit:
    try:
        state = tag.state  # select_related filled it, or there is none
    except TagState.DoesNotExist:
        return TagHit(tag, None, False)
    return TagHit(tag, state.build, state.present)
