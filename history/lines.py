"""A repository as its page shows it: lines of versions, one row per version and variant, each at
its current build with the tags on it; the tags no rule explains; and every tag, a page at a time.

The readers of the repository page, `/api/v1/repositories/{id}/versions` and `…/tags`.

A large repository (docker.io/library/python: thousands of tags and versions) would make a page
nobody reads and a server that renders for seconds, so the page settles (finds the current build,
tags and build count of) only the rows it shows: the active versions of the newest line and of
the lines `latest` or a channel points into, or every line of a small repository, or what a filter
matched, up to ROW_BUDGET rows. Other lines are closed and inactive versions folded, both only
counted until opened (`?line=`, `&inactive=1`). Each query is bounded by what is shown, except two
that read one short row per version and per moving or not-understood tag.
"""

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property, lru_cache

from django.conf import settings
from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, OuterRef, Q, Subquery, Window
from django.db.models.functions import Coalesce
from django.utils import timezone

from catalog.models import Repository, Tag, Version
from catalog.tags import FLOATING_KINDS, Kind, classify, is_prerelease, version_key

from .changelog import InvalidFilter
from .keyset import Cursor, NameCursor, RowBefore
from .models import Build, TagEvent, TagState
from .versions import NEWEST_FIRST

# The order of a row's tags: `latest, 3.14.4, 3.14, 3`, then timestamp tags, then the rest.
KIND_ORDER = {
    Kind.LATEST: 0, Kind.FLOATING: 1, Kind.EXACT: 2, Kind.REVISION: 3,
    Kind.MINOR: 4, Kind.MAJOR: 5, Kind.TIMESTAMP: 6, Kind.OTHER: 7,
}  # fmt: skip
# Tags that name one version of one variant: `3.14.4-dev`, `v3.14.4-dev`, `3.14.4-r2-dev`.
NAMING_KINDS = [Kind.EXACT.value, Kind.REVISION.value]
# A repository with no more versions than this opens every line: folding ten rows helps nobody.
SMALL = 40
# Rows settled and shown at most; lines past it stay closed until opened (BENCHMARKS.md, Pages).
ROW_BUDGET = 100
OTHERS_SHOWN = 200  # not-understood tags listed; a filter finds the rest
TAG_PAGE, MAX_TAG_PAGE = 50, 200
MAX_QUERY = 128  # a tag name's length
_QUERY_RE = re.compile(r"[A-Za-z0-9_.-]+")

_version_key = lru_cache(maxsize=16384)(version_key)


def parse_query(raw: str) -> str:
    """The tag filter `?q=`: part of a tag or version name. Raises InvalidFilter for anything else."""
    text = (raw or "").strip()
    if text and (len(text) > MAX_QUERY or not _QUERY_RE.fullmatch(text)):
        raise InvalidFilter(
            {"q": f"filter by part of a tag name: up to {MAX_QUERY} letters, digits and _ . -"}
        )
    return text


# --- rows: one per version and variant ----------------------------------------------------------


@dataclass(eq=False, slots=True)  # 2 000 of them a page: slots make them a third cheaper
class Row:
    """One version of one variant; `build_count`, `build_id`, `digest` and `tags` once settled."""

    version_id: int
    name: str
    variant: str
    line: str
    inactive: bool
    channels: list[str] = field(default_factory=list)  # stable, lts, …: floating tags pointing in
    build_count: int | None = None
    build_id: int | None = None  # its current build (see `settle`)
    digest: str = ""
    tags: list[str] = field(default_factory=list)  # on the current build, in KIND_ORDER

    @property
    def label(self) -> str:
        """How tags spell it: `3.14.4-dev`; what a tag named like the version is named."""
        return f"{self.name}-{self.variant}" if self.variant else self.name


@dataclass
class Versions:
    """Every row of a repository, unsettled, in no order, and the rows `latest` points into."""

    rows: list[Row]
    latest: set[int]


def _versions(repository: Repository) -> Versions:
    """Two queries: the versions, and the repository's floating tags.

    Inactive is `history.models.with_activity`'s rule: no build for TAGLEDGER_INACTIVE_AFTER_DAYS
    and no floating tag pointing in (a tag naming the version itself not counting). Its per-version
    `Exists` of floating tags, and the build count and last build time over every build, cost
    60 ms for 2 000 versions (BENCHMARKS.md, Pages: repository); here the floating tags come from
    one scan, whether a version's newest build is recent is one index probe, and build counts
    wait for `settle`.
    """
    cutoff = timezone.now() - timedelta(days=settings.TAGLEDGER_INACTIVE_AFTER_DAYS)
    # Whether the newest build is recent: true, false, or null for no build at all (not inactive).
    # One probe of `build_version_newest` per version, and no datetimes to decode.
    newest_is_recent = (
        Build.objects.filter(version=OuterRef("pk"))
        .annotate(at=Coalesce("built_at", "first_seen_at"))
        .order_by(*NEWEST_FIRST)
        .annotate(recent=ExpressionWrapper(Q(at__gte=cutoff), output_field=BooleanField()))
        .values("recent")[:1]
    )
    found = (
        Version.objects.filter(repository=repository)
        .annotate(recent=Subquery(newest_is_recent, output_field=BooleanField()))
        .values_list("pk", "name", "variant", "line__name", "recent")
        .order_by()
    )
    rows = [Row(pk, name, variant, line, recent is False) for pk, name, variant, line, recent in found]
    by_id = {row.version_id: row for row in rows}
    floating, latest = set(), set()
    channels: dict[int, set[str]] = defaultdict(set)
    for tag, kind, version, version_id in (
        TagState.objects.present_in(repository)
        .filter(tag__kind__in=FLOATING_KINDS)
        .values_list("tag__name", "tag__kind", "tag__version", "build__version_id")
        .order_by()
    ):
        if version_id in by_id and version != by_id[version_id].name:
            floating.add(version_id)
            if kind == Kind.LATEST:
                latest.add(version_id)
            elif kind == Kind.FLOATING and (channel := classify(tag).channel):
                channels[version_id].add(channel)
    for row in rows:
        row.inactive = row.inactive and row.version_id not in floating
    for version_id, names in channels.items():
        by_id[version_id].channels = sorted(names)
    return Versions(rows, latest)


def not_understood(repository: Repository, *, q: str = "") -> tuple[list["TagRow"], int]:
    """Tags of kind `other`, by name as the tags list is, at most OTHERS_SHOWN; and how many there
    are. One query, which counts them all but reads only the ones shown."""
    found = TagState.objects.present_in(repository).filter(tag__kind=Kind.OTHER)
    if q:
        found = found.filter(tag__name__icontains=q)
    # The build's fields as subqueries, not a join: the window counts every row before the limit,
    # and a join looked up the build of all of them (1 900 lookups, 13 ms, for 200 shown).
    build = Build.objects.filter(pk=OuterRef("build_id"))
    shown = list(
        found.annotate(
            total=Window(Count("pk")),
            digest=Subquery(build.values("digest")[:1]),
            version_id=Subquery(build.values("version_id")[:1]),
        )
        .order_by("tag__name")
        .values_list("tag__name", "build_id", "digest", "version_id", "total")[:OTHERS_SHOWN]
    )
    tags = [
        TagRow(name, Kind.OTHER.value, "", "", digest, None, build_id, version_id)
        for name, build_id, digest, version_id, _ in shown
    ]
    return tags, shown[0][-1] if shown else 0


def in_page_order(rows: list[Row]) -> list[Row]:
    """Newest version first (`version_key`), the default variant first within a version."""
    rows.sort(key=lambda row: (row.variant != "", row.variant))
    rows.sort(key=lambda row: _version_key(row.name), reverse=True)
    return rows


def settle(repository: Repository, rows: list[Row]) -> list[Row]:
    """Fill in each row's build count, current build and the tags on it: three queries, whatever
    the number of rows.

    The current build of a version is where the tag that names it points, in this order:
    1. a tag spelled like the version (`3.14.4-dev`; `main` for a version named from the
       `org.opencontainers.image.version` label `main`), which may point at a build that was
       never given it (its label unreadable, say): that is still where the version is now;
    2. an exact or revision tag of that version and variant on one of its builds (`v3.14.4-dev`,
       `3.14.4-r2-dev`), the newest build if they disagree;
    3. a floating tag pointing into it (`18`, `latest`): what users of the version pull, when
       the version's builds carry only tags of their own (Bitnami odoo's `18.0.20241205`);
    4. the newest build of the version that some tag still points at.
    With no tag pointing in, there is none.
    """
    if not rows:
        return rows
    by_id = {row.version_id: row for row in rows}
    tagged = TagState.objects.filter(build=OuterRef("pk"), present=True)
    newest_tagged = (
        Build.objects.filter(version=OuterRef("pk")).filter(Exists(tagged)).order_by(*NEWEST_FIRST)
    )
    newest: dict[Row, tuple[int, datetime, int]] = {}
    for version_id, build_count, build_id in (
        Version.objects.filter(pk__in=list(by_id))
        .annotate(build_count=Count("builds"), current=Subquery(newest_tagged.values("pk")[:1]))
        .values_list("pk", "build_count", "current")
    ):
        by_id[version_id].build_count = build_count
        by_id[version_id].build_id = build_id

    by_label = {row.label: row for row in rows}
    by_version = {(row.name, row.variant): row for row in rows}
    columns = (
        "tag__name", "tag__kind", "tag__version", "tag__variant", "build_id", "build__version_id",
        Coalesce("build__built_at", "build__first_seen_at"),
    )  # fmt: skip
    # Two index-driven halves: an OR of them made PostgreSQL read every tag of the repository.
    spelled = TagState.objects.filter(present=True, tag__repository=repository, tag__name__in=list(by_label))
    inside = TagState.objects.filter(
        present=True, build__version_id__in=list(by_id), tag__kind__in=[*NAMING_KINDS, *FLOATING_KINDS]
    )
    for name, kind, version, variant, build_id, version_id, moment in (
        spelled.values_list(*columns).order_by().union(inside.values_list(*columns).order_by(), all=True)
    ):
        claims = [(by_label.get(name), 0)]
        if kind in NAMING_KINDS:
            claims.append((by_version.get((version, variant)), 1))
        elif kind in FLOATING_KINDS:
            claims.append((by_id.get(version_id), 2))
        for row, rank in claims:
            # the best rank wins, then the newest build
            if row is not None and (row not in newest or (-rank, moment, build_id) > newest[row]):
                newest[row] = (-rank, moment, build_id)
    for row, (_, _, build_id) in newest.items():
        row.build_id = build_id

    on_build: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
    digests: dict[int, str] = {}
    for build_id, digest, name, kind, version in (
        TagState.objects.filter(present=True, build_id__in={row.build_id for row in rows} - {None})
        .exclude(tag__kind=Kind.ARTIFACT)
        .values_list("build_id", "build__digest", "tag__name", "tag__kind", "tag__version")
        .order_by()
    ):
        digests[build_id] = digest
        on_build[build_id].append((name, kind, version))
    for row in rows:
        if row.build_id is not None:
            row.digest = digests.get(row.build_id, "")
            row.tags = in_order(on_build[row.build_id])
    return rows


def in_order(tags: list[tuple[str, str, str]]) -> list[str]:
    """Names of (name, kind, version) tags: `latest, 3.14.4, 3.14, 3`, by kind, newest version first."""
    tags = sorted(tags)
    tags.sort(key=lambda tag: _version_key(tag[2]), reverse=True)
    tags.sort(key=lambda tag: KIND_ORDER.get(tag[1], len(KIND_ORDER)))
    return [name for name, _, _ in tags]


def version_rows(repository: Repository) -> list[Row]:
    """Every version and variant, settled, in page order: what the API's `versions` returns."""
    return settle(repository, in_page_order(_versions(repository).rows))


# --- the page: lines, open or closed --------------------------------------------------------------


@dataclass(eq=False)
class LineGroup:
    """The versions of one line across variants (`3.14`, whatever the variant). Its summaries are
    computed once (a template asks for each several times); `active` and `inactive` follow
    `rows`, which are put in page order when the line opens."""

    name: str
    rows: list[Row]  # newest first once open; in no order while closed
    is_open: bool = False  # its active rows are settled and shown
    inactive_shown: bool = False  # so are its inactive ones (folded), else they are only counted
    inactive_open: bool = False  # and unfolded

    @property
    def active(self) -> list[Row]:
        return [row for row in self.rows if not row.inactive]

    @property
    def inactive(self) -> list[Row]:
        return [row for row in self.rows if row.inactive]

    @cached_property
    def channels(self) -> list[str]:
        return sorted({channel for row in self.rows for channel in row.channels})

    @cached_property
    def newest(self) -> str:
        """The newest version still active, else the newest: what a closed line says it reaches."""
        return max((row.name for row in self.active or self.rows), key=_version_key)

    @cached_property
    def is_prerelease(self) -> bool:
        """Only pre-releases so far (`19beta3`): marked, so nobody takes it for the newest release."""
        return bool(self.rows) and all(is_prerelease(row.name) for row in self.rows)

    @cached_property
    def variants(self) -> int:
        return len({row.variant for row in self.rows})

    def shown(self) -> list[Row]:
        if not self.is_open:
            return []
        return self.rows if self.inactive_shown else self.active


@dataclass
class Overview:
    lines: list[LineGroup]
    versions: int  # rows of the whole repository
    others: list["TagRow"]  # not understood, by name, at most OTHERS_SHOWN
    others_total: int | None  # None: not read (folded)
    unmatched_lines: int = 0  # lines a filter left out
    untracked: list[str] = field(default_factory=list)  # by name, at most OTHERS_SHOWN
    untracked_total: int = 0

    @property
    def is_small(self) -> bool:
        """Small enough to show everything unfolded: lines, inactive versions, all sections."""
        return self.versions <= SMALL


def overview(
    repository: Repository, *, q: str = "", line: str = "", inactive: bool = False, others: bool | None = None
) -> Overview:
    """The page's lines, what it shows of them settled, and its not-understood tags (`q` parsed).

    `line` opens that line too, and `inactive` shows its inactive versions. The not-understood
    tags are read when `others` says so, or by default for a filter or a small repository: in a
    large one they are mostly commit and branch tags, folded until asked for."""
    found = _versions(repository)
    rows = found.rows
    if q:
        matched = _matching(repository, rows, q)
        rows = [row for row in rows if row.version_id in matched]
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        groups[row.line].append(row)
    lines = [
        LineGroup(name, group)
        for name, group in sorted(groups.items(), key=lambda item: _version_key(item[0]), reverse=True)
    ]
    wanted = _wanted(lines, found.latest, q=q, total=len(found.rows))
    budget = ROW_BUDGET
    for group in lines:
        group.inactive_open = bool(q) or not group.active or (group.name == line and inactive)
        group.inactive_shown = group.inactive_open or len(found.rows) <= SMALL
        size = len(group.rows if group.inactive_shown else group.active)
        if group.name == line or (group in wanted and (size <= budget or budget == ROW_BUDGET)):
            group.is_open = True
            budget -= size
            in_page_order(group.rows)
    settle(repository, [row for group in lines for row in group.shown()])
    if others is None:
        others = bool(q) or len(found.rows) <= SMALL
    shown, total = not_understood(repository, q=q) if others else ([], None)
    unmatched = len({row.line for row in found.rows}) - len(lines) if q else 0
    return Overview(lines, len(found.rows), shown, total, unmatched, *untracked(repository))


def untracked(repository: Repository) -> tuple[list[str], int]:
    """The tags the repository's include/exclude patterns stopped taking (by name, at most
    OTHERS_SHOWN, and how many): not checked since, so in no "current" answer. Only a repository
    with patterns can have any for longer than a poll (without, the next poll takes them back),
    so the others cost no query."""
    if not (repository.include_pattern or repository.exclude_pattern):
        return [], 0
    events = TagEvent.objects.filter(tag=OuterRef("tag")).order_by("-detected_at", "-id")
    last_kind = events.values("kind")[:1]
    names = list(
        TagState.objects.filter(present=False, tag__repository=repository)
        .annotate(last_kind=Subquery(last_kind))
        .filter(last_kind=TagEvent.Kind.UNTRACKED)
        .order_by("tag__name")
        .values_list("tag__name", flat=True)
    )
    return names[:OTHERS_SHOWN], len(names)


def _wanted(lines: list[LineGroup], latest: set[int], *, q: str, total: int) -> list[LineGroup]:
    """The lines opened unless asked otherwise: all of a small repository or of a filter's result;
    else the newest line of versions with an active one, and the lines `latest` or a channel
    (`lts`, `stable`) points into: the newest line may hold only betas (postgres `19beta3` beside
    `latest` on 18.3), and people pick an LTS line as often as the newest."""
    if q or total <= SMALL:
        return lines
    versions = (group for group in lines if _version_key(group.name)[0] and group.active)
    newest = next(versions, lines[0] if lines else None)
    return [
        group
        for group in lines
        if group is newest or any(row.version_id in latest or row.channels for row in group.rows)
    ]


def _matching(repository: Repository, rows: list[Row], q: str) -> set[int]:
    """Versions a filter finds: by their name, or by a tag pointing into them or naming them."""
    lowered = q.lower()
    found = {row.version_id for row in rows if lowered in row.label.lower()}
    by_label = {row.label: row.version_id for row in rows}
    by_version = {(row.name, row.variant): row.version_id for row in rows}
    for name, kind, version, variant, version_id in (
        TagState.objects.present_in(repository)
        .filter(tag__name__icontains=q)
        .values_list("tag__name", "tag__kind", "tag__version", "tag__variant", "build__version_id")
        .order_by()
    ):
        named = by_version.get((version, variant)) if kind in NAMING_KINDS else None
        found |= {version_id, by_label.get(name), named}
    return found - {None}


# --- tags, a page at a time -----------------------------------------------------------------------


@dataclass
class TagRow:
    """A tag present now and the build it points to."""

    name: str
    kind: str
    version: str
    variant: str
    digest: str
    since: datetime | None
    build_id: int
    version_id: int | None = None  # the build's version, if it has one
    tag_id: int | None = None  # the position of a page sorted by when tags changed


# How the tags list can be sorted (`?sort=`), and what the page calls each order.
TAG_SORTS = {"name": "name", "changed": "last changed first", "kind": "kind, then name"}
# A page ends at a tag name when sorted by name or kind (the kind is the tag's own), and at
# (since, tag id) when sorted by change: a name says nothing about when its tag moved.
TAG_CURSORS: dict[str, type[Cursor] | type[NameCursor]] = {
    "name": NameCursor, "changed": Cursor, "kind": NameCursor,
}  # fmt: skip
# The kinds in the order the kind sort lists them: KIND_ORDER, as the tags on a row read.
_LISTED_KINDS = sorted(KIND_ORDER, key=KIND_ORDER.__getitem__)
_TAG_COLUMNS = (
    "tag__name", "tag__kind", "tag__version", "tag__variant", "build__digest", "since", "build_id",
    "build__version_id", "tag_id",
)  # fmt: skip


def parse_sort(raw: str | None) -> str:
    """The tags list's `?sort=`: name (the default), changed or kind. Raises InvalidFilter otherwise."""
    sort = raw or "name"
    if sort not in TAG_SORTS:
        raise InvalidFilter({"sort": "sort tags by name, changed or kind"})
    return sort


def decode_tag_cursor(token: str | None, sort: str) -> Cursor | NameCursor | None:
    """The position a `next` of a page in `sort` order names; InvalidCursor for anything else,
    including the `next` of a page in another order."""
    return TAG_CURSORS[sort].decode(token) if token else None


# Pages by name and by kind are walks of an index: `unique_tag` (repository, name) and
# `tag_repository_kind` (repository, kind, name), so a page is an index range scan (0.1 ms at
# 10 000 tags) wherever it starts. By change there is no such index (TagState has no repository
# to put one on): each page sorts the repository's present tags, a bounded top-N sort (12 ms at
# 10 000 tags; BENCHMARKS.md, Pages), which is why it is not the default.


@dataclass
class TagPage:
    items: list[TagRow]
    next: NameCursor | Cursor | None  # where the next page starts; None: this is the last


def tag_page(
    repository: Repository,
    *,
    q: str = "",
    sort: str = "name",
    cursor: NameCursor | Cursor | None = None,
    size: int | None = None,
) -> TagPage:
    """The tags present now (artifacts left out) in `sort` order (TAG_SORTS), a keyset page at a
    time from `cursor` (`next` of the page before, in the same order); `q`: part of the name.
    One query by name or change; by kind, one per kind the page reaches, and one to find where
    the cursor's tag is."""
    found = TagState.objects.present_in(repository)
    if q:
        found = found.filter(tag__name__icontains=q)
    size = size or TAG_PAGE
    if sort == "kind":
        return _by_kind(repository, found, cursor, size)
    if sort == "changed":
        found = found.order_by("-since", "-tag_id")
        if cursor is not None:
            found = found.filter(RowBefore(cursor, ("since", "tag_id")))
    else:
        # By name with a limit, PostgreSQL walks `unique_tag` and looks up each row's state and build.
        found = found.order_by("tag__name")
        if cursor is not None:
            found = found.filter(tag__name__gt=cursor.name)
    rows = _read(found, size + 1)
    items = rows[:size]
    if len(rows) <= size:
        return TagPage(items, None)
    last = items[-1]
    return TagPage(items, Cursor(last.since, last.tag_id) if sort == "changed" else NameCursor(last.name))


def _read(found, limit: int) -> list[TagRow]:
    return [TagRow(*values) for values in found.values_list(*_TAG_COLUMNS)[:limit]]


def _by_kind(repository: Repository, found, cursor: NameCursor | None, size: int) -> TagPage:
    """A page by kind then name: each kind's tags by name from `tag_repository_kind`, kind after
    kind until the page is full. A PostgreSQL CASE over the kinds would sort every tag instead."""
    start, after = 0, None
    if cursor is not None:
        # The kind the cursor's tag has (as stored); a name that is no tag here, its kind by the grammar.
        stored = Tag.objects.filter(repository=repository, name=cursor.name).values_list("kind", flat=True)
        kind = stored.first() or classify(cursor.name).kind.value
        if kind not in KIND_ORDER:
            return TagPage([], None)  # an artifact's name: it ends no page of this list
        start, after = _LISTED_KINDS.index(kind), cursor.name
    rows: list[TagRow] = []
    for kind in _LISTED_KINDS[start:]:
        these = found.filter(tag__kind=kind).order_by("tag__name")
        if after is not None and kind == _LISTED_KINDS[start]:
            these = these.filter(tag__name__gt=after)
        rows += _read(these, size + 1 - len(rows))
        if len(rows) > size:
            break
    items = rows[:size]
    return TagPage(items, NameCursor(items[-1].name) if len(rows) > size else None)
